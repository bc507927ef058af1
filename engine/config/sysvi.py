"""The integration model's configuration (family "sysvi"): which columns are the system, the
within-system batches and the other covariates, the SysVAE's shape, and the loss weights.

Training defaults follow scvi-tools' SysVI (batch 128, lr 1e-3, Adam's epsilon 0.01, weight decay
1e-6), with a held-out tenth and early stopping added so a run ends by itself.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from engine.config.family import FamilyConfig
from engine.config.problems import Problem
from engine.config.training import TrainingConfig


def _sysvi_training() -> TrainingConfig:
    return TrainingConfig(max_epochs=200, batch_size=128, lr=1e-3, weight_decay=1e-6, validation_fraction=0.1,
                          early_stopping_patience=10, min_delta=0.001)


class SysVIConfig(FamilyConfig):
    family: Literal["sysvi"] = "sysvi"
    system_key: str
    batch_keys: list[str] = Field(default_factory=list, description="batches within systems (conditioned on)")
    categorical_covariate_keys: list[str] = Field(default_factory=list)
    continuous_covariate_keys: list[str] = Field(default_factory=list)
    embed_categorical_covariates: StrictBool = False
    prior: Literal["vamp", "standard_normal"] = "vamp"
    n_prior_components: int = Field(5, ge=1)
    trainable_priors: StrictBool = True
    vamp_mixture: Literal["per_dimension", "joint"] = Field(
        "per_dimension", description="the VampPrior's mixture per latent dimension (scvi-tools) or over the latent")
    n_latent: int = Field(15, ge=1)
    n_hidden: int = Field(256, ge=1)
    n_layers: int = Field(2, ge=1)
    dropout_rate: float = Field(0.1, ge=0, lt=1)
    out_var_mode: Literal["feature", "sample_feature"] = "feature"
    cycle_input: Literal["other_system", "own_system"] = Field(
        "other_system", description="re-encode the decoding under the other system (the paper) or the own (scvi-tools)")
    std_as_variance: StrictBool = Field(
        False, description="scvi-tools' variances: standard deviations where the likelihood and the prior take variances")
    encoder_variance: Literal["exp", "softplus"] = Field(
        "exp", description="the encoder's variance from its head: exp (TOTALVI) or softplus (scvi-tools' SysVI)")
    kl_weight: float = Field(1.0, ge=0)
    reconstruction_weight: float = Field(1.0, ge=0)
    cycle_weight: float = Field(2.0, ge=0, description="z_distance_cycle_weight; 0 switches the cycle off")
    adam_eps: float = Field(0.01, gt=0, description="Adam's epsilon (scvi-tools trains SysVI with 0.01)")
    training: TrainingConfig = Field(default_factory=_sysvi_training)

    @property
    def covariate_columns(self) -> list[str]:
        """Categorical covariates besides the system: the batches first."""
        return list(dict.fromkeys(self.batch_keys + self.categorical_covariate_keys))

    def rule_problems(self) -> list[Problem]:
        found = super().rule_problems()
        if self.system_key in self.covariate_columns + self.continuous_covariate_keys:
            found.append(Problem(("system_key",), f"{self.system_key} is the system; it cannot also be a covariate"))
        return found
