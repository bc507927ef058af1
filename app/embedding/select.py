"""Box and lasso selections resolved to cells with vectorised geometry, never per cell."""
from __future__ import annotations

import numpy as np
import shapely


def in_box(x: np.ndarray, y: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Mask of the points inside the box, edges included, whichever corners were given."""
    (left, right), (bottom, top) = sorted((x0, x1)), sorted((y0, y1))
    return (x >= left) & (x <= right) & (y >= bottom) & (y <= top)


def in_polygon(x: np.ndarray, y: np.ndarray, xs, ys) -> np.ndarray:
    """Mask of the points inside the lasso; only points in its bounding box reach shapely.

    A lasso that crosses itself is made valid first, so every enclosed loop counts.
    """
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if xs.size < 3:
        return np.zeros(x.shape, dtype=bool)
    polygon = shapely.make_valid(shapely.Polygon(np.column_stack([xs, ys])))
    shapely.prepare(polygon)
    mask = in_box(x, y, xs.min(), ys.min(), xs.max(), ys.max())
    candidates = np.flatnonzero(mask)
    mask[candidates] = shapely.contains_xy(polygon, x[candidates], y[candidates])
    return mask
