"""The event stream of a training run: append-only, thread-safe, read by cursor.

The trainer appends; the app, tqdm, the JSONL writer and tests read the same stream, each keeping
its own cursor (the next `seq` it wants). Memory stays bounded on very long runs: the most recent
`recent_steps` step events are kept exactly; older step events move to an archive that keeps every
`stride`-th step of each task's series, doubling `stride` whenever the archive outgrows
`archived_steps`. Non-step events (validation, phases, checkpoints, errors, ...) are always kept.

A reader that falls more than `recent_steps` step events behind does not fail: for the stretch it
missed it receives every non-step event and whichever step events the archive still holds, in seq
order, and its new cursor jumps past the dropped ones. Gaps in `seq` are how it can tell.
"""
from __future__ import annotations

import threading
import time as _time
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter

import pandas as pd

EVENT_KINDS = frozenset(
    {
        "step",
        "validation",
        "phase_start",
        "phase_end",
        "checkpoint",
        "early_stop",
        "error",
        "stopped",
        "paused",
        "resumed",
        "finished",
    }
)
# Every run ends with exactly one of these; followers stop reading after it.
TERMINAL_KINDS = frozenset({"finished", "stopped", "error"})


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str
    step: int
    epoch: int
    phase: str
    time: float
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "step": self.step,
            "epoch": self.epoch,
            "phase": self.phase,
            "time": self.time,
            "data": self.data,
        }


_seq_of = attrgetter("seq")


class EventLog:
    """Append-only list of `Event`s with bounded memory; every method is safe from any thread."""

    def __init__(self, *, recent_steps: int = 20_000, archived_steps: int = 20_000):
        if recent_steps < 1 or archived_steps < 2:
            raise ValueError("recent_steps must be >= 1 and archived_steps >= 2")
        self.recent_steps = recent_steps
        self.archived_steps = archived_steps
        self._changed = threading.Condition()
        self._next_seq = 0
        # Recent events of every kind, contiguous in seq; `_head` marks the oldest still held, so
        # dropping from the front is O(1) and the list is compacted now and then.
        self._recent: list[Event] = []
        self._head = 0
        self._recent_steps = 0
        self._archive: list[Event] = []
        self._archive_ordinal: list[int] = []  # per-series ordinal of archived steps, -1 otherwise
        self._archived_steps = 0
        self._ordinals: dict = {}  # series (task) -> steps seen
        self._ordinal_of: dict[int, int] = {}  # seq -> ordinal, for steps still in the window
        self._stride = 1

    # -- writing ---------------------------------------------------------------------------
    def append(
        self,
        kind: str,
        *,
        step: int = 0,
        epoch: int = 0,
        phase: str = "",
        data: dict | None = None,
        time: float | None = None,
    ) -> Event:
        return self.extend([(kind, step, epoch, phase, data or {}, time)])[0]

    def extend(self, records: Iterable[tuple]) -> list[Event]:
        """Append several (kind, step, epoch, phase, data, time-or-None) under one lock."""
        with self._changed:
            out = []
            for kind, step, epoch, phase, data, when in records:
                if kind not in EVENT_KINDS:
                    raise ValueError(f"unknown event kind {kind!r}; known: {sorted(EVENT_KINDS)}")
                event = Event(
                    self._next_seq, kind, int(step), int(epoch), str(phase),
                    _time.time() if when is None else float(when), data,
                )
                self._next_seq += 1
                self._recent.append(event)
                if kind == "step":
                    series = data.get("task")
                    ordinal = self._ordinals.get(series, 0)
                    self._ordinals[series] = ordinal + 1
                    self._ordinal_of[event.seq] = ordinal
                    self._recent_steps += 1
                    while self._recent_steps > self.recent_steps:
                        self._retire_oldest()
                out.append(event)
            self._changed.notify_all()
            return out

    def _retire_oldest(self) -> None:
        event = self._recent[self._head]
        self._head += 1
        if event.kind == "step":
            self._recent_steps -= 1
            ordinal = self._ordinal_of.pop(event.seq)
            if ordinal % self._stride == 0:
                self._archive.append(event)
                self._archive_ordinal.append(ordinal)
                self._archived_steps += 1
                if self._archived_steps > self.archived_steps:
                    self._thin_archive()
        else:
            self._archive.append(event)
            self._archive_ordinal.append(-1)
        if self._head > 1024 and self._head * 2 > len(self._recent):
            del self._recent[: self._head]
            self._head = 0

    def _thin_archive(self) -> None:
        self._stride *= 2
        keep = [
            i for i, ordinal in enumerate(self._archive_ordinal)
            if ordinal < 0 or ordinal % self._stride == 0
        ]
        self._archive = [self._archive[i] for i in keep]
        self._archive_ordinal = [self._archive_ordinal[i] for i in keep]
        self._archived_steps = sum(1 for ordinal in self._archive_ordinal if ordinal >= 0)

    def continue_from(self, seq: int) -> None:
        """Number the first event `seq`: a resumed run carries on the stream of the run it resumes."""
        with self._changed:
            if self._next_seq:
                raise RuntimeError("continue_from() renumbers an empty log only")
            self._next_seq = int(seq)

    # -- reading ---------------------------------------------------------------------------
    def events_since(self, cursor: int = 0) -> tuple[list[Event], int]:
        """Events with seq >= cursor that are still held, and the cursor for the next call."""
        with self._changed:
            end = self._next_seq
            if cursor >= end:
                return [], end
            first_recent = self._recent[self._head].seq if self._head < len(self._recent) else end
            if cursor >= first_recent:
                return self._recent[self._head + cursor - first_recent :], end
            start = bisect_left(self._archive, cursor, key=_seq_of)
            return self._archive[start:] + self._recent[self._head :], end

    def wait(self, cursor: int, timeout: float | None = None) -> bool:
        """Block until an event with seq >= cursor exists (True) or the timeout passes (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._next_seq > cursor, timeout)

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def stride(self) -> int:
        """Every how many steps of a series the archive keeps (1 until it first overflows)."""
        return self._stride

    def __len__(self) -> int:
        with self._changed:
            return len(self._archive) + len(self._recent) - self._head

    def snapshot(self) -> list[Event]:
        return self.events_since(0)[0]

    def last(self, kind: str | None = None) -> Event | None:
        with self._changed:
            for events in (self._recent[self._head :], self._archive):
                for event in reversed(events):
                    if kind is None or event.kind == kind:
                        return event
            return None

    def frame(self, kind: str = "step") -> pd.DataFrame:
        """Events of one kind as a table: seq, step, epoch, phase, time, then one column per key."""
        rows = [
            {"seq": e.seq, "step": e.step, "epoch": e.epoch, "phase": e.phase, "time": e.time, **e.data}
            for e in self.snapshot()
            if e.kind == kind
        ]
        return pd.DataFrame.from_records(
            rows, columns=None if rows else ["seq", "step", "epoch", "phase", "time"]
        )

    def step_frame(self) -> pd.DataFrame:
        """Step events, one row per optimisation step and one column per loss term."""
        return self.frame("step")
