"""A small controller for testing the Trainer: an MLP that reconstructs x and regresses an obs value.

Two loss terms ("recon", "value") so tasks can pick them (`terms=[...]`), each also reported raw;
optional dropout so tests can check that random states are restored; a NaN injected on purpose at
a chosen optimisation step; optionally a copy of the weights after every step, and a callback.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import anndata as ad
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.config.training import TrainingConfig
from engine.controllers.base import Controller
from engine.data.batches import CellBatches


class ToyNet(nn.Module):
    def __init__(self, n_genes: int, hidden: int = 16, dropout: float = 0.0):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(n_genes, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.recon = nn.Linear(hidden, n_genes)
        self.value = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, heads: Sequence[str] = ("recon", "value")) -> dict:
        h = self.trunk(x)
        return {head: getattr(self, head)(h) for head in heads}


class ToyController(Controller):
    def __init__(
        self,
        n_genes: int,
        *,
        hidden: int = 16,
        dropout: float = 0.0,
        lr: float = 1e-2,
        init_seed: int = 0,
        target: str = "value",
        nan_at_step: int | None = None,
        nan_term: str = "recon",
        record_weights: bool = False,
        on_step: Callable[[int], None] | None = None,
        schedules=None,
        net: nn.Module | None = None,
        training: TrainingConfig | None = None,
    ):
        if net is None:  # a family builds (and seeds) its own module
            torch.manual_seed(init_seed)
            net = ToyNet(n_genes, hidden, dropout)
        super().__init__(net, training or TrainingConfig(lr=lr), schedules=schedules)
        self.settings = {"n_genes": n_genes, "hidden": hidden, "dropout": dropout, "lr": lr}
        self.target = target
        self.nan_at_step = nan_at_step
        self.nan_term = nan_term
        self.weights: list[dict[str, torch.Tensor]] | None = [] if record_weights else None
        self.on_step = on_step
        self.steps = 0

    def config(self) -> dict:
        return dict(self.settings)

    def train(self, batch: dict, *, terms: Sequence[str] = ("recon", "value"), suppress_backward=False):
        out = self.model(batch["x"], heads=tuple(terms))
        raw = {}
        if "recon" in terms:
            raw["recon"] = F.mse_loss(out["recon"], batch["x"])
        if "value" in terms:
            raw["value"] = F.mse_loss(out["value"].squeeze(-1), batch["obs"][self.target])
        if self.steps == self.nan_at_step and not suppress_backward:
            raw[self.nan_term] = raw[self.nan_term] * float("nan")
        losses = {term: self.weight(term) * value for term, value in raw.items()}
        total = sum(losses.values())
        report = {"total": total, **losses, **{f"raw/{t}": v.detach() for t, v in raw.items()}}
        if suppress_backward:
            return report
        self.backward_step(total)
        self.steps += 1
        if self.weights is not None:
            self.weights.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        if self.on_step is not None:
            self.on_step(self.steps)
        return report


def toy_cells(n_cells: int = 96, n_genes: int = 8, seed: int = 0, device="cpu") -> CellBatches:
    """Random cells whose obs 'value' is a linear function of x plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_cells, n_genes)).astype(np.float32)
    adata = ad.AnnData(x)
    adata.obs["value"] = x @ rng.normal(size=n_genes) + 0.1 * rng.normal(size=n_cells)
    return CellBatches(adata, continuous=["value"], device=device)
