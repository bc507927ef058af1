"""engine.read on the real files in ../shared/data: shapes, labels and dtypes the tests downstream rely on."""
import numpy as np
import pytest

import engine

pytestmark = pytest.mark.data


def test_cytof_h5ad(shared_data):
    adata = engine.read(shared_data / "cyto_aml_levine32_short" / "aml_short.h5ad")
    assert adata.shape == (280, 32)
    assert adata.obs["cell_type"].nunique() == 14


@pytest.mark.parametrize("name, n_cells", [("sc_celseq2", 274), ("sc_dropseq", 225)])
def test_mixology_counts_genes_by_cells(shared_data, name, n_cells):
    adata = engine.read(shared_data / "scrna_mixology_systems" / f"{name}.count.csv.gz", transpose=True)
    assert adata.n_obs == n_cells
    assert adata.X.dtype == np.float32
    assert adata.var_names[0].startswith("ENSG")
    assert np.all(adata.X >= 0) and np.all(adata.X == np.round(adata.X))


def test_scuba_h5ad_with_proteins(shared_data):
    adata = engine.read(shared_data / "scrna_scuba_bm_pbmc" / "AML_h5ad.h5ad")
    assert adata.shape == (250, 462)
    assert adata.obsm["protein"].shape[0] == 250
    assert "counts" in adata.layers
