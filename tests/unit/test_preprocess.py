"""engine.data.preprocess: RNA counts and cytometry intensities, the copy= convention, the inverse."""
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from engine.data import preprocess
from engine.data.errors import InputError

MARKERS = ["CD3", "CD4", "CD8", "CD19"]


def counts_adata(sparse=False, n_cells=80, n_genes=200):
    counts = np.random.default_rng(0).negative_binomial(2, 0.3, size=(n_cells, n_genes)).astype(np.float32)
    adata = ad.AnnData(sp.csr_matrix(counts) if sparse else counts)
    adata.obs_names = [f"cell{i}" for i in range(n_cells)]
    adata.var_names = [f"gene{j}" for j in range(n_genes)]
    return adata


def cyto_adata(spillover=True, channel_column=False):
    raw = np.random.default_rng(1).gamma(2.0, 150.0, size=(200, 4)) - 30.0  # a few negatives, as after compensation
    adata = ad.AnnData(raw.astype(np.float32))
    adata.obs_names = [f"cell{i}" for i in range(200)]
    adata.var_names = MARKERS
    names = MARKERS
    if channel_column:
        names = ["FL1-A", "FL2-A", "FL3-A", "FL4-A"]
        adata.var["channel"] = names
    if spillover:
        # spillover between three of the four channels, listed in a different order from the data
        chosen = [names[2], names[0], names[1]]
        adata.uns["spillover"] = pd.DataFrame(
            [[1.0, 0.12, 0.0], [0.05, 1.0, 0.2], [0.0, 0.08, 1.0]], index=chosen, columns=chosen
        )
    return adata


def error_text(call, *args, **kwargs):
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


@pytest.mark.parametrize("sparse", [False, True])
def test_rna_normalises_logs_and_flags_variable_genes_in_place(sparse):
    adata = counts_adata(sparse)
    counts = adata.X.copy()
    assert preprocess.rna(adata, n_top_genes=10) is None
    layer = adata.layers["counts"]
    assert (layer != counts).nnz == 0 if sparse else np.array_equal(layer, counts)
    x = adata.X.toarray() if sparse else adata.X
    np.testing.assert_allclose(np.expm1(x).sum(axis=1), 1e4, rtol=1e-4)
    assert adata.var["highly_variable"].sum() == 10
    record = adata.uns["hanami_preprocess"]
    assert record["kind"] == "rna" and record["hvg_flavor"] == "seurat" and record["n_top_genes"] == 10


def test_rna_copy_returns_new_object_and_leaves_argument_untouched():
    adata = counts_adata()
    before = adata.X.copy()
    result = preprocess.rna(adata, n_top_genes=5, subset=True, copy=True)
    assert result is not adata and result.n_vars == 5
    np.testing.assert_array_equal(adata.X, before)
    assert "counts" not in adata.layers and "hanami_preprocess" not in adata.uns


def test_rna_caps_gene_count_and_reads_existing_counts_layer():
    adata = counts_adata(n_genes=12)
    adata.layers["raw"] = adata.X.copy()
    adata.X = np.log1p(adata.X)  # as in files that ship log-normalised X beside their counts
    preprocess.rna(adata, n_top_genes=2000, counts_layer="raw")
    record = adata.uns["hanami_preprocess"]
    assert record["n_top_genes"] == 12 and record["counts_from"] == "layers['raw']"
    np.testing.assert_allclose(np.expm1(adata.X).sum(axis=1), 1e4, rtol=1e-4)


def test_rna_warns_on_values_that_are_not_counts():
    adata = counts_adata()
    adata.X = np.log1p(adata.X)
    with pytest.warns(UserWarning, match="not whole numbers"):
        preprocess.rna(adata)


@pytest.mark.parametrize("sparse", [False, True])
def test_rna_refuses_negative_counts_naming_the_first(sparse):
    adata = counts_adata()
    adata.X[5, 7] = -2
    adata.X[9, 1] = -1
    adata.X = sp.csr_matrix(adata.X) if sparse else adata.X
    message = error_text(preprocess.rna, adata)
    assert "'cell5'" in message and "'gene7'" in message and "-2" in message
    assert "counts" not in adata.layers


@pytest.mark.parametrize("sparse", [False, True])
def test_rna_names_the_first_non_finite_count_and_changes_nothing(sparse):
    adata = counts_adata()
    adata.X[4, 2] = np.inf
    adata.X[4, 9] = np.nan
    adata.X[7, 0] = np.nan
    adata.X = sp.csr_matrix(adata.X) if sparse else adata.X
    message = error_text(preprocess.rna, adata)
    assert message.startswith("X: cell cell4, gene gene2 holds an infinite value; 3 values in 2 cells are not finite")
    assert "for example with 0" in message and "Bin edges" not in message
    assert "counts" not in adata.layers and "hanami_preprocess" not in adata.uns


def test_rna_refuses_counts_that_are_all_zero_or_never_vary():
    adata = counts_adata(sparse=True)
    adata.X = sp.csr_matrix(adata.shape, dtype=np.float32)
    message = error_text(preprocess.rna, adata)
    assert message.startswith("X holds no counts: every value in its 80 cells x 200 genes is 0")
    adata = counts_adata()
    adata.X = np.tile(adata.X[:1], (adata.n_obs, 1))  # one profile repeated
    message = error_text(preprocess.rna, adata)
    assert "no gene varies between cells after normalising X (80 cells)" in message
    assert "counts" not in adata.layers and "highly_variable" not in adata.var


def test_rna_subsets_in_place():
    adata = counts_adata(sparse=True)
    preprocess.rna(adata, n_top_genes=7, subset=True)
    assert adata.n_vars == 7 and adata.var["highly_variable"].all()
    assert adata.layers["counts"].shape == (80, 7) and adata.uns["log1p"] == {"base": None}


def test_rna_refuses_bad_options_and_missing_matrix():
    assert "target_sum" in error_text(preprocess.rna, counts_adata(), target_sum=0)
    assert "n_top_genes" in error_text(preprocess.rna, counts_adata(), n_top_genes=0)
    assert "no X" in error_text(preprocess.rna, ad.AnnData(obs=pd.DataFrame(index=["a"])))


@pytest.mark.parametrize("transform", ["asinh", "logicle", "none"])
@pytest.mark.parametrize("channel_column", [False, True])
def test_cytometry_round_trips_through_the_inverse(transform, channel_column):
    if transform == "logicle":
        pytest.importorskip("flowutils")
    adata = cyto_adata(channel_column=channel_column)
    raw = adata.X.astype(np.float64)
    processed = preprocess.cytometry(adata, transform=transform, copy=True)
    record = processed.uns["hanami_preprocess"]
    assert record["compensated"] and record["transform"] == transform
    np.testing.assert_allclose(processed.X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(processed.X.std(axis=0), 1, atol=1e-4)
    assert {"mean", "std"} <= set(processed.var.columns)
    assert np.allclose(preprocess.inverse_cytometry(processed), raw, rtol=1e-4, atol=1e-3)
    decoded = processed.X[:10]  # as a model would hand back cells in the processed space
    assert np.allclose(preprocess.inverse_cytometry(decoded, reference=processed), raw[:10], rtol=1e-4, atol=1e-3)


def test_cytometry_compensates_and_asinh_matches_the_formula():
    adata = cyto_adata()
    raw = adata.X.astype(np.float64)
    preprocess.cytometry(adata, cofactor=150.0, scale=False)
    order = ["CD8", "CD3", "CD4"]
    spill = pd.DataFrame([[1.0, 0.12, 0.0], [0.05, 1.0, 0.2], [0.0, 0.08, 1.0]], index=order, columns=order)
    observed = pd.DataFrame(raw[:, :3], columns=MARKERS[:3])[list(spill.index)].to_numpy()
    compensated = observed @ np.linalg.inv(spill.to_numpy())
    np.testing.assert_allclose(adata.X[:, [2, 0, 1]], np.arcsinh(compensated / 150.0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(adata.X[:, 3], np.arcsinh(raw[:, 3] / 150.0), rtol=1e-5)  # no spillover for CD19


def test_cytometry_without_spillover_skips_compensation_with_a_note():
    adata = cyto_adata(spillover=False)
    preprocess.cytometry(adata)
    record = adata.uns["hanami_preprocess"]
    assert not record["compensated"] and "spillover" in record["compensation_note"]
    assert np.allclose(preprocess.inverse_cytometry(adata), cyto_adata(spillover=False).X, rtol=1e-4, atol=1e-3)


def test_cytometry_copy_leaves_argument_untouched():
    adata = cyto_adata()
    before = adata.X.copy()
    result = preprocess.cytometry(adata, copy=True)
    assert result is not adata
    np.testing.assert_array_equal(adata.X, before)
    assert "mean" not in adata.var and "hanami_preprocess" not in adata.uns


def test_cytometry_spillover_errors_name_the_channels():
    adata = cyto_adata()
    adata.uns["spillover"] = pd.DataFrame(np.eye(2), index=["CD3", "FITC-A"], columns=["CD3", "FITC-A"])
    message = error_text(preprocess.cytometry, adata)
    assert "FITC-A" in message and "CD19" in message
    assert "mean" not in adata.var

    adata.uns["spillover"] = pd.DataFrame(np.eye(2), index=["CD3", "CD4"], columns=["CD4", "CD8"])
    assert "square" in error_text(preprocess.cytometry, adata)
    adata.uns["spillover"] = np.eye(4)
    assert "DataFrame" in error_text(preprocess.cytometry, adata)
    adata.uns["spillover"] = pd.DataFrame([["a", 0], [0, 1]], index=["CD3", "CD4"], columns=["CD3", "CD4"])
    assert "not numbers" in error_text(preprocess.cytometry, adata)
    adata.uns["spillover"] = pd.DataFrame(np.ones((2, 2)), index=["CD3", "CD4"], columns=["CD3", "CD4"])
    assert "cannot be inverted" in error_text(preprocess.cytometry, adata)
    preprocess.cytometry(adata, compensate=False)
    assert not adata.uns["hanami_preprocess"]["compensated"]


def test_cytometry_option_and_value_errors():
    assert "transform must be one of" in error_text(preprocess.cytometry, cyto_adata(), transform="log")
    assert "cofactor" in error_text(preprocess.cytometry, cyto_adata(), cofactor=0)
    assert "no X" in error_text(preprocess.cytometry, ad.AnnData(obs=pd.DataFrame(index=["a"])))
    adata = cyto_adata()
    adata.X[3, 1] = np.nan
    message = error_text(preprocess.cytometry, adata)
    assert "cell cell3, marker CD4 holds NaN (not a number)" in message and "1 value in 1 cell" in message


def test_logicle_parameters_are_checked_and_recorded():
    pytest.importorskip("flowutils")
    assert "unknown: q" in error_text(preprocess.cytometry, cyto_adata(), transform="logicle", logicle_params={"q": 1})
    adata = cyto_adata()
    preprocess.cytometry(adata, transform="logicle", logicle_params={"t": 10000, "m": 4.0})
    assert adata.uns["hanami_preprocess"]["logicle"] == {"t": 10000.0, "m": 4.0, "w": 0.5, "a": 0.0}


def test_logicle_without_flowutils_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "flowutils", None)  # makes the import fail as if not installed
    assert "pip install flowutils" in error_text(preprocess.cytometry, cyto_adata(), transform="logicle")


def test_inverse_errors():
    adata = cyto_adata()
    assert "cytometry record" in error_text(preprocess.inverse_cytometry, adata)
    preprocess.cytometry(adata)
    assert "reference=" in error_text(preprocess.inverse_cytometry, np.zeros((2, 4)))
    assert "4 markers" in error_text(preprocess.inverse_cytometry, np.zeros((2, 3)), reference=adata)
    del adata.var["std"]
    assert "'std'" in error_text(preprocess.inverse_cytometry, adata)
