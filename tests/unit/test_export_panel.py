"""ExportPanel without a browser: each file it makes reads back, and failures show in the page."""
import asyncio
import io
import json
import zipfile

import anndata as ad
import numpy as np
import pandas as pd
import panel as pn
import pytest

import engine
from app.components.export_panel import ExportPanel
from app.runs import RunRegistry
from app.state import StudioState
from engine.data.errors import InputError
from in_a_thread import in_a_thread

PNG = b"\x89PNG\r\n\x1a\n fake image"
HANG_S = 120  # only a hang reaches it


def cells(n=60, genes=20, seed=0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(rng.choice(["T", "B"], n)), "score": rng.normal(size=n)},
        index=[f"c{i}" for i in range(n)],
    )
    adata = ad.AnnData(rng.normal(size=(n, genes)).astype(np.float32), obs=obs)
    adata.var_names = [f"G{i}" for i in range(genes)]
    adata.obsm["X_umap"] = rng.normal(size=(n, 2))
    adata.obsm["spatial"] = rng.normal(size=(n, 2))  # not an embedding: no X_ prefix
    return adata


@pytest.fixture(scope="module")
def trained():
    """A session holding cells and a GuidedModel trained for one epoch on them."""
    state = StudioState()
    state.load(cells(), "small")
    state.model = engine.GuidedModel(
        state.adata, phenotypes={"cell_type": {}}, device="cpu",
        pre_encoder_dims=[16], encoder_dims=[8], decoder_dims=[16], main_latent_dim=3,
    )
    state.model.train(max_epochs=1, progress=False)
    return state


def _download(export: ExportPanel, key: str):
    """What the button hands the browser: its callback runs the writer in a worker thread."""
    button = export.downloads[key]
    try:
        return in_a_thread(lambda: asyncio.run(button.callback()))
    finally:
        assert not button.loading


def test_h5ad_holds_the_model_latents(trained):
    version = trained.obs_version
    data = ExportPanel(trained).h5ad_bytes()
    back = ad.read_h5ad(io.BytesIO(data))
    assert back.shape == (60, 20) and back.obsm["X_guided_main"].shape == (60, 3)
    np.testing.assert_allclose(back.obsm["X_guided_main"], trained.model.latent("main"), atol=1e-6)
    assert trained.obs_version == version


def test_an_h5ad_export_leaves_the_session_cells_unchanged():
    state = StudioState()
    state.load(cells(), "small")
    state.model = engine.GuidedModel(state.adata, phenotypes={"cell_type": {}}, device="cpu",
                                     pre_encoder_dims=[16], encoder_dims=[8], decoder_dims=[16], main_latent_dim=3)
    before = (set(state.adata.obsm), list(state.adata.obs.columns), set(state.adata.uns), state.obs_version)
    back = ad.read_h5ad(io.BytesIO(ExportPanel(state).h5ad_bytes()))
    csv = ExportPanel(state).csv_text()
    after = (set(state.adata.obsm), list(state.adata.obs.columns), set(state.adata.uns), state.obs_version)
    assert after == before and "X_guided_main" not in state.adata.obsm
    np.testing.assert_allclose(back.obsm["X_guided_main"], state.model.latent("main"), atol=1e-6)
    assert "guided" in back.uns and "X_guided_main_0" in csv.splitlines()[0]


def test_results_a_run_wrote_into_the_cells_are_exported_as_they_are(monkeypatch):
    """On a million cells `model.write` took seconds: once the run that trained the model has written
    its results into the session's cells, an export writes those cells without encoding them again."""
    state = StudioState()
    state.load(cells(), "small")
    state.model = engine.GuidedModel(state.adata, phenotypes={"cell_type": {}}, device="cpu",
                                     pre_encoder_dims=[16], encoder_dims=[8], decoder_dims=[16], main_latent_dim=3)
    registry = RunRegistry()
    run = registry.submit(state.owner, "guided", state.model,
                          state.model.trainer(max_epochs=1, batch_size=32, progress=False), adata=state.adata)
    assert run.wait(HANG_S), "the run did not end"
    assert run.state == "finished"
    monkeypatch.setattr(state.model, "write", lambda adata: pytest.fail("the results were encoded again"))
    export = ExportPanel(state, registry=registry)
    back = ad.read_h5ad(io.BytesIO(export.h5ad_bytes()))
    np.testing.assert_array_equal(back.obsm["X_guided_main"], state.adata.obsm["X_guided_main"])
    assert "guided" in back.uns and "X_guided_main_0" in export.csv_text().splitlines()[0]


