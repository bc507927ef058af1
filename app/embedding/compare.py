"""Marker genes between two selections, ranked by scanpy on a copy of just those cells."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData

METHODS = ("wilcoxon", "t-test")
COLUMNS = ["group", "names", "scores", "logfoldchanges", "pvals_adj"]
GROUP = "hanami_compare"


def compare_groups(
    adata: AnnData, a: np.ndarray, b: np.ndarray, method: str = "wilcoxon", n_genes: int = 25
) -> pd.DataFrame:
    """Top genes higher in A than B and higher in B than A; cells in both are left out.

    The copy holds only the selected cells, so the user's AnnData (and its uns) is never written.
    """
    if method not in METHODS:
        raise ValueError(f"Method must be one of {', '.join(METHODS)}, not '{method}'.")
    both = np.intersect1d(a, b)
    a, b = np.setdiff1d(a, both), np.setdiff1d(b, both)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"Each group needs 2 or more cells of its own; A has {a.size}, B has {b.size}.")
    cells = np.concatenate([a, b])
    subset = adata[cells].copy()
    subset.obs[GROUP] = pd.Categorical(np.repeat(["A", "B"], [a.size, b.size]), categories=["A", "B"])
    sc.tl.rank_genes_groups(subset, GROUP, method=method, n_genes=n_genes, key_added=GROUP)
    return sc.get.rank_genes_groups_df(subset, group=None, key=GROUP)[COLUMNS]
