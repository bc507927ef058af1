"""The data area's first view: what was loaded, what each cell annotation (obs column) holds, and per-cell QC.

It draws only what ``engine.data.summary`` computed (counts, 50-bin histograms), so the browser
receives a few kilobytes whatever the number of cells. In a served page the headline and the
annotation table come with the page; the pass over every cell and the three plots follow once the
page shows them (on a million cells they made the first content wait more than a second).
"""
from dataclasses import replace

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh backend that .opts below needs)
import numpy as np
import pandas as pd
import panel as pn
import param
from anndata import AnnData
from scipy import sparse

from app.data_kind import look_at
from app.escape import html_text, markdown_text
from engine.data.summary import annotation_columns, summarize

BLOSSOM = "#d95f8e"
TABLE_PAGE = 12
TABLE_COLUMNS = {"column": "annotation", "kind": "kind of values", "categories": "categories",
                 "missing": "cells without a value"}
KIND_WORDS = {"categorical": "categories", "continuous": "numbers", "text": "text", "boolean": "yes / no"}
TOTALS_COUNTS = "total counts per cell"
TOTALS_OTHER = "sum of the values per cell"
GENES_PER_CELL = "genes detected per cell (non-zero)"


def totals_note(values) -> str:
    """Why the per-cell sum is not a cell's count total, when X does not hold raw counts ('' when it does)."""
    if values.counts:
        return ""
    return (f"The values are not raw counts ({values.why_not or 'not whole numbers'}): they look already "
            "normalised, log-transformed or scaled. So the sum of the values per cell is not the number of "
            "molecules a cell had (it can even be negative), and genes detected counts the non-zero values.")

