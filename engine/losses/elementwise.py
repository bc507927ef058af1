"""Losses between a prediction and a target, one value per cell, averaged over the valid cells.

Every loss averages over its last dimension (genes, classes) before averaging over cells, so a
term's size does not grow with the panel and weights stay comparable between terms. Signature:
`fn(pred, target, mask=None, **extra) -> 0-dim tensor`; `mask` is bool (N,), True = use the cell.
"""
import torch
import torch.nn.functional as F

from engine.losses.reduce import cell_weights, fill_invalid, masked_mean


def _like_pred(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Accept (N,) targets for (N, 1) predictions (a continuous phenotype) and vice versa."""
    if target.shape != pred.shape and target.numel() == pred.numel():
        target = target.reshape(pred.shape)
    return target.to(pred.dtype)


def _per_cell(values: torch.Tensor) -> torch.Tensor:
    return values.reshape(values.shape[0], -1).mean(dim=1)


def mse(pred, target, mask=None, **extra):
    """Mean squared error: mean over genes, then over cells."""
    w = cell_weights(mask, pred)
    target = fill_invalid(_like_pred(pred, target), w, pred.detach())
    return masked_mean(_per_cell((pred - target) ** 2), w)


def l1(pred, target, mask=None, **extra):
    """Mean absolute error: mean over genes, then over cells."""
    w = cell_weights(mask, pred)
    target = fill_invalid(_like_pred(pred, target), w, pred.detach())
    return masked_mean(_per_cell((pred - target).abs()), w)


def cosine(pred, target, mask=None, **extra):
    """1 - cosine similarity of each cell's prediction and target, averaged over cells."""
    w = cell_weights(mask, pred)
    target = fill_invalid(_like_pred(pred, target), w, pred.detach())
    return masked_mean(1.0 - F.cosine_similarity(pred, target, dim=-1, eps=1e-8), w)


def nll(pred, target, mask=None, **extra):
    """Cross-entropy of logits `pred` (N, K) against class codes `target` (N,); -1 = unknown."""
    w = cell_weights(mask, pred)
    codes = fill_invalid(target.long(), w, 0).clamp(0, pred.shape[-1] - 1)
    return masked_mean(F.cross_entropy(pred, codes, reduction="none"), w)


def bce(pred, target, mask=None, **extra):
    """Binary cross-entropy with logits, mean over the K outputs, then over cells.

    `target` is float (N, K) in [0, 1] or integer class codes (N,) that are one-hot encoded to K.
    """
    w = cell_weights(mask, pred)
    if target.dtype.is_floating_point:
        target = fill_invalid(_like_pred(pred, target), w, 0.0)
    else:
        codes = fill_invalid(target.long(), w, 0).clamp(0, pred.shape[-1] - 1)
        target = F.one_hot(codes, pred.shape[-1]).to(pred.dtype)
    return masked_mean(
        _per_cell(F.binary_cross_entropy_with_logits(pred, target, reduction="none")), w
    )


def nb(pred, target, mask=None, *, log_theta=None, eps: float = 1e-8, **extra):
    """Negative binomial negative log-likelihood of counts `target` given mean `pred` (N, G).

    `log_theta` (G,) is the log inverse-dispersion: variance = mu + mu^2 / theta. Written with
    lgamma and logaddexp so that large counts and tiny means stay finite. Mean over genes, then
    over cells.
    """
    if log_theta is None:
        raise ValueError("the 'nb' loss needs log_theta=<(G,) log inverse-dispersion tensor>")
    w = cell_weights(mask, pred)
    x = fill_invalid(_like_pred(pred, target), w, 0.0)
    theta = log_theta.exp()
    log_mu = torch.log(pred + eps)
    log_theta_mu = torch.logaddexp(log_theta, log_mu)
    log_prob = (
        theta * (log_theta - log_theta_mu)
        + x * (log_mu - log_theta_mu)
        + torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1.0)
    )
    return masked_mean(_per_cell(-log_prob), w)


LOSSES = {"mse": mse, "l1": l1, "cosine": cosine, "nll": nll, "bce": bce, "nb": nb}
