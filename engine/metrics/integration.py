"""Integration metrics for a latent space, named and scaled as scIB / scib-metrics name and scale them.

Each takes a latent `X` (cells x dimensions) and per-cell labels: a batch (or "system") and/or a
cell type. Two kinds of score, all in 0..1 with 1 best:

- batch mixing: `ilisi_knn`, `silhouette_batch` (high = cells of different batches are mixed);
- label conservation: `clisi_knn`, `silhouette_label`, `knn_label_accuracy` (high = cell types
  stay separate).

Only numpy, pandas, scipy and scikit-learn are used. The LISI scores follow Korsunsky et al.
(Harmony) as scib-metrics computes them: a Gaussian kernel over each cell's k nearest neighbours
(k = 90 by default, self excluded), its bandwidth found per cell by binary search so that the
kernel's perplexity is 30, then the inverse Simpson index of the labels among the weighted
neighbours. The search runs for all cells at once (numpy), not cell by cell.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.data.errors import InputError

LISI_NEIGHBORS = 90
PERPLEXITY = 30.0
MAX_CELLS = 50_000


@dataclass(frozen=True)
class Neighbors:
    """Each cell's k nearest cells (itself included, as scib-metrics' neighbour lists are).

    `indices` and `distances` are (cells x k), Euclidean distances, nearest first.
    """

    indices: np.ndarray
    distances: np.ndarray

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])


# ---------------------------------------------------------------------------------------------
# Input checks


def _latent(X) -> np.ndarray:
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InputError(f"The latent space must be a table of numbers (cells x dimensions): {error}") from None
    if array.ndim != 2:
        raise InputError(
            f"The latent space must be a table of cells x dimensions; got an array with {array.ndim} dimension(s)."
        )
    if array.shape[0] < 3:
        raise InputError(f"The latent space has {array.shape[0]} cell(s); at least 3 are needed to score it.")
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.all(np.isfinite(array), axis=1)))
        raise InputError(
            f"The latent space has {bad} cell(s) with missing or infinite coordinates; "
            "remove them (or retrain the model) before scoring."
        )
    return array


def _codes(values, n_cells: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Category codes (0..n-1) and the category names; an InputError names `what` when unusable."""
    if not isinstance(values, pd.Categorical):
        values = np.asarray(values, dtype=object).ravel()
    categorical = pd.Categorical(values)
    if len(categorical) != n_cells:
        raise InputError(
            f"The {what} column has {len(categorical)} entries but the latent space has {n_cells} cells; "
            f"give one {what} per cell, in the same order as the cells."
        )
    codes = np.asarray(categorical.codes, dtype=np.int64)
    if np.any(codes < 0):
        raise InputError(
            f"{int(np.sum(codes < 0))} cell(s) have no {what}; fill in or remove those cells before scoring."
        )
    used = np.unique(codes)
    if len(used) < 2:
        name = categorical.categories[used[0]] if len(used) else "none"
        raise InputError(
            f"All cells have the same {what} ('{name}'); this score compares cells across {what}s, "
            f"so it needs at least two different {what}s."
        )
    # Renumber so that unused categories do not count.
    remap = np.full(len(categorical.categories), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return remap[codes], np.asarray(categorical.categories[used], dtype=object)


def _subsample(n_cells: int, max_cells: int | None, seed: int) -> np.ndarray | None:
    if max_cells is None or n_cells <= max_cells:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_cells, size=max_cells, replace=False))


# ---------------------------------------------------------------------------------------------
# Neighbours


def nearest_neighbors(X, k: int = LISI_NEIGHBORS) -> Neighbors:
    """Exact k nearest neighbours (Euclidean, scikit-learn), each cell's own row included.

    k is capped at the number of cells. Shared by the LISI scores and the kNN accuracy, so one
    search serves all of them.
    """
    from sklearn.neighbors import NearestNeighbors

    array = _latent(X)
    k = int(min(k, array.shape[0]))
    if k < 2:
        raise InputError("At least 2 neighbours per cell are needed to score a latent space.")
    search = NearestNeighbors(n_neighbors=k).fit(array)
    distances, indices = search.kneighbors(array)
    return Neighbors(indices=indices.astype(np.int64), distances=distances.astype(np.float64))


def _neighbors_for(X, neighbors: Neighbors | None, k: int) -> tuple[np.ndarray, Neighbors]:
    array = _latent(X)
    if neighbors is None:
        neighbors = nearest_neighbors(array, k=k)
    elif neighbors.indices.shape[0] != array.shape[0]:
        raise InputError(
            f"The neighbour lists cover {neighbors.indices.shape[0]} cells but the latent space has "
            f"{array.shape[0]}; compute them from the same cells."
        )
    return array, neighbors


