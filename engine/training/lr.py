"""Learning-rate schedules as pure functions of the epoch.

Being stateless, a schedule resumes from a checkpoint by itself: the epoch is all it needs. The
base rate is kept in each parameter group as `initial_lr`, which the optimiser's state dict saves.
"""
from __future__ import annotations

import math
from typing import Literal

import torch

LrSchedule = Literal["cosine", "step"] | None


def lr_factor(schedule: LrSchedule, epoch: int, total_epochs: int, step_epochs: int, gamma: float) -> float:
    """Multiplier of the base rate at `epoch`: cosine decay to 0 over the run, or gamma every step_epochs."""
    if schedule is None:
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / max(1, total_epochs)))
    if schedule == "step":
        return gamma ** (epoch // step_epochs)
    raise ValueError(f"unknown lr_schedule {schedule!r}; use None, 'cosine' or 'step'")


def apply_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor
