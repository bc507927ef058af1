"""Knowledge tables, gene sets and cytometry preprocessing on the real files in ../shared/data."""
import anndata as ad
import numpy as np
import pandas as pd
import pytest

import engine
from engine.data.errors import InputError
from engine.data.genesets import match_genes, read_gene_sets

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def aml(shared_data):
    return ad.read_h5ad(shared_data / "cyto_aml_levine32_short" / "aml_short.h5ad")


def table(shared_data, name):
    return engine.read_knowledge_table(shared_data / "cyto_aml_levine32_short" / name)


def test_aml_table_matches_the_aml_cells(shared_data, aml):
    aml_table = table(shared_data, "table_aml.csv")
    assert aml_table.values.shape == (14, 14) and aml_table.levels.shape[1] == 0
    assert set(aml_table.populations) == set(aml.obs["cell_type"])
    assert set(np.unique(aml_table.values.stack())) == {-1.0, 1.0}
    assert aml_table.values.isna().any().any()
    aml_table.validate(aml)


def test_bmmc_table(shared_data):
    bmmc = table(shared_data, "table_bmmc.csv")
    assert bmmc.values.shape == (19, 13) and bmmc.levels.shape[1] == 0
    assert bmmc.markers[:3] == ["CD45", "CD45RA", "CD19"]


def test_poised_table_has_levels_and_fractions(shared_data, aml):
    poised = table(shared_data, "table_poised.csv")
    assert len(poised.populations) == 26 and "level" not in poised.markers
    assert list(poised.levels.columns) == ["level"]
    assert poised.levels.loc["mDC2", "level"] == "DCs"
    assert poised.values.loc["mDC2", "CD11c"] == 0.5 and poised.values.loc["iMonocytes", "CD14"] == -0.5
    assert poised.values.loc["TCD8 TEM", "CD45RA"] == 0
    with pytest.raises(InputError) as caught:
        poised.validate(aml)
    for marker in ["TCRgd", "CD56", "CD25", "CD127", "CCR7", "HLA.DR", "CD27", "CD69", "CD40L"]:
        assert f"'{marker}'" in str(caught.value)


def test_hallmark_and_tirosh_gene_sets(shared_data):
    folder = shared_data / "genesets"
    hallmark = read_gene_sets(folder / "h.all.v7.0.symbols.gmt")
    assert len(hallmark) == 50 and all(name.startswith("HALLMARK_") for name in hallmark)
    assert "JUNB" in hallmark["HALLMARK_TNFA_SIGNALING_VIA_NFKB"]
    s_genes = read_gene_sets(folder / "s_genes_tirosh_hm.txt")["s_genes_tirosh_hm"]
    g2m_genes = read_gene_sets(folder / "g2m_genes_tirosh_hm.txt")["g2m_genes_tirosh_hm"]
    assert len(s_genes) == 43 and len(g2m_genes) == 54 and "MCM5" in s_genes and "CDK1" in g2m_genes


def test_tirosh_symbols_match_ensembl_var_names_through_symbols(shared_data):
    """Cells whose genes are Ensembl ids, with a symbol column, as in the mixology data."""
    folder = shared_data / "genesets"
    genes = pd.read_csv(folder / "cell_cycle_genes_homo_sapiens.tsv", sep="\t")
    adata = ad.AnnData(np.zeros((1, len(genes))), var=pd.DataFrame({"gene_name": genes["gene_name"].to_numpy()},
                                                                   index=genes["gene_id"].to_numpy()))
    s_genes = read_gene_sets(folder / "s_genes_tirosh_hm.txt")["s_genes_tirosh_hm"]
    result = match_genes(s_genes, adata)
    assert all(gene_id.startswith("ENSG") for gene_id in result.matched)
    assert set(result.missing) == set(s_genes) - set(genes["gene_name"])
    assert len(result.matched) >= 40
    by_id = match_genes(list(genes["gene_id"][:5] + ".3"), adata)  # versioned ids match unversioned var_names
    assert by_id.matched == list(genes["gene_id"][:5]) and by_id.missing == []


def test_cytometry_round_trip_on_real_intensities(aml):
    """Rebuild raw-scale intensities from the shipped asinh values, then process and undo them."""
    shipped = aml.X.astype(np.float64) * aml.var["std"].to_numpy() + aml.var["mean"].to_numpy()
    raw = ad.AnnData(5.0 * np.sinh(shipped), obs=aml.obs[["cell_type"]], var=pd.DataFrame(index=aml.var_names))
    processed = engine.preprocess.cytometry(raw, cofactor=5.0, copy=True)
    assert processed.uns["hanami_preprocess"]["compensated"] is False
    np.testing.assert_allclose(processed.X.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(processed.X * processed.var["std"].to_numpy() + processed.var["mean"].to_numpy(),
                               shipped, rtol=1e-4, atol=1e-4)
    assert np.allclose(engine.preprocess.inverse_cytometry(processed), raw.X, rtol=1e-4, atol=1e-3)
