"""The model builder: what the knowledge-guided autoencoder learns from, and how it trains.

A biologist switches obs columns and gene sets on as heads, picks sizes, roles and weights, and
sees every problem explained beside the control that causes it. Each change rebuilds the
engine's own `ExtractorConfig` (so the page and the command line agree on what is valid) and adds
the checks a configuration cannot make alone: values and genes present in the data, settings
that would train nothing. Building a model is cheap (no training happens here); the training
monitor takes `training_options()` and the model from `state.model`.

Every row and widget carries a stable css class for browser tests: `hanami-pheno-<column>` for a
phenotype row (its widgets add `-on`, `-kind`, `-role`, `-alpha`, `-attach`, `-latent`,
`-weight`, `-problem`), `hanami-sig-<set>` for a signature row (`-on`, `-exclude`, `-latent`,
`-weight`, `-genes`, `-problem`), with characters other than letters, digits, `_` and `-`
replaced by `-`.
"""
from __future__ import annotations

import re
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
import panel as pn
import param
from anndata import AnnData
from pydantic import ValidationError
from torch import nn

from app.escape import html_text, markdown_text
from app.state import StudioState
from app.uploads import stored_name
from engine.config.extractor import RESERVED_NAMES, ExtractorConfig
from engine.config.files import describe_validation_error
from engine.data.errors import InputError
from engine.data.genesets import TEXT_SUFFIXES, match_genes, read_gene_sets
from engine.guided import GuidedModel

BUILT_IN_SETS = Path(__file__).resolve().parents[2] / "assets" / "genesets" / "pbmc_markers.json"
OWN = "(own latent)"
ROLES = {"learn": "learn", "remove (gradient reversal)": "remove", "neutralize": "neutralize"}
GRADIENT = {"learn": "normal", "remove": "reverse", "neutralize": "neutralize"}
DETACH = {"none": "none", "pre-encoder (trunk frozen)": "pre_encoder", "encoder (trunk and encoders frozen)": "encoder"}
REGULARIZERS = ["none", "sw2_uniform", "sw2_gaussian", "l1", "l2"]
FROM_START, RECONSTRUCTION_FIRST = "heads from the start", "reconstruction first, then add the heads"
MANY_CLASSES = 100
MAX_UPLOAD_BYTES = 5_000_000
PHENOTYPE_HELP = ("Each switched-on obs column gets a head. <b>learn</b>: the head predicts the column and "
                  "shapes its latent; <b>remove</b>: the embedding is pushed to forget it (batch, donor); "
                  "<b>neutralize</b>: the head only reads the embedding out.")
SIGNATURE_HELP = ("Each switched-on gene set gets a latent that predicts its genes' expression; "
                  "<b>exclude from input</b> hides those genes from the encoder, so the model must infer them.")
TRAINING_HELP = "Sizes, losses and how the model trains; the training area starts the run."
MISSING_SHOWN = 10
MAX_ROUNDS = 10
SETTINGS = "model settings"

# Row widgets sit under a header row, so their own labels are hidden (they keep their names).
NO_LABEL = [":host label, :host .bk-label { display: none; }"]
ALERT = [":host(.alert) { padding: 4px 10px; margin: 0 0 4px 0; font-size: 0.9em; }",
         ":host(.alert) p { margin: 0; }"]
ROW_MARGIN = (2, 5)


def _css(label: str) -> str:
    return re.sub(r"[^0-9A-Za-z_-]", "-", label)


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _safe_name(label: str, taken: set[str]) -> str:
    """A head name the model accepts: no '.', not reserved, not a ModuleDict attribute, unique."""
    base = label.replace(".", "_") or "head"
    name, n = base, 1
    while name in taken or name in RESERVED_NAMES or hasattr(nn.ModuleDict(), name):
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _alert(css: str) -> pn.pane.Alert:
    return pn.pane.Alert("", alert_type="danger", visible=False, css_classes=[css], stylesheets=ALERT,
                         sizing_mode="stretch_width")


def _header(*cells: tuple[str, int]) -> pn.Row:
    return pn.Row(*(pn.pane.HTML(f"<b>{text}</b>", width=width, margin=ROW_MARGIN) for text, width in cells))


