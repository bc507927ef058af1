"""Integration metrics (engine.metrics): scIB names, 0..1 scales, sensible order, plain-word errors."""
import numpy as np
import pandas as pd
import pytest

from engine.data.errors import InputError
from engine.metrics import (
    clisi_knn,
    ilisi_knn,
    integration_metrics,
    knn_label_accuracy,
    lisi_per_cell,
    nearest_neighbors,
    silhouette_batch,
    silhouette_label,
)

N = 600


@pytest.fixture(scope="module")
def cells():
    """Three well separated cell types; batches assigned at random (mixed) or shifted apart (separated)."""
    rng = np.random.default_rng(0)
    labels = np.array(["T cell", "B cell", "NK cell"])[rng.integers(0, 3, N)]
    batch = np.array(["lab A", "lab B"])[rng.integers(0, 2, N)]
    centres = {"T cell": 0.0, "B cell": 30.0, "NK cell": 60.0}
    base = rng.normal(0, 1, (N, 8))
    base[:, 0] += np.array([centres[x] for x in labels])
    mixed = base
    separated = base.copy()
    separated[:, 1] += np.where(batch == "lab B", 40.0, 0.0)
    return {"labels": labels, "batch": batch, "mixed": mixed, "separated": separated}


def test_ilisi_high_for_mixed_batches_and_zero_for_separated(cells):
    mixed = ilisi_knn(cells["mixed"], cells["batch"])
    separated = ilisi_knn(cells["separated"], cells["batch"])
    assert mixed > 0.85
    assert separated < 0.02


def test_ilisi_with_three_batches_scales_to_unit_range():
    rng = np.random.default_rng(1)
    X = rng.normal(0, 1, (N, 5))
    batch = np.array(["a", "b", "c"])[rng.integers(0, 3, N)]
    mixed = ilisi_knn(X, batch)
    assert 0.8 < mixed <= 1
    X_apart = X + np.array([0.0, 50.0, 100.0])[np.searchsorted(["a", "b", "c"], batch)][:, None]
    assert ilisi_knn(X_apart, batch) < 0.02


def test_clisi_near_one_for_separated_labels(cells):
    assert clisi_knn(cells["mixed"], cells["labels"]) > 0.98
    rng = np.random.default_rng(2)
    scrambled = rng.permutation(cells["labels"])
    assert clisi_knn(cells["mixed"], scrambled) < 0.2


def test_lisi_per_cell_counts_effective_categories(cells):
    lisi = lisi_per_cell(cells["separated"], cells["batch"])
    assert lisi.shape == (N,)
    assert np.all(lisi >= 1 - 1e-9) and np.all(lisi <= 2 + 1e-9)
    assert np.median(lisi) == pytest.approx(1.0, abs=0.01)


def test_silhouettes_in_unit_range_and_ordered(cells):
    label_good = silhouette_label(cells["mixed"], cells["labels"])
    label_bad = silhouette_label(cells["mixed"], np.random.default_rng(3).permutation(cells["labels"]))
    assert 0 <= label_bad < label_good <= 1
    assert label_good > 0.8
    assert label_bad == pytest.approx(0.5, abs=0.05)
    batch_mixed = silhouette_batch(cells["mixed"], cells["batch"], cells["labels"])
    batch_separated = silhouette_batch(cells["separated"], cells["batch"], cells["labels"])
    assert 0 <= batch_separated < batch_mixed <= 1
    assert batch_mixed > 0.9
    assert batch_separated < 0.3


def test_silhouette_batch_is_nan_when_batch_and_type_coincide(cells):
    labels = cells["labels"]
    assert np.isnan(silhouette_batch(cells["mixed"], labels, labels))


def test_knn_accuracy_is_one_on_separated_clusters_and_chance_when_scrambled(cells):
    assert knn_label_accuracy(cells["mixed"], cells["labels"]) == 1.0
    scrambled = np.random.default_rng(4).permutation(cells["labels"])
    assert knn_label_accuracy(cells["mixed"], scrambled) < 0.5


def test_knn_accuracy_leaves_the_cell_itself_out():
    # Two tight groups and one odd cell inside the wrong group: counting itself would not save it.
    X = np.vstack([np.zeros((10, 2)) + np.arange(10)[:, None] * 0.01, np.full((10, 2), 5.0)])
    labels = np.array(["a"] * 9 + ["b"] + ["b"] * 10)
    assert knn_label_accuracy(X, labels, k=3) == pytest.approx(19 / 20)


