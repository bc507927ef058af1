"""Early stopping on the validation total, with a relative `min_delta`.

An epoch improves when ``value < best - min_delta * |best|``. A relative threshold means the same
setting works whatever the scale of the loss; an absolute one (Scyan's) never fires when the loss
of a small data set is itself smaller than `min_delta`. The best weights are kept on the device.
"""
from __future__ import annotations

import torch
from torch import nn


class EarlyStopping:
    def __init__(self, patience: int, min_delta: float = 0.0):
        if patience < 1:
            raise ValueError(f"early_stopping_patience must be at least 1, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta is a relative improvement and must be >= 0, got {min_delta}")
        self.patience = patience
        self.min_delta = min_delta
        self.reset()

    def reset(self) -> None:
        """Forget the best value (a new phase monitors a different total)."""
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, value: float, epoch: int, model: nn.Module) -> bool:
        """Record one epoch's value; True when `patience` epochs in a row have not improved."""
        if self.best is None or value < self.best - self.min_delta * abs(self.best):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, model: nn.Module) -> None:
        model.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.bad_epochs = int(state["bad_epochs"])
        self.best_state = state["best_state"]
