"""DataLoader without a browser: every way in, every refusal, and the session kept on failure."""
import anndata as ad
import numpy as np
import pandas as pd
import panel as pn
import pytest

from app.components.data_loader import PICKER_OFF, DataLoader
from app.components.data_loader import NEXT_AFTER_PREPROCESSING, NEXT_FOR_COUNTS
from app.data_kind import look_at, rna_counts_where
from app.demo import DEMO_NEXT, DEMO_TITLE
from app.settings import DATA_ROOT_VAR, MAX_UPLOAD_VAR, Settings
from app.state import StudioState


def counts(n_cells=40, n_genes=30, seed=0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    x = rng.poisson(2.0, size=(n_cells, n_genes)).astype(np.float32)
    kinds = pd.Categorical(rng.choice(["a", "b"], n_cells))
    obs = pd.DataFrame({"kind": kinds}, index=[f"c{i}" for i in range(n_cells)])
    return ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]))


def h5ad_bytes(adata: ad.AnnData, tmp_path) -> bytes:
    path = tmp_path / "written.h5ad"
    adata.write_h5ad(path)
    return path.read_bytes()


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def loader(root):
    """A loader on a session that shows the demo, as the studio starts."""
    loader = DataLoader(StudioState(), Settings(data_root=root))
    assert loader.load_demo() and not loader.error
    return loader


def assert_demo_kept(loader, demo):
    assert loader.error and loader.message
    assert loader.state.adata is demo and loader.state.dataset == DEMO_TITLE


def test_upload_of_a_good_h5ad_replaces_the_cells(loader, tmp_path):
    version = loader.state.obs_version
    assert loader.load_bytes("mine.h5ad", h5ad_bytes(counts(), tmp_path))
    assert not loader.error and "40 cells" in loader.message
    assert loader.state.dataset == "mine.h5ad" and loader.state.adata.shape == (40, 30)
    assert loader.state.obs_version == version + 1


def test_corrupt_h5ad_is_reported_by_its_name_and_keeps_the_demo(loader, tmp_path):
    demo = loader.state.adata
    broken = h5ad_bytes(counts(), tmp_path)[:2000]
    assert not loader.load_bytes("broken.h5ad", broken)
    assert_demo_kept(loader, demo)
    assert "broken.h5ad" in loader.message and "cannot read it as an .h5ad" in loader.message
    assert "hanami-upload" not in loader.message  # the temporary path is not what the user knows


def test_wrong_extension_is_refused_and_keeps_the_demo(loader):
    demo = loader.state.adata
    assert not loader.load_bytes("table.xlsx", b"PK\x03\x04 not really a workbook")
    assert_demo_kept(loader, demo)
    assert "table.xlsx" in loader.message and "unknown extension '.xlsx'" in loader.message


def test_over_limit_upload_names_the_limit_and_the_setting(root):
    loader = DataLoader(StudioState(), Settings(data_root=root, max_upload_mb=0.001))
    loader.load_demo()
    demo = loader.state.adata
    assert not loader.load_bytes("big.h5ad", b"\0" * 5000)
    assert_demo_kept(loader, demo)
    assert "0.001 MB" in loader.message and MAX_UPLOAD_VAR in loader.message
    assert loader._dropper.max_file_size == "1KB"


def test_csv_features_by_cells_with_transpose(loader):
    frame = pd.DataFrame([[1, 2, 3], [4, 5, 6]], index=["CD3E", "LYZ"], columns=["c1", "c2", "c3"])
    text = frame.to_csv(index_label="gene").encode()
    assert loader.load_bytes("genes_by_cells.csv", text, transpose=True)
    adata = loader.state.adata
    assert list(adata.obs_names) == ["c1", "c2", "c3"] and list(adata.var_names) == ["CD3E", "LYZ"]
    np.testing.assert_array_equal(adata.X, frame.T.to_numpy())


def test_upload_widget_hands_the_file_to_the_same_path_and_drops_its_copy(loader):
    frame = pd.DataFrame([[1, 2], [3, 4], [5, 6]], index=["G1", "G2", "G3"], columns=["c1", "c2"])
    loader._transpose.value = True
    loader._dropper.value = {"g.csv": frame.to_csv()}  # text/* arrives decoded, as FileDropper gives it
    assert not loader.error and loader.state.adata.shape == (2, 3)
    assert loader._dropper.value == {}


