"""Knowledge tables: which markers each population carries, as the user knows it.

A table has populations as rows and markers as columns. A value of 1 means the population
expresses the marker, -1 that it does not, fractions such as 0.5 an intermediate level, and a
blank that nobody knows (NaN), which population models treat differently from a firm -1.
Columns whose name contains "level" hold a hierarchy (for example "T cells" above "CD4 T") and
are kept apart from the markers.
"""
import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.errors import InputError

UNKNOWN_WORDS = {"", "na", "nan"}


@dataclass
class KnowledgeTable:
    """Marker values (float, NaN = unknown) and optional hierarchy levels, one row per population.

    The checks run on construction, so a table built in code (for example by the app's table
    editor) is held to the same rules as one read from a file; ``source`` names it in messages.
    """

    values: pd.DataFrame
    levels: pd.DataFrame | None = None
    source: str = "knowledge table"

    def __post_init__(self):
        if self.values.shape[0] == 0 or self.values.shape[1] == 0:
            raise InputError(
                f"{self.source} is empty: it needs at least one population (row) and one marker "
                "(column) besides the population names."
            )
        _refuse_duplicates(self.values.index, "population", self.source)
        _refuse_duplicates(self.values.columns, "marker", self.source)
        try:
            self.values = self.values.astype(float)
        except (TypeError, ValueError):
            raise InputError(f"{self.source}: marker values must be numbers between -1 and 1 or blank.") from None
        outside = np.argwhere(np.abs(self.values.to_numpy()) > 1)
        if len(outside):
            i, j = outside[0]
            raise InputError(
                f"{self.source}: population '{self.values.index[i]}', marker '{self.values.columns[j]}' has "
                f"value {self.values.iat[i, j]:g}; values must lie between -1 (absent) and 1 (present), "
                "or be blank (unknown)."
            )
        if self.levels is None:
            self.levels = pd.DataFrame(index=self.values.index)
        elif not self.levels.index.equals(self.values.index):
            raise InputError(f"{self.source}: the level columns must have one row per population, in the same order.")

    @property
    def populations(self) -> list[str]:
        return list(self.values.index)

    @property
    def markers(self) -> list[str]:
        return list(self.values.columns)

    def validate(self, adata) -> None:
        """Raise an InputError naming every marker of the table that the data lacks."""
        var_names = set(adata.var_names)
        missing = [m for m in self.markers if m not in var_names]
        if not missing:
            return
        by_lower = {str(v).lower(): str(v) for v in adata.var_names}
        described = [
            f"'{m}' (did you mean '{by_lower[m.lower()]}'?)" if m.lower() in by_lower else f"'{m}'" for m in missing
        ]
        raise InputError(
            f"{self.source}: {len(missing)} marker(s) are not among the data's gene or marker names: "
            f"{', '.join(described)}. Rename the table columns to match the data, or drop them."
        )


def read_knowledge_table(path) -> KnowledgeTable:
    """Read a CSV knowledge table: first column population names, then markers and level columns."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Knowledge table {path} does not exist: check the path.")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [(number, row) for number, row in enumerate(csv.reader(handle), start=1) if any(c.strip() for c in row)]
    if not rows:
        raise InputError(
            f"Knowledge table {path} is empty: expected a header row of markers and one row per population."
        )
    header = [c.strip() for c in rows[0][1]]
    _refuse_duplicates(header[1:], "marker", str(path))
    for number, row in rows[1:]:
        if len(row) != len(header):
            raise InputError(
                f"Knowledge table {path}, line {number}: {len(row)} fields where the header has "
                f"{len(header)}; every row needs one value (or a blank) per column."
            )
    populations = [row[0].strip() for _, row in rows[1:]]
    for (number, _), name in zip(rows[1:], populations):
        if not name:
            raise InputError(f"Knowledge table {path}, line {number}: the population name (first column) is blank.")
    level_columns = [i for i, name in enumerate(header) if i > 0 and "level" in name.lower()]
    marker_columns = [i for i in range(1, len(header)) if i not in level_columns]
    values = pd.DataFrame(
        [[_number(row[i], path, row[0].strip(), header[i]) for i in marker_columns] for _, row in rows[1:]],
        index=pd.Index(populations, name="population"),
        columns=[header[i] for i in marker_columns],
    )
    levels = pd.DataFrame(
        {header[i]: [row[i].strip() for _, row in rows[1:]] for i in level_columns},
        index=values.index,
    )
    return KnowledgeTable(values=values, levels=levels, source=f"Knowledge table {path}")


def _number(text, path, population, marker):
    text = text.strip()
    if text.lower() in UNKNOWN_WORDS:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise InputError(
            f"Knowledge table {path}: population '{population}', marker '{marker}' has value '{text}', "
            "which is not a number; use 1, -1, a fraction such as 0.5, or leave it blank (unknown)."
        ) from None


def _refuse_duplicates(names, kind, source):
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise InputError(
            f"{source}: {kind} name(s) appear more than once: {', '.join(map(str, repeated))}. "
            f"Each {kind} must be named once."
        )
