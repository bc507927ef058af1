"""The Integrate view's pieces that need no widget: the "before" PCA, the 2-D layouts, the metrics
before and after, the datashaded pictures and their legends.

Everything here takes arrays (copied out of the session's cells on the event loop), so a caller
can run it in a worker thread without touching an object the page shares.
"""
from __future__ import annotations

from dataclasses import dataclass

import holoviews as hv
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

from app.embedding.coloring import Coloring
from app.embedding.coords import umap_layout
from app.embedding.shade import axes, points_element, points_frame, shaded
from app.escape import html_text
from engine.metrics import integration_metrics

PCA_COMPONENTS = 50
LAYOUTS = {"UMAP": "umap", "first two components": "components"}
PLOT_HEIGHT = 380
# How each layout is named under its picture: (before, after).
LAYOUT_WORDS = {
    "umap": ("UMAP of the expression's principal components (PCA)", "UMAP of the model's integrated latent"),
    "components": ("principal components 1 and 2 of the expression (PCA)", "first two principal components "
                   "of the model's integrated latent"),
}


@dataclass(frozen=True)
class Comparison:
    """What the view shows: 2-D positions before and after, and the metrics table (None: no label)."""

    before: np.ndarray
    after: np.ndarray
    layout: str
    metrics: pd.DataFrame | None


def expression_pca(X, n_comps: int = PCA_COMPONENTS) -> np.ndarray:
    """(cells, n) float32 principal components of the (log-normalised) expression, the usual
    "before integration" view; n is at most 50 and below the number of cells and genes."""
    matrix = X.astype(np.float32) if sparse.issparse(X) else np.asarray(X, dtype=np.float32)
    n = int(min(n_comps, matrix.shape[0] - 1, matrix.shape[1] - 1))
    if n < 2:
        raise ValueError(f"A PCA needs at least 3 cells and 3 genes; these cells are {matrix.shape[0]} x "
                         f"{matrix.shape[1]}.")
    return np.asarray(sc.pp.pca(matrix, n_comps=n, random_state=0), dtype=np.float32)


def first_components(rep: np.ndarray) -> np.ndarray:
    """The first two principal components of a representation (the latent is not ordered by variance)."""
    rep = np.asarray(rep, dtype=np.float32)
    if rep.shape[1] <= 2:
        return rep[:, :2].copy()
    centred = rep - rep.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:2].T).astype(np.float32)


def layout_of(rep: np.ndarray, layout: str) -> np.ndarray:
    """(cells, 2) positions of a representation: its UMAP, or its first two principal components."""
    if layout == "umap":
        return umap_layout(rep)
    if layout == "components":
        return first_components(rep)
    raise ValueError(f"An embedding is laid out by one of {', '.join(LAYOUTS.values())}, not {layout}.")


def metrics_before_after(before: np.ndarray, after: np.ndarray, systems, labels) -> pd.DataFrame:
    """One row per metric: kind, its value on the PCA (before) and on the latent (after), its meaning."""
    first = integration_metrics(before, systems, labels)
    second = integration_metrics(after, systems, labels)
    return pd.DataFrame({
        "metric": first["metric"],
        "kind": first["kind"],
        "before (PCA)": first["value"].round(3),
        "after (integrated)": second.set_index("metric").loc[first["metric"], "value"].round(3).to_numpy(),
        "meaning": first["meaning"],
    })


def compare(pca: np.ndarray, latent: np.ndarray, layout: str, systems, labels) -> Comparison:
    """Both layouts and, given labels, the metrics table: the whole slow part of the view."""
    metrics = None if labels is None else metrics_before_after(pca, latent, systems, labels)
    return Comparison(layout_of(pca, layout), layout_of(latent, layout), layout, metrics)


def picture(xy: np.ndarray, coloring: Coloring, title: str) -> hv.DynamicMap:
    """The cells at `xy`, datashaded by category counts (or a mean for a numeric column)."""
    frame = points_frame(xy, coloring)
    image = shaded(points_element(frame, axes(frame)), coloring)
    return image.opts(responsive=True, height=PLOT_HEIGHT, title=title, xaxis=None, yaxis=None,
                      toolbar="above", default_tools=["pan", "wheel_zoom", "reset"])


def legend_html(coloring: Coloring, limit: int = 30) -> str:
    """Coloured squares with each category's name and count (the pictures carry no legend)."""
    if not coloring.categorical:
        return f"<small>coloured by {html_text(coloring.name)} (mean per pixel)</small>"
    rows = coloring.counts()
    items = [f'<span style="white-space: nowrap; margin-right: 12px"><span style="display: inline-block; width: 10px; '
             f'height: 10px; background: {html_text(color)}; margin-right: 4px"></span>{html_text(category)} '
             f'<span style="color: #777">{cells:,}</span></span>'
             for category, color, cells in rows.head(limit).itertuples(index=False)]
    more = f" <small>and {len(rows) - limit} more</small>" if len(rows) > limit else ""
    return f"<div class=\"hanami-integration-legend-items\">{' '.join(items)}{more}</div>"
