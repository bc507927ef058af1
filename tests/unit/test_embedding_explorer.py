"""EmbeddingExplorer driven through its public methods on pbmc68k_reduced, without a browser."""
import asyncio
import io

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from matplotlib.path import Path
from PIL import Image

from app.components.embedding_explorer import DEFAULT_COLUMN, EmbeddingExplorer
from app.state import StudioState
from in_a_thread import in_a_thread
from test_escape_helpers import shown

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pbmc():
    return sc.datasets.pbmc68k_reduced()


@pytest.fixture
def explorer(pbmc):
    state = StudioState()
    state.load(pbmc.copy(), "pbmc68k_reduced")
    return EmbeddingExplorer(state)


def _xy(explorer):
    """The drawn positions: obsm values as float32, which selections are resolved against."""
    return explorer.frame[["x", "y"]].to_numpy()


def _alert(explorer) -> str:
    assert explorer.alert.visible and explorer.alert.alert_type == "danger"
    return shown(explorer.alert)


def test_opens_on_x_umap_and_builds_a_bokeh_plot_with_selection_tools(explorer):
    assert (explorer.key, explorer.mode, explorer.dims) == ("X_umap", "dimensions", (0, 1))
    assert not explorer.alert.visible
    plot = hv.renderer("bokeh").get_plot(explorer.plot)
    tools = {type(tool).__name__ for tool in plot.state.toolbar.tools}
    assert {"BoxSelectTool", "LassoSelectTool", "WheelZoomTool"} <= tools


def test_set_view_dimensions(explorer):
    explorer.set_view("X_umap", mode="dimensions", dims=(0, 1))
    np.testing.assert_allclose(_xy(explorer), explorer.state.adata.obsm["X_umap"], rtol=1e-6)
    explorer.set_view("X_pca", dims=(2, 5))
    pca = explorer.state.adata.obsm["X_pca"]
    np.testing.assert_allclose(explorer.frame["x"], pca[:, 2])
    np.testing.assert_allclose(explorer.frame["y"], pca[:, 5])


def test_set_view_umap_is_cached_in_obsm_and_leaves_x_umap_alone(explorer):
    adata, version = explorer.state.adata, explorer.state.obs_version
    before = adata.obsm["X_umap"].copy()
    explorer.set_view("X_pca", mode="umap")
    assert adata.obsm["X_pca_umap"].shape == (700, 2)
    np.testing.assert_array_equal(adata.obsm["X_umap"], before)
    np.testing.assert_array_equal(explorer.frame[["x", "y"]].to_numpy(), adata.obsm["X_pca_umap"])
    assert explorer.state.obs_version == version + 1


def test_color_by_obs_lists_every_category_with_counts(explorer):
    explorer.color_by("obs", "bulk_labels")
    entries = explorer.legend.entries
    counts = explorer.state.adata.obs["bulk_labels"].value_counts()
    assert len(entries) == 10 and entries["cells"].sum() == 700
    assert dict(zip(entries["category"], entries["cells"])) == counts.to_dict()
    assert entries["color"].tolist() == list(explorer.state.adata.uns["bulk_labels_colors"])
    assert explorer.legend.visible


def test_color_by_gene_uses_that_column_of_x(explorer):
    explorer.color_by("gene", "CST3")
    adata = explorer.state.adata
    np.testing.assert_allclose(explorer.frame["value"], adata[:, "CST3"].X.ravel())
    assert not explorer.legend.visible
    hv.renderer("bokeh").get_plot(explorer.plot)


def test_color_by_latent_dimension(explorer):
    explorer.color_by("latent", "X_pca:3")
    np.testing.assert_allclose(explorer.frame["value"], explorer.state.adata.obsm["X_pca"][:, 3])
    explorer.color_by("latent", 1)
    np.testing.assert_allclose(explorer.frame["value"], explorer.state.adata.obsm["X_umap"][:, 1], rtol=1e-6)


