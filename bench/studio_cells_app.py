"""`panel serve bench/studio_cells_app.py`: the studio on generated cells, for bench/studio_latency.py.

HANAMI_BENCH_CELLS sets how many cells (0 or unset: the built-in demo, as `panel serve app`). The
cells come from bench/workload.py's seeded generator (50 genes, ten cell types in obs "cell_type"),
with two embeddings in obsm: X_pca (a seeded random projection to 10 dimensions) and X_umap (2-D,
each cell type around its own centre). They are generated once per server and every browser
session gets cells of its own, as if each user had loaded the same file: its own annotations (obs)
and embeddings (obsm), which sessions change, and the matrix X shared, which the studio never changes
in place (preprocessing loads a changed copy); copying its 200 MB for every page took longer than
building the page.
"""
import os

import anndata as ad
import numpy as np
import panel as pn

from app.studio import Studio

N_GENES = 50
SEED = 0


def generated_cells(n_cells: int):
    from bench.workload import make_adata  # the repo root is on PYTHONPATH, as `panel serve` runs it

    adata = make_adata(n_cells, N_GENES, seed=SEED)
    rng = np.random.default_rng(SEED + 1)
    projection = rng.normal(size=(N_GENES, 10)).astype(np.float32) / np.sqrt(N_GENES)
    adata.obsm["X_pca"] = (np.asarray(adata.X) @ projection).astype(np.float32)
    codes = adata.obs["cell_type"].cat.codes.to_numpy()
    centres = rng.normal(scale=8.0, size=(int(codes.max()) + 1, 2)).astype(np.float32)
    adata.obsm["X_umap"] = centres[codes] + rng.normal(size=(n_cells, 2)).astype(np.float32)
    return adata


def session_cells(base: ad.AnnData) -> ad.AnnData:
    """Cells of the session's own, sharing X with `base`."""
    return ad.AnnData(X=base.X, obs=base.obs.copy(), var=base.var.copy(),
                      obsm={key: values.copy() for key, values in base.obsm.items()})


n_cells = int(os.environ.get("HANAMI_BENCH_CELLS", "0") or 0)
pn.extension("tabulator", "filedropper", notifications=True)
if n_cells > 0:
    base = pn.state.as_cached(f"hanami-bench-cells-{n_cells}", generated_cells, n_cells=n_cells)
    Studio(session_cells(base), title=f"{n_cells:,} generated cells").page().servable()
else:
    Studio().page().servable()
