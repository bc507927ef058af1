"""The population flow's configuration: the knowledge table, the flow's shape and its prior.

The table travels inside the configuration (populations, markers, values with None for unknown,
hierarchy levels), so a saved model rebuilds its prior from its own config.json. Training
defaults follow Scyan's published ones (batch 8192, lr 5e-4, 200,000 cells per epoch), with early
stopping on a held-out tenth of the cells: 4 epochs without a 1% relative improvement. Past the
first epochs the likelihood creeps down by a few tenths of a percent per epoch while the labels no
longer change (100,000 generated cells: 24 epochs at 0.2%, 19 at 1%, accuracy 1.0 both; at noise
1.0, 0.943 and 0.936). Scyan's absolute 1 nat on a loss near 11 is a 9% threshold.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.config.family import FamilyConfig
from engine.config.problems import Problem
from engine.config.training import TrainingConfig


def _flow_training() -> TrainingConfig:
    return TrainingConfig(
        max_epochs=100, batch_size=8192, lr=5e-4, validation_fraction=0.1, early_stopping_patience=4, min_delta=0.01
    )


class FlowConfig(FamilyConfig):
    family: Literal["flow"] = "flow"
    populations: list[str]
    markers: list[str]
    values: list[list[float | None]]
    levels: dict[str, list[str]] = Field(default_factory=dict)
    batch_key: str | None = None
    categorical_covariate_keys: list[str] = Field(default_factory=list)
    continuous_covariate_keys: list[str] = Field(default_factory=list)
    continuum_markers: list[str] = Field(default_factory=list)
    hidden_size: int = Field(16, ge=1)
    n_hidden_layers: int = Field(6, ge=0)
    n_layers: int = Field(7, ge=1)
    prior_std: float = Field(0.3, gt=0)
    warm_up_std: float = Field(0.35, gt=0, description="prior std during the first warm_up_epochs")
    warm_up_epochs: int = Field(4, ge=0)
    temperature: float = Field(0.5, gt=0)
    modulo_temp: int = Field(3, ge=1, description="every epoch not a multiple of this uses the temperature")
    covariate_scale: float = Field(1.0, gt=0)
    population_weight_lr: float = Field(0.05, gt=0, description="learning rate of the population weights")
    cells_per_epoch: int | None = Field(200_000, ge=1, description="cells drawn per epoch on large data")
    log_prob_threshold: float = Field(-50.0, description="cells below it are left unknown")
    training: TrainingConfig = Field(default_factory=_flow_training)

    @property
    def covariate_columns(self) -> list[str]:
        """Categorical covariates, the batch first."""
        keys = ([self.batch_key] if self.batch_key else []) + self.categorical_covariate_keys
        return list(dict.fromkeys(keys))

    def rule_problems(self) -> list[Problem]:
        found = super().rule_problems()
        if len(self.values) != len(self.populations) or any(len(row) != len(self.markers) for row in self.values):
            found.append(Problem(("values",), "the table needs one row per population and one value per marker"))
        for marker in self.continuum_markers:
            if marker not in self.markers:
                found.append(Problem(("continuum_markers",), f"{marker} is not a marker of the table"))
        for level, names in self.levels.items():
            if len(names) != len(self.populations):
                found.append(Problem(("levels", level), "a level needs one name per population"))
        return found
