"""Gradient reversal and neutralisation: ways to let a head learn from a latent without (or
against) shaping it.

Reversal trains the encoder to *remove* what a head can read (e.g. a batch effect) while the
head still learns to read it. Neutralisation lets the head learn while the encoder ignores it.
"""
import torch


class _GradReverse(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by -alpha."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha) -> torch.Tensor:
        ctx.alpha = alpha.detach() if isinstance(alpha, torch.Tensor) else float(alpha)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * (-ctx.alpha), None


def grad_reverse(x: torch.Tensor, alpha: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Return `x` unchanged; its gradient is scaled by `-alpha` on the way back.

    `alpha` is read at call time (a float or 0-dim tensor), so a schedule can change it every step
    without rebuilding any module.
    """
    return _GradReverse.apply(x, alpha)


def grad_neutralize(x: torch.Tensor) -> torch.Tensor:
    """Return `x` cut from the graph: whatever reads it learns, whatever made it does not.

    A named helper (rather than a bare `.detach()`) so controllers say what they mean; it always
    returns a tensor.
    """
    return x.detach()
