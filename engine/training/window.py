"""Loss values of the steps since the last read-back, kept on the device until they are needed.

Reading a loss back (`.item()`) forces the host to wait for the device, so doing it every step
stalls a GPU pipeline. Each step's terms are stacked into one small tensor that stays on the
device; `read_back` moves the whole window to the host in one transfer and turns it into rows.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Readout:
    rows: list[tuple[int, int | None, int, float, dict[str, float]]]  # step, task, cells, time, terms
    cells: int
    seconds: float
    bad: tuple[int, list[str], float] | None  # first row with a non-finite term: index, terms, value


def _culprit_first(term: str) -> tuple[int, str]:
    """Order non-finite terms so that the one to blame comes first: a loss term, then its raw
    value, then the total (which is non-finite whenever any of its parts is)."""
    return (2 if term == "total" else 1 if term.startswith("raw/") else 0, term)


class LossWindow:
    def __init__(self):
        self._rows: list[tuple[int, int | None, int, float, tuple[str, ...], torch.Tensor]] = []
        self._started = time.perf_counter()

    def __len__(self) -> int:
        return len(self._rows)

    def restart_clock(self) -> None:
        """Start timing from now (epoch start, after a pause), so idle time is not counted."""
        self._started = time.perf_counter()

    def add(self, step: int, task: int | None, losses: dict[str, torch.Tensor], cells: int) -> None:
        with torch.no_grad():
            values = torch.stack(list(losses.values()))
        self._rows.append((step, task, cells, time.time(), tuple(losses), values))

    def read_back(self) -> Readout:
        """Everything since the last read-back, with one device-to-host transfer; empties the window."""
        rows, self._rows = self._rows, []
        flat = torch.cat([values for *_, values in rows]).float().cpu().tolist() if rows else []
        now = time.perf_counter()
        seconds, self._started = now - self._started, now
        out, offset, bad, cells = [], 0, None, 0
        for index, (step, task, n, when, keys, _) in enumerate(rows):
            terms = dict(zip(keys, flat[offset : offset + len(keys)]))
            offset += len(keys)
            cells += n
            if bad is None:
                culprits = sorted((k for k, v in terms.items() if not math.isfinite(v)), key=_culprit_first)
                if culprits:
                    bad = (index, culprits, terms[culprits[0]])
            out.append((step, task, n, when, terms))
        return Readout(rows=out, cells=cells, seconds=seconds, bad=bad)
