"""Integration across systems: training throughput of engine.SysVIModel against scvi-tools' SysVI,
and the integration metrics of both latents.

Generated cells (engine.data.simulate_systems: --cells x --genes, 2 systems with 2 batches each,
4 cell types, log1p of normalised negative-binomial counts, --system-effect) are written once to
a temporary .h5ad. Each --repeats round trains ours, then scvi-tools (its own virtual environment,
--scvi-python, through bench/sysvi_side.py), interleaved, with equal architecture and settings:
2 x 256 hidden, 15 latent dimensions, dropout 0.1, VampPrior with 5 components, cycle weight 2,
batch 128, lr 1e-3, Adam epsilon 0.01, weight decay 1e-6, no KL warm-up, --epochs epochs over
every cell (no validation, no early stopping on either side), the system as the cycle's system
and the batch as a categorical covariate. Throughput is training cells per second: epochs x cells
/ seconds of the training call alone (time.perf_counter; data loading, imports and model
construction outside). The ratio is ours / scvi-tools per round; target >= 2 at equal or better
metrics. Metrics (engine.metrics, checked against scib-metrics in bench/metrics_check.py) are
computed on both latents and on the PCA of the expression, with the system as batch and
cell_type as label.

Seeds (--seeds, default 0): each seed generates its own cells and seeds both trainings, and
gets --repeats interleaved rounds; metrics come from each seed's last round. Single seeds move
the metrics by more than the two tools differ (iLISI 0.17-0.50 over seeds 0-4 after 3 epochs),
so the closing table gives, per tool, the mean and the range over seeds, and how many seeds ours
was at least as good on each metric.

Real cells (--mixology [FOLDER]): the CellBench lung-cancer cell lines measured with CEL-seq2 and
Drop-seq (../shared/data/scrna_mixology_systems; singlets, genes shared, read as
tests/data/test_sysvi_mixology.py reads them, then engine.preprocess.rna with 2,000 genes), the
platform as the system, no other covariate, cell_line as the label; the same cells for every seed.
On 450 cells use --epochs 100 --batch-size 32, as the test does.
Real cells (--marrow [FILE]): SCUBA's bone marrow and blood cells
(../shared/data/scrna_scuba_bm_pbmc, 250 cells x 462 targeted genes, log-normalised X as
shipped), the tissue (obs Batch) as the system, no other covariate, the condensed cell type as
the label with the two tissues' monocytes merged (as tests/data/test_guided_scuba.py scores
them); the same advice, --epochs 100 --batch-size 32.

Threads: both sides run with --threads torch threads (default 1); the 1-minute load average is
printed beside each timing.

The cycle (--cycle-input): ours defaults to the paper's cycle, which backpropagates through the
decoding under the other system; scvi-tools decodes under the other system without using it and
re-encodes the decoding under the cell's own system. Per step that is 11 products of a batch with
a genes x hidden matrix (forward and backward) for the paper's cycle against 9 for scvi-tools';
--cycle-input own_system gives ours scvi-tools' cycle, 8 of them (ours skips the unused decoding).
So with the paper's cycle ours does about 20% more of the arithmetic that dominates a CPU step.

Variances (--std-as-variance): scvi-tools hands standard deviations where the decoder's likelihood
and the VampPrior's components take variances; ours passes variances unless this flag asks for
scvi-tools' computation (engine.SysVAE's `std_as_variance`). Its encoder's variance is
softplus(head) where ours, after TOTALVI, is exp(head): --encoder-variance softplus.

Precision (--bf16): both sides run their matrix products under bf16 autocast, ours with the
training setting bf16=True, scvi-tools with Lightning's precision="bf16-mixed"; weights and
optimiser stay float32 on both. It pays on a CPU that computes bf16 natively (AVX512-BF16, AMX).

    .venv/bin/python bench/sysvi.py [--cells 20000] [--genes 2000] [--epochs 3] [--repeats 2]
        [--system-effect 0.3] [--threads 1] [--seeds 0 [1 ...]] [--cycle-input other_system|own_system]
        [--std-as-variance] [--encoder-variance exp|softplus] [--batch-size 128] [--bf16] [--mixology [FOLDER]]
        [--marrow [FILE]]
        [--scvi-python /work/scvi-venv/bin/python] [--json-out bench/results/sysvi.json]

scvi-tools' environment (outside the repository; CPU torch first so it does not pull a CUDA one):
    python3.11 -m venv /work/scvi-venv
    /work/scvi-venv/bin/pip install torch==2.13.0
    /work/scvi-venv/bin/pip install scvi-tools scib-metrics
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import scanpy as sc
import torch

HERE = Path(__file__).resolve().parent
SETTINGS = dict(n_latent=15, n_hidden=256, n_layers=2, dropout_rate=0.1, prior="vamp", n_prior_components=5,
                cycle_weight=2.0)
GENERATED = dict(system_key="system", batch_keys=["batch"], label_key="cell_type")
MIXOLOGY = dict(system_key="platform", batch_keys=[], label_key="cell_line")
MIXOLOGY_FOLDER = HERE.parent.parent / "shared" / "data" / "scrna_mixology_systems"
MARROW = dict(system_key="Batch", batch_keys=[], label_key="cell_type")
MARROW_FILE = HERE.parent.parent / "shared" / "data" / "scrna_scuba_bm_pbmc" / "AML_h5ad.h5ad"
MERGED_MONOCYTES = {"BM Monocytes": "Monocytes", "PBMC Monocytes": "Monocytes"}


def run_ours(adata, seed: int, args) -> dict:
    import engine

    training = dict(batch_size=args.batch_size, lr=1e-3, weight_decay=1e-6, max_epochs=args.epochs,
                    validation_fraction=0.0, early_stopping_patience=None, seed=seed, bf16=args.bf16)
    keys = args.keys
    model = engine.SysVIModel(adata, keys["system_key"], batch_keys=keys["batch_keys"] or None, device="cpu",
                              training=training,
                              cycle_input=args.cycle_input, std_as_variance=args.std_as_variance,
                              encoder_variance=args.encoder_variance, **SETTINGS)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    model.train(progress=False)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cells_per_second": args.epochs * adata.n_obs / seconds,
            "threads": torch.get_num_threads(), "load": (load_before, os.getloadavg()[0]), "latent": model.latent()}


def run_scvi(h5ad: Path, folder: Path, seed: int, args) -> dict:
    out = folder / "scvi_out.json"
    keys = args.keys
    command = [args.scvi_python, str(HERE / "sysvi_side.py"), str(h5ad), str(out), "--system-key", keys["system_key"],
               "--batch-keys", *keys["batch_keys"], "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--n-latent", "15", "--n-hidden", "256", "--n-layers", "2", "--cycle-weight", "2",
               "--prior", "vamp", "--n-prior-components", "5", "--train-size", "1.0",
               "--threads", str(args.threads), "--seed", str(seed), "--accelerator", "cpu",
               "--precision", "bf16-mixed" if args.bf16 else "32-true"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"scvi-tools side failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(out.read_text())
    return {"seconds": result["seconds"], "cells_per_second": result["cells_per_second"],
            "threads": result["threads"], "load": (result["load_before"], result["load_after"]),
            "latent": np.load(out.with_suffix(".npy"))}


def metrics(latent, adata, keys: dict) -> dict:
    from engine.metrics import integration_metrics

    table = integration_metrics(latent, adata.obs[keys["system_key"]].to_numpy(), adata.obs[keys["label_key"]].to_numpy())
    return dict(zip(table["metric"], table["value"]))


def generated_cells(seed: int, args):
    from engine.data.simulate_systems import cells_from_systems

    adata = cells_from_systems(args.cells, args.genes, system_effect=args.system_effect, seed=seed)
    del adata.layers["counts"]
    return adata


def mixology_cells(folder: Path):
    """The two platforms' singlets on their shared genes, log-normalised, 2,000 genes (the test's reader)."""
    import sys

    import anndata as ad

    import engine

    sys.path.insert(0, str(HERE.parent / "tests" / "data"))
    from test_sysvi_mixology import PLATFORMS, read_platform

    if not folder.is_dir():
        raise SystemExit(f"no mixology data at {folder}: pass its folder to --mixology")
    cells = ad.concat([read_platform(folder, platform, stem) for platform, stem in PLATFORMS.items()], join="inner")
    engine.preprocess.rna(cells, n_top_genes=2000, subset=True)
    return cells


def marrow_cells(path: Path):
    """SCUBA's bone marrow and blood cells as shipped (log-normalised, all 462 genes), with the
    condensed cell type, monocytes of both tissues merged, as `cell_type`."""
    import engine

    if not path.is_file():
        raise SystemExit(f"no SCUBA data at {path}: pass its .h5ad to --marrow")
    cells = engine.read(path)
    cells.obs["cell_type"] = cells.obs["condensed_cell_type"].astype(str).replace(MERGED_MONOCYTES)
    del cells.layers["counts"]
    return cells


def chosen_cells(args) -> tuple[dict, object, str]:
    """The data set asked for: its keys, its real cells (read once, for every seed; None for
    generated cells, which each seed makes) and a description."""
    if args.mixology:
        return MIXOLOGY, mixology_cells(args.mixology), f"mixology from {args.mixology}"
    if args.marrow:
        return MARROW, marrow_cells(args.marrow), f"SCUBA from {args.marrow}"
    return GENERATED, None, f"{args.cells:,} cells x {args.genes:,} genes"


def bench_seed(seed: int, args, real_cells=None) -> dict:
    """One seed: its cells (`real_cells`, the same for every seed, or generated with the seed),
    --repeats interleaved rounds, and the metrics of the last round's latents."""
    adata = real_cells if real_cells is not None else generated_cells(seed, args)
    latents, rounds = {}, []
    with tempfile.TemporaryDirectory() as folder:
        h5ad = Path(folder) / "cells.h5ad"
        adata.write_h5ad(h5ad)
        for round_ in range(args.repeats):
            ours, scvi = run_ours(adata, seed, args), run_scvi(h5ad, Path(folder), seed, args)
            for tool, r in (("ours", ours), ("scvi-tools", scvi)):
                print(f"seed {seed} round {round_ + 1}  {tool:<10} {r['seconds']:7.1f} s  {r['cells_per_second']:7.0f} "
                      f"cells/s  threads {r['threads']}  load {r['load'][0]:.1f}->{r['load'][1]:.1f}", flush=True)
                latents[tool] = r["latent"]
            ratio = ours["cells_per_second"] / scvi["cells_per_second"]
            rounds.append({"ratio": ratio, **{tool: {k: v for k, v in r.items() if k != "latent"} for tool, r in
                                              (("ours", ours), ("scvi-tools", scvi))}})
            print(f"seed {seed} round {round_ + 1}  ratio ours / scvi-tools: {ratio:.2f}x", flush=True)
    latents["PCA (uncorrected)"] = sc.pp.pca(adata.X.toarray(), n_comps=15, random_state=seed)
    rows = {name: metrics(latent, adata, args.keys) for name, latent in latents.items()}
    print(f"\n{'seed ' + str(seed):<20}" + "".join(f"{name:>20}" for name in rows))
    for metric in next(iter(rows.values())):
        print(f"{metric:<20}" + "".join(f"{rows[name][metric]:>20.3f}" for name in rows))
    print(flush=True)
    return {"rounds": rounds, "metrics": rows}


