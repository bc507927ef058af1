"""The Populations view's pieces that need no widget: marker axes, mean tables, heatmaps, wording."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

MARKERS_KEY = "X_flow_markers"  # obsm: the table's markers as measured, so two of them can be the axes
HEATMAP_HEIGHT = 320
NO_VALUE = "#d9d9d9"  # a population without cells: grey, never a colour of the scale


def marker_values(adata: AnnData, markers: list[str]) -> np.ndarray:
    """(cells, markers) float32 of X, densified for these columns only."""
    values = adata.X[:, adata.var_names.get_indexer(markers)]
    return np.asarray(values.toarray() if sparse.issparse(values) else values, dtype=np.float32)


def mean_by_population(values: np.ndarray, labels: pd.Series, markers: list[str]) -> pd.DataFrame:
    """Populations x markers: the mean of each column over the cells of each population (unknown left out)."""
    frame = pd.DataFrame(values, columns=markers)
    frame["population"] = np.asarray(labels)
    means = frame.dropna(subset=["population"]).groupby("population", observed=False)[markers].mean()
    if isinstance(labels.dtype, pd.CategoricalDtype):
        means = means.reindex(labels.cat.categories)
    return means


def heatmap(table: pd.DataFrame, value: str, cmap: str = "viridis", title: str = "") -> hv.HeatMap:
    """A populations (rows, top to bottom in table order) x markers heatmap with a hover of the value."""
    populations = [str(p) for p in table.index]
    markers = [str(m) for m in table.columns]
    long = pd.DataFrame({
        "marker": np.tile(markers, len(populations)),
        "population": np.repeat(populations, len(markers)),
        value: table.to_numpy(dtype=float).ravel(),
    })
    return hv.HeatMap(long, kdims=[hv.Dimension("marker"), hv.Dimension("population")], vdims=[value]).opts(
        cmap=cmap, colorbar=True, tools=["hover"], xrotation=45, responsive=True, height=HEATMAP_HEIGHT,
        invert_yaxis=True, title=title, toolbar=None, default_tools=[], clipping_colors={"NaN": NO_VALUE},
    ).redim.values(marker=markers, population=populations)


def unknown_line(labels: pd.Series, threshold: float) -> str:
    """'N cells unknown' with the share and the threshold, as plain text."""
    unknown, total = int(labels.isna().sum()), len(labels)
    share = f" ({unknown / total:.1%} of {total:,})" if total else ""
    return f"{unknown:,} {'cell' if unknown == 1 else 'cells'} unknown{share} at threshold {threshold:g}"


def selection_line(labels: pd.Series, cells: np.ndarray) -> str:
    """What the explained cells were labelled: '412 cells: Pop3 380, Pop1 20, unknown 12'."""
    chosen = labels.iloc[cells]
    counts = chosen.value_counts(dropna=False)
    parts = [f"{'unknown' if pd.isna(name) else name} {count:,}" for name, count in counts.items() if count]
    return f"{len(chosen):,} cells: " + ", ".join(parts[:6]) + (" and more" if len(parts) > 6 else "")
