"""Choosing the training device and the optional bf16 autocast.

bf16 autocast is only offered on CUDA: on the CPU it is slower than float32 for our small layers,
and MPS autocast support is partial, so elsewhere the request is ignored with a warning.
"""
from __future__ import annotations

import contextlib
import warnings

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """"auto" (or None) picks CUDA, then MPS, then the CPU; anything else is taken as given."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


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
