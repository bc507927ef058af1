"""Generated cells and the knowledge-guided model the training benchmarks share.

Cells are drawn from a seeded negative-binomial-like model with known cell types (so the cell-type
head has something to learn), log1p-transformed, and handed to `GuidedModel`, whose controller and
device-resident batches the benchmarks drive.
"""
import anndata as ad
import numpy as np
import pandas as pd

from engine import GuidedModel


def make_adata(n_cells: int, n_genes: int, n_types: int = 10, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    types = rng.integers(0, n_types, n_cells)
    programmes = rng.gamma(0.5, 1.0, size=(n_types, n_genes)).astype(np.float32)
    counts = rng.poisson(programmes[types]).astype(np.float32)
    obs = pd.DataFrame({"cell_type": pd.Categorical([f"type {t}" for t in types])}, index=[f"cell{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"gene{i}" for i in range(n_genes)])
    return ad.AnnData(np.log1p(counts), obs=obs, var=var)


def make_model(adata: ad.AnnData, **architecture) -> GuidedModel:
    """A main latent, a cell-type head and a signature head, on the CPU."""
    return GuidedModel(
        adata,
        phenotypes={"cell_type": {"latent_dim": 8}},
        signatures={"programme": list(adata.var_names[:20])},
        device="cpu",
        **architecture,
    )
