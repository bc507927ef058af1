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
from app.builders.widgets import alert, help_line, say
from app.components.training_options import TrainingOptions
from app.state import StudioState
from app.words import names
from engine.config.choices import LOSSES_FOR, REGULARIZERS
from engine.data.errors import InputError

DETACH = {"nothing (everything learns)": "none", "the shared first layers (pre-encoder)": "pre_encoder",
          "everything before the embedding (pre-encoder and encoders)": "encoder"}
RECONSTRUCTION = {"squared error (MSE)": "mse", "absolute error (L1)": "l1", "cosine distance": "cosine",
                  "count model (negative binomial)": "nb"}
SHAPES = {"free (no constraint)": "none", "even spread (SW2 uniform)": "sw2_uniform",
          "bell-shaped (SW2 Gaussian)": "sw2_gaussian", "one cluster per label (SW2 mixture)": "sw2_gmm",
          "small values (L1)": "l1", "small values (L2)": "l2"}
PHENOTYPE_HELP = ("Use the cell annotations you trust. Learn cell type: the model learns to tell the labels apart "
                  "and keeps a part of the embedding for them. Remove batch effect: the embedding is pushed to "
                  "forget a batch or donor. Only read out: predicted, without shaping the embedding. "
                  "Hover a column title for details and the ML terms.")
SIGNATURE_HELP = ("Each marker gene program you switch on gets its own part of the embedding, which learns to "
                  "predict the program's genes (a signature head). Hide its genes to make the model infer them "
                  "from the other genes.")
ARCHITECTURE_HELP = ("The size of the embedding and how errors are measured; how long it trains is set in 3 · Train.")
AREAS = {"main_regularizers": "regularizer", "main_latent_dim": "architecture", "reconstruction": "architecture"}
# What a problem's field is called in the page (the engine's configuration field names in brackets in help).
FIELD_WORDS = {"latent_dim": "dimensions", "attach": "predicted from", "losses": "error measure",
               "regularizers": "embedding shape", "alpha": "strength", "kind": "values", "role": "what to do",
               "genes": "genes", "main_latent_dim": "main embedding size", "reconstruction": "expression error",
               "main_regularizers": "shape of the main embedding", "loss": "", "weight": "weight",
               "column": "annotation", "labels": "labels"}