def test_csv_has_flattened_embeddings_and_categorical_labels():
    state = StudioState()
    state.load(cells(), "small")
    frame = pd.read_csv(io.StringIO(ExportPanel(state).csv_text()), index_col="cell")
    assert list(frame.columns) == ["X_umap_0", "X_umap_1", "cell_type"]
    assert list(frame.index) == list(state.adata.obs_names)
    np.testing.assert_allclose(frame[["X_umap_0", "X_umap_1"]], state.adata.obsm["X_umap"])


def test_model_zip_holds_the_saved_model(trained, tmp_path):
    with zipfile.ZipFile(io.BytesIO(ExportPanel(trained).model_zip_bytes())) as archive:
        assert set(archive.namelist()) == {"config.json", "model.pt", "genes.json"}
        assert json.loads(archive.read("genes.json"))["genes"] == list(trained.adata.var_names)
        archive.extractall(tmp_path / "m")
    again = engine.GuidedModel.load(tmp_path / "m", trained.adata, device="cpu")
    np.testing.assert_allclose(again.latent("main"), trained.model.latent("main"), atol=1e-6)


def test_png_button_is_disabled_without_a_source_and_serves_one_given():
    state = StudioState()
    without = ExportPanel(state)
    assert without.downloads["png"].disabled and "embedding explorer" in without.downloads["png"].description
    with pytest.raises(InputError):
        without.png_bytes()
    given = ExportPanel(state, png_source=lambda: PNG)
    assert not given.downloads["png"].disabled and given.png_bytes() == PNG
    assert _download(given, "png").read() == PNG


def test_a_failed_download_is_shown_and_changes_nothing():
    state = StudioState()
    state.load(cells(), "small")
    export = ExportPanel(state)
    with pytest.raises(InputError):
        _download(export, "model")
    assert export.message.startswith("Could not export model.zip: No model to export")
    assert state.adata is not None and state.dataset == "small"
    _download(export, "csv")
    assert export.message == ""


def test_nothing_loaded_is_explained():
    export = ExportPanel(StudioState())
    for make in (export.h5ad_bytes, export.csv_text):
        with pytest.raises(InputError, match="No cells loaded"):
            make()
    assert pn.panel(export).get_root() is not None


def test_a_failure_quoting_a_name_is_shown_as_text():
    evil = "<img src=x onerror=alert(1)>"

    def failing_png():
        raise InputError(f"obs column '{evil}' cannot be drawn")

    export = ExportPanel(StudioState(), png_source=failing_png)
    with pytest.raises(InputError):
        _download(export, "png")
    assert evil in export.message
    assert "<img" not in export._alert.object and "&lt;img src" in export._alert.object


def test_cells_too_large_for_the_page_are_saved_on_this_computer(tmp_path, monkeypatch):
    """A download travels through the page's connection, which refuses large messages: such cells
    get a clear refusal and a Save button that writes the .h5ad into the export folder instead."""
    from app.components import export_panel

    state = StudioState()
    state.load(cells(), "small")
    export = ExportPanel(state, folder=tmp_path / "exports")
    monkeypatch.setattr(export_panel, "PAGE_LIMIT_MB", 0.001)
    with pytest.raises(InputError):
        _download(export, "h5ad")
    assert "more than a page can receive" in export.message and "Save .h5ad on this computer" in export.message
    in_a_thread(lambda: export._save.param.update(clicks=export._save.clicks + 1))
    saved = list((tmp_path / "exports").glob("cells-*.h5ad"))
    assert len(saved) == 1 and ad.read_h5ad(saved[0]).shape == (60, 20)
    assert export._alert.alert_type == "success" and saved[0].name in export.message and not export._save.loading


def test_without_a_folder_there_is_no_save_button():
    export = ExportPanel(StudioState())
    assert not export._save.visible
    with pytest.raises(InputError, match="not set up"):
        export.save_h5ad()
