"""The Populations builder: a knowledge table, the batch and other columns, a few flow settings.

The table is typed in `KnowledgeTableEditor`, which shows the engine's diagnostics beside the
cells they concern; the errors among them stop the build here too (`checks`). `config_data()` is
the engine's `FlowConfig` data: the table's fields from `engine.families.flow.table_settings`,
the columns, the settings, and the shared training options over the flow's own training defaults
(its held-out cells and early stopping).
"""
from __future__ import annotations

import pandas as pd
import panel as pn

from app.builders.base import FamilyBuilder, Problem
from app.builders.widgets import alert, help_line
from app.components.knowledge_table_editor import KnowledgeTableEditor
from app.components.training_options import TrainingOptions
from app.state import StudioState
from engine.data.errors import InputError
from engine.families.flow import table_settings

NO_BATCH = "none"
TABLE_HELP = "What you know about the populations: the model puts one cloud of cells per row where its markers say."
COLUMNS_HELP = ("A batch or sample column lets the model learn each batch's shift in the markers, so the same "
                "population is found in every batch; other columns (a donor, a numeric covariate) are used the "
                "same way.")
SETTINGS_HELP = "How the model treats the table; the defaults suit most panels."
FIELD_WORDS = {"prior_std": "population spread", "temperature": "small-population boost",
               "log_prob_threshold": "unknown-cell threshold", "batch_key": "batch column",
               "categorical_covariate_keys": "other columns", "continuous_covariate_keys": "other columns"}