def test_server_file_inside_the_root_loads(loader, root):
    (root / "sub").mkdir()
    counts().write_h5ad(root / "sub" / "cells.h5ad")
    assert loader.load_path("sub/cells.h5ad")
    assert loader.state.dataset == "sub/cells.h5ad" and loader.state.adata.n_obs == 40
    assert loader.load_path(root / "sub" / "cells.h5ad")


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_server_file_outside_the_root_is_refused(loader, root, tmp_path, how):
    outside = tmp_path / "secret.h5ad"
    counts().write_h5ad(outside)
    demo = loader.state.adata
    path = {"absolute": outside, "dotdot": "sub/../../secret.h5ad", "symlink": "link.h5ad"}[how]
    if how == "symlink":
        (root / "link.h5ad").symlink_to(outside)
    assert not loader.load_path(path)
    assert_demo_kept(loader, demo)
    assert "outside the data folder" in loader.message and DATA_ROOT_VAR in loader.message


def test_preprocess_rna_loads_a_processed_copy(loader, tmp_path):
    loader.load_bytes("counts.h5ad", h5ad_bytes(counts(), tmp_path))
    raw = loader.state.adata
    assert loader.preprocess("rna", n_top_genes=10)
    done = loader.state.adata
    assert done is not raw and loader.state.dataset == "counts.h5ad (preprocessed)"
    assert done.var["highly_variable"].sum() == 10 and done.uns["hanami_preprocess"]["kind"] == "rna"
    assert "hanami_preprocess" not in raw.uns


def test_preprocess_failure_keeps_the_cells(loader):
    demo = loader.state.adata  # pbmc68k_reduced holds scaled values, negative ones included
    assert not loader.preprocess("rna")
    assert_demo_kept(loader, demo)
    assert loader.message.startswith("Preprocessing (rna) failed: ") and "negative count" in loader.message
    assert loader.message.endswith(f"{DEMO_TITLE} is still loaded, unchanged.")


def test_rna_preprocessing_is_offered_only_for_raw_counts(loader, tmp_path):
    """The demo is scaled (negative, fractional values): no RNA choice, and a sentence that says why."""
    assert "rna" not in loader._kind.options.values() and loader._kind.value == "none"
    note = loader._preprocess_note
    assert note.visible and "not raw counts" in note.object and "some are negative" in note.object
    assert loader._next.visible and DEMO_NEXT.startswith("Next:") and "2 · Model" in loader._next.object
    loader.load_bytes("counts.h5ad", h5ad_bytes(counts(), tmp_path))
    assert "rna" in loader._kind.options.values() and not note.visible
    assert "Apply preprocessing" in loader._next.object and NEXT_FOR_COUNTS.startswith("Next:")
    assert loader.preprocess("rna", n_top_genes=10)
    assert "Build model" in loader._next.object and NEXT_AFTER_PREPROCESSING.startswith("Next:")
    # the processed values are log counts, but the raw counts now sit in the counts layer
    assert rna_counts_where(loader.state.adata)[0] == "counts layer" and note.visible


def test_a_failure_hides_the_next_step(loader):
    assert loader._next.visible
    assert not loader.load_bytes("table.xlsx", b"x")
    assert not loader._next.visible


def test_values_are_counts_only_when_whole_and_not_negative():
    assert look_at(np.array([[0, 3], [1, 2]], dtype=np.float32)).counts
    fractional = look_at(np.array([[0.5, 3]]))
    assert not fractional.counts and fractional.why_not == "some have decimals"
    import scipy.sparse as sp
    scaled = look_at(sp.csr_matrix(np.array([[-1.5, 0], [0, 2]])))
    assert scaled.why_not == "some are negative and some have decimals"


def test_preprocess_cytometry_and_none(loader, tmp_path):
    loader.load_bytes("panel.h5ad", h5ad_bytes(counts(seed=1), tmp_path))
    before = loader.state.adata
    assert loader.preprocess("none") and loader.state.adata is before
    assert loader.preprocess("cytometry", cofactor=150)
    assert loader.state.adata.uns["hanami_preprocess"]["cofactor"] == 150


def test_summary_follows_the_session(loader, tmp_path):
    loader.load_bytes("mine.h5ad", h5ad_bytes(counts(), tmp_path))
    assert loader._summary.adata is loader.state.adata and loader._summary.title == "mine.h5ad"
    assert loader._summary.summary.n_cells == 40


def test_summary_counts_a_category_from_the_start(loader, tmp_path):
    """The count chooser always names the column drawn, and keeps the user's choice when it can."""
    summary = loader._summary
    assert summary._count_choice.value == "bulk_labels"  # the demo's first categorical column
    summary._count_choice.value = "phase"
    assert summary._count_note.object == "" and summary._count_plot.object.data["category"].nunique() == 3
    loader.state.touch_obs()
    assert summary._count_choice.value == "phase"
    loader.load_bytes("mine.h5ad", h5ad_bytes(counts(), tmp_path))
    assert summary._count_choice.value == "kind"
    assert summary._qc_totals.object.data["cells"].sum() == 40


