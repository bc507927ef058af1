"""Integration of the CellBench lung-cancer cell-line mixture measured on two platforms: CEL-seq2
(plate) and Drop-seq (droplet) as the two systems, singlets only, genes intersected.

The cell line of each cell comes from its genotype (demuxlet), not its expression, so it is an
honest label: integration must mix the platforms while the three cell lines stay apart.
"""
import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

import engine
from engine.metrics import integration_metrics

pytestmark = [pytest.mark.data, pytest.mark.slow]

PLATFORMS = {"CEL-seq2": "sc_celseq2", "Drop-seq": "sc_dropseq"}


def read_platform(folder, platform: str, stem: str) -> ad.AnnData:
    counts = pd.read_csv(folder / f"{stem}.count.csv.gz", index_col=0)  # genes x cells
    meta = pd.read_csv(folder / f"{stem}.metadata.csv.gz", index_col=0)
    cells = ad.AnnData(sp.csr_matrix(counts.T.to_numpy(dtype=np.float32)),
                       obs=meta.loc[counts.columns, ["cell_line", "demuxlet_cls"]].astype(str),
                       var=pd.DataFrame(index=counts.index.astype(str)))
    cells.obs_names = [f"{platform}:{c}" for c in counts.columns]
    cells.obs["platform"] = platform
    return cells[cells.obs["demuxlet_cls"] == "SNG"].copy()


@pytest.fixture(scope="module")
def mixology(shared_data):
    folder = shared_data / "scrna_mixology_systems"
    cells = ad.concat([read_platform(folder, p, s) for p, s in PLATFORMS.items()], join="inner")
    engine.preprocess.rna(cells, n_top_genes=2000, subset=True)
    return cells


@pytest.fixture(scope="module")
def scores(mixology):
    model = engine.SysVIModel(mixology, "platform", device="cpu", training={"seed": 0, "max_epochs": 100, "batch_size": 32})
    model.train(progress=False)
    pca = sc.pp.pca(mixology.X.toarray(), n_comps=15, random_state=0)
    labels, platforms = mixology.obs["cell_line"].to_numpy(), mixology.obs["platform"].to_numpy()
    table = {name: integration_metrics(latent, platforms, labels).set_index("metric")["value"]
             for name, latent in (("PCA", pca), ("SysVI", model.latent()))}
    frame = pd.DataFrame(table)
    print(f"\nmixology, {mixology.n_obs} singlets x {mixology.n_vars} genes, {model.runs[-1].epochs} epochs:\n{frame}")
    return frame


def test_the_platforms_mix_better_than_in_the_uncorrected_pca(scores):
    # iLISI moves a lot with the seed on these 450 cells: 0.30-0.60 over seeds 0-2 with the prior
    # started on spread cells (0.37-0.76 with a uniform draw of them); the PCA scores 0.01
    assert scores.loc["ilisi_knn", "SysVI"] > scores.loc["ilisi_knn", "PCA"] + 0.2
    assert scores.loc["silhouette_batch", "SysVI"] > scores.loc["silhouette_batch", "PCA"]


def test_the_cell_lines_stay_apart(scores):
    assert scores.loc["knn_label_accuracy", "SysVI"] >= 0.95
    assert scores.loc["clisi_knn", "SysVI"] >= 0.95
