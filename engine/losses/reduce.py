"""The one reduction every loss and regulariser ends with: a mean over the valid cells.

The mask is applied as weights rather than by boolean indexing, so no step waits on the device
to count cells; with no valid cell the result is an exact 0 that still belongs to the graph.
"""
import torch


def cell_weights(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """A float (N,) weight per cell (1 = use it), or None when every cell is used."""
    if mask is None:
        return None
    if mask.shape != like.shape[:1]:
        raise ValueError(f"mask must have shape ({like.shape[0]},), got {tuple(mask.shape)}")
    return mask.to(device=like.device, dtype=like.dtype)


def masked_mean(per_cell: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of `per_cell` (N,) over cells of weight 1; 0 (still in the graph) if there are none."""
    if weights is None:
        return per_cell.mean() if per_cell.numel() else per_cell.sum() * 0.0
    return (per_cell * weights).sum() / weights.sum().clamp_min(1.0)


def fill_invalid(target: torch.Tensor, weights: torch.Tensor | None, fill) -> torch.Tensor:
    """Replace masked cells' targets by `fill`, so a NaN or -1 there cannot poison gradients."""
    if weights is None:
        return target
    keep = weights.bool().reshape(-1, *([1] * (target.dim() - 1)))
    return torch.where(keep, target, fill)
