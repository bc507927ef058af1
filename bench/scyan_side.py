"""The scyan half of bench/flow.py: run inside scyan's own virtual environment, never the project's.

    /work/scyan-venv/bin/python bench/scyan_side.py CELLS.h5ad TABLE.csv OUT.json [--seed 0] [--threads 1]
        [--hidden-size 16 --n-hidden-layers 6 --n-layers 7 --prior-std 0.3 --lr 5e-4
         --batch-size 8192 --temperature 0.5 --modulo-temp 3 --max-samples 200000
         --max-epochs 100 --patience 4 --min-delta 1 --log-prob-th -50]

Reads the cells (.h5ad, markers named as the table's columns) and the knowledge table (.csv,
populations x markers, blank = unknown), trains `scyan.Scyan` with its own early stopping
(Lightning's EarlyStopping on the epoch's training loss, absolute min_delta), predicts, and
writes JSON: train/predict seconds (time.perf_counter, training = `model.fit` only), epochs run,
the per-epoch losses, torch threads, the 1-minute load average at the start and end of training,
and the predictions (population names, null = unknown). Only the standard library, numpy, pandas,
anndata, torch and scyan are used, so the script does not import the project.
"""
import argparse
import json
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("h5ad")
    parser.add_argument("table")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    parser.add_argument("--hidden-size", type=int, default=16)
    parser.add_argument("--n-hidden-layers", type=int, default=6)
    parser.add_argument("--n-layers", type=int, default=7)
    parser.add_argument("--prior-std", type=float, default=0.3)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--modulo-temp", type=int, default=3)
    parser.add_argument("--max-samples", type=int, default=200_000)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--min-delta", type=float, default=1.0)
    parser.add_argument("--log-prob-th", type=float, default=-50.0)
    args = parser.parse_args()

    import anndata
    import lightning as L
    import numpy as np
    import pandas as pd
    import torch

    import scyan  # seeds 0 on import (lightning.seed_everything)

    if args.threads:
        torch.set_num_threads(args.threads)
    L.seed_everything(args.seed)
    adata = anndata.read_h5ad(args.h5ad)
    table = pd.read_csv(args.table, index_col=0)

    class EpochLosses(L.Callback):
        def __init__(self):
            self.losses = []

        def on_train_epoch_end(self, trainer, module):
            value = trainer.callback_metrics.get("loss_epoch")
            self.losses.append(None if value is None else float(value))

    losses = EpochLosses()
    model = scyan.Scyan(
        adata,
        table,
        hidden_size=args.hidden_size,
        n_hidden_layers=args.n_hidden_layers,
        n_layers=args.n_layers,
        prior_std=args.prior_std,
        lr=args.lr,
        batch_size=args.batch_size,
        temperature=args.temperature,
        modulo_temp=args.modulo_temp,
        max_samples=args.max_samples,
    )
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    model.fit(
        max_epochs=args.max_epochs,
        accelerator="cpu",
        min_delta=args.min_delta,
        patience=args.patience,
        callbacks=[losses],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    train_seconds = time.perf_counter() - start
    load_after = os.getloadavg()[0]

    start = time.perf_counter()
    predictions = model.predict(key_added=None, log_prob_th=args.log_prob_th)
    predict_seconds = time.perf_counter() - start

    values = predictions.astype(object).where(predictions.notna(), None).tolist()
    result = {
        "tool": "scyan",
        "version": scyan.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cells": int(adata.n_obs),
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
        "epochs": int(model.current_epoch),
        "steps": int(model.trainer.global_step),
        "losses": losses.losses,
        "load_before": load_before,
        "load_after": load_after,
        "unknown": int(np.sum([v is None for v in values])),
        "predictions": values,
    }
    with open(args.out, "w") as handle:
        json.dump(result, handle)
    print(
        f"scyan {result['version']}: {adata.n_obs} cells, {result['epochs']} epochs, "
        f"train {train_seconds:.1f} s, predict {predict_seconds:.1f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
