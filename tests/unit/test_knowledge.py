"""engine.read_knowledge_table and KnowledgeTable on small tables each test writes, and the shipped PBMC table."""
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import engine
from engine.data.errors import InputError

ASSET = Path(__file__).resolve().parents[2] / "assets" / "knowledge" / "pbmc_populations.csv"
GOOD = """Population,Level 1,CD3,CD4,CD19,HLA-DR
CD4 T,T cells,1,1,-1,
Treg,T cells,1,0.5,-1,-0.5
B,B cells,-1,,1,1
"""


def write(tmp_path, text, name="table.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path):
    with pytest.raises(InputError) as caught:
        engine.read_knowledge_table(path)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_reads_values_levels_and_unknowns(tmp_path):
    table = engine.read_knowledge_table(write(tmp_path, GOOD))
    assert isinstance(table, engine.KnowledgeTable)
    assert table.populations == ["CD4 T", "Treg", "B"]
    assert table.markers == ["CD3", "CD4", "CD19", "HLA-DR"]
    assert table.values.dtypes.eq(float).all()
    assert table.values.loc["Treg", "CD4"] == 0.5 and table.values.loc["Treg", "HLA-DR"] == -0.5
    assert np.isnan(table.values.loc["CD4 T", "HLA-DR"]) and np.isnan(table.values.loc["B", "CD4"])
    assert list(table.levels.columns) == ["Level 1"]
    assert list(table.levels["Level 1"]) == ["T cells", "T cells", "B cells"]


def test_table_without_levels_has_empty_levels(tmp_path):
    table = engine.read_knowledge_table(write(tmp_path, "pop,CD3,CD19\nT,1,-1\nB,-1,1\n"))
    assert table.levels.shape == (2, 0) and list(table.levels.index) == ["T", "B"]


def test_na_words_and_spaces_read_as_unknown(tmp_path):
    table = engine.read_knowledge_table(write(tmp_path, "pop, CD3 ,CD19\nT , 1 ,NA\nB,nan,1\n"))
    assert table.markers == ["CD3", "CD19"] and table.populations == ["T", "B"]
    assert table.values.isna().to_numpy().tolist() == [[False, True], [True, False]]


def test_validate_lists_every_missing_marker_with_case_hints(tmp_path):
    table = engine.read_knowledge_table(write(tmp_path, GOOD))
    adata = ad.AnnData(np.zeros((2, 3)), var=pd.DataFrame(index=["CD3", "cd4", "HLA-DR"]))
    with pytest.raises(InputError) as caught:
        table.validate(adata)
    message = str(caught.value)
    assert "'CD4' (did you mean 'cd4'?)" in message and "'CD19'" in message and "2 marker(s)" in message
    adata = ad.AnnData(np.zeros((1, 5)), var=pd.DataFrame(index=["CD3", "CD4", "CD19", "HLA-DR", "CD8"]))
    assert table.validate(adata) is None


def test_missing_and_empty_files(tmp_path):
    assert "does not exist" in error_of(tmp_path / "absent.csv")
    assert "is empty" in error_of(write(tmp_path, "\n\n"))
    assert "is empty" in error_of(write(tmp_path, "Population,CD3,CD19\n"))
    assert "is empty" in error_of(write(tmp_path, "Population,level\nT,T cells\n"))


def test_duplicate_populations_and_markers_are_named(tmp_path):
    message = error_of(write(tmp_path, "pop,CD3\nT,1\nB,-1\nT,1\nB,-1\n"))
    assert "population" in message and "T, B" in message
    message = error_of(write(tmp_path, "pop,CD3,CD19,CD3\nT,1,-1,1\n"))
    assert "marker" in message and "CD3" in message


def test_bad_values_name_population_marker_and_value(tmp_path):
    message = error_of(write(tmp_path, "pop,CD3,CD19\nT,1,-1\nB,-1,2\n"))
    assert "'B'" in message and "'CD19'" in message and "value 2" in message
    message = error_of(write(tmp_path, "pop,CD3,CD19\nT,yes,-1\n"))
    assert "'T'" in message and "'CD3'" in message and "'yes'" in message


def test_ragged_rows_and_blank_names_give_line_numbers(tmp_path):
    assert "line 3" in error_of(write(tmp_path, "pop,CD3,CD19\nT,1,-1\nB,-1\n"))
    assert "line 2" in error_of(write(tmp_path, "pop,CD3\n,1\n"))


def test_tables_built_in_code_are_checked_too():
    values = pd.DataFrame({"CD3": [1, -1]}, index=["T", "B"])
    assert engine.KnowledgeTable(values).levels.shape == (2, 0)
    with pytest.raises(InputError, match="numbers between -1 and 1"):
        engine.KnowledgeTable(pd.DataFrame({"CD3": ["high", "low"]}, index=["T", "B"]))
    with pytest.raises(InputError, match="one row per population"):
        engine.KnowledgeTable(values, levels=pd.DataFrame({"level": ["x"]}, index=["T"]))


def test_shipped_pbmc_table_matches_pbmc68k_reduced():
    table = engine.read_knowledge_table(ASSET)
    assert len(table.populations) == 8 and "Megakaryocytes/platelets" in table.populations
    assert set(np.unique(table.values.stack())) <= {-1.0, 1.0}
    table.validate(sc.datasets.pbmc68k_reduced())
    assert (table.values.fillna(0).abs().sum(axis=1) > 0).all()
    assert not table.values.fillna(0).duplicated().any()  # every population has its own pattern
