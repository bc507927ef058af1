"""Choosing the training device and the optional bf16 autocast.

bf16 autocast runs the matrix products in bfloat16; weights and optimiser state stay float32. It
pays on CUDA and on CPUs that compute bf16 natively (AVX512-BF16 or AMX): there a cells x 2,000
genes x 256 hidden product, SysVI's largest, takes half the time (128 cells, one thread: 0.65 ms
against 1.35 ms) and SysVI trains about 1.5x as fast (bench/sysvi.py --bf16). On other CPUs, and for
small layers, casting can cost more than it saves, so it is off unless asked. MPS autocast support
is partial, so there the request is ignored with a warning.
"""
from __future__ import annotations

import contextlib
import warnings

import torch

from engine.data.errors import InputError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """"auto" (or None) picks CUDA, then MPS, then the CPU; anything else is taken as given,
    once it names a device this machine has (a typo or a missing GPU is the user's to fix)."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"device {device} is not a device name; use auto, cpu, cuda, cuda:1 (a GPU by number) or mps") from None
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}.get(chosen.type)
    if available is not None and not available():
        raise InputError(f"device {device}: this machine has no {chosen.type.upper()} GPU that PyTorch can use; use auto or cpu")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise InputError(
            f"device {device}: this machine has {torch.cuda.device_count()} CUDA GPUs, numbered from 0; pick one of those"
        )
    return chosen


def canonical_device(device: str | torch.device) -> torch.device:
    """The device with its index filled in ("cuda" is the current CUDA device), for comparisons."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


AUTOCAST_DEVICES = ("cuda", "cpu")


def autocasts(device: torch.device, bf16: bool) -> bool:
    """Whether training on `device` runs under bf16 autocast (asked for, and offered there)."""
    if bf16 and device.type not in AUTOCAST_DEVICES:
        warnings.warn(f"bf16 autocast is only used on CUDA and the CPU; training on {device} in float32", stacklevel=3)
    return bf16 and device.type in AUTOCAST_DEVICES


def autocast_for(device: torch.device, autocasting: bool):
    """A factory of autocast contexts: bf16 when `autocasting` (see `autocasts`), otherwise no-op ones."""
    if autocasting:
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext
