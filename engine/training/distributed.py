"""Data-parallel training across the processes torchrun starts (one per GPU, or CPU processes).

`DistributedContext.from_env()` reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK, joins the process
group (nccl on CUDA with device cuda:LOCAL_RANK, gloo on the CPU) and offers the few collectives the
trainer needs.

How a step runs under DistributedDataParallel, and why. DDP's reducer expects exactly one forward
per backward: each forward re-arms it (with `find_unused_parameters=True` it walks the graph of that
forward's outputs to mark the parameters that will get no gradient), so with a second forward before
the backward, parameters of the first forward are declared unused and then get gradients anyway:
torch raises "Expected to mark a variable ready only once" (checked with two gloo processes).
Summed mode runs several task forwards before one backward, and a controller may call its model
more than once in a step (a cycle loss re-encodes decoded cells). So instead of wrapping
the bare model, the trainer wraps *the whole loss computation of one step*: `_WholeStep` is a module
that owns the model (hence its parameters) and whose forward calls the closure it is given; that
closure runs `controller.train(batch, suppress_backward=True, **task)` for one task (interleaved)
or for every task, adding their totals (summed), against the bare model. DDP thus sees one forward
whose outputs carry every loss term, finds unused heads from the graph of the summed total, and
averages gradients in the one `controller.backward_step(total)` that follows, exactly as it would
for a single model call. Controllers keep calling the bare model.

Ranks keep in step: every rank takes the same number of steps (a last global batch with fewer
cells than ranks is dropped), validation runs on the bare model on each rank's shard and its sums
are added over ranks, and at each read-back one small all-reduce tells every rank whether any rank
saw a non-finite loss or was asked to stop, so all ranks fail or stop at the same step.

Leave the process group when training is done (`close()`, or use the context as a `with` block).
That alone does not make the exit safe on the CPU: gloo's worker threads may still be releasing the
tensors of the last collective when the interpreter shuts down, and then the process aborts
("terminate called without an active exception"; 3 of 39 two-process runs on a busy machine here
even after `close()`; 0 of 65 when ending with `exit_rank`). So once every result is written and
closed, a rank ends with `exit_rank(status)`, which skips the teardown: `python -m engine` does, and a
script of your own under torchrun should too.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


class _WholeStep(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, compute: Callable[[], dict]) -> dict:
        return compute()


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @classmethod
    def from_env(cls, backend: str | None = None) -> "DistributedContext":
        """Join the process group described by torchrun's environment variables."""
        try:
            rank = int(os.environ["RANK"])
            world_size = int(os.environ["WORLD_SIZE"])
            local_rank = int(os.environ.get("LOCAL_RANK", rank))
        except KeyError as err:
            raise RuntimeError(
                f"{err.args[0]} is not set: start distributed training with "
                "`torchrun --nproc_per_node=N your_script.py`"
            ) from None
        if torch.cuda.is_available():
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
            backend = backend or "nccl"
        else:
            device = torch.device("cpu")
            backend = backend or "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend, rank=rank, world_size=world_size)
        return cls(rank=rank, world_size=world_size, local_rank=local_rank, device=device, backend=backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> DistributedDataParallel:
        """A DDP module whose forward runs one step's loss closure (see the module docstring).

        Building it broadcasts rank 0's parameters and buffers, so every rank starts equal.
        """
        return DistributedDataParallel(
            _WholeStep(model),
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=True,
        )

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over ranks, in place."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, *flags: bool) -> list[bool]:
        """For each flag, whether any rank raised it (one small collective for all of them)."""
        tensor = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return [bool(v) for v in tensor.tolist()]

    def close(self) -> None:
        """Leave the process group (see the module docstring for a safe exit)."""
        if dist.is_initialized():
            dist.destroy_process_group()

    def __enter__(self) -> "DistributedContext":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def exit_rank(status: int = 0) -> NoReturn:
    """End this torchrun rank without the interpreter's teardown (see the module docstring).

    Only the standard streams are flushed: call it once every result is written and closed.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
