"""What a model writes into an AnnData, as data first: one writer fills obsm, obs and uns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from anndata import AnnData


@dataclass
class Results:
    """Per-cell matrices (obsm), per-cell columns (obs) and run-level entries (uns), by key."""

    obsm: dict[str, np.ndarray] = field(default_factory=dict)
    obs: dict[str, pd.Series] = field(default_factory=dict)
    uns: dict[str, object] = field(default_factory=dict)

    @property
    def keys(self) -> dict[str, list[str]]:
        return {"obsm": list(self.obsm), "obs": list(self.obs), "uns": list(self.uns)}


def write_results(adata: AnnData, results: Results) -> None:
    """The one path that puts a model's results into an AnnData."""
    for key, values in results.obsm.items():
        adata.obsm[key] = values
    for key, values in results.obs.items():
        adata.obs[key] = values.values if isinstance(values, pd.Series) else values  # keeps categoricals
    for key, value in results.uns.items():
        adata.uns[key] = value
