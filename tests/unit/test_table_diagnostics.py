"""Every knowledge-table diagnostic, each naming the populations and markers it concerns."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import engine
from engine.data.errors import InputError
from engine.data.knowledge import KnowledgeTable
from engine.data.simulate import cells_from_table, random_table
from engine.data.table_diagnostics import diagnose_table

NAN = np.nan


def _table(rows: dict) -> KnowledgeTable:
    return KnowledgeTable(values=pd.DataFrame(rows, index=["CD3", "CD4", "CD19"]).T)


SOUND = KnowledgeTable(values=pd.DataFrame(
    [[1, 1, -1, -1], [1, -1, 1, -1], [-1, 1, 1, 1], [-1, -1, -1, 1]],
    index=["A", "B", "C", "D"], columns=["M1", "M2", "M3", "M4"],
))


def test_a_sound_table_on_transformed_cells_has_no_findings():
    assert diagnose_table(SOUND, cells_from_table(SOUND, 500, seed=1)) == []


def test_every_missing_marker_is_listed():
    table = random_table(4, 8, seed=0)
    adata = cells_from_table(table, 100, seed=1)[:, 3:].copy()
    (finding,) = [f for f in diagnose_table(table, adata) if f.kind == "missing_markers"]
    assert finding.severity == "error" and finding.markers == ("M1", "M2", "M3")
    assert all(f"'M{i}'" in finding.message for i in (1, 2, 3))


def test_populations_the_table_cannot_tell_apart():
    table = _table({"T4": [1, 1, -1], "T4 copy": [1, NAN, -1], "B": [-1, -1, 1]})
    (finding,) = [f for f in diagnose_table(table) if f.kind == "indistinguishable"]
    assert finding.severity == "warning" and finding.populations == ("T4", "T4 copy")
    assert "cannot tell them apart" in finding.message


def test_markers_with_no_positive_or_no_negative_population():
    table = _table({"T4": [1, 1, -1], "T8": [1, -1, -1], "B": [-1, -1, 1]})
    findings = [f for f in diagnose_table(table) if f.kind == "one_sided"]
    assert [f.markers for f in findings] == []
    table = _table({"T4": [1, 1, -1], "T8": [1, -1, -1], "NK": [1, -1, -1]})
    findings = [f for f in diagnose_table(table) if f.kind == "one_sided"]
    assert [(f.markers, "negative" in f.message) for f in findings] == [(("CD3",), True), (("CD19",), False)]


def test_a_population_with_no_known_marker():
    table = _table({"T4": [1, 1, -1], "unknown": [NAN, NAN, NAN], "B": [-1, -1, 1]})
    assert [f.populations for f in diagnose_table(table) if f.kind == "no_knowledge"] == [("unknown",)]


def test_raw_intensities_are_refused_before_training():
    table = SOUND
    adata = cells_from_table(table, 500, seed=1)
    adata.X[:, :2] = np.sinh(adata.X[:, :2] * 3) * 5 + 800  # untransformed-looking channels
    (finding,) = diagnose_table(table, adata)
    assert finding.kind == "untransformed" and finding.markers == ("M1", "M2") and "asinh" in finding.message
    with pytest.raises(InputError, match="raw intensities"):
        engine.FlowAnnotator(adata, table, device="cpu")


def test_warnings_reach_the_user_when_a_model_is_built():
    table = _table({"T4": [1, 1, -1], "T4 copy": [1, 1, -1], "B": [-1, -1, 1]})
    adata = cells_from_table(table, 200, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine.FlowAnnotator(adata, table, device="cpu")
    assert any("cannot tell them apart" in str(w.message) for w in caught)
