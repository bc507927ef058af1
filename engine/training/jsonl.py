"""Events as JSON lines: one object per event, read from an EventLog by cursor.

Non-finite floats become null (JSON has no NaN), anything else JSON does not know becomes its
string form, so a line is always valid JSON.
"""
from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

from engine.training.events import Event, EventLog


def _plain(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def event_line(event: Event) -> str:
    return json.dumps(_plain(event.to_dict()), allow_nan=False)


def write_jsonl(events: EventLog, path: str | os.PathLike, cursor: int = 0) -> int:
    """Append the events from `cursor` on to `path`; returns the cursor for the next call."""
    new, cursor = events.events_since(cursor)
    if new:
        with open(path, "a", encoding="utf-8") as stream:
            stream.writelines(event_line(event) + "\n" for event in new)
    return cursor


def keep_events_until(path: str | os.PathLike, last_seq: int) -> int:
    """Cut an event file back to its events up to seq `last_seq`; returns how many remain.

    What follows them (a killed run's steps after its checkpoint, a half-written last line, the
    end of a stopped run) is what the resumed run does again, so it would appear twice.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            seq = json.loads(line)["seq"]
        except (ValueError, KeyError, TypeError):
            break
        if not line.endswith("\n") or seq > last_seq:
            break
        kept.append(line)
    if len(kept) < len(lines):
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text("".join(kept), encoding="utf-8")
        os.replace(temporary, path)
    return len(kept)


class JsonlFollower:
    """A thread that appends new events to a file every `interval` seconds (one open per batch of
    events, not per event), until `close()` drains the rest and stops it."""

    def __init__(
        self, events: EventLog, path: str | os.PathLike, cursor: int | None = None, interval: float = 0.25
    ):
        self.events = events
        self.path = Path(path)
        self.cursor = events.next_seq if cursor is None else cursor
        self.interval = interval
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"jsonl:{self.path.name}", daemon=True)

    def start(self) -> "JsonlFollower":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._closing.wait(self.interval):
            self.cursor = write_jsonl(self.events, self.path, self.cursor)

    def close(self) -> None:
        self._closing.set()
        self._thread.join()
        self.cursor = write_jsonl(self.events, self.path, self.cursor)
