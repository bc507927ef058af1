"""TrainingMonitor without a browser: runs go through the registry, polls draw every point once."""
import time

import anndata as ad
import numpy as np
import pandas as pd
import panel as pn
import pytest

import engine
from app.components.loss_curves import LossCurves, ema
from app.components.training_monitor import NOT_LOSSES, TrainingMonitor
from app.escape import markdown_text
from app.runs import REGISTRY, RunHandle
from app.state import StudioState
from engine.training import EventLog

TIMEOUT_S = 60
SMALL = dict(pre_encoder_dims=[16], encoder_dims=[8], decoder_dims=[16], main_latent_dim=3, device="cpu")
RAW_STORY = {"phases": [{"epochs": 3, "tasks": [{"save_raw_loss": True}]}]}
LONG = {"max_epochs": 100_000, "batch_size": 32}


def _adata(n=200, genes=30, seed=0):
    rng = np.random.default_rng(seed)
    types = rng.choice(["T", "B", "NK"], n)
    x = rng.normal(size=(n, genes)).astype(np.float32) + (types == "B")[:, None] * (np.arange(genes) < 10)
    obs = pd.DataFrame({"cell_type": pd.Categorical(types)}, index=[f"c{i}" for i in range(n)])
    return ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(genes)]))


def _state() -> StudioState:
    adata = _adata()
    state = StudioState()
    state.load(adata, "synthetic")
    state.model = engine.GuidedModel(adata, phenotypes={"cell_type": {"latent_dim": 2}}, **SMALL)
    return state


