"""Trainer: the loop, events, control from another thread, NaN guard, early stopping, stories."""
import json
import math
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from event_reader import follow
from toy_controller import ToyController, toy_cells

from engine import EventLog, Trainer
from engine.training import Phase, Story
from engine.training.devices import autocasts

TERMS = ["total", "recon", "value", "raw/recon", "raw/value"]


def _toy(n_cells=96, **controller):
    cells = toy_cells(n_cells)
    return cells, ToyController(cells.n_genes, **controller)


def _start(trainer):
    """Run in a worker thread, as the app does; returns the thread and where the result lands."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(run=trainer.run()))
    thread.start()
    return thread, result


def _wait_for(log, predicate, timeout=60.0):
    """Read the log by cursor until `predicate(all events so far)` holds."""
    events, cursor, deadline = [], 0, time.monotonic() + timeout
    while not predicate(events):
        assert time.monotonic() < deadline, "the run did not get there"
        log.wait(cursor, timeout=0.5)
        new, cursor = log.events_since(cursor)
        events.extend(new)
    return events


def _count(kind):
    return lambda events: [e.kind for e in events].count(kind)


def test_trainer_matches_a_bare_loop_and_logs_every_step():
    cells, controller = _toy()
    run = Trainer(controller, cells, max_epochs=3, batch_size=32, log_every=4, progress=False).run()
    assert run.state == "finished" and run.steps == 9 and run.epochs == 3
    frame = run.history()
    assert list(frame["step"]) == list(range(9)) and list(frame["epoch"]) == [0] * 3 + [1] * 3 + [2] * 3
    assert set(TERMS + ["lr", "cells", "cells_per_s"]) <= set(frame.columns)
    assert (frame["cells_per_s"] > 0).all() and (frame["lr"] == 1e-2).all()
    # The same controller steps in a bare loop give exactly the same losses.
    bare = ToyController(cells.n_genes)
    torch.manual_seed(0)
    expected = [
        bare.train(batch)["total"].item()
        for epoch in range(3)
        for batch in cells.batches(32, seed=0, epoch=epoch)
    ]
    assert frame["total"].tolist() == expected
    kinds = [e.kind for e in run.events.snapshot() if e.kind != "step"]
    assert kinds == ["phase_start", "phase_end", "finished"]


def test_stop_from_another_thread_ends_within_one_step():
    cells, controller = _toy()
    trainer = Trainer(controller, cells, max_epochs=100_000, batch_size=8, log_every=1, progress=False)
    thread, result = _start(trainer)
    _wait_for(trainer.events, lambda events: _count("step")(events) >= 20)
    at_stop = trainer.status.step
    trainer.stop()
    thread.join(timeout=60)
    run = result["run"]
    assert run.state == "stopped" and trainer.status.state == "stopped"
    assert at_stop <= run.steps <= at_stop + 1
    assert len(run.history()) == run.steps
    assert run.events.last().kind == "stopped"


def test_pause_blocks_steps_until_resume():
    cells, controller = _toy()
    trainer = Trainer(controller, cells, max_epochs=100, batch_size=8, log_every=1, progress=False)
    thread, result = _start(trainer)
    _wait_for(trainer.events, lambda events: _count("step")(events) >= 10)
    trainer.pause()
    _wait_for(trainer.events, _count("paused"))
    assert trainer.status.state == "paused"
    steps_when_paused = len(trainer.events.step_frame())
    time.sleep(0.3)
    assert len(trainer.events.step_frame()) == steps_when_paused
    assert trainer.status.step == steps_when_paused  # every step taken was read back before pausing
    trainer.resume()
    thread.join(timeout=120)
    run = result["run"]
    assert run.state == "finished" and run.steps == 100 * 12
    kinds = [e.kind for e in run.events.snapshot() if e.kind != "step"]
    assert kinds == ["phase_start", "paused", "resumed", "phase_end", "finished"]


def test_nan_guard_names_the_term_and_restores_the_last_good_weights():
    cells, controller = _toy(nan_at_step=7, nan_term="value", record_weights=True)
    trainer = Trainer(controller, cells, max_epochs=3, batch_size=8, log_every=5, progress=False)
    run = trainer.run()  # no exception leaks out
    assert run.state == "failed"
    error = run.events.last()
    assert error.kind == "error"
    assert "loss term value became nan" in error.data["message"] and "step 7" in error.data["message"]
    assert error.data["term"] == "value" and error.data["bad_step"] == 7
    # Read-backs after steps 0-4 (clean) and 5-9 (step 7 is NaN): back to the state after step 4.
    assert error.data["restored_step"] == 5
    assert list(run.history()["step"]) == [0, 1, 2, 3, 4, 5, 6]
    state = controller.model.state_dict()
    for name, good in controller.weights[4].items():
        assert torch.isfinite(state[name]).all()
        assert torch.equal(state[name], good)
    assert all(s["step"].item() == 5 for s in controller.optimizer.state.values())


def test_controller_exception_is_recorded_and_raised():
    def explode(step):
        if step == 3:
            raise RuntimeError("boom at step 3")

    cells, controller = _toy(on_step=explode)
    trainer = Trainer(controller, cells, max_epochs=2, batch_size=8, progress=False)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.run()
    last = trainer.events.last()
    assert last.kind == "error" and "boom at step 3" in last.data["message"]
    assert trainer.status.state == "failed"


def test_reader_thread_sees_every_event_exactly_once_during_training():
    cells, controller = _toy()
    log = EventLog()
    reader, seen = follow(log)
    Trainer(
        controller, cells, max_epochs=6, batch_size=8, log_every=3, events=log, progress=False,
        validation_fraction=0.25,
    ).run()
    reader.join(timeout=30)
    assert seen == list(range(log.next_seq)) and log.next_seq > 6 * 9


def test_validation_is_a_cell_weighted_mean():
    cells, controller = _toy()
    run = Trainer(
        controller, cells, max_epochs=2, batch_size=10, validation_fraction=0.25, progress=False
    ).run()
    validation = run.validation()
    assert list(validation["epoch"]) == [0, 1] and (validation["cells"] == 24).all()
    # Batches of 10, 10 and 4 validation cells, weighted by cells, equal one batch of all 24.
    held_out = cells.epoch_order(seed=0, epoch=-1)[:24].sort().values
    whole = controller.evaluate(cells.take(held_out))
    for term in TERMS:
        assert validation[term].iloc[-1] == pytest.approx(whole[term].item(), rel=1e-5)
    assert run.history()["cells"].sum() == 2 * 72  # training never sees the validation cells


def test_early_stopping_with_relative_min_delta_restores_the_best_weights():
    cells, controller = _toy(n_cells=64, lr=0.05, record_weights=True)
    trainer = Trainer(
        controller, cells, max_epochs=500, batch_size=16, validation_fraction=0.25,
        early_stopping_patience=3, min_delta=0.05, progress=False,
    )
    run = trainer.run()
    assert run.state == "early_stopped" and run.epochs < 500
    stop = run.events.last("early_stop")
    best_epoch = stop.data["best_epoch"]
    validation = run.validation().set_index("epoch")["total"]
    assert run.best_epoch == best_epoch and run.best_validation == validation[best_epoch]
    assert run.epochs == best_epoch + 4  # three epochs without a 5% improvement, then stop
    for epoch in range(best_epoch + 1, run.epochs):
        assert validation[epoch] >= validation[best_epoch] * 0.95
    steps_per_epoch = 3  # 48 training cells in batches of 16
    best = controller.weights[(best_epoch + 1) * steps_per_epoch - 1]
    state = controller.model.state_dict()
    assert all(torch.equal(state[name], value) for name, value in best.items())
    assert run.events.last().kind == "finished" and run.events.last().data["state"] == "early_stopped"


def test_story_phases_interleaved_and_summed():
    cells, controller = _toy()
    tasks = [{"terms": ["recon"]}, {"terms": ["value"]}]
    story = Story(
        phases=[
            Phase(name="apart", epochs=1, tasks=tasks, mode="interleaved"),
            Phase(name="together", epochs=2, tasks=tasks, mode="summed"),
        ]
    )
    run = Trainer(controller, cells, story=story, batch_size=32, log_every=2, progress=False).run()
    frame = run.history()
    apart, together = frame[frame["phase"] == "apart"], frame[frame["phase"] == "together"]
    assert len(apart) == 3 * 2 and len(together) == 2 * 3  # one step per task vs one per batch
    assert list(apart["task"]) == [0, 1] * 3 and together["task"].isna().all()
    assert apart["value"].isna().tolist() == [True, False] * 3  # task 0 only reconstructs
    assert together[["recon", "value"]].notna().all().all()
    assert np.allclose(together["total"], together["recon"] + together["value"])
    # Adam counts the steps each parameter took: the trunk every step, each head 3 + 6.
    steps = {name: controller.optimizer.state[p]["step"].item() for name, p in controller.model.named_parameters()}
    assert steps["trunk.0.weight"] == 12 and steps["recon.weight"] == 9 and steps["value.weight"] == 9
    marks = [(e.kind, e.phase) for e in run.events.snapshot() if e.kind.startswith("phase")]
    assert marks == [
        ("phase_start", "apart"), ("phase_end", "apart"), ("phase_start", "together"), ("phase_end", "together"),
    ]


@pytest.mark.parametrize(
    "schedule, expected",
    [("cosine", [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]),
     ("step", [1.0, 1.0, 0.1, 0.1])],
)
def test_lr_schedules_step_per_epoch(schedule, expected):
    cells, controller = _toy()
    run = Trainer(
        controller, cells, max_epochs=4, batch_size=48, lr_schedule=schedule, lr_step_epochs=2,
        lr_gamma=0.1, progress=False,
    ).run()
    lr = run.history().groupby("epoch")["lr"].first()
    assert lr.tolist() == pytest.approx([1e-2 * f for f in expected])


def test_train_cells_and_jsonl_and_progress(tmp_path, capsys):
    cells, controller = _toy()
    chosen = np.arange(96) % 3 == 0
    path = tmp_path / "events.jsonl"
    run = Trainer(
        controller, cells, max_epochs=2, batch_size=8, train_cells=chosen, jsonl=path, progress=True
    ).run()
    assert run.history()["cells"].sum() == 2 * 32
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["seq"] for line in lines] == list(range(run.events.next_seq))
    assert lines[-1]["kind"] == "finished"
    assert "8/8" in capsys.readouterr().err


def test_bf16_autocast_on_the_cpu_runs_the_products_in_bf16_and_keeps_float32_weights():
    cells, controller = _toy()
    seen = []
    controller.model.trunk.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    before = [p.detach().clone() for p in controller.model.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = Trainer(controller, cells, max_epochs=1, batch_size=32, bf16=True, progress=False).run()
    assert run.state == "finished" and np.isfinite(run.history()["total"]).all()
    assert seen and set(seen) == {torch.bfloat16}
    for old, new in zip(before, controller.model.parameters()):
        assert new.dtype == torch.float32 and not torch.equal(old, new)


def test_bf16_is_ignored_with_a_warning_where_autocast_is_not_offered():
    with pytest.warns(UserWarning, match="bf16"):
        assert not autocasts(torch.device("mps"), True)
    assert autocasts(torch.device("cpu"), True) and not autocasts(torch.device("cpu"), False)


def test_bad_settings_are_refused():
    cells, controller = _toy()
    with pytest.raises(ValueError, match="validation_fraction"):
        Trainer(controller, cells, early_stopping_patience=2)
    with pytest.raises(ValueError, match="lr_schedule"):
        Trainer(controller, cells, lr_schedule="linear")
    with pytest.raises(ValueError, match="checkpoint_dir"):
        Trainer(controller, cells, checkpoint_every=1)


def test_ticks_cut_a_stream_of_passes_into_epochs():
    """5 batches per pass, ticks of 3: four epochs are passes 0, 0, 0 | 0, 0, 1 | 1, 1, 1 | 1, 2, 2."""
    cells, controller = _toy(n_cells=80)
    visited = []
    train = controller.train
    controller.train = lambda batch, **task: visited.append(batch["index"].clone()) or train(batch, **task)
    run = Trainer(controller, cells, max_epochs=4, batch_size=16, tick_batches=3, progress=False).run()
    assert run.steps == 12 and run.epochs == 4
    stream = [b["index"] for p in range(3) for b in cells.batches(16, seed=0, epoch=p)]
    assert all(torch.equal(seen, expected) for seen, expected in zip(visited, stream[:12]))


def test_a_one_cell_tail_joins_the_last_batch_of_every_pass_and_tick():
    """33 cells at batch 16 are two batches (16 + 17) per pass, in whole passes and in ticks."""
    cells, controller = _toy(n_cells=33)
    sizes = []
    train = controller.train
    controller.train = lambda batch, **task: sizes.append(batch["index"].shape[0]) or train(batch, **task)
    run = Trainer(controller, cells, max_epochs=3, batch_size=16, progress=False).run()
    assert run.steps == 6 and sizes == [16, 17] * 3
    sizes.clear()
    run = Trainer(controller, cells, max_epochs=2, batch_size=16, tick_batches=3, progress=False).run()
    assert run.steps == 6 and sizes == [16, 17] * 3
