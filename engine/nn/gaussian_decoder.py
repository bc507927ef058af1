"""`GaussianDecoder`: latent -> a gaussian over (normalised log) expression, conditioned on
covariates injected into every layer.

The mean is a linear head on the trunk. The variance is softplus of either one free value per
gene ('feature', shared by all cells) or a linear head ('sample_feature', per cell and gene),
plus a floor of 1e-6 so the likelihood stays finite. Batch norm as in `EncoderTOTALVI`.
"""
from __future__ import annotations

import torch
from torch import nn

from engine.nn.fc import SCVI_BATCH_NORM, FCStack

OUT_VAR_MODES = ("feature", "sample_feature")
VARIANCE_FLOOR = 1e-6


class GaussianDecoder(nn.Module):
    def __init__(self, n_latent: int, n_output: int, n_covariates: int, n_layers: int, n_hidden: int,
                 dropout_rate: float, out_var_mode: str = "feature", norm: str = "batch"):
        super().__init__()
        if out_var_mode not in OUT_VAR_MODES:
            raise ValueError(f"out_var_mode must be one of {list(OUT_VAR_MODES)}, got {out_var_mode!r}")
        self.trunk = FCStack(n_latent, [n_hidden] * n_layers, n_covariates=n_covariates, norm=norm,
                             dropout=dropout_rate, **SCVI_BATCH_NORM)
        self.mean = nn.Linear(n_hidden, n_output)
        self.out_var_mode = out_var_mode
        if out_var_mode == "feature":
            self.raw_var = nn.Parameter(torch.zeros(n_output))
        else:
            self.var_head = nn.Linear(n_hidden, n_output)

    def forward(self, z: torch.Tensor, covariates: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, variance): the mean cells x n_output; the variance the same, or (n_output,) in
        'feature' mode, where it is one value per gene (it broadcasts; no per-cell copy)."""
        h = self.trunk(z, covariates)
        raw = self.raw_var if self.out_var_mode == "feature" else self.var_head(h)
        return self.mean(h), nn.functional.softplus(raw) + VARIANCE_FLOOR
