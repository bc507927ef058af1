"""`PopulationFlow`: cells mapped by a covariate-conditioned RealNVP onto a table-defined prior.

The flow ``u = f(x; c)`` sends a cell's markers x (given its covariates c: batch, donor, ...)
to a latent u with one axis per table marker, where population p is the mode `TablePrior` gives
it. The model is a mixture whose likelihood is exact by the change of variables:

    log p(x | c) = log sum_p pi_p p(u | p) + log|det df/dx|

so training minimises its negative mean over cells (`kl`: the KL from the data to the model, up
to the data's entropy). Population weights pi are learnt as logits; in "temperature" epochs the
mixture uses the detached weights ``softmax(-logits / T)`` instead, which favour the small
populations so the flow learns to fit them too. Coupling layers rewrite every third marker,
rotating from layer to layer.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical

from engine.models.flow_coupling import CouplingLayer
from engine.models.flow_prior import TablePrior


class PopulationFlow(nn.Module):
    """The flow and its prior. `rho`: populations x markers (NaN = unknown);
    `is_continuum_marker`: markers x bool; `covariate_scale` multiplies the covariates the coupling
    networks read (one-hot codes then weigh as much as markers do at 1)."""

    def __init__(
        self,
        rho: torch.Tensor,
        n_covariates: int = 0,
        is_continuum_marker: torch.Tensor | None = None,
        hidden_size: int = 16,
        n_hidden_layers: int = 6,
        n_layers: int = 7,
        prior_std: float = 0.3,
        temperature: float = 0.5,
        *,
        covariate_scale: float = 1.0,
    ):
        super().__init__()
        rho = torch.as_tensor(rho, dtype=torch.float32)
        n_populations, n_markers = rho.shape
        if is_continuum_marker is None:
            is_continuum_marker = torch.zeros(n_markers, dtype=torch.bool)
        if prior_std <= 0 or temperature <= 0:
            raise ValueError("prior_std and temperature must be positive")
        self.n_populations, self.n_markers, self.n_covariates = n_populations, n_markers, n_covariates
        self.prior_std = prior_std
        self.temperature = temperature
        self.covariate_scale = covariate_scale
        self.prior = TablePrior(rho, is_continuum_marker)
        self.pi_logits = nn.Parameter(torch.zeros(n_populations))
        markers = torch.arange(n_markers)
        layers = ((markers - i) % 3 == 0 for i in range(n_layers))
        self.layers = nn.ModuleList(
            CouplingLayer(torch.nonzero(rewritten).flatten(), n_markers, n_covariates, hidden_size, n_hidden_layers)
            for rewritten in layers
            if rewritten.any()
        )

    # -- the flow ----------------------------------------------------------------------------
    def _conditioning(self, covariates: torch.Tensor | None, n_cells: int, like: torch.Tensor) -> torch.Tensor:
        if covariates is None:
            if self.n_covariates:
                raise ValueError(f"this flow is conditioned on {self.n_covariates} covariates; pass them")
            return like.new_zeros(n_cells, 0)
        return covariates * self.covariate_scale

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None):
        """(u, covariates, log|det J| per cell)."""
        c = self._conditioning(covariates, x.shape[0], x)
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, layer_log_det = layer(x, c)
            log_det = log_det + layer_log_det
        return x, covariates, log_det

    def inverse(self, u: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        c = self._conditioning(covariates, u.shape[0], u)
        for layer in reversed(self.layers):
            u = layer.inverse(u, c)
        return u

    # -- population weights ------------------------------------------------------------------
    @property
    def log_pi(self) -> torch.Tensor:
        return torch.log_softmax(self.pi_logits, dim=0)

    @property
    def pi(self) -> torch.Tensor:
        return self.log_pi.exp()

    @property
    def prior_z(self) -> Categorical:
        return Categorical(logits=self.log_pi)

    def log_pi_temperature(self, temperature: float) -> torch.Tensor:
        """Detached log-weights proportional to pi^(-1/T): the rarest populations weigh most."""
        return torch.log_softmax(-self.pi_logits.detach() / temperature, dim=0)

    # -- likelihood --------------------------------------------------------------------------
    def compute_probabilities(self, x: torch.Tensor, covariates: torch.Tensor | None = None, use_temp: bool = False):
        """(cells x populations log p(u|p) + log pi_p, log|det J|, u)."""
        u, _, log_det = self(x, covariates)
        log_pi = self.log_pi_temperature(self.temperature) if use_temp else self.log_pi
        return self.prior.log_prob(u, self.prior_std) + log_pi, log_det, u

    def kl(self, x: torch.Tensor, covariates: torch.Tensor | None = None, use_temp: bool = False) -> torch.Tensor:
        """The batch's mean negative log-likelihood (the exact mixture's, Jacobian included)."""
        log_probs, log_det, _ = self.compute_probabilities(x, covariates, use_temp)
        return -(torch.logsumexp(log_probs, dim=1) + log_det).mean()

    # -- generation --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n_samples: int, covariates: torch.Tensor | None = None, z=None, return_z: bool = False):
        """`n_samples` cells in marker space: from the learnt weights (z None), all of one
        population (an index), or one population per cell (an index tensor of n_samples)."""
        device = self.pi_logits.device
        if z is None:
            z = self.prior_z.sample((n_samples,))
        elif isinstance(z, int) and not isinstance(z, bool):
            if not 0 <= z < self.n_populations:
                raise ValueError(f"population index {z} is outside 0..{self.n_populations - 1}")
            z = torch.full((n_samples,), z, dtype=torch.long, device=device)
        elif torch.is_tensor(z) and not z.is_floating_point() and z.dtype != torch.bool:
            z = z.to(device=device, dtype=torch.long).flatten()
            if z.shape[0] == 1:
                z = z.expand(n_samples)
            if z.shape[0] != n_samples or (z < 0).any() or (z >= self.n_populations).any():
                raise ValueError(f"z must hold {n_samples} population indices in 0..{self.n_populations - 1}")
        else:
            raise TypeError("z must be None, a population index, or a tensor of population indices")
        u = self.prior.sample(z, self.prior_std)
        if covariates is not None and covariates.shape[0] == 1:
            covariates = covariates.expand(n_samples, -1)
        x = self.inverse(u, covariates)
        return (x, z) if return_z else x
