"""The last good weights: model and optimiser state copied on the device at each clean read-back.

When a window of read-back losses holds a NaN or inf, the update that produced it has already been
applied, so the trainer rolls the model and optimiser back to this copy before it ends the run.

Taking the copy must be cheap, since it happens at every read-back: the model's parameters and
buffers and the optimiser's per-parameter state tensors are updated in place by training, so the
snapshot keeps a list of those live tensors and `copy_`s them into buffers allocated once (no
state_dict() packing, no allocation). The list is rebuilt when the optimiser's state changes shape
(a parameter steps for the first time, or a state dict was loaded). Restoring copies back in place.
"""
from __future__ import annotations

import torch
from torch import nn


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[tuple[nn.Parameter, str, torch.Tensor]]:
    return [
        (param, key, value)
        for group in optimizer.param_groups
        for param in group["params"]
        for key, value in optimizer.state.get(param, {}).items()
        if torch.is_tensor(value)
    ]


class WeightSnapshot:
    """A device copy of a model's and an optimiser's state, with the step it was taken at."""

    def __init__(self):
        self.step: int | None = None
        self._model_tensors: list[torch.Tensor] = []
        self._optimizer_tensors: list[tuple[nn.Parameter, str, torch.Tensor]] = []
        self._copies: list[torch.Tensor] = []
        self._groups: list[dict] = []

    @torch.no_grad()
    def take(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, *, rebuild: bool = False) -> None:
        """Copy the current state; `rebuild` re-reads the model's tensors (start of a run)."""
        if rebuild or not self._model_tensors:
            self._model_tensors = [t for t in model.state_dict(keep_vars=True).values() if torch.is_tensor(t)]
            self._copies = []
        optimizer_tensors = _optimizer_tensors(optimizer)
        same = len(optimizer_tensors) == len(self._optimizer_tensors) and all(
            new[2] is old[2] for new, old in zip(optimizer_tensors, self._optimizer_tensors)
        )
        self._optimizer_tensors = optimizer_tensors
        sources = self._model_tensors + [value for *_, value in optimizer_tensors]
        if same and self._copies:
            torch._foreach_copy_(self._copies, sources)
        else:
            self._copies = [source.detach().clone() for source in sources]
        self._groups = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
        self.step = step

    @torch.no_grad()
    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.step is None:
            raise RuntimeError("no snapshot has been taken")
        n_model = len(self._model_tensors)
        for live, copy in zip(self._model_tensors, self._copies[:n_model]):
            live.copy_(copy)
        # Parameters that took their first step after the snapshot had no optimiser state then.
        had_state = {id(param) for param, *_ in self._optimizer_tensors}
        for group in optimizer.param_groups:
            for param in group["params"]:
                if id(param) not in had_state:
                    optimizer.state.pop(param, None)
        for (param, key, _), copy in zip(self._optimizer_tensors, self._copies[n_model:]):
            optimizer.state[param][key] = copy.clone()
        for group, saved in zip(optimizer.param_groups, self._groups):
            group.update(saved)
