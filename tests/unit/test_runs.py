"""The run registry: runs belong to their user, free what only training needed, and cannot hold a
device unseen."""
import gc
import time
import weakref
from contextlib import contextmanager

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import engine
from app import studio as studio_module
from app.escape import markdown_text
from app.runs import RunRegistry
from app.state import StudioState
from app.studio import Studio

SMALL = dict(pre_encoder_dims=[16], encoder_dims=[8], decoder_dims=[16], main_latent_dim=3, device="cpu")
TIMEOUT_S = 120


def _adata(n=120, genes=20):
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"cell_type": pd.Categorical(rng.choice(["T", "B"], n))}, index=[f"c{i}" for i in range(n)])
    return ad.AnnData(rng.normal(size=(n, genes)).astype(np.float32), obs=obs,
                      var=pd.DataFrame(index=[f"G{i}" for i in range(genes)]))


def _model(adata):
    return engine.GuidedModel(adata, phenotypes={"cell_type": {"latent_dim": 2}}, **SMALL)


def _wait(condition):
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _submit(registry, owner="ann", epochs=1, **trainer_options):
    adata = _adata()
    model = _model(adata)
    trainer = model.trainer(max_epochs=epochs, batch_size=32, progress=False, **trainer_options)
    return registry.submit(owner, "guided", model, trainer, adata=adata, dataset="my cells.h5ad")


def test_a_finished_run_writes_its_results_then_frees_what_only_training_needed():
    registry = RunRegistry()
    run = _submit(registry)
    _wait(lambda: run.done)
    assert run.state == "finished"
    assert run.adata.obsm["X_guided_main"].shape == (120, 3)  # written before the end was shown
    assert run.trainer is None
    assert not run.model.controller.optimizer.state
    assert all(p.grad is None for p in run.model.model.parameters())
    assert run.events.last("finished") is not None and run.total_steps > 0


def test_stop_is_shown_at_once_while_the_results_are_written(monkeypatch):
    """On a million cells writing the results takes seconds: the page says the run stopped, and
    that its results are being written, as soon as training has ended."""
    import threading

    from app.components.training_monitor import TrainingMonitor

    registry = RunRegistry()
    run = _submit(registry, epochs=100_000)
    _wait(lambda: run.state == "running")
    writing, release = threading.Event(), threading.Event()
    write = run.model.write
    monkeypatch.setattr(run.model, "write", lambda adata: (writing.set(), release.wait(TIMEOUT_S), write(adata)))
    run.stop()
    assert writing.wait(TIMEOUT_S) and run.state == "writing" and run.ending == "stopped" and not run.done
    line = TrainingMonitor.for_run(run)._describe_state(run.state)
    assert "**stopped**, writing its results into the cells" in line
    assert not registry.remove(run.id)  # its results are not written yet
    answers = []  # an export asking meanwhile waits for the results instead of encoding every cell again
    asking = threading.Thread(target=lambda: answers.append(registry.holds_results(run.model, run.adata)))
    asking.start()
    release.set()
    _wait(lambda: run.done)
    asking.join(TIMEOUT_S)
    assert answers == [True]
    assert run.state == "stopped" and "X_guided_main" in run.adata.obsm


def test_the_cells_hold_the_results_of_a_model_once_its_newest_run_has_written_them():
    """What lets an export write the session's cells as they are instead of encoding every cell again."""
    registry = RunRegistry()
    run = _submit(registry)
    assert not registry.holds_results(run.model, run.adata)  # queued or training: nothing written yet
    _wait(lambda: run.done)
    assert registry.holds_results(run.model, run.adata)
    assert not registry.holds_results(run.model, _adata()) and not registry.holds_results(_model(run.adata), run.adata)
    again = registry.submit("ann", "again", run.model, run.model.trainer(max_epochs=100_000, batch_size=32, progress=False),
                            adata=run.adata)
    try:
        _wait(lambda: again.state == "running")
        assert not registry.holds_results(run.model, run.adata)  # training changes the weights again
    finally:
        again.stop()
        _wait(lambda: again.done)
    assert again.state == "stopped" and registry.holds_results(run.model, run.adata)


def test_removing_a_finished_run_frees_its_model():
    registry = RunRegistry()
    run = _submit(registry)
    _wait(lambda: run.done)
    model = weakref.ref(run.model)
    assert registry.remove(run.id) and registry.get(run.id) is None and registry.runs_of("ann") == []
    del run
    gc.collect()
    assert model() is None


