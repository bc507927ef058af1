"""The knowledge-guided autoencoder's configuration: architecture, heads, losses, schedules.

One validated object (pydantic, strict booleans, unknown fields refused) that the studio edits,
the command line reads from YAML/JSON, and checkpoints carry. Every cross-field rule (attach
targets, which losses suit which head, labels for label-paired priors) is checked here, so a
model is never built from a configuration that cannot work.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from engine.config.family import FamilyConfig
from engine.config.problems import Problem
from engine.config.training import TrainingConfig
from engine.training.schedules import WeightSchedule

LossName = Literal["mse", "l1", "cosine", "nll", "bce", "nb"]
RegularizerName = Literal["sw2_uniform", "sw2_gaussian", "sw2_gmm", "l1", "l2"]
Gradient = Literal["normal", "reverse", "neutralize"]
Role = Literal["learn", "remove", "neutralize"]
Kind = Literal["categorical", "continuous"]
SignatureTarget = Literal["genes", "score"]
Norm = Literal["batch", "layer", "none"]
Activation = Literal["relu", "elu", "gelu"]

RESERVED_NAMES = {"main", "all"}
LOSSES_BY_TARGET = {
    "categorical": {"nll", "bce"},
    "continuous": {"mse", "l1"},
    "signature": {"mse", "l1", "cosine"},
    "reconstruction": {"mse", "l1", "cosine", "nb"},
}


def _as_schedule(value):
    """Let a plain number stand for a constant weight."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return WeightSchedule(start=float(value))
    return value


Schedule = Annotated[WeightSchedule, BeforeValidator(_as_schedule)]


class LossSpec(BaseModel):
    """One loss term of a head: its function, weight schedule, and how its gradient flows.

    `reverse`: the head learns, the encoders receive the negated gradient scaled by `alpha`
    (its own schedule). `neutralize`: the head learns, nothing upstream gets this gradient.
    """

    model_config = ConfigDict(extra="forbid")

    loss: LossName
    weight: Schedule = Field(default_factory=WeightSchedule)
    gradient: Gradient = "normal"
    alpha: Schedule = Field(default_factory=WeightSchedule)


class RegularizerSpec(BaseModel):
    """A prior or penalty on a latent; `labels` names the phenotype that pairs sw2_gmm."""

    model_config = ConfigDict(extra="forbid")

    regularizer: RegularizerName
    weight: Schedule = Field(default_factory=WeightSchedule)
    labels: str | None = None


class HeadSpec(BaseModel):
    """What phenotype and signature heads share: a latent (own or attached) and its losses."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = True
    latent_dim: int = Field(8, ge=1, description="size of the head's own latent (ignored when attached)")
    attach: str | None = Field(None, description="'main', 'all' or another head that owns a latent")
    head_dims: list[int] = Field(default_factory=list)
    losses: list[LossSpec] = Field(default_factory=list)
    regularizers: list[RegularizerSpec] = Field(default_factory=list)

    @property
    def owns_latent(self) -> bool:
        return self.attach is None


class PhenotypeSpec(HeadSpec):
    """An obs column the model should learn, remove (gradient reversal) or only read out.

    `role` fills in the default loss when `losses` is empty: learn → normal gradient, remove →
    reversed gradient (and the head attaches to the main latent unless told otherwise),
    neutralize → the head learns without shaping the embedding.
    """

    column: str | None = Field(None, description="obs column; defaults to the phenotype's name")
    kind: Kind = "categorical"
    role: Role = "learn"
    alpha: float = Field(1.0, ge=0, description="gradient reversal strength for role 'remove'")

    @model_validator(mode="after")
    def _defaults_from_role(self):
        if self.role == "remove" and self.attach is None:
            self.attach = "main"
        if not self.losses:
            gradient = {"learn": "normal", "remove": "reverse", "neutralize": "neutralize"}[self.role]
            loss = "nll" if self.kind == "categorical" else "mse"
            self.losses = [LossSpec(loss=loss, gradient=gradient, alpha=self.alpha)]
        return self


class SignatureSpec(HeadSpec):
    """A gene set regressed from its own latent: per-gene targets, or the set's mean score."""

    genes: list[str] = Field(min_length=1)
    exclude_from_input: StrictBool = False
    target: SignatureTarget = "genes"

    @model_validator(mode="after")
    def _default_loss(self):
        if not self.losses:
            self.losses = [LossSpec(loss="mse")]
        return self


class ExtractorTask(BaseModel):
    """The keywords of one `ExtractorController.train` call: a task of a training story."""

    model_config = ConfigDict(extra="forbid")

    backward_reconstruction_loss: StrictBool = True
    backward_main_latent_regularization: StrictBool = True
    backward_pheno_loss: StrictBool = True
    selected_pheno: str | list[str] | dict[str, dict[str, Any]] | None = None
    backward_signature_loss: StrictBool = True
    selected_signature: str | list[str] | dict[str, dict[str, Any]] | None = None
    detach: StrictBool = False
    detach_from: Literal["", "pre_encoder", "encoder"] = ""
    save_raw_loss: StrictBool = False


