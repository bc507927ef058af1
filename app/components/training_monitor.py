"""The training area: start, pause and stop a run, and watch every loss move while it trains.

Training never happens here: Start builds an unstarted Trainer and hands it to the process-wide
REGISTRY, whose worker thread trains and appends to the run's EventLog. This component only reads
that log by cursor from a periodic callback (every 300 ms), so each poll streams just the points
that are new since the last one (see `LossCurves`). The session keeps that one callback until it
ends; a poll with nothing new does nothing.

A session follows only runs whose owner is its `StudioState.owner` (its user: every page of that
user lists the same runs below the chart, see `RunList`). In Jupyter, after
`pn.extension()`, `TrainingMonitor.for_run(handle)` follows a run submitted from Python and
`TrainingMonitor(events=log)` follows any EventLog (run that trainer in a thread or through the
registry: a cell that trains blocks the notebook's periodic callbacks until it ends).
"""
from __future__ import annotations

import math
from collections import deque

import panel as pn
import param

from app.components.loss_curves import LossCurves
from app.components.run_list import STATE_WORDS, RunList
from app.escape import markdown_text
from app.runs import REGISTRY, RESULT_STATES, WRITING, RunHandle
from app.state import StudioState
from app.words import roles_of, term_label
from engine.training import EventLog
from engine.training.events import TERMINAL_KINDS

