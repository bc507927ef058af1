"""The choice lists a UI offers, declared once: derived from the configuration's Literal types."""
from __future__ import annotations

from typing import get_args

from engine.config.extractor import (
    LOSSES_BY_TARGET,
    Activation,
    Gradient,
    Kind,
    LossName,
    Norm,
    RegularizerName,
    Role,
    SignatureTarget,
)
from engine.config.training import LrScheduleName

ROLES: tuple[str, ...] = get_args(Role)
KINDS: tuple[str, ...] = get_args(Kind)
GRADIENTS: tuple[str, ...] = get_args(Gradient)
LOSSES: tuple[str, ...] = get_args(LossName)
REGULARIZERS: tuple[str, ...] = get_args(RegularizerName)
SIGNATURE_TARGETS: tuple[str, ...] = get_args(SignatureTarget)
NORMS: tuple[str, ...] = get_args(Norm)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
LR_SCHEDULES: tuple[str, ...] = get_args(LrScheduleName)
# Which losses suit which target (categorical / continuous phenotype, signature, reconstruction).
LOSSES_FOR: dict[str, tuple[str, ...]] = {
    target: tuple(loss for loss in LOSSES if loss in allowed) for target, allowed in LOSSES_BY_TARGET.items()
}