class DataSummary(pn.viewable.Viewer):
    """Headline, obs column table, category counts and QC histograms of one AnnData.

    The panes are built once and updated in place when `adata` changes: panes re-created by
    `param.depends` methods stopped reaching the browser once the summary sat inside tabs.
    """

    adata = param.ClassSelector(class_=AnnData, allow_None=True, doc="The cells to summarise.")
    title = param.String(default="", doc="Where the cells came from, shown above the headline.")
    summary = param.Parameter(default=None, constant=True, doc="engine summary of adata.")

    def __init__(self, **params):
        super().__init__(**params)
        self._headline = pn.pane.Markdown(css_classes=["hanami-headline"], sizing_mode="stretch_width")
        self._non_finite = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["hanami-non-finite"],
                                         sizing_mode="stretch_width")
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(columns=list(TABLE_COLUMNS.values())),
            disabled=True,
            show_index=False,
            layout="fit_data_stretch",
            pagination="local",
            page_size=TABLE_PAGE,
            sizing_mode="stretch_width",
        )
        self._counted: dict = {}
        self._count_choice = pn.widgets.Select(label="annotation", width=220, css_classes=["hanami-count-choice"],
                                               description="A cell annotation with categories (an obs column): "
                                                           "how many cells each category has.")
        # linked_axes off: the bars and the histograms share the name "cells" but not their scale
        self._count_plot = pn.pane.HoloViews(sizing_mode="stretch_width", linked_axes=False)
        self._count_note = pn.pane.Markdown("")
        self._count_choice.param.watch(lambda _: self._show_counts(), "value")
        # two panes rather than one hv Layout: a Layout of responsive plots gets no width in the
        # page, so its figures never paint and the page never reports itself ready to the server
        self._qc_totals = pn.pane.HoloViews(sizing_mode="stretch_width", linked_axes=False)
        self._qc_features = pn.pane.HoloViews(sizing_mode="stretch_width", linked_axes=False)
        self._qc_note = pn.pane.HTML("", visible=False, styles={"color": "#555"}, css_classes=["hanami-qc-note"],
                                     sizing_mode="stretch_width", margin=(0, 10))
        self.param.watch(lambda _: self._show_headline(), "title")
        self._show_annotations(() if self.adata is None else annotation_columns(self.adata.obs))
        pn.state.onload(self._summarize)  # in a served page once it shows; elsewhere at once

    @param.depends("adata", watch=True)
    def _summarize(self):
        with param.edit_constant(self):
            self.summary = None if self.adata is None else summarize(self.adata)
        s = self.summary
        warning = s.non_finite if s is not None else None
        self._non_finite.param.update(object=markdown_text(warning or ""), visible=bool(warning))
        self._show_annotations(() if s is None else s.columns)
        note = "" if s is None else totals_note(look_at(self.adata.X))
        totals = TOTALS_OTHER if note else TOTALS_COUNTS
        self._qc_totals.object = None if s is None else _histogram(s.cell_totals, totals)
        self._qc_features.object = None if s is None else _histogram(s.cell_features, GENES_PER_CELL)
        self._qc_note.param.update(object=f"<small>{html_text(note)}</small>", visible=bool(note))

    def refresh_annotations(self) -> None:
        """The cell annotations changed in place (labels added, results written): summarise them
        again, and leave the per-cell sums of the unchanged X alone (on a million cells, that pass
        is what made adding a label slow)."""
        if self.summary is None:
            return self._summarize()
        with param.edit_constant(self):
            self.summary = replace(self.summary, columns=annotation_columns(self.adata.obs))
        self._show_annotations(self.summary.columns)

    def _show_annotations(self, columns) -> None:
        """The headline, the table of these obs column summaries and the count chooser."""
        self._show_headline()
        self._table.value = pd.DataFrame({
            TABLE_COLUMNS["column"]: [c.name for c in columns],
            TABLE_COLUMNS["kind"]: [KIND_WORDS.get(c.kind, c.kind) for c in columns],
            TABLE_COLUMNS["categories"]: ["" if c.n_categories is None else f"{c.n_categories:,}" for c in columns],
            TABLE_COLUMNS["missing"]: [c.n_missing for c in columns],
        })
        self._counted = {c.name: c for c in columns if c.kind in ("categorical", "boolean")}
        kept = self._count_choice.value in self._counted
        self._count_choice.param.update(
            options=list(self._counted),
            value=self._count_choice.value if kept else next(iter(self._counted), None),
            visible=bool(self._counted),
        )
        self._show_counts()

    def _show_headline(self) -> None:
        """From the cells' shape alone, so that it shows before the pass over every cell."""
        adata = self.adata
        if adata is None or adata.X is None:  # without X, summarize says what is missing
            self._headline.object = "No cells loaded."
            return
        storage = f"{'sparse' if sparse.issparse(adata.X) else 'dense'} {adata.X.dtype}"
        self._headline.object = (
            f"## {markdown_text(self.title)}\n\n**{adata.n_obs:,} cells × {adata.n_vars:,} genes** · "
            f"values stored as {storage} · {len(adata.obs.columns)} cell annotation columns"
        )

    def _show_counts(self) -> None:
        column = self._counted.get(self._count_choice.value)
        if column is None:
            self._count_plot.object, self._count_note.object = None, "No cell annotation has categories to count."
            return
        if self.summary is None:  # the page is still loading: the bars come with the per-cell plots
            return
        self._count_plot.object, self._count_note.object = _bars(column)

    def __panel__(self):
        def card(title, *body):
            return pn.Card(*body, title=title, collapsible=False, sizing_mode="stretch_width")

        return pn.Column(
            self._headline,
            self._non_finite,
            pn.Row(
                card("Cell annotations", self._table),
                card("Category counts", self._count_choice, self._count_plot, self._count_note),
                sizing_mode="stretch_width",
            ),
            card("Per-cell quality", self._qc_note,
                 pn.Row(self._qc_totals, self._qc_features, sizing_mode="stretch_width")),
            sizing_mode="stretch_width",
        )


def _bars(column) -> tuple[hv.Bars, str]:
    """Most frequent categories at the top, and a note of how many were left out or are missing."""
    labels, counts = zip(*column.top_categories) if column.top_categories else ((), ())
    bars = hv.Bars((list(labels)[::-1], list(counts)[::-1]), kdims=["category"], vdims=["cells"]).opts(
        invert_axes=True,
        color=BLOSSOM,
        tools=["hover"],
        responsive=True,
        height=max(160, 22 * len(labels) + 60),
        toolbar=None,
        default_tools=[],
    )
    notes = []
    if column.n_categories > len(labels):
        notes.append(f"top {len(labels)} of {column.n_categories:,} categories")
    if column.n_missing:
        notes.append(f"{column.n_missing:,} cells missing")
    return bars, " · ".join(notes)


def _histogram(values: np.ndarray, label: str) -> hv.Histogram:
    """50 bins computed here, so only the bin edges and counts reach the browser."""
    counts, edges = np.histogram(values, bins=50)
    return hv.Histogram((edges, counts), kdims=[label], vdims=["cells"]).opts(
        color=BLOSSOM,
        line_color="white",
        tools=["hover"],
        responsive=True,
        height=260,
        title=label,
    )
