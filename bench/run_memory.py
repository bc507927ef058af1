"""Does the studio's memory stay flat over repeated runs? Resident memory after 2 and after 20 runs.

Each run is what a studio user does on the demo: build the knowledge-guided model (one cell-type
head) on the built-in cells and train it for a few epochs through the process-wide run registry.
Finished runs stay listed (as in the page) and keep their weights, events and results; what only
training needed is released when each run ends.

    .venv/bin/python bench/run_memory.py [--runs 20] [--epochs 3]
"""
import argparse
import gc
import os
import time

import engine
from app.demo import load_demo
from app.runs import REGISTRY
from results_file import save

PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_mb() -> float:
    """Resident memory of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 1e6


def one_run(adata, epochs: int) -> None:
    model = engine.GuidedModel(adata, phenotypes={"bulk_labels": {"latent_dim": 8}}, main_latent_dim=16, device="cpu")
    run = REGISTRY.submit("bench", "guided", model, model.trainer(max_epochs=epochs, progress=False),
                          adata=adata, dataset="demo")
    while not run.done:
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    adata = load_demo()
    after = {}
    for n in range(1, args.runs + 1):
        one_run(adata, args.epochs)
        gc.collect()
        if n in (2, args.runs):
            after[n] = resident_mb()
            print(f"after {n:>3} runs: {after[n]:,.1f} MB resident")
    growth = after[args.runs] / after[2] - 1
    print(f"growth from 2 to {args.runs} runs: {growth:+.1%} (target within 10%)")
    save("run_memory", {"runs": args.runs, "epochs": args.epochs, "resident_mb": after, "growth": growth})


if __name__ == "__main__":
    main()
