"""The Populations tab: what a trained population model (family "flow") says about the cells.

Once a run of a `FlowAnnotator` has written its results into the session's cells, the model's
verdict on every cell (`model.scores()`, one pass, in a worker thread) is kept, so the threshold
slider relabels cells at once, without the model: `obs['flow_population']` is rewritten and every
view of the cells follows. The cells are drawn by an `EmbeddingExplorer` of their own, coloured by
population, on two markers as axes (or the flow's latent, or a UMAP, from its side panel); a
heatmap gives each population's mean latent expression per marker; "why this label" shows, for the
cells of one population or the latest box or lasso selection, each marker's log-probability under
every population (`model.marker_contributions`, in a worker thread); counts per sample come from
`engine.population_summary`. Every control calls a public method, so tests drive it without a page.
"""
from __future__ import annotations

import asyncio
import math
from functools import partial

import numpy as np
import pandas as pd
import panel as pn
import param

from app.quiet_updates import QuietUpdates
from app.builders.widgets import help_line
from app.components.embedding_explorer import EmbeddingExplorer
from app.embedding.populations import (
    MARKERS_KEY, heatmap, marker_values, mean_by_population, selection_line, unknown_line,
)
from app.escape import html_text, markdown_text
from app.state import StudioState
from engine.families.flow import FlowAnnotator
from engine.families.flow_scores import PopulationScores
from engine.population_summary import population_fractions

SELECTION = "the latest selection in the plot"
NO_MODEL = ("No population model has been trained on these cells yet. In 2 · Model choose \"Populations from a "
            "table of markers\", fill in the table and build the model, then train it in 3 · Train; its populations "
            "show here when the run ends.")
THRESHOLD_HELP = ("Cells that fit their best population less than this (a log-probability) are left unknown. "
                  "Moving it relabels the cells at once, without training again.")
MEANS_HELP = ("Each population's mean position in the model's space, per marker: about 1 where the population "
              "has the marker, -1 where it lacks it (the table's levels). Grey: no cell has that label at this "
              "threshold.")
WHY_HELP = ("Each marker's log-probability for the chosen cells under every population: near 0, the marker "
            "fits that population; very negative, it argues against it. Box- or lasso-select cells in the plot "
            "to explain them.")
SAMPLES_HELP = "Cells of each population per sample (unknown cells count in no population)."


