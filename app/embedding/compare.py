"""Marker genes between two selections, ranked by scanpy on a copy of just those cells.

Ranks are taken on log-normalised expression: X when it holds such values, else `adata.raw` when
X was scaled (values below zero) and raw keeps the log-normalised genes, as in scanpy's own
pbmc68k_reduced. A fold change of scaled values means nothing, so without such values the table
leaves that column out and says why. Groups larger than `MAX_CELLS_PER_GROUP` are ranked on a
seeded random sample of that size (as Seurat's `max.cells.per.ident`): a Wilcoxon test on a
million cells answers in minutes and its p-values are all zero anyway.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData

from app.data_kind import look_at

METHODS = {"wilcoxon": "Wilcoxon rank-sum", "t-test": "t-test (Welch)"}
MAX_CELLS_PER_GROUP = 20_000
GROUP = "hanami_compare"
# scanpy's column -> what the page calls it
COLUMN_NAMES = {
    "group": "higher in",
    "names": "gene",
    "scores": "score (z or t)",
    "logfoldchanges": "log2 fold change",
    "pvals_adj": "adjusted p-value (Benjamini-Hochberg)",
}
COLUMNS = list(COLUMN_NAMES.values())
SOURCES = {
    "X": "log-normalised expression",
    "raw": "the log-normalised expression kept beside the scaled values (raw)",
    None: ("the scaled values (some are below zero), so no fold change is shown: load log-normalised "
           "values to see one"),
}


@dataclass(frozen=True)
class Comparison:
    """The ranked genes, and the sentence that says what they were ranked on."""

    table: pd.DataFrame
    note: str


def compare_groups(adata: AnnData, a: np.ndarray, b: np.ndarray, method: str = "wilcoxon",
                   n_genes: int = 25, seed: int = 0) -> Comparison:
    """Top genes higher in A than in B and higher in B than in A; cells in both are left out.

    The copy holds only the selected cells and genes' values, so the user's AnnData (and its uns)
    is never written.
    """
    if method not in METHODS:
        raise ValueError(f"The test is one of {', '.join(METHODS)}, not {method}.")
    in_a, in_b = np.zeros(adata.n_obs, dtype=bool), np.zeros(adata.n_obs, dtype=bool)
    in_a[a], in_b[b] = True, True  # masks, not set operations: a million cells in milliseconds
    a, b = np.flatnonzero(in_a & ~in_b), np.flatnonzero(in_b & ~in_a)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"Each selection needs 2 or more cells of its own; A has {a.size:,}, B has {b.size:,}. "
                         "Select larger or non-overlapping groups.")
    rng = np.random.default_rng(seed)
    sampled = [np.sort(rng.choice(g, MAX_CELLS_PER_GROUP, replace=False)) if g.size > MAX_CELLS_PER_GROUP else g
               for g in (a, b)]
    cells = np.concatenate(sampled)
    values, source = _log_expression(adata)
    genes = adata.raw.var_names if source == "raw" else adata.var_names
    subset = AnnData(values[cells], var=pd.DataFrame(index=genes))
    subset.obs[GROUP] = pd.Categorical(np.repeat(["A", "B"], [s.size for s in sampled]), categories=["A", "B"])
    sc.tl.rank_genes_groups(subset, GROUP, method=method, n_genes=n_genes, key_added=GROUP)
    table = sc.get.rank_genes_groups_df(subset, group=None, key=GROUP)[list(COLUMN_NAMES)].rename(columns=COLUMN_NAMES)
    note = f"{METHODS[method]} test on {SOURCES[source]}"
    if source is None:
        table = table.drop(columns=COLUMN_NAMES["logfoldchanges"])
    if any(g.size > MAX_CELLS_PER_GROUP for g in (a, b)):
        note += f"; each group larger than {MAX_CELLS_PER_GROUP:,} cells is ranked on a random {MAX_CELLS_PER_GROUP:,} of them"
    return Comparison(table, note + ".")


def _log_expression(adata: AnnData):
    """(matrix, where it came from): X when it never goes below zero, else raw when that does not;
    scaled X (source None) as a last resort, ranked but without fold changes. Like the Data tab,
    only the first rows are looked at (`app.data_kind.look_at`), so a million cells cost no more."""
    if not look_at(adata.X).negative:
        return adata.X, "X"
    if adata.raw is not None and not look_at(adata.raw.X).negative:
        return adata.raw.X, "raw"
    return adata.X, None
