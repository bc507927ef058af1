"""What kind of values the loaded cells hold, so the Data tab offers only the preprocessing that fits.

RNA preprocessing needs raw counts (whole numbers, none negative), in X or in a `counts` layer
(`engine.preprocess.rna` reads that layer first). Like the engine, only the first rows are looked
at, so a million cells cost no more than ten thousand.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from anndata import AnnData
from scipy import sparse

from engine.data.preprocess import INTEGER_CHECK_ROWS

COUNTS_LAYER = "counts"


@dataclass(frozen=True)
class Values:
    """Whether a matrix looks like raw counts, and if not, why (in words)."""

    counts: bool
    negative: bool = False
    fractional: bool = False

    @property
    def why_not(self) -> str:
        """'some are negative and some have decimals' (empty for counts)."""
        reasons = [text for flag, text in ((self.negative, "some are negative"),
                                           (self.fractional, "some have decimals")) if flag]
        return " and ".join(reasons)


def look_at(matrix) -> Values:
    """Raw counts or not, from the matrix's first rows (no densifying of a sparse matrix)."""
    if matrix is None:
        return Values(False)
    head = matrix[:INTEGER_CHECK_ROWS]
    values = head.data if sparse.issparse(head) else np.asarray(head)
    values = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
    if not np.issubdtype(values.dtype, np.number) or values.size == 0:
        return Values(False)
    negative = bool((values < 0).any())
    fractional = bool(np.issubdtype(values.dtype, np.floating) and np.any(values != np.round(values)))
    return Values(not (negative or fractional), negative, fractional)


def rna_counts_where(adata: AnnData | None) -> tuple[str | None, str]:
    """(where the raw counts are: 'counts layer', 'X' or None, a sentence on why RNA preprocessing is not offered)."""
    if adata is None:
        return None, "Load cells first."
    if COUNTS_LAYER in adata.layers and look_at(adata.layers[COUNTS_LAYER]).counts:
        return "counts layer", ""
    x = look_at(adata.X)
    if x.counts:
        return "X", ""
    why = f" ({x.why_not})" if x.why_not else ""
    return None, ("RNA counts preprocessing is not offered: the values are not raw counts"
                  f"{why}, so they look already normalised, log-transformed or scaled, and there is no counts "
                  "layer. Keep them as loaded, or load the raw counts to preprocess them here.")