# ---------------------------------------------------------------------------------------------
# LISI


def _kernel(distances: np.ndarray, keep: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entropy H and normalised weights P of exp(-d * beta) per row, masked entries weight 0."""
    P = np.exp(-distances * beta[:, None]) * keep
    total = P.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    with np.errstate(divide="ignore"):
        H = np.where(total > 0, np.log(safe) + beta * np.sum(distances * P, axis=1) / safe, 0.0)
    P = P / safe[:, None]
    return H, P


def _neighbor_probabilities(
    distances: np.ndarray, keep: np.ndarray, perplexity: float, tol: float = 1e-5, max_tries: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell bandwidth by binary search on the kernel's entropy, all cells at once.

    The same search as Harmony's LISI and scib-metrics: beta starts at 1, doubles or halves
    until bracketed, then bisects, at most 50 steps, stopping once |H - log(perplexity)| < tol.
    """
    n_cells = distances.shape[0]
    target = np.log(perplexity)
    beta = np.ones(n_cells)
    beta_min = np.full(n_cells, -np.inf)
    beta_max = np.full(n_cells, np.inf)
    H, P = _kernel(distances, keep, beta)
    diff = H - target
    for _ in range(max_tries):
        active = np.abs(diff) >= tol
        if not active.any():
            break
        rows = np.flatnonzero(active)
        b, lo, hi, d = beta[rows], beta_min[rows], beta_max[rows], diff[rows]
        up = d > 0
        new_lo = np.where(up, b, lo)
        new_hi = np.where(up, hi, b)
        with np.errstate(invalid="ignore"):
            new_b = np.where(
                up,
                np.where(np.isinf(hi), b * 2, (b + hi) / 2),
                np.where(np.isinf(lo), b / 2, (b + lo) / 2),
            )
        beta_min[rows], beta_max[rows], beta[rows] = new_lo, new_hi, new_b
        H_rows, P_rows = _kernel(distances[rows], keep[rows], new_b)
        H[rows], P[rows] = H_rows, P_rows
        diff[rows] = H_rows - target
    return H, P


def lisi_per_cell(
    X,
    values,
    perplexity: float = PERPLEXITY,
    *,
    neighbors: Neighbors | None = None,
    k: int = LISI_NEIGHBORS,
    what: str = "label",
) -> np.ndarray:
    """Unscaled LISI of every cell: the effective number of `values` categories among its neighbours.

    1 means a cell's neighbourhood holds one category only; the number of categories means all
    are equally represented. A cell whose kernel collapses onto a single neighbour (entropy 0,
    which needs fewer neighbours than the perplexity) gets -1, as in Harmony's LISI and
    scib-metrics, and so counts against the median.
    """
    array, neighbors = _neighbors_for(X, neighbors, k)
    codes, names = _codes(values, array.shape[0], what)
    n_cells = array.shape[0]
    indices, distances = neighbors.indices, neighbors.distances
    keep = (indices != np.arange(n_cells)[:, None]).astype(np.float64)
    H, P = _neighbor_probabilities(distances, keep, perplexity)
    n_labels = len(names)
    neighbour_codes = codes[indices]
    bins = (np.arange(n_cells)[:, None] * n_labels + neighbour_codes).ravel()
    shares = np.bincount(bins, weights=P.ravel(), minlength=n_cells * n_labels).reshape(n_cells, n_labels)
    simpson = np.where(H == 0, -1.0, np.sum(shares * shares, axis=1))
    with np.errstate(divide="ignore"):
        return 1.0 / simpson


def ilisi_knn(
    X,
    batch,
    perplexity: float = PERPLEXITY,
    *,
    neighbors: Neighbors | None = None,
    k: int = LISI_NEIGHBORS,
    max_cells: int | None = MAX_CELLS,
    seed: int = 0,
) -> float:
    """Integration LISI, batch mixing: high (near 1) = every cell's neighbourhood holds all batches evenly.

    Median over cells of the batch LISI, scaled as scib-metrics does: (median - 1) / (batches - 1),
    so 0 = each neighbourhood holds one batch only. Above `max_cells` cells a seeded random
    sample of that many cells is scored (pass `max_cells=None` to score all).
    """
    median, n_batches = _median_lisi(X, batch, "batch", perplexity, neighbors, k, max_cells, seed)
    return float((median - 1) / (n_batches - 1))


def clisi_knn(
    X,
    labels,
    perplexity: float = PERPLEXITY,
    *,
    neighbors: Neighbors | None = None,
    k: int = LISI_NEIGHBORS,
    max_cells: int | None = MAX_CELLS,
    seed: int = 0,
) -> float:
    """Cell-type LISI, label conservation: high (near 1) = every cell's neighbours share its cell type.

    Median over cells of the label LISI, scaled as scib-metrics does: (labels - median) / (labels - 1),
    so 0 = neighbourhoods mix all cell types evenly. Above `max_cells` cells a seeded random
    sample of that many cells is scored (pass `max_cells=None` to score all).
    """
    median, n_labels = _median_lisi(X, labels, "cell type", perplexity, neighbors, k, max_cells, seed)
    return float((n_labels - median) / (n_labels - 1))


def _median_lisi(X, values, what: str, perplexity, neighbors, k, max_cells, seed) -> tuple[float, int]:
    """The median LISI of `values` over the (sampled) cells, and how many kinds of value there are."""
    array = _latent(X)
    codes, _ = _codes(values, array.shape[0], what)
    array, codes, neighbors = _maybe_sample(array, codes, neighbors, max_cells, seed)
    lisi = lisi_per_cell(array, codes, perplexity, neighbors=neighbors, k=k, what=what)
    return float(np.nanmedian(lisi)), len(np.unique(codes))


def _maybe_sample(array, codes, neighbors, max_cells, seed):
    rows = _subsample(array.shape[0], max_cells, seed)
    if rows is None:
        return array, codes, neighbors
    # Neighbour lists of the full data do not apply to a sample; they are recomputed on it.
    return array[rows], codes[rows], None


# ---------------------------------------------------------------------------------------------
# Silhouettes


def silhouette_label(X, labels, *, max_cells: int | None = MAX_CELLS, seed: int = 0) -> float:
    """Cell-type silhouette, label conservation: high (near 1) = cell types form compact, separate groups.

    The mean silhouette width over cells with cell types as clusters, rescaled (ASW + 1) / 2 as
    scib-metrics does, so 0.5 = no structure. Above `max_cells` cells a seeded random sample of
    that many cells is scored (silhouettes cost cells squared).
    """
    from sklearn.metrics import silhouette_samples

    array = _latent(X)
    codes, _ = _codes(labels, array.shape[0], "cell type")
    rows = _subsample(array.shape[0], max_cells, seed)
    if rows is not None:
        array, codes = array[rows], codes[rows]
    if len(np.unique(codes)) < 2:
        raise InputError("The sampled cells hold a single cell type; score more cells (raise max_cells).")
    width = silhouette_samples(array, codes).mean()
    return float((width + 1) / 2)


def silhouette_batch(X, batch, labels, *, max_cells: int | None = MAX_CELLS, seed: int = 0) -> float:
    """Batch silhouette, batch mixing: high (near 1) = within each cell type, batches overlap.

    As scIB: for each cell type, the silhouette of its cells with batches as clusters, taken as
    1 - |silhouette| per cell and averaged over the type's cells; then averaged over cell types.
    Cell types found in one batch only (or with one cell per batch throughout) are skipped; if
    every type is skipped the score is NaN (batch and cell type fully confounded). Above
    `max_cells` cells a seeded random sample of that many cells is scored.
    """
    from sklearn.metrics import silhouette_samples

    array = _latent(X)
    batch_codes, _ = _codes(batch, array.shape[0], "batch")
    label_codes, _ = _codes(labels, array.shape[0], "cell type")
    rows = _subsample(array.shape[0], max_cells, seed)
    if rows is not None:
        array, batch_codes, label_codes = array[rows], batch_codes[rows], label_codes[rows]
    per_type = []
    for label in np.unique(label_codes):
        mask = label_codes == label
        batches_here = batch_codes[mask]
        n_batches = len(np.unique(batches_here))
        if n_batches == 1 or n_batches == int(mask.sum()):
            continue
        widths = silhouette_samples(array[mask], batches_here)
        per_type.append(np.mean(1 - np.abs(widths)))
    if not per_type:
        return float("nan")
    return float(np.mean(per_type))


# ---------------------------------------------------------------------------------------------
# kNN accuracy


def knn_label_accuracy(
    X,
    labels,
    k: int = 15,
    *,
    neighbors: Neighbors | None = None,
    max_cells: int | None = MAX_CELLS,
    seed: int = 0,
) -> float:
    """kNN cell-type accuracy, label conservation: high (1) = each cell's type is the majority of its k neighbours.

    Leave-one-out: each cell's type is predicted by a majority vote of its k nearest other cells
    (ties go to the type whose voters are nearer); the score is the share predicted correctly.
    Given `neighbors` (cell itself included, at least k + 1 per cell), their first k others vote.
    Above `max_cells` cells a seeded random sample of that many cells is scored.
    """
    array = _latent(X)
    codes, names = _codes(labels, array.shape[0], "cell type")
    rows = _subsample(array.shape[0], max_cells, seed)
    if rows is not None:
        array, codes, neighbors = array[rows], codes[rows], None
    n_cells = array.shape[0]
    k = int(min(k, n_cells - 1))
    if neighbors is None or neighbors.k < k + 1:
        neighbors = nearest_neighbors(array, k=k + 1)
    elif neighbors.indices.shape[0] != n_cells:
        raise InputError(
            f"The neighbour lists cover {neighbors.indices.shape[0]} cells but the latent space has {n_cells}."
        )
    indices = neighbors.indices
    others = indices != np.arange(n_cells)[:, None]
    # First k entries that are not the cell itself (self may sit anywhere among exact duplicates).
    rank = np.cumsum(others, axis=1)
    voting = others & (rank <= k)
    n_labels = len(names)
    # One vote each, plus a tiny nearer-first bonus that only breaks ties.
    weight = voting * (1.0 + 1e-6 * (indices.shape[1] - np.arange(indices.shape[1]))[None, :])
    bins = (np.arange(n_cells)[:, None] * n_labels + codes[indices]).ravel()
    votes = np.bincount(bins, weights=weight.ravel(), minlength=n_cells * n_labels).reshape(n_cells, n_labels)
    return float(np.mean(votes.argmax(axis=1) == codes))


# ---------------------------------------------------------------------------------------------
# All at once

_MEANINGS = {
    "ilisi_knn": ("batch mixing", "near 1: each cell's neighbours come evenly from all batches"),
    "silhouette_batch": ("batch mixing", "near 1: within each cell type, batches overlap"),
    "clisi_knn": ("label conservation", "near 1: each cell's neighbours share its cell type"),
    "silhouette_label": ("label conservation", "near 1: cell types form compact, separate groups"),
    "knn_label_accuracy": ("label conservation", "1: a cell's type is the majority among its 15 neighbours"),
}


def integration_metrics(
    X,
    batch,
    labels,
    *,
    k: int = LISI_NEIGHBORS,
    perplexity: float = PERPLEXITY,
    knn_k: int = 15,
    max_cells: int | None = MAX_CELLS,
    seed: int = 0,
) -> pd.DataFrame:
    """All five scores, one row per metric: columns metric, value, kind, meaning.

    `kind` says whether a high value means batches mix ("batch mixing") or cell types stay apart
    ("label conservation"). Above `max_cells` cells (default 50,000) every score uses the same
    seeded random sample of that many cells; one neighbour search on it serves the LISI scores
    and the kNN accuracy.
    """
    array = _latent(X)
    batch_codes, _ = _codes(batch, array.shape[0], "batch")
    label_codes, _ = _codes(labels, array.shape[0], "cell type")
    rows = _subsample(array.shape[0], max_cells, seed)
    if rows is not None:
        array, batch_codes, label_codes = array[rows], batch_codes[rows], label_codes[rows]
    neighbors = nearest_neighbors(array, k=max(k, knn_k + 1))
    lisi_neighbors = Neighbors(indices=neighbors.indices[:, :k], distances=neighbors.distances[:, :k])
    values = {
        "ilisi_knn": ilisi_knn(array, batch_codes, perplexity, neighbors=lisi_neighbors, max_cells=None),
        "silhouette_batch": silhouette_batch(array, batch_codes, label_codes, max_cells=None),
        "clisi_knn": clisi_knn(array, label_codes, perplexity, neighbors=lisi_neighbors, max_cells=None),
        "silhouette_label": silhouette_label(array, label_codes, max_cells=None),
        "knn_label_accuracy": knn_label_accuracy(array, label_codes, knn_k, neighbors=neighbors, max_cells=None),
    }
    return pd.DataFrame(
        [
            {"metric": name, "value": value, "kind": _MEANINGS[name][0], "meaning": _MEANINGS[name][1]}
            for name, value in values.items()
        ]
    )
