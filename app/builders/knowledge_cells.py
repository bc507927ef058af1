"""The knowledge table editor's rules, without widgets: what a cell may hold, which names are usable.

A cell takes 1 (the population has the marker), -1 (it lacks it), 0, a fraction between -1 and 1
(an intermediate level) or a blank (nobody knows). The editor shows every value as text and turns
what a user types back into a number here, so the rules are tested without a browser.
"""
from __future__ import annotations

import io
import math
from difflib import get_close_matches

import pandas as pd

from engine.data.knowledge import UNKNOWN_WORDS, KnowledgeTable

CELL_RULE = "use 1 (has the marker), -1 (lacks it), 0, a fraction such as 0.5, or leave it blank (unknown)"
SMALL_PANEL = 40  # data with at most this many markers starts with all of them as columns


def parse_cell(text) -> float:
    """The number a typed cell means (NaN for blank), or ValueError saying what a cell may hold."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return math.nan
    typed = str(text).strip()
    if typed.lower() in UNKNOWN_WORDS:
        return math.nan
    try:
        value = float(typed.replace(",", ".", 1) if typed.count(",") == 1 and "." not in typed else typed)
    except ValueError:
        raise ValueError(f"{typed} is not a level: {CELL_RULE}.") from None
    if not math.isfinite(value) or not -1 <= value <= 1:
        raise ValueError(f"{typed} lies outside -1 to 1: {CELL_RULE}.")
    return value


def cell_text(value) -> str:
    """How a value shows in the editor: blank for unknown, else the shortest number (1, -1, 0.5)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{float(value):g}"


def new_name(typed: str, kind: str, existing) -> str:
    """A population or marker name to add: stripped, not blank, not already in the table."""
    name = str(typed or "").strip()
    if not name:
        raise ValueError(f"Type a {kind} name first.")
    if "level" in name.lower():
        raise ValueError(f"{name}: a name containing 'level' would be read back as a hierarchy column "
                         f"from a CSV; choose another {kind} name.")
    if name in [str(e) for e in existing]:
        raise ValueError(f"The table already has a {kind} named {name}.")
    return name


def marker_problem(name: str, var_names) -> str | None:
    """Why `name` is no marker of the data (with the closest names measured), or None if it is."""
    names = [str(v) for v in var_names]
    if name in names:
        return None
    by_upper = {n.upper(): n for n in names}
    if name.upper() in by_upper:
        return f"{name} is not measured in these cells, but {by_upper[name.upper()]} is: use that spelling."
    close = [by_upper[c] for c in get_close_matches(name.upper(), list(by_upper), n=4, cutoff=0.6)]
    hint = f" Close names: {', '.join(close)}." if close else " No measured marker has a similar name."
    return f"{name} is not among the {len(names):,} markers measured in these cells.{hint}"


def empty_values(markers=()) -> pd.DataFrame:
    """A table with these markers as columns and no population yet."""
    return pd.DataFrame(index=pd.Index([], name="population", dtype=object), columns=list(markers), dtype=float)


def starting_markers(var_names) -> list[str]:
    """The columns a new table starts with: every marker of a small panel, none of an RNA matrix."""
    names = [str(v) for v in var_names]
    return names if len(names) <= SMALL_PANEL else []


def table_csv(values: pd.DataFrame, levels: pd.DataFrame | None = None) -> str:
    """The table as CSV text that `engine.read_knowledge_table` reads back (blank = unknown)."""
    frame = values.copy()
    if levels is not None and len(levels.columns):
        frame = pd.concat([frame, levels.reindex(frame.index)], axis=1)
    frame.index.name = "population"
    buffer = io.StringIO()
    frame.to_csv(buffer, na_rep="", float_format="%g")
    return buffer.getvalue()


def knowledge_table(values: pd.DataFrame, levels: pd.DataFrame | None = None) -> KnowledgeTable:
    """The engine's table (its checks run here: InputError when empty or inconsistent)."""
    kept = None if levels is None or not len(levels.columns) else levels.reindex(values.index).fillna("")
    return KnowledgeTable(values=values.astype(float), levels=kept, source="the knowledge table")
