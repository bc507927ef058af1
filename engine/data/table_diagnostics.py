"""What a knowledge table cannot do with these cells, found before any training.

Each finding names the populations and markers it concerns, so the studio can show it next to
those cells of the table. Errors stop a model from being built (missing markers, untransformed
intensities); warnings are the advice cytometrists give each other about tables (every marker
needs a population that has it and one that lacks it; two populations must differ somewhere).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from engine.data.errors import InputError
from engine.data.knowledge import KnowledgeTable

RAW_INTENSITY = 100.0  # asinh / logicle-transformed markers stay well below; raw ones reach thousands
SAMPLED_CELLS = 20_000
DIFFERENT = 0.5  # two levels this far apart tell populations apart


@dataclass(frozen=True)
class TableFinding:
    kind: Literal["missing_markers", "untransformed", "indistinguishable", "one_sided", "no_knowledge"]
    severity: Literal["error", "warning"]
    message: str
    populations: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()


def diagnose_table(table: KnowledgeTable, adata: AnnData | None = None, layer: str | None = None) -> list[TableFinding]:
    """Every finding for `table` (against `adata`'s markers and values when given)."""
    found = _indistinguishable(table) + _one_sided(table) + _no_knowledge(table)
    if adata is not None:
        missing = [m for m in table.markers if m not in set(adata.var_names)]
        if missing:
            try:
                table.validate(adata)
            except InputError as error:
                found.insert(0, TableFinding("missing_markers", "error", str(error), markers=tuple(missing)))
        present = [m for m in table.markers if m in set(adata.var_names)]
        found += _untransformed(adata, present, layer)
    return found


def _indistinguishable(table: KnowledgeTable) -> list[TableFinding]:
    values = table.values.to_numpy(dtype=float)
    known = ~np.isnan(values)
    apart = np.abs(values[:, None, :] - values[None, :, :]) >= DIFFERENT
    separable = (apart & known[:, None, :] & known[None, :, :]).any(axis=2)
    found = []
    for i, j in zip(*np.nonzero(np.triu(~separable, k=1))):
        a, b = table.populations[i], table.populations[j]
        found.append(TableFinding(
            "indistinguishable", "warning",
            f"populations {a} and {b} have the same known levels on every marker, so the model cannot "
            f"tell them apart; give at least one marker a different level (1 or -1) for the two",
            populations=(a, b),
        ))
    return found


def _one_sided(table: KnowledgeTable) -> list[TableFinding]:
    found = []
    for marker in table.markers:
        column = table.values[marker].dropna()
        if column.empty:
            continue
        lacking = "negative (-1)" if not (column < 0).any() else "positive (1)" if not (column > 0).any() else None
        if lacking:
            found.append(TableFinding(
                "one_sided", "warning",
                f"marker {marker}: no population is {lacking}, so the model cannot learn where that level "
                f"lies on this marker; mark at least one population {lacking.split()[0]} for it, or leave it out",
                markers=(marker,),
            ))
    return found


def _no_knowledge(table: KnowledgeTable) -> list[TableFinding]:
    empty = table.values.isna().all(axis=1)
    return [
        TableFinding(
            "no_knowledge", "warning",
            f"population {name} has no known marker level (all blank), so nothing sets it apart; fill in "
            "at least one marker",
            populations=(name,),
        )
        for name in table.values.index[empty]
    ]


def _untransformed(adata: AnnData, markers: list[str], layer: str | None) -> list[TableFinding]:
    if not markers:
        return []
    matrix = adata.layers[layer] if layer is not None else adata.X
    columns = adata.var_names.get_indexer(markers)
    rows = np.random.default_rng(0).choice(adata.n_obs, size=min(adata.n_obs, SAMPLED_CELLS), replace=False)
    sample = matrix[np.sort(rows)][:, columns]
    sample = np.abs(sample.toarray() if sp.issparse(sample) else np.asarray(sample, dtype=float))
    high = np.nanquantile(sample, 0.999, axis=0)
    raw = [m for m, value in zip(markers, high) if value > RAW_INTENSITY]
    if not raw:
        return []
    where = f"layer {layer}" if layer is not None else "the main data matrix"
    return [TableFinding(
        "untransformed", "error",
        f"{len(raw)} marker(s) in {where} look like raw intensities (values in the hundreds or more): "
        f"{', '.join(raw[:10])}{' and more' if len(raw) > 10 else ''}. Transform them first, with asinh "
        "(mass cytometry, cofactor 5) or logicle (flow cytometry); the cytometry preprocessing step does both.",
        markers=tuple(raw),
    )]
