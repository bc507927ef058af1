"""The process-wide registry of training runs.

Runs belong to the server process, not to a browser tab: a reload or a second tab finds them
again, and a GPU job is not lost with its page. Each device trains one run at a time in its own
worker thread; later runs wait in a visible queue. Workers never touch a widget: pages poll each
run's EventLog by cursor.
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
import traceback
from dataclasses import dataclass, field

import torch

from engine.guided import GuidedModel
from engine.training import Trainer, TrainingRun

FINAL_STATES = {"finished", "stopped", "failed", "early_stopped", "cancelled"}


@dataclass(eq=False)
class RunHandle:
    """One submitted run: its model, trainer, event stream and where it stands."""

    id: str
    owner: str
    name: str
    model: GuidedModel
    trainer: Trainer
    state: str = "queued"
    error: str | None = None
    result: TrainingRun | None = None
    _cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def events(self):
        return self.trainer.events

    @property
    def device(self) -> str:
        return str(self.trainer.device)

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    def stop(self) -> None:
        """Stop after the current step (the model keeps what it learnt); a queued run is dropped.

        The trainer is told too, in case the worker takes the queued run at this very moment:
        it then stops before its first step instead of training to the end.
        """
        if self.state == "queued":
            self._cancelled.set()
            self.state = "cancelled"
        self.trainer.stop()

    def pause(self) -> None:
        if self.state == "running":
            self.trainer.pause()
            self.state = "paused"

    def resume(self) -> None:
        if self.state == "paused":
            self.state = "running"
            self.trainer.resume()


class RunRegistry:
    """Runs by id, one worker thread and queue per device."""

    def __init__(self):
        self._runs: dict[str, RunHandle] = {}
        self._queues: dict[str, queue.Queue] = {}
        self._waiting: dict[str, list[RunHandle]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def submit(self, owner: str, name: str, model: GuidedModel, trainer: Trainer) -> RunHandle:
        with self._lock:
            handle = RunHandle(id=f"run-{next(self._ids)}", owner=owner, name=name, model=model, trainer=trainer)
            self._runs[handle.id] = handle
            device = handle.device
            if device not in self._queues:
                self._queues[device] = queue.Queue()
                self._waiting[device] = []
                threading.Thread(target=self._work, args=(device,), name=f"runs:{device}", daemon=True).start()
            self._waiting[device].append(handle)
            self._queues[device].put(handle)
        return handle

    def get(self, run_id: str) -> RunHandle | None:
        return self._runs.get(run_id)

    def runs_of(self, owner: str) -> list[RunHandle]:
        return [run for run in self._runs.values() if run.owner == owner]

    def queue_ahead(self, handle: RunHandle) -> list[RunHandle]:
        """The runs that hold or wait for this run's device before it."""
        with self._lock:
            waiting = self._waiting.get(handle.device, [])
            if handle not in waiting:
                return []
            return [run for run in waiting[: waiting.index(handle)] if not run.done]

    def _work(self, device: str) -> None:
        if device == "cpu":
            # Leave a core to the server's event loop (and the browser on a laptop): with every
            # core in torch's pool, the pool's threads spin against the page's work and both crawl.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
        while True:
            handle = self._queues[device].get()
            if not handle._cancelled.is_set():
                self._train(handle)
            with self._lock:
                self._waiting[device].remove(handle)

    @staticmethod
    def _train(handle: RunHandle) -> None:
        handle.state = "running"
        try:
            handle.result = handle.trainer.run()
            handle.model.record(handle.result)
            handle.state = handle.result.state
            if handle.result.state == "failed":
                handle.error = (handle.events.last("error").data or {}).get("message", "training failed")
        except Exception as error:  # the page shows it; the worker keeps serving the queue
            handle.state = "failed"
            handle.error = f"{type(error).__name__}: {error}"
            traceback.print_exc()


REGISTRY = RunRegistry()
