"""CellBatches against a per-cell torch DataLoader on a large sparse matrix: speed and peak memory.

The DataLoader baseline is what scvi/Scyan-style code does (read one cell from the AnnData, let
default collate stack them); CellBatches gathers a whole batch at once. Each method runs in a fresh
subprocess so that its peak memory is its own.

    .venv/bin/python bench/batches.py                 # 1,000,000 cells x 2,000 genes, 10% non-zero
    .venv/bin/python bench/batches.py --cells 50000   # a quick try
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.data import CellBatches  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("cellbatches", "dataloader")
N_TYPES = 20
ROWS_PER_CHUNK = 8192


def synthetic_counts(n_cells: int, n_genes: int, density: float, seed: int) -> sp.csr_matrix:
    """A seeded CSR of float32 counts, built chunk by chunk straight into its final arrays.

    The arrays are allocated once with a capacity far above the expected number of non-zeros;
    pages never written stay unallocated, so memory is the matrix plus one chunk.
    """
    rng = np.random.default_rng(seed)
    expected = n_cells * n_genes * density
    capacity = int(expected + 12 * np.sqrt(expected) + n_genes)
    if capacity >= np.iinfo(np.int32).max:
        raise ValueError(f"{capacity} non-zeros do not fit int32 indices; use fewer cells")
    data = np.empty(capacity, dtype=np.float32)
    indices = np.empty(capacity, dtype=np.int32)
    indptr = np.zeros(n_cells + 1, dtype=np.int32)
    filled = 0
    for start in range(0, n_cells, ROWS_PER_CHUNK):
        rows = min(ROWS_PER_CHUNK, n_cells - start)
        hit = rng.random((rows, n_genes), dtype=np.float32) < density
        _, cols = np.nonzero(hit)  # row-major: columns come sorted within each row
        k = cols.shape[0]
        if filled + k > capacity:
            raise RuntimeError("non-zero capacity exceeded; raise the margin in synthetic_counts")
        indices[filled : filled + k] = cols
        data[filled : filled + k] = rng.geometric(0.4, size=k)
        indptr[start + 1 : start + rows + 1] = filled + np.cumsum(hit.sum(axis=1))
        filled += k
    return sp.csr_matrix((data[:filled], indices[:filled], indptr), shape=(n_cells, n_genes))


def synthetic_adata(args) -> ad.AnnData:
    x = synthetic_counts(args.cells, args.genes, args.density, args.seed)
    codes = np.random.default_rng(args.seed + 1).integers(0, N_TYPES, size=args.cells)
    cell_type = pd.Categorical.from_codes(codes, categories=[f"type{i}" for i in range(N_TYPES)])
    obs = pd.DataFrame({"cell_type": cell_type}, index=pd.RangeIndex(args.cells).astype(str))
    var = pd.DataFrame(index=[f"gene{j}" for j in range(args.genes)])
    return ad.AnnData(X=x, obs=obs, var=var)


class OneCellPerItem(Dataset):
    """The baseline: each item densifies one row of adata.X; obs codes are precomputed once."""

    def __init__(self, adata: ad.AnnData, column: str):
        self.adata = adata
        self.codes = adata.obs[column].cat.codes.to_numpy()

    def __len__(self) -> int:
        return self.adata.n_obs

    def __getitem__(self, i: int):
        row = self.adata.X[i].toarray()[0]
        return torch.from_numpy(row), int(self.codes[i])


class PeakRSS:
    """Peak resident memory above the level at `start()`, from the kernel's high-water mark.

    Resetting VmHWM (Linux clear_refs) keeps the data generation's own peak out of the figure;
    without it the fallback is ru_maxrss, which only shows growth beyond that earlier peak.
    """

    def start(self) -> None:
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.source = "VmHWM after clear_refs reset"
            self.base_mb = self._status_mb("VmRSS")
        except OSError:
            self.source = "ru_maxrss delta"
            self.base_mb = self._maxrss_mb()

    def increase_mb(self) -> float:
        if self.source.startswith("VmHWM"):
            return self._status_mb("VmHWM") - self.base_mb
        return self._maxrss_mb() - self.base_mb

    @staticmethod
    def _status_mb(field: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise KeyError(field)

    @staticmethod
    def _maxrss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_method(method: str, args) -> dict:
    """Build the data, then time setup and batches of one method; returns one result row."""
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    adata = synthetic_adata(args)
    generate_s = time.perf_counter() - t0
    peak = PeakRSS()
    peak.start()
    t0 = time.perf_counter()
    if method == "cellbatches":
        cells = CellBatches(adata, categorical=["cell_type"], device="cpu")
        stream = cells.batches(args.batch_size, seed=args.seed)
        planned = args.cb_batches or cells.n_batches(args.batch_size)
    else:
        loader = DataLoader(
            OneCellPerItem(adata, "cell_type"),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=0,
            generator=torch.Generator().manual_seed(args.seed),
        )
        stream = iter(loader)
        planned = args.dl_batches
    setup_s = time.perf_counter() - t0
    n_batches = n_cells = 0
    t0 = time.perf_counter()
    for batch in stream:
        x = batch["x"] if method == "cellbatches" else batch[0]
        n_batches += 1
        n_cells += x.shape[0]
        if n_batches == planned:
            break
    loop_s = time.perf_counter() - t0
    return {
        "method": method,
        "batches": n_batches,
        "cells": n_cells,
        "seconds": loop_s,
        "batches_per_s": n_batches / loop_s,
        "cells_per_s": n_cells / loop_s,
        "setup_s": setup_s,
        "peak_rss_increase_mb": peak.increase_mb(),
        "rss_before_mb": peak.base_mb,
        "peak_source": peak.source,
        "nnz": int(adata.X.nnz),
        "generate_s": generate_s,
        "torch_threads": torch.get_num_threads(),
        "load_average_after": os.getloadavg()[0],
    }


def child_command(method: str, args) -> list[str]:
    command = [sys.executable, __file__, "--method", method]
    for name in ("cells", "genes", "density", "batch_size", "cb_batches", "dl_batches", "seed"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return command + ["--threads", str(args.threads)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--cb-batches", type=int, default=0, help="0: one full epoch")
    parser.add_argument("--dl-batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0: torch's default")
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.method:  # the child: one method, one JSON line on stdout
        print(json.dumps(run_method(args.method, args)))
        return

    rows = []
    for method in METHODS:
        print(f"running {method} in a fresh process ...", file=sys.stderr, flush=True)
        done = subprocess.run(child_command(method, args), capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{method} failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    fast, slow = rows
    ratio = fast["cells_per_s"] / slow["cells_per_s"]

    print(
        f"\n{args.cells:,} cells x {args.genes:,} genes, {fast['nnz']:,} non-zeros (CSR float32), "
        f"batch size {args.batch_size}, torch {torch.__version__} "
        f"({fast['torch_threads']} threads, {os.cpu_count()} CPU cores), "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    header = ("method", "batches", "batches/s", "cells/s", "setup s", "peak +MB")
    print("{:<12} {:>8} {:>10} {:>12} {:>8} {:>9}".format(*header))
    for r in rows:
        print(
            f"{r['method']:<12} {r['batches']:>8} {r['batches_per_s']:>10.1f} "
            f"{r['cells_per_s']:>12,.0f} {r['setup_s']:>8.2f} {r['peak_rss_increase_mb']:>9.0f}"
        )
    print(f"\nCellBatches / DataLoader cells per second: {ratio:.1f}x")
    print(f"peak memory: {fast['peak_source']}, above the process after building the AnnData")

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"batches_{args.cells}cells_threads{args.threads or 'default'}.json"
    setup = {k: v for k, v in vars(args).items() if k != "method"}
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__}
    report = {"setup": setup, "machine": machine, "results": rows, "ratio": ratio}
    out.write_text(json.dumps(report, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