def test_hidden_categories_are_filtered_before_shading_and_selection(explorer):
    explorer.color_by("obs", "bulk_labels")
    explorer.legend.hidden = ["Dendritic", "CD19+ B"]
    assert len(explorer.frame) == 700 - 240 - 95
    assert not explorer.frame["label"].isin(["Dendritic", "CD19+ B"]).any()
    cells = explorer.select_box(-100, -100, 100, 100)
    labels = explorer.state.adata.obs["bulk_labels"].to_numpy()[cells]
    assert cells.size == 700 - 240 - 95 and not np.isin(labels, ["Dendritic", "CD19+ B"]).any()
    explorer.legend.hidden = explorer.legend.entries["category"].tolist()
    assert len(explorer.frame) == 0
    hv.renderer("bokeh").get_plot(explorer.plot)


def test_select_box_returns_exactly_the_cells_inside(explorer):
    x, y = _xy(explorer).T
    cells = explorer.select_box(-2.0, 0.0, -8.0, -8.0)  # corners in any order
    expected = np.flatnonzero((x >= -8) & (x <= -2) & (y >= -8) & (y <= 0))
    assert 0 < cells.size < 700
    np.testing.assert_array_equal(cells, expected)


def test_select_lasso_matches_matplotlib_path(explorer):
    xy = _xy(explorer)
    xs, ys = [-10.0, 0.0, -5.0], [-8.0, -8.0, 6.0]
    cells = explorer.select_lasso(xs, ys)
    expected = np.flatnonzero(Path(np.column_stack([xs, ys])).contains_points(xy))
    assert 0 < cells.size < 700
    np.testing.assert_array_equal(cells, expected)


def test_plot_streams_resolve_selections(explorer):
    explorer._box.event(bounds=(-8.0, -8.0, -2.0, 0.0))
    explorer._lasso.event(geometry=np.array([[-10.0, -8.0], [0.0, -8.0], [-5.0, 6.0]]))
    (a, _), (b, _) = explorer.selections
    np.testing.assert_array_equal(a, explorer.select_box(-8.0, -8.0, -2.0, 0.0))
    np.testing.assert_array_equal(b, explorer.select_lasso([-10.0, 0.0, -5.0], [-8.0, -8.0, 6.0]))


def test_add_label_writes_a_categorical_column_and_bumps_obs_version(explorer):
    state = explorer.state
    first = explorer.select_box(-100, -100, 0, 100)
    explorer.add_label("left")
    second = explorer.select_box(5, -100, 100, 100)
    version = state.obs_version
    explorer.add_label("  right ", DEFAULT_COLUMN)
    assert state.obs_version == version + 1
    column = state.adata.obs[DEFAULT_COLUMN]
    assert isinstance(column.dtype, pd.CategoricalDtype)
    assert list(column.cat.categories) == ["left", "right"]
    assert (column.iloc[first] == "left").all() and (column.iloc[second] == "right").all()
    untouched = np.setdiff1d(np.arange(700), np.concatenate([first, second]))
    assert column.iloc[untouched].isna().all()
    assert explorer.alert.alert_type == "success"


def test_labels_show_up_in_the_legend_when_coloured_by_that_column(explorer):
    explorer.select_box(-100, -100, 0, 100)
    explorer.add_label("left")
    explorer.color_by("obs", DEFAULT_COLUMN)
    assert explorer.legend.entries["category"].tolist() == ["left", "n/a"]
    explorer.select_box(5, -100, 100, 100)
    explorer.add_label("right")
    assert explorer.legend.entries["category"].tolist() == ["left", "right", "n/a"]


def test_compare_ranks_genes_between_a_and_b(explorer):
    labels = explorer.state.adata.obs["bulk_labels"]
    explorer.color_by("obs", "bulk_labels")
    explorer.legend.hidden = [c for c in labels.cat.categories if c != "CD14+ Monocyte"]
    a = explorer.select_box(-100, -100, 100, 100)
    explorer.legend.hidden = [c for c in labels.cat.categories if c != "CD19+ B"]
    b = explorer.select_box(-100, -100, 100, 100)
    assert (a.size, b.size) == (129, 95)
    table = explorer.compare()
    assert list(table.columns) == ["higher in", "gene", "score (z or t)", "log2 fold change",
                                   "adjusted p-value (Benjamini-Hochberg)"]
    assert set(table["higher in"]) == {"A", "B"} and len(table) == 50
    assert table["gene"].isin(explorer.state.adata.var_names).all()
    assert "CST3" in set(table.loc[table["higher in"] == "A", "gene"])  # a monocyte marker
    assert explorer.results.visible and len(explorer.results.value) == 50
    # X of the demo is scaled (below zero): fold changes come from the log-normalised genes in raw
    assert table["log2 fold change"].notna().all() and "raw" in explorer._results_note.object


