"""The knowledge-guided autoencoder's builder: what it learns from, and how it trains.

A biologist switches obs columns and gene sets on as heads (`guided_heads`), picks sizes, roles
and weights, and sees every problem explained beside the control that causes it. Each change
assembles the engine's own `ExtractorConfig` data (so the page and the command line agree on what
is valid) and adds the checks a configuration cannot make alone: values and genes present in the
data, settings that would train nothing. Building is cheap (no training happens here).
"""
from __future__ import annotations

from pathlib import PurePath

import panel as pn

from app.builders.base import FamilyBuilder, Problem
from app.builders.gene_sets import built_in_sets, read_upload
from app.builders.guided_heads import OWN, PhenotypeRow, SignatureRow, is_number, safe_name
from app.builders.widgets import alert, say
from app.components.training_options import TrainingOptions
from app.state import StudioState
from engine.config.choices import LOSSES_FOR, REGULARIZERS
from engine.data.errors import InputError

DETACH = {"none": "none", "pre-encoder (trunk frozen)": "pre_encoder", "encoder (trunk and encoders frozen)": "encoder"}
PHENOTYPE_HELP = ("Each switched-on obs column gets a head. <b>learn</b>: the head predicts the column and "
                  "shapes its latent; <b>remove</b>: the embedding is pushed to forget it (batch, donor); "
                  "<b>neutralize</b>: the head only reads the embedding out.")
SIGNATURE_HELP = ("Each switched-on gene set gets a latent that predicts its genes' expression; "
                  "<b>exclude from input</b> hides those genes from the encoder, so the model must infer them.")
ARCHITECTURE_HELP = "Sizes, losses and where gradients stop; epochs, learning rate and the story are in the Train tab."
AREAS = {"main_regularizers": "regularizer", "main_latent_dim": "architecture", "reconstruction": "architecture"}


