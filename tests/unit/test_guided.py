"""GuidedModel: knowledge checked against the data, training, results in AnnData, save / load."""
import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from sklearn.neighbors import KNeighborsClassifier

import engine


def _adata(n=120, genes=30, seed=0):
    rng = np.random.default_rng(seed)
    types = rng.choice(["T", "B", "NK"], n)
    centers = {"T": 0.0, "B": 2.0, "NK": -2.0}
    x = rng.normal(size=(n, genes)).astype(np.float32) + np.array([centers[t] for t in types])[:, None] * (
        np.arange(genes) < 10
    )
    obs = pd.DataFrame({"cell_type": pd.Categorical(types), "score": rng.normal(size=n)}, index=[f"c{i}" for i in range(n)])
    return ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(genes)]))


SMALL = dict(pre_encoder_dims=[32], encoder_dims=[16], decoder_dims=[32], main_latent_dim=4)


def test_train_write_and_latents():
    adata = _adata()
    model = engine.GuidedModel(
        adata,
        phenotypes={"cell_type": {"latent_dim": 3}, "score": {"kind": "continuous", "attach": "main"}},
        signatures={"first": ["G1", "G2", "G3"]},
        device="cpu",
        **SMALL,
    )
    run = model.train(max_epochs=3, batch_size=32, progress=False)
    assert run.state == "finished" and run.epochs == 3
    history = run.history()
    assert {"pheno/cell_type/nll", "pheno/score/mse", "signature/first/mse", "reconstruction/mse"} <= set(history.columns)
    model.write(adata)
    assert adata.obsm["X_guided_main"].shape == (120, 4)
    assert adata.obsm["X_guided_cell_type"].shape == (120, 3)
    assert adata.obsm["X_guided_first"].shape[0] == 120
    assert "config" in adata.uns["guided"] and "total" in adata.uns["guided"]["metrics"]
    calls = model.predict("cell_type")
    assert set(calls.cat.categories) == {"B", "NK", "T"} and calls.index.equals(adata.obs_names)


def test_save_and_load_round_trip(tmp_path):
    adata = _adata()
    model = engine.GuidedModel(adata, phenotypes={"cell_type": {}}, device="cpu", **SMALL)
    model.train(max_epochs=1, progress=False)
    model.save(tmp_path / "m")
    again = engine.GuidedModel.load(tmp_path / "m", adata, device="cpu")
    np.testing.assert_allclose(again.latent("main"), model.latent("main"), atol=1e-6)


def test_exclude_from_input_drops_signature_genes():
    adata = _adata()
    model = engine.GuidedModel(
        adata, signatures={"first": {"genes": ["G1", "G2"], "exclude_from_input": True}}, device="cpu", **SMALL
    )
    assert model.model.input_genes.numel() == 28


def test_knowledge_errors_name_the_problem(tmp_path):
    adata = _adata()
    with pytest.raises(engine.InputError, match=r"column tissue is not in the cell annotations; available columns: cell_type, score"):
        engine.GuidedModel(adata, phenotypes={"tissue": {}}, **SMALL)
    with pytest.raises(engine.InputError, match=r"gene program cycle: none of its 2 genes"):
        engine.GuidedModel(adata, signatures={"cycle": ["MKI67", "TOP2A"]}, **SMALL)
    with pytest.raises(engine.InputError, match=r"phenotypes\.cell_type\.latent_dim"):
        engine.GuidedModel(adata, phenotypes={"cell_type": {"latent_dim": 0}}, **SMALL)
    with pytest.raises(engine.InputError, match="not a saved GuidedModel"):
        engine.GuidedModel.load(tmp_path, adata)
    with pytest.warns(UserWarning, match=r"1 of 2 genes are not in the data"):
        engine.GuidedModel(adata, signatures={"first": ["G1", "NOPE"]}, **SMALL)


def test_write_refuses_other_cells():
    model = engine.GuidedModel(_adata(), **SMALL)
    with pytest.raises(engine.InputError, match="same order"):
        model.write(_adata(n=50))


@pytest.fixture(scope="module")
def pbmc():
    return sc.datasets.pbmc68k_reduced()


def _split(n, seed=0):
    order = np.random.default_rng(seed).permutation(n)
    held_out = np.zeros(n, bool)
    held_out[order[: int(0.3 * n)]] = True
    return held_out


def _knn_accuracy(embedding, truth, held_out):
    knn = KNeighborsClassifier(15).fit(embedding[~held_out], truth[~held_out])
    return knn.score(embedding[held_out], truth[held_out])


def test_cell_type_head_separates_pbmc_populations(pbmc):
    """The issue's bar: head supervised on bulk_labels; kNN fitted on 70%, scored on 30%."""
    adata = pbmc.copy()
    model = engine.GuidedModel(adata, phenotypes={"cell_type": {"column": "bulk_labels"}}, norm="layer", dropout=0.3)
    model.train(max_epochs=30, batch_size=128, progress=False)
    held_out = _split(adata.n_obs)
    accuracy = _knn_accuracy(model.latent("cell_type"), adata.obs["bulk_labels"].to_numpy(), held_out)
    assert accuracy >= 0.85


