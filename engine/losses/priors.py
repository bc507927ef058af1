"""Where the label-paired gaussian mixture prior puts its components.

Component k is a unit-variance gaussian around a fixed mean; every pair of means is exactly
`separation` (4 by default) standard deviations apart, so classes are separable in the prior and
a cell pulled to its own component is far from every other one. The means depend only on
(n_labels, dim, separation), never on a batch, so they stay put across steps and runs.
"""
import math
from functools import lru_cache
from itertools import product

import torch


@lru_cache(maxsize=64)
def _means(n_labels: int, dim: int, separation: float) -> torch.Tensor:
    if n_labels <= dim + 1:
        # Centred regular simplex: column k of the Helmert basis of the sum-zero hyperplane is
        # vertex k of a simplex with unit-sqrt(2) edges, in n_labels - 1 coordinates.
        helmert = torch.zeros(n_labels, max(n_labels - 1, 0), dtype=torch.float64)
        for j in range(1, n_labels):
            helmert[:j, j - 1] = 1.0 / math.sqrt(j * (j + 1))
            helmert[j, j - 1] = -j / math.sqrt(j * (j + 1))
        vertices = helmert * (separation / math.sqrt(2.0))
    else:
        # More labels than a simplex can hold: the first points of a cubic grid with spacing
        # `separation`, centred.
        side = math.ceil(n_labels ** (1.0 / dim))
        grid = torch.tensor(list(product(range(side), repeat=dim))[:n_labels], dtype=torch.float64)
        vertices = (grid - grid.mean(dim=0)) * separation
    out = torch.zeros(n_labels, dim, dtype=torch.float64)
    out[:, : vertices.shape[1]] = vertices
    return out


def mixture_means(
    n_labels: int, dim: int, separation: float = 4.0, *, device=None, dtype=torch.float32
) -> torch.Tensor:
    """The (n_labels, dim) component means, pairwise `separation` apart (see module docstring)."""
    if n_labels < 1 or dim < 1:
        raise ValueError(f"a mixture prior needs n_labels >= 1 and dim >= 1, got {n_labels}, {dim}")
    return _means(int(n_labels), int(dim), float(separation)).to(device=device, dtype=dtype)