class GuidedBuilder(FamilyBuilder):
    """Heads, architecture and training story of a GuidedModel for `state.adata`."""

    family = "guided"
    title = "knowledge-guided autoencoder (heads from obs columns and gene sets)"
    warmup_task = {"backward_pheno_loss": False, "backward_signature_loss": False}
    warmup_label = "reconstruction first, then add the heads"
    warmup_name = "reconstruction"

    def __init__(self, state: StudioState, training: TrainingOptions | None = None, **params):
        super().__init__(state, training, **params)
        self._pheno_rows: dict[str, PhenotypeRow] = {}
        self._sig_rows: dict[str, SignatureRow] = {}
        self._pheno_box = pn.Column(sizing_mode="stretch_width", margin=0)
        self._sig_box = pn.Column(sizing_mode="stretch_width", margin=0)
        self._build_controls()
        with self._batch():
            for label, genes in built_in_sets().items():
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
                                      options=list(LOSSES_FOR["reconstruction"]), value="mse", width=150)
        self._reconstruction_weight = widget(pn.widgets.FloatInput, "reconstruction-weight",
                                             label="reconstruction weight", value=1.0, start=0, step=0.1, width=150)
        self._regularizer = widget(pn.widgets.Select, "regularizer", label="main-latent regulariser",
                                   options=["none", *REGULARIZERS], value="none", width=170)
        self._regularizer_weight = widget(pn.widgets.FloatInput, "regularizer-weight", label="regulariser weight",
                                          value=1.0, start=0, step=0.1, width=150)
        self._detach = widget(pn.widgets.Select, "detach", label="stop gradients at", options=DETACH, value="none",
                              width=290)
        self._upload = pn.widgets.FileInput(accept=".gmt,.json,.txt", multiple=False,
                                            label="add gene sets (.gmt, .json or .txt)",
                                            css_classes=["hanami-geneset-upload"])
        self._upload.param.watch(self._on_upload, "value")
        self._upload_message = alert("hanami-geneset-upload-problem")
        self._alerts = {key: alert(f"hanami-model-{key}-problem")
                        for key in ("architecture", "regularizer", "detach")}
        self._alerts["general"] = self._general

    def controls(self) -> list:
        def card(title, help_text, *body):
            return pn.Card(pn.pane.HTML(f"<small>{help_text}</small>", margin=(0, 5)), *body, title=title,
                           collapsible=True, sizing_mode="stretch_width", margin=(5, 0))

        a = self._alerts
        return [
            card("Phenotype heads", PHENOTYPE_HELP, self._pheno_box),
            card("Signature heads", SIGNATURE_HELP, self._sig_box, self._upload, self._upload_message),
            card(
                "Architecture", ARCHITECTURE_HELP,
                pn.Row(self._main_latent, self._reconstruction, self._reconstruction_weight), a["architecture"],
                pn.Row(self._regularizer, self._regularizer_weight), a["regularizer"],
                self._detach, a["detach"],
            ),
        ]

    def alerts(self) -> dict[str, pn.pane.Alert]:
        alerts = {key: pane for key, pane in self._alerts.items() if key != "general"}
        alerts |= {f"phenotypes.{row.head}": row.problem for row in self._pheno_rows.values()}
        alerts |= {f"signatures.{head}": row.problem for head, row in self._signature_heads().items()}
        return alerts

    # -- rows ------------------------------------------------------------------------------
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
            if n <= 1 or (not is_number(values) and n >= adata.n_obs):
                continue  # one value teaches nothing; one per cell is an identifier
            rows[column] = PhenotypeRow(column, values, n, safe_name(column, taken), self._refresh)
        self._pheno_rows = rows
        if adata is None:
            body = [pn.pane.Markdown("Load cells to choose phenotype heads.")]
        elif not rows:
            body = [pn.pane.Markdown("No obs column can be a phenotype: each holds one value, or a distinct "
                                     "one per cell.")]
        else:
            body = [PhenotypeRow.header(), *(row.view for row in rows.values())]
        self._pheno_box.objects = body

    def _add_signature(self, label: str, genes: list[str], source: str) -> None:
        row = self._sig_rows.get(label)
        if row is None:
            row = self._sig_rows[label] = SignatureRow(label, genes, source, self._refresh)
            self._sig_box.objects = [SignatureRow.header(), *(r.view for r in self._sig_rows.values())]
        row.genes, row.source = genes, source
        row.rematch(self.state.adata)

    def _signature_heads(self) -> dict[str, SignatureRow]:
        """Head name -> row; names yield to phenotype heads on a clash."""
        taken = {row.head for row in self._pheno_rows.values()}
        return {safe_name(label, taken): row for label, row in self._sig_rows.items()}

    def _on_upload(self, event) -> None:
        if event.new:
            self.add_gene_sets(self._upload.filename or "upload.txt", event.new)

    def add_gene_sets(self, filename: str, data: bytes) -> list[str]:
        """Add an uploaded .gmt/.json/.txt's sets as signature rows (switched off); returns their names.

        A set named like an existing one replaces its genes; problems show under the upload button.
        """
        name = PurePath(filename).name or filename
        try:
            sets = read_upload(filename, data)
        except InputError as error:
            say(self._upload_message, "danger", str(error))
            return []
        with self._batch():
            for label, genes in sets.items():
                self._add_signature(label, genes, name)
        say(self._upload_message, "success", f"{name}: added {len(sets)} gene set(s) ({', '.join(sets)}); "
                                             "switch them on below")
        return list(sets)

    # -- configuration ---------------------------------------------------------------------
    def phase_task(self) -> dict:
        """Where gradients stop, in every phase."""
        return {} if self._detach.value == "none" else {"detach": True, "detach_from": self._detach.value}

    def config_data(self) -> dict:
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

    def place(self, location: tuple[str, ...]) -> tuple[str, str]:
        """A head's problem goes to its row (naming the field); others to their settings area."""
        if len(location) >= 2 and location[0] in ("phenotypes", "signatures"):
            return f"{location[0]}.{location[1]}", ".".join(location[2:])
        area = AREAS.get(location[0]) if location else None
        return (area, ".".join(location)) if area else super().place(location)

    def checks(self) -> list[Problem]:
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
        epochs, warmup = self.training.epochs, self.training.warmup_epochs
        if self.training.warming_up:
            if warmup >= epochs:
                problems.append(Problem("story", "danger", f"reconstruction-only takes all {epochs} "
                                                           "epochs, so the heads never train: lower it or raise "
                                                           "the epochs"))
            if not heads_on:
                problems.append(Problem("story", "warning", "no head is on, so both phases train the same losses"))
            if self._reconstruction_weight.value == 0:
                problems.append(Problem("story", "warning", "the first phase trains reconstruction, whose weight is 0"))
        return problems

    def fit(self) -> None:
        """Greys, hides and fills row widgets to fit their settings."""
        signatures = self._signature_heads()
        owners = [row.head for row in self._pheno_rows.values() if row.on.value and row.owns_latent]
        owners += [head for head, row in signatures.items() if row.on.value]
        for row in self._pheno_rows.values():
            row.show(owners)
        for row in self._sig_rows.values():
            row.show()

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
