"""The Integrate view without a browser: given a tiny trained SysVI model, both embeddings and the
metrics table before and after; the colour and label choices; a late result dropped."""
import numpy as np
import pandas as pd
import pytest

import engine
from app.components.integration_view import NO_LABEL, NO_MODEL, IntegrationView
from app.embedding.integration import first_components, legend_html, metrics_before_after
from app.embedding.coloring import color_values
from app.state import StudioState
from engine.data.simulate_systems import cells_from_systems
from in_a_thread import in_a_thread

METRICS = ["ilisi_knn", "silhouette_batch", "clisi_knn", "silhouette_label", "knn_label_accuracy"]


@pytest.fixture(scope="module")
def trained():
    cells = cells_from_systems(300, 60, system_effect=0.4, seed=0)
    model = engine.SysVIModel(cells, "system", batch_keys=["batch"], n_hidden=32, n_latent=4,
                              training={"max_epochs": 2})
    model.train(max_epochs=2)
    model.write(cells)
    return cells, model


@pytest.fixture
def view(trained):
    cells, model = trained
    state = StudioState()
    state.load(cells, "systems")
    made = IntegrationView(state)
    made._layout.value = "components"  # a UMAP's first call compiles for a while; the components are instant
    state.model = model
    return made


def test_without_a_trained_model_the_view_says_what_to_do(trained):
    cells, _ = trained
    state = StudioState()
    state.load(cells, "systems")
    view = IntegrationView(state)
    assert not view.ready() and view._status.object == NO_MODEL and view._body.objects == []


def test_compute_gives_both_embeddings_and_the_metrics_before_and_after(view, trained):
    cells, model = trained
    assert view.ready()
    comparison = view.compute()
    assert comparison.before.shape == (cells.n_obs, 2) and comparison.after.shape == (cells.n_obs, 2)
    assert np.isfinite(comparison.before).all() and np.isfinite(comparison.after).all()
    table = comparison.metrics
    assert table["metric"].tolist() == METRICS
    assert list(table.columns) == ["metric", "kind", "before (PCA)", "after (integrated)", "meaning"]
    assert table[["before (PCA)", "after (integrated)"]].apply(lambda c: c.between(0, 1)).all().all()
    shown = view._metrics.value
    assert shown["metric"].tolist() == METRICS and shown["meaning"].str.len().gt(0).all()
    assert view._before.object is not None and view._after.object is not None
    assert view._color.value == "system" and view._label.value == "cell_type"
    assert "system 0" in view._legend.object and "system 1" in view._legend.object
    assert "300 cells from 2 systems" in view._status.object


def test_colour_by_a_label_redraws_without_computing_again(view):
    view.compute()
    before = view.comparison
    view._color.value = "cell_type"
    assert view.comparison.after is before.after and not view.busy  # the layouts were kept, not computed again
    assert "type 0" in view._legend.object


def test_without_a_label_there_is_no_score(view):
    view._label.value = NO_LABEL
    comparison = view.compute()
    assert comparison.metrics is None and view._metrics.value.empty
    assert "Choose a label column" in view._metrics_note.object


def test_the_after_umap_is_kept_with_the_cells(view, trained):
    cells, model = trained
    view._layout.value = "umap"
    comparison = view.compute()
    assert np.array_equal(cells.obsm["X_sysvi_latent_umap"], comparison.after)


def test_metrics_before_after_compares_the_same_cells():
    rng = np.random.default_rng(0)
    systems = np.repeat(["a", "b"], 50)
    labels = np.tile(["t1", "t2"], 50)
    separated = np.c_[rng.normal(size=(100, 2)) + (systems == "a")[:, None] * 10, rng.normal(size=(100, 2))]
    mixed = rng.normal(size=(100, 4)) + (labels == "t1")[:, None] * 10
    table = metrics_before_after(separated, mixed, systems, labels).set_index("metric")
    assert table.loc["ilisi_knn", "after (integrated)"] > table.loc["ilisi_knn", "before (PCA)"]
    assert table.loc["knn_label_accuracy", "after (integrated)"] > table.loc["knn_label_accuracy", "before (PCA)"]
    assert first_components(mixed).shape == (100, 2)


def test_the_legend_escapes_category_names():
    from anndata import AnnData
    cells = AnnData(np.zeros((3, 1)), obs=pd.DataFrame({"c": pd.Categorical(["<b>x</b>", "y", "y"])},
                                                        index=["1", "2", "3"]))
    html = legend_html(color_values(cells, "obs", "c", None))
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_a_late_result_is_dropped(view):
    import asyncio
    shown, picture = view.comparison, view._before.object
    ask = view._ask()
    view._asked += 1  # the user changed a choice meanwhile: a newer computation is on its way
    in_a_thread(lambda: asyncio.run(view._work_later(ask[0], *ask[1:])))
    assert view.comparison is shown and view._before.object is picture


def test_the_download_holds_the_integrated_latent(view, tmp_path):
    import asyncio

    import anndata
    data = in_a_thread(lambda: asyncio.run(view._h5ad())).getvalue()
    (tmp_path / "cells.h5ad").write_bytes(data)
    cells = anndata.read_h5ad(tmp_path / "cells.h5ad")
    assert cells.obsm["X_sysvi_latent"].shape == (300, 4) and not view._export_alert.visible
