"""The knowledge table editor: which markers each population carries, typed in the page.

Rows are populations, columns markers; a cell takes 1, -1, 0, a fraction or a blank (the rules
are `app.builders.knowledge_cells`). Populations and markers are added and removed by name (a
marker must be measured in the loaded cells; close names are suggested), a CSV is imported
through `engine.read_knowledge_table` and exported in the same shape. After every change the
engine's `diagnose_table` runs against the cells, and each finding is shown twice: as the colour
of the cells it concerns, and as a line under the table. Every public method is what a control
does, so tests and notebooks drive the editor without a browser.
"""
from __future__ import annotations

import csv
import io
import math
import tempfile
from pathlib import Path, PurePath

import pandas as pd
import panel as pn
import param

from app.builders.knowledge_cells import (
    cell_text, empty_values, knowledge_table, marker_problem, new_name, parse_cell, starting_markers, table_csv,
)
from app.builders.widgets import alert, help_line, say
from app.demo import example_table
from app.escape import html_text
from app.state import StudioState
from engine.data.errors import InputError
from engine.data.knowledge import read_knowledge_table
from engine.data.table_diagnostics import TableFinding, diagnose_table

MAX_CSV_BYTES = 1_000_000
ERROR_CELL = "background-color: #fbd5d5"
WARNING_CELL = "background-color: #fdf0c8"
HELP = ("One row per population, one column per marker. Type 1 where the population has the marker, -1 where "
        "it lacks it, a fraction such as 0.5 for an intermediate level, and leave a cell blank where you do not "
        "know. Red cells stop the model from being built; yellow ones are advice.")
EMPTY_HINT = ("The table has no population yet: add one below (and markers, if the columns are not there yet), "
              "or import a CSV of populations by markers.")


