"""The headless command line: train any model family from a config file, write every result.

    python -m engine train CONFIG --data FILE --out DIR [--preprocess rna|cytometry]
    torchrun --nproc_per_node=N -m engine train CONFIG --data FILE --out DIR

DIR receives `checkpoints/` (resumable), `events.jsonl` (every event of the run), `model/` (the
saved model) and `<data stem>.h5ad` (the input cells with the model's results). Under torchrun
every rank trains on its shard; only rank 0 writes.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from engine.data import preprocess
from engine.data.errors import InputError
from engine.data.read import read
from engine.guided import GuidedModel

FAMILIES = {"guided": GuidedModel}
PREPROCESS = {"rna": preprocess.rna, "cytometry": preprocess.cytometry}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Hanami's headless engine")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model from a YAML/JSON config")
    train.add_argument("config", type=Path, help="model configuration (.yaml, .yml or .json)")
    train.add_argument("--data", type=Path, required=True, help="cells: .h5ad, 10x, .csv/.tsv, .fcs")
    train.add_argument("--out", type=Path, required=True, help="output folder")
    train.add_argument("--preprocess", choices=sorted(PREPROCESS), help="preprocess the cells first")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    train.add_argument("--resume", type=Path, help="a checkpoint to continue from")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _family(config_path: Path) -> str:
    """The model family a config file names (its `family` field)."""
    if not config_path.is_file():
        raise InputError(f"{config_path}: configuration file not found")
    data = yaml.safe_load(config_path.read_text())  # JSON is YAML too
    family = (data or {}).get("family", "guided") if isinstance(data, dict) else None
    if family not in FAMILIES:
        raise InputError(f"{config_path}: unknown model family {family!r}; known: {sorted(FAMILIES)}")
    return family


def train(args: argparse.Namespace) -> int:
    family = FAMILIES[_family(args.config)]
    distributed = None
    device = args.device
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from engine.training.distributed import DistributedContext

        distributed = DistributedContext.from_env()
        device = distributed.device
    is_main = distributed is None or distributed.is_main
    adata = read(args.data)
    if args.preprocess:
        PREPROCESS[args.preprocess](adata)
    model = family(adata, config=args.config, device=device)
    out = args.out
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
    run = model.train(
        checkpoint_dir=out / "checkpoints",
        checkpoint_every=1,
        jsonl=out / "events.jsonl" if is_main else None,
        progress=not args.no_progress and is_main,
        distributed=distributed,
        resume_from=args.resume,
    )
    if is_main:
        model.save(out / "model")
        model.write(adata)
        adata.write_h5ad(out / f"{args.data.name.split('.')[0]}.h5ad")
        print(f"{run.state} after {run.epochs} epochs ({run.steps} steps); results in {out}")
    return 0 if run.state in ("finished", "early_stopped", "stopped") else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return train(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
