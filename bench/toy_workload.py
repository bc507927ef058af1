"""The workload the training benchmarks share: cells on the CPU and a controller to train on them.

For now the toy controller of the tests (an MLP that reconstructs x and regresses an obs value);
swap in a real model family's controller here and every benchmark that imports this follows.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from toy_controller import ToyController, toy_cells  # noqa: E402


def make_cells(n_cells: int = 20_000, n_genes: int = 200):
    return toy_cells(n_cells=n_cells, n_genes=n_genes)


def make_controller(cells, hidden: int = 128):
    return ToyController(cells.n_genes, hidden=hidden, lr=1e-3)
