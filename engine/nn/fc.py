"""Fully connected stacks with covariate injection at every layer (as in TOTALVI's encoder).

Injecting the one-hot covariates (batch, system, ...) into every layer rather than only the first
keeps them available to deep layers, which is what lets a decoder or encoder condition on them.
"""
from collections.abc import Sequence

import torch
from torch import nn

from engine.nn.dropout import Dropout

_NORMS = ("batch", "layer", "none")
_ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}
SCVI_BATCH_NORM = dict(norm_momentum=0.01, norm_eps=1e-3)  # scvi-tools' FCLayers, for blocks after theirs


def _norm(kind: str, dim: int, momentum: float, eps: float) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(dim, momentum=momentum, eps=eps)
    if kind == "layer":
        return nn.LayerNorm(dim)
    return nn.Identity()


class FCStack(nn.Module):
    """Linear -> norm -> activation -> dropout per layer, covariates concatenated to every input.

    `last_linear=True` leaves the final layer a bare Linear so that latents and outputs are
    unbounded (a bounding activation makes parts of a prior unreachable). Empty `dims` is the
    identity map, so an optional trunk can be switched off without special cases.
    `norm_momentum` and `norm_eps` are batch norm's (PyTorch's defaults unless a block says).
    """

    def __init__(
        self,
        n_in: int,
        dims: Sequence[int],
        *,
        n_covariates: int = 0,
        norm: str = "batch",
        activation: str = "relu",
        dropout: float = 0.0,
        last_linear: bool = False,
        norm_momentum: float = 0.1,
        norm_eps: float = 1e-5,
    ):
        super().__init__()
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {list(_NORMS)}, got {norm!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(_ACTIVATIONS)}, got {activation!r}")
        dims = [int(d) for d in dims]
        if n_in < 1 or any(d < 1 for d in dims) or n_covariates < 0:
            raise ValueError(
                f"FCStack needs positive sizes, got n_in={n_in}, dims={dims}, "
                f"n_covariates={n_covariates}"
            )
        self.n_covariates = int(n_covariates)
        self.linears = nn.ModuleList()
        self.posts = nn.ModuleList()
        prev = n_in
        for i, d in enumerate(dims):
            self.linears.append(nn.Linear(prev + self.n_covariates, d))
            if last_linear and i == len(dims) - 1:
                self.posts.append(nn.Identity())
            else:
                self.posts.append(
                    nn.Sequential(_norm(norm, d, norm_momentum, norm_eps), _ACTIVATIONS[activation](),
                                  Dropout(dropout))
                )
            prev = d
        self.out_dim = prev

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        if (covariates is None) != (self.n_covariates == 0):
            raise ValueError(
                f"this stack was built for {self.n_covariates} covariate columns but got "
                f"{'none' if covariates is None else tuple(covariates.shape)}"
            )
        h = x
        for linear, post in zip(self.linears, self.posts):
            if covariates is not None:
                h = torch.cat([h, covariates.to(h.dtype)], dim=-1)
            h = post(linear(h))
        return h
