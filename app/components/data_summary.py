"""The data area's first view: what was loaded, what each obs column holds, and per-cell QC.

It draws only what ``engine.data.summary`` computed (counts, 50-bin histograms), so the browser
receives a few kilobytes whatever the number of cells.
"""
import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh backend that .opts below needs)
import numpy as np
import pandas as pd
import panel as pn
import param
from anndata import AnnData

from app.escape import markdown_text
from engine.data.summary import summarize

BLOSSOM = "#d95f8e"
TABLE_PAGE = 12


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
            pd.DataFrame(columns=["column", "kind", "categories", "missing"]),
            disabled=True,
            show_index=False,
            layout="fit_data_stretch",
            pagination="local",
            page_size=TABLE_PAGE,
            sizing_mode="stretch_width",
        )
        self._counted: dict = {}
        self._count_choice = pn.widgets.Select(label="obs column", width=220, css_classes=["hanami-count-choice"])
        # linked_axes off: the bars and the histograms share the name "cells" but not their scale
        self._count_plot = pn.pane.HoloViews(sizing_mode="stretch_width", linked_axes=False)
        self._count_note = pn.pane.Markdown("")
        self._count_choice.param.watch(lambda _: self._show_counts(), "value")
        # two panes rather than one hv Layout: a Layout of responsive plots gets no width in the
        # page, so its figures never paint and the page never reports itself ready to the server
        self._qc_totals = pn.pane.HoloViews(sizing_mode="stretch_width", linked_axes=False)
        self._qc_features = pn.pane.HoloViews(sizing_mode="stretch_width", linked_axes=False)
        self.param.watch(lambda _: self._show_headline(), "title")
        self._summarize()

    @param.depends("adata", watch=True)
    def _summarize(self):
        with param.edit_constant(self):
            self.summary = None if self.adata is None else summarize(self.adata)
        s = self.summary
        self._show_headline()
        warning = s.non_finite if s is not None else None
        self._non_finite.param.update(object=markdown_text(warning or ""), visible=bool(warning))
        self._table.value = pd.DataFrame(
            {
                "column": [c.name for c in s.columns],
                "kind": [c.kind for c in s.columns],
                "categories": ["" if c.n_categories is None else f"{c.n_categories:,}" for c in s.columns],
                "missing": [c.n_missing for c in s.columns],
            }
            if s is not None
            else {"column": [], "kind": [], "categories": [], "missing": []}
        )
        self._counted = {c.name: c for c in s.columns if c.kind in ("categorical", "boolean")} if s else {}
        kept = self._count_choice.value in self._counted
        self._count_choice.param.update(
            options=list(self._counted),
            value=self._count_choice.value if kept else next(iter(self._counted), None),
            visible=bool(self._counted),
        )
        self._show_counts()
        self._qc_totals.object = None if s is None else _histogram(s.cell_totals, "sum of X per cell")
        self._qc_features.object = None if s is None else _histogram(s.cell_features, "non-zero genes per cell")

    def _show_headline(self) -> None:
        s = self.summary
        if s is None:
            self._headline.object = "No cells loaded."
            return
        storage = f"{'sparse' if s.sparse else 'dense'} {s.dtype}"
        self._headline.object = (
            f"## {markdown_text(self.title)}\n\n**{s.n_cells:,} cells × {s.n_genes:,} genes** · "
            f"X is {storage} · {len(s.columns)} obs columns"
        )

    def _show_counts(self) -> None:
        column = self._counted.get(self._count_choice.value)
        if column is None:
            self._count_plot.object, self._count_note.object = None, "No categorical obs columns."
            return
        self._count_plot.object, self._count_note.object = _bars(column)

    def __panel__(self):
        def card(title, *body):
            return pn.Card(*body, title=title, collapsible=False, sizing_mode="stretch_width")

        return pn.Column(
            self._headline,
            self._non_finite,
            pn.Row(
                card("Cell annotations (obs)", self._table),
                card("Category counts", self._count_choice, self._count_plot, self._count_note),
                sizing_mode="stretch_width",
            ),
            card("Per-cell QC", pn.Row(self._qc_totals, self._qc_features, sizing_mode="stretch_width")),
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
