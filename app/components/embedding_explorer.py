"""The embedding area: any number of cells drawn by datashader, coloured, selected and labelled.

Every action is a public method (``set_view``, ``color_by``, ``select_box``, ``select_lasso``,
``add_label``, ``compare``, ``png_bytes``), so tests and notebooks drive it without a canvas; the
widgets and the plot's box and lasso streams call the same methods. A failed action shows its
reason in the alert and changes nothing. The browser only ever receives one shaded image per
update: selections come back as a box or a polygon and are resolved to cells here. The side
panel's view and colour widgets are `embedding_controls.ViewControls`.
"""
from __future__ import annotations

import asyncio
from contextlib import contextmanager

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh backend that .opts below needs)
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter, ScientificFormatter

from app.components.embedding_controls import SIDE_WIDTH, ViewControls
from app.components.embedding_legend import CategoryLegend
from app.embedding.coloring import Coloring, color_values, default_coloring
from app.embedding.compare import COLUMN_NAMES, COLUMNS, METHODS, Comparison, compare_groups
from app.embedding.coords import coordinates, embedding_keys, umap_key
from app.embedding.labels import write_label
from app.embedding.select import in_box, in_polygon
from app.embedding.shade import LABEL, axes, extent, png, points_element, points_frame, shaded
from app.escape import markdown_text
from app.state import StudioState

DEFAULT_COLUMN = "hanami_selection"
SELECTION_COLORS = {"A": "#d95f8e", "B": "#2b6cb0"}
PLOT_HEIGHT = 560
NO_CELLS = np.empty(0, dtype=np.int64)
NO_SELECTION = ("No selection yet: choose the box or lasso tool above the plot and draw around cells. "
                "Your first selection is A, the next is B.")


