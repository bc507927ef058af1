"""The names a biologist reads for the engine's loss terms, and plain lists for messages.

The engine names every loss term by where it comes from (`reconstruction/mse`, `main/sw2_uniform`,
`pheno/bulk_labels/nll`, `signature/B cells/mse`, `raw/<term>` for a term before its weight, and
`total`). Those names stay the data keys everywhere (event logs, the chart's sources, exports);
`term_label` is the one place that turns them into what the page shows.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

RAW = "raw/"
TOTAL = "total"

# What a regulariser measures on an embedding (the ML name in brackets).
SHAPE_WORDS = {
    "sw2_uniform": "distance from an even spread (SW2 uniform)",
    "sw2_gaussian": "distance from a bell-shaped spread (SW2 Gaussian)",
    "sw2_gmm": "distance from one cluster per label (SW2 mixture)",
    "l1": "size of its values (L1)",
    "l2": "size of its values (L2)",
    "kl": "distance from a bell-shaped spread (KL)",
}
# The population model's terms (family "flow"): how far cells lie from the table's populations,
# and what the flow's stretching of marker space costs (the log-determinant).
FLOW_TERMS = {
    "prior_fit": "misfit of the cells to the table's populations",
    "volume": "stretching of marker space by the model (log-determinant)",
}
# What a head's loss measures.
HEAD_LOSSES = {"nll", "bce", "mse", "l1", "cosine", "nb"}
ROLE_TERMS = {
    "learn": "{name}: prediction error",
    "remove": "{name} (removed): prediction error, higher means better removed",
    "neutralize": "{name} (read out only): prediction error",
}


def term_label(term: str, roles: Mapping[str, str] | None = None) -> str:
    """What the page calls an engine loss term; `roles` maps phenotype heads to learn/remove/neutralize.

    >>> term_label("pheno/bulk_labels/nll")
    'bulk_labels: prediction error'
    >>> term_label("pheno/batch/nll", {"batch": "remove"})
    'batch (removed): prediction error, higher means better removed'
    """
    if term == TOTAL:
        return "total error (all terms, weighted)"
    if term in FLOW_TERMS:
        return FLOW_TERMS[term]
    if term.startswith(RAW):
        return f"{term_label(term.removeprefix(RAW), roles)} (before weighting)"
    parts = term.split("/")
    if parts[0] == "reconstruction" and len(parts) == 2:
        return "expression reconstruction error"
    if parts[0] == "main" and len(parts) == 2:
        return f"main embedding: {SHAPE_WORDS.get(parts[1], parts[1])}"
    if parts[0] in ("pheno", "signature") and len(parts) >= 3:
        name, measure = "/".join(parts[1:-1]), parts[-1]
        is_loss = measure in HEAD_LOSSES  # l1 is also a regulariser; on a head it is the loss
        if parts[0] == "pheno":
            if is_loss:
                return ROLE_TERMS.get((roles or {}).get(name, "learn"), ROLE_TERMS["learn"]).format(name=name)
            return f"{name} embedding: {SHAPE_WORDS.get(measure, measure)}"
        if is_loss:
            return f"gene program {name}: expression prediction error"
        return f"gene program {name} embedding: {SHAPE_WORDS.get(measure, measure)}"
    return term


def roles_of(model) -> dict[str, str]:
    """Phenotype head -> role (learn, remove, neutralize) of a built model; {} for families without heads."""
    phenotypes = getattr(getattr(model, "config", None), "phenotypes", None) or {}
    return {name: getattr(spec, "role", "learn") for name, spec in phenotypes.items()}


def names(values: Iterable[object], most: int = 10) -> str:
    """A plain list for a sentence: 'CD14, LYZ and 3 more' (no brackets or quotes)."""
    values = [str(v) for v in values]
    shown = ", ".join(values[:most])
    return shown + (f" and {len(values) - most} more" if len(values) > most else "") if values else "none"
