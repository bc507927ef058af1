"""The latent prior a knowledge table defines: one mode per population, one axis per marker.

For population p and marker m the table gives a level rho[p, m] (1 present, -1 absent,
fractions in between) or nothing. Given the population, markers are independent:

* a known level is a gaussian ``N(u; mu, sigma^2)`` with ``mu = rho`` (divided by `CONTINUUM_SHRINK`
  for continuum markers, whose levels spread rather than split);
* an unknown level is a plateau of half-width ``w = max(1 - sigma, 0)`` with gaussian tails,
  ``f(u) = exp(-max(|u| - w, 0)^2 / (2 sigma^2)) / (2 w + sigma sqrt(2 pi))``, which integrates
  to one: the plateau contributes ``2w`` and the two half-gaussian tails ``sigma sqrt(2 pi)``.

``log p(u | p)`` sums the per-marker terms. The known part is evaluated as matrix products
(``sum_m K (u - mu)^2 = u^2 K^T - 2 u (K mu)^T + sum K mu^2``), so a batch never builds a
cells x populations x markers tensor; `log_prob_per_marker` does, for explanations only.
"""
from __future__ import annotations

import math

import torch
from torch import nn

CONTINUUM_SHRINK = 5.0
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def plateau_half_width(std: float) -> float:
    return max(1.0 - std, 0.0)


def unknown_log_density(u: torch.Tensor, std: float) -> torch.Tensor:
    """log f(u) of an unknown table entry (the plateau with gaussian tails)."""
    width = plateau_half_width(std)
    distance = torch.relu(u.abs() - width)
    return -0.5 * (distance / std) ** 2 - math.log(2 * width + std * math.sqrt(2 * math.pi))


class TablePrior(nn.Module):
    """Per-population log-densities of latent cells under the table's modes (std set per call)."""

    def __init__(self, rho: torch.Tensor, is_continuum_marker: torch.Tensor):
        super().__init__()
        rho = torch.as_tensor(rho, dtype=torch.float32)
        unknown = torch.isnan(rho)
        shrink = torch.where(torch.as_tensor(is_continuum_marker, dtype=torch.bool), CONTINUUM_SHRINK, 1.0)
        modes = torch.where(unknown, 0.0, rho) / shrink
        known = (~unknown).float()
        self.register_buffer("modes", modes)  # (P, M), 0 where unknown
        self.register_buffer("unknown", unknown)
        self.register_buffer("known", known)
        self.register_buffer("unknown_float", unknown.float())
        self.register_buffer("known_modes", known * modes)
        self.register_buffer("known_sq_sum", (known * modes**2).sum(dim=1))
        self.register_buffer("n_known", known.sum(dim=1))
        self.register_buffer("n_unknown", unknown.float().sum(dim=1))

    def log_prob(self, u: torch.Tensor, std: float) -> torch.Tensor:
        """(cells, populations) log p(u | population)."""
        squared = (u**2) @ self.known.T - 2 * u @ self.known_modes.T + self.known_sq_sum
        width = plateau_half_width(std)
        beyond = torch.relu(u.abs() - width) ** 2 @ self.unknown_float.T
        normaliser = (
            self.n_known * (math.log(std) + LOG_SQRT_2PI)
            + self.n_unknown * math.log(2 * width + std * math.sqrt(2 * math.pi))
        )
        return -0.5 * (squared + beyond) / std**2 - normaliser

    def log_prob_per_marker(self, u: torch.Tensor, std: float) -> torch.Tensor:
        """(cells, populations, markers): each marker's term of log p(u | population)."""
        known = -0.5 * ((u[:, None, :] - self.modes) / std) ** 2 - math.log(std) - LOG_SQRT_2PI
        return torch.where(self.unknown, unknown_log_density(u, std)[:, None, :], known)

    def sample(self, z: torch.Tensor, std: float) -> torch.Tensor:
        """Latent cells of populations `z`, drawn exactly from the density above."""
        modes, unknown = self.modes[z], self.unknown[z]
        known_draw = modes + std * torch.randn_like(modes)
        width = plateau_half_width(std)
        on_plateau = torch.rand_like(modes) < 2 * width / (2 * width + std * math.sqrt(2 * math.pi))
        sign = torch.where(torch.rand_like(modes) < 0.5, -1.0, 1.0)
        unknown_draw = torch.where(
            on_plateau, width * (2 * torch.rand_like(modes) - 1), sign * (width + (std * torch.randn_like(modes)).abs())
        )
        return torch.where(unknown, unknown_draw, known_draw)
