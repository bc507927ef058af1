"""One step of the population flow: the exact mixture likelihood, a prior warm-up, temperatures.

Epochs whose number is not a multiple of `modulo_temp` use the tempered population weights
(favouring small populations); the first `warm_up_epochs` widen the prior to `warm_up_std`. Both
apply only while training: validation always scores the model under its own prior and weights,
so early stopping compares like with like. Population weights get their own learning rate.
"""
from __future__ import annotations

from engine.config.flow import FlowConfig
from engine.config.training import TrainingConfig
from engine.controllers.base import Controller, LossDict
from engine.models.flow import PopulationFlow


class FlowController(Controller):
    def __init__(self, model: PopulationFlow, config: FlowConfig, covariates):
        """`covariates(batch)` turns a batch's obs codes into the flow's covariate matrix."""
        self.cfg = config
        self.covariates = covariates
        super().__init__(model, config.training)

    def param_groups(self, training: TrainingConfig) -> list[dict]:
        weights = [self.model.pi_logits]
        flow = [p for p in self.model.parameters() if p is not self.model.pi_logits]
        return [{"params": flow}, {"params": weights, "lr": self.cfg.population_weight_lr}]

    def apply_training(self, training: TrainingConfig) -> None:
        super().apply_training(training)
        self.cfg = self.cfg.model_copy(update={"training": training})

    def train(self, batch: dict, suppress_backward: bool = False) -> LossDict:
        model, cfg = self.model, self.cfg
        training = model.training
        warm = training and self.epoch < cfg.warm_up_epochs
        model.prior_std = max(cfg.warm_up_std, cfg.prior_std) if warm else cfg.prior_std
        use_temp = training and self.epoch % cfg.modulo_temp != 0
        log_probs, log_det, _ = model.compute_probabilities(batch["x"], self.covariates(batch), use_temp)
        prior_fit = -log_probs.logsumexp(dim=1).mean()
        volume = -log_det.mean()
        total = prior_fit + volume
        return {"total": self.finish_step(total, suppress_backward), "prior_fit": prior_fit.detach(),
                "volume": volume.detach()}

    def config(self) -> dict:
        return self.cfg.model_dump(mode="json")