@dataclass
class Problem:
    """A problem shown beside a control: `where` names a head row or a settings area.

    `text` is what the row shows; `line` is the full sentence config() raises.
    """

    where: str
    level: str  # "danger" stops the build, "warning" only explains
    text: str
    line: str = ""

    def __post_init__(self):
        self.line = self.line or f"{self.where}: {self.text}"


def _blamed_field(where: str, text: str, data: dict) -> list:
    """The head field a cross-field rule blamed ('phenotypes.x' + 'attach: ...'), as a path."""
    group, _, head = where.partition(".")
    field = text.split(":", 1)[0]
    return [group, head, field] if field in data.get(group, {}).get(head, {}) else []


def _remove(data: dict, path: list) -> bool:
    """Delete the value at an error's location so that validation goes on with its default."""
    if not path:
        return False
    node = data
    try:
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _row_widgets(name: str, css: str, widths: dict[str, int], on_change):
    """A maker of one row's widgets: labelled '<name>: <field>' for screen readers (the label is
    hidden, a header row names the columns), css class '<css>-<field>' for tests."""

    def widget(cls, field, **kw):
        made = cls(label=f"{name}: {field}", width=widths[field], margin=ROW_MARGIN, css_classes=[f"{css}-{field}"],
                   stylesheets=NO_LABEL, **kw)
        made.param.watch(on_change, "value")
        return made

    return widget


class _PhenotypeRow:
    """The head settings of one obs column; `spec()` is its PhenotypeSpec as a dict."""

    WIDTHS = {"name": 180, "on": 50, "kind": 115, "role": 215, "alpha": 70, "attach": 150, "latent": 70, "weight": 70}

    def __init__(self, column: str, values: pd.Series, n_values: int, head: str, on_change):
        self.column, self.head, self.n_values = column, head, n_values
        numeric = _is_number(values)
        self.convertible = self._convertible(values)
        self.example = values.dropna().iloc[0]
        described = f"numbers, {values.min():.3g} to {values.max():.3g}" if numeric else f"{n_values:,} categories"
        css, w = f"hanami-pheno-{_css(column)}", self.WIDTHS
        widget = _row_widgets(column, css, w, on_change)

        self.on = widget(pn.widgets.Switch, "on", value=False)
        self.kind = widget(pn.widgets.Select, "kind", options=["categorical", "continuous"],
                           value="continuous" if numeric else "categorical")
        self.role = widget(pn.widgets.Select, "role", options=ROLES, value="learn")
        self.alpha = widget(pn.widgets.FloatInput, "alpha", value=1.0, start=0, step=0.1)
        self.attach = widget(pn.widgets.Select, "attach", options=[OWN, "main", "all"], value=OWN)
        self.latent = widget(pn.widgets.IntInput, "latent", value=8)
        self.weight = widget(pn.widgets.FloatInput, "weight", value=1.0, start=0, step=0.1)
        self.problem = _alert(f"{css}-problem")
        name = pn.pane.HTML(f"<b>{html_text(column)}</b><br><small>{described}</small>",
                            width=w["name"], margin=ROW_MARGIN)
        slot = {"height": 40, "margin": 0}  # hidden alpha/latent keep their column, so rows stay aligned
        self.view = pn.Column(
            pn.Row(name, self.on, self.kind, self.role, pn.Column(self.alpha, width=w["alpha"] + 10, **slot),
                   self.attach, pn.Column(self.latent, width=w["latent"] + 10, **slot), self.weight),
            self.problem,
            css_classes=[css],
            margin=0,
        )

    @classmethod
    def header(cls) -> pn.Row:
        w = cls.WIDTHS
        return _header(("obs column", w["name"]), ("on", w["on"]), ("kind", w["kind"]), ("role", w["role"]),
                       ("alpha", w["alpha"] + 10 - 2 * ROW_MARGIN[1]), ("attach to", w["attach"]),
                       ("latent", w["latent"] + 10 - 2 * ROW_MARGIN[1]), ("weight", w["weight"]))

    @staticmethod
    def _convertible(values: pd.Series) -> bool:
        """The engine's own test for a continuous column (CellBatches converts the same way)."""
        try:
            values.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            return False
        return True

    @property
    def attach_target(self) -> str | None:
        """Where the head reads from: None for its own latent."""
        return None if self.attach.value == OWN else self.attach.value

    @property
    def owns_latent(self) -> bool:
        return self.attach_target is None and self.role.value != "remove"

    def spec(self) -> dict:
        kind, role = self.kind.value, self.role.value
        spec = {
            "enabled": self.on.value,
            "column": self.column,
            "kind": kind,
            "role": role,
            "alpha": self.alpha.value,
            "attach": self.attach_target,
            "losses": [{"loss": "nll" if kind == "categorical" else "mse", "gradient": GRADIENT[role],
                        "alpha": self.alpha.value, "weight": self.weight.value}],
        }
        if self.owns_latent:
            spec["latent_dim"] = self.latent.value
        return spec

    def checks(self) -> list[tuple[str, str]]:
        """(level, text) problems of this row that the configuration cannot see."""
        problems = []
        if self.kind.value == "continuous" and not self.convertible:
            problems.append(("danger", "continuous, but the column holds non-numeric values "
                                       f"(e.g. {self.example!r}); use it as categorical"))
        if self.kind.value == "categorical" and self.n_values > MANY_CLASSES:
            problems.append(("warning", f"{self.n_values:,} classes: is this a measurement? continuous may suit it"))
        if self.weight.value == 0:
            problems.append(("warning", "weight 0: this head is on but learns nothing"))
        return problems

    def show(self, owners: list[str]) -> None:
        """Fit the row to its settings: what is visible, what can be attached to, what is greyed.

        A remove head cannot own a latent (it must read the embedding it cleans), so its choice
        moves to the main latent.
        """
        removing = self.role.value == "remove"
        if removing and self.attach.value == OWN:
            self.attach.value = "main"
        options = ([] if removing else [OWN]) + ["main", "all"] + [h for h in owners if h != self.head]
        if self.attach.value not in options:
            options.append(self.attach.value)
        if self.attach.options != options:
            self.attach.options = options
        self.alpha.visible = removing
        self.latent.visible = self.owns_latent
        for widget in (self.kind, self.role, self.alpha, self.attach, self.latent, self.weight):
            widget.disabled = not self.on.value