POLL_MS = 300
SPEED_STEPS = 200  # speed and time left are measured over this many recent steps
NOT_LOSSES = frozenset({"cells", "cells_per_s", "lr", "task"})  # step data that is not a loss term
ACTIVE = frozenset({"queued", "running", "paused"})
BUSY = ACTIVE | {WRITING}  # no new run of this page's model before the last one's results are written
EXPLORE_TAB = "4 · Explore"
POPULATIONS_TAB = "4 · Populations"
INTEGRATE_TAB = "4 · Integrate"
MODEL_TAB = "2 · Model"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class TrainingMonitor(pn.viewable.Viewer):
    """Start / Pause / Stop, live per-term loss curves, progress, run state and errors."""

    state = param.ClassSelector(class_=StudioState, allow_None=True, doc="The session whose model is trained.")
    training_options = param.Callable(
        default=lambda: {}, doc="Returns the keyword arguments of state.model.trainer(...) at Start."
    )
    run = param.ClassSelector(class_=RunHandle, allow_None=True, doc="The registry run being followed.")
    events = param.ClassSelector(class_=EventLog, allow_None=True, doc="The event stream being read.")
    points = param.Integer(default=0, bounds=(0, None), doc="Loss points received so far, over all terms.")
    run_state = param.String(default="", doc="queued, running, paused, finished, stopped, failed, ...")
    message = param.String(default="", doc="Why the last button press did nothing.")
    error = param.String(default="", doc="Why the run failed.")

    def __init__(self, state: StudioState | None = None, training_options=None, options_view=None, **params):
        """`options_view`, when given, is shown above the buttons (the shared training options)."""
        if training_options is not None:
            params["training_options"] = training_options
        super().__init__(state=state, **params)
        self._options_view = options_view
        if self.run is not None:
            self.events = self.run.events
        self.curves = LossCurves()
        self._cursor = 0
        self._ended: str | None = None  # how the run ended, from its terminal event
        self._last_step = None  # the latest step event
        self._recent = deque(maxlen=SPEED_STEPS)  # (time, cells) of the latest steps since a pause
        self._total_steps = self.run.total_steps if self.run is not None else None
        self._callback = None
        self.run_list = RunList(self.state) if self.state is not None else None
        self._build_widgets()
        if self.state is not None:
            self.state.param.watch(self._follow_state, "run_id")
            self._follow_state()
        self._refresh()

    @classmethod
    def for_run(cls, handle: RunHandle, **params) -> "TrainingMonitor":
        """Follow a run submitted from Python (no Start button: it is already submitted)."""
        return cls(run=handle, **params)

    # -- the page --------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self._start = pn.widgets.Button(label="Start", color="primary", css_classes=["hanami-start"],
                                        visible=self.state is not None, width=100)
        self._pause = pn.widgets.Button(label="Pause", color="default", css_classes=["hanami-pause"], width=100)
        self._stop = pn.widgets.Button(label="Stop", color="danger", css_classes=["hanami-stop"], width=100)
        self._pause.visible = self._stop.visible = self.state is not None or self.run is not None
        self._start.on_click(lambda event: self.start())
        self._pause.on_click(lambda event: self.toggle_pause())
        self._stop.on_click(lambda event: self.stop())
        self._state_text = pn.pane.Markdown("", css_classes=["hanami-run-state"], margin=(10, 10))
        self._progress = pn.indicators.Progress(value=0, max=1000, bar_color="primary", active=False,
                                                sizing_mode="stretch_width", height=20)
        self._progress_text = pn.pane.Markdown("", css_classes=["hanami-progress"], margin=(0, 10))
        self._message = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["hanami-message"])
        self._error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["hanami-error"])
        self._next = pn.pane.Alert("", alert_type="info", visible=False, css_classes=["hanami-next-step"])
        self._layout = pn.Column(
            *([self._options_view] if self._options_view is not None else []),
            pn.Row(self._start, self._pause, self._stop, self._state_text),
            self._message,
            self._error,
            self._next,
            self._progress,
            self._progress_text,
            self.curves,
            *([self.run_list] if self.run_list is not None else []),
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        self._start_polling()
        return self._layout

    # -- actions ---------------------------------------------------------------------------
    def start(self) -> RunHandle | None:
        """Submit the session's model to the registry; the worker thread does the training."""
        self.message = ""
        if self.state is None:
            self.message = "This monitor follows a run started elsewhere; it has no model to start."
            return None
        if self.state.model is None:
            self.message = f"Build a model first (in {MODEL_TAB}, press Build model): there is nothing to train yet."
            return None
        if self.run is not None and self.run.state in BUSY:
            self.message = f"{self.run.id} is still {self.run.state}: stop it before starting another."
            return None
        model = self.state.model
        try:
            trainer = model.trainer(**{**self.training_options(), "progress": False})
        except Exception as error:  # a bad option: say which, keep the model as it was
            self.message = f"Could not start training: {error}"
            return None
        try:
            handle = REGISTRY.submit(owner=self.state.owner, name=model.name, model=model, trainer=trainer,
                                     adata=self.state.adata, dataset=self.state.dataset)
        except ValueError as error:  # this model trains in another run (another tab of this user)
            self.message = f"Could not start training: {error}."
            return None
        self.state.run_id = handle.id  # _follow_state attaches to it
        return handle

    def toggle_pause(self) -> None:
        if self.run is None:
            return
        if self.run.state == "paused":
            self.run.resume()
        else:
            self.run.pause()
        self.poll()

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop()
            self.poll()

    # -- following a run -------------------------------------------------------------------
    def _follow_state(self, *_) -> None:
        run_id = self.state.run_id
        handle = REGISTRY.get(run_id) if run_id else None
        if run_id and handle is None:
            self.message = f"No run called {run_id} in this server."
        elif handle is not None and handle.owner != self.state.owner:
            self.message = f"{run_id} belongs to another session."
        elif handle is not self.run:
            self._attach(handle)

    def _attach(self, handle: RunHandle | None) -> None:
        """Follow another run from its first event, on an empty chart."""
        self.run = handle
        self.events = handle.events if handle is not None else None
        self._cursor, self._ended, self._last_step = 0, None, None
        self._recent.clear()
        self._total_steps = handle.total_steps if handle is not None else None
        self.points = 0
        self.error = ""
        self.curves.clear()
        roles = roles_of(handle.model) if handle is not None else {}
        self.curves.namer = lambda term: term_label(term, roles)  # a removed batch reads as removed
        self._refresh()

    def poll(self) -> int:
        """Draw the events appended since the last poll; returns how many loss points that was.

        The session's periodic callback calls it; tests call it directly.
        """
        if self.state is not None:
            REGISTRY.seen(self.state.owner)
            self.run_list.refresh()
        if self.events is None:
            return 0
        # Both read before the events: once a run is over its last events are in this read, and a
        # final state is never shown ahead of the points that led to it.
        over, shown = self._over(), self.run.state if self.run is not None else None
        new, self._cursor = self.events.events_since(self._cursor)
        points: dict[str, tuple[list[int], list[float]]] = {}
        for event in new:
            if event.kind == "step":
                self._last_step = event
                self._recent.append((event.time, event.data.get("cells", 0)))
                for term, value in event.data.items():
                    if term not in NOT_LOSSES:
                        steps, values = points.setdefault(term, ([], []))
                        steps.append(event.step)
                        values.append(value)
            elif event.kind == "error":
                self.error = event.data.get("message", "training failed")
            elif event.kind in ("paused", "resumed"):
                self._recent.clear()  # a pause is not training time
            if event.kind in TERMINAL_KINDS:
                self._ended = "failed" if event.kind == "error" else event.data.get("state", event.kind)
        added = self._stream(points) if points else 0
        if added:
            self.points += added
        if new or not over or (shown is not None and shown != self.run_state):
            self._refresh(shown)
        return added

    def _stream(self, points) -> int:
        """Stream onto the chart; in a server under the document lock, in Jupyter pushed by comm."""
        doc = pn.state.curdoc
        if doc is not None and doc.session_context:
            added = sum(len(values) for _, values in points.values())
            pn.state.execute(lambda: self._add_unlocked(points))
            return added
        added = self.curves.add(points)
        pn.io.push_notebook(self.curves.chart)
        return added

    def _add_unlocked(self, points) -> None:
        """Send the points at once, as Panel sends the state line that follows them. Left to
        Bokeh, they would be written after the callback, so a page could show "stopped" before
        the last points that led to it."""
        with pn.io.unlocked():
            self.curves.add(points)

    def _over(self) -> bool:
        return self.run.done if self.run is not None else self._ended is not None

    # -- the periodic callback -------------------------------------------------------------
    def _start_polling(self) -> None:
        """One callback for the session's life, created while the page is built.

        Created later, from inside a button's callback, Panel 1.9 registers a periodic callback that
        never fires in a served page (seen in the studio); a poll with nothing new costs microseconds.
        """
        if self._callback is not None:
            return
        self._callback = pn.state.add_periodic_callback(self.poll, period=POLL_MS)
        doc = pn.state.curdoc
        if doc is not None and doc.session_context:
            pn.state.on_session_destroyed(lambda context: self._stop_polling())

    def _stop_polling(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    # -- what the page says ----------------------------------------------------------------
    def _current_state(self) -> str:
        if self.run is not None:
            return self.run.state
        if self._ended is not None:
            return self._ended
        return "running" if self._last_step is not None else ""

    def _refresh(self, state: str | None = None) -> None:
        """Show `state` (by default the current one) in the buttons, state line and progress."""
        state = self.run_state = state or self._current_state()
        if self.run is not None and self.run.error:
            self.error = self.run.error
        if self.run is not None and self.run.note and not self.message:
            self.message = self.run.note
        self._start.disabled = state in BUSY
        self._pause.disabled = state not in ("running", "paused")
        self._pause.label = "Resume" if state == "paused" else "Pause"
        self._stop.disabled = state not in ACTIVE
        self._state_text.object = self._describe_state(state)
        self._show_progress(state)
        self._show_next_step(state)

    @param.depends("message", "error", watch=True)
    def _show_alerts(self) -> None:
        # both may quote a file, column or gene name the user chose: shown as text, never as HTML
        self._message.object, self._message.visible = markdown_text(self.message), bool(self.message)
        self._error.object, self._error.visible = markdown_text(self.error), bool(self.error)

    def _describe_state(self, state: str) -> str:
        if not state:
            return "No run yet." if self.state is not None else "Waiting for events."
        label = STATE_WORDS.get(state, state)
        if self.run is None:
            return f"**{label}**"
        if state == WRITING:  # training has ended: say how, and that its results are on their way
            label = STATE_WORDS.get(self.run.ending, self.run.ending)
        text = f"**{self.run.id}** on {markdown_text(self.run.device)}: **{label}**"
        if state == WRITING:
            text += ", writing its results into the cells…"
        if state == "queued":
            ahead = REGISTRY.queue_ahead(self.run)
            if ahead:
                names = ", ".join(run.id for run in ahead)
                text += f" behind {len(ahead)} run{'s' if len(ahead) > 1 else ''} on this device ({names})"
        return text

    def next_step(self, state: str | None = None) -> str:
        """What to do now that the followed run is over (plain text); '' while it is not."""
        state = state or self.run_state
        if self.run is None:
            return ""
        if state in RESULT_STATES and self.run.adata is not None:  # the run wrote its embeddings into its cells
            model = self.run.model
            if model.family == "flow":
                return (f"Next: open {POPULATIONS_TAB}: the cells are coloured by population; move the threshold "
                        "to leave more or fewer cells unknown, and select cells to see why they got their label.")
            if model.family == "sysvi":
                return (f"Next: open {INTEGRATE_TAB}: the cells before and after integration side by side, "
                        "coloured by system or by a label, and the integration scores before and after.")
            keys = [f"X_{model.name}_{latent}" for latent in model.latent_names]
            others = f" (also: {', '.join(keys[1:])})" if len(keys) > 1 else ""
            return (f"Next: the new embeddings are in {EXPLORE_TAB}. Choose {keys[0]} under Embedding{others}, "
                    "then press UMAP to see the structure; colour the cells by an annotation to check it.")
        if state == "failed":
            return f"Next: read the reason above, change the settings in {MODEL_TAB}, build again and press Start."
        return ""

    def _show_next_step(self, state: str) -> None:
        text = self.next_step(state)
        # the embeddings' names come from the user's annotation and gene set names: text, never markup
        self._next.object, self._next.visible = markdown_text(text), bool(text)

    def _show_progress(self, state: str) -> None:
        step = self._last_step
        total = self._total_steps
        self._progress.active = state == "running"
        if step is None:
            self._progress.value = 0
            self._progress_text.object = ""
            return
        done = step.step + 1
        if total:
            finished = state in ("finished", "early_stopped")
            self._progress.value = 1000 if finished else min(1000, int(1000 * done / total))
        else:
            self._progress.value = -1 if state == "running" else 0
        n_epochs = self.run.total_epochs if self.run is not None else None
        parts = [f"epoch {step.epoch + 1}" + (f" / {n_epochs}" if n_epochs else ""),
                 f"step {done:,}" + (f" / {total:,}" if total else "")]
        speed, seconds_per_step = self._speed()
        if math.isfinite(speed) and speed > 0:
            parts.append(f"{speed:,.0f} cells/s")
        if total and state == "running" and math.isfinite(seconds_per_step):
            parts.append(f"about {_duration((total - done) * seconds_per_step)} left")
        self._progress_text.object = " · ".join(parts)

    def _speed(self) -> tuple[float, float]:
        """Cells per second and seconds per step over the recent steps (epoch ends and validation
        included, so the time left is honest); the trainer's own figure until two steps are in."""
        if len(self._recent) < 2:
            return self._last_step.data.get("cells_per_s", math.nan), math.nan
        (first, _), (last, _) = self._recent[0], self._recent[-1]
        span = last - first
        if span <= 0:
            return math.nan, math.nan
        cells = sum(n for _, n in list(self._recent)[1:])
        return cells / span, span / (len(self._recent) - 1)
