"""Check engine.metrics against scib-metrics on seeded synthetic latents: run in the scvi venv.

    /work/scvi-venv/bin/python bench/metrics_check.py [--cells 3000] [--seed 0]

For each latent (batches mixed, batches apart, partly mixed with 4 batches of unequal size, cell
types overlapping) it prints ours and scib-metrics' value of each metric side by side and the
largest absolute difference, also over the unscaled per-cell batch LISI. The LISI scores are
compared twice: scib-metrics given our exact scikit-learn neighbour lists (same input, so only
the arithmetic can differ: float64 here, float32 in its JAX code) and given its own pynndescent
lists, as its Benchmarker computes them (approximate neighbours). scib-metrics has no kNN label
accuracy; ours is printed alone.

The scvi venv lacks the project's UI packages, so the project's `engine` and `engine.data`
package files are not run: bare package stand-ins let `engine.metrics` (numpy, pandas, scipy,
scikit-learn only) and `engine.data.errors` import by themselves.
"""
import argparse
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_engine_metrics():
    for name, folder in (("engine", ROOT / "engine"), ("engine.data", ROOT / "engine" / "data")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            sys.modules[name] = package
    import engine.metrics as metrics

    return metrics


def latents(n_cells: int, seed: int):
    """Named (X, batch, labels) triples, all seeded."""
    rng = np.random.default_rng(seed)
    d = 10
    out = {}

    labels = rng.integers(0, 3, n_cells)
    batch = rng.integers(0, 2, n_cells)
    centres = rng.normal(0, 6, (3, d))
    X = centres[labels] + rng.normal(0, 1, (n_cells, d))
    out["mixed (3 types, 2 batches)"] = (X, batch, labels)

    apart = X.copy()
    apart[:, 0] += 15.0 * batch
    out["apart (batch shift 15 sd)"] = (apart, batch, labels)

    labels = rng.integers(0, 5, n_cells)
    batch = rng.choice(4, size=n_cells, p=[0.4, 0.3, 0.2, 0.1])
    centres = rng.normal(0, 5, (5, d))
    shifts = rng.normal(0, 0.3, (4, d))
    X = centres[labels] + shifts[batch] + rng.normal(0, 1, (n_cells, d))
    out["partial (5 types, 4 unequal batches)"] = (X, batch, labels)

    labels = rng.integers(0, 4, n_cells)
    batch = rng.integers(0, 3, n_cells)
    centres = rng.normal(0, 1.0, (4, d))
    X = centres[labels] + rng.normal(0, 1, (n_cells, d)) + 0.7 * rng.normal(0, 1, (3, d))[batch]
    out["overlapping (4 types close, 3 batches)"] = (X, batch, labels)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import scib_metrics
    from scib_metrics.nearest_neighbors import NeighborsResults, pynndescent

    metrics = _import_engine_metrics()
    print(f"scib-metrics {scib_metrics.__version__}; {args.cells} cells per latent; seed {args.seed}")
    worst = 0.0
    worst_pynn = 0.0
    worst_cell = 0.0
    for name, (X, batch, labels) in latents(args.cells, args.seed).items():
        ours = metrics.integration_metrics(X, batch, labels)
        ours = dict(zip(ours["metric"], ours["value"]))
        exact = metrics.nearest_neighbors(X, k=90)
        same = NeighborsResults(indices=exact.indices, distances=exact.distances)
        approx = pynndescent(X, n_neighbors=90, random_state=0)
        theirs = {
            "ilisi_knn": float(scib_metrics.ilisi_knn(same, batch)),
            "silhouette_batch": float(scib_metrics.silhouette_batch(X, labels, batch)),
            "clisi_knn": float(scib_metrics.clisi_knn(same, labels)),
            "silhouette_label": float(scib_metrics.silhouette_label(X, labels)),
            "knn_label_accuracy": None,
        }
        pynn = {
            "ilisi_knn": float(scib_metrics.ilisi_knn(approx, batch)),
            "clisi_knn": float(scib_metrics.clisi_knn(approx, labels)),
        }
        lisi_ours = metrics.lisi_per_cell(X, batch, neighbors=exact)
        lisi_theirs = np.asarray(scib_metrics.lisi_knn(same, batch))
        per_cell = float(np.max(np.abs(lisi_ours - lisi_theirs)))
        worst_cell = max(worst_cell, per_cell)
        print(f"\n{name}: per-cell batch LISI max |diff| {per_cell:.2e}")
        print(f"  {'metric':<20}{'ours':>10}{'scib':>10}{'|diff|':>11}{'scib+pynn':>11}{'|diff|':>11}")
        for metric, value in ours.items():
            other = theirs[metric]
            if other is None:
                print(f"  {metric:<20}{value:>10.5f}{'-':>10}{'-':>11}")
                continue
            diff = abs(value - other)
            worst = max(worst, diff)
            line = f"  {metric:<20}{value:>10.5f}{other:>10.5f}{diff:>11.2e}"
            if metric in pynn:
                diff_pynn = abs(value - pynn[metric])
                worst_pynn = max(worst_pynn, diff_pynn)
                line += f"{pynn[metric]:>11.5f}{diff_pynn:>11.2e}"
            print(line)
    print(f"\nmax |ours - scib-metrics| (same neighbours for LISI): {worst:.2e}")
    print(f"max |ours - scib-metrics| per-cell batch LISI (same neighbours): {worst_cell:.2e}")
    print(f"max |ours - scib-metrics with its pynndescent neighbours| (LISI only): {worst_pynn:.2e}")


if __name__ == "__main__":
    import numpy as np

    main()
