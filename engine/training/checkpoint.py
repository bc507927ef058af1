"""Checkpoints that resume a run exactly, written atomically and read with `weights_only=True`.

A checkpoint is a plain dict of tensors and plain containers (so loading it never unpickles code):
the controller's state (model, optimiser, schedule epoch), its config, the trainer's position and
every random number generator the run draws from, stored as plain data. It is written to a
temporary file in the target folder and moved into place with `os.replace`, so a crash mid-write
leaves the previous checkpoint intact; the temporary such a crash leaves is removed by the next
write. A file that is missing, damaged or not a checkpoint is an `InputError` naming it.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from engine.data.errors import InputError

FORMAT = 1


def rng_state() -> dict:
    """The state of torch (CPU and every CUDA device), numpy's global generator and `random`."""
    numpy_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": [int(k) for k in numpy_state["state"]["key"]],
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]][: torch.cuda.device_count()])
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {"key": np.asarray(numpy_state["key"], dtype=np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write `state` (plus the format number) to `path` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save({"format": FORMAT, **state}, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete what interrupted writes of `path` left beside it (`.last.pt.*.tmp`); returns them.

    Only one process writes a run's checkpoints, so a temporary seen before a write is stale.
    """
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.is_dir() else []
    for temporary in stale:
        temporary.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`; only tensors and plain data are accepted."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "does not exist"
        raise InputError(f"{path}: {what}; give the path of a checkpoint such as checkpoints/last.pt")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch reports damage and foreign pickles in many ways, none meant for users
        state = None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(
            f"{path}: not a Hanami checkpoint or damaged, for example by an "
            "interrupted copy; resume from another checkpoint, or start the training over"
        )
    return state


class CheckpointMismatch(InputError, RuntimeError):
    """A Hanami checkpoint of another model: the user's choice of file (an InputError), and still
    the RuntimeError that loading mismatched weights has always raised."""


def check_model_fits(path: str | os.PathLike, saved: dict, current: dict) -> None:
    """Refuse, in words, a checkpoint whose model weights cannot go into this model."""
    missing = sum(name not in saved for name in current)
    unexpected = sum(name not in current for name in saved)
    resized = sum(name in saved and tuple(saved[name].shape) != tuple(tensor.shape) for name, tensor in current.items())
    if missing or unexpected or resized:
        differences = [
            text for count, text in (
                (resized, f"size mismatch in {resized} weights"),
                (missing, f"{missing} weights missing"),
                (unexpected, f"{unexpected} weights this model lacks"),
            ) if count
        ]
        raise CheckpointMismatch(
            f"{path}: this checkpoint holds another model than the one configured ({', '.join(differences)}), "
            "for example other genes, heads or layer sizes. Resume with the configuration and data it was trained "
            "with, or start the training over."
        )