def test_a_running_run_cannot_be_removed_and_a_model_trains_in_one_run_at_a_time():
    registry = RunRegistry()
    run = _submit(registry, epochs=100_000)
    try:
        _wait(lambda: run.state == "running")
        assert not registry.remove(run.id)
        with pytest.raises(ValueError, match=f"already training in {run.id}"):
            registry.submit("ann", "again", run.model, run.model.trainer(max_epochs=1, progress=False))
    finally:
        run.stop()
        _wait(lambda: run.done)


def test_runs_are_listed_per_owner_and_a_new_page_opens_the_latest():
    registry = RunRegistry()
    first = _submit(registry, "ann")
    _wait(lambda: first.done)
    second = _submit(registry, "ann")
    theirs = _submit(registry, "bob")
    _wait(lambda: second.done and theirs.done)
    assert registry.runs_of("ann") == [first, second] and registry.latest_of("ann") is second
    assert registry.latest_of("nobody") is None


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@contextmanager
def _long_run(registry, owner):
    """A run that trains until stopped; stopped (and waited for) however the test ends."""
    run = _submit(registry, owner, epochs=100_000)
    try:
        _wait(lambda: run.state == "running")
        yield run
    finally:
        run.stop()
        _wait(lambda: run.done)


def test_an_unwatched_run_that_is_paused_is_stopped():
    clock = _Clock()
    registry = RunRegistry(unwatched_after_s=60, clock=clock)
    with _long_run(registry, "ann") as alone:
        clock.now = 120
        assert registry.reap() == []  # nobody waits for the device: it trains on
        alone.pause()
        registry.seen("ann")
        clock.now = 150
        assert registry.reap() == []  # paused, but its user had a page open 30 s ago
        clock.now = 200
        assert registry.reap() == [alone]
        _wait(lambda: alone.done)
        assert alone.state == "stopped" and "paused and no page of yours was open for 1 min" in alone.note


def test_an_unwatched_run_that_others_wait_for_is_stopped():
    clock = _Clock()
    registry = RunRegistry(unwatched_after_s=60, clock=clock)
    with _long_run(registry, "ann") as blocking:
        waiting = _submit(registry, "bob")
        registry.seen("bob")
        clock.now = 400
        assert registry.reap() == [blocking]
        _wait(lambda: waiting.done)
        assert waiting.state == "finished" and "other runs waited" in blocking.note


def test_a_second_page_of_the_same_user_finds_the_run_with_its_cells_model_and_curves(monkeypatch):
    """A reload, or a second tab: the page opens on the user's latest run, not on the demo."""
    monkeypatch.setattr(studio_module, "session_owner", lambda: ("ann", False))
    first = Studio(_adata(), title="my cells.h5ad")
    first.state.model = _model(first.state.adata)
    run = first.monitor.start()
    _wait(lambda: run.done)

    again = Studio()
    assert again.state.run_id == run.id and again.monitor.run is run
    assert again.state.adata is run.adata and again.state.model is run.model
    assert again.state.dataset == "my cells.h5ad" and "X_guided_main" in again.state.adata.obsm
    assert again.monitor.poll() > 0 and again.monitor.run_state == "finished"
    again.monitor.run_list.refresh()
    assert run.id in again.monitor.run_list._rows.objects[0].objects[-1].object

    monkeypatch.setattr(studio_module, "session_owner", lambda: ("someone else", False))
    assert Studio().state.run_id is None


def test_the_run_list_escapes_names_and_removes_runs():
    registry = RunRegistry()
    state = StudioState(owner="ann")
    adata = _adata()
    model = _model(adata)
    run = registry.submit("ann", "<b>x</b>", model, model.trainer(max_epochs=1, progress=False),
                          adata=adata, dataset="<img src=x onerror=alert(1)>.h5ad")
    _wait(lambda: run.done)
    from app.components.run_list import RunList

    runs = RunList(state, registry)
    text = runs._rows.objects[0].objects[-1].object
    assert "<img" not in text and "<b>" not in text
    assert markdown_text("<img src=x onerror=alert(1)>.h5ad") in text and markdown_text("<b>x</b>") in text
    open_button, stop, remove = runs._rows.objects[0].objects[:3]
    assert not stop.visible and remove.visible
    open_button.clicks += 1
    assert state.run_id == run.id and state.adata is adata
    remove.clicks += 1
    assert registry.get(run.id) is None and state.run_id is None
    assert "No runs yet" in runs._rows.objects[0].object
