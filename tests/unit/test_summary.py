"""engine.data.summarize on the demo and on a small AnnData built to hit every column kind."""
import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy import sparse

from engine import InputError
from engine.data.summary import TOP_CATEGORIES, summarize


def test_demo_shape_columns_and_totals():
    adata = sc.datasets.pbmc68k_reduced()
    s = summarize(adata)
    assert (s.n_cells, s.n_genes, s.sparse, s.dtype) == (700, 765, False, "float32")
    kinds = {c.name: c.kind for c in s.columns}
    assert kinds["bulk_labels"] == kinds["phase"] == kinds["louvain"] == "categorical"
    assert kinds["n_genes"] == kinds["percent_mito"] == "continuous"
    phase = next(c for c in s.columns if c.name == "phase")
    assert phase.top_categories == (("G1", 501), ("S", 182), ("G2M", 17))
    assert phase.n_categories == 3 and phase.n_missing == 0
    np.testing.assert_allclose(s.cell_totals, adata.X.sum(axis=1, dtype=np.float64))
    np.testing.assert_array_equal(s.cell_features, (adata.X != 0).sum(axis=1))


@pytest.fixture
def synthetic():
    """Sparse X with a stored zero, NaN in a number, unused and missing categories, booleans."""
    X = sparse.csr_matrix(
        np.array([[1, 0, 2, 0], [0, 0, 0, 0], [3, 4, 0, 5], [0, 0, 7, 0], [1, 1, 1, 1]], np.float32)
    )
    X.data[X.data == 7] = 0  # an explicit zero: stored, but not a detected feature
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(["T", "B", None, "T", "T"], categories=["B", "T", "NK"]),
            "score": [0.1, np.nan, 0.3, np.nan, 0.5],
            "doublet": np.array([True, False, False, True, True]),
            "passed_qc": pd.array([True, None, False, True, None], dtype="boolean"),
            "flag": np.array([True, None, True, False, True], dtype=object),
            "note": ["a", "b", None, "a", "a"],
        },
        index=[f"c{i}" for i in range(5)],
    )
    return ad.AnnData(X, obs=obs)


def test_synthetic_kinds_counts_and_missing(synthetic):
    cols = {c.name: c for c in summarize(synthetic).columns}
    assert {n: c.kind for n, c in cols.items()} == {
        "cell_type": "categorical",
        "score": "continuous",
        "doublet": "boolean",
        "passed_qc": "boolean",
        "flag": "boolean",
        "note": "text",
    }
    assert cols["cell_type"].n_categories == 3
    assert cols["cell_type"].top_categories == (("T", 3), ("B", 1), ("NK", 0))
    assert cols["cell_type"].n_missing == 1
    assert cols["score"].n_categories is None and cols["score"].top_categories == ()
    assert cols["score"].n_missing == 2
    assert cols["doublet"].top_categories == (("True", 3), ("False", 2))
    assert cols["passed_qc"].n_missing == 2
    assert dict(cols["passed_qc"].top_categories) == {"True": 2, "False": 1}
    assert dict(cols["flag"].top_categories) == {"True": 3, "False": 1}
    assert cols["note"].top_categories == (("a", 3), ("b", 1)) and cols["note"].n_missing == 1


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_totals_stay_sparse_and_skip_stored_zeros(synthetic, fmt):
    X = synthetic.X.asformat(fmt)
    s = summarize(ad.AnnData(X, obs=synthetic.obs))
    assert s.sparse and s.dtype == "float32"
    np.testing.assert_allclose(s.cell_totals, [3, 0, 12, 0, 4])
    np.testing.assert_array_equal(s.cell_features, [2, 0, 3, 0, 4])
    assert sparse.issparse(X) and X.format == fmt  # the input was not converted in place


def test_top_categories_are_capped():
    labels = np.repeat([f"t{i:02d}" for i in range(30)], np.arange(1, 31))
    adata = ad.AnnData(np.ones((len(labels), 2), np.float32))
    adata.obs["many"] = pd.Categorical(labels)
    (col,) = summarize(adata).columns
    assert col.n_categories == 30 and len(col.top_categories) == TOP_CATEGORIES
    assert col.top_categories[0] == ("t29", 30)


def test_missing_x_is_a_clear_error():
    adata = ad.AnnData(obs=pd.DataFrame(index=["a", "b"]))
    with pytest.raises(InputError, match="no X"):
        summarize(adata)


def test_the_summary_headline_shows_a_file_name_as_text():
    from app.components.data_summary import DataSummary

    evil = "<img src=x onerror=alert(1)>.h5ad"
    view = DataSummary(adata=ad.AnnData(np.ones((3, 2), dtype=np.float32)), title=evil)
    assert "<img" not in view._headline.object and "&lt;img src" in view._headline.object
    view.title = "# not a heading *nor bold*"
    assert "\\# not a heading \\*nor bold\\*" in view._headline.object


def test_the_summary_page_warns_about_non_finite_values_in_cells_built_in_memory():
    """A Studio(adata) or a notebook hands cells no reader checked: the page says where NaN sits."""
    from app.components.data_summary import DataSummary

    adata = ad.AnnData(np.ones((3, 2), dtype=np.float32), obs=pd.DataFrame(index=["a", "b", "c"]),
                       var=pd.DataFrame(index=["CD3E", "LYZ"]))
    adata.X[1, 1] = np.nan
    shown = DataSummary(adata=adata, title="in memory")
    assert shown._non_finite.visible and "cell b" in shown._non_finite.object and "LYZ" in shown._non_finite.object
    shown.adata = sc.datasets.pbmc68k_reduced()
    assert not shown._non_finite.visible


def test_the_per_cell_sum_is_explained_when_the_values_are_not_counts():
    """Scaled values (the demo's) give a sum per cell that can be negative: the page says why."""
    from app.components.data_summary import TOTALS_COUNTS, TOTALS_OTHER, DataSummary

    scaled = ad.AnnData(np.array([[-1.5, 0.25], [2.0, -0.5]], dtype=np.float32))
    view = DataSummary(adata=scaled, title="scaled")
    assert view._qc_note.visible and "not raw counts (some are negative and some have decimals)" in view._qc_note.object
    assert view._qc_totals.object.kdims[0].name == TOTALS_OTHER
    view.adata = ad.AnnData(np.array([[0, 3], [1, 2]], dtype=np.float32))
    assert not view._qc_note.visible and view._qc_totals.object.kdims[0].name == TOTALS_COUNTS
    assert list(view._table.value.columns)[0] == "annotation"


def test_a_page_still_loading_shows_the_headline_and_table_and_draws_the_plots_once_shown(monkeypatch):
    """On a million cells the pass over every cell and the three plots made the first content wait:
    in a served page they follow once the page shows the headline and the annotation table."""
    import panel as pn

    from app.components.data_summary import DataSummary

    waiting = []
    monkeypatch.setattr(pn.state, "onload", waiting.append)  # a served page that has not shown yet
    adata = sc.datasets.pbmc68k_reduced()
    view = DataSummary(adata=adata, title="demo")
    assert "**700 cells × 765 genes** · values stored as dense float32 · 8 cell annotation columns" in view._headline.object
    assert view._table.value.iloc[:, 0].tolist() == list(adata.obs.columns)
    assert view._count_choice.value == "bulk_labels" and view.summary is None
    assert view._count_plot.object is None and view._qc_totals.object is None and view._qc_features.object is None
    (shown,) = waiting
    shown()
    assert view.summary.n_cells == 700 and view._count_plot.object.data["cells"].sum() == 700
    assert view._qc_totals.object.data["cells"].sum() == 700 and view._qc_features.object is not None