def summary(per_seed: dict[int, dict]) -> dict:
    """Per metric and tool, the mean and range over seeds; and on how many seeds ours scored at
    least as well as scvi-tools (higher is better for every metric here)."""
    seeds = list(per_seed)
    ratios = [r["ratio"] for result in per_seed.values() for r in result["rounds"]]
    out = {"seeds": seeds, "ratio": {"mean": float(np.mean(ratios)), "min": min(ratios), "max": max(ratios)}, "metrics": {}}
    for metric in next(iter(per_seed.values()))["metrics"]["ours"]:
        values = {tool: [per_seed[s]["metrics"][tool][metric] for s in seeds] for tool in ("ours", "scvi-tools")}
        out["metrics"][metric] = {
            **{tool: {"mean": float(np.mean(v)), "min": float(min(v)), "max": float(max(v))} for tool, v in values.items()},
            "ours_at_least_as_good": int(sum(o >= t for o, t in zip(values["ours"], values["scvi-tools"]))),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds per seed")
    parser.add_argument("--system-effect", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cycle-input", choices=["other_system", "own_system"], default="other_system",
                        help="ours: the paper's cycle (default) or scvi-tools' (the same work per step as theirs)")
    parser.add_argument("--std-as-variance", action="store_true",
                        help="ours: scvi-tools' variances (standard deviations where variances go)")
    parser.add_argument("--encoder-variance", choices=["exp", "softplus"], default="exp",
                        help="ours: the encoder's variance from its head, exp (TOTALVI) or softplus (scvi-tools)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--bf16", action="store_true", help="both sides: matrix products under bf16 autocast")
    parser.add_argument("--mixology", nargs="?", type=Path, const=MIXOLOGY_FOLDER, default=None,
                        help="the CellBench platforms (real cells) instead of generated ones")
    parser.add_argument("--marrow", nargs="?", type=Path, const=MARROW_FILE, default=None,
                        help="SCUBA's bone marrow and blood cells (real cells, tissue as the system)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--scvi-python", default="/work/scvi-venv/bin/python")
    parser.add_argument("--json-out", default=str(HERE / "results" / "sysvi.json"))
    args = parser.parse_args()
    if args.mixology and args.marrow:
        parser.error("--mixology and --marrow are two data sets: pick one")
    torch.set_num_threads(args.threads)
    args.keys, real_cells, cells = chosen_cells(args)
    precision = "bf16 autocast" if args.bf16 else "float32"
    print(f"{cells}, {args.epochs} epochs per run, batch {args.batch_size}, {args.threads} thread(s), {precision}, "
          f"seeds {args.seeds}")
    per_seed = {seed: bench_seed(seed, args, real_cells) for seed in args.seeds}
    total = summary(per_seed)
    ratio = total["ratio"]
    print(f"over {len(args.seeds)} seed(s): ratio ours / scvi-tools {ratio['mean']:.2f}x "
          f"({ratio['min']:.2f}-{ratio['max']:.2f})")
    print(f"{'metric':<20}{'ours mean (range)':>26}{'scvi-tools mean (range)':>28}{'ours >= scvi-tools':>20}")
    for metric, row in total["metrics"].items():
        cells = [f"{row[t]['mean']:.3f} ({row[t]['min']:.3f}-{row[t]['max']:.3f})" for t in ("ours", "scvi-tools")]
        print(f"{metric:<20}{cells[0]:>26}{cells[1]:>28}{row['ours_at_least_as_good']:>14} of {len(args.seeds)}")
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                if k not in ("scvi_python", "json_out", "keys")}
    Path(args.json_out).write_text(json.dumps({"settings": settings, "seeds": per_seed, "summary": total}, indent=2))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
