"""A first look at an AnnData: shape, storage and what each obs column holds.

The studio shows this before anything else, so it must stay fast on a million cells: every
count is one vectorised pass, and sparse X is never densified. Data built in memory may hold NaN
or infinite values that no reader checked: they are reported in ``non_finite`` and left out of
the per-cell numbers, so the summary (and its histograms) still works and says what is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from engine.data.errors import InputError
from engine.data.finite import find_non_finite

TOP_CATEGORIES = 20


@dataclass(frozen=True)
class ColumnSummary:
    """One obs column: its kind, its most frequent values and how many cells lack a value.

    ``n_categories`` is None for continuous columns; for categorical columns it counts the
    declared categories (unused ones included, with a count of 0).
    """

    name: str
    kind: str  # "categorical", "continuous", "text" or "boolean"
    n_categories: int | None
    top_categories: tuple[tuple[str, int], ...]
    n_missing: int


@dataclass(frozen=True)
class DataSummary:
    """What the studio shows first about a data set; per-cell arrays feed the QC histograms."""

    n_cells: int
    n_genes: int
    sparse: bool
    dtype: str
    columns: tuple[ColumnSummary, ...]
    cell_totals: np.ndarray  # sum of X per cell (float64)
    cell_features: np.ndarray  # number of non-zero features per cell (int64)
    non_finite: str | None = None  # where X holds NaN or infinity, in words; None when it does not


def summarize(adata: AnnData) -> DataSummary:
    """Summarise ``adata`` without modifying it."""
    if adata.X is None:
        raise InputError("the AnnData has no X matrix: load expression or marker values first")
    found = find_non_finite(adata.X, adata.obs_names, adata.var_names)
    totals, features = _per_cell(adata.X if found is None else _finite_only(adata.X))
    return DataSummary(
        n_cells=adata.n_obs,
        n_genes=adata.n_vars,
        sparse=sparse.issparse(adata.X),
        dtype=str(adata.X.dtype),
        columns=annotation_columns(adata.obs),
        cell_totals=totals,
        cell_features=features,
        non_finite=None if found is None else (
            f"{found.describe('gene')}; they are left out of the per-cell sums. Remove or replace "
            "them (for example with 0) before preprocessing or training."
        ),
    )


def annotation_columns(obs: pd.DataFrame) -> tuple[ColumnSummary, ...]:
    """One summary per obs column: all that changes when labels are added, X staying as it was."""
    return tuple(_column(name, obs[name]) for name in obs.columns)


def _finite_only(X):
    """A copy of X with its NaN and infinite values set to 0 (taken only when some exist)."""
    if sparse.issparse(X):
        X = X.copy()
        X.data[~np.isfinite(X.data)] = 0
        return X
    X = np.asarray(X)
    return np.where(np.isfinite(X), X, 0)


def _per_cell(X) -> tuple[np.ndarray, np.ndarray]:
    """Row sums and non-zero counts; stored zeros in a sparse matrix are not counted.

    AnnData only holds CSR or CSC, so those are the two sparse layouts handled.
    """
    if sparse.issparse(X):
        totals = np.asarray(X.sum(axis=1, dtype=np.float64)).ravel()
        nonzero = X.data != 0
        if X.format == "csr":
            running = np.concatenate(([0], np.cumsum(nonzero, dtype=np.int64)))
            features = running[X.indptr[1:]] - running[X.indptr[:-1]]
        else:
            features = np.bincount(X.indices[nonzero], minlength=X.shape[0]).astype(np.int64)
        return totals, features
    X = np.asarray(X)
    return X.sum(axis=1, dtype=np.float64), np.count_nonzero(X, axis=1).astype(np.int64)


def _column(name: str, values: pd.Series) -> ColumnSummary:
    """Classify one obs column and count its values."""
    n_missing = int(values.isna().sum())
    kind = _kind(values)
    if kind == "continuous":
        return ColumnSummary(str(name), kind, None, (), n_missing)
    if kind == "categorical":
        labels = values.cat.categories.astype(str).to_numpy()
        codes = values.cat.codes.to_numpy()
        counts = np.bincount(codes[codes >= 0], minlength=len(labels))
    else:
        present = values.dropna()
        tally = (present if kind == "text" else present.astype(bool)).value_counts(sort=False)
        labels, counts = tally.index.astype(str).to_numpy(), tally.to_numpy()
    order = np.argsort(-counts, kind="stable")[:TOP_CATEGORIES]
    top = tuple((str(labels[i]), int(counts[i])) for i in order)
    return ColumnSummary(str(name), kind, len(labels), top, n_missing)


def _kind(values: pd.Series) -> str:
    """Booleans first (numpy bool is numeric to pandas); object columns of only True/False too."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype):
        return "continuous"
    if pd.api.types.infer_dtype(values, skipna=True) == "boolean":
        return "boolean"
    return "text"
