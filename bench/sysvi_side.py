"""The scvi-tools half of the SysVI benchmark: run inside scvi-tools' own virtual environment, never the project's.

    /work/scvi-venv/bin/python bench/sysvi_side.py CELLS.h5ad OUT.json --system-key system
        [--batch-keys b ...] [--epochs 5] [--batch-size 128] [--n-latent 15] [--n-hidden 256]
        [--n-layers 2] [--cycle-weight 2] [--prior vamp] [--n-prior-components 5]
        [--train-size 1.0] [--threads 1] [--seed 0] [--accelerator auto] [--precision 32-true] [--make-demo]

Reads the cells (.h5ad; X must hold log-normalised expression, as SysVI expects), registers them
with `scvi.external.SysVI.setup_anndata(batch_key=SYSTEM, categorical_covariate_keys=BATCH KEYS)`,
builds `SysVI(adata, prior=..., n_prior_components=...)` (n_latent, n_hidden, n_layers passed on
to the module) and trains it with `train(max_epochs, batch_size,
plan_kwargs={"z_distance_cycle_weight": ...}, train_size=1.0, check_val_every_n_epoch=None)`:
by default every cell trains and no validation runs (`--train-size 0.9` gives scvi-tools' own
90/10 split, validation still off). Only `train()` is timed (time.perf_counter). Writes JSON:
seconds, epochs, steps, training cells per epoch, training cells per second (epochs x training
cells / seconds), torch threads, the 1-minute load average before and after training, versions
and settings; and the latent (`get_latent_representation()`, posterior means, cells x n_latent,
float32) as OUT.npy beside the JSON (same name, .npy).

`--make-demo` first writes a small synthetic CELLS.h5ad (2,000 cells x 500 genes, 2 systems with
2 batches each, 4 cell types; log1p of size-normalised negative-binomial counts; obs columns
system, batch, cell_type), so the script can be tried without data.

Only the standard library, numpy, pandas, anndata, torch and scvi-tools are used, so the script
does not import the project.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path


def make_demo(path: str, n_cells: int = 2000, n_genes: int = 500, seed: int = 0) -> None:
    """Two systems (a strong per-gene shift) x two batches each, four cell types; log1p normalised."""
    import anndata
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cell_type = rng.integers(0, 4, n_cells)
    system = rng.integers(0, 2, n_cells)
    batch = system * 2 + rng.integers(0, 2, n_cells)
    base = rng.gamma(0.6, 1.0, n_genes)
    type_effect = np.exp(rng.normal(0, 1.0, (4, n_genes)) * (rng.random((4, n_genes)) < 0.15))
    system_effect = np.exp(rng.normal(0, 0.8, (2, n_genes)))
    batch_effect = np.exp(rng.normal(0, 0.2, (4, n_genes)))
    library = rng.lognormal(np.log(2000), 0.3, n_cells)
    mean = base * type_effect[cell_type] * system_effect[system] * batch_effect[batch]
    mean = mean / mean.sum(axis=1, keepdims=True) * library[:, None]
    dispersion = 5.0
    counts = rng.negative_binomial(dispersion, dispersion / (dispersion + mean)).astype(np.float32)
    totals = counts.sum(axis=1, keepdims=True)
    X = np.log1p(counts / np.maximum(totals, 1) * 1e4).astype(np.float32)
    obs = pd.DataFrame(
        {
            "system": pd.Categorical(np.array(["mouse", "human"])[system]),
            "batch": pd.Categorical([f"batch{b}" for b in batch]),
            "cell_type": pd.Categorical([f"type{t}" for t in cell_type]),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)])
    adata = anndata.AnnData(X=X, obs=obs, var=var)
    adata.layers["counts"] = counts
    adata.write_h5ad(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("h5ad")
    parser.add_argument("out")
    parser.add_argument("--system-key", required=True, help="obs column of the systems SysVI integrates across")
    parser.add_argument("--batch-keys", nargs="*", default=[], help="obs columns of other categorical covariates")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-latent", type=int, default=15)
    parser.add_argument("--n-hidden", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--cycle-weight", type=float, default=2.0)
    parser.add_argument("--prior", choices=["vamp", "standard_normal"], default="vamp")
    parser.add_argument("--n-prior-components", type=int, default=5)
    parser.add_argument("--train-size", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 = torch's default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    parser.add_argument("--precision", default="32-true", help="Lightning precision: 32-true, or bf16-mixed (autocast)")
    parser.add_argument("--make-demo", action="store_true", help="write a small synthetic CELLS.h5ad first")
    args = parser.parse_args()

    if args.make_demo:
        make_demo(args.h5ad, seed=args.seed)

    import anndata
    import numpy as np
    import torch

    import scvi
    from scvi.external import SysVI

    if args.threads:
        torch.set_num_threads(args.threads)
    scvi.settings.seed = args.seed  # seeds python, numpy and torch (also the VampPrior's pseudoinput cells)

    adata = anndata.read_h5ad(args.h5ad)
    for key in [args.system_key, *args.batch_keys]:
        if key not in adata.obs:
            sys.exit(f"{args.h5ad} has no obs column '{key}' (columns: {', '.join(map(str, adata.obs.columns))})")
    SysVI.setup_anndata(
        adata,
        batch_key=args.system_key,
        categorical_covariate_keys=args.batch_keys or None,
    )
    model = SysVI(
        adata,
        prior=args.prior,
        n_prior_components=args.n_prior_components,
        n_latent=args.n_latent,
        n_hidden=args.n_hidden,
        n_layers=args.n_layers,
    )
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    model.train(
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        plan_kwargs={"z_distance_cycle_weight": args.cycle_weight},
        train_size=args.train_size,
        check_val_every_n_epoch=None,
        accelerator=args.accelerator,
        precision=args.precision,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    seconds = time.perf_counter() - start
    load_after = os.getloadavg()[0]

    epochs = int(model.trainer.current_epoch)
    train_cells = int(len(model.train_indices))
    latent = np.asarray(model.get_latent_representation(), dtype=np.float32)
    out = Path(args.out)
    np.save(out.with_suffix(".npy"), latent)
    result = {
        "tool": "scvi-tools SysVI",
        "version": scvi.__version__,
        "torch": torch.__version__,
        "device": str(next(model.module.parameters()).device),
        "threads": torch.get_num_threads(),
        "seed": args.seed,
        "cells": int(adata.n_obs),
        "genes": int(adata.n_vars),
        "systems": int(adata.obs[args.system_key].nunique()),
        "system_key": args.system_key,
        "batch_keys": args.batch_keys,
        "settings": {
            "batch_size": args.batch_size,
            "n_latent": args.n_latent,
            "n_hidden": args.n_hidden,
            "n_layers": args.n_layers,
            "cycle_weight": args.cycle_weight,
            "prior": args.prior,
            "n_prior_components": args.n_prior_components,
            "train_size": args.train_size,
            "validation": False,
            "precision": args.precision,
        },
        "seconds": seconds,
        "epochs": epochs,
        "steps": int(model.trainer.global_step),
        "train_cells_per_epoch": train_cells,
        "cells_per_second": epochs * train_cells / seconds if seconds > 0 else None,
        "load_before": load_before,
        "load_after": load_after,
        "latent": out.with_suffix(".npy").name,
        "latent_shape": list(latent.shape),
    }
    with open(out, "w") as handle:
        json.dump(result, handle, indent=1)
    print(
        f"SysVI (scvi-tools {result['version']}): {adata.n_obs} cells x {adata.n_vars} genes, "
        f"{epochs} epochs of {train_cells} cells in {seconds:.2f} s = {result['cells_per_second']:.0f} cells/s "
        f"({result['threads']} thread(s), load {load_before:.2f} -> {load_after:.2f})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