def test_compare_of_scaled_values_without_raw_leaves_fold_changes_out(explorer):
    explorer.state.adata.raw = None
    explorer.select_box(-100, -100, 0, 100)
    explorer.select_box(0, -100, 100, 100)
    table = explorer.compare()
    assert "log2 fold change" not in table.columns and "no fold change" in explorer._results_note.object


def test_compare_ranks_a_large_group_on_a_sample(monkeypatch):
    from app.embedding import compare
    rng = np.random.default_rng(0)
    cells = sc.AnnData(rng.poisson(1.0, (300, 20)).astype(np.float32))
    monkeypatch.setattr(compare, "MAX_CELLS_PER_GROUP", 50)
    result = compare.compare_groups(cells, np.arange(200), np.arange(200, 300))
    assert len(result.table) == 40 and "random 50" in result.note


def test_png_bytes_is_a_png_of_the_view(explorer):
    data = explorer.png_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(data)).size == (800, 600)
    explorer.color_by("gene", "CST3")
    assert explorer.png_bytes(width=300, height=200).startswith(PNG_SIGNATURE)


def test_empty_selection_is_reported_and_keeps_a_and_b(explorer):
    kept = explorer.select_box(-100, -100, 100, 100)
    cells = explorer.select_box(1000, 1000, 1001, 1001)
    assert cells.size == 0
    assert "No shown cells" in _alert(explorer)
    assert len(explorer.selections) == 1
    np.testing.assert_array_equal(explorer.selections[0][0], kept)


def test_unknown_gene_is_reported_and_keeps_the_colouring(explorer):
    explorer.color_by("obs", "bulk_labels")
    explorer.color_by("gene", "NOT_A_GENE")
    assert "NOT_A_GENE" in _alert(explorer)
    assert explorer.coloring.name == "bulk_labels" and "label" in explorer.frame


def test_label_and_compare_errors_leave_obs_alone(explorer):
    obs_before = explorer.state.adata.obs.copy()
    explorer.add_label("orphan")
    assert "Select cells" in _alert(explorer)
    explorer.select_box(-100, -100, 100, 100)
    explorer.add_label("   ")
    assert "name" in _alert(explorer)
    assert explorer.compare().empty and "two selections" in _alert(explorer)
    pd.testing.assert_frame_equal(explorer.state.adata.obs, obs_before)


def test_no_embedding_in_obsm_is_reported(pbmc):
    bare = pbmc.copy()
    bare.obsm.clear()
    state = StudioState()
    state.load(bare, "no embedding")
    explorer = EmbeddingExplorer(state)
    assert "No embedding" in _alert(explorer)
    assert explorer.plot is None and explorer.select_box(0, 0, 1, 1).size == 0
    explorer.set_view("X_umap")
    assert "not an embedding" in _alert(explorer)
    state.adata.obsm["X_guided_main"] = pbmc.obsm["X_pca"][:, :8]  # a trained model writes its latent
    state.touch_obs()
    assert explorer.key == "X_guided_main" and len(explorer.frame) == 700 and not explorer.alert.visible


def test_loading_new_cells_resets_view_and_selections(explorer, pbmc):
    explorer.select_box(-100, -100, 100, 100)
    smaller = pbmc[:300].copy()
    explorer.state.load(smaller, "first 300")
    assert explorer.selections == [] and len(explorer.frame) == 300


def test_categories_without_stored_colours_get_a_palette(explorer):
    explorer.color_by("obs", "phase")
    entries = explorer.legend.entries
    assert entries["category"].tolist() == ["G1", "G2M", "S"]
    assert entries["color"].str.fullmatch(r"#[0-9a-f]{6}").all() and entries["color"].nunique() == 3
    assert explorer.png_bytes().startswith(PNG_SIGNATURE)
    hv.renderer("bokeh").get_plot(explorer.plot)