class PopulationsView(QuietUpdates, pn.viewable.Viewer):
    """Threshold, coloured cells, mean latent heatmap, "why this label" and counts per sample."""

    state = param.ClassSelector(class_=StudioState, doc="The session's cells and model.")
    threshold = param.Number(default=None, allow_None=True, doc="The threshold the labels were last made with.")

    def __init__(self, state: StudioState, **params):
        super().__init__(state=state, **params)
        self.scores: PopulationScores | None = None
        self.model: FlowAnnotator | None = None
        self.explorer: EmbeddingExplorer | None = None  # made when there are populations to show
        self._scored: tuple | None = None  # (model, runs) the scores belong to
        self._status = pn.pane.Markdown(NO_MODEL, css_classes=["hanami-populations-status"],
                                        sizing_mode="stretch_width")
        self._slider = pn.widgets.FloatSlider(label="unknown-cell threshold", start=-60, end=0, step=0.5, value=-50,
                                              width=420, css_classes=["hanami-populations-threshold"])
        # Relabelled when the handle is let go (or moved by the keyboard): a million cells are
        # relabelled and redrawn once per move, not once per pixel of a drag.
        self._slider.param.watch(lambda event: self.set_threshold(event.new), "value_throttled")
        self._unknown = pn.pane.HTML("", css_classes=["hanami-populations-unknown"], margin=(18, 10, 0, 10))
        self._x_marker = pn.widgets.Select(label="x marker", width=150, css_classes=["hanami-populations-x"],
                                           description="The marker that runs left to right in the plot.")
        self._y_marker = pn.widgets.Select(label="y marker", width=150, css_classes=["hanami-populations-y"],
                                           description="The marker that runs bottom to top in the plot.")
        for widget in (self._x_marker, self._y_marker):
            widget.param.watch(lambda _: self.show_markers(self._x_marker.value, self._y_marker.value), "value")
        self._means = pn.pane.HoloViews(None, sizing_mode="stretch_width", css_classes=["hanami-populations-means"])
        self._explain = pn.widgets.Select(label="Explain", width=320, css_classes=["hanami-populations-explain"],
                                          description="Whose labels to explain: the cells of one population, or "
                                                      "the latest box or lasso selection in the plot.")
        self._explain.param.watch(lambda _: self._explain_chosen(), "value")
        self._why_note = pn.pane.HTML("", css_classes=["hanami-populations-why-note"], sizing_mode="stretch_width")
        self._why = pn.pane.HoloViews(None, sizing_mode="stretch_width", css_classes=["hanami-populations-why"])
        self._sample_column = pn.widgets.Select(label="sample column", width=220,
                                                css_classes=["hanami-populations-sample"],
                                                description="The annotation that names each cell's sample or batch.")
        self._sample_column.param.watch(lambda _: self._show_samples(), "value")
        self._samples = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, layout="fit_data_table",
                                             sizing_mode="stretch_width", css_classes=["hanami-populations-samples"])
        self._syncing = False
        self._explained = 0  # bumped per explanation asked; a late answer to an older one is dropped
        self._asked: np.ndarray | None = None  # the cells last asked about
        self._shown_cells: np.ndarray | None = None  # the cells the heatmap shown explains
        self._body = pn.Column(sizing_mode="stretch_width")
        state.param.watch(self._on_state, ["adata", "model", "obs_version"])
        self._on_state()

    # -- public actions ----------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether the session's model is a trained population model whose results are in the cells."""
        model, adata = self.state.model, self.state.adata
        return (isinstance(model, FlowAnnotator) and bool(model.runs) and adata is not None
                and f"{model.name}_population" in adata.obs and model.obs_names.equals(adata.obs_names))

    def refresh_scores(self) -> None:
        """Score every cell now (on this thread) and show the populations: for tests and notebooks."""
        model = self.state.model
        self._show_scores(model, model.scores(), self._key(model))

    def set_threshold(self, value: float) -> pd.Series | None:
        """Relabel every cell with this threshold (no model involved); returns the new labels."""
        if self._syncing or self.scores is None:
            return None
        model, adata = self.model, self.state.adata
        labels = self.scores.labels(float(value))
        frame = model.with_levels(labels)
        for column in frame.columns:
            name = f"{model.name}_population" if column == "population" else f"{model.name}_population_{column}"
            adata.obs[name] = frame[column].values  # categorical, unknown cells NaN
        # A later write of the model's results (an export) uses the threshold shown here.
        model.config = model.config.model_copy(update={"log_prob_threshold": float(value)})
        if isinstance(adata.uns.get(model.name), dict):
            adata.uns[model.name]["log_prob_threshold"] = float(value)
        self.threshold = float(value)
        if not math.isclose(self._slider.value, value):
            with self._quiet():
                self._slider.value = float(value)
        self._unknown.object = f"<b>{html_text(unknown_line(labels, float(value)))}</b>"
        self._show_means(labels)
        if self._why.object is not None and self._shown_cells is not None:  # the same cells, labelled anew
            self._why_note.object = self._why_line(labels, self._shown_cells)
        self.state.touch_obs()
        return labels

    def show_markers(self, x: str, y: str) -> None:
        """Draw the cells on two of the table's markers as axes."""
        if self._syncing or self.explorer is None or self.model is None:
            return
        markers = list(self.model.config.markers)
        if x in markers and y in markers:
            self.explorer.set_view(MARKERS_KEY, "dimensions", (markers.index(x), markers.index(y)))

    def explain(self, cells: np.ndarray) -> pd.DataFrame:
        """Why these cells got their labels (now, on this thread): populations x markers."""
        table = self.model.marker_contributions(cells=cells)
        self._show_why(table, cells)
        return table

    # -- following the session ---------------------------------------------------------------
    @staticmethod
    def _key(model) -> tuple:
        return (id(model), len(model.runs))

    def _on_state(self, *events) -> None:
        if any(event.name == "adata" for event in events):
            self.scores, self.model, self._scored = None, None, None
        if not self.ready():
            if self.scores is None:
                self._status.object = NO_MODEL
                self._body.objects = []
            return
        model = self.state.model
        key = self._key(model)
        if key != self._scored:
            self._scored = key
            self._status.object = "Reading the model's verdict on every cell…"
            pn.state.execute(partial(self._score, model, key))

    async def _score(self, model: FlowAnnotator, key: tuple) -> None:
        try:
            scores = await asyncio.to_thread(model.scores)
        except (ValueError, RuntimeError) as error:
            self._status.object = markdown_text(f"The populations could not be read: {error}")
            return
        if self.state.model is model and self._key(model) == key:
            self._show_scores(model, scores, key)

    def _show_scores(self, model: FlowAnnotator, scores: PopulationScores, key: tuple) -> None:
        """Keep the verdict, set the slider's range around it, and show every part of the view."""
        adata = self.state.adata
        self.scores, self.model, self._scored, self._asked = scores, model, key, None
        markers = list(model.config.markers)
        if MARKERS_KEY not in adata.obsm or adata.obsm[MARKERS_KEY].shape[1] != len(markers):
            adata.obsm[MARKERS_KEY] = marker_values(adata, markers)
        if self.explorer is None:
            self.explorer = EmbeddingExplorer(self.state)
            self.explorer.param.watch(lambda _: self._explain_selection(), "selected")
        self.explorer.dim_names |= {MARKERS_KEY: markers, f"X_{model.name}_latent": markers}
        best = scores.best_log_likelihood
        threshold = float(model.config.log_prob_threshold)
        low = math.floor(min(np.quantile(best, 0.001), threshold)) - 1 if len(best) else threshold - 1
        high = math.ceil(max(np.quantile(best, 0.999), threshold)) + 1 if len(best) else threshold + 1
        with self._quiet():
            self._slider.param.update(start=low, end=high, value=threshold)
            self._x_marker.options, self._y_marker.options = markers, markers
            self._x_marker.value, self._y_marker.value = markers[0], markers[min(1, len(markers) - 1)]
            self._explain.options = [SELECTION, *model.config.populations]
            self._explain.value = model.config.populations[0]
            columns = [str(c) for c, v in adata.obs.items()
                       if isinstance(v.dtype, pd.CategoricalDtype) and not str(c).startswith(f"{model.name}_")]
            self._sample_column.options = columns
            if columns:
                self._sample_column.value = model.config.batch_key if model.config.batch_key in columns else columns[0]
        self._status.object = (f"**{len(best):,} cells** placed among **{len(markers)} markers** and "
                               f"**{len(model.config.populations)} populations** of your table.")
        self._body.objects = self._parts()
        self.set_threshold(threshold)
        self.explorer.color_by("obs", f"{model.name}_population")
        self.show_markers(self._x_marker.value, self._y_marker.value)
        self._explain_chosen()

    # -- the parts ---------------------------------------------------------------------------
    def _show_means(self, labels: pd.Series) -> None:
        latent = np.asarray(self.state.adata.obsm[f"X_{self.model.name}_latent"])
        means = mean_by_population(latent, labels, list(self.model.config.markers))
        self._means.object = heatmap(means, "mean latent", cmap="RdBu_r")
        self._show_samples()

    def _explain_chosen(self) -> None:
        if self._syncing or self.model is None:
            return
        choice = self._explain.value
        if choice == SELECTION:
            return self._explain_selection()
        labels = self.state.adata.obs[f"{self.model.name}_population"]
        cells = np.flatnonzero((labels == choice).to_numpy())
        if not cells.size:
            self._why_note.object = html_text(f"No cell is labelled {choice} at this threshold.")
            self._why.object = None
            return
        self._explain_later(cells)

    def _explain_selection(self) -> None:
        if self.explorer is None or self.model is None:
            return
        if not self.explorer.selections:
            self._why_note.object = html_text("No selection yet: box- or lasso-select cells in the plot above.")
            self._why.object = None
            return
        if self._explain.value != SELECTION:
            with self._quiet():
                self._explain.value = SELECTION
        self._explain_later(self.explorer.selections[-1][0])

    def _explain_later(self, cells: np.ndarray) -> None:
        if self._asked is not None and np.array_equal(self._asked, cells):
            return  # the same cells again (a selection tool reports once more): already explained or on the way
        self._asked = cells
        self._explained += 1
        asked, model = self._explained, self.model
        self._why_note.object = html_text(f"Explaining {cells.size:,} cells…")

        async def run():
            try:
                table = await asyncio.to_thread(model.marker_contributions, cells=cells)
            except (ValueError, RuntimeError) as error:
                self._why_note.object = html_text(f"These cells could not be explained: {error}")
                return
            if asked == self._explained and model is self.model:
                self._show_why(table, cells)

        pn.state.execute(run)

    def _show_why(self, table: pd.DataFrame, cells: np.ndarray) -> None:
        self._shown_cells = cells
        self._why_note.object = self._why_line(self.state.adata.obs[f"{self.model.name}_population"], cells)
        self._why.object = heatmap(table, "log-probability", cmap="viridis")

    @staticmethod
    def _why_line(labels: pd.Series, cells: np.ndarray) -> str:
        return f"<b>Why this label</b> · {html_text(selection_line(labels, cells))}"

    def _show_samples(self) -> None:
        column = self._sample_column.value
        adata = self.state.adata
        if self.model is None or not column or column not in adata.obs:
            self._samples.value = pd.DataFrame()
            return
        counts = population_fractions(adata.obs[f"{self.model.name}_population"], adata.obs[column], counts=True)
        totals = adata.obs[column].value_counts(sort=False)
        totals = totals[totals > 0]
        counts = counts.reindex(totals.index, fill_value=0)  # a sample whose cells are all unknown keeps its row
        counts["unknown"] = totals.to_numpy() - counts.sum(axis=1).to_numpy()
        counts.index = counts.index.astype(str).rename(column)
        counts.columns = counts.columns.astype(str)
        self._samples.value = counts.reset_index()

    def _parts(self) -> list:
        def titled(title, help_text, *body):
            return pn.Column(f"#### {title}", help_line(help_text), *body, sizing_mode="stretch_width")

        return [
            pn.Row(pn.Column(self._slider, help_line(THRESHOLD_HELP), width=440), self._unknown,
                   self._x_marker, self._y_marker, sizing_mode="stretch_width"),
            self.explorer,
            pn.Row(titled("Mean latent expression", MEANS_HELP, self._means),
                   titled("Why this label", WHY_HELP, self._explain, self._why_note, self._why),
                   sizing_mode="stretch_width"),
            titled("Populations per sample", SAMPLES_HELP, self._sample_column, self._samples),
        ]


    def __panel__(self):
        return pn.Column(self._status, self._body, sizing_mode="stretch_width", css_classes=["hanami-populations"])