def _wait(condition, monitor=None, timeout=TIMEOUT_S):
    """Poll (as the periodic callback would) until the condition holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        if monitor is not None:
            monitor.poll()
        time.sleep(0.05)


@pytest.fixture
def states():
    """Fresh sessions; whatever they left in the registry is stopped, so later tests find the CPU free."""
    made = []

    def make():
        made.append(_state())
        return made[-1]

    yield make
    for state in made:
        for run in REGISTRY.runs_of(state.owner):
            run.stop()
    for state in made:
        for run in REGISTRY.runs_of(state.owner):
            _wait(lambda: run.done)


def _loss_points(events: EventLog) -> int:
    """Loss values in the log: one per term per step event."""
    return sum(
        sum(1 for key in event.data if key not in NOT_LOSSES)
        for event in events.snapshot()
        if event.kind == "step"
    )


def test_start_submits_a_run_and_polling_draws_every_point_once(states):
    state = states()
    monitor = TrainingMonitor(state, lambda: {"batch_size": 32, "story": RAW_STORY})
    handle = monitor.start()
    assert handle is REGISTRY.get(state.run_id) and monitor.run is handle and handle.owner == state.owner
    _wait(lambda: handle.done)
    monitor.poll()
    assert handle.state == monitor.run_state == "finished"
    assert monitor.points == _loss_points(handle.events) > 0
    history = handle.events.step_frame()
    assert len(monitor.curves.data("total")["value"]) == len(history)
    assert {"total", "reconstruction/mse", "pheno/cell_type/nll", "raw/reconstruction/mse"} <= set(monitor.curves.terms)
    assert monitor.poll() == 0 and monitor.points == _loss_points(handle.events)
    assert "epoch 3 / 3" in monitor._progress_text.object and monitor._progress.value == 1000
    assert "cpu" in monitor._state_text.object and not monitor._start.disabled
    # the chart names each term after what it measures; the engine's names stay the keys
    legend = [item.label.value for item in monitor.curves.figure.legend[0].items]
    assert "expression reconstruction error" in legend and "cell_type: prediction error" in legend
    assert set(monitor.curves._choice.options.values()) == set(monitor.curves.terms)
    # what to do next: the embeddings the run wrote, in the Explore tab
    assert monitor._next.visible and "4 · Explore" in monitor.next_step()
    assert f"X_{handle.model.name}_main" in monitor.next_step() and "UMAP" in monitor.next_step()


def test_stop_ends_a_long_run_and_pause_resume(states):
    state = states()
    monitor = TrainingMonitor(state, lambda: LONG)
    handle = monitor.start()
    _wait(lambda: monitor.points > 0, monitor)
    assert monitor.run_state == "running" and monitor._start.disabled
    assert "left" in monitor._progress_text.object
    monitor.toggle_pause()
    assert handle.state == "paused" and monitor._pause.label == "Resume"
    monitor.toggle_pause()
    assert handle.state == "running" and monitor._pause.label == "Pause"
    monitor.stop()
    _wait(lambda: handle.done, monitor)
    monitor.poll()
    assert monitor.run_state == "stopped" and monitor.points == _loss_points(handle.events)
    assert "4 · Explore" in monitor.next_step()  # a stopped run wrote its embeddings too


def test_start_without_a_model_says_so():
    monitor = TrainingMonitor(StudioState())
    assert monitor.start() is None and monitor.run is None
    assert "Build a model first" in monitor.message and monitor._message.visible


def test_bad_training_options_are_shown_and_nothing_is_submitted(states):
    state = states()
    monitor = TrainingMonitor(state, lambda: {"batch_size": 0})
    assert monitor.start() is None and state.run_id is None
    assert monitor.message.startswith("Could not start training") and "batch_size" in monitor.message


def test_a_diverging_loss_shows_the_nan_guard_message(states):
    state = states()
    monitor = TrainingMonitor(state, lambda: {"max_epochs": 5, "batch_size": 32, "lr": 1e30})
    handle = monitor.start()
    _wait(lambda: handle.done)
    monitor.poll()
    assert monitor.run_state == "failed"
    assert "became" in monitor.error and "restored the weights" in monitor.error
    assert monitor._error.visible and monitor._error.object == markdown_text(monitor.error)


def test_sessions_do_not_see_each_others_runs(states):
    mine, theirs = states(), states()
    watching_mine, watching_theirs = TrainingMonitor(mine), TrainingMonitor(theirs, lambda: LONG)
    handle = watching_theirs.start()
    assert watching_mine.run is None and REGISTRY.runs_of(mine.owner) == []
    mine.run_id = handle.id
    assert watching_mine.run is None and "another session" in watching_mine.message
    assert watching_mine.poll() == 0 and watching_mine.points == 0


def test_a_second_run_on_the_device_is_queued_behind_the_first(states):
    first, second = states(), states()
    running = TrainingMonitor(first, lambda: LONG).start()
    waiting_monitor = TrainingMonitor(second, lambda: {"max_epochs": 1})
    waiting = waiting_monitor.start()
    assert waiting.device == running.device == "cpu"
    assert waiting.state == waiting_monitor.run_state == "queued"
    assert REGISTRY.queue_ahead(waiting) == [running]
    assert running.id in waiting_monitor._state_text.object and "behind 1 run" in waiting_monitor._state_text.object
    waiting_monitor.stop()
    assert waiting.state == "cancelled" and waiting_monitor._stop.disabled


def test_follows_a_run_from_python_and_a_bare_event_log():
    model = engine.GuidedModel(_adata(), phenotypes={"cell_type": {}}, **SMALL)
    run = model.train(max_epochs=2, batch_size=64, progress=False)
    monitor = TrainingMonitor(events=run.events)
    assert not monitor._start.visible and not monitor._stop.visible
    monitor.poll()
    assert monitor.run_state == "finished" and monitor.points == _loss_points(run.events)
    handle = REGISTRY.submit("python", "guided", model, model.trainer(max_epochs=1, progress=False))
    followed = TrainingMonitor.for_run(handle)
    _wait(lambda: handle.done)
    followed.poll()
    assert followed.run_state == "finished" and followed.points == _loss_points(handle.events)


def test_curves_stream_pieces_smooth_like_the_whole_and_hide_terms():
    values = np.random.default_rng(0).random(50)
    curves = LossCurves(smoothing=0.8)
    curves.add({"total": (list(range(20)), values[:20])})
    curves.add({"total": (list(range(20, 50)), values[20:]), "other": ([0], [1.0])})
    np.testing.assert_allclose(curves.data("total")["smooth"], ema(values, 0.8))
    curves.shown = ["other"]
    assert not any(renderer.visible for renderer in curves._series["total"].renderers)
    curves._series["total"].renderers[1].visible = True  # what a legend click does
    assert curves.shown == ["total", "other"]
    curves.log_y = True
    assert type(curves.figure.y_scale).__name__ == "LogScale" and len(curves.figure.renderers) == 4


def test_rendered_chart_shows_the_figure_once_points_arrive():
    """On a rendered page (as served) the placeholder gives way to the figure, and comes back on clear."""
    curves = LossCurves()
    pn.panel(curves).get_root()
    assert curves.chart.objects == [curves._placeholder]
    curves.add({"total": ([0, 1], [1.0, 0.5])})
    (shown,) = curves.chart.objects
    assert isinstance(shown, pn.pane.Bokeh) and shown.object is curves.figure and shown.visible
    curves.log_y = True
    assert curves.chart.objects[0].object is curves.figure and curves.figure is not shown.object
    curves.clear()
    assert curves.chart.objects == [curves._placeholder] and curves.figure is None


def test_a_final_state_is_never_shown_ahead_of_its_last_points(states):
    """The run ends between the monitor reading its events and drawing them: the page keeps the
    state it read with those events, and shows 'stopped' with the last points on the next poll."""
    state = states()
    handle = RunHandle(id="run-x", owner=state.owner, name="m", model=state.model,
                       trainer=state.model.trainer(max_epochs=1, progress=False), state="running")
    log = handle.events
    log.append("step", step=0, data={"total": 1.0, "cells": 32})
    read_events = log.events_since

    def ends_while_read(cursor):
        read = read_events(cursor)
        if handle.state == "running":  # the worker finishes right after this read
            log.append("step", step=1, data={"total": 0.5, "cells": 32})
            log.append("stopped", step=1, data={"state": "stopped"})
            handle.state = "stopped"
        return read

    log.events_since = ends_while_read
    monitor = TrainingMonitor.for_run(handle)
    assert monitor.poll() == 1 and monitor.run_state == "running"
    assert monitor.poll() == 1 and monitor.run_state == "stopped" and monitor.points == 2