class GuidedBuilder(FamilyBuilder):
    """Heads, architecture and training story of a GuidedModel for `state.adata`."""

    family = "guided"
    title = "Guided by what you know: cell annotations and marker gene programs"
    title_help = ("A knowledge-guided autoencoder: it learns an embedding of the cells that reproduces their "
                   "expression, shaped by the annotations and gene sets you switch on (heads).")
    warmup_task = {"backward_pheno_loss": False, "backward_signature_loss": False}
    warmup_label = "expression first, then add the rest"
    warmup_length_label = "expression-only epochs"
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

        reconstruction = {label: loss for label, loss in RECONSTRUCTION.items() if loss in LOSSES_FOR["reconstruction"]}
        reconstruction |= {loss: loss for loss in LOSSES_FOR["reconstruction"] if loss not in reconstruction.values()}
        shapes = {label: name for label, name in SHAPES.items() if name == "none" or name in REGULARIZERS}
        shapes |= {name: name for name in REGULARIZERS if name not in shapes.values()}
        self._main_latent = widget(pn.widgets.IntInput, "latent", label="main embedding size", value=16, width=150,
                                   description="Dimensions of the embedding every cell gets (the main latent).")
        self._reconstruction = widget(pn.widgets.Select, "reconstruction", label="expression error measure",
                                      options=reconstruction, value="mse", width=220,
                                      description="How the difference between a cell's expression and the "
                                                  "model's reproduction of it is measured (reconstruction loss); "
                                                  "count model only for raw counts.")
        self._reconstruction_weight = widget(pn.widgets.FloatInput, "reconstruction-weight",
                                             label="expression weight", value=1.0, start=0, step=0.1, width=150,
                                             description="How much reproducing expression counts in the total "
                                                         "error (reconstruction loss weight).")
        self._regularizer = widget(pn.widgets.Select, "regularizer", label="shape of the main embedding",
                                   options=shapes, value="none", width=240,
                                   description="Pulls the cells of the main embedding towards a chosen spread "
                                               "(a regulariser on the main latent); free leaves it as it comes.")
        self._regularizer_weight = widget(pn.widgets.FloatInput, "regularizer-weight", label="shape weight",
                                          value=1.0, start=0, step=0.1, width=150,
                                          description="How much the shape counts in the total error "
                                                      "(regulariser weight).")
        self._detach = widget(pn.widgets.Select, "detach", label="keep fixed while training", options=DETACH,
                              value="none", width=340,
                              description="Layers that do not change while training (gradients stop there: "
                                          "detach); for a model whose first layers were already trained.")
        self._upload = pn.widgets.FileInput(accept=".gmt,.json,.txt", multiple=False,
                                            label="add gene programs (.gmt, .json or .txt)",
                                            description="Gene sets as .gmt, .json (name: genes) or .txt "
                                                        "(one gene per line); they are added switched off.",
                                            css_classes=["hanami-geneset-upload"])
        self._upload.param.watch(self._on_upload, "value")
        self._upload_message = alert("hanami-geneset-upload-problem")
        self._alerts = {key: alert(f"hanami-model-{key}-problem")
                        for key in ("architecture", "regularizer", "detach")}
        self._alerts["general"] = self._general

    def controls(self) -> list:
        def card(title, help_text, *body):
            return pn.Card(help_line(help_text), *body, title=title,
                           collapsible=True, sizing_mode="stretch_width", margin=(5, 0))

        a = self._alerts
        return [
            card("Cell annotations: learn cell type, remove batch effect", PHENOTYPE_HELP, self._pheno_box),
            card("Marker gene programs", SIGNATURE_HELP, self._sig_box, self._upload, self._upload_message),
            card(
                "Embedding size and error measures", ARCHITECTURE_HELP,
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
            body = [pn.pane.Markdown("Load cells (in 1 · Data) to choose which annotations guide the model.")]
        elif not rows:
            body = [pn.pane.Markdown("No cell annotation can guide the model: each holds one value, or a "
                                     "different one in every cell.")]
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
        say(self._upload_message, "success", f"{name}: added {len(sets)} gene program(s) ({', '.join(sets)}); "
                                             "switch them on above")
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
            return f"{location[0]}.{location[1]}", _field_words(location[2:])
        area = AREAS.get(location[0]) if location else None
        return (area, _field_words(location)) if area else super().place(location)

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
            problems.append(Problem("architecture", "danger", "nothing would be learnt: the expression weight is 0 "
                                                              "and no annotation, gene program or shape with a "
                                                              "weight is on; raise a weight or switch one on"))
        if self._detach.value == "pre_encoder":
            problems.append(Problem("detach", "warning", "the shared first layers (pre-encoder) never change: "
                                                         "they keep their random starting values"))
        elif self._detach.value == "encoder":
            what = ("the annotation and gene program predictors and the expression decoder" if heads_on
                    else "only the expression decoder (nothing else is switched on)")
            problems.append(Problem("detach", "warning", "nothing before the embedding changes, so the embedding "
                                                         f"stays random and only {what} learn from it"))
        epochs, warmup = self.training.epochs, self.training.warmup_epochs
        if self.training.warming_up:
            if warmup >= epochs:
                problems.append(Problem("story", "danger", f"the expression-only phase takes all {epochs} "
                                                           "epochs, so the annotations and gene programs never "
                                                           "train: lower it or raise the epochs"))
            if not heads_on:
                problems.append(Problem("story", "warning", "no annotation or gene program is switched on, so "
                                                            "both phases learn the same thing"))
            if self._reconstruction_weight.value == 0:
                problems.append(Problem("story", "warning", "the first phase learns expression, whose weight is 0"))
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
            raise InputError(f"no annotation row for the column {column}; rows: {names(self._pheno_rows)}")
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
            raise InputError(f"no gene program named {name}; programs: {names(self._sig_rows)}")
        with self._batch():
            row.on.value, row.exclude.value, row.latent.value, row.weight.value = on, exclude, latent_dim, weight


def _field_words(location) -> str:
    """A configuration location in the page's words: ('losses', '0', 'loss') -> 'error measure'."""
    words = [FIELD_WORDS.get(part, part.replace("_", " ")) for part in map(str, location) if not part.isdigit()]
    return " › ".join(dict.fromkeys(word for word in words if word))
