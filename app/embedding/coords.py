"""Where each cell sits in the explorer: two columns of an obsm embedding, or a UMAP of it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scanpy as sc
from anndata import AnnData

MODES = ("dimensions", "umap")


def embedding_keys(adata: AnnData) -> list[str]:
    """obsm entries with one row per cell and at least two columns: what can be drawn in 2-D."""
    return [key for key, value in adata.obsm.items() if np.ndim(value) == 2 and value.shape[1] >= 2]


def is_layout(key: str) -> bool:
    """A 2-D picture already (a UMAP, t-SNE or one we cached): laying it out again means nothing."""
    return key.lower().endswith(("umap", "tsne"))


def umap_key(key: str) -> str:
    """Where the UMAP of ``obsm[key]`` is cached, so each representation is laid out once."""
    return f"{key}_umap"


def umap_layout(rep: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 2-D UMAP of ``rep``, computed on a bare AnnData.

    The user's own X_umap, neighbour graph and uns stay as they were, and touching no shared
    object lets the caller run this in a worker thread.
    """
    n_cells = rep.shape[0]
    if n_cells < 3:
        raise ValueError(f"A UMAP needs at least 3 cells; this embedding has {n_cells}.")
    bare = AnnData(obs=pd.DataFrame(index=pd.RangeIndex(n_cells).astype(str)), obsm={"rep": np.asarray(rep)})
    sc.pp.neighbors(bare, use_rep="rep", n_neighbors=min(15, n_cells - 1), key_added="rep", random_state=seed)
    sc.tl.umap(bare, neighbors_key="rep", key_added="umap", random_state=seed)
    return bare.obsm["umap"].astype(np.float32)


def coordinates(adata: AnnData, key: str, mode: str, dims: tuple[int, int]) -> np.ndarray:
    """(n_cells, 2) float32 positions; a missing UMAP is computed here and cached in obsm."""
    if key not in embedding_keys(adata):
        available = ", ".join(embedding_keys(adata)) or "none"
        raise ValueError(f"{key} is not an embedding of these cells with 2 or more dimensions (there are: {available}).")
    if mode not in MODES:
        raise ValueError(f"An embedding is shown by its dimensions or its UMAP, not by {mode}.")
    rep = np.asarray(adata.obsm[key])
    if mode == "umap":
        if umap_key(key) not in adata.obsm:
            adata.obsm[umap_key(key)] = umap_layout(rep)
        return np.asarray(adata.obsm[umap_key(key)], dtype=np.float32)
    n_dims = rep.shape[1]
    if len(dims) != 2 or not all(0 <= int(d) < n_dims for d in dims):
        raise ValueError(f"{key} has dimensions 0 to {n_dims - 1}; choose two of them (you chose {dims[0]} and {dims[1]}).")
    return rep[:, [int(d) for d in dims]].astype(np.float32)
