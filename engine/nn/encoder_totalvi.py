"""`EncoderTOTALVI`: the encoder block after scvi-tools' TOTALVI encoder, reused wherever a model
needs one.

Two fully connected trunks see the input with the one-hot covariates injected into every hidden
layer: a deep one for the latent z and a one-layer one for the log library size l. Both heads give
a mean and a variance (exp(head) + 1e-4, so a variance never reaches zero; softplus(head) + 1e-4
with `variance_activation='softplus'`, the activation of scvi-tools' SysVI encoder, which has no
floor; softplus grows linearly rather than exponentially in the head):

    q(z | x) = N(m_z, v_z),   untran_z ~ q(z | x) (reparameterised),
    z = softmax(untran_z) for distribution 'ln' (the logistic normal: z lies on the simplex),
    z = untran_z for 'normal';
    q(l | x) = N(m_l, v_l),   library = exp(min(l, 15)) (log-normal; the clamp keeps exp finite).

Continuous covariates (keyword `n_continuous`) are injected beside the one-hot ones. Batch norm
takes scvi-tools' settings (momentum 0.01, eps 1e-3): slowly moving running statistics, which
the eval-mode latent is computed with.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from engine.nn.fc import SCVI_BATCH_NORM, FCStack

DISTRIBUTIONS = ("normal", "ln")
VARIANCE_ACTIVATIONS = {"exp": torch.exp, "softplus": nn.functional.softplus}
VARIANCE_FLOOR = 1e-4
LOG_LIBRARY_CLAMP = 15.0


class EncoderOutput(NamedTuple):
    """The latent's distribution (mean, variance), its untransformed and transformed samples,
    and the library-size latent (None when the encoder was built without one)."""

    z_mean: torch.Tensor
    z_var: torch.Tensor
    untran_z: torch.Tensor
    z: torch.Tensor
    library_mean: torch.Tensor | None
    library_var: torch.Tensor | None
    library: torch.Tensor | None


def one_hot_covariates(n_cat_list: Sequence[int], codes: Sequence[torch.Tensor], dtype: torch.dtype) -> list[torch.Tensor]:
    """One block per categorical covariate: integer codes become one-hot rows (all zero where a
    code is -1, a missing value); floating (cells x n) weights pass as they are (a VampPrior's
    soft pseudo-input categories), so both are injected the same way."""
    if len(codes) != len(n_cat_list):
        raise ValueError(f"the encoder was built for {len(n_cat_list)} categorical covariates, got {len(codes)}")
    blocks = []
    for n, code in zip(n_cat_list, codes):
        if code.is_floating_point():
            blocks.append(code.to(dtype))
        else:
            code = code.reshape(-1).long()
            blocks.append(nn.functional.one_hot(code.clamp(min=0), n).to(dtype) * (code >= 0)[:, None].to(dtype))
    return blocks


class EncoderTOTALVI(nn.Module):
    """x (cells x n_input) -> `EncoderOutput` with an n_output-dimensional latent.

    `n_cat_list`: the number of categories of each categorical covariate (one-hot, into every
    layer). Layer norm replaces batch norm when `use_layer_norm` is set. `library=False` leaves
    out the library trunk for models that do not use it.
    """

    def __init__(self, n_input: int, n_output: int, n_cat_list: Sequence[int] | None = None, n_layers: int = 2,
                 n_hidden: int = 256, dropout_rate: float = 0.1, distribution: str = "ln",
                 use_batch_norm: bool = True, use_layer_norm: bool = False, *, n_continuous: int = 0,
                 library: bool = True, variance_activation: str = "exp"):
        super().__init__()
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {list(DISTRIBUTIONS)}, got {distribution!r}")
        if variance_activation not in VARIANCE_ACTIVATIONS:
            raise ValueError(f"variance_activation must be one of {list(VARIANCE_ACTIVATIONS)}, "
                             f"got {variance_activation!r}")
        self._positive = VARIANCE_ACTIVATIONS[variance_activation]
        if n_layers < 1:
            raise ValueError(f"the encoder needs at least one hidden layer, got n_layers={n_layers}")
        self.n_cat_list = [int(n) for n in (n_cat_list or []) if n > 1]  # one category carries nothing
        self._keep = [int(n) > 1 for n in (n_cat_list or [])]
        self.n_continuous = int(n_continuous)
        self.distribution = distribution
        n_cov = sum(self.n_cat_list) + self.n_continuous
        norm = "layer" if use_layer_norm else ("batch" if use_batch_norm else "none")
        trunk = dict(n_covariates=n_cov, norm=norm, dropout=dropout_rate, **SCVI_BATCH_NORM)
        self.z_trunk = FCStack(n_input, [n_hidden] * n_layers, **trunk)
        self.z_mean = nn.Linear(n_hidden, n_output)
        self.z_log_var = nn.Linear(n_hidden, n_output)
        self.library_trunk = FCStack(n_input, [n_hidden], **trunk) if library else None
        self.library_mean = nn.Linear(n_hidden, 1) if library else None
        self.library_log_var = nn.Linear(n_hidden, 1) if library else None

    def covariates(self, x: torch.Tensor, cat_list: Sequence[torch.Tensor], cont: torch.Tensor | None):
        """The covariate matrix injected into every layer (None without covariates)."""
        codes = [c for c, keep in zip(cat_list, self._keep) if keep]
        blocks = one_hot_covariates(self.n_cat_list, codes, x.dtype)
        if self.n_continuous:
            if cont is None or cont.shape[-1] != self.n_continuous:
                raise ValueError(f"the encoder was built for {self.n_continuous} continuous covariates")
            blocks.append(cont.to(x.dtype))
        return torch.cat(blocks, dim=-1) if blocks else None

    def _gaussian(self, h: torch.Tensor, mean: nn.Linear, log_var: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
        """A head's mean and variance, in float32 even under bf16 autocast: the sample, the KL and
        the cycle compare differences that bf16's 8-bit mantissa would round away (the heads are
        small, so this costs nothing)."""
        with torch.autocast(h.device.type, enabled=False):
            h = h.float()
            return mean(h), self._positive(log_var(h)) + VARIANCE_FLOOR

    def forward(self, x: torch.Tensor, *cat_list: torch.Tensor, cont: torch.Tensor | None = None) -> EncoderOutput:
        if len(cat_list) != len(self._keep):
            raise ValueError(f"the encoder was built for {len(self._keep)} categorical covariates, got {len(cat_list)}")
        cov = self.covariates(x, cat_list, cont)
        z_mean, z_var = self._gaussian(self.z_trunk(x, cov), self.z_mean, self.z_log_var)
        untran_z = z_mean + z_var.sqrt() * torch.randn_like(z_mean)
        z = untran_z.softmax(dim=-1) if self.distribution == "ln" else untran_z
        if self.library_trunk is None:
            return EncoderOutput(z_mean, z_var, untran_z, z, None, None, None)
        l_mean, l_var = self._gaussian(self.library_trunk(x, cov), self.library_mean, self.library_log_var)
        log_library = (l_mean + l_var.sqrt() * torch.randn_like(l_mean)).clamp(max=LOG_LIBRARY_CLAMP)
        return EncoderOutput(z_mean, z_var, untran_z, z, l_mean, l_var, log_library.exp())