def test_view_widgets_draw_once_and_compute_a_missing_umap(explorer, monkeypatch):
    """With an event loop running, as in a served page, async callbacks run after the code that
    triggered them: syncing the widgets must still not draw a second time."""
    renders = []
    draw = explorer._render
    monkeypatch.setattr(explorer, "_render", lambda: (renders.append(explorer.key), draw())[1])

    async def as_served():
        explorer.set_view("X_pca", dims=(1, 2))
        await asyncio.sleep(0.2)
        assert renders == ["X_pca"] and (explorer._dim_x.value, explorer._dim_y.value) == (1, 2)
        explorer._mode_select.value = "umap"  # as a click: X_pca's UMAP is computed, cached, then drawn
        while explorer.mode != "umap":
            await asyncio.sleep(0.05)

    in_a_thread(lambda: asyncio.run(asyncio.wait_for(as_served(), timeout=120)))
    assert explorer.key == "X_pca" and "X_pca_umap" in explorer.state.adata.obsm
    assert renders == ["X_pca", "X_pca"] and explorer._mode_select.value == "umap"


EVIL = "<img src=x onerror=alert(1)>"


def test_user_names_are_shown_as_text(pbmc):
    adata = pbmc.copy()
    adata.obs = adata.obs[["phase"]].rename(columns={"phase": EVIL})  # the colouring column is the first categorical
    state = StudioState()
    state.load(adata, "evil")
    explorer = EmbeddingExplorer(state)
    status = explorer._status  # "... coloured by obs <the column>"
    assert "<img" not in status.object and "&lt;img src" in status.object and EVIL in shown(status)
    explorer.color_by("gene", EVIL)  # not a gene: the reason quotes it
    assert "<img" not in explorer.alert.object and EVIL in _alert(explorer)
    explorer.select_box(-100, -100, 100, 100)
    explorer.add_label(EVIL)
    assert "<img" not in explorer.alert.object and EVIL in shown(explorer.alert)


def _inked_pixels(png: bytes) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return int((pixels < 250).any(axis=-1).sum())


def test_png_of_a_view_the_browser_has_not_drawn_yet_shows_the_cells(explorer):
    """A served page's range stream holds NaN until the plot is drawn (Export before Explore):
    the PNG then shows the whole embedding instead of a blank sheet."""
    explorer._range.event(x_range=(np.nan, np.nan), y_range=(np.nan, np.nan))
    assert _inked_pixels(explorer.png_bytes()) > 500


def test_an_unknown_gene_names_close_matches(explorer):
    explorer.color_by("gene", "CD14")
    message = _alert(explorer)
    assert "CD14" in message and "CD4" in message and "CD164" in message and "[" not in message
    explorer.color_by("gene", "lyz")  # a gene typed in the wrong case is found
    assert explorer.coloring.name == "LYZ" and not explorer.alert.visible


def test_the_gene_box_takes_any_typed_name(explorer):
    """The box suggests genes but lets a name that is not among them through, to be explained."""
    assert explorer._gene_input.restrict is False
    explorer._kind_select.value = "gene"
    explorer._gene_input.value = "CD14"
    assert "CD14" in _alert(explorer)


def test_switching_embedding_in_umap_mode_shows_its_dimensions(explorer):
    """A UMAP is computed only when asked for: a new embedding opens on its first two dimensions."""
    explorer.state.adata.obsm["X_pca_umap"] = explorer.state.adata.obsm["X_umap"].copy()  # cached layout
    explorer.set_view("X_pca", mode="umap")
    keys_before = set(explorer.state.adata.obsm)
    explorer._key_select.value = "X_umap"
    assert (explorer.key, explorer.mode, explorer.dims) == ("X_umap", "dimensions", (0, 1))
    assert explorer._mode_select.value == "dimensions" and set(explorer.state.adata.obsm) == keys_before


def test_a_new_selection_clears_the_old_comparison(explorer):
    explorer.select_box(-100, -100, 0, 100)
    explorer.select_box(0, -100, 100, 100)
    explorer.compare()
    assert explorer.results.visible
    explorer.select_box(-100, -100, 100, 0)
    assert not explorer.results.visible
