"""Per-term weight schedules: a loss weight as a function of the epoch.

Schedules advance per epoch of the whole run (not per task, unlike SAKURA), so every term sees the
same clock whatever the story interleaves.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class WeightSchedule(BaseModel):
    """weight(epoch) = start before `start_epoch`; then a linear or multiplicative ramp, clamped."""

    model_config = ConfigDict(extra="forbid")

    start: float = Field(1.0, description="weight before and at start_epoch")
    start_epoch: int = Field(0, ge=0, description="epoch at which the ramp begins")
    ramp: Literal["constant", "linear", "multiplicative"] = "constant"
    rate: float = Field(0.0, description="added per epoch (linear) or factor per epoch (multiplicative)")
    min: float | None = Field(None, description="lower clamp; none when unset")
    max: float | None = Field(None, description="upper clamp; none when unset")

    def value(self, epoch: int) -> float:
        steps = max(0, epoch - self.start_epoch)
        if self.ramp == "linear":
            weight = self.start + self.rate * steps
        elif self.ramp == "multiplicative":
            weight = self.start * self.rate**steps
        else:
            weight = self.start
        if self.min is not None:
            weight = max(self.min, weight)
        if self.max is not None:
            weight = min(self.max, weight)
        return float(weight)


def constant(weight: float) -> WeightSchedule:
    return WeightSchedule(start=weight)
