"""Generated RNA cells from several systems, for tests, benchmarks and the studio's demo.

Each cell type has a mean expression profile; each system multiplies every gene by its own
log-normal factor (sd `system_effect`: large values are the strong, gene-specific shifts between
species or protocols that plain batch correction does not undo) and has its own library sizes;
batches within a system add a small shift. Counts are negative binomial (dispersion `theta`);
X holds log1p of counts normalised to 10,000 per cell and `layers['counts']` the counts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData


def cells_from_systems(n_cells: int = 2000, n_genes: int = 500, *, n_cell_types: int = 4, n_systems: int = 2,
                       batches_per_system: int = 2, system_effect: float = 1.0, theta: float = 5.0,
                       seed: int = 0) -> AnnData:
    rng = np.random.default_rng(seed)
    type_profiles = rng.normal(0, 1.0, (n_cell_types, n_genes)) + rng.normal(0, 1.0, n_genes)
    system_factors = rng.normal(0, system_effect, (n_systems, n_genes))
    n_batches = n_systems * batches_per_system
    batch_factors = rng.normal(0, 0.1, (n_batches, n_genes))
    cell_type = rng.integers(0, n_cell_types, n_cells)
    system = rng.integers(0, n_systems, n_cells)
    batch = system * batches_per_system + rng.integers(0, batches_per_system, n_cells)
    library = rng.lognormal(np.log(2000) + 0.5 * system, 0.3)
    log_rate = type_profiles[cell_type] + system_factors[system] + batch_factors[batch]
    rate = np.exp(log_rate)
    rate *= (library / rate.sum(axis=1))[:, None]
    counts = rng.negative_binomial(theta, theta / (theta + rate)).astype(np.float32)
    normalised = np.log1p(counts / counts.sum(axis=1, keepdims=True).clip(min=1) * 1e4).astype(np.float32)
    obs = pd.DataFrame({
        "system": pd.Categorical([f"system {s}" for s in system]),
        "batch": pd.Categorical([f"batch {b}" for b in batch]),
        "cell_type": pd.Categorical([f"type {t}" for t in cell_type]),
    }, index=[f"cell{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"gene{g}" for g in range(n_genes)])
    return AnnData(sp.csr_matrix(normalised), obs=obs, var=var, layers={"counts": sp.csr_matrix(counts)})