class KnowledgeTableEditor(pn.viewable.Viewer):
    """`values` (populations x markers, NaN unknown), hierarchy `levels` kept from an import,
    `findings` (the engine's diagnostics); `changed` fires after every accepted change."""

    state = param.ClassSelector(class_=StudioState, doc="The session whose cells the table is checked against.")
    changed = param.Event(doc="Fires after every change the table accepted.")

    def __init__(self, state: StudioState, **params):
        super().__init__(state=state, **params)
        self.values = empty_values()
        self.levels: pd.DataFrame | None = None
        self.findings: list[TableFinding] = []
        self._grid = pn.widgets.Tabulator(
            self._display(), show_index=True, selectable=False, sortable=False, layout="fit_data_table",
            editors={"population": None}, css_classes=["hanami-table-grid"], sizing_mode="stretch_width",
            max_height=420,
        )
        self._grid.style.apply(self._cell_styles, axis=None)
        self._grid.on_edit(self._on_edit)
        self._message = alert("hanami-table-message")
        self._findings = pn.pane.HTML("", css_classes=["hanami-table-findings"], sizing_mode="stretch_width",
                                      margin=(0, 5))
        self._build_widgets()
        state.param.watch(self._on_data, "adata")
        self.reset()

    # -- public actions ----------------------------------------------------------------------
    def reset(self) -> None:
        """A fresh table for the loaded cells: every marker of a small panel as a column, no population."""
        adata = self.state.adata
        self.levels = None
        self.values = empty_values(starting_markers(adata.var_names) if adata is not None else [])
        self._example.visible = self._example_matches()
        self._accepted()

    def set_cell(self, population: str, marker: str, text) -> bool:
        """Type `text` into a cell; a value that is no level is refused with the reason (False)."""
        try:
            value = parse_cell(text)
        except ValueError as error:
            old = self.values.at[population, marker] if self._has(population, marker) else math.nan
            self._show()  # the cell shows its old value again
            say(self._message, "danger", f"{population}, {marker}: {error} The cell keeps "
                                         f"{cell_text(old) or 'its blank'}.")
            return False
        if not self._has(population, marker):
            say(self._message, "danger", f"The table has no cell for {population} and {marker}.")
            return False
        self.values.at[population, marker] = value
        self._message.visible = False
        self._accepted()
        return True

    def add_population(self, typed: str) -> bool:
        return self._add("population", typed)

    def add_marker(self, typed: str) -> bool:
        return self._add("marker", typed)

    def remove_population(self, name: str) -> bool:
        return self._remove("population", name)

    def remove_marker(self, name: str) -> bool:
        return self._remove("marker", name)

    def load_csv(self, filename: str, data: bytes) -> bool:
        """Read an uploaded CSV with `engine.read_knowledge_table`; a problem is shown, the table kept."""
        name = PurePath(filename or "table.csv").name
        if len(data) > MAX_CSV_BYTES:
            say(self._message, "danger", f"{name} is larger than {MAX_CSV_BYTES // 1_000_000} MB: a knowledge "
                                         "table is a few rows of populations by markers.")
            return False
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "table.csv"
            path.write_bytes(data)
            try:
                table = read_knowledge_table(path)
            except InputError as error:
                say(self._message, "danger", str(error).replace(str(path), name))
                return False
            except (UnicodeDecodeError, csv.Error):
                say(self._message, "danger", f"{name} is not a CSV text file: save the table as CSV (UTF-8) "
                                             "with population names in the first column and one marker per column.")
                return False
        self.values, self.levels = table.values.astype(float), (table.levels if len(table.levels.columns) else None)
        say(self._message, "success", f"{name}: {len(table.populations)} populations × {len(table.markers)} "
                                      "markers imported.")
        self._accepted()
        return True

    def load_example(self) -> bool:
        """The table the generated example cells were drawn from (offered only when they are loaded)."""
        if not self._example_matches():
            say(self._message, "danger", "The example table's markers are not in these cells.")
            return False
        table = example_table()
        self.values, self.levels = table.values.astype(float).copy(), None
        say(self._message, "success", "The example table is loaded: the generated cells were drawn from it.")
        self._accepted()
        return True

    def csv_text(self) -> str:
        return table_csv(self.values, self.levels)

    def table(self):
        """The engine's `KnowledgeTable`, or InputError when the table is empty or inconsistent."""
        return knowledge_table(self.values, self.levels)

    # -- widgets -----------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        adata = self.state.adata
        self._population_name = pn.widgets.TextInput(
            placeholder="e.g. CD4 T cells", width=200, css_classes=["hanami-table-population-name"],
            description="The name of a population to add as a new row (all its cells start blank).")
        self._marker_name = pn.widgets.AutocompleteInput(
            placeholder="e.g. CD3", width=200, case_sensitive=False, search_strategy="includes", min_characters=1,
            restrict=False, options=[] if adata is None else [str(v) for v in adata.var_names],
            css_classes=["hanami-table-marker-name"],
            description="A marker measured in these cells, added as a new column (all its cells start blank).")
        self._population_pick = pn.widgets.Select(width=200, css_classes=["hanami-table-population-pick"],
                                                  description="The population (row) that Remove takes out.")
        self._marker_pick = pn.widgets.Select(width=200, css_classes=["hanami-table-marker-pick"],
                                              description="The marker (column) that Remove takes out.")

        def button(label, css, action, help_text):
            made = pn.widgets.Button(label=label, width=150, css_classes=[css], description=help_text)
            made.on_click(lambda _: action())
            return made

        self._buttons = [
            button("Add population", "hanami-table-add-population",
                   lambda: self.add_population(self._population_name.value), "Add the named population as a row."),
            button("Remove population", "hanami-table-remove-population",
                   lambda: self.remove_population(self._population_pick.value), "Take the chosen row out."),
            button("Add marker", "hanami-table-add-marker",
                   lambda: self.add_marker(self._marker_name.value), "Add the named marker as a column."),
            button("Remove marker", "hanami-table-remove-marker",
                   lambda: self.remove_marker(self._marker_pick.value), "Take the chosen column out."),
        ]
        self._example = button("Load example table", "hanami-table-example", self.load_example,
                               "The table the generated example cells were drawn from.")
        self._upload = pn.widgets.FileInput(accept=".csv", multiple=False, css_classes=["hanami-table-import"],
                                            label="import a table (.csv)",
                                            description="A CSV of populations (rows) by markers (columns): 1, -1, "
                                                        "fractions or blanks; 'level' columns give a hierarchy.")
        self._upload.param.watch(lambda event: event.new and self.load_csv(self._upload.filename, event.new), "value")
        self._download = pn.widgets.FileDownload(
            callback=lambda: io.StringIO(self.csv_text()), filename="knowledge_table.csv", label="Export CSV",
            color="light", width=150, css_classes=["hanami-table-export"],
            description="The table as a CSV file, which Import (here or in Python) reads back.")

    def _on_data(self, _event) -> None:
        self._marker_name.options = [] if self.state.adata is None else [str(v) for v in self.state.adata.var_names]
        self.reset()

    def _on_edit(self, event) -> None:
        self.set_cell(str(self.values.index[event.row]), str(event.column), event.value)

    # -- changes -----------------------------------------------------------------------------
    def _has(self, population: str, marker: str) -> bool:
        return population in self.values.index and marker in self.values.columns

    def _add(self, kind: str, typed: str) -> bool:
        existing = self.values.index if kind == "population" else self.values.columns
        try:
            name = new_name(typed, kind, existing)
            adata = self.state.adata
            problem = marker_problem(name, adata.var_names) if kind == "marker" and adata is not None else None
            if problem:
                raise ValueError(problem)
        except ValueError as error:
            say(self._message, "danger", str(error))
            return False
        if kind == "population":
            self.values.loc[name] = math.nan
            if self.levels is not None:
                self.levels.loc[name] = ""
            self._population_name.value = ""
        else:
            self.values[name] = math.nan
            self._marker_name.value = ""
        say(self._message, "success", f"Added the {kind} {name}; its cells are blank (unknown) until you type levels.")
        self._accepted()
        return True

    def _remove(self, kind: str, name: str) -> bool:
        existing = self.values.index if kind == "population" else self.values.columns
        if name not in existing:
            say(self._message, "danger", f"Choose a {kind} to remove.")
            return False
        if kind == "population":
            self.values = self.values.drop(index=name)
            self.levels = None if self.levels is None else self.levels.drop(index=name)
        else:
            self.values = self.values.drop(columns=name)
        say(self._message, "success", f"Removed the {kind} {name}.")
        self._accepted()
        return True

    def _accepted(self) -> None:
        """Diagnose the new table against the cells, show it and its findings, tell the builder."""
        self.findings = self._diagnose()
        self._show()
        self.param.trigger("changed")

    def _diagnose(self) -> list[TableFinding]:
        try:
            table = self.table()
        except InputError:
            return []  # an empty table: the hint says what to do
        found = diagnose_table(table, self.state.adata)
        # A population with no known level is one finding, not also one per population it equals.
        blank = {p for f in found if f.kind == "no_knowledge" for p in f.populations}
        return [f for f in found if not (f.kind == "indistinguishable" and blank & set(f.populations))]

    # -- showing -----------------------------------------------------------------------------
    def _display(self) -> pd.DataFrame:
        shown = self.values.astype(object).map(cell_text).astype(object)  # text even when empty: typed cells stay text
        shown.index = shown.index.astype(str).rename("population")
        return shown

    def _show(self) -> None:
        self._grid.value = self._display()
        for pick, names in ((self._population_pick, self.values.index), (self._marker_pick, self.values.columns)):
            options = [str(n) for n in names]
            pick.options = options
            if pick.value not in options:
                pick.value = options[0] if options else None
        self._findings.object = self._findings_html()

    def _findings_html(self) -> str:
        if self.values.empty:
            return f"<p class='hanami-table-hint'>{html_text(EMPTY_HINT)}</p>"
        if not self.findings:
            return "<p class='hanami-table-ok'>No problem found in the table for these cells.</p>"
        items = "".join(
            f"<li class='hanami-finding-{f.severity}' style='{ERROR_CELL if f.severity == 'error' else WARNING_CELL}; "
            f"padding: 2px 6px; margin: 2px 0'><b>{'Must fix' if f.severity == 'error' else 'Advice'}:</b> "
            f"{html_text(f.message)}</li>"
            for f in self.findings
        )
        return f"<ul style='list-style: none; padding-left: 0; margin: 4px 0'>{items}</ul>"

    def _cell_styles(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each finding's colour on the cells it concerns: its markers' columns, its populations' rows."""
        styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
        for finding in sorted(self.findings, key=lambda f: f.severity == "error"):  # errors painted last
            colour = ERROR_CELL if finding.severity == "error" else WARNING_CELL
            for marker in finding.markers:
                if marker in styles.columns:
                    styles[marker] = colour
            rows = styles.index.isin([str(p) for p in finding.populations])
            styles.loc[rows, :] = colour
        return styles

    def _example_matches(self) -> bool:
        adata = self.state.adata
        return adata is not None and set(example_table().markers) <= set(map(str, adata.var_names))

    def __panel__(self):
        return pn.Column(
            help_line(HELP),
            pn.Row(self._example, self._upload, self._download),
            self._grid,
            self._message,
            self._findings,
            pn.Row(self._population_name, self._buttons[0], self._population_pick, self._buttons[1]),
            pn.Row(self._marker_name, self._buttons[2], self._marker_pick, self._buttons[3]),
            sizing_mode="stretch_width",
            css_classes=["hanami-table-editor"],
        )
