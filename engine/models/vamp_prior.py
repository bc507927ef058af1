"""`VampPrior`: a mixture prior over the latent whose components are the encoder's posteriors of
K learnt pseudo-inputs (Tomczak & Welling 2018), as SysVI uses it.

    (m_k, v_k) = encoder(u_k, c_k),   w = softmax(logits)
    per_dimension (default): log p(z) = sum_d log sum_k w_k N(z_d; m_kd, v_kd)
    joint:                   log p(z) = log sum_k w_k N(z; m_k, diag v_k)

`joint` is the mixture of diagonal gaussians as the VampPrior paper defines it; `per_dimension`
is the product of one mixture per latent dimension, as scvi-tools and the SysVI authors' code
compute it. The default follows them. It was steadier across seeds:
- Mixology, 100 epochs, seeds 0-2: iLISI 0.76 / 0.37 / 0.39 against joint's 0.83 / 0.41 / 0.05;
  batch silhouette 0.78 against 0.74 on average. It cost label silhouette, 0.66 against 0.71.
- bench/sysvi.py's generated cells, 20 epochs, 3 seeds: label silhouette 0.93 against 0.91,
  batch silhouette 0.84 against 0.78.

The pseudo-inputs u_k start as K cells' expression and their categories c_k as those cells'
one-hot rows; with `trainable`, u_k, the categories (as softmax of logits, so they stay weights
that sum to one) and w are learnt.
"""
from __future__ import annotations

import math

import torch
from torch import nn

ONE_HOT_LOGIT = 5.0  # softmax([5, 0]) = (0.993, 0.007): the starting categories are nearly one-hot
MIXTURES = ("per_dimension", "joint")


class VampPrior(nn.Module):
    def __init__(self, x: torch.Tensor, categories: list[torch.Tensor], n_categories: list[int],
                 continuous: torch.Tensor | None, trainable: bool = True, mixture: str = "per_dimension"):
        """`x`: K pseudo-inputs (K x genes); `categories`: per categorical covariate, K codes;
        `continuous`: K x c continuous covariates (or None); `mixture`: see the module."""
        super().__init__()
        if mixture not in MIXTURES:
            raise ValueError(f"mixture must be one of {list(MIXTURES)}, got {mixture!r}")
        self.mixture = mixture
        self.n_components = x.shape[0]

        def keep(name: str, value: torch.Tensor) -> None:
            if trainable:
                setattr(self, name, nn.Parameter(value.clone()))
            else:
                self.register_buffer(name, value.clone())

        keep("x", x.float())
        for i, (codes, n) in enumerate(zip(categories, n_categories)):
            keep(f"category_logits_{i}", nn.functional.one_hot(codes.long(), n).float() * ONE_HOT_LOGIT)
        self.n_categorical = len(categories)
        if continuous is not None:
            keep("continuous", continuous.float())
        else:
            self.continuous = None
        keep("logits", torch.zeros(self.n_components))

    def inputs(self) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """The pseudo-inputs as an encoder takes them: expression, soft categories, continuous."""
        categories = [getattr(self, f"category_logits_{i}").softmax(dim=-1) for i in range(self.n_categorical)]
        return self.x, categories, self.continuous

    def log_prob(self, z: torch.Tensor, means: torch.Tensor, variances: torch.Tensor) -> torch.Tensor:
        """log p(z) per cell (cells,), given the K components' means and variances (K x d)."""
        diff = z[:, None, :] - means[None]  # cells x K x d
        log_normal = -0.5 * (diff.pow(2) / variances + variances.log() + math.log(2 * math.pi))
        log_w = self.logits.log_softmax(dim=0)
        if self.mixture == "joint":
            return (log_normal.sum(-1) + log_w).logsumexp(dim=1)
        return (log_normal + log_w[:, None]).logsumexp(dim=1).sum(-1)
