"""The live loss chart: one line per loss term, fed a few new points at a time.

Why a bare Bokeh figure with one `ColumnDataSource` per term, and not a HoloViews `Buffer`:
`source.stream(...)` sends only the appended rows to the browser (one small "ColumnsStreamed"
message per term and poll), and Panel runs its periodic callbacks under the session's document
lock, so streaming from one is safe. A HoloViews `Buffer` streams incrementally only while the
plotted element's data *is* the buffer's frame; smoothing each term (or splitting one long table
by term) breaks that and HoloViews then re-sends the whole history on every tick.

Smoothing is an exponential moving average over steps, computed here: new points are smoothed
from the last smoothed value, and moving the slider re-sends only the smoothed column. Bokeh
cannot switch a live axis between linear and log, so the log switch builds a new figure around the
same sources (a one-off re-send). Each legend entry hides its term on click, kept in step with the
MultiChoice of shown terms. A `raw/<term>` curve takes its term's colour, dashed.

The engine's term names stay the keys (`terms`, `shown`, `data`, the sources' names); the legend,
the hover and the MultiChoice show `namer(term)`, by default `app.words.term_label` (what each term
measures, in plain words).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import cycle

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, GlyphRenderer, HoverTool, Legend, LegendItem
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from scipy.signal import lfilter

from app.escape import html_text
from app.words import term_label

MAX_POINTS = 100_000  # per term; older points roll off the chart (the EventLog keeps its own)
TOTAL = "total"
TOTAL_COLOR = "#3d1a2b"
RAW = "raw/"
CHART_HELP = ("Each curve is one error the model lowers while it learns (in ML terms, one loss term); "
              "a curve that levels off has learnt what it can. Dashed: the same error before its weight. "
              "Smoothing evens out step-to-step noise (a moving average; the faint line is unsmoothed).")


def ema(values: np.ndarray, weight: float, previous: float | None = None) -> np.ndarray:
    """Exponential moving average: s[t] = weight * s[t-1] + (1 - weight) * x[t], s[-1] = previous
    (or the first value), so a stream smoothed in pieces equals the whole smoothed at once."""
    values = np.asarray(values, dtype=float)
    if weight <= 0 or values.size == 0:
        return values.copy()
    start = values[0] if previous is None else previous
    smoothed, _ = lfilter([1 - weight], [1, -weight], values, zi=[weight * start])
    return smoothed


@dataclass
class _Series:
    source: ColumnDataSource
    color: str
    dash: str
    renderers: tuple[GlyphRenderer, GlyphRenderer] | None = None  # (raw, smoothed) on the current figure


class LossCurves(pn.viewable.Viewer):
    """Per-term loss curves that grow by `add`, with smoothing, log scale and shown terms."""

    smoothing = param.Number(default=0.6, bounds=(0, 0.99), doc="EMA weight of the previous smoothed value.")
    log_y = param.Boolean(default=False, doc="Draw the losses on a log axis.")
    shown = param.ListSelector(default=[], objects=[], doc="The terms drawn; the others are hidden.")

    def __init__(self, namer=None, **params):
        """`namer` turns an engine term name into the name shown (default: `term_label`)."""
        super().__init__(**params)
        self.namer = namer or term_label
        self._series: dict[str, _Series] = {}
        self._colors: dict[str, str] = {}  # per term, shared by its raw/ curve
        self._palette = cycle(Category10_10)
        self._figure = None  # built with the first term: an empty Bokeh figure only draws warnings
        self._placeholder = pn.pane.Markdown("The training curves appear here once a run's first steps are read back.")
        # Holds the placeholder or one Bokeh pane per figure. A Bokeh pane is never re-pointed at a
        # new figure: Panel 1.9 then copies the old figure's properties onto the pane (its
        # visibility, and in a served page its style sheets, which fails) and the chart never shows.
        self.chart = pn.Column(
            self._placeholder, sizing_mode="stretch_width", min_height=380, css_classes=["hanami-loss-chart"]
        )
        # The choice shows each term's plain name and holds its engine name; kept in step with `shown`.
        self._choice = pn.widgets.MultiChoice(
            label="Curves shown", options={}, value=[], sizing_mode="stretch_width", css_classes=["hanami-terms"],
            description="Hide or show single curves (also by clicking their name in the legend).",
        )
        self._choice.param.watch(self._on_choice, "value")
        self._layout = pn.Column(
            pn.Row(
                pn.widgets.FloatSlider.from_param(self.param.smoothing, label="Smoothing", width=220),
                pn.widgets.Switch.from_param(self.param.log_y, label="Log scale", css_classes=["hanami-log"]),
                self._choice,
                sizing_mode="stretch_width",
            ),
            pn.pane.HTML(f"<small>{html_text(CHART_HELP)}</small>", margin=(0, 10), css_classes=["hanami-chart-help"]),
            self.chart,
            sizing_mode="stretch_width",
        )

    @property
    def figure(self):
        """The Bokeh figure drawn, or None before the first points."""
        return self._figure

    @property
    def terms(self) -> list[str]:
        return list(self._series)

    def data(self, term: str) -> dict[str, np.ndarray]:
        """The points held for one term: step, value, smooth."""
        return dict(self._series[term].source.data)

    def add(self, points: dict[str, tuple[list[int], list[float]]]) -> int:
        """Stream new (steps, values) per term onto the chart; returns how many points were added."""
        added = 0
        for term, (steps, values) in points.items():
            series = self._series.get(term) or self._new_series(term)
            values = np.asarray(values, dtype=float)
            held = series.source.data["smooth"]
            previous = float(held[-1]) if len(held) else None
            series.source.stream(
                {"step": np.asarray(steps, dtype=float), "value": values,
                 "smooth": ema(values, self.smoothing, previous)},
                rollover=MAX_POINTS,
            )
            added += len(values)
        return added

    def clear(self) -> None:
        """Forget every term (a new run starts on an empty chart)."""
        self._series, self._colors, self._palette = {}, {}, cycle(Category10_10)
        self.param.shown.objects = []
        self.shown = []
        self._choice.options = {}
        self._show_figure(None)

    # -- building --------------------------------------------------------------------------
    def _new_series(self, term: str) -> _Series:
        empty = np.array([], dtype=float)
        base = term.removeprefix(RAW)
        if base not in self._colors:
            self._colors[base] = TOTAL_COLOR if base == TOTAL else next(self._palette)
        series = _Series(
            ColumnDataSource({"step": empty, "value": empty, "smooth": empty}, name=f"loss:{term}"),
            self._colors[base], "dashed" if term.startswith(RAW) else "solid",
        )
        self._series[term] = series
        if self._figure is None:
            self._show_figure(self._new_figure())
        else:
            self._draw(term, series, self._figure, visible=True)
        self.param.shown.objects = self.terms
        self._choice.options = self._labels()
        self.shown = [*self.shown, term]
        return series

    def _labels(self) -> dict[str, str]:
        """Shown name -> term; two terms that read alike are told apart by the engine's name."""
        labels: dict[str, str] = {}
        for term in self.terms:
            label = self.namer(term)
            labels[label if label not in labels else f"{label} [{term}]"] = term
        return labels

    def _show_figure(self, fig) -> None:
        self._figure = fig
        shown = self._placeholder if fig is None else pn.pane.Bokeh(fig, sizing_mode="stretch_width", min_height=380)
        self.chart.objects = [shown]

    def _new_figure(self):
        fig = figure(
            height=380, sizing_mode="stretch_width", y_axis_type="log" if self.log_y else "linear",
            x_axis_label="training step", y_axis_label="error (log scale)" if self.log_y else "error",
            tools="pan,wheel_zoom,box_zoom,reset,save", active_scroll=None, toolbar_location="above",
        )
        fig.add_tools(HoverTool(
            renderers=[], tooltips=[("curve", "$name"), ("step", "@step{0,0}"), ("error", "@value{0.0000}"),
                                    ("smoothed", "@smooth{0.0000}")],
        ))
        fig.x_range.only_visible = fig.y_range.only_visible = True  # hidden terms do not stretch the axes
        fig.add_layout(Legend(click_policy="hide", items=[], location="top_left"), "right")
        for term, series in self._series.items():  # a term being added is not among `shown` yet
            self._draw(term, series, fig, visible=term in self.shown or term not in self.param.shown.objects)
        return fig

    def _draw(self, term: str, series: _Series, fig, *, visible: bool) -> None:
        """The faint raw line and the smoothed line of one term, one legend entry for both."""
        width = 2.5 if term == TOTAL else 1.8
        label = self.namer(term)  # the renderer's name is what the hover shows as "curve"
        style = dict(source=series.source, color=series.color, line_dash=series.dash, visible=visible, name=label)
        raw = fig.line("step", "value", alpha=0.25, line_width=1, **style)
        smooth = fig.line("step", "smooth", line_width=width, **style)
        hover, legend = fig.select_one(HoverTool), fig.select_one(Legend)
        hover.renderers = [*hover.renderers, smooth]
        legend.items = [*legend.items, LegendItem(label=label, renderers=[raw, smooth])]
        smooth.on_change("visible", lambda attr, old, new, term=term: self._legend_clicked(term, new))
        series.renderers = (raw, smooth)

    # -- reacting --------------------------------------------------------------------------
    def _legend_clicked(self, term: str, visible: bool) -> None:
        if visible != (term in self.shown):
            self.shown = [t for t in self.terms if (visible if t == term else t in self.shown)]

    def _on_choice(self, event) -> None:
        if list(event.new) != list(self.shown):
            self.shown = [t for t in self.terms if t in event.new]

    @param.depends("shown", watch=True)
    def _show(self) -> None:
        if list(self._choice.value) != list(self.shown):
            self._choice.value = list(self.shown)
        for term, series in self._series.items():
            for renderer in series.renderers:
                if renderer.visible != (term in self.shown):
                    renderer.visible = term in self.shown

    @param.depends("smoothing", watch=True)
    def _resmooth(self) -> None:
        for series in self._series.values():
            series.source.data["smooth"] = ema(series.source.data["value"], self.smoothing)

    @param.depends("log_y", watch=True)
    def _rescale(self) -> None:
        if self._figure is not None:
            self._show_figure(self._new_figure())

    def __panel__(self):
        return self._layout
