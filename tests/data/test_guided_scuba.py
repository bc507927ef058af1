"""Removing tissue from the main latent by gradient reversal, on real bone marrow / blood cells.

SCUBA (250 cells, BM vs PBMC): a tissue head attached to the main latent with a reversed gradient.
Adversarial heads are easily fooled by an encoder that re-codes tissue instead of removing it, so
the story gives the head three extra head-only steps per batch (its input detached at the
encoder), a standard way to keep the adversary strong.
"""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import engine

pytestmark = pytest.mark.data

HEAD_ONLY = {
    "backward_reconstruction_loss": False,
    "backward_main_latent_regularization": False,
    "selected_pheno": ["tissue"],
    "detach": True,
    "detach_from": "encoder",
}
ARCHITECTURE = dict(main_latent_dim=8, norm="layer", dropout=0.1)


def _scores(adata, latent):
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    cell_type = adata.obs["condensed_cell_type"].astype(str).replace(
        {"BM Monocytes": "Monocytes", "PBMC Monocytes": "Monocytes"}
    )
    tissue = cross_val_score(
        LogisticRegression(max_iter=2000), latent, adata.obs["Batch"].astype(str), cv=folds, scoring="balanced_accuracy"
    ).mean()
    kinds = cross_val_score(KNeighborsClassifier(10), latent, cell_type, cv=folds).mean()
    return tissue, kinds


def test_gradient_reversal_removes_tissue_but_keeps_cell_types(shared_data):
    adata = engine.read(shared_data / "scrna_scuba_bm_pbmc" / "AML_h5ad.h5ad")
    plain = engine.GuidedModel(adata, device="cpu", **ARCHITECTURE)
    plain.train(max_epochs=150, batch_size=64, progress=False)
    removed = engine.GuidedModel(
        adata,
        phenotypes={"tissue": {"column": "Batch", "role": "remove", "alpha": 1.0, "head_dims": [32]}},
        device="cpu",
        **ARCHITECTURE,
    )
    story = {"phases": [{"epochs": 150, "tasks": [{}, HEAD_ONLY, HEAD_ONLY, HEAD_ONLY]}]}
    removed.train(story=story, batch_size=64, progress=False)
    tissue_plain, types_plain = _scores(adata, plain.latent("main"))
    tissue_removed, types_removed = _scores(adata, removed.latent("main"))
    print(f"tissue balanced accuracy {tissue_plain:.3f} -> {tissue_removed:.3f}; "
          f"cell-type kNN {types_plain:.3f} -> {types_removed:.3f}")
    assert tissue_plain > 0.8
    assert tissue_removed < 0.7  # chance is 0.5
    assert types_removed > types_plain - 0.05