class _SignatureRow:
    """One gene set as a signature head, with how well its genes match the loaded cells."""

    WIDTHS = {"name": 200, "on": 50, "exclude": 110, "latent": 70, "weight": 70}

    def __init__(self, label: str, genes: list[str], source: str, on_change):
        self.label, self.genes, self.source, self.match = label, genes, source, None
        css, w = f"hanami-sig-{_css(label)}", self.WIDTHS
        widget = _row_widgets(label, css, w, on_change)

        self.on = widget(pn.widgets.Switch, "on", value=False)
        self.exclude = widget(pn.widgets.Checkbox, "exclude", value=False)
        self.latent = widget(pn.widgets.IntInput, "latent", value=8)
        self.weight = widget(pn.widgets.FloatInput, "weight", value=1.0, start=0, step=0.1)
        self.name = pn.pane.HTML(width=w["name"], margin=ROW_MARGIN)
        self.genes_line = pn.pane.HTML(margin=ROW_MARGIN, css_classes=[f"{css}-genes"], sizing_mode="stretch_width")
        self.problem = _alert(f"{css}-problem")
        self.view = pn.Column(
            pn.Row(self.name, self.on, self.exclude, self.latent, self.weight, self.genes_line,
                   sizing_mode="stretch_width"),
            self.problem,
            css_classes=[css],
            margin=0,
            sizing_mode="stretch_width",
        )

    @classmethod
    def header(cls) -> pn.Row:
        w = cls.WIDTHS
        return _header(("gene set", w["name"]), ("on", w["on"]), ("exclude from input", w["exclude"]),
                       ("latent", w["latent"]), ("weight", w["weight"]), ("genes in the data", 300))

    def rematch(self, adata: AnnData | None) -> None:
        """Match the set's genes to the cells and say how many were found and which were not."""
        self.match = None if adata is None else match_genes(self.genes, adata)
        self.name.object = (f"<b>{html_text(self.label)}</b><br>"
                            f"<small>{html_text(self.source)}, {len(self.genes)} genes</small>")
        if self.match is None:
            self.genes_line.object = "<small>no cells loaded</small>"
            return
        found, missing = len(self.match.matched), self.match.missing
        text = f"{found} of {len(self.genes)} genes in the data"
        if missing:
            shown = ", ".join(missing[:MISSING_SHOWN]) + (" …" if len(missing) > MISSING_SHOWN else "")
            text += f"; missing: {html_text(shown)}"
        self.genes_line.object = f"<small>{text}</small>"

    def spec(self) -> dict:
        return {"enabled": self.on.value, "genes": self.genes, "exclude_from_input": self.exclude.value,
                "latent_dim": self.latent.value, "losses": [{"loss": "mse", "weight": self.weight.value}]}

    def checks(self) -> list[tuple[str, str]]:
        problems = []
        if self.match is not None and not self.match.matched:
            problems.append(("danger", f"none of its {len(self.genes)} genes is in the data (first: "
                                       f"{', '.join(self.genes[:5])}); check the naming (symbols or Ensembl ids)"))
        if self.weight.value == 0:
            problems.append(("warning", "weight 0: this head is on but learns nothing"))
        return problems

    def show(self) -> None:
        for widget in (self.exclude, self.latent, self.weight):
            widget.disabled = not self.on.value


