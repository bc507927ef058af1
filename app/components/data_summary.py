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

from engine.data.summary import summarize

BLOSSOM = "#d95f8e"
TABLE_PAGE = 12


class DataSummary(pn.viewable.Viewer):
    """Headline, obs column table, category counts and QC histograms of one AnnData."""

    adata = param.ClassSelector(class_=AnnData, allow_None=True, doc="The cells to summarise.")
    title = param.String(default="", doc="Where the cells came from, shown above the headline.")
    summary = param.Parameter(default=None, constant=True, doc="engine summary of adata.")

    @param.depends("adata", watch=True, on_init=True)
    def _summarize(self):
        with param.edit_constant(self):
            self.summary = None if self.adata is None else summarize(self.adata)

    @param.depends("summary", "title")
    def _headline(self):
        s = self.summary
        if s is None:
            return pn.pane.Markdown("No cells loaded.")
        storage = f"{'sparse' if s.sparse else 'dense'} {s.dtype}"
        return pn.pane.Markdown(
            f"## {self.title}\n\n**{s.n_cells:,} cells × {s.n_genes:,} genes** · "
            f"X is {storage} · {len(s.columns)} obs columns",
            css_classes=["hanami-headline"],
            sizing_mode="stretch_width",
        )

    @param.depends("summary")
    def _columns_table(self):
        s = self.summary
        if s is None:
            return None
        frame = pd.DataFrame(
            {
                "column": [c.name for c in s.columns],
                "kind": [c.kind for c in s.columns],
                "categories": ["" if c.n_categories is None else f"{c.n_categories:,}" for c in s.columns],
                "missing": [c.n_missing for c in s.columns],
            }
        )
        return pn.widgets.Tabulator(
            frame,
            disabled=True,
            show_index=False,
            layout="fit_data_stretch",
            pagination="local" if len(frame) > TABLE_PAGE else None,
            page_size=TABLE_PAGE,
            sizing_mode="stretch_width",
        )

    @param.depends("summary")
    def _category_counts(self):
        s = self.summary
        counted = {c.name: c for c in s.columns if c.kind in ("categorical", "boolean")} if s else {}
        if not counted:
            return pn.pane.Markdown("No categorical obs columns.")
        choice = pn.widgets.Select(label="obs column", options=list(counted), width=220)
        return pn.Column(choice, pn.bind(lambda name: _bars(counted[name]), choice))

    @param.depends("summary")
    def _qc(self):
        s = self.summary
        if s is None:
            return None
        plots = _histogram(s.cell_totals, "sum of X per cell") + _histogram(
            s.cell_features, "non-zero genes per cell"
        )
        return pn.pane.HoloViews(plots.opts(shared_axes=False), sizing_mode="stretch_width")

    def __panel__(self):
        def card(title, body):
            return pn.Card(body, title=title, collapsible=False, sizing_mode="stretch_width")

        return pn.Column(
            self._headline,
            pn.Row(
                card("Cell annotations (obs)", pn.panel(self._columns_table)),
                card("Category counts", pn.panel(self._category_counts)),
                sizing_mode="stretch_width",
            ),
            card("Per-cell QC", pn.panel(self._qc)),
            sizing_mode="stretch_width",
        )


def _bars(column) -> pn.Column:
    """Most frequent categories at the top, with how many were left out and how many are missing."""
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
    view = pn.Column(pn.pane.HoloViews(bars, sizing_mode="stretch_width"), sizing_mode="stretch_width")
    if notes:
        view.append(pn.pane.Markdown(" · ".join(notes)))
    return view


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