def test_a_new_label_is_summarised_without_summing_every_cell_again(loader, monkeypatch):
    """Adding a label changes obs only: the table and counts follow, the per-cell pass over X is not
    redone (on a million cells it made every label take a second)."""
    from app.components import data_summary

    monkeypatch.setattr(data_summary, "summarize", lambda adata: pytest.fail("X was summarised again"))
    loader.state.adata.obs["my labels"] = pd.Categorical(["gate"] * 700)
    loader.state.touch_obs()
    summary = loader._summary
    assert "my labels" in summary._table.value.iloc[:, 0].tolist()
    assert "my labels" in summary._count_choice.options


def test_settings_from_env(tmp_path, monkeypatch):
    assert Settings.from_env({DATA_ROOT_VAR: str(tmp_path), MAX_UPLOAD_VAR: "20"}) == Settings(tmp_path.resolve(), 20.0)
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({}).data_root is None  # never the home folder: no picker until one is set
    (tmp_path / "data").mkdir()
    assert Settings.from_env({}) == Settings((tmp_path / "data").resolve(), 500.0)
    for bad in ({MAX_UPLOAD_VAR: "lots"}, {MAX_UPLOAD_VAR: "-1"}, {DATA_ROOT_VAR: str(tmp_path / "absent")}):
        with pytest.raises(ValueError, match="HANAMI_"):
            Settings.from_env(bad)


def test_the_page_renders(loader):
    assert pn.panel(loader).get_root() is not None


def test_without_a_data_root_the_picker_is_off_and_says_how_to_turn_it_on(tmp_path):
    loader = DataLoader(StudioState(), Settings(data_root=None))
    assert loader._picker is None and DATA_ROOT_VAR in PICKER_OFF
    assert not loader.load_path(tmp_path / "cells.h5ad") and loader.message == PICKER_OFF
    assert loader.load_bytes("big.h5ad", b"\0" * 10) is False and "data folder" not in loader.message
    assert pn.panel(loader).get_root() is not None


@pytest.mark.parametrize("name", ["a" * 300 + ".h5ad", "cells." + "v" * 300 + ".h5ad", "x" * 20 + ".b" * 150 + ".h5ad"])
def test_a_very_long_upload_name_loads_under_that_name(loader, tmp_path, name):
    assert loader.load_bytes(name, h5ad_bytes(counts(), tmp_path)), loader.message
    assert loader.state.dataset == name and loader.message.startswith(f"Loaded {name}: 40 cells")


@pytest.mark.parametrize("name", ["x." + "y" * 300, "."])
def test_an_upload_name_without_a_usable_extension_is_explained(loader, tmp_path, name):
    demo = loader.state.adata
    assert not loader.load_bytes(name, h5ad_bytes(counts(), tmp_path))
    assert_demo_kept(loader, demo)
    assert "unknown extension" in loader.message and "hanami-upload" not in loader.message
    assert name != "." or "'(none)'" in loader.message
    assert loader.message.endswith(f"{DEMO_TITLE} is still loaded, unchanged.")


def test_a_view_failing_on_new_cells_leaves_a_message_that_says_they_are_loaded(loader, tmp_path):
    """The old message ("... is still loaded, unchanged") must not stay up once the cells changed."""
    assert not loader.load_bytes("broken.h5ad", b"not hdf5" * 100)
    assert loader.message.endswith("is still loaded, unchanged.")

    def failing_view(*_):
        raise RuntimeError("the summary broke")

    loader.state.param.watch(failing_view, "adata")
    assert not loader.load_bytes("mine.h5ad", h5ad_bytes(counts(), tmp_path))
    assert loader.state.dataset == "mine.h5ad" and loader.error
    assert loader.message.startswith("Loaded mine.h5ad: 40 cells x 30 features, but the page could not show them")
    assert "the summary broke" in loader.message and "unchanged" not in loader.message


def test_names_in_messages_are_shown_as_text(loader, tmp_path):
    name = "<img src=x onerror=alert(1)>.h5ad"
    assert loader.load_bytes(name, h5ad_bytes(counts(), tmp_path))
    shown = loader._alert.object
    assert "<img" not in shown and "&lt;img src" in shown
    assert loader.message.startswith(f"Loaded {name}")  # the message itself keeps the real name
    assert not loader.load_bytes("<b>bold</b>.xlsx", b"PK")
    assert "<b>" not in loader._alert.object and "&lt;b&gt;" in loader._alert.object


def test_while_new_cells_are_shown_the_old_message_is_gone(loader, tmp_path):
    """Views follow new cells one by one and the page shows each as it comes: the message must already
    say what is happening, not what was true before."""
    assert not loader.load_bytes("broken.h5ad", b"not hdf5" * 100)
    seen = []
    loader.state.param.watch(lambda _: seen.append(loader.message), "adata")
    assert loader.load_bytes("mine.h5ad", h5ad_bytes(counts(), tmp_path))
    assert seen == ["Loading mine.h5ad …"]