class EmbeddingExplorer(ViewControls, pn.viewable.Viewer):
    """One embedding of the session's cells, with a legend, selections A and B, labels and markers."""

    state = param.ClassSelector(class_=StudioState, doc="The session's cells; watched for new data and obs columns.")
    selected = param.Integer(default=0, doc="Bumped when cells are selected; the latest selection is selections[-1].")

    def __init__(self, state: StudioState, **params):
        super().__init__(state=state, **params)
        self.key: str | None = None
        self.mode = "dimensions"
        self.dims = (0, 1)
        self.coloring: Coloring | None = None
        self.frame: pd.DataFrame | None = None
        self.selections: list[tuple[np.ndarray, tuple | None]] = []
        self._xy: np.ndarray | None = None
        self._all: pd.DataFrame | None = None
        self._pipe = hv.streams.Pipe(data=None)
        self._outlines = hv.streams.Pipe(data=[])
        self._range: hv.streams.RangeXY | None = None
        self._box: hv.streams.BoundsXY | None = None
        self._lasso: hv.streams.Lasso | None = None
        self._signature = None
        self._syncing = False
        self.dim_names: dict[str, list[str]] = {}  # embedding key -> what its dimensions are called (markers)

        self.alert = pn.pane.Alert(visible=False, alert_type="danger", sizing_mode="stretch_width")
        self.legend = CategoryLegend()
        self.results = pn.widgets.Tabulator(
            pd.DataFrame(columns=COLUMNS),
            disabled=True,
            show_index=False,
            visible=False,
            layout="fit_data_stretch",
            pagination="local",
            page_size=10,
            formatters={
                COLUMN_NAMES["scores"]: NumberFormatter(format="0.00"),
                COLUMN_NAMES["logfoldchanges"]: NumberFormatter(format="0.00"),
                COLUMN_NAMES["pvals_adj"]: ScientificFormatter(precision=2),
            },
            sizing_mode="stretch_width",
        )
        self._pane = pn.pane.HoloViews(None, min_height=PLOT_HEIGHT, sizing_mode="stretch_width")
        self._plot = None
        # Until the browser has connected, HoloViews re-schedules a datashaded plot's refresh on
        # every event-loop tick (for as long as the session lives, if no browser ever opens it),
        # so a served page is given its plot once it has loaded.
        doc = pn.state.curdoc
        self._page_ready = doc is None or doc.session_context is None or pn.state.loaded
        if not self._page_ready:
            pn.state.onload(self._on_page_ready)
        self._status = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._selection_note = pn.pane.Markdown(NO_SELECTION, css_classes=["hanami-selection-note"])
        self._results_note = pn.pane.Markdown("", css_classes=["hanami-compare-note"], sizing_mode="stretch_width")
        self._build_widgets()
        self.legend.param.watch(self._on_hidden, "hidden")
        state.param.watch(self._on_state, ["adata", "obs_version"])
        self._reset()

    @property
    def plot(self):
        """The holoviews object shown: the shaded cells overlaid with the A/B outlines."""
        return self._plot

    # ----- public actions -----------------------------------------------------------------

    def set_view(self, embedding_key: str, mode: str = "dimensions", dims: tuple[int, int] = (0, 1)) -> None:
        """Draw ``obsm[embedding_key]``: two of its dimensions, or its UMAP (computed once, cached)."""
        adata = self.state.adata
        if adata is None:
            return self._fail("No cells loaded.")
        computes_umap = mode == "umap" and umap_key(embedding_key) not in adata.obsm
        try:
            xy = coordinates(adata, embedding_key, mode, dims)
        except ValueError as error:
            return self._fail(error)
        self.key, self.mode, self.dims, self._xy = embedding_key, mode, (int(dims[0]), int(dims[1])), xy
        self.selections = [(cells, None) for cells, _ in self.selections]
        self.coloring = self.coloring or default_coloring(adata)
        self._render()
        self._show_selections()
        self._sync_widgets()
        self._ok()
        if computes_umap:
            self.state.touch_obs()

    def color_by(self, kind: str, name) -> None:
        """Colour by an obs column, a gene of X, or a latent dimension (``3`` or ``'X_pca:3'``)."""
        adata = self.state.adata
        if adata is None or self._xy is None:
            return self._fail("Show an embedding before colouring it.")
        try:
            coloring = color_values(adata, kind, name, self.key)
        except ValueError as error:
            return self._fail(error)
        self._apply_coloring(coloring, keep_hidden=False)
        self._render()
        self._sync_widgets()
        self._ok()

    def select_box(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """Cells shown inside the box; they become the latest selection."""
        if self.frame is None:
            return self._fail("Show an embedding before selecting cells.", NO_CELLS)
        mask = in_box(self.frame["x"].to_numpy(), self.frame["y"].to_numpy(), x0, y0, x1, y1)
        return self._keep(mask, ([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]))

    def select_lasso(self, xs, ys) -> np.ndarray:
        """Cells shown inside the lasso polygon; they become the latest selection."""
        if self.frame is None:
            return self._fail("Show an embedding before selecting cells.", NO_CELLS)
        mask = in_polygon(self.frame["x"].to_numpy(), self.frame["y"].to_numpy(), xs, ys)
        closed = (list(xs) + list(xs[:1]), list(ys) + list(ys[:1]))
        return self._keep(mask, closed)

    def add_label(self, name: str, column: str = DEFAULT_COLUMN) -> None:
        """Write ``name`` into the categorical ``obs[column]`` for the latest selection."""
        if not self.selections:
            return self._fail("Select cells with the box or lasso tool before adding a label.")
        try:
            write_label(self.state.adata.obs, self.selections[-1][0], name, column)
        except ValueError as error:
            return self._fail(error)
        self._ok(f"Labelled {self.selections[-1][0].size:,} cells \"{name.strip()}\" in the annotation column "
                 f"{column.strip()}. Colour by that annotation to see them; 5 · Export takes the labels home.")
        self.state.touch_obs()

    def compare(self, method: str | None = None) -> pd.DataFrame:
        """Top marker genes of A against B (and B against A), shown in the results table."""
        if len(self.selections) < 2:
            message = "Make two selections first: the older is A, the latest is B."
            return self._fail(message, pd.DataFrame(columns=COLUMNS))
        (a, _), (b, _) = self.selections
        try:
            comparison = compare_groups(self.state.adata, a, b, method or self._method.value)
        except ValueError as error:
            return self._fail(error, pd.DataFrame(columns=COLUMNS))
        return self._show_comparison(comparison)

    async def _compare_clicked(self, _event) -> None:
        """Compare from the button: ranked in a worker thread, so the page and other users go on;
        a result that arrives after the selections changed is dropped."""
        if len(self.selections) < 2:
            return self.compare()
        selections, adata = list(self.selections), self.state.adata
        (a, _), (b, _) = selections
        self._compare_button.loading = True
        self._results_note.object = "Ranking genes between A and B…"
        try:
            comparison = await asyncio.to_thread(compare_groups, adata, a, b, self._method.value)
        except ValueError as error:
            self._results_note.object = ""
            return self._fail(error)
        finally:
            self._compare_button.loading = False
        if self.selections == selections and self.state.adata is adata:
            self._show_comparison(comparison)

    def _show_comparison(self, comparison: Comparison) -> pd.DataFrame:
        self.results.param.update(value=comparison.table, visible=True)
        self._results_note.object = (f"**Marker genes of A against B.** {comparison.note} Cells in both "
                                     "selections are left out.")
        self._ok()
        return comparison.table

    def png_bytes(self, width: int = 800, height: int = 600) -> bytes:
        """The current view (zoom included) drawn server-side by datashader, as PNG bytes."""
        if self.frame is None:
            return self._fail("Show an embedding before exporting it.", b"")
        ranges = self._range.contents if self._range is not None else {}
        x_range = _finite(ranges.get("x_range")) or extent(self._all["x"])
        y_range = _finite(ranges.get("y_range")) or extent(self._all["y"])
        return png(self.frame, self.coloring, x_range, y_range, width, height)

    # ----- drawing ------------------------------------------------------------------------

    def _apply_coloring(self, coloring: Coloring, keep_hidden: bool) -> None:
        """Take the new colours; the legend follows without triggering a second render."""
        self.coloring = coloring
        self.legend.visible = coloring.categorical
        if coloring.categorical:
            hidden = [c for c in self.legend.hidden if c in coloring.colors] if keep_hidden else []
            with self._quiet():
                self.legend.param.update(entries=coloring.counts(), hidden=hidden)

    def _render(self) -> None:
        """Send new cells to the plot; rebuild it only when the view or the kind of shading changes."""
        self._all = points_frame(self._xy, self.coloring)
        hidden = self.legend.hidden if self.coloring.categorical else []
        self.frame = self._all[~self._all[LABEL].isin(hidden)] if hidden else self._all
        colors = tuple(self.coloring.colors.items()) if self.coloring.categorical else None
        signature = (self.key, self.mode, self.dims, colors)
        if signature == self._signature:
            self._pipe.send(self.frame)
        else:
            self._signature = signature
            self._show_plot(self._build_plot())
        what = {"obs": "", "gene": "gene ", "latent": "dimension "}[self.coloring.kind] + self.coloring.name
        if self.mode == "umap":
            where = f"UMAP of {self.key}"
        elif self.key in self.dim_names:
            names = self.dim_names[self.key]
            where = f"{self.key}: {names[self.dims[0]]} and {names[self.dims[1]]}"
        else:
            where = f"{self.key} dimensions {self.dims[0]} and {self.dims[1]}"
        self._status.object = (f"**{len(self.frame):,}** of {len(self._all):,} cells · {markdown_text(where)} · "
                               f"coloured by {markdown_text(what) or 'nothing'}")

    def _build_plot(self):
        """A fresh DynamicMap over a fresh pipe, with its box, lasso and range streams."""
        self._pipe = hv.streams.Pipe(data=self.frame)
        if self.mode == "umap":
            labels = (f"UMAP 1 of {self.key}", f"UMAP 2 of {self.key}")
        else:
            names = self.dim_names.get(self.key)
            labels = tuple(names[d] if names and d < len(names) else f"{self.key} [{d}]" for d in self.dims)
        kdims = axes(self._all, labels)
        points = hv.DynamicMap(lambda data: points_element(data, kdims), streams=[self._pipe])
        image = shaded(points, self.coloring).opts(
            responsive=True,
            min_height=PLOT_HEIGHT,
            tools=["box_select", "lasso_select"],
            active_tools=["wheel_zoom"],
            default_tools=["pan", "wheel_zoom", "reset", "save"],
        )
        if not self.coloring.categorical:
            image = image.opts(hooks=[self._title_colorbar])
        outlines = hv.DynamicMap(_outline_paths, streams=[self._outlines])
        self._box, self._lasso = hv.streams.BoundsXY(source=image), hv.streams.Lasso(source=image)
        self._box.add_subscriber(lambda bounds: bounds and self.select_box(*bounds))
        self._lasso.add_subscriber(
            lambda geometry: geometry is not None and self.select_lasso(geometry[:, 0], geometry[:, 1])
        )
        self._range = hv.streams.RangeXY(source=image)
        return image * outlines

    def _title_colorbar(self, plot, _element) -> None:
        """Name the colour bar after the gene or dimension; a hook, as a new gene reuses the plot."""
        if "colorbar" in plot.handles:
            plot.handles["colorbar"].title = self.coloring.name

    def _keep(self, mask: np.ndarray, outline: tuple) -> np.ndarray:
        positions = np.flatnonzero(mask)
        cells = positions if self.frame is self._all else self.frame.index.to_numpy()[positions]
        if not cells.size:
            return self._fail("No shown cells fall inside that selection; A and B are unchanged.", NO_CELLS)
        self.selections = (self.selections + [(cells, outline)])[-2:]
        self._forget_comparison()
        self._show_selections()
        self._ok()
        self.selected += 1
        return cells

    def _forget_comparison(self) -> None:
        """A table of other selections must not stay on screen as if it described these."""
        self.results.visible = False
        self._results_note.object = ""

    def _show_selections(self) -> None:
        names = "AB" if len(self.selections) == 2 else "A"
        outlines = [
            {"x": outline[0], "y": outline[1], "selection": name}
            for name, (_, outline) in zip(names, self.selections)
            if outline is not None
        ]
        if outlines or self._outlines.data:  # every send redraws the plot: none when nothing changes
            self._outlines.send(outlines)
        if self.selections:
            sizes = " · ".join(f"**{n}**: {cells.size:,} cells" for n, (cells, _) in zip(names, self.selections))
            after = "Compare A vs B, or name" if len(self.selections) == 2 else "Draw a second selection (B) to compare, or name"
            self._selection_note.object = f"{sizes}. {after} the latest ({names[-1]}) with a label below."
        else:
            self._selection_note.object = NO_SELECTION

    # ----- state and widgets --------------------------------------------------------------

    def _reset(self) -> None:
        """New cells: forget the old view, selections and results, then show the first embedding."""
        self.key, self._xy, self.frame, self._all, self.coloring = None, None, None, None, None
        self.selections, self._signature, self._range = [], None, None
        self._show_plot(None)
        self._forget_comparison()
        self._show_selections()
        adata = self.state.adata
        if adata is None:
            self._status.object = "No cells loaded."
            return self._ok()
        self._gene_input.options = adata.var_names.tolist()
        self._refresh_options()
        keys = embedding_keys(adata)
        if not keys:
            self._status.object = ""
            return self._fail("No embedding in obsm (X_umap, X_pca or a model's latent): nothing to draw yet.")
        self._apply_coloring(default_coloring(adata), keep_hidden=False)
        self.set_view("X_umap" if "X_umap" in keys else keys[0])

    def _on_state(self, *events) -> None:
        if any(event.name == "adata" for event in events):
            return self._reset()
        self._refresh_options()
        if self._xy is None:
            if embedding_keys(self.state.adata):
                self._reset()
            return
        if self.coloring.kind == "obs" and self.coloring.name in self.state.adata.obs.columns:
            fresh = color_values(self.state.adata, "obs", self.coloring.name, self.key)
            if not pd.Series(fresh.values).equals(pd.Series(self.coloring.values)):
                self._apply_coloring(fresh, keep_hidden=True)
                self._render()

    def _on_hidden(self, _event) -> None:
        if not self._syncing and self._xy is not None:
            self._render()

    def _build_widgets(self) -> None:
        self._build_view_widgets()
        self._label_name = pn.widgets.TextInput(
            label="Label", placeholder="e.g. activated T cells", width=SIDE_WIDTH - 20,
            description="A name for the cells of the latest selection, such as a cell type you recognise.",
        )
        self._label_column = pn.widgets.TextInput(
            label="Annotation column", value=DEFAULT_COLUMN, width=SIDE_WIDTH - 20,
            description="The column of the cell annotations (obs) the label is written into; a new name makes a new column.",
        )
        add = pn.widgets.Button(label="Add label", color="primary", css_classes=["hanami-add-label"])
        add.on_click(lambda _: self.add_label(self._label_name.value, self._label_column.value))
        self._method = pn.widgets.Select(
            label="Test", options={name: key for key, name in METHODS.items()}, width=SIDE_WIDTH - 20,
            description="How genes are ranked between A and B: Wilcoxon rank-sum (robust, the usual choice) or Welch's t-test.",
        )
        self._compare_button = pn.widgets.Button(label="Compare A vs B", color="primary", css_classes=["hanami-compare"])
        self._compare_button.on_click(self._compare_clicked)
        self._selection_tools = pn.Column(
            "#### Selection", self._selection_note, self._label_name, self._label_column, add,
            self._method, self._compare_button, width=SIDE_WIDTH,
        )

    def _show_plot(self, plot) -> None:
        self._plot = plot
        if self._page_ready:
            self._pane.object = plot

    def _on_page_ready(self) -> None:
        self._page_ready = True
        self._pane.object = self._plot

    @contextmanager
    def _loading(self):
        self._pane.loading = True
        try:
            yield
        finally:
            self._pane.loading = False

    def _fail(self, error, result=None):
        """Show why an action failed; the reason quotes the user's names, shown as text."""
        self.alert.param.update(object=markdown_text(error), alert_type="danger", visible=True)
        return result

    def _ok(self, message: str = "") -> None:
        self.alert.param.update(object=markdown_text(message) or " ", alert_type="success", visible=bool(message))

    def __panel__(self):
        controls = self._view_controls()
        body = pn.Column(  # the message sits under the plot, so the plot never jumps when one appears
            self._status,
            self._pane,
            self.alert,
            pn.Row(self._selection_tools, pn.Column(self._results_note, self.results, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        return pn.Row(controls, body, sizing_mode="stretch_width")


def _finite(bounds):
    """A range the browser reported, or None before the plot was drawn (Bokeh then holds NaN)."""
    return tuple(bounds) if bounds is not None and np.isfinite(bounds).all() else None


def _outline_paths(data: list[dict]) -> hv.Overlay:
    """Dashed outlines of selections A and B, drawn as vectors over the image; absent ones empty."""
    outlines = {d["selection"]: [{"x": d["x"], "y": d["y"]}] for d in data}
    return hv.Overlay([
        hv.Path(outlines.get(name, []), group="Selection", label=name).opts(
            color=color, line_width=2, line_dash="dashed"
        )
        for name, color in SELECTION_COLORS.items()
    ])

