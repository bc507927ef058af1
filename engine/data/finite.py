"""Finding NaN and infinite values in a cells x features matrix, and saying where they are.

Every consumer of expression values (readers, preprocessing, training, the summary) calls this one
check, so a NaN is reported the same way wherever it first shows up instead of surfacing later as
a confusing failure (a binning error, a diverging loss, a crashing histogram). It is vectorised and
reads a dense matrix in row blocks and a sparse one through its stored values only, so a
million-cell matrix is checked without a copy of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from engine.data.errors import InputError

_BLOCK = 1 << 22  # values examined at once: bounds the temporary mask to a few MB


@dataclass(frozen=True)
class NonFinite:
    """Where the non-finite values are: how many, in how many cells, and the first one."""

    count: int
    cells: int
    cell: str
    feature: str
    value: float

    def describe(self, feature_word: str = "feature") -> str:
        """'cell c3, gene CD3E holds NaN (not a number); 12 values in 3 cells are not finite'."""
        if np.isnan(self.value):
            what = "NaN (not a number)"
        else:
            what = "an infinite value" if self.value > 0 else "a minus-infinite value"
        values = "1 value" if self.count == 1 else f"{self.count:,} values"
        cells = "1 cell" if self.cells == 1 else f"{self.cells:,} cells"
        verb = "is" if self.count == 1 else "are"
        return f"cell {self.cell}, {feature_word} {self.feature} holds {what}; {values} in {cells} {verb} not finite"


def find_non_finite(matrix, obs_names, var_names) -> NonFinite | None:
    """The non-finite values of `matrix` (cells x features), or None when every value is finite."""
    if matrix is None or np.dtype(matrix.dtype).kind not in "fc":
        return None  # integers and booleans cannot hold NaN or infinity
    if sp.issparse(matrix):
        found = _sparse(matrix)
    else:
        found = _dense(np.asarray(matrix))
    if found is None:
        return None
    count, cells, row, col, value = found
    return NonFinite(int(count), int(cells), str(obs_names[row]), str(var_names[col]), float(np.real(value)))


def require_finite(matrix, obs_names, var_names, *, where: str, feature_word: str = "feature",
                   then: str = "and try again") -> None:
    """Raise InputError naming the first non-finite value, how many there are and what to do."""
    found = find_non_finite(matrix, obs_names, var_names)
    if found is not None:
        raise InputError(
            f"{where}: {found.describe(feature_word)}. Remove or replace them (for example with 0) {then}."
        )


def _dense(x: np.ndarray):
    rows = max(1, _BLOCK // max(1, x.shape[1]))
    count = cells = 0
    first = None
    for start in range(0, x.shape[0], rows):
        bad = ~np.isfinite(x[start : start + rows])
        if not bad.any():
            continue
        count += int(bad.sum())
        cells += int(bad.any(axis=1).sum())
        if first is None:
            i, j = np.argwhere(bad)[0]
            first = (start + i, j)
    if first is None:
        return None
    return count, cells, first[0], first[1], x[first]


def _sparse(matrix):
    if matrix.format not in ("csr", "csc"):
        matrix = matrix.tocsr()
    data = matrix.data
    positions = []
    for start in range(0, data.shape[0], _BLOCK):
        bad = ~np.isfinite(data[start : start + _BLOCK])
        if bad.any():
            positions.append(start + np.flatnonzero(bad))
    if not positions:
        return None
    where = np.concatenate(positions)
    # The compressed axis of each stored value comes from indptr; the other axis from indices.
    major = np.searchsorted(matrix.indptr, where, side="right") - 1
    minor = matrix.indices[where]
    rows, cols = (major, minor) if matrix.format == "csr" else (minor, major)
    first_row = rows.min()
    in_first = rows == first_row
    first_col = cols[in_first].min()
    value = data[where[in_first][cols[in_first] == first_col][0]]
    return where.shape[0], np.unique(rows).shape[0], first_row, first_col, value
