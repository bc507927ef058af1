"""The defect a saved model had: it kept only genes, layer and name, so a model trained on 10
classes and loaded on cells with 9 failed on a shape, and with the classes in another order its
calls named the wrong classes. The data registry saved beside the weights fixes both."""
import numpy as np
import pytest
import scanpy as sc

import engine


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    adata = sc.datasets.pbmc68k_reduced()
    assert adata.obs["bulk_labels"].cat.categories.size == 10
    model = engine.GuidedModel(adata, phenotypes={"cell_type": {"column": "bulk_labels"}}, device="cpu",
                               norm="layer", dropout=0.0)
    model.train(max_epochs=3, batch_size=128, progress=False)
    folder = tmp_path_factory.mktemp("saved") / "model"
    model.save(folder)
    return adata, model, folder


def test_loaded_on_nine_classes_it_predicts_the_original_names(trained):
    adata, model, folder = trained
    dropped = adata.obs["bulk_labels"].cat.categories[3]
    keep = np.flatnonzero(adata.obs["bulk_labels"].to_numpy() != dropped)
    subset = adata[keep].copy()
    subset.obs["bulk_labels"] = subset.obs["bulk_labels"].cat.remove_unused_categories()
    assert subset.obs["bulk_labels"].cat.categories.size == 9
    loaded = engine.GuidedModel.load(folder, subset, device="cpu")
    expected = model.predict("cell_type").iloc[keep]
    assert list(loaded.predict("cell_type").astype(str)) == list(expected.astype(str))
    assert list(loaded.predict("cell_type").cat.categories) == list(adata.obs["bulk_labels"].cat.categories)


def test_loaded_on_shuffled_category_order_it_predicts_the_original_names(trained):
    adata, model, folder = trained
    shuffled = adata.copy()
    order = list(np.random.default_rng(0).permutation(adata.obs["bulk_labels"].cat.categories))
    shuffled.obs["bulk_labels"] = shuffled.obs["bulk_labels"].cat.reorder_categories(order)
    loaded = engine.GuidedModel.load(folder, shuffled, device="cpu")
    calls = loaded.predict("cell_type")
    assert list(calls.astype(str)) == list(model.predict("cell_type").astype(str))
    # The calls agree with the labels as often as the original model's do: the names are right.
    truth = adata.obs["bulk_labels"].astype(str).to_numpy()
    assert (calls.astype(str).to_numpy() == truth).mean() > 0.5
