"""What a cytometrist reports per sample once cells carry population labels.

Counts or fractions of each population per sample (optionally "among" a parent level, e.g. the
share of CD4 T cells among all T cells), and the mean intensity of each marker per population
and sample. Unknown (NaN) cells count in no population but do count in a sample's total, so
fractions say how much of the sample each population is.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from engine.data.errors import InputError


def population_fractions(labels: pd.Series, samples: pd.Series, among: pd.Series | None = None,
                         counts: bool = False) -> pd.DataFrame:
    """Samples x populations: cell counts (`counts=True`) or fractions of the sample's cells.

    With `among` (each cell's parent level), a population's fraction is taken among the cells of
    its own parent in that sample instead of among all the sample's cells."""
    if len(labels) != len(samples) or (among is not None and len(among) != len(labels)):
        raise InputError("labels, samples and parent levels need one value per cell")
    frame = pd.DataFrame({"population": np.asarray(labels), "sample": np.asarray(samples)})
    table = pd.crosstab(frame["sample"], frame["population"], dropna=True)
    if isinstance(labels.dtype, pd.CategoricalDtype):
        table = table.reindex(columns=labels.cat.categories, fill_value=0)
    table.columns.name = "population"
    if counts:
        return table
    if among is None:
        totals = pd.Series(np.asarray(samples)).value_counts().reindex(table.index)
        return table.div(totals.to_numpy(), axis=0)
    parent_of = pd.Series(np.asarray(among), index=np.asarray(labels)).dropna()
    parent_of = parent_of[~parent_of.index.isna()].groupby(level=0).first()
    parents = pd.crosstab(np.asarray(samples), np.asarray(among))
    denominators = pd.DataFrame(
        {p: parents[parent_of[p]].reindex(table.index).to_numpy() if p in parent_of.index else np.nan
         for p in table.columns},
        index=table.index,
    )
    return table / denominators.replace(0, np.nan)


def mean_intensities(adata: AnnData, labels: pd.Series, samples: pd.Series, markers: list[str] | None = None,
                     layer: str | None = None) -> pd.DataFrame:
    """Mean marker value per (sample, population): rows a MultiIndex, columns the markers."""
    markers = list(adata.var_names) if markers is None else list(markers)
    missing = [m for m in markers if m not in adata.var_names]
    if missing:
        raise InputError(f"markers not in the data: {', '.join(missing)}")
    matrix = adata.layers[layer] if layer is not None else adata.X
    values = matrix[:, adata.var_names.get_indexer(markers)]
    values = values.toarray() if sp.issparse(values) else np.asarray(values)
    frame = pd.DataFrame(values, columns=markers)
    frame["sample"], frame["population"] = np.asarray(samples), np.asarray(labels)
    return frame.dropna(subset=["population"]).groupby(["sample", "population"], observed=True)[markers].mean()
