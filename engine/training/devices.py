"""Choosing the training device and the optional bf16 autocast.

bf16 autocast is only offered on CUDA: on the CPU it is slower than float32 for our small layers,
and MPS autocast support is partial, so elsewhere the request is ignored with a warning.
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


def autocast_for(device: torch.device, bf16: bool):
    """A factory of autocast contexts: bf16 on CUDA when asked, otherwise a no-op context."""
    if bf16 and device.type != "cuda":
        warnings.warn(
            f"bf16 autocast is only used on CUDA; training on {device} in float32", stacklevel=3
        )
    if bf16 and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext
