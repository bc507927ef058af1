"""The data summary of an in-memory AnnData holding NaN or infinity reports them instead of
handing NaN totals to the studio's histograms."""
import anndata as ad
import numpy as np
import pytest
from scipy import sparse

from engine.data.summary import summarize


@pytest.mark.parametrize("layout", [np.asarray, sparse.csr_matrix, sparse.csc_matrix])
def test_summary_reports_non_finite_values_and_keeps_totals_finite(layout):
    X = np.arange(1, 13, dtype=np.float32).reshape(4, 3)
    X[1, 2] = np.nan
    X[2, 0] = np.inf
    adata = ad.AnnData(layout(X))
    adata.obs_names = ["c1", "c2", "c3", "c4"]
    adata.var_names = ["CD3E", "MS4A1", "LYZ"]
    s = summarize(adata)
    assert s.non_finite.startswith("cell c2, gene LYZ holds NaN (not a number); 2 values in 2 cells are not finite")
    assert np.isfinite(s.cell_totals).all()
    np.testing.assert_allclose(s.cell_totals, [6, 4 + 5, 8 + 9, 10 + 11 + 12])
    np.testing.assert_array_equal(s.cell_features, [3, 2, 2, 3])
    assert np.isnan(adata.X[1, 2] if layout is np.asarray else adata.X.toarray()[1, 2])  # the data is untouched


def test_summary_of_finite_data_has_no_note():
    assert summarize(ad.AnnData(np.ones((3, 2), dtype=np.float32))).non_finite is None