def test_integration_metrics_table(cells):
    table = integration_metrics(cells["mixed"], cells["batch"], cells["labels"])
    assert isinstance(table, pd.DataFrame)
    assert list(table["metric"]) == [
        "ilisi_knn",
        "silhouette_batch",
        "clisi_knn",
        "silhouette_label",
        "knn_label_accuracy",
    ]
    assert set(table["kind"]) == {"batch mixing", "label conservation"}
    assert table["value"].between(0, 1).all()
    values = dict(zip(table["metric"], table["value"]))
    assert values["ilisi_knn"] == pytest.approx(ilisi_knn(cells["mixed"], cells["batch"]))
    assert values["knn_label_accuracy"] == 1.0


def test_integration_metrics_subsamples_large_inputs_reproducibly(cells):
    first = integration_metrics(cells["separated"], cells["batch"], cells["labels"], max_cells=300, seed=5)
    again = integration_metrics(cells["separated"], cells["batch"], cells["labels"], max_cells=300, seed=5)
    pd.testing.assert_frame_equal(first, again)
    values = dict(zip(first["metric"], first["value"]))
    assert values["ilisi_knn"] < 0.05 and values["knn_label_accuracy"] == 1.0


def test_shared_neighbours_give_the_same_scores(cells):
    neighbors = nearest_neighbors(cells["mixed"], k=90)
    assert neighbors.indices.shape == (N, 90)
    assert ilisi_knn(cells["mixed"], cells["batch"], neighbors=neighbors) == pytest.approx(
        ilisi_knn(cells["mixed"], cells["batch"])
    )


def test_lengths_that_differ_are_a_clear_error(cells):
    with pytest.raises(InputError, match="batch column has 599 entries but the latent space has 600 cells"):
        ilisi_knn(cells["mixed"], cells["batch"][:-1])
    with pytest.raises(InputError, match="cell type column has 10 entries"):
        integration_metrics(cells["mixed"], cells["batch"], cells["labels"][:10])


def test_a_single_batch_or_cell_type_is_a_clear_error(cells):
    one_batch = np.full(N, "lab A")
    with pytest.raises(InputError, match=r"All cells have the same batch \('lab A'\)"):
        ilisi_knn(cells["mixed"], one_batch)
    with pytest.raises(InputError, match="same cell type"):
        clisi_knn(cells["mixed"], np.full(N, "T cell"))
    with pytest.raises(InputError, match="same batch"):
        silhouette_batch(cells["mixed"], one_batch, cells["labels"])


def test_missing_labels_and_bad_latents_are_clear_errors(cells):
    labels = cells["labels"].astype(object)
    labels[:3] = None
    with pytest.raises(InputError, match="3 cell\\(s\\) have no cell type"):
        silhouette_label(cells["mixed"], labels)
    X = cells["mixed"].copy()
    X[0, 0] = np.nan
    with pytest.raises(InputError, match="missing or infinite"):
        knn_label_accuracy(X, cells["labels"])
    with pytest.raises(InputError, match="cells x dimensions"):
        knn_label_accuracy(X[:, 0], cells["labels"])


def _lisi_one_cell_at_a_time(distances, indices, codes, perplexity=30.0, tol=1e-5):
    """Harmony's LISI written plainly, one cell at a time: the reference for the vectorised search."""
    out = []
    for row, (d_row, i_row) in enumerate(zip(distances, indices)):
        keep = i_row != row
        d, labels = d_row[keep], codes[i_row[keep]]
        beta, lo, hi = 1.0, -np.inf, np.inf

        def entropy(beta):
            P = np.exp(-d * beta)
            total = P.sum()
            if total == 0:
                return 0.0, np.zeros_like(P)
            return np.log(total) + beta * np.sum(d * P) / total, P / total

        H, P = entropy(beta)
        tries = 0
        while abs(H - np.log(perplexity)) >= tol and tries < 50:
            if H > np.log(perplexity):
                lo, beta = beta, beta * 2 if np.isinf(hi) else (beta + hi) / 2
            else:
                hi, beta = beta, beta / 2 if np.isinf(lo) else (beta + lo) / 2
            H, P = entropy(beta)
            tries += 1
        shares = np.bincount(labels, weights=P, minlength=codes.max() + 1)
        out.append(1 / (-1.0 if H == 0 else np.dot(shares, shares)))
    return np.array(out)


def test_vectorised_lisi_matches_the_cell_by_cell_search():
    rng = np.random.default_rng(7)
    X = rng.normal(0, 1, (150, 4))
    X[:50] += 1.5
    batch = rng.integers(0, 3, 150)
    neighbors = nearest_neighbors(X, k=40)
    expected = _lisi_one_cell_at_a_time(neighbors.distances, neighbors.indices, batch, perplexity=10)
    got = lisi_per_cell(X, batch, 10, neighbors=neighbors)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