def test_cell_type_head_generalises_to_unlabelled_cells(pbmc):
    """Stricter: the held-out cells' labels are hidden in training; beat kNN on 50 PCs."""
    adata = pbmc.copy()
    held_out = _split(adata.n_obs)
    labels = adata.obs["bulk_labels"].astype(object)
    labels[held_out] = np.nan
    adata.obs["known"] = pd.Categorical(labels, categories=adata.obs["bulk_labels"].cat.categories)
    model = engine.GuidedModel(adata, phenotypes={"cell_type": {"column": "known"}}, norm="layer", dropout=0.3)
    model.train(max_epochs=30, batch_size=128, progress=False)
    truth = adata.obs["bulk_labels"].to_numpy()
    guided = _knn_accuracy(model.latent("cell_type"), truth, held_out)
    pca = _knn_accuracy(adata.obsm["X_pca"], truth, held_out)
    assert guided > pca


BATCHNORM = dict(SMALL, norm="batch", dropout=0.0)


@pytest.mark.parametrize(("n_cells", "batch_size"), [(257, 256), (700, 699), (700, 233)])
def test_a_one_cell_last_batch_trains(n_cells, batch_size):
    """n % batch_size == 1 left a batch of one cell, on which BatchNorm cannot train."""
    adata = _adata(n=n_cells, genes=12)
    model = engine.GuidedModel(adata, phenotypes={"cell_type": {}}, device="cpu", **BATCHNORM)
    run = model.train(max_epochs=2, batch_size=batch_size, progress=False)
    assert run.state == "finished" and run.steps == 2 * (n_cells // batch_size)
    assert sum(e.data["cells"] for e in run.events.snapshot() if e.kind == "step") == 2 * n_cells


@pytest.mark.parametrize(
    ("n_cells", "options", "expected"),
    [
        (1, {}, "training needs at least 2 cells, but there is only 1 cell to train on; load more cells"),
        (4, {"validation_fraction": 0.75}, "training needs at least 2 cells, but only 1 cell of 4 remains for "
         "training (validation_fraction 0.75 keeps the others for validation); lower validation_fraction or load "
         "more cells"),
        (120, {"validation_fraction": 0.001}, "validation_fraction 0.001 of 120 cells keeps 0 for validation; to "
         "keep one validation cell, raise it to 0.00833 or more, or set it to 0 to train without validation"),
    ],
)
def test_too_few_training_or_validation_cells_are_refused_in_plain_words(n_cells, options, expected):
    """A single training cell (also after the validation split) cannot fill a BatchNorm batch."""
    model = engine.GuidedModel(_adata(n=n_cells, genes=12), device="cpu", **BATCHNORM)
    with pytest.raises(engine.InputError) as caught:
        model.train(max_epochs=1, progress=False, **options)
    assert str(caught.value) == expected


def test_an_empty_phenotype_column_is_refused_naming_it():
    adata = _adata()
    adata.obs["empty_type"] = pd.Categorical([None] * adata.n_obs, categories=["T", "B"])
    adata.obs["empty_score"] = np.nan
    with pytest.raises(engine.InputError) as caught:
        engine.GuidedModel(adata, phenotypes={"kind": {"column": "empty_type"}}, device="cpu", **SMALL)
    assert str(caught.value) == (
        "phenotype kind reads column empty_type, which has no value in any of the 120 cells (all empty), so "
        "there is nothing to learn from it; fill it in, pick another column or switch the phenotype off"
    )
    with pytest.raises(engine.InputError, match="^column empty_score has no value in any of the 120 cells"):
        engine.GuidedModel(adata, phenotypes={"empty_score": {"kind": "continuous"}}, device="cpu", **SMALL)


@pytest.mark.parametrize(("role", "goal"), [("learn", "learn"), ("remove", "remove")])
def test_a_single_class_phenotype_warns_in_plain_words(role, goal):
    adata = _adata()
    adata.obs["batch"] = pd.Categorical(["run1"] * adata.n_obs, categories=["run1", "run2"])
    adata.obs.loc["c3", "batch"] = None
    with pytest.warns(UserWarning) as caught:
        model = engine.GuidedModel(adata, phenotypes={"batch": {"role": role}}, device="cpu", **SMALL)
    assert [str(w.message) for w in caught] == [
        f"column batch holds one class (run1) in every cell that has a value, so there is nothing to {goal} and "
        "phenotype batch will not change the model; switch it off, or use a column with at least two classes"
    ]
    assert model.train(max_epochs=1, progress=False).state == "finished"


def test_an_empty_gene_list_is_named_as_the_cause():
    with pytest.raises(engine.InputError, match="^the gene list is empty"):
        engine.GuidedModel(_adata(), genes=[], device="cpu", **SMALL)


def test_non_finite_values_in_the_layer_the_model_uses_are_named():
    adata = _adata()
    adata.layers["counts"] = adata.X.copy()
    adata.layers["counts"][7, 3] = np.inf
    engine.GuidedModel(adata, device="cpu", **SMALL)
    with pytest.raises(engine.InputError, match="^layer counts: cell c7, feature G3 holds an infinite value"):
        engine.GuidedModel(adata, layer="counts", device="cpu", **SMALL)
