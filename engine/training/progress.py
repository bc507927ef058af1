"""A tqdm progress bar fed by the event stream (steps advance it; the postfix shows the total
loss and cells per second). `tqdm.auto` draws a widget in notebooks and text in terminals."""
from __future__ import annotations

import sys

from tqdm.auto import tqdm

from engine.training.events import EventLog


def progress_enabled(setting: bool | str) -> bool:
    """True/False as given; "auto" means a terminal on stderr or a Jupyter kernel."""
    if setting == "auto":
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        in_notebook = shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
        return in_notebook or sys.stderr.isatty()
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"progress must be True, False or 'auto', got {setting!r}")


class ProgressBar:
    def __init__(self, events: EventLog, *, total: int, initial: int):
        self._events = events
        self._cursor = events.next_seq
        self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def feed(self) -> None:
        """Advance by the step events appended since the last call."""
        new, self._cursor = self._events.events_since(self._cursor)
        steps = [event for event in new if event.kind == "step"]
        if steps:
            last = steps[-1].data
            self._bar.set_postfix(
                loss=f"{last.get('total', float('nan')):.4g}",
                cells_per_s=f"{last.get('cells_per_s', 0.0):.0f}",
                refresh=False,
            )
            self._bar.update(len(steps))

    def close(self) -> None:
        self.feed()
        self._bar.close()