class ModelBuilder(pn.viewable.Viewer):
    """Heads, architecture and training story for `state.adata`; builds `state.model`."""

    state = param.ClassSelector(class_=StudioState, doc="The session this builder works for.")
    valid = param.Boolean(default=False, constant=True, doc="True when config() would succeed.")

    def __init__(self, state: StudioState, **params):
        super().__init__(state=state, **params)
        self._holding = 0
        self._pheno_rows: dict[str, _PhenotypeRow] = {}
        self._sig_rows: dict[str, _SignatureRow] = {}
        self._alerts: dict[str, pn.pane.Alert] = {}
        self._pheno_box = pn.Column(sizing_mode="stretch_width", margin=0)
        self._sig_box = pn.Column(sizing_mode="stretch_width", margin=0)
        self._build_controls()
        with self._batch():
            for label, genes in read_gene_sets(BUILT_IN_SETS).items():
                self._add_signature(label, genes, "built-in")
            self._sync_phenotypes(reset=True)
        self.state.param.watch(self._on_data, ["adata", "obs_version"])

    # -- widgets ---------------------------------------------------------------------------
    def _build_controls(self) -> None:
        def widget(cls, css, **kw):
            made = cls(css_classes=[f"hanami-model-{css}"], **kw)
            made.param.watch(self._refresh, "value")
            return made

        self._main_latent = widget(pn.widgets.IntInput, "latent", label="main latent size", value=16, width=130)
        self._reconstruction = widget(pn.widgets.Select, "reconstruction", label="reconstruction loss",
                                      options=["mse", "l1", "cosine"], value="mse", width=150)
        self._reconstruction_weight = widget(pn.widgets.FloatInput, "reconstruction-weight",
                                             label="reconstruction weight", value=1.0, start=0, step=0.1, width=150)
        self._regularizer = widget(pn.widgets.Select, "regularizer", label="main-latent regulariser",
                                   options=REGULARIZERS, value="none", width=170)
        self._regularizer_weight = widget(pn.widgets.FloatInput, "regularizer-weight", label="regulariser weight",
                                          value=1.0, start=0, step=0.1, width=150)
        self._detach = widget(pn.widgets.Select, "detach", label="stop gradients at", options=DETACH, value="none",
                              width=290)
        self._epochs = widget(pn.widgets.IntInput, "epochs", label="epochs", value=30, start=1, width=110)
        self._batch_size = widget(pn.widgets.IntInput, "batch-size", label="batch size", value=256, start=2, step=64,
                                  width=110)
        self._lr = widget(pn.widgets.FloatInput, "lr", label="learning rate", value=1e-3, start=1e-7, step=1e-4,
                          format="0.[00000]", width=130)
        self._story_choice = widget(pn.widgets.RadioBoxGroup, "story", label="training story",
                                    options=[FROM_START, RECONSTRUCTION_FIRST], value=FROM_START, inline=True)
        self._warmup = widget(pn.widgets.IntInput, "warmup", label="reconstruction-only epochs", value=5, start=1,
                              width=190)
        self._upload = pn.widgets.FileInput(accept=".gmt,.json,.txt", multiple=False,
                                            label="add gene sets (.gmt, .json or .txt)",
                                            css_classes=["hanami-geneset-upload"])
        self._upload.param.watch(self._on_upload, "value")
        self._upload_message = _alert("hanami-geneset-upload-problem")
        self._build_button = pn.widgets.Button(label="Build model", color="primary", icon="hammer",
                                               css_classes=["hanami-build-model"], width=160)
        self._build_button.on_click(self._on_build)
        self._status = _alert("hanami-build-status")
        for key in ("architecture", "regularizer", "detach", "training", "story", "general"):
            self._alerts[key] = _alert(f"hanami-model-{key}-problem")

    def __panel__(self):
        def card(title, help_text, *body):
            return pn.Card(pn.pane.HTML(f"<small>{help_text}</small>", margin=(0, 5)), *body, title=title,
                           collapsible=True, sizing_mode="stretch_width", margin=(5, 0))

        a = self._alerts
        return pn.Column(
            card("Phenotype heads", PHENOTYPE_HELP, self._pheno_box),
            card("Signature heads", SIGNATURE_HELP, self._sig_box, self._upload, self._upload_message),
            card(
                "Architecture and training", TRAINING_HELP,
                pn.Row(self._main_latent, self._reconstruction, self._reconstruction_weight), a["architecture"],
                pn.Row(self._regularizer, self._regularizer_weight), a["regularizer"],
                self._detach, a["detach"],
                pn.Row(self._epochs, self._batch_size, self._lr), a["training"],
                pn.Row(pn.Column(pn.pane.HTML("training story", margin=(5, 10, 0, 10)), self._story_choice),
                       self._warmup),
                a["story"],
            ),
            pn.Row(self._build_button, a["general"], sizing_mode="stretch_width"),
            self._status,
            sizing_mode="stretch_width",
            css_classes=["hanami-model-builder"],
        )

    # -- rows ------------------------------------------------------------------------------
    @contextmanager
    def _batch(self):
        """Set many widgets, validate once at the end."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            self._refresh()

    def _on_data(self, *events) -> None:
        new_cells = any(event.name == "adata" for event in events)
        with self._batch():
            self._sync_phenotypes(reset=new_cells)
            if new_cells:
                for row in self._sig_rows.values():
                    row.rematch(self.state.adata)
                self._status.visible = False

    def _sync_phenotypes(self, reset: bool) -> None:
        """One row per usable obs column; keep rows (and their settings) unless the cells changed."""
        adata, old = self.state.adata, ({} if reset else self._pheno_rows)
        rows, taken = {}, {row.head for row in old.values()}
        for column, values in ([] if adata is None else adata.obs.items()):
            column = str(column)
            if column in old:
                rows[column] = old[column]
                continue
            n = int(values.nunique(dropna=True))
            if n <= 1 or (not _is_number(values) and n >= adata.n_obs):
                continue  # one value teaches nothing; one per cell is an identifier
            rows[column] = _PhenotypeRow(column, values, n, _safe_name(column, taken), self._refresh)
        self._pheno_rows = rows
        if adata is None:
            body = [pn.pane.Markdown("Load cells to choose phenotype heads.")]
        elif not rows:
            body = [pn.pane.Markdown("No obs column can be a phenotype: each holds one value, or a distinct "
                                     "one per cell.")]
        else:
            body = [_PhenotypeRow.header(), *(row.view for row in rows.values())]
        self._pheno_box.objects = body

    def _add_signature(self, label: str, genes: list[str], source: str) -> None:
        row = self._sig_rows.get(label)
        if row is None:
            row = self._sig_rows[label] = _SignatureRow(label, genes, source, self._refresh)
            self._sig_box.objects = [_SignatureRow.header(), *(r.view for r in self._sig_rows.values())]
        row.genes, row.source = genes, source
        row.rematch(self.state.adata)

    def _signature_heads(self) -> dict[str, _SignatureRow]:
        """Head name -> row; names yield to phenotype heads on a clash."""
        taken = {row.head for row in self._pheno_rows.values()}
        return {_safe_name(label, taken): row for label, row in self._sig_rows.items()}

    # -- uploads ---------------------------------------------------------------------------
    def _on_upload(self, event) -> None:
        if event.new:
            self.add_gene_sets(self._upload.filename or "upload.txt", event.new)

    def add_gene_sets(self, filename: str, data: bytes) -> list[str]:
        """Parse an uploaded .gmt/.json/.txt and add its sets as signature rows (switched off).

        A set named like an existing one replaces its genes. Problems are shown under the upload
        button; returns the names added. The file is stored under its extension only (a browser
        may send a name the file system refuses, such as '.' or hundreds of characters).
        """
        name = PurePath(filename).name or filename
        message = self._upload_message
        if len(data) > MAX_UPLOAD_BYTES:
            self._say(message, "danger", f"{name}: {len(data):,} bytes is too large for a gene set file "
                                         f"(at most {MAX_UPLOAD_BYTES:,})")
            return []
        stored = stored_name(name, "geneset")
        if not PurePath(stored).suffix:
            self._say(message, "danger", f"{name}: the file name has no extension, so its format is unknown; "
                                         "upload a .gmt, .json or .txt gene set file")
            return []
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / stored
            try:
                path.write_bytes(data)
                sets = read_gene_sets(path)
            except InputError as error:
                self._say(message, "danger", str(error).replace(str(path), name))
                return []
            except UnicodeDecodeError:
                self._say(message, "danger", f"{name}: not a text file; upload a .gmt, .json or .txt gene set file")
                return []
            except OSError as error:
                self._say(message, "danger", f"{name}: could not be stored on the server to be read "
                                             f"({error.strerror}); try again, or ask the administrator")
                return []
        if path.suffix.lower() in TEXT_SUFFIXES:  # a plain list is named after the user's file, not the copy
            sets = {PurePath(name).stem: genes for genes in sets.values()}
        with self._batch():
            for label, genes in sets.items():
                self._add_signature(label, genes, name)
        self._say(message, "success", f"{name}: added {len(sets)} gene set(s) ({', '.join(sets)}); "
                                      "switch them on below")
        return list(sets)

    # -- configuration ---------------------------------------------------------------------
    def _story(self) -> dict | None:
        detach = {} if self._detach.value == "none" else {"detach": True, "detach_from": self._detach.value}
        epochs = self._epochs.value
        if self._story_choice.value == FROM_START:
            return {"phases": [{"name": "train", "epochs": epochs, "tasks": [detach]}]} if detach else None
        warmup = min(self._warmup.value, epochs)
        phases = [{"name": "reconstruction", "epochs": warmup,
                   "tasks": [{"backward_pheno_loss": False, "backward_signature_loss": False, **detach}]}]
        if epochs > warmup:
            phases.append({"name": "heads", "epochs": epochs - warmup, "tasks": [detach]})
        return {"phases": phases}

    def training_options(self) -> dict:
        """Keyword arguments for `GuidedModel.trainer`: max_epochs, batch_size, lr, story."""
        return {"max_epochs": self._epochs.value, "batch_size": self._batch_size.value, "lr": self._lr.value,
                "story": self._story()}

    def _config_data(self) -> dict:
        """The configuration as a dict: active heads, plus the switched-off heads they attach to."""
        phenos, signatures = self._pheno_rows.values(), self._signature_heads()
        targets = {row.attach_target for row in phenos if row.on.value}
        return {
            "main_latent_dim": self._main_latent.value,
            "reconstruction": {"loss": self._reconstruction.value, "weight": self._reconstruction_weight.value},
            "main_regularizers": [] if self._regularizer.value == "none" else
            [{"regularizer": self._regularizer.value, "weight": self._regularizer_weight.value}],
            "phenotypes": {row.head: row.spec() for row in phenos if row.on.value or row.head in targets},
            "signatures": {head: row.spec() for head, row in signatures.items() if row.on.value or head in targets},
            "training": self.training_options(),
        }

    def _checks(self) -> list[Problem]:
        """What the configuration cannot check: values and genes in the data, settings that train nothing."""
        problems = [Problem(f"phenotypes.{row.head}", level, text) for row in self._pheno_rows.values()
                    if row.on.value for level, text in row.checks()]
        active = self._signature_heads()
        problems += [Problem(f"signatures.{head}", level, text) for head, row in active.items() if row.on.value
                     for level, text in row.checks()]
        heads_on = any(row.on.value for row in self._pheno_rows.values()) or any(r.on.value for r in active.values())
        head_weight = any(r.on.value and r.weight.value > 0 for r in [*self._pheno_rows.values(), *active.values()])
        regularized = self._regularizer.value != "none" and self._regularizer_weight.value > 0
        if not (self._reconstruction_weight.value > 0 or head_weight or regularized):
            problems.append(Problem("architecture", "danger", "every loss is off (reconstruction weight 0, no head "
                                                              "or regulariser with a weight): nothing would train"))
        if self._detach.value == "pre_encoder":
            problems.append(Problem("detach", "warning", "the trunk (pre-encoder) gets no gradient in any phase: "
                                                         "it keeps its random initial weights"))
        elif self._detach.value == "encoder":
            what = "heads and decoder" if heads_on else "only the decoder (only reconstruction is on)"
            problems.append(Problem("detach", "warning", "nothing learns in the trunk or the latent encoders: the "
                                                         f"latents stay random and {what} learn from them"))
        if self._story_choice.value == RECONSTRUCTION_FIRST:
            if self._warmup.value >= self._epochs.value:
                problems.append(Problem("story", "danger", f"reconstruction-only takes all {self._epochs.value} "
                                                           "epochs, so the heads never train: lower it or raise "
                                                           "the epochs"))
            if not heads_on:
                problems.append(Problem("story", "warning", "no head is on, so both phases train the same losses"))
            if self._reconstruction_weight.value == 0:
                problems.append(Problem("story", "warning", "the first phase trains reconstruction, whose weight is 0"))
        return problems

    def _config_problems(self) -> list[Problem]:
        """Every problem the configuration finds, not only the first.

        Pydantic reports field errors before the cross-field rules run, and those rules stop at
        their first problem; so each round removes the values it blamed (their defaults apply)
        and validates again, until the configuration passes or blames nothing removable.
        """
        data, found = self._config_data(), []
        for _ in range(MAX_ROUNDS):
            try:
                ExtractorConfig.model_validate(data)
                break
            except ValidationError as error:
                lines = describe_validation_error(error, SETTINGS).splitlines()[1:]
                removed = False
                for detail, line in zip(error.errors(), lines):
                    line = line.strip().removeprefix("- ").removeprefix("(top level): ")
                    line = line.removeprefix("Value error, ")
                    where, text = self._locate(line)
                    if all(p.line != line for p in found):
                        found.append(Problem(where, "danger", text, line))
                    removed |= _remove(data, list(detail["loc"]) or _blamed_field(where, text, data))
                if not removed:
                    break
        return found

    def _locate(self, line: str) -> tuple[str, str]:
        """(where, text) for one configuration error: a head row or a settings area."""
        heads = [f"phenotypes.{row.head}" for row in self._pheno_rows.values()]
        heads += [f"signatures.{head}" for head in self._signature_heads()]
        for key in sorted(heads, key=len, reverse=True):
            if line.startswith(key + ".") or line.startswith(key + ":"):
                return key, line[len(key):].lstrip(".:").strip()
        areas = [("training.story", "story"), ("training", "training"), ("main_regularizers", "regularizer"),
                 ("main_latent_dim", "architecture"), ("reconstruction", "architecture")]
        return next((area for prefix, area in areas if line.startswith(prefix)), "general"), line

    def _problems(self) -> list[Problem]:
        return self._checks() + self._config_problems()

    def config(self) -> ExtractorConfig:
        """The validated configuration, or engine.InputError with one line per problem."""
        errors = [f"  - {p.line}" for p in self._problems() if p.level == "danger"]
        if errors:
            raise InputError("\n".join([f"{SETTINGS}: {len(errors)} problem(s)", *errors]))
        return ExtractorConfig.model_validate(self._config_data())

    # -- showing ---------------------------------------------------------------------------
    @staticmethod
    def _say(alert: pn.pane.Alert, level: str, *lines: str) -> None:
        """Show plain-text lines (escaped, one per line) in an alert."""
        text = "<br>".join(markdown_text(part) for line in lines for part in line.splitlines())
        alert.alert_type, alert.object, alert.visible = level, text, True

    def _refresh(self, *_) -> None:
        """Validate and put each problem beside its control; greys, hides and fills row widgets."""
        if self._holding:
            return
        self._holding += 1  # show() may set widgets; their watchers must not re-enter
        try:
            self._show_problems()
        finally:
            self._holding -= 1

    def _show_problems(self) -> None:
        signatures = self._signature_heads()
        owners = [row.head for row in self._pheno_rows.values() if row.on.value and row.owns_latent]
        owners += [head for head, row in signatures.items() if row.on.value]
        for row in self._pheno_rows.values():
            row.show(owners)
        for row in self._sig_rows.values():
            row.show()
        self._warmup.visible = self._story_choice.value == RECONSTRUCTION_FIRST
        problems = self._problems()
        alerts = dict(self._alerts)
        alerts |= {f"phenotypes.{row.head}": row.problem for row in self._pheno_rows.values()}
        alerts |= {f"signatures.{head}": row.problem for head, row in signatures.items()}
        for where, alert in alerts.items():
            found = [p for p in problems if p.where == where]
            if found:
                level = "danger" if any(p.level == "danger" for p in found) else "warning"
                self._say(alert, level, *(p.text for p in found))
            else:
                alert.visible = False
        with param.edit_constant(self):
            self.valid = not any(p.level == "danger" for p in problems)
        self._build_button.disabled = not self.valid

    # -- building --------------------------------------------------------------------------
    def build_model(self) -> GuidedModel:
        """Build a GuidedModel for `state.adata` and store it in `state.model`.

        On failure the reason is shown in the page, `state` is left as it was, and
        engine.InputError is raised.
        """
        try:
            if self.state.adata is None:
                raise InputError("no cells are loaded: load data before building a model")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model = GuidedModel(self.state.adata, config=self.config(), device="auto")
        except (ValueError, RuntimeError) as error:  # InputError is a ValueError; RuntimeError covers the device
            self._say(self._status, "danger", "The model was not built.", str(error))
            if isinstance(error, InputError):
                raise
            raise InputError(str(error)) from error
        self.state.model = model
        parameters = sum(p.numel() for p in model.model.parameters())
        latents = ", ".join(model.latent_names)
        self._say(self._status, "success", f"Model built on {model.batches.device}: latents {latents}; "
                                           f"{parameters:,} parameters.", *(str(w.message) for w in caught))
        return model

    def _on_build(self, _) -> None:
        self._build_button.loading = True
        try:
            self.build_model()
        except InputError:
            pass  # build_model has shown the reason beside the button
        finally:
            self._build_button.loading = False

    # -- for tests and notebooks -----------------------------------------------------------
    def set_phenotype(self, column: str, on: bool = True, role: str = "learn", latent_dim: int = 8,
                      attach: str | None = None, alpha: float = 1.0, kind: str | None = None,
                      weight: float = 1.0) -> None:
        """Set one phenotype row as a user would; attach=None means the head's own latent."""
        row = self._pheno_rows.get(column)
        if row is None:
            raise InputError(f"no phenotype row for obs column {column!r}; rows: {list(self._pheno_rows)}")
        with self._batch():
            target = OWN if attach is None else attach
            if target not in row.attach.options:
                row.attach.options = [*row.attach.options, target]
            row.on.value, row.role.value, row.latent.value = on, role, latent_dim
            row.attach.value, row.alpha.value, row.weight.value = target, alpha, weight
            if kind is not None:
                row.kind.value = kind

    def set_signature(self, name: str, on: bool = True, exclude: bool = False, latent_dim: int = 8,
                      weight: float = 1.0) -> None:
        """Switch a gene set's head on or off, as a user would."""
        row = self._sig_rows.get(name)
        if row is None:
            raise InputError(f"no gene set named {name!r}; sets: {list(self._sig_rows)}")
        with self._batch():
            row.on.value, row.exclude.value, row.latent.value, row.weight.value = on, exclude, latent_dim, weight
