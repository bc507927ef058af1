"""Checkpoints: atomic plain-data files, RNG states, and resuming exactly where a run stopped."""
import random

import numpy as np
import pytest
import torch
from toy_controller import ToyController, toy_cells

from engine import EventLog, Trainer
from engine.training import Phase, Story, load_checkpoint, save_checkpoint
from engine.training.checkpoint import rng_state, set_rng_state


def test_save_is_atomic_and_load_accepts_plain_data_only(tmp_path):
    path = tmp_path / "deep" / "ckpt.pt"
    save_checkpoint(path, {"weights": torch.arange(3.0), "meta": {"epoch": 2, "name": "x", "tasks": [None]}})
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]  # no temporary left behind
    state = load_checkpoint(path)
    assert torch.equal(state["weights"], torch.arange(3.0)) and state["meta"]["epoch"] == 2
    torch.save({"not": "ours"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Hanami checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"value": 1})
    with pytest.raises(Exception):
        save_checkpoint(path, {"value": lambda: None})  # cannot be pickled
    assert load_checkpoint(path)["value"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


def _trainer(controller, cells, tmp_path, **settings):
    return Trainer(
        controller, cells, batch_size=16, log_every=4, checkpoint_dir=tmp_path, progress=False, **settings
    )


def _losses(log: EventLog) -> list[tuple]:
    frame = log.step_frame()[["step", "total", "raw/recon", "raw/value"]].fillna(-1.0)  # -1: not in this task
    return list(frame.itertuples(index=False, name=None))


def test_two_epochs_then_resume_equals_four_uninterrupted(tmp_path):
    cells = toy_cells()
    straight = _trainer(ToyController(cells.n_genes, dropout=0.3), cells, tmp_path / "a", max_epochs=4)
    straight.run()

    first = _trainer(
        ToyController(cells.n_genes, dropout=0.3), cells, tmp_path / "b", max_epochs=2, checkpoint_every=1
    )
    first_run = first.run()
    assert first_run.checkpoint == tmp_path / "b" / "last.pt"
    # A differently initialised controller: everything must come from the checkpoint.
    resumed_controller = ToyController(cells.n_genes, dropout=0.3, init_seed=123)
    second = _trainer(resumed_controller, cells, tmp_path / "b", max_epochs=4)
    second_run = second.run(resume_from=first_run.checkpoint)

    assert second_run.state == "finished" and second_run.epochs == 4 and second_run.steps == 24
    assert _losses(first.events) + _losses(second.events) == _losses(straight.events)
    final, expected = resumed_controller.model.state_dict(), straight.controller.model.state_dict()
    assert all(torch.equal(final[name], value) for name, value in expected.items())
    assert second.events.snapshot()[0].data["resumed_from"].endswith("last.pt")


def test_stop_mid_epoch_then_resume_is_exact_with_validation_and_schedules(tmp_path):
    """The stop lands inside an epoch, between two tasks of one batch; the resumed run repeats
    nothing and skips nothing, dropout masks and validation included."""
    cells = toy_cells()
    tasks = [{"terms": ["recon"]}, {"terms": ["value"]}]
    settings = dict(
        story=Story(phases=[Phase(epochs=5, tasks=tasks, mode="interleaved")]),
        validation_fraction=0.25, lr_schedule="cosine", early_stopping_patience=50,
    )
    straight = _trainer(ToyController(cells.n_genes, dropout=0.3), cells, tmp_path / "a", **settings)
    straight.run()

    stopper = {}
    controller = ToyController(
        cells.n_genes, dropout=0.3, on_step=lambda step: step == 13 and stopper["trainer"].stop()
    )
    first = stopper["trainer"] = _trainer(controller, cells, tmp_path / "b", **settings)
    first_run = first.run()
    # 72 training cells: 5 batches x 2 tasks per epoch; 13 steps end between the tasks of batch 1
    # of epoch 1.
    assert first_run.state == "stopped" and first_run.steps == 13
    assert first.checkpoint_state()["trainer"] | {"early_stopping": None} == {
        "epoch": 1, "batch": 1, "task": 1, "step": 13, "phase": "train", "seed": 0, "early_stopping": None
    }
    second = _trainer(ToyController(cells.n_genes, dropout=0.3, init_seed=7), cells, tmp_path / "b", **settings)
    second_run = second.run(resume_from=first_run.checkpoint)

    assert second_run.state == "finished"
    assert _losses(first.events) + _losses(second.events) == _losses(straight.events)
    validation = [first.events.frame("validation"), second.events.frame("validation")]
    joined = [v for frame in validation for v in frame["total"]]
    assert joined == straight.events.frame("validation")["total"].tolist()
    assert second_run.best_epoch == straight.early_stopping.best_epoch


def test_resume_warns_about_a_changed_config_and_refuses_another_model(tmp_path):
    cells = toy_cells()
    run = _trainer(ToyController(cells.n_genes), cells, tmp_path, max_epochs=1).run()
    faster = _trainer(ToyController(cells.n_genes, lr=0.1), cells, tmp_path, max_epochs=2)
    with pytest.warns(UserWarning, match="changed controller config: lr"):
        assert faster.run(resume_from=run.checkpoint).state == "finished"
    other = _trainer(ToyController(cells.n_genes, hidden=32), cells, tmp_path, max_epochs=2)
    with pytest.warns(UserWarning, match="hidden"), pytest.raises(RuntimeError, match="size mismatch"):
        other.run(resume_from=run.checkpoint)
    assert other.events.last().kind == "error"
