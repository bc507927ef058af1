"""The Integrate tab: what a trained integration model (family "sysvi") did to the cells.

Two datashaded pictures side by side: before (the expression's PCA) and after (the model's
integrated latent), each laid out by a UMAP or by its first two principal components, both coloured
by the same column (the system by default, or a label such as a cell type). Below them, the
integration scores (`engine.metrics.integration_metrics`) on the PCA and on the latent, with the
system as the batch and the chosen label as the cell type, and what each score means. The slow
part (PCA, layouts, scores) runs in a worker thread while a spinner shows; a result that comes
back after the model or the cells changed is dropped. A download gives the cells with the latent
(obsm) as .h5ad, through the export area's writer.
"""
from __future__ import annotations

import asyncio
import io
from functools import partial

import numpy as np
import pandas as pd
import panel as pn
import param

from app.builders.widgets import help_line
from app.components.export_panel import ExportPanel
from app.embedding.coloring import color_values
from app.embedding.coords import umap_key
from app.embedding.integration import (
    LAYOUT_WORDS, LAYOUTS, Comparison, expression_pca, layout_of, legend_html, metrics_before_after, picture,
)
from app.escape import html_text, markdown_text
from app.quiet_updates import QuietUpdates
from app.state import StudioState
from engine.families import SysVIModel

NO_LABEL = "(no label: no scores)"
LABEL_WORDS = ("cell_type", "celltype", "cell type", "cell_types", "label", "labels", "annotation")
NO_MODEL = ("No integration model has been trained on these cells yet. In 2 · Model choose \"Integrate cells "
            "across systems\", pick the system column and build the model, then train it in 3 · Train; the cells "
            "before and after integration show here when the run ends.")
PICTURES_HELP = ("Left, the cells as measured (their expression's principal components); right, in the model's "
                 "integrated space. Integrated well, the systems overlap on the right while the cell types stay "
                 "apart. Drawn with datashader: zoom with the wheel.")
SCORES_HELP = ("Scores from 0 to 1, higher is better, on the PCA (before) and on the integrated latent (after), "
               "with the system column as the batch and the label below as the cell type (scIB's metrics). "
               "Batch mixing should rise after integration; label conservation should stay high.")
EXPORT_HELP = ("The cells with the integrated latent in obsm (X_sysvi_latent, and its UMAP once shown) as an "
               ".h5ad; open with scanpy's read_h5ad. 5 · Export has every other file.")


