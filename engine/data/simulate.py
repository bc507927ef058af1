"""Cytometry-like cells generated from a knowledge table, with the truth kept beside them.

Tests, tutorials and benchmarks need annotated cells at any size without downloading anything.
Each cell draws a population (unequal sizes, as in real samples), takes the table's value for
every marker (a uniform level in [-1, 1] where the table says nothing), adds gaussian noise, and
goes through a smooth monotone distortion per marker, so a model has to learn the marker scales
rather than read the table off the data. Batches shift every marker by their own offset.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from engine.data.knowledge import KnowledgeTable


def random_table(n_populations: int, n_markers: int, *, unknown_fraction: float = 0.1, seed: int = 0) -> KnowledgeTable:
    """A table of +1 / -1 (and some blanks) whose populations differ in at least three known markers."""
    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    while len(rows) < n_populations:
        row = rng.choice([-1.0, 1.0], size=n_markers)
        row[rng.random(n_markers) < unknown_fraction] = np.nan
        if all(np.sum(np.isfinite(row) & np.isfinite(r) & (row != r)) >= 3 for r in rows):
            rows.append(row)
    values = pd.DataFrame(
        np.array(rows),
        index=pd.Index([f"Pop{i + 1}" for i in range(n_populations)], name="population"),
        columns=[f"M{j + 1}" for j in range(n_markers)],
    )
    return KnowledgeTable(values=values, source="generated knowledge table")


def cells_from_table(
    table: KnowledgeTable,
    n_cells: int,
    *,
    noise: float = 0.25,
    n_batches: int = 1,
    batch_shift: float = 0.3,
    extra_markers: int = 0,
    seed: int = 0,
) -> AnnData:
    """`n_cells` cells with obs 'population' (the truth) and 'batch'; X holds float32 markers.

    Population sizes follow a Dirichlet draw, so some populations are rare; `extra_markers`
    adds markers the table does not name (pure noise), as a real panel has.
    """
    rng = np.random.default_rng(seed)
    values = table.values.to_numpy(dtype=np.float64)
    n_pops, n_markers = values.shape
    weights = rng.dirichlet(np.full(n_pops, 2.0))
    population = rng.choice(n_pops, size=n_cells, p=weights)
    levels = values[population]
    unknown = np.isnan(levels)
    levels[unknown] = rng.uniform(-1.0, 1.0, size=int(unknown.sum()))
    latent = levels + rng.normal(0.0, noise, size=levels.shape)
    batch = rng.integers(0, n_batches, size=n_cells)
    shifts = rng.normal(0.0, batch_shift, size=(n_batches, n_markers)) if n_batches > 1 else np.zeros((1, n_markers))
    scale = rng.uniform(0.6, 1.6, size=n_markers)
    bend = rng.uniform(0.0, 0.4, size=n_markers)
    x = scale * (latent + bend * latent**3 / 3) + shifts[batch]
    if extra_markers:
        x = np.hstack([x, rng.normal(0.0, 1.0, size=(n_cells, extra_markers))])
    names = list(table.markers) + [f"extra{j + 1}" for j in range(extra_markers)]
    obs = pd.DataFrame(
        {
            "population": pd.Categorical.from_codes(population, categories=table.populations),
            "batch": pd.Categorical.from_codes(batch, categories=[f"batch{b + 1}" for b in range(n_batches)]),
        },
        index=pd.Index([f"cell{i}" for i in range(n_cells)]),
    )
    return AnnData(X=x.astype(np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(names)))
