"""A thread that reads an EventLog by cursor until the run's last event, as the studio does."""
import threading

from engine.training.events import TERMINAL_KINDS


def follow(log) -> tuple[threading.Thread, list[int]]:
    """Start the reader; returns the thread and the list of seqs it has seen so far."""
    seen: list[int] = []

    def read():
        cursor = 0
        while True:
            log.wait(cursor, timeout=1.0)
            new, cursor = log.events_since(cursor)
            seen.extend(e.seq for e in new)
            if any(e.kind in TERMINAL_KINDS for e in new):
                return

    reader = threading.Thread(target=read)
    reader.start()
    return reader, seen
