"""The user's runs: every run they started from any page, with Open, Stop and Remove.

A reload or a second tab lists the same runs, so a run is never out of its user's reach: a run
left running in a closed tab is stopped here, and a finished one can be opened (its cells with
the results written into them, its model and curves) or removed to free its memory.
"""
from __future__ import annotations

import time

import panel as pn

from app.escape import markdown_text
from app.runs import REGISTRY, RunHandle, RunRegistry
from app.state import StudioState

STATE_WORDS = {"early_stopped": "stopped early", "cancelled": "cancelled before it started"}


class RunList(pn.viewable.Viewer):
    """One row per run of `state.owner`, newest first; `refresh()` redraws only when a run changed."""

    def __init__(self, state: StudioState, registry: RunRegistry = REGISTRY):
        super().__init__()
        self.state = state
        self.registry = registry
        self._shown: tuple | None = None
        self._rows = pn.Column(sizing_mode="stretch_width", css_classes=["hanami-runs"])
        self.refresh()

    def refresh(self) -> None:
        runs = self.registry.runs_of(self.state.owner)
        shown = tuple((run.id, run.state, run.id == self.state.run_id) for run in runs)
        if shown == self._shown:
            return
        self._shown = shown
        self._rows.objects = [self._row(run) for run in reversed(runs)] or [
            pn.pane.Markdown("No runs yet: build a model in 2 · Model, then press Start above.",
                             styles={"color": "#666"})
        ]

    def _row(self, run: RunHandle) -> pn.Row:
        followed = run.id == self.state.run_id
        started = time.strftime("%H:%M", time.localtime(run.submitted))
        on = f" on {markdown_text(run.dataset)}" if run.dataset else ""
        text = (f"**{run.id}** · {markdown_text(run.name)}{on} · started {started} · "
                f"**{STATE_WORDS.get(run.state, run.state)}**" + (" · shown above" if followed else ""))
        open_button = pn.widgets.Button(label="Open", width=80, disabled=followed,
                                        description="Show this run's curves, and its cells with the embeddings it "
                                                    "learnt (in 4 · Explore)")
        stop = pn.widgets.Button(label="Stop", color="danger", width=80, visible=not run.done,
                                 description="Stop after the current step; the model keeps what it learnt")
        remove = pn.widgets.Button(label="Remove", width=80, visible=run.done,
                                   description="Forget this run and free its memory")
        open_button.on_click(lambda _: self.state.open_run(run))
        stop.on_click(lambda _: self._stop(run))
        remove.on_click(lambda _: self._remove(run))
        return pn.Row(open_button, stop, remove, pn.pane.Markdown(text, margin=(5, 10)),
                      css_classes=["hanami-run-row", f"hanami-run-{run.id}"], sizing_mode="stretch_width")

    def _stop(self, run: RunHandle) -> None:
        run.stop()
        self.refresh()

    def _remove(self, run: RunHandle) -> None:
        if self.registry.remove(run.id) and self.state.run_id == run.id:
            self.state.run_id = None
        self.refresh()

    def __panel__(self):
        return pn.Column("#### Your runs", self._rows, sizing_mode="stretch_width")
