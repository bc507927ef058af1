"""What `Trainer.run` returns: how the run ended, and its events as tables."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.training.events import EventLog


@dataclass(frozen=True)
class TrainingRun:
    state: str  # "finished", "stopped", "failed" or "early_stopped"
    events: EventLog
    epochs: int  # epochs completed so far (counting those before a resume)
    steps: int  # optimisation steps completed so far
    checkpoint: Path | None  # the last checkpoint this run wrote
    best_epoch: int | None  # best validation epoch when early stopping was on
    best_validation: float | None

    def history(self) -> pd.DataFrame:
        """One row per step, one column per loss term (the log's retained step events)."""
        return self.events.step_frame()

    def validation(self) -> pd.DataFrame:
        """One row per validation (end of an epoch), one column per term."""
        return self.events.frame("validation")