class IntegrationView(QuietUpdates, pn.viewable.Viewer):
    """Before/after pictures, the scores before and after, and a download of the integrated cells."""

    state = param.ClassSelector(class_=StudioState, doc="The session's cells and model.")
    busy = param.Boolean(default=False, doc="True while the layouts or scores are being computed.")

    def __init__(self, state: StudioState, export: ExportPanel | None = None, **params):
        super().__init__(state=state, **params)
        self.export = export if export is not None else ExportPanel(state)
        self.comparison: Comparison | None = None
        self._pca: tuple[int, np.ndarray] | None = None  # (id of the cells, their PCA)
        self._layouts: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._scores: dict[tuple, pd.DataFrame | None] = {}
        self._asked = 0  # bumped per computation asked; a late answer to an older one is dropped
        self._status = pn.pane.Markdown(NO_MODEL, css_classes=["hanami-integration-status"],
                                        sizing_mode="stretch_width")
        self._spinner = pn.indicators.LoadingSpinner(value=True, size=24, visible=False,
                                                     css_classes=["hanami-integration-busy"])

        def select(css, **kw):
            made = pn.widgets.Select(css_classes=[f"hanami-integration-{css}"], **kw)
            made.param.watch(lambda _: None if self._syncing else self.update(), "value")
            return made

        self._color = select("color", label="colour by", width=220,
                             description="The column whose categories colour both pictures: the system, a batch "
                                         "or a label such as the cell type.")
        self._label = select("label", label="label for the scores", width=220,
                             description="The cell-type column the label-conservation scores compare against.")
        self._layout = select("layout", label="layout", options=LAYOUTS, value="umap", width=200,
                              description="How each representation is drawn in two dimensions: a UMAP of it, or "
                                          "its first two principal components.")
        self._before = pn.pane.HoloViews(None, sizing_mode="stretch_width", css_classes=["hanami-integration-before"])
        self._after = pn.pane.HoloViews(None, sizing_mode="stretch_width", css_classes=["hanami-integration-after"])
        self._before_note = pn.pane.HTML("", css_classes=["hanami-integration-before-note"])
        self._after_note = pn.pane.HTML("", css_classes=["hanami-integration-after-note"])
        self._legend = pn.pane.HTML("", css_classes=["hanami-integration-legend"], sizing_mode="stretch_width")
        self._metrics = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                             layout="fit_data_stretch", sizing_mode="stretch_width",
                                             css_classes=["hanami-integration-metrics"])
        self._metrics_note = pn.pane.HTML("", css_classes=["hanami-integration-metrics-note"],
                                          sizing_mode="stretch_width")
        self._download = pn.widgets.FileDownload(callback=self._h5ad, filename="integrated_cells.h5ad",
                                                 label="Integrated cells (.h5ad)", width=260,
                                                 css_classes=["hanami-integration-download"])
        self._export_alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width",
                                           css_classes=["hanami-integration-export-problem"])
        self._body = pn.Column(sizing_mode="stretch_width")
        state.param.watch(self._on_state, ["adata", "model", "obs_version"])
        self._on_state()

    # -- public actions ----------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether the session's model is a trained integration model whose latent is in the cells."""
        model, adata = self.state.model, self.state.adata
        return (isinstance(model, SysVIModel) and bool(model.runs) and adata is not None
                and self._latent_key(model) in adata.obsm and model.obs_names.equals(adata.obs_names))

    def compute(self) -> Comparison:
        """Lay out and score the cells now (on this thread) and show them: for tests and notebooks."""
        ask = self._ask()
        comparison = self._work(*ask[1:])
        self._show(comparison, *ask[1:4])
        return comparison

    def update(self) -> None:
        """Show the chosen colour, layout and label: at once if computed, else in a worker thread."""
        if self._syncing or not self.ready():
            return
        self._asked += 1
        ask = self._ask()
        model, adata, layout, label = ask[1:5]
        cached = self._cached(model, adata, layout, label)
        if cached is not None:
            self._show(cached, model, adata, layout)
            return
        self.busy = True
        self._spinner.visible = True
        self._status.object = "Laying out the cells before and after integration and scoring them…"
        pn.state.execute(partial(self._work_later, self._asked, *ask[1:]))

    # -- the work ----------------------------------------------------------------------------
    @staticmethod
    def _latent_key(model) -> str:
        return f"X_{model.name}_latent"

    @staticmethod
    def _model_key(model) -> tuple:
        return (id(model), len(model.runs))

    def _ask(self) -> tuple:
        """What a computation needs, copied on the event loop: (asked, model, adata, layout, label,
        latent, systems, labels, pca or None)."""
        model, adata = self.state.model, self.state.adata
        label = None if self._label.value in (None, NO_LABEL) else self._label.value
        latent = np.asarray(adata.obsm[self._latent_key(model)], dtype=np.float32).copy()
        systems = adata.obs[model.config.system_key].to_numpy().copy()
        labels = None if label is None or label not in adata.obs else adata.obs[label].to_numpy().copy()
        pca = self._pca[1] if self._pca is not None and self._pca[0] == id(adata) else None
        return self._asked, model, adata, self._layout.value, label, latent, systems, labels, pca

    def _work(self, model, adata, layout, label, latent, systems, labels, pca) -> Comparison:
        """PCA (once per cells), both layouts (once per model and layout), scores (once per label)."""
        if pca is None:
            pca = expression_pca(adata.X)
        here = self._model_key(model)
        layouts = self._layouts.get((here, layout))
        if layouts is None:
            layouts = (layout_of(pca, layout), layout_of(latent, layout))
        scores = self._scores.get((here, label), False)
        if scores is False:
            scores = None if labels is None else metrics_before_after(pca, latent, systems, labels)
        self._remember(model, adata, pca, layout, layouts, label, scores)
        return Comparison(*layouts, layout, scores)

    async def _work_later(self, asked: int, model, adata, layout, label, *rest) -> None:
        try:
            comparison = await asyncio.to_thread(self._work, model, adata, layout, label, *rest)
        except (ValueError, RuntimeError) as error:  # InputError is a ValueError
            if asked == self._asked:
                self._idle()
                self._status.object = markdown_text(f"The cells could not be compared before and after: {error}")
            return
        if asked != self._asked or self.state.model is not model or self.state.adata is not adata:
            return  # the model, the cells or the choices changed meanwhile: a newer computation follows
        self._show(comparison, model, adata, layout)

    def _remember(self, model, adata, pca, layout, layouts, label, scores) -> None:
        if self._pca is None or self._pca[0] != id(adata):
            self._pca, self._layouts, self._scores = (id(adata), pca), {}, {}
        here = self._model_key(model)
        self._layouts[(here, layout)] = layouts
        self._scores[(here, label)] = scores

    def _cached(self, model, adata, layout, label) -> Comparison | None:
        if self._pca is None or self._pca[0] != id(adata):
            return None
        here = self._model_key(model)
        layouts, scores = self._layouts.get((here, layout)), self._scores.get((here, label), False)
        if layouts is None or scores is False:
            return None
        return Comparison(*layouts, layout, scores)

    # -- showing -----------------------------------------------------------------------------
    def _idle(self) -> None:
        self.busy = False
        self._spinner.visible = False

    def _show(self, comparison: Comparison, model, adata, layout: str) -> None:
        self._idle()
        self.comparison = comparison
        key = umap_key(self._latent_key(model))
        if layout == "umap" and key not in adata.obsm:  # kept with the cells: exported, and the explorer reuses it
            adata.obsm[key] = comparison.after
        coloring = color_values(adata, "obs", self._color.value or model.config.system_key, None)
        before_words, after_words = LAYOUT_WORDS[layout]
        self._before.object = picture(comparison.before, coloring, "Before: expression (PCA)")
        self._after.object = picture(comparison.after, coloring, "After: integrated latent")
        self._before_note.object = f"<small>{html_text(before_words)}</small>"
        self._after_note.object = f"<small>{html_text(after_words)}</small>"
        self._legend.object = legend_html(coloring)
        if comparison.metrics is None:
            self._metrics.value = pd.DataFrame()
            self._metrics_note.object = html_text("Choose a label column (such as a cell type) to score the "
                                                  "integration.")
        else:
            self._metrics.value = comparison.metrics
            self._metrics_note.object = (f"System: <b>{html_text(model.config.system_key)}</b> · label: "
                                         f"<b>{html_text(self._label.value)}</b>")
        self._status.object = markdown_text(
            f"{adata.n_obs:,} cells from {pd.Series(adata.obs[model.config.system_key]).nunique():,} systems "
            f"(column {model.config.system_key}), integrated into {model.config.n_latent} "
            "dimensions.")
        if self._body.objects == [] or self._body.objects is None:
            self._body.objects = self._parts()

    async def _h5ad(self):
        self._download.loading = True
        try:
            data = await asyncio.to_thread(self.export.h5ad_bytes)
        except Exception as error:  # shown in the page; the cells stay as they are
            self._export_alert.param.update(object=markdown_text(f"Could not export the cells: {error}"),
                                            visible=True)
            raise
        finally:
            self._download.loading = False
        self._export_alert.visible = False
        return io.BytesIO(data)

    # -- following the session ---------------------------------------------------------------
    def _on_state(self, *events) -> None:
        if any(event.name == "adata" for event in events):
            self._pca, self._layouts, self._scores, self.comparison = None, {}, {}, None
        if not self.ready():
            self._asked += 1  # whatever is being computed is for something gone
            self._idle()
            self._status.object = NO_MODEL
            self._body.objects = []
            self.comparison = None
            return
        self._sync_choices()
        model = self.state.model
        if self.comparison is None or self._cached(model, self.state.adata, self._layout.value,
                                                   None if self._label.value == NO_LABEL else self._label.value) is None:
            self.update()

    def _sync_choices(self) -> None:
        """Colour by any categorical column (the system by default); score against a label column."""
        adata, model = self.state.adata, self.state.model
        system = model.config.system_key
        columns = [str(c) for c, v in adata.obs.items()
                   if not pd.api.types.is_numeric_dtype(v.dtype) and not str(c).startswith(f"{model.name}_")]
        labels = [c for c in columns if c != system and c not in model.config.covariate_columns]
        named = [c for word in LABEL_WORDS for c in labels if c.lower() == word]
        with self._quiet():
            color = self._color.value if self._color.value in columns else system
            self._color.options, self._color.value = columns, color
            label = self._label.value if self._label.value in labels else (named or labels or [NO_LABEL])[0]
            self._label.options, self._label.value = [*labels, NO_LABEL], label

    def _parts(self) -> list:
        def titled(title, help_text, *body):
            return pn.Column(f"#### {title}", help_line(help_text), *body, sizing_mode="stretch_width")

        return [
            pn.Row(self._color, self._layout, self._label, sizing_mode="stretch_width"),
            titled("Before and after integration", PICTURES_HELP,
                   pn.Row(pn.Column(self._before, self._before_note, sizing_mode="stretch_width"),
                          pn.Column(self._after, self._after_note, sizing_mode="stretch_width"),
                          sizing_mode="stretch_width"),
                   self._legend),
            titled("Integration scores", SCORES_HELP, self._metrics_note, self._metrics),
            titled("Export", EXPORT_HELP, self._download, self._export_alert),
        ]

    def __panel__(self):
        return pn.Column(pn.Row(self._spinner, self._status, sizing_mode="stretch_width"), self._body, sizing_mode="stretch_width", css_classes=["hanami-integration"])
