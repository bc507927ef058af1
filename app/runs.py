"""The process-wide registry of training runs.

Runs belong to their user (`app.users.session_owner`), not to a browser tab: a reload or a
second tab finds them again, and a GPU job is not lost with its page. Each device trains one run
at a time in its own worker thread; later runs wait in a visible queue. Workers never touch a
widget: pages poll each run's EventLog by cursor.

When a run ends, its worker writes the model's results into the cells the run trained on, then
releases what only training needed (the trainer with its weight snapshot, the optimiser's
moments, the gradients); the run keeps its weights, events and results until its user removes it.
A run whose user has had no page open for `unwatched_after_s` is stopped (keeping what it learnt)
when it is paused or when other runs wait for its device, so nobody can hold a device unseen.
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field

import torch
from anndata import AnnData

from engine.data.errors import InputError
from engine.families import FamilyModel
from engine.training import EventLog, Trainer, TrainingRun

FINAL_STATES = {"finished", "stopped", "failed", "early_stopped", "cancelled"}
RESULT_STATES = {"finished", "stopped", "early_stopped"}
# Training has ended (`ending` says how) and the worker writes the results into the cells: the page
# says so at once, instead of waiting seconds on a million cells to show that Stop took effect.
WRITING = "writing"
UNWATCHED_VAR = "HANAMI_UNWATCHED_MINUTES"
DEFAULT_UNWATCHED_MINUTES = 30.0
REAP_EVERY_S = 10.0


@dataclass(eq=False)
class RunHandle:
    """One submitted run: its model, trainer (until it ends), event stream and where it stands.

    `adata` is the cells the run trains on (the run's results are written into them when it ends)
    and `dataset` what the user calls them; both are optional for runs submitted from Python.
    """

    id: str
    owner: str
    name: str
    model: FamilyModel
    trainer: Trainer | None
    adata: AnnData | None = None
    dataset: str = ""
    state: str = "queued"
    error: str | None = None
    note: str = ""
    result: TrainingRun | None = None
    ending: str = ""  # how training ended, while the results are being written
    submitted: float = field(default_factory=time.time)
    events: EventLog = field(init=False)
    device: str = field(init=False)
    total_steps: int = field(init=False)
    total_epochs: int = field(init=False)
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _ended: threading.Event = field(default_factory=threading.Event)  # set once `state` is final

    def __post_init__(self):
        # Kept on the handle so that a finished run can let its trainer go.
        self.events = self.trainer.events
        self.device = str(self.trainer.device)
        self.total_steps = self.trainer.total_steps
        self.total_epochs = self.trainer.story.total_epochs

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run's state is final (results written, device free); False on timeout."""
        return self._ended.wait(timeout)

    def stop(self, note: str = "") -> None:
        """Stop after the current step (the model keeps what it learnt); a queued run is dropped.

        The trainer is told too, in case the worker takes the queued run at this very moment:
        it then stops before its first step instead of training to the end.
        """
        if self.done:
            return
        self.note = note or self.note
        if self.state == "queued":
            self._cancelled.set()
            self.state = "cancelled"
        trainer = self.trainer
        if trainer is not None:
            trainer.stop()

    def pause(self) -> None:
        trainer = self.trainer  # None once the run has ended, whatever its state says yet
        if self.state == "running" and trainer is not None:
            trainer.pause()
            self.state = "paused"

    def resume(self) -> None:
        trainer = self.trainer
        if self.state == "paused" and trainer is not None:
            self.state = "running"
            trainer.resume()

    def release(self) -> None:
        """Let go of what only training needs; weights, events and results stay.

        A later run of the same model starts with fresh optimiser moments.
        """
        self.trainer = None
        self.model.controller.optimizer.state.clear()
        self.model.controller.model.zero_grad(set_to_none=True)


class RunRegistry:
    """Runs by id, one worker thread and queue per device, and who last had a page open."""

    def __init__(self, unwatched_after_s: float | None = None, clock=time.monotonic):
        if unwatched_after_s is None:
            minutes = float(os.environ.get(UNWATCHED_VAR) or DEFAULT_UNWATCHED_MINUTES)
            unwatched_after_s = minutes * 60
        self.unwatched_after_s = unwatched_after_s
        self._clock = clock
        self._runs: dict[str, RunHandle] = {}
        self._queues: dict[str, queue.Queue] = {}
        self._waiting: dict[str, list[RunHandle]] = {}
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._reaper: threading.Thread | None = None

    def submit(self, owner: str, name: str, model: FamilyModel, trainer: Trainer, *, adata: AnnData | None = None,
               dataset: str = "") -> RunHandle:
        """Queue a run on its trainer's device. A model trains in one run at a time."""
        with self._lock:
            busy = [run.id for run in self._runs.values() if run.model is model and not run.done]
            if busy:
                raise ValueError(f"this model is already training in {busy[0]}; stop that run first")
            handle = RunHandle(id=f"run-{next(self._ids)}", owner=owner, name=name, model=model, trainer=trainer,
                               adata=adata, dataset=dataset)
            self._runs[handle.id] = handle
            self._seen[owner] = self._clock()
            device = handle.device
            if device not in self._queues:
                self._queues[device] = queue.Queue()
                self._waiting[device] = []
                threading.Thread(target=self._work, args=(device,), name=f"runs:{device}", daemon=True).start()
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap_forever, name="runs:reaper", daemon=True)
                self._reaper.start()
            self._waiting[device].append(handle)
            self._queues[device].put(handle)
        return handle

    def get(self, run_id: str) -> RunHandle | None:
        return self._runs.get(run_id)

    def runs_of(self, owner: str) -> list[RunHandle]:
        """The owner's runs, oldest first."""
        with self._lock:
            return [run for run in self._runs.values() if run.owner == owner]

    def latest_of(self, owner: str) -> RunHandle | None:
        """The run a new page of this owner should show: the newest still going, else the newest."""
        runs = self.runs_of(owner)
        going = [run for run in runs if not run.done]
        return (going or runs or [None])[-1]

    def holds_results(self, model: FamilyModel, adata: AnnData) -> bool:
        """Whether `adata` holds `model`'s results as they are now: the newest run of the model ended
        with a model worth keeping and its worker wrote them into these very cells (nothing has
        trained the model since). An export then writes the cells as they are, without encoding
        every cell again. While that worker is still writing them, waits for it (call this off the
        event loop)."""
        with self._lock:
            runs = [run for run in self._runs.values() if run.model is model]
        if not runs or runs[-1].adata is not adata:
            return False
        newest = runs[-1]
        if newest.state == WRITING:
            newest.wait()
        return newest.state in RESULT_STATES

    def remove(self, run_id: str) -> bool:
        """Forget a run that has ended (its model, events and cells go with it unless a page holds them)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or not run.done:
                return False
            del self._runs[run_id]
            return True

    def seen(self, owner: str) -> None:
        """A page of this owner is open (each page's poll says so)."""
        self._seen[owner] = self._clock()

    def queue_ahead(self, handle: RunHandle) -> list[RunHandle]:
        """The runs that hold or wait for this run's device before it."""
        with self._lock:
            waiting = self._waiting.get(handle.device, [])
            if handle not in waiting:
                return []
            return [run for run in waiting[: waiting.index(handle)] if not run.done]

    def reap(self) -> list[RunHandle]:
        """Stop unwatched runs that are paused or hold a device others wait for; returns them."""
        now = self._clock()
        with self._lock:
            unwatched = [
                run for run in self._runs.values()
                if run.state in ("running", "paused") and now - self._seen.get(run.owner, now) > self.unwatched_after_s
            ]
            blocking = {run for run in unwatched if len([r for r in self._waiting.get(run.device, []) if not r.done]) > 1}
        minutes = f"{self.unwatched_after_s / 60:g} min"
        stopped = []
        for run in unwatched:
            if run.state == "paused":
                run.stop(f"Stopped by the server: it was paused and no page of yours was open for {minutes}.")
            elif run in blocking:
                run.stop(f"Stopped by the server: other runs waited for {run.device} and no page of yours "
                         f"was open for {minutes}.")
            else:
                continue
            stopped.append(run)
        return stopped

    def _reap_forever(self) -> None:
        while True:
            time.sleep(REAP_EVERY_S)
            self.reap()

    def _work(self, device: str) -> None:
        if device == "cpu":
            # Leave a core to the server's event loop (and the browser on a laptop): with every
            # core in torch's pool, the pool's threads spin against the page's work and both crawl.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
        while True:
            handle = self._queues[device].get()
            final = "cancelled" if handle._cancelled.is_set() else self._train(handle)
            handle.release()
            with self._lock:
                self._waiting[device].remove(handle)
            handle.state = final  # last: a page that sees the end finds the results and the device free
            handle._ended.set()
            del handle  # the idle worker must not keep the last run alive

    @staticmethod
    def _train(handle: RunHandle) -> str:
        """Train and write the results into the run's cells; returns how the run ended."""
        handle.state = "running"
        try:
            result = handle.trainer.run()
            handle.model.record(result)
            if result.state in RESULT_STATES and handle.adata is not None:
                handle.ending, handle.state = result.state, WRITING
                handle.model.write(handle.adata)
            if result.state == "failed":
                handle.error = (handle.events.last("error").data or {}).get("message", "training failed")
            handle.result = result
            return result.state
        except Exception as error:  # the page shows it; the worker keeps serving the queue
            handle.error = str(error) if isinstance(error, InputError) else f"Training stopped on an error: {error}"
            traceback.print_exc()
            return "failed"


REGISTRY = RunRegistry()
