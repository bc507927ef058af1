"""The guided family's head rows: one per obs column (a phenotype head) and one per gene set
(a signature head), each with its widgets, its spec for the configuration and its own checks.

Every row and widget carries a stable css class for browser tests: `hanami-pheno-<column>` for a
phenotype row (its widgets add `-on`, `-kind`, `-role`, `-alpha`, `-attach`, `-latent`,
`-weight`, `-problem`), `hanami-sig-<set>` for a signature row (`-on`, `-exclude`, `-latent`,
`-weight`, `-genes`, `-problem`), with characters other than letters, digits, `_` and `-`
replaced by `-`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
from anndata import AnnData
from torch import nn

from app.builders.widgets import ROW_MARGIN, alert, css_name, header, row_widgets
from app.escape import html_text
from engine.config.choices import KINDS, LOSSES_FOR, ROLES
from engine.config.extractor import RESERVED_NAMES
from engine.data.genesets import match_genes

OWN = "its own dimensions"
ROLE_LABELS = {"learn": "Learn cell type", "remove": "Remove batch effect", "neutralize": "Only read out"}
ROLE_CHOICES = {ROLE_LABELS.get(role, role): role for role in ROLES}
KIND_LABELS = {"categorical": "categories", "continuous": "numbers"}
KIND_CHOICES = {KIND_LABELS.get(kind, kind): kind for kind in KINDS}
# One line of help per column of the annotation rows: plain words first, the ML term in brackets.
PHENO_HELP = {
    "name": "A column of the cell annotations (in AnnData terms, an obs column).",
    "on": "Switch on to use this annotation when the model learns.",
    "kind": "categories: labels such as cell types; numbers: a measurement such as a score.",
    "role": ("Learn cell type: the model learns to predict this annotation and keeps a part of the embedding "
             "for it (a head with its own latent). Remove batch effect: the embedding is pushed to forget it, "
             "for batch or donor (gradient reversal). Only read out: it is predicted from the embedding without "
             "shaping it (neutralised gradient)."),
    "alpha": "How hard the embedding is pushed to forget this annotation (gradient reversal strength, alpha).",
    "attach": ("Which part of the embedding predicts it: its own dimensions, the main embedding, all of them, "
               "or another annotation's or gene program's part (the latent the head attaches to)."),
    "latent": "How many dimensions its own part of the embedding has (latent size).",
    "weight": "How much its error counts in the total the model lowers (loss weight).",
}
SIG_HELP = {
    "name": "A marker gene program: a named set of genes (a gene set).",
    "on": "Switch on to give this gene program its own part of the embedding (a signature head).",
    "exclude": ("Hide its genes from what the model reads, so it must infer them from the other genes "
                "(exclude from input)."),
    "latent": "How many dimensions the program's part of the embedding has (latent size).",
    "weight": "How much its error counts in the total the model lowers (loss weight).",
    "genes": "How many of the program's genes the loaded cells measure.",
}
GRADIENT = {"learn": "normal", "remove": "reverse", "neutralize": "neutralize"}  # as PhenotypeSpec fills it in
MANY_CLASSES = 100
MISSING_SHOWN = 10


def is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def safe_name(label: str, taken: set[str]) -> str:
    """A head name the model accepts: no '.', not reserved, not a ModuleDict attribute, unique."""
    base = label.replace(".", "_") or "head"
    name, n = base, 1
    while name in taken or name in RESERVED_NAMES or hasattr(nn.ModuleDict(), name):
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


class PhenotypeRow:
    """The head settings of one obs column; `spec()` is its PhenotypeSpec as a dict."""

    WIDTHS = {"name": 180, "on": 50, "kind": 115, "role": 215, "alpha": 70, "attach": 150, "latent": 85, "weight": 70}

    def __init__(self, column: str, values: pd.Series, n_values: int, head: str, on_change):
        self.column, self.head, self.n_values = column, head, n_values
        numeric = is_number(values)
        self.convertible = self._convertible(values)
        self.example = values.dropna().iloc[0]
        described = f"numbers, {values.min():.3g} to {values.max():.3g}" if numeric else f"{n_values:,} categories"
        css, w = f"hanami-pheno-{css_name(column)}", self.WIDTHS
        widget = row_widgets(column, css, w, on_change)

        self.on = widget(pn.widgets.Switch, "on", value=False)
        self.kind = widget(pn.widgets.Select, "kind", options=KIND_CHOICES,
                           value="continuous" if numeric else "categorical")
        self.role = widget(pn.widgets.Select, "role", options=ROLE_CHOICES, value="learn")
        self.alpha = widget(pn.widgets.FloatInput, "alpha", value=1.0, start=0, step=0.1)
        self.attach = widget(pn.widgets.Select, "attach", options=[OWN, "main", "all"], value=OWN)
        self.latent = widget(pn.widgets.IntInput, "latent", value=8)
        self.weight = widget(pn.widgets.FloatInput, "weight", value=1.0, start=0, step=0.1)
        self.problem = alert(f"{css}-problem")
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
        h = PHENO_HELP
        return header(("annotation", w["name"], h["name"]), ("use", w["on"], h["on"]), ("values", w["kind"], h["kind"]),
                      ("what to do", w["role"], h["role"]),
                      ("strength", w["alpha"] + 10 - 2 * ROW_MARGIN[1], h["alpha"]),
                      ("predicted from", w["attach"], h["attach"]),
                      ("dimensions", w["latent"] + 10 - 2 * ROW_MARGIN[1], h["latent"]),
                      ("weight", w["weight"], h["weight"]))

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
            "losses": [{"loss": LOSSES_FOR[kind][0], "gradient": GRADIENT[role],
                        "alpha": self.alpha.value, "weight": self.weight.value}],
        }
        if self.owns_latent:
            spec["latent_dim"] = self.latent.value
        return spec

    def checks(self) -> list[tuple[str, str]]:
        """(level, text) problems of this row that the configuration cannot see."""
        problems = []
        if self.kind.value == "continuous" and not self.convertible:
            problems.append(("danger", "set to numbers, but the column holds non-numeric values "
                                       f"(for example {self.example}); choose categories for it"))
        if self.kind.value == "categorical" and self.n_values > MANY_CLASSES:
            problems.append(("warning", f"{self.n_values:,} categories: is this a measurement? If so, choose numbers"))
        if self.weight.value == 0:
            problems.append(("warning", "weight 0: it is switched on but the model learns nothing from it; "
                                        "raise the weight or switch it off"))
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


class SignatureRow:
    """One gene set as a signature head, with how well its genes match the loaded cells."""

    WIDTHS = {"name": 200, "on": 50, "exclude": 110, "latent": 85, "weight": 70}

    def __init__(self, label: str, genes: list[str], source: str, on_change):
        self.label, self.genes, self.source, self.match = label, genes, source, None
        css, w = f"hanami-sig-{css_name(label)}", self.WIDTHS
        widget = row_widgets(label, css, w, on_change)

        self.on = widget(pn.widgets.Switch, "on", value=False)
        self.exclude = widget(pn.widgets.Checkbox, "exclude", value=False)
        self.latent = widget(pn.widgets.IntInput, "latent", value=8)
        self.weight = widget(pn.widgets.FloatInput, "weight", value=1.0, start=0, step=0.1)
        self.name = pn.pane.HTML(width=w["name"], margin=ROW_MARGIN)
        self.genes_line = pn.pane.HTML(margin=ROW_MARGIN, css_classes=[f"{css}-genes"], sizing_mode="stretch_width")
        self.problem = alert(f"{css}-problem")
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
        h = SIG_HELP
        return header(("gene program", w["name"], h["name"]), ("use", w["on"], h["on"]),
                      ("hide its genes", w["exclude"], h["exclude"]), ("dimensions", w["latent"], h["latent"]),
                      ("weight", w["weight"], h["weight"]), ("genes in the data", 300, h["genes"]))

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
                "latent_dim": self.latent.value, "losses": [{"loss": LOSSES_FOR["signature"][0], "weight": self.weight.value}]}

    def checks(self) -> list[tuple[str, str]]:
        problems = []
        if self.match is not None and not self.match.matched:
            problems.append(("danger", f"none of its {len(self.genes)} genes is in the data (first: "
                                       f"{', '.join(self.genes[:5])}); check the naming (gene symbols or Ensembl "
                                       "ids) or switch it off"))
        if self.weight.value == 0:
            problems.append(("warning", "weight 0: it is switched on but the model learns nothing from it; "
                                        "raise the weight or switch it off"))
        return problems

    def show(self) -> None:
        for widget in (self.exclude, self.latent, self.weight):
            widget.disabled = not self.on.value
