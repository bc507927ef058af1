"""The Integrate builder: which column names each cell's system, which are batches and other
covariates, the prior, the cycle weight and the latent size of a SysVI model (family "sysvi").

`config_data()` is the engine's `SysVIConfig` data, with the shared training options over SysVI's
own training defaults (batch 128, lr 1e-3, a held-out tenth and early stopping). `checks()` says
in the page what the configuration cannot see: no system column, a column with one system, cells
without a system, a column chosen twice.
"""
from __future__ import annotations

import pandas as pd
import panel as pn

from app.builders.base import FamilyBuilder, Problem
from app.builders.widgets import alert, card
from app.components.training_options import TrainingOptions
from app.state import StudioState
from engine.config.sysvi import SysVIConfig

NO_SYSTEM = "(choose a column)"
# Column names that usually say which system a cell comes from: chosen for the user when present.
SYSTEM_WORDS = ("system", "species", "protocol", "technology", "tissue", "organism")
PRIORS = {"VampPrior: a mixture learned from the cells (recommended)": "vamp",
          "standard normal": "standard_normal"}
COLUMNS_HELP = ("The system column says where each cell comes from when the differences are large (species, "
                "organoid or tissue, single cells or nuclei); the model brings the systems together. Batch "
                "columns are smaller differences within systems (samples, donors, runs); the model takes them "
                "and the other columns into account.")
SETTINGS_HELP = ("How strongly the model pulls the systems together; the defaults suit most data. Results show "
                 "in 4 · Integrate after training.")
FIELD_WORDS = {"system_key": "system column", "batch_keys": "batch columns",
               "categorical_covariate_keys": "other columns", "continuous_covariate_keys": "other columns",
               "prior": "prior", "cycle_weight": "cycle weight", "n_latent": "latent size"}
COLUMN_FIELDS = ("system_key", "batch_keys", "categorical_covariate_keys", "continuous_covariate_keys")


def obs_column_kinds(adata, skip_prefix: str = "") -> tuple[list[str], list[str]]:
    """(categorical, numeric) obs columns a model can take: categories with 2 to n_obs - 1 values
    (not one per cell, like an id), numbers that vary; columns starting with `skip_prefix` (a
    model's own results) are left out."""
    if adata is None:
        return [], []
    kinds: tuple[list[str], list[str]] = ([], [])
    for name, series in adata.obs.items():
        name = str(name)
        if skip_prefix and name.startswith(skip_prefix):
            continue
        numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
        distinct = series.nunique(dropna=True)
        if numeric and distinct > 1:
            kinds[1].append(name)
        elif not numeric and 1 < distinct < adata.n_obs:
            kinds[0].append(name)
    return kinds


