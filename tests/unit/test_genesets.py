"""engine.data.genesets: reading GMT/JSON/text gene sets, matching them to data, and the shipped PBMC sets."""
import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from engine.data.errors import InputError
from engine.data.genesets import GeneMatch, match_genes, read_gene_sets

ASSET = Path(__file__).resolve().parents[2] / "assets" / "genesets" / "pbmc_markers.json"


@pytest.fixture(scope="module")
def pbmc():
    return sc.datasets.pbmc68k_reduced()


@pytest.fixture
def ensembl_adata():
    var = pd.DataFrame(
        {"gene_name": ["CD3D", "MS4A1", "LYZ", np.nan]},
        index=["ENSG00000167286.5", "ENSG00000156738", "ENSG00000090382.7", "ENSG00000000003"],
    )
    return ad.AnnData(np.zeros((2, 4)), var=var)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path):
    with pytest.raises(InputError) as caught:
        read_gene_sets(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_reads_gmt_json_and_text(tmp_path):
    gmt = write(tmp_path, "sets.gmt", "T\thttp://x\tCD3D\tCD3E\tCD3D\n\nB\t\tMS4A1\tCD79A\t\n")
    assert read_gene_sets(gmt) == {"T": ["CD3D", "CD3E"], "B": ["MS4A1", "CD79A"]}
    path = write(tmp_path, "sets.json", json.dumps({"NK": ["NKG7", " GNLY "], "Mono": ["LYZ"]}))
    assert read_gene_sets(path) == {"NK": ["NKG7", "GNLY"], "Mono": ["LYZ"]}
    path = write(tmp_path, "t_cells.txt", "# T-cell receptor\nCD3D\n\n CD3E \n")
    assert read_gene_sets(path) == {"t_cells": ["CD3D", "CD3E"]}


def test_missing_file_and_unknown_format(tmp_path):
    assert "does not exist" in error_of(tmp_path / "absent.gmt")
    assert "unknown format '.xlsx'" in error_of(write(tmp_path, "sets.xlsx", "x"))


def test_empty_sets_and_files(tmp_path):
    assert "'Empty' has no genes" in error_of(write(tmp_path, "a.gmt", "T\td\tCD3D\nEmpty\td\t\t\n"))
    assert "'blank' has no genes" in error_of(write(tmp_path, "blank.txt", "\n# only a comment\n"))
    assert "holds no gene sets" in error_of(write(tmp_path, "none.json", "{}"))
    assert "holds no gene sets" in error_of(write(tmp_path, "none.gmt", "\n"))


def test_malformed_gmt_and_json_give_line_numbers(tmp_path):
    assert "line 2" in error_of(write(tmp_path, "a.gmt", "T\td\tCD3D\nCD19 MS4A1 CD79A\n"))
    assert "line 3: the set 'T' is defined twice" in error_of(write(tmp_path, "b.gmt", "T\td\tA\nB\td\tC\nT\td\tD\n"))
    assert "line 3" in error_of(write(tmp_path, "c.json", '{\n  "T": ["CD3D"],\n  "B": ["MS4A1",]\n}'))
    assert "mapping each set name" in error_of(write(tmp_path, "d.json", '["CD3D", "CD3E"]'))
    assert "mapping each set name" in error_of(write(tmp_path, "e.json", '{"T": "CD3D"}'))


def test_match_exact_then_case_insensitive(pbmc):
    result = match_genes(["CD3D", "ms4a1", "Lyz", "CD3D", "NOT_A_GENE"], pbmc)
    assert isinstance(result, GeneMatch)
    assert result.matched == ["CD3D", "MS4A1", "LYZ"]
    assert result.missing == ["NOT_A_GENE"]


def test_exact_match_wins_over_case_insensitive():
    adata = ad.AnnData(np.zeros((1, 2)), var=pd.DataFrame(index=["Cd4", "CD4"]))
    assert match_genes(["CD4"], adata).matched == ["CD4"]
    assert match_genes(["cd4"], adata).matched == ["Cd4"]


def test_match_symbols_and_ids_against_ensembl_var_names(ensembl_adata):
    result = match_genes(["CD3D", "ms4a1", "ENSG00000090382", "ENSG00000156738.3", "GAPDH"], ensembl_adata)
    assert result.matched == ["ENSG00000167286.5", "ENSG00000156738", "ENSG00000090382.7"]
    assert result.missing == ["GAPDH"]


def test_symbol_column_given_explicitly():
    var = pd.DataFrame({"hugo": ["CD3D", "LYZ"]}, index=["probe_1", "probe_2"])
    adata = ad.AnnData(np.zeros((1, 2)), var=var)
    assert match_genes(["LYZ"], adata).missing == ["LYZ"]  # not Ensembl: no column is guessed
    assert match_genes(["LYZ", "cd3d"], adata, symbol_column="hugo").matched == ["probe_2", "probe_1"]


def test_match_errors(ensembl_adata):
    with pytest.raises(InputError, match="symbol_column 'symbols' is not a var column; the var columns are: gene_name"):
        match_genes(["CD3D"], ensembl_adata, symbol_column="symbols")
    with pytest.raises(InputError, match="single string 'CD3D'"):
        match_genes("CD3D", ensembl_adata)


def test_shipped_pbmc_sets_match_pbmc68k_reduced(pbmc):
    sets = read_gene_sets(ASSET)
    assert len(sets) == 7 and all(3 <= len(genes) <= 10 for genes in sets.values())
    missing = []
    for name, genes in sets.items():
        result = match_genes(genes, pbmc)
        assert len(result.matched) >= len(genes) - 1, name
        missing += result.missing
    assert missing == ["CD14"]  # a textbook marker that the 765-gene subset does not keep
