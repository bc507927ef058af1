"""Training speed of the knowledge-guided autoencoder on the CPU: cells per second.

100,000 generated cells x 2,000 genes (dense, log1p counts), a main latent, a cell-type head and a
signature head, trained through the shared Trainer for a few epochs; the first epoch is a warm-up
and is not counted.

    .venv/bin/python bench/extractor.py [--cells 100000] [--genes 2000] [--epochs 3] [--threads 2]
"""
import argparse
import time

import torch
from results_file import save
from workload import make_adata, make_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adata = make_adata(args.cells, args.genes)
    model = make_model(adata)
    model.train(max_epochs=1, batch_size=args.batch_size, progress=False)  # warm-up
    start = time.perf_counter()
    run = model.train(max_epochs=args.epochs, batch_size=args.batch_size, progress=False)
    seconds = time.perf_counter() - start
    cells_per_s = args.cells * args.epochs / seconds
    result = {
        "cells": args.cells, "genes": args.genes, "epochs": args.epochs, "batch_size": args.batch_size,
        "threads": args.threads, "seconds": round(seconds, 2), "cells_per_s": round(cells_per_s),
        "final_total": float(run.history()["total"].iloc[-1]),
    }
    save("extractor", result)


if __name__ == "__main__":
    main()
