"""A training story: phases run in order, each with its own tasks and multi-task mode.

A task is the keyword arguments of one `controller.train(batch, **task)` call (which losses,
which heads, where gradients stop). `interleaved` takes one optimiser step per task on each batch;
`summed` adds the tasks' totals and takes one step on the sum.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "train"
    epochs: int = Field(1, ge=1)
    tasks: list[dict[str, Any]] = Field(default_factory=lambda: [{}])
    mode: Literal["interleaved", "summed"] = "interleaved"


class Story(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phases: list[Phase] = Field(min_length=1)

    @property
    def total_epochs(self) -> int:
        return sum(phase.epochs for phase in self.phases)

    @classmethod
    def single(cls, epochs: int, task: dict[str, Any] | None = None) -> "Story":
        return cls(phases=[Phase(epochs=epochs, tasks=[task or {}])])

    def phase_at(self, epoch: int) -> tuple[int, Phase]:
        """The phase that owns a global epoch number (0-based)."""
        end = 0
        for position, phase in enumerate(self.phases):
            end += phase.epochs
            if epoch < end:
                return position, phase
        raise IndexError(f"epoch {epoch} is past the story's {self.total_epochs} epochs")
