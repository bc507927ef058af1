"""The knowledge table editor without a browser: what a cell takes, names checked against the
cells, CSV in and out, and the engine's diagnostics shown on the cells they concern."""
import math

import pandas as pd
import pytest

from app.builders.knowledge_cells import cell_text, marker_problem, new_name, parse_cell, starting_markers
from app.components.knowledge_table_editor import ERROR_CELL, WARNING_CELL, KnowledgeTableEditor
from app.demo import cytometry_demo, example_table
from app.state import StudioState
from test_escape_helpers import shown


@pytest.mark.parametrize(("typed", "value"), [
    ("1", 1.0), ("-1", -1.0), ("0", 0.0), ("0.5", 0.5), ("-0,25", -0.25), (" +1 ", 1.0), ("", None), ("  ", None),
    ("NA", None), ("nan", None), (None, None),
])
def test_a_cell_takes_levels_fractions_and_blanks(typed, value):
    parsed = parse_cell(typed)
    assert math.isnan(parsed) if value is None else parsed == value


@pytest.mark.parametrize(("typed", "words"), [("high", "is not a level"), ("2", "outside -1 to 1"),
                                              ("-1.5", "outside -1 to 1"), ("inf", "outside -1 to 1"),
                                              ("1,2,3", "is not a level")])
def test_anything_else_is_refused_with_the_rule(typed, words):
    with pytest.raises(ValueError, match=words) as raised:
        parse_cell(typed)
    assert "a fraction such as 0.5" in str(raised.value)


def test_cells_show_the_shortest_number_and_blank_for_unknown():
    assert [cell_text(v) for v in (1.0, -1.0, 0.0, 0.5, math.nan, None)] == ["1", "-1", "0", "0.5", "", ""]


def test_names_are_checked_and_markers_matched_to_the_cells():
    assert new_name("  CD4 T ", "population", ["B"]) == "CD4 T"
    for typed, words in (("", "Type a population name"), ("B", "already has"), ("level1", "hierarchy")):
        with pytest.raises(ValueError, match=words):
            new_name(typed, "population", ["B"])
    assert marker_problem("CD3", ["CD3", "CD4"]) is None
    assert "use that spelling" in marker_problem("cd3", ["CD3", "CD4"])
    assert "Close names: CD45RA" in marker_problem("CD45R", ["CD45RA", "CD8"])
    assert starting_markers(["M1", "M2"]) == ["M1", "M2"] and starting_markers(map(str, range(100))) == []


@pytest.fixture
def editor():
    state = StudioState()
    state.load(cytometry_demo(300), "generated")
    return KnowledgeTableEditor(state)


def test_starts_with_the_panel_as_columns_and_offers_the_matching_example(editor):
    assert editor.values.shape == (0, 10) and editor._example.visible
    assert "no population yet" in editor._findings.object
    assert editor.load_example()
    pd.testing.assert_frame_equal(editor.values, example_table().values, check_names=False)
    assert editor.findings == [] and "No problem found" in editor._findings.object


def test_a_refused_cell_keeps_its_value_and_says_why(editor):
    editor.load_example()
    old = editor.values.at["Pop1", "M1"]
    assert not editor.set_cell("Pop1", "M1", "<b>high</b>")
    assert editor.values.at["Pop1", "M1"] == old
    assert shown(editor._message) == (f"Pop1, M1: <b>high</b> is not a level: use 1 (has the marker), -1 "
                                             "(lacks it), 0, a fraction such as 0.5, or leave it blank (unknown). "
                                             f"The cell keeps {cell_text(old)}.")
    assert editor._grid.value.at["Pop1", "M1"] == cell_text(old)
    assert editor.set_cell("Pop1", "M1", "0.5") and editor.values.at["Pop1", "M1"] == 0.5
    assert editor._grid.value.at["Pop1", "M1"] == "0.5" and not editor._message.visible


def test_rows_and_columns_are_added_and_removed_by_name(editor):
    editor.load_example()
    assert not editor.add_marker("m3") and "M3" in shown(editor._message)
    assert not editor.add_marker("M3") and "already has a marker named M3" in shown(editor._message)
    assert editor.remove_marker("M10") and "M10" not in editor.values.columns
    assert editor.add_marker("M10") and editor.values["M10"].isna().all()
    assert editor.add_population("Pop7") and editor.values.loc["Pop7"].isna().all()
    assert [f.kind for f in editor.findings] == ["no_knowledge"]  # not also "equals Pop1", "equals Pop2", ...
    styles = editor._cell_styles(editor._display())
    assert (styles.loc["Pop7"] == WARNING_CELL).all() and (styles.loc["Pop1"] == "").all()
    editor.set_cell("Pop7", "M1", editor.values.at["Pop1", "M1"])
    assert any(f.kind == "indistinguishable" and set(f.populations) == {"Pop1", "Pop7"} for f in editor.findings)
    assert editor.remove_population("Pop7") and "Pop7" not in editor.values.index


def test_csv_round_trip_and_import_problems_shown_in_the_page(editor):
    editor.load_example()
    editor.set_cell("Pop2", "M3", "0.5")
    text = editor.csv_text()
    assert text.splitlines()[0] == "population," + ",".join(f"M{i}" for i in range(1, 11))
    saved = editor.values.copy()
    editor.reset()
    assert editor.load_csv("mine.csv", text.encode())
    pd.testing.assert_frame_equal(editor.values, saved, check_names=False)

    assert not editor.load_csv("bad.csv", b"population,M1\nA,zz\n")
    message = shown(editor._message)
    assert "bad.csv" in message and "zz" in message and "/tmp" not in message
    assert not editor.load_csv("binary.csv", b"\xff\xfe\x00\x81")
    assert "not a CSV text file" in shown(editor._message)
    pd.testing.assert_frame_equal(editor.values, saved, check_names=False)  # a failed import keeps the table


def test_a_marker_the_cells_lack_is_an_error_painted_on_its_column(editor):
    assert editor.load_csv("t.csv", b"population,M1,CD99\nA,1,-1\nB,-1,1\n")
    errors = [f for f in editor.findings if f.severity == "error"]
    assert errors and errors[0].markers == ("CD99",)
    styles = editor._cell_styles(editor._display())
    assert (styles["CD99"] == ERROR_CELL).all() and (styles["M1"] == "").all()
    assert "Must fix" in editor._findings.object and "CD99" in editor._findings.object


def test_levels_of_an_imported_table_are_kept(editor):
    assert editor.load_csv("t.csv", b"population,M1,M2,level1\nA,1,-1,T\nB,-1,1,B\n")
    assert editor.table().levels["level1"].tolist() == ["T", "B"]
    assert "level1" in editor.csv_text().splitlines()[0]
