"""The training loop every model family shares.

A run walks the story's epochs; each epoch visits the training cells in batches (order fixed by
(seed, epoch)), or with `tick_batches` the next that many batches of a continuing stream of passes
(a "tick", for cells too many to wait for a pass). Each batch runs the phase's tasks, one optimiser
step per task ("interleaved") or one step on the sum of the tasks' totals ("summed"). Loss values stay on the
device and are read back once per `log_every` steps (see `LossWindow`), when they become "step"
events. At the end of an epoch come validation, early stopping, and checkpoints.

`stop()`, `pause()` and `resume()` may be called from any thread while `run` works; they take
effect between two steps. A non-finite loss ends the run as "failed" after rolling the weights back
to the last clean read-back; an exception from the controller is recorded as an "error" event and
re-raised. With a `DistributedContext`, each rank takes its shard of every global batch and
gradients are averaged by DDP (see `engine.training.distributed`).
"""
from __future__ import annotations

import random
import warnings
from dataclasses import astuple, dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.data.errors import InputError
from engine.training.checkpoint import (
    check_model_fits,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from engine.training.control import RunControl
from engine.training.devices import autocast_for, autocasts, canonical_device
from engine.training.distributed import DistributedContext
from engine.training.early_stopping import EarlyStopping
from engine.training.events import EventLog
from engine.training.guard import WeightSnapshot
from engine.training.jsonl import JsonlFollower, keep_events_until
from engine.training.lr import apply_lr, lr_factor
from engine.training.progress import ProgressBar, progress_enabled
from engine.training.result import TrainingRun
from engine.training.story import Phase, Story
from engine.training.window import LossWindow, Readout

def _training(base: TrainingConfig, settings: dict) -> TrainingConfig:
    """`base` with `settings` (TrainingConfig field names) replaced, validated as a whole."""
    from engine.config.files import validate_config  # engine.config imports engine.training
    from engine.config.training import TrainingConfig

    unknown = sorted(set(settings) - set(TrainingConfig.model_fields))
    if unknown:
        raise TypeError(f"Trainer got unknown settings {unknown}; settings are TrainingConfig fields")
    if not settings:
        return base
    return validate_config(TrainingConfig, base.model_dump() | settings, "training settings")


if TYPE_CHECKING:  # the controllers and configs import engine.training, so only for annotations
    from engine.config.training import TrainingConfig
    from engine.controllers.base import Controller
    from engine.data.batches import CellBatches

LAST_CHECKPOINT = "last.pt"


@dataclass(frozen=True)
class TrainerStatus:
    state: str  # idle, running, paused, finished, stopped, failed, early_stopped
    epoch: int
    step: int
    phase: str


@dataclass
class _Position:
    """Where the run is: the next epoch / batch / task to run, and the steps completed."""

    epoch: int = 0
    batch: int = 0
    task: int = 0
    step: int = 0


class Trainer:
    """Runs a controller over CellBatches through a story (default: one phase of `max_epochs`).

    `min_delta` is a relative improvement of the validation total for early stopping;
    `checkpoint_dir` receives `last.pt` every `checkpoint_every` epochs and when the run ends
    (finished, stopped, early-stopped); `jsonl` names a file that receives every event of the run;
    `train_cells` (mask or indices) restricts training and validation to those cells.
    """

    def __init__(
        self,
        controller: Controller,
        batches: CellBatches,
        training: TrainingConfig | None = None,
        *,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        events: EventLog | None = None,
        progress: bool | str = "auto",
        distributed: DistributedContext | None = None,
        train_cells=None,
        jsonl: str | Path | None = None,
        **settings,
    ):
        """`training` holds the run's settings (default: the controller's own `TrainingConfig`);
        `settings` are `TrainingConfig` fields that replace its values for this run. The other
        keywords are the run's plumbing, not its settings."""
        training = _training(training or controller.training, settings)
        if checkpoint_every is not None and (checkpoint_every < 1 or checkpoint_dir is None):
            raise ValueError("checkpoint_every needs a checkpoint_dir and must be at least 1")
        if training.early_stopping_patience is not None and training.validation_fraction <= 0:
            raise InputError(
                "early_stopping_patience watches the validation loss, but validation_fraction is 0: "
                "set validation_fraction above 0 (for example 0.1), or leave early stopping off"
            )
        controller.apply_training(training)  # the optimiser's lr and weight decay, gradient clipping
        self.training = training
        batch_size, validation_fraction = training.batch_size, training.validation_fraction
        lr_schedule, lr_step_epochs, lr_gamma = training.lr_schedule, training.lr_step_epochs, training.lr_gamma
        early_stopping_patience, min_delta = training.early_stopping_patience, training.min_delta
        seed, log_every, bf16, tick_batches = training.seed, training.log_every, training.bf16, training.tick_batches
        story = training.story or Story.single(training.max_epochs)
        self.controller = controller
        self.batches = batches
        self.story = story
        self.batch_size = batch_size
        self.lr_schedule, self.lr_step_epochs, self.lr_gamma = lr_schedule, lr_step_epochs, lr_gamma
        self.seed = seed
        self.log_every = log_every
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every = checkpoint_every
        self.events = events if events is not None else EventLog()
        self.progress = progress_enabled(progress)
        self.distributed = distributed
        self.jsonl = Path(jsonl) if jsonl is not None else None
        self.control = RunControl()
        self.early_stopping = (
            EarlyStopping(early_stopping_patience, min_delta) if early_stopping_patience else None
        )

        self.device = batches.device
        if distributed is not None and canonical_device(distributed.device) != canonical_device(self.device):
            raise ValueError(
                f"the cells are on {self.device} but this rank trains on {distributed.device}: "
                "build CellBatches with device=context.device"
            )
        controller.model.to(self.device)
        autocasting = autocasts(self.device, bf16)
        self._autocast = autocast_for(self.device, autocasting)
        # Under DDP or autocast the trainer must wrap the forward, so a step becomes
        # train(suppress_backward=True) inside the wrapper, then backward_step outside it.
        self._split_step = distributed is not None or autocasting
        self._rank = distributed.rank if distributed else 0
        self._world = distributed.world_size if distributed else 1
        self._is_main = self._rank == 0
        self._train_index, self._val_index = self._split(train_cells, validation_fraction)
        n_train = self._train_index.shape[0]
        n_chosen = n_train + (0 if self._val_index is None else self._val_index.shape[0])
        self._check_enough_cells(n_train, n_chosen, validation_fraction)
        if self._world > 1 and batch_size < self._world:
            raise InputError(
                f"batch_size {batch_size} is smaller than the {self._world} processes training together; "
                f"set batch_size to at least {self._world}"
            )
        # A rank whose shard of the last global batch would be empty or a single cell could not
        # take that step (BatchNorm needs two cells); on one process CellBatches merges a
        # one-cell tail into the batch before it.
        self._drop_last = self._world > 1 and 0 < n_train % batch_size < 2 * self._world
        self._batches_per_pass = batches.n_batches(batch_size, self._train_index, drop_last=self._drop_last)
        # With ticks, an epoch of the story is `tick_batches` batches of a continuing stream of
        # passes over the cells: progress, validation and checkpoints need not wait for a pass.
        self.tick_batches = tick_batches

        self._position = _Position()
        self._state = "idle"
        self._phase = self.story.phases[0].name
        self._window = LossWindow()
        self._snapshot = WeightSnapshot()
        self._ddp = None
        self._bar: ProgressBar | None = None
        self._last_checkpoint: Path | None = None
        self._checkpoint_at: tuple | None = None  # the position the last checkpoint holds
        self._loaded_events_seq: int | None = None  # the seq of the resumed checkpoint's event

    # -- public control ----------------------------------------------------------------------
    def stop(self) -> None:
        """End the run after the current step, keeping the model (under DDP: at the next read-back)."""
        self.control.stop()

    def pause(self) -> None:
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    @property
    def status(self) -> TrainerStatus:
        position = self._position
        return TrainerStatus(self._state, position.epoch, position.step, self._phase)

    # -- setup -------------------------------------------------------------------------------
    def _split(self, train_cells, fraction: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        cells = self.batches.cell_index(train_cells)
        if fraction <= 0:
            return cells, None
        if not fraction < 1:
            raise InputError(
                f"validation_fraction must be at least 0 and below 1 (a share of the cells), got {fraction}"
            )
        order = self.batches.epoch_order(cells, seed=self.seed, epoch=-1)
        n_cells = order.shape[0]
        n_val = int(round(n_cells * fraction))
        if n_val < self._world:
            needed = f"{self._world} validation cells" if self._world > 1 else "one validation cell"
            raise InputError(
                f"validation_fraction {fraction} of {n_cells} cells keeps {n_val} for validation; "
                f"to keep {needed}, raise it to {self._world / n_cells:.3g} or more, or set it to 0 "
                "to train without validation"
            )
        return order[n_val:].sort().values, order[:n_val].sort().values

    def _check_enough_cells(self, n_train: int, n_cells: int, fraction: float) -> None:
        """BatchNorm and the batch statistics of the losses need two cells in every batch."""
        needed = 2 * self._world
        if n_train >= needed:
            return
        cells = "1 cell" if n_train == 1 else f"{n_train} cells"
        processes = f" ({self._world} processes, 2 cells each)" if self._world > 1 else ""
        if fraction > 0:
            situation = (f"only {cells} of {n_cells} {'remains' if n_train == 1 else 'remain'} for training "
                         f"(validation_fraction {fraction} "
                         "keeps the others for validation); lower validation_fraction or load more cells")
        else:
            situation = f"there {'is' if n_train == 1 else 'are'} only {cells} to train on; load more cells"
        raise InputError(f"training needs at least {needed} cells{processes}, but {situation}")

    def _steps_per_epoch(self, phase: Phase) -> int:
        n_batches = self.tick_batches or self._batches_per_pass
        return n_batches * (1 if phase.mode == "summed" else len(phase.tasks))

    def _epoch_batches(self, epoch: int, skip: int):
        """The batches of one story epoch after its first `skip`: its slice of a stream of passes
        over the training cells (each pass ordered by (seed, pass)). Without ticks the slice is
        exactly pass `epoch`."""
        options = dict(shuffle=True, seed=self.seed, drop_last=self._drop_last, rank=self._rank, world_size=self._world)
        per_epoch = self.tick_batches or self._batches_per_pass
        start, end = epoch * per_epoch + skip, (epoch + 1) * per_epoch
        while start < end:
            data_pass, offset = divmod(start, self._batches_per_pass)
            count = min(self._batches_per_pass - offset, end - start)
            passes = self.batches.batches(self.batch_size, self._train_index, epoch=data_pass, first_batch=offset, **options)
            yield from islice(passes, count)
            start += count

    @property
    def total_steps(self) -> int:
        """Optimisation steps of the whole story (what progress bars count to)."""
        return sum(self._steps_per_epoch(p) * p.epochs for p in self.story.phases)

    def _start(self, resume_from) -> None:
        if resume_from is not None:
            self._load(resume_from)
            self._continue_events(self._loaded_events_seq)
        elif self._position == _Position():  # a fresh start; a second run() continues in place
            torch.manual_seed(self.seed)
            np.random.seed(self.seed)
            random.seed(self.seed)
        if self.distributed is not None:
            self._ddp = self.distributed.wrap(self.controller.model)
        self._window = LossWindow()  # nothing left over from a run that raised
        self._snapshot.take(self.controller.model, self.controller.optimizer, self._position.step, rebuild=True)
        if self.progress and self._is_main:
            total = self.total_steps
            self._bar = ProgressBar(self.events, total=total, initial=self._position.step)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, resume_from: str | Path | None = None) -> TrainingRun:
        """Train to the end of the story, a stop, an early stop or a failure.

        `resume_from` continues a checkpoint exactly; calling `run()` again after a stop continues
        this trainer in place.
        """
        if self._state in ("running", "paused"):
            raise RuntimeError("this trainer is already running")
        self._state = "running"
        follower = None
        try:
            self._start(resume_from)
            if self.jsonl and self._is_main:  # after _start: a resume first cuts the file back
                follower = JsonlFollower(self.events, self.jsonl).start()
            outcome = self._loop(resume_from)
            if outcome == "stopped" and self._flush() == "failed":
                outcome = "failed"
            if outcome != "failed":
                self._finish(outcome)
            self._state = outcome
        except BaseException as err:
            self._state = "failed"
            self._emit("error", {"message": f"{type(err).__name__}: {err}", "exception": type(err).__name__})
            raise
        finally:
            self._ddp = None
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            if follower is not None:
                follower.close()
            self.control.reset()
        early = self.early_stopping
        return TrainingRun(
            state=self._state,
            events=self.events,
            epochs=self._position.epoch,
            steps=self._position.step,
            checkpoint=self._last_checkpoint,
            best_epoch=early.best_epoch if early else None,
            best_validation=early.best if early else None,
        )

    def _loop(self, resume_from) -> str:
        position, phases = self._position, self.story.phases
        announced = False
        while position.epoch < self.story.total_epochs:
            index, phase = self.story.phase_at(position.epoch)
            first_epoch = sum(p.epochs for p in phases[:index])
            self._phase = phase.name
            fresh = position.epoch == first_epoch and position.batch == 0 and position.task == 0
            if fresh or not announced:
                data = {"index": index, "mode": phase.mode, "epochs": phase.epochs, "tasks": phase.tasks}
                if not announced and resume_from is not None:
                    data["resumed_from"] = str(resume_from)
                self._emit("phase_start", data)
                announced = True
                if fresh and self.early_stopping is not None:
                    self.early_stopping.reset()  # the monitored total changes with the tasks
            self.controller.set_epoch(position.epoch)
            if self.lr_schedule is not None:
                factor = lr_factor(
                    self.lr_schedule, position.epoch, self.story.total_epochs, self.lr_step_epochs, self.lr_gamma
                )
                apply_lr(self.controller.optimizer, factor)
            outcome = self._train_epoch(phase)
            if outcome is not None:
                return outcome
            outcome = self._end_epoch(phase)
            if outcome is not None:
                return outcome
            if position.epoch == first_epoch + phase.epochs:
                self._emit("phase_end", {"index": index}, epoch=position.epoch - 1)
            # After the epoch's last event, so a run resumed from here repeats none of them.
            if self.checkpoint_every and position.epoch % self.checkpoint_every == 0:
                self._write_checkpoint()
        return "finished"

    def _train_epoch(self, phase: Phase) -> str | None:
        position, control, window = self._position, self.control, self._window
        # Resuming inside an epoch skips what was done: the order depends only on (seed, epoch).
        batches = self._epoch_batches(position.epoch, position.batch)
        summed = phase.mode == "summed"
        tasks = phase.tasks
        check_every_step = self.distributed is None  # under DDP ranks agree at read-backs
        window.restart_clock()
        for batch in batches:
            cells = batch["index"].shape[0]
            for task in range(0 if summed else position.task, 1 if summed else len(tasks)):
                if check_every_step:
                    if control.pause_requested and (outcome := self._pause()) is not None:
                        return outcome
                    if control.stop_requested:
                        position.task = task
                        return "stopped"
                losses = self._summed_step(batch, tasks) if summed else self._step(batch, tasks[task])
                window.add(position.step, None if summed else task, losses, cells)
                position.step += 1
            position.task = 0
            position.batch += 1
            if len(window) >= self.log_every and (outcome := self._flush()) is not None:
                return outcome
        return self._flush()

    def _forward(self, compute):
        with self._autocast():
            return self._ddp(compute) if self._ddp is not None else compute()

    def _step(self, batch: dict, task: dict) -> dict:
        controller = self.controller
        if not self._split_step:
            return controller.train(batch, **task)
        losses = self._forward(lambda: controller.train(batch, suppress_backward=True, **task))
        controller.backward_step(losses["total"])
        return losses

    def _summed_step(self, batch: dict, tasks: list[dict]) -> dict:
        """One optimiser step on the sum of the tasks' totals; same-named terms add up too."""
        controller = self.controller

        def compute() -> dict:
            merged: dict[str, torch.Tensor] = {}
            for task in tasks:
                for term, value in controller.train(batch, suppress_backward=True, **task).items():
                    merged[term] = merged[term] + value if term in merged else value
            return merged

        losses = self._forward(compute)
        controller.backward_step(losses["total"])
        return losses

    def _pause(self) -> str | None:
        outcome = self._flush()  # readers see every step taken before the pause
        if outcome is not None:
            return outcome
        self._emit("paused", {})
        self._state = "paused"
        self.control.wait_while_paused()
        self._state = "running"
        if not self.control.stop_requested:
            self._emit("resumed", {})
        self._window.restart_clock()
        return None

    # -- read-back, NaN guard ----------------------------------------------------------------
    def _flush(self) -> str | None:
        """Read the window back, check it, and turn it into step events (one per step)."""
        if not len(self._window):
            return None
        readout = self._window.read_back()
        bad, stop = readout.bad is not None, False
        if self.distributed is not None:
            bad, stop = self.distributed.any(bad, self.control.stop_requested)
        if bad:
            return self._diverged(readout)
        self._emit_steps(readout, len(readout.rows))
        model, optimizer = self.controller.model, self.controller.optimizer
        self._snapshot.take(model, optimizer, self._position.step)
        if self._bar is not None:
            self._bar.feed()
        if self.distributed is not None and self.control.pause_requested and (outcome := self._pause()):
            return outcome
        return "stopped" if stop else None

    def _emit_steps(self, readout: Readout, count: int) -> None:
        position = self._position
        cells_per_s = readout.cells * self._world / readout.seconds if readout.seconds > 0 else float("nan")
        lr = self.controller.optimizer.param_groups[0]["lr"]
        records = []
        for step, task, cells, when, terms in readout.rows[:count]:
            data = {"cells": cells, "cells_per_s": cells_per_s, "lr": lr, **terms}
            if task is not None:
                data["task"] = task
            records.append(("step", step, position.epoch, self._phase, data, when))
        self.events.extend(records)

    def _diverged(self, readout: Readout) -> str:
        if readout.bad is None:
            index, message = len(readout.rows), "a loss became non-finite on another rank"
            term = step = None
        else:
            index, terms, value = readout.bad
            term, step = terms[0], readout.rows[index][0]
            message = f"loss term {term} became {value} at step {step} (epoch {self._position.epoch})"
            if len(terms) > 1:
                message += f" (also non-finite: {', '.join(terms[1:])})"
        self._emit_steps(readout, index)
        self._snapshot.restore(self.controller.model, self.controller.optimizer)
        restored = self._snapshot.step
        self._emit(
            "error",
            {
                "message": f"{message}; restored the weights from step {restored} and stopped",
                "term": term,
                "bad_step": step,
                "restored_step": restored,
            },
        )
        return "failed"

    # -- epoch end ---------------------------------------------------------------------------
    def _end_epoch(self, phase: Phase) -> str | None:
        position = self._position
        epoch = position.epoch
        position.epoch, position.batch, position.task = epoch + 1, 0, 0
        if self._val_index is not None:
            values = self._validate(phase)
            self._emit("validation", values, epoch=epoch)
            early = self.early_stopping
            if early is not None and early.update(values["total"], epoch, self.controller.model):
                early.restore(self.controller.model)
                self._emit(
                    "early_stop",
                    {"best_epoch": early.best_epoch, "best": early.best, "patience": early.patience},
                    epoch=epoch,
                )
                return "early_stopped"
        return None

    @torch.no_grad()
    def _validate(self, phase: Phase) -> dict[str, float]:
        """Cell-weighted mean of every term over the validation cells (and over ranks)."""
        sums: dict[str, torch.Tensor] = {}
        cells = 0
        for batch in self.batches.batches(
            self.batch_size, self._val_index, shuffle=False, rank=self._rank, world_size=self._world
        ):
            n = batch["index"].shape[0]
            if n == 0:
                continue
            cells += n
            with self._autocast():
                for task in phase.tasks:
                    for term, value in self.controller.evaluate(batch, **task).items():
                        sums[term] = sums.get(term, 0.0) + value.float() * n
        terms = sorted(sums)
        totals = torch.stack([sums[t] for t in terms] + [torch.tensor(float(cells), device=self.device)])
        if self.distributed is not None:
            self.distributed.sum_(totals)
        *values, n_cells = totals.cpu().tolist()
        return {**{t: v / n_cells for t, v in zip(terms, values)}, "cells": int(n_cells)}

    # -- checkpoints ---------------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        """Everything a resume needs: controller, config, position, early stopping, RNG states."""
        position = self._position
        return {
            "controller": self.controller.state_dict(),
            "config": self.controller.config(),
            "trainer": {
                "epoch": position.epoch,
                "batch": position.batch,
                "task": position.task,
                "step": position.step,
                "phase": self._phase,
                "seed": self.seed,
                "early_stopping": self.early_stopping.state_dict() if self.early_stopping else None,
            },
            "rng": rng_state(),
            # The seq the checkpoint's own event gets: a resume keeps the events up to it.
            "events": {"seq": self.events.next_seq},
        }

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write the current state to `path` (atomically); only rank 0 writes under DDP."""
        path = Path(path)
        if self._is_main:
            save_checkpoint(path, self.checkpoint_state())
            self._last_checkpoint = path
            self._checkpoint_at = astuple(self._position)
            self._emit("checkpoint", {"path": str(path)})
        return path

    def _write_checkpoint(self) -> None:
        if self.checkpoint_dir is not None:
            self.save_checkpoint(self.checkpoint_dir / LAST_CHECKPOINT)

    def _load(self, path: str | Path) -> None:
        state = load_checkpoint(path, map_location=self.device)
        # A longer run or another lr is a legitimate resume; a different model fails to load below.
        config = self.controller.config()
        changed = sorted(k for k in state["config"].keys() | config.keys() if state["config"].get(k) != config.get(k))
        if changed:
            warnings.warn(f"resuming {path} with a changed controller config: {', '.join(changed)}", stacklevel=4)
        check_model_fits(path, state["controller"].get("model", {}), self.controller.model.state_dict())
        self.controller.load_state_dict(state["controller"])
        trainer = state["trainer"]
        self._position = _Position(trainer["epoch"], trainer["batch"], trainer["task"], trainer["step"])
        self._phase = trainer["phase"]
        if self.early_stopping is not None and trainer["early_stopping"] is not None:
            self.early_stopping.load_state_dict(trainer["early_stopping"])
        set_rng_state(state["rng"])
        self._loaded_events_seq = state.get("events", {}).get("seq")
        last = self.checkpoint_dir / LAST_CHECKPOINT if self.checkpoint_dir is not None else None
        if last is not None and Path(path).resolve() == last.resolve():
            self._checkpoint_at = astuple(self._position)  # resumed in place: that file is current
            self._last_checkpoint = last

    def _continue_events(self, checkpoint_seq: int | None) -> None:
        """One event stream across resumes: the JSONL file keeps what happened up to the checkpoint
        (the resumed run redoes the rest) and the new events number on from there."""
        if checkpoint_seq is None or not self.jsonl or not self._is_main:
            return  # a checkpoint from before events were counted: append as before
        keep_events_until(self.jsonl, checkpoint_seq)
        if self.events.next_seq == 0:
            self.events.continue_from(checkpoint_seq + 1)

    def _finish(self, outcome: str) -> None:
        """Final checkpoint (if a folder was given) and the run's terminal event."""
        if self._checkpoint_at != astuple(self._position):
            self._write_checkpoint()
        if outcome == "stopped":
            self._emit("stopped", {"state": outcome})
        else:
            self._emit("finished", {"state": outcome})

    def _emit(self, kind: str, data: dict, *, epoch: int | None = None) -> None:
        position = self._position
        self.events.append(
            kind, step=position.step, epoch=position.epoch if epoch is None else epoch,
            phase=self._phase, data=data,
        )