class ExtractorConfig(FamilyConfig):
    """Everything that defines a GuidedModel run; read and written as YAML or JSON."""

    family: Literal["guided"] = "guided"
    pre_encoder_dims: list[int] = Field(default_factory=lambda: [256])
    encoder_dims: list[int] = Field(default_factory=lambda: [64])
    main_latent_dim: int = Field(16, ge=1)
    decoder_dims: list[int] = Field(default_factory=lambda: [256])
    norm: Norm = "batch"
    activation: Activation = "relu"
    dropout: float = Field(0.1, ge=0, lt=1)
    reconstruction: LossSpec = Field(default_factory=lambda: LossSpec(loss="mse"))
    main_regularizers: list[RegularizerSpec] = Field(default_factory=list)
    phenotypes: dict[str, PhenotypeSpec] = Field(default_factory=dict)
    signatures: dict[str, SignatureSpec] = Field(default_factory=dict)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    task_type: ClassVar[type[BaseModel]] = ExtractorTask

    @property
    def active_phenotypes(self) -> dict[str, PhenotypeSpec]:
        return {name: spec for name, spec in self.phenotypes.items() if spec.enabled}

    @property
    def active_signatures(self) -> dict[str, SignatureSpec]:
        return {name: spec for name, spec in self.signatures.items() if spec.enabled}

    def rule_problems(self) -> list[Problem]:
        found = super().rule_problems()
        if self.reconstruction.loss not in LOSSES_BY_TARGET["reconstruction"]:
            found.append(Problem(("reconstruction", "loss"), (
                f"{self.reconstruction.loss} is not a reconstruction loss; "
                f"choose one of {', '.join(sorted(LOSSES_BY_TARGET['reconstruction']))}"
            )))
        if self.reconstruction.gradient != "normal":
            found.append(Problem(("reconstruction", "gradient"), "must be normal"))
        for name in sorted(set(self.phenotypes) & set(self.signatures)):
            found.append(Problem(("signatures", name), f"the name {name} is used by both a phenotype and a signature (gene program); rename one"))
        heads = {**self.phenotypes, **self.signatures}
        for group in ("phenotypes", "signatures"):
            for name in getattr(self, group):
                if name in RESERVED_NAMES:
                    found.append(Problem((group, name), f"the name {name} is reserved (main and all name parts of the embedding); rename it"))
        categorical = {n for n, s in self.active_phenotypes.items() if s.kind == "categorical"}
        for group, specs in (("phenotypes", self.active_phenotypes), ("signatures", self.active_signatures)):
            for name, spec in specs.items():
                found += self._attach_problems(group, name, spec, heads)
                target = spec.kind if group == "phenotypes" else "signature"
                found += self._loss_problems((group, name, "losses"), spec.losses, target)
                found += self._regularizer_problems((group, name, "regularizers"), spec.regularizers, categorical)
                if spec.regularizers and not spec.owns_latent:
                    found.append(Problem((group, name, "regularizers"), (
                        f"the head reads the latent of {spec.attach}, so it has none of "
                        "its own to regularise (shape); put the regulariser on that latent instead"
                    )))
        found += self._regularizer_problems(("main_regularizers",), self.main_regularizers, categorical)
        return found

    @staticmethod
    def _attach_problems(group: str, name: str, spec: HeadSpec, heads: dict[str, HeadSpec]) -> list[Problem]:
        where = (group, name, "attach")
        if spec.attach is None or spec.attach in RESERVED_NAMES:
            return []
        target = heads.get(spec.attach)
        if target is None:
            return [Problem(where, f"there is no head named {spec.attach}; use main, all or one of: "
                                   f"{', '.join(sorted(heads))}")]
        if not target.enabled:
            return [Problem(where, f"{spec.attach} is switched off; switch it on, or predict from another part "
                                   "of the embedding (attach elsewhere)")]
        if not target.owns_latent:
            return [Problem(where, f"{spec.attach} has no part of the embedding of its own (no latent: it reads "
                                   f"from {target.attach}); choose another")]
        return []

    @staticmethod
    def _loss_problems(where: tuple[str, ...], losses: list[LossSpec], target: str) -> list[Problem]:
        allowed = LOSSES_BY_TARGET[target]
        names = [spec.loss for spec in losses]
        found = [
            Problem(where, f"{loss} does not suit a {target} head; choose from {', '.join(sorted(allowed))}")
            for loss in names if loss not in allowed
        ]
        if len(set(names)) != len(names):
            found.append(Problem(where, f"each loss may appear once, got {', '.join(names)}"))
        return found

    @staticmethod
    def _regularizer_problems(where: tuple[str, ...], regularizers: list[RegularizerSpec], categorical: set[str]) -> list[Problem]:
        names = [spec.regularizer for spec in regularizers]
        found = ([Problem(where, f"each regularizer may appear once, got {', '.join(names)}")]
                 if len(set(names)) != len(names) else [])
        for spec in regularizers:
            if spec.regularizer == "sw2_gmm" and spec.labels not in categorical:
                found.append(Problem(where, (
                    f"sw2_gmm pairs cells with their label's cluster, so its labels must name a "
                    f"switched-on phenotype with categories (one of: {', '.join(sorted(categorical)) or 'none'}), "
                    f"got {spec.labels}"
                )))
        return found
