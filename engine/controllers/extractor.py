"""One optimisation step of the knowledge-guided autoencoder, with every term chosen per call.

The controller turns an `ExtractorConfig` into loss terms with hierarchical names
(`reconstruction/mse`, `main/sw2_uniform`, `pheno/cell_type/nll`, `signature/cycle/mse`) and,
per call, backpropagates exactly the terms a task selects. Gradient reversal and neutralisation
are per loss: the head is re-run on a reversed or detached copy of its input, so the head itself
always receives its ordinary gradient.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from engine.config.extractor import ExtractorConfig, HeadSpec, LossSpec, RegularizerSpec
from engine.config.training import TrainingConfig
from engine.controllers.base import Controller, LossDict
from engine.losses import get_loss, get_regularizer
from engine.models.extractor import Extractor
from engine.nn.gradient import grad_neutralize, grad_reverse

ALL = "*"


class ExtractorController(Controller):
    """Losses, weights and the step for an `Extractor` built from `config`.

    `signature_genes` maps each active signature to the indices (on the model's device) of its
    genes in the full batch; `n_categories` maps each categorical phenotype to its class count.
    """

    def __init__(
        self,
        model: Extractor,
        config: ExtractorConfig,
        *,
        signature_genes: Mapping[str, torch.Tensor],
        n_categories: Mapping[str, int],
    ):
        self.cfg = config
        self.phenotypes = config.active_phenotypes
        self.signatures = config.active_signatures
        self.signature_genes = dict(signature_genes)
        self.n_categories = dict(n_categories)
        super().__init__(model, config.training, schedules=self._schedules())

    def apply_training(self, training: TrainingConfig) -> None:
        super().apply_training(training)
        self.cfg = self.cfg.model_copy(update={"training": training})  # what checkpoints describe

    def _schedules(self):
        cfg = self.cfg
        schedules = {f"reconstruction/{cfg.reconstruction.loss}": cfg.reconstruction.weight}
        schedules |= {f"main/{r.regularizer}": r.weight for r in cfg.main_regularizers}
        for prefix, heads in (("pheno", self.phenotypes), ("signature", self.signatures)):
            for name, spec in heads.items():
                for loss in spec.losses:
                    schedules[f"{prefix}/{name}/{loss.loss}"] = loss.weight
                    schedules[f"alpha/{prefix}/{name}/{loss.loss}"] = loss.alpha
                for reg in spec.regularizers:
                    schedules[f"{prefix}/{name}/{reg.regularizer}"] = reg.weight
        return schedules

    def config(self) -> dict:
        return self.cfg.model_dump(mode="json")

    # -- selection -------------------------------------------------------------------------
    @staticmethod
    def _selection(kind: str, heads: Mapping[str, HeadSpec], selected) -> dict[str, tuple[set, set]]:
        """{head: (loss names, regularizer names)} from None, a list of heads, or a dict."""
        if selected is None:
            selected = {name: {"loss": ALL, "regularization": ALL} for name in heads}
        elif isinstance(selected, (list, tuple, set, str)):
            names = [selected] if isinstance(selected, str) else list(selected)
            selected = {name: {"loss": ALL, "regularization": ALL} for name in names}
        chosen = {}
        for name, parts in selected.items():
            if name not in heads:
                raise ValueError(f"unknown {kind} {name!r}; valid: {sorted(heads)}")
            unknown_keys = set(parts) - {"loss", "regularization"}
            if unknown_keys:
                raise ValueError(f"{kind} {name!r}: unknown keys {sorted(unknown_keys)}; use 'loss' and 'regularization'")
            spec = heads[name]
            losses = _pick(f"{kind} {name!r} loss", [s.loss for s in spec.losses], parts.get("loss", ALL))
            regs = _pick(
                f"{kind} {name!r} regularization",
                [s.regularizer for s in spec.regularizers],
                parts.get("regularization", ALL),
            )
            chosen[name] = (losses, regs)
        return chosen

    # -- the step --------------------------------------------------------------------------
    def train(
        self,
        batch: dict,
        backward_reconstruction_loss: bool = True,
        backward_main_latent_regularization: bool = True,
        backward_pheno_loss: bool = True,
        selected_pheno=None,
        backward_signature_loss: bool = True,
        selected_signature=None,
        suppress_backward: bool = False,
        detach: bool = False,
        detach_from: str = "",
        save_raw_loss: bool = False,
    ) -> LossDict:
        """One step; returns the total and every weighted term (plus `raw/<term>` if asked)."""
        phenos = self._selection("phenotype", self.phenotypes, selected_pheno) if backward_pheno_loss else {}
        signatures = (
            self._selection("signature", self.signatures, selected_signature) if backward_signature_loss else {}
        )
        regularize_main = backward_main_latent_regularization and bool(self.cfg.main_regularizers)
        full = backward_reconstruction_loss
        out = self.model(
            batch["x"],
            forward_signature=full or bool(signatures),
            selected_signature=None if full else list(signatures),
            forward_pheno=full or bool(phenos),
            selected_pheno=None if full else list(phenos),
            forward_main_latent=full or regularize_main,
            forward_reconstruction=full,
            detach=detach,
            detach_from=detach_from,
        )
        raw: dict[str, torch.Tensor] = {}
        if full:
            raw[f"reconstruction/{self.cfg.reconstruction.loss}"] = self._reconstruction(out)
        if regularize_main:
            for reg in self.cfg.main_regularizers:
                raw[f"main/{reg.regularizer}"] = self._regularize(reg, out["lat_main"], batch)
        for name, (losses, regs) in phenos.items():
            spec = self.phenotypes[name]
            column = spec.column or name
            target = batch["obs"][column]
            if spec.kind == "continuous":
                target = target.unsqueeze(1)
            for loss in spec.losses:
                if loss.loss in losses:
                    prediction = self._head_output("pheno", name, loss, out)
                    raw[f"pheno/{name}/{loss.loss}"] = get_loss(loss.loss)(
                        prediction, target, batch["mask"][column]
                    )
            self._regularize_head("pheno", name, spec, regs, out, batch, raw)
        for name, (losses, regs) in signatures.items():
            spec = self.signatures[name]
            target = batch["x"].index_select(1, self.signature_genes[name])
            if spec.target == "score":
                target = target.mean(dim=1, keepdim=True)
            for loss in spec.losses:
                if loss.loss in losses:
                    prediction = self._head_output("signature", name, loss, out)
                    raw[f"signature/{name}/{loss.loss}"] = get_loss(loss.loss)(prediction, target)
            self._regularize_head("signature", name, spec, regs, out, batch, raw)
        if not raw:
            raise ValueError("this task selects no loss term: switch on at least one loss or head")

        weighted = {term: value * self.weight(term) for term, value in raw.items()}
        total = torch.stack(list(weighted.values())).sum()
        report = {"total": self.finish_step(total, suppress_backward),
                  **{term: value.detach() for term, value in weighted.items()}}
        if save_raw_loss:
            report |= {f"raw/{term}": value.detach() for term, value in raw.items()}
        return report

    # -- terms -----------------------------------------------------------------------------
    def _reconstruction(self, out: dict) -> torch.Tensor:
        loss = self.cfg.reconstruction.loss
        extra = {"log_theta": self.model.log_theta} if loss == "nb" else {}
        return get_loss(loss)(out["re_x"], out["x"], **extra)

    def _head_output(self, kind: str, name: str, loss: LossSpec, out: dict) -> torch.Tensor:
        """The head's prediction, with the gradient to its input reversed or cut if asked."""
        if loss.gradient == "normal":
            return out[f"{kind}_out"][name]
        head = (self.model.pheno_heads if kind == "pheno" else self.model.signature_heads)[name]
        source = self.model.head_input(kind, name, out)
        if loss.gradient == "reverse":
            return head(grad_reverse(source, self.weight(f"alpha/{kind}/{name}/{loss.loss}")))
        return head(grad_neutralize(source))

    def _regularize(self, reg: RegularizerSpec, z: torch.Tensor, batch: dict) -> torch.Tensor:
        extra = {}
        if reg.labels is not None:
            column = self.phenotypes[reg.labels].column or reg.labels
            extra = {
                "labels": batch["obs"][column],
                "mask": batch["mask"][column],
                "n_labels": self.n_categories[reg.labels],
            }
        return get_regularizer(reg.regularizer)(z, **extra)

    def _regularize_head(self, kind, name, spec: HeadSpec, chosen: set, out, batch, raw) -> None:
        if not spec.owns_latent:
            return
        z = out[f"lat_{kind}"][name]
        for reg in spec.regularizers:
            if reg.regularizer in chosen:
                raw[f"{kind}/{name}/{reg.regularizer}"] = self._regularize(reg, z, batch)


def _pick(what: str, available: list[str], wanted) -> set[str]:
    """Names from `wanted` ('*', None or a list), checked against what the head has."""
    if wanted is None:
        return set()
    if wanted == ALL:
        return set(available)
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise ValueError(f"{what}: unknown {unknown}; this head has {available}")
    return set(wanted)