class FlowBuilder(FamilyBuilder):
    """A `FlowAnnotator` for `state.adata` from the table typed in the page."""

    family = "flow"
    title = "Populations from a table of markers (cytometry, CITE-seq)"
    title_help = ("A normalising flow (after Scyan) labels each cell with a population of your table of markers, "
                  "and leaves cells that fit no population unknown; no labelled cells are needed.")

    def __init__(self, state: StudioState, training: TrainingOptions | None = None, **params):
        super().__init__(state, training, **params)
        self.editor = KnowledgeTableEditor(state)
        self.editor.param.watch(self._refresh, "changed")

        def widget(cls, css, **kw):
            made = cls(css_classes=[f"hanami-flow-{css}"], **kw)
            made.param.watch(self._refresh, "value")
            return made

        self._batch_column = widget(pn.widgets.Select, "batch", label="batch or sample column", width=260,
                             description="The column naming each cell's batch or sample (none: all cells were "
                                         "measured together); the model corrects the markers' shifts between them.")
        self._covariates = widget(pn.widgets.MultiChoice, "covariates", label="other columns", width=360,
                                  description="Other annotations the model takes into account, such as a donor "
                                              "(categories) or a numeric measure (covariates of the flow).")
        self._prior_std = widget(pn.widgets.FloatInput, "prior-std", label="population spread", value=0.3,
                                 start=0.01, step=0.05, width=150,
                                 description="How wide each population's cloud is in the model's space (prior_std); "
                                             "smaller separates populations more sharply.")
        self._temperature = widget(pn.widgets.FloatInput, "temperature", label="small-population boost", value=0.5,
                                   start=0.01, step=0.1, width=170,
                                   description="Lower gives rare populations more weight while training "
                                               "(temperature of the population weights; 1: none).")
        self._threshold = widget(pn.widgets.FloatInput, "threshold", label="unknown-cell threshold", value=-50.0,
                                 step=1.0, width=170,
                                 description="Cells that fit their best population less than this (a log-probability) "
                                             "stay unknown; you can move it after training in 4 · Populations.")
        self._columns_alert = alert("hanami-flow-columns-problem")
        self._settings_alert = alert("hanami-flow-settings-problem")
        with self._batch():
            self._sync_columns()
        self.state.param.watch(self._on_data, ["adata", "obs_version"])

    # -- widgets -----------------------------------------------------------------------------
    def controls(self) -> list:
        def card(title, help_text, *body):
            return pn.Card(help_line(help_text), *body, title=title, collapsible=True,
                           sizing_mode="stretch_width", margin=(5, 0))

        return [
            card("Knowledge table: which markers each population carries", TABLE_HELP, self.editor),
            card("Batch and other columns", COLUMNS_HELP, pn.Row(self._batch_column, self._covariates),
                 self._columns_alert),
            card("Flow settings", SETTINGS_HELP, pn.Row(self._prior_std, self._temperature, self._threshold),
                 self._settings_alert),
        ]

    def alerts(self) -> dict[str, pn.pane.Alert]:
        return {"columns": self._columns_alert, "settings": self._settings_alert}

    def _on_data(self, *_) -> None:
        with self._batch():
            self._sync_columns()

    def _sync_columns(self) -> None:
        """Offer the categorical columns as batch, every usable column as another covariate."""
        adata = self.state.adata
        categorical, numeric = [], []
        for column, values in ([] if adata is None else adata.obs.items()):
            if str(column).startswith(f"{self.family}_"):
                continue  # the model's own results
            n = int(values.nunique(dropna=True))
            if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
                if n > 1:
                    numeric.append(str(column))
            elif 1 < n < adata.n_obs:
                categorical.append(str(column))
        self._numeric = numeric
        batch = self._batch_column.value if self._batch_column.value in categorical else NO_BATCH
        self._batch_column.options, self._batch_column.value = [NO_BATCH, *categorical], batch
        self._covariates.options = categorical + numeric
        self._covariates.value = [c for c in self._covariates.value if c in categorical + numeric]

    # -- configuration -----------------------------------------------------------------------
    def _table_settings(self) -> dict:
        try:
            return table_settings(self.editor.table())
        except InputError:
            return {"populations": [], "markers": [], "values": []}

    def config_data(self) -> dict:
        others = [c for c in self._covariates.value if c != self._batch_column.value]
        return self._table_settings() | {
            "batch_key": None if self._batch_column.value == NO_BATCH else self._batch_column.value,
            "categorical_covariate_keys": [c for c in others if c not in self._numeric],
            "continuous_covariate_keys": [c for c in others if c in self._numeric],
            "prior_std": self._prior_std.value,
            "temperature": self._temperature.value,
            "log_prob_threshold": self._threshold.value,
            "training": self.training_data(),
        }

    def checks(self) -> list[Problem]:
        """The table's own problems (shown by the editor, beside its cells) and a batch used twice."""
        if self.editor.values.empty:
            problems = [Problem("table", "danger", "the knowledge table needs at least one population and one marker")]
        else:
            problems = [Problem("table", "danger" if f.severity == "error" else "warning", f.message)
                        for f in self.editor.findings]
        if self._batch_column.value != NO_BATCH and self._batch_column.value in self._covariates.value:
            problems.append(Problem("columns", "warning", f"{self._batch_column.value} is the batch column already; "
                                                          "it is used once"))
        return problems

    def place(self, location: tuple[str, ...]) -> tuple[str, str]:
        field = location[0] if location else ""
        if field in ("batch_key", "categorical_covariate_keys", "continuous_covariate_keys"):
            return "columns", FIELD_WORDS[field]
        if field in ("prior_std", "temperature", "log_prob_threshold"):
            return "settings", FIELD_WORDS[field]
        if field in ("populations", "markers", "values", "levels"):
            return "table", "knowledge table"
        return super().place(location)

    # -- for tests and notebooks -------------------------------------------------------------
    def set_columns(self, batch: str | None = None, others: list[str] | None = None) -> None:
        with self._batch():
            self._batch_column.value = batch or NO_BATCH
            self._covariates.value = list(others or [])

    def set_settings(self, prior_std: float | None = None, temperature: float | None = None,
                     threshold: float | None = None) -> None:
        with self._batch():
            for widget, value in ((self._prior_std, prior_std), (self._temperature, temperature),
                                  (self._threshold, threshold)):
                if value is not None:
                    widget.value = value
