"""The shaded picture keeps the data's values: what the colour bar shows is what the cells hold."""
import numpy as np
import pytest
import scanpy as sc

from app.embedding.coloring import color_values
from app.embedding.shade import axes, points_element, points_frame, shaded


@pytest.fixture(scope="module")
def pbmc():
    return sc.datasets.pbmc68k_reduced()


@pytest.mark.parametrize("gene", ["LYZ", "CST3"])
def test_the_colour_bar_spans_no_more_than_the_genes_values(pbmc, gene):
    """Keeping isolated cells visible spreads a pixel's value to its neighbours; it must never add
    neighbouring means together (LYZ ranges -0.69 to 3.49, and the bar once showed -2.7 to 5.8)."""
    coloring = color_values(pbmc, "gene", gene, "X_umap")
    frame = points_frame(pbmc.obsm["X_umap"], coloring)
    image = shaded(points_element(frame, axes(frame)), coloring, dynamic=False, width=400, height=300)
    shown = image.dimension_values(2)
    low, high = float(coloring.values.min()), float(coloring.values.max())
    assert low - 1e-5 <= np.nanmin(shown) and np.nanmax(shown) <= high + 1e-5
    assert np.isfinite(shown).sum() > 700 / 4  # spread: isolated cells still cover more than their pixel
