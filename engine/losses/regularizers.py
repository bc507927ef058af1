"""Regularisers on a latent batch z (N, d): sliced-Wasserstein priors, sparsity, and the VAE KL.

Signature: `fn(z, *, labels=None, mask=None, n_labels=None, n_projections=64, generator=None,
**extra) -> 0-dim tensor`; cells with mask False (or label < 0 for the mixture) are left out.

The sliced 2-Wasserstein distance projects z and an equal-size prior sample on random unit
directions, sorts each projection and averages the squared differences of sorted values. The
label-paired mixture sorts by (label, value) instead: both sets hold the same label multiset, so
sorted positions pair cells with prior draws *of their own label*. An unpaired prior (SAKURA's
"supervised" one) only matches label proportions; this one puts each class on its component.
"""
import torch

from engine.losses.priors import mixture_means
from engine.losses.reduce import cell_weights, masked_mean


def _draw(kind: str, shape, like: torch.Tensor, generator) -> torch.Tensor:
    """Random numbers on the generator's device (a generator is tied to one), moved to z's."""
    device = generator.device if generator is not None else like.device
    fn = torch.randn if kind == "normal" else torch.rand
    return fn(*shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


def _sort_by_group(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Sort each column of `values` (N, P) by (group, value); `groups` is (N,) integer."""
    order = values.argsort(dim=0)
    grouped = groups[order].argsort(dim=0, stable=True)
    return values.gather(0, order.gather(0, grouped))


def _sliced_w2(z, prior, groups, weights, n_projections, generator):
    """Sliced W2 between z and prior, pairing within groups; cells of weight 0 are left out.

    `groups` gives invalid cells their own group (shared by both sets), so they pair with each
    other and their weight 0 removes them.
    """
    if z.shape[0] == 0:
        return z.sum() * 0.0
    directions = _draw("normal", (z.shape[1], n_projections), z, generator)
    directions = directions / directions.norm(dim=0, keepdim=True).clamp_min(1e-12)
    z_sorted = _sort_by_group(z @ directions, groups)
    p_sorted = _sort_by_group(prior @ directions, groups)
    per_position = ((z_sorted - p_sorted) ** 2).mean(dim=1)
    if weights is not None:
        weights = weights[groups.argsort(stable=True)]
    return masked_mean(per_position, weights)


def _validity(z, mask):
    weights = cell_weights(mask, z)
    groups = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
    if weights is not None:
        groups = (weights == 0).long()
    return groups, weights


def sw2_uniform(
    z, *, labels=None, mask=None, n_labels=None, n_projections=64, generator=None, **extra
):
    """Sliced W2 to the uniform distribution on [-1, 1]^d."""
    groups, weights = _validity(z, mask)
    prior = _draw("uniform", z.shape, z, generator) * 2.0 - 1.0
    return _sliced_w2(z, prior, groups, weights, n_projections, generator)


def sw2_gaussian(
    z, *, labels=None, mask=None, n_labels=None, n_projections=64, generator=None, **extra
):
    """Sliced W2 to the standard normal N(0, I)."""
    groups, weights = _validity(z, mask)
    prior = _draw("normal", z.shape, z, generator)
    return _sliced_w2(z, prior, groups, weights, n_projections, generator)


def sw2_gmm(
    z, *, labels=None, mask=None, n_labels=None, n_projections=64, generator=None,
    separation: float = 4.0, **extra,
):
    """Label-paired sliced W2 to a gaussian mixture: class k's cells against N(mean_k, I).

    `n_labels` is required (the component means depend on it, not on the labels a batch happens
    to hold); `labels` (N,) are integer codes, -1 = unknown (left out).
    """
    if labels is None or n_labels is None:
        raise ValueError("the 'sw2_gmm' regulariser needs labels=<(N,) codes> and n_labels=<int>")
    labels = labels.to(z.device).long()
    valid = labels >= 0
    if mask is not None:
        valid = valid & mask.to(z.device).bool()
    codes = labels.clamp(0, n_labels - 1)
    means = mixture_means(n_labels, z.shape[1], separation, device=z.device, dtype=z.dtype)
    prior = means[codes] + _draw("normal", z.shape, z, generator)
    groups = torch.where(valid, codes, torch.full_like(codes, n_labels))
    return _sliced_w2(z, prior, groups, valid.to(z.dtype), n_projections, generator)


def l1(
    z, *, labels=None, mask=None, n_labels=None, n_projections=64, generator=None, **extra
):
    """Mean absolute latent activation (sparsity)."""
    return masked_mean(z.abs().mean(dim=1), cell_weights(mask, z))


def l2(
    z, *, labels=None, mask=None, n_labels=None, n_projections=64, generator=None, **extra
):
    """Mean squared latent activation."""
    return masked_mean((z**2).mean(dim=1), cell_weights(mask, z))


def kl(
    z, *, labels=None, mask=None, n_labels=None, n_projections=64, generator=None, logvar=None,
    **extra,
):
    """KL(N(z, exp(logvar)) || N(0, I)): summed over dimensions, averaged over cells."""
    if logvar is None:
        raise ValueError("the 'kl' regulariser needs logvar=<(N, d) log-variance tensor>")
    per_cell = 0.5 * (z**2 + logvar.exp() - 1.0 - logvar).sum(dim=1)
    return masked_mean(per_cell, cell_weights(mask, z))


REGULARIZERS = {
    "sw2_uniform": sw2_uniform,
    "sw2_gaussian": sw2_gaussian,
    "sw2_gmm": sw2_gmm,
    "l1": l1,
    "l2": l2,
    "kl": kl,
}
