"""The headless command line: train any model family from a config file, write every result.

    python -m engine train CONFIG --data FILE --out DIR [--preprocess rna|cytometry]
    torchrun --nproc_per_node=N -m engine train CONFIG --data FILE --out DIR

DIR receives `checkpoints/` (resumable), `events.jsonl` (every event of the run), `model/` (the
saved model) and `<data stem>.h5ad` (the input cells with the model's results). Under torchrun
every rank trains on its shard; only rank 0 writes. A DIR that already holds a run is never
silently replaced: continue it with `--resume`, or start over with `--overwrite`.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.config.family import DEFAULT_FAMILY
from engine.config.files import read_settings
from engine.data import preprocess
from engine.data.errors import InputError
from engine.data.read import read
from engine.families import family_class
from engine.training.checkpoint import remove_stale_temporaries
from engine.training.distributed import DistributedContext
from engine.training.trainer import LAST_CHECKPOINT

PREPROCESS = {"rna": preprocess.rna, "cytometry": preprocess.cytometry}
EXIT_INPUT, EXIT_FAILED = 2, 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Hanami's headless engine")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train", help="train a model from a YAML/JSON config",
        epilog="Exit status: 0 when training ends, 1 when it fails (a loss became NaN), "
        "2 for unusable input (the 'error:' line says what and what to do).",
    )
    train.add_argument("config", type=Path, help="model configuration (.yaml, .yml or .json)")
    train.add_argument("--data", type=Path, required=True, help="cells: .h5ad, 10x, .csv/.tsv, .fcs")
    train.add_argument("--out", type=Path, required=True, help="output folder")
    train.add_argument("--preprocess", choices=sorted(PREPROCESS), help="preprocess the cells first")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    start = train.add_mutually_exclusive_group()
    start.add_argument(
        "--resume", type=Path, metavar="PATH",
        help="continue from a checkpoint: a .pt file, or a folder holding last.pt "
        "(DIR/checkpoints, or DIR itself for DIR/checkpoints/last.pt)",
    )
    start.add_argument(
        "--overwrite", action="store_true",
        help="start over in an --out folder that holds an earlier run, deleting its checkpoints and events first",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _family(config_path: Path):
    """The registered model family a config file names (its `family` field; default "guided")."""
    name = read_settings(config_path).get("family", DEFAULT_FAMILY)
    try:
        return family_class(name)
    except InputError as error:
        raise InputError(f"{config_path}: {error}", error.problems) from None


def _resume_path(given: Path) -> Path:
    """The checkpoint file --resume names: the file itself, or last.pt in the folder given."""
    if given.is_dir():
        for candidate in (given / LAST_CHECKPOINT, given / "checkpoints" / LAST_CHECKPOINT):
            if candidate.is_file():
                return candidate
        raise InputError(
            f"{given}: a folder without a checkpoint ({LAST_CHECKPOINT}, or checkpoints/{LAST_CHECKPOINT}); "
            "give the checkpoint file, or the checkpoints folder of the run to continue"
        )
    if not given.exists():
        raise InputError(f"{given}: no such checkpoint; give the path of the run's checkpoints/{LAST_CHECKPOINT}")
    return given


def _previous_run(out: Path) -> list[Path]:
    """What an earlier run left in `out` that this one would replace or mix with."""
    checkpoints = out / "checkpoints"
    found = sorted(checkpoints.glob("*.pt")) if checkpoints.is_dir() else []
    return found + [events for events in (out / "events.jsonl",) if events.is_file()]


def _refuse_mixing(out: Path, *, resume: bool, overwrite: bool) -> list[Path]:
    """Refuse to mix a new run into an earlier one's files unless told how (resume or overwrite);
    returns those files."""
    previous = _previous_run(out)
    if previous and not resume and not overwrite:
        shown = ", ".join(str(path.relative_to(out)) for path in previous[:3])
        last = out / "checkpoints" / LAST_CHECKPOINT
        resume_hint = f"to continue it pass --resume {last}, " if last.is_file() else ""
        raise InputError(
            f"{out} already holds an earlier run ({shown}); {resume_hint}to start over pass --overwrite "
            "(deletes its checkpoints and events), or choose another --out folder"
        )
    return previous


def _open_out(out: Path, previous: list[Path], *, overwrite: bool) -> None:
    """Create the folder, drop what interrupted checkpoint writes left, and with --overwrite the
    earlier run's checkpoints and events (only now, once the new run is ready to start)."""
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out / "checkpoints" / LAST_CHECKPOINT)
    if overwrite:
        for path in previous:
            path.unlink(missing_ok=True)


def train(args: argparse.Namespace) -> int:
    """Train on one device, or as one rank of a torchrun job (leaving its process group on the way out)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        with DistributedContext.from_env() as distributed:
            return _train(args, distributed)
    return _train(args, None)


def _train(args: argparse.Namespace, distributed: DistributedContext | None) -> int:
    family = _family(args.config)
    device = args.device if distributed is None else distributed.device
    is_main = distributed is None or distributed.is_main
    resume = _resume_path(args.resume) if args.resume is not None else None
    out = args.out
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out names a file; give a folder (it is created if missing)")
    previous = _refuse_mixing(out, resume=resume is not None, overwrite=args.overwrite)
    adata = read(args.data)
    if args.preprocess:
        PREPROCESS[args.preprocess](adata)
    model = family(adata, config=args.config, device=device)
    if is_main:
        _open_out(out, previous, overwrite=args.overwrite)
    run = model.train(
        checkpoint_dir=out / "checkpoints",
        checkpoint_every=1,
        jsonl=out / "events.jsonl" if is_main else None,
        progress=not args.no_progress and is_main,
        distributed=distributed,
        resume_from=resume,
    )
    if run.state == "failed":
        if is_main:
            error = run.events.last("error")
            reason = error.data.get("message", "") if error is not None else ""
            kept = f"; the last checkpoint is {run.checkpoint}" if run.checkpoint else ""
            print(
                f"error: training failed: {reason}{kept}. "
                "No model or results were written; a lower lr or clip_grad_norm often helps.",
                file=sys.stderr,
            )
        return EXIT_FAILED
    if is_main:
        model.save(out / "model")
        model.write(adata)
        adata.write_h5ad(out / f"{args.data.name.split('.')[0]}.h5ad")
        print(f"{run.state} after {run.epochs} epochs ({run.steps} steps); results in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return train(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as error:  # a folder that cannot be written, a full disk
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}; check the folder and the free space", file=sys.stderr)
        return EXIT_INPUT
