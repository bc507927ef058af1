"""How a run trains, apart from what it trains: the Trainer's knobs as one validated object."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from engine.training.story import Story


LrScheduleName = Literal["cosine", "step"]


class TrainingConfig(BaseModel):
    """Every setting of a training run, with its one default; the Trainer and the controller's
    optimiser (lr, weight_decay) both read it."""

    model_config = ConfigDict(extra="forbid")

    max_epochs: int = Field(30, ge=1)
    batch_size: int = Field(256, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    validation_fraction: float = Field(0.0, ge=0, lt=1)
    early_stopping_patience: int | None = Field(None, ge=1)
    min_delta: float = Field(0.0, ge=0, description="relative improvement that counts")
    clip_grad_norm: float | None = Field(None, gt=0)
    lr_schedule: LrScheduleName | None = None
    lr_step_epochs: int = Field(10, ge=1, description="with lr_schedule 'step': epochs between steps")
    lr_gamma: float = Field(0.5, gt=0, description="with lr_schedule 'step': factor at each step")
    seed: int = 0
    log_every: int = Field(10, ge=1)
    tick_batches: int | None = Field(None, ge=1, description="an epoch is this many batches (a tick), not a full pass")
    bf16: StrictBool = False
    story: Story | None = None
