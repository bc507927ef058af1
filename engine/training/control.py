"""Stop and pause requests, made from any thread and honoured by the worker between steps.

The worker only checks two `threading.Event`s per step (tens of nanoseconds), and a paused worker
blocks on one of them instead of polling, so a paused run costs no CPU.
"""
from __future__ import annotations

import threading


class RunControl:
    def __init__(self):
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        """Ask the run to end after the current step; wakes a paused worker so it can stop."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def pause_requested(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> None:
        self._running.wait()

    def reset(self) -> None:
        """Forget requests once a run has ended, so the next run starts clean."""
        self._stop.clear()
        self._running.set()
