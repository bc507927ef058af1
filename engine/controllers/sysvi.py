"""One step of the integration model: the SysVAE's loss with the configured weights.

The cycle's extra decode and encode run only when its weight is above zero. Adam's epsilon comes
from the configuration (scvi-tools trains SysVI with 0.01, which damps early steps).
"""
from __future__ import annotations

from collections.abc import Callable

from engine.config.sysvi import SysVIConfig
from engine.config.training import TrainingConfig
from engine.controllers.base import Controller, LossDict
from engine.models.sysvae import SysVAE


class SysVIController(Controller):
    def __init__(self, model: SysVAE, config: SysVIConfig, tensors: Callable[[dict], dict]):
        """`tensors(batch)` turns a batch of cells into the SysVAE's tensors."""
        self.cfg = config
        self.tensors = tensors
        super().__init__(model, config.training)

    def param_groups(self, training: TrainingConfig) -> list[dict]:
        return [{"params": list(self.model.parameters()), "eps": self.cfg.adam_eps}]

    def apply_training(self, training: TrainingConfig) -> None:
        super().apply_training(training)
        self.cfg = self.cfg.model_copy(update={"training": training})

    def train(self, batch: dict, suppress_backward: bool = False) -> LossDict:
        cfg = self.cfg
        tensors = self.tensors(batch)
        inference, generative = self.model(tensors, cycle=cfg.cycle_weight > 0)
        losses = self.model.loss(tensors, inference, generative, kl_weight=cfg.kl_weight,
                                 reconstruction_weight=cfg.reconstruction_weight,
                                 z_distance_cycle_weight=cfg.cycle_weight)
        out = {"total": self.finish_step(losses["loss"], suppress_backward),
               "reconstruction": losses["reconstruction_loss"].detach(), "kl": losses["kl_local"].detach()}
        if "cycle_loss" in losses:
            out["cycle"] = losses["cycle_loss"].detach()
        return out

    def config(self) -> dict:
        return self.cfg.model_dump(mode="json")