class SysVIBuilder(FamilyBuilder):
    """A `SysVIModel` for `state.adata` from the columns and settings chosen in the page."""

    family = "sysvi"
    title = "Integrate cells across systems (species, protocols, tissues)"
    title_help = ("Puts cells from different systems (mouse and human, organoid and tissue, cells and nuclei) in "
                  "one shared space where the same cell types meet, keeping types apart (SysVI: a conditional VAE "
                  "with a VampPrior and a cycle-consistency loss).")

    def __init__(self, state: StudioState, training: TrainingOptions | None = None, **params):
        super().__init__(state, training, **params)

        def widget(cls, css, **kw):
            made = cls(css_classes=[f"hanami-sysvi-{css}"], **kw)
            made.param.watch(self._refresh, "value")
            return made

        defaults = SysVIConfig.model_fields
        self._system = widget(pn.widgets.Select, "system", label="system column", width=240,
                              description="The column that says which system each cell comes from (species, "
                                          "protocol, tissue...); it needs at least two systems.")
        self._batches = widget(pn.widgets.MultiChoice, "batches", label="batch columns", width=320,
                               description="Batches within the systems (samples, donors, sequencing runs); the "
                                           "model corrects them too.")
        self._others = widget(pn.widgets.MultiChoice, "others", label="other columns", width=320,
                              description="Other annotations the model takes into account: categories (such as a "
                                          "sex) or numbers (such as a cell-cycle score).")
        self._prior = widget(pn.widgets.Select, "prior", label="prior", options=PRIORS, value="vamp", width=420,
                             description="What the shared space looks like before training: a mixture learned from "
                                         "a few cells (VampPrior) keeps cell types apart better than a plain "
                                         "normal distribution.")
        self._cycle = widget(pn.widgets.FloatInput, "cycle", label="cycle weight (0 = off)",
                             value=defaults["cycle_weight"].default, start=0.0, step=0.5, width=170,
                             description="How strongly a cell is asked to land at the same place when it is "
                                         "redrawn as if from the other system (the cycle-consistency loss); higher "
                                         "mixes systems more, 0 switches it off.")
        self._latent = widget(pn.widgets.IntInput, "latent", label="latent size", value=defaults["n_latent"].default,
                              start=2, width=120,
                              description="How many numbers describe each cell in the shared space (n_latent).")
        self._alerts = {where: alert(f"hanami-sysvi-{where}-problem") for where in ("columns", "settings")}
        self._numeric: list[str] = []
        self._sync_columns()
        self.state.param.watch(self._sync_columns, ["adata", "obs_version"])

    # -- widgets -----------------------------------------------------------------------------
    def controls(self) -> list:
        columns = pn.Row(self._system, self._batches, self._others)
        settings = pn.Row(self._prior, self._cycle, self._latent)
        return [card("Systems, batches and other columns", COLUMNS_HELP, columns, self._alerts["columns"]),
                card("Integration settings", SETTINGS_HELP, settings, self._alerts["settings"])]

    def alerts(self) -> dict[str, pn.pane.Alert]:
        return self._alerts

    def _sync_columns(self, *_) -> None:
        """Categorical columns can be the system or batches; any usable column another covariate.
        A column named like a system (system, species, ...) is chosen while none is."""
        with self._batch():
            self._offer_columns()

    def _offer_columns(self) -> None:
        categorical, self._numeric = obs_column_kinds(self.state.adata, f"{self.family}_")
        system = self._system.value
        if system not in categorical:
            named = [c for word in SYSTEM_WORDS for c in categorical if c.lower() == word]
            system = named[0] if named else NO_SYSTEM
        self._system.options, self._system.value = [NO_SYSTEM, *categorical], system
        self._batches.options = categorical
        self._batches.value = [c for c in self._batches.value if c in categorical]
        self._others.options = categorical + self._numeric
        self._others.value = [c for c in self._others.value if c in categorical + self._numeric]

    # -- configuration -----------------------------------------------------------------------
    @property
    def system(self) -> str | None:
        return None if self._system.value == NO_SYSTEM else self._system.value

    def config_data(self) -> dict:
        """SysVIConfig data; a column chosen twice is used once (checks() says so)."""
        system = self.system
        batches = [c for c in self._batches.value if c != system]
        others = [c for c in self._others.value if c != system and c not in batches]
        return {
            "system_key": system or "",
            "batch_keys": batches,
            "categorical_covariate_keys": [c for c in others if c not in self._numeric],
            "continuous_covariate_keys": [c for c in others if c in self._numeric],
            "prior": self._prior.value,
            "cycle_weight": self._cycle.value,
            "n_latent": self._latent.value,
            "training": self.training_data(),
        }

    def checks(self) -> list[Problem]:
        found = []
        system, adata = self.system, self.state.adata
        if system is None:
            found.append(Problem("columns", "danger", "choose the system column: the one that says which system "
                                                      "(species, protocol, tissue...) each cell comes from"))
        elif adata is not None and system in adata.obs:
            values = adata.obs[system]
            systems = sorted(map(str, values.dropna().unique()))
            if values.isna().any():
                found.append(Problem("columns", "danger", f"{int(values.isna().sum()):,} cells have no value in the "
                                                          f"system column {system}; every cell needs its system"))
            if len(systems) < 2:
                found.append(Problem("columns", "danger", f"the system column {system} holds one system "
                                                          f"({systems[0] if systems else 'none'}) in every cell; "
                                                          "integration needs cells from at least two systems"))
        chosen = [*self._batches.value, *self._others.value]
        if system is not None and system in chosen:
            found.append(Problem("columns", "danger", f"{system} is the system column; it cannot also be a batch "
                                                      "or another column"))
        twice = sorted({c for c in self._batches.value if c in self._others.value} - {system})
        if twice:
            found.append(Problem("columns", "warning", f"{', '.join(twice)}: chosen as a batch column and as another "
                                                       "column; it is used once, as a batch"))
        return found

    def place(self, location: tuple[str, ...]) -> tuple[str, str]:
        field = location[0] if location else ""
        if field in COLUMN_FIELDS:
            return "columns", FIELD_WORDS[field]
        if field in FIELD_WORDS:
            return "settings", FIELD_WORDS[field]
        return super().place(location)

    def problems(self) -> list[Problem]:
        """The engine's problem about an empty system column repeats our own check: shown once."""
        found = super().problems()
        if self.system is None:
            found = [p for p in found if p.found is None or p.found.location[:1] != ("system_key",)]
        return found

    # -- for tests and notebooks -------------------------------------------------------------
    def set_columns(self, system: str | None = None, batches: list[str] | None = None,
                    others: list[str] | None = None) -> None:
        with self._batch():
            self._system.value = system or NO_SYSTEM
            self._batches.value = list(batches or [])
            self._others.value = list(others or [])

    def set_settings(self, **values) -> None:
        """prior, cycle_weight and n_latent by their config names (None: left as it is)."""
        widgets = {"prior": self._prior, "cycle_weight": self._cycle, "n_latent": self._latent}
        with self._batch():
            for name, value in values.items():
                if value is not None:
                    widgets[name].value = value
