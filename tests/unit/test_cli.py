"""`python -m engine train CONFIG --data FILE --out DIR`, and its distributed form under torchrun."""
import json
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

CONFIG = {
    "family": "guided",
    "pre_encoder_dims": [16],
    "encoder_dims": [8],
    "decoder_dims": [16],
    "main_latent_dim": 3,
    "norm": "layer",
    "dropout": 0.0,
    "phenotypes": {"cell_type": {"latent_dim": 2}},
    "training": {"max_epochs": 2, "batch_size": 20},
}


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"cell_type": pd.Categorical(rng.choice(["a", "b"], 80))}, index=[f"c{i}" for i in range(80)])
    cells = ad.AnnData(rng.normal(size=(80, 12)).astype(np.float32), obs=obs)
    cells.var_names = [f"g{i}" for i in range(12)]
    cells.write_h5ad(tmp_path / "cells.h5ad")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return tmp_path


def _check_outputs(out):
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[-1]["kind"] == "finished"
    assert sum(e["kind"] == "step" for e in events) == 2 * 4
    result = ad.read_h5ad(out / "cells.h5ad")
    assert result.obsm["X_guided_main"].shape == (80, 3)
    assert {"config.json", "model.pt", "genes.json"} <= {p.name for p in (out / "model").iterdir()}
    assert list((out / "checkpoints").glob("*.pt"))


def test_train_writes_every_result(inputs):
    out = inputs / "out"
    done = subprocess.run(
        [sys.executable, "-m", "engine", "train", str(inputs / "config.yaml"), "--data", str(inputs / "cells.h5ad"),
         "--out", str(out), "--no-progress", "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "finished after 2 epochs" in done.stdout
    _check_outputs(out)


def test_bad_config_is_a_clear_error(inputs):
    (inputs / "bad.yaml").write_text(yaml.safe_dump({**CONFIG, "main_latent_dim": 0}))
    done = subprocess.run(
        [sys.executable, "-m", "engine", "train", str(inputs / "bad.yaml"), "--data", str(inputs / "cells.h5ad"),
         "--out", str(inputs / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2
    assert "main_latent_dim" in done.stderr


def test_torchrun_two_processes(inputs):
    out = inputs / "ddp"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "engine", "train", str(inputs / "config.yaml"), "--data",
         str(inputs / "cells.h5ad"), "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    _check_outputs(out)


# -- in-process: every expected failure is one 'error:' line and exit status 2 ----------------
def _train(inputs, *extra, config="config.yaml", data="cells.h5ad", out="out"):
    from engine.cli import main

    return main(["train", str(inputs / config), "--data", str(inputs / data), "--out", str(inputs / out),
                 "--no-progress", "--device", "cpu", *extra])


def _error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def _events(out):
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def _write_config(inputs, name, **changes):
    (inputs / name).write_text(yaml.safe_dump({**CONFIG, **changes}))


def test_a_second_run_into_the_same_folder_is_refused(inputs, capsys):
    assert _train(inputs) == 0
    out = inputs / "out"
    checkpoint, events = (out / "checkpoints" / "last.pt").read_bytes(), (out / "events.jsonl").read_text()
    capsys.readouterr()
    assert _train(inputs) == 2
    assert _error(capsys) == (
        f"error: {out} already holds an earlier run (checkpoints/last.pt, events.jsonl); to continue it pass "
        f"--resume {out}/checkpoints/last.pt, to start over pass --overwrite (deletes its checkpoints and "
        "events), or choose another --out folder"
    )
    assert (out / "checkpoints" / "last.pt").read_bytes() == checkpoint
    assert (out / "events.jsonl").read_text() == events


def test_overwrite_starts_over_with_one_run_in_the_events(inputs, capsys):
    assert _train(inputs) == 0
    assert _train(inputs, "--overwrite") == 0
    events = _events(inputs / "out")
    assert [e["kind"] for e in events].count("phase_start") == 1
    assert [e["step"] for e in events if e["kind"] == "step"] == list(range(8))
    with pytest.raises(SystemExit) as caught:
        _train(inputs, "--overwrite", "--resume", str(inputs / "out"))
    assert caught.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:resuming .* with a changed controller config")
@pytest.mark.parametrize("where", ["out", "out/checkpoints", "out/checkpoints/last.pt"])
def test_resume_takes_the_checkpoint_or_a_folder_holding_it(inputs, where):
    assert _train(inputs) == 0
    _write_config(inputs, "longer.yaml", training={"max_epochs": 3, "batch_size": 20})
    assert _train(inputs, "--resume", str(inputs / where), config="longer.yaml") == 0
    assert [e["step"] for e in _events(inputs / "out") if e["kind"] == "step"] == list(range(12))


def test_resume_from_a_missing_file_or_an_empty_folder_is_an_error_line(inputs, capsys):
    assert _train(inputs, "--resume", str(inputs / "nowhere.pt")) == 2
    assert _error(capsys) == f"error: {inputs}/nowhere.pt: no such checkpoint; give the path of the run's checkpoints/last.pt"
    assert _train(inputs, "--resume", str(inputs)) == 2
    assert _error(capsys) == (
        f"error: {inputs}: a folder without a checkpoint (last.pt, or checkpoints/last.pt); give the checkpoint "
        "file, or the checkpoints folder of the run to continue"
    )


def test_resume_from_a_damaged_or_foreign_checkpoint_names_the_file(inputs, capsys):
    import torch

    assert _train(inputs) == 0
    last = inputs / "out" / "checkpoints" / "last.pt"
    whole = last.read_bytes()
    (inputs / "cut.pt").write_bytes(whole[: len(whole) // 2])
    torch.save({"weights": torch.nn.Linear(2, 2)}, inputs / "module.pt")  # a pickled module, not plain data
    torch.save({"format": 1, "weights": torch.ones(2)}, inputs / "plain.pt")
    capsys.readouterr()
    for name in ("cut.pt", "module.pt"):
        assert _train(inputs, "--resume", str(inputs / name)) == 2
        message = _error(capsys)
        assert message == (
            f"error: {inputs / name}: not a Hanami checkpoint or damaged, for example by an interrupted "
            "copy; resume from another checkpoint, or start the training over"
        )
    _write_config(inputs, "wider.yaml", main_latent_dim=5)
    with pytest.warns(UserWarning, match="changed controller config"):
        assert _train(inputs, "--resume", str(last), config="wider.yaml") == 2
    assert _error(capsys).startswith(
        f"error: {last}: this checkpoint holds another model than the one configured (size mismatch in 3 weights), "
        "for example other genes, heads or layer sizes."
    )


def test_a_killed_run_resumes_into_one_coherent_event_stream(inputs, monkeypatch):
    """Killed after the epoch-1 checkpoint (step 4) with steps 4 and 5 already in events.jsonl and
    a half-written line: the resumed run cuts the file back to the checkpoint and goes on."""
    from engine.controllers.extractor import ExtractorController

    train, calls = ExtractorController.train, []

    def killed_at_step_6(self, batch, **task):
        if len(calls) == 6:
            raise KeyboardInterrupt  # what a kill looks like from inside
        calls.append(1)
        return train(self, batch, **task)

    _write_config(inputs, "four.yaml", training={"max_epochs": 4, "batch_size": 20, "log_every": 1})
    monkeypatch.setattr(ExtractorController, "train", killed_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        _train(inputs, config="four.yaml")
    monkeypatch.setattr(ExtractorController, "train", train)
    out = inputs / "out"
    assert [e["step"] for e in _events(out) if e["kind"] == "step"] == [0, 1, 2, 3, 4, 5]
    with open(out / "events.jsonl", "a") as stream:
        stream.write('{"seq": 99, "kind": "st')  # the kill landed mid-write
    (out / "checkpoints" / ".last.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")

    assert _train(inputs, "--resume", str(out), config="four.yaml") == 0
    events = _events(out)
    assert [e["step"] for e in events if e["kind"] == "step"] == list(range(16))
    assert [e["seq"] for e in events] == list(range(len(events)))
    kinds = [e["kind"] for e in events]
    assert kinds.count("error") == 0 and kinds[-1] == "finished" and kinds.count("finished") == 1
    assert [e["data"].get("resumed_from") for e in events if e["kind"] == "phase_start"] == [
        None, str(out / "checkpoints" / "last.pt")
    ]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt"]


def test_stale_checkpoint_temporaries_are_removed_when_the_folder_is_opened(inputs):
    stale = inputs / "out" / "checkpoints" / ".last.pt.x9y8z7.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"interrupted")
    assert _train(inputs) == 0
    assert not stale.exists()


def test_non_finite_data_is_an_error_line_and_writes_nothing(inputs, capsys):
    cells = ad.read_h5ad(inputs / "cells.h5ad")
    cells.X[5, 3] = np.nan
    cells.write_h5ad(inputs / "nan.h5ad")
    assert _train(inputs, data="nan.h5ad") == 2
    assert _error(capsys) == (
        f"error: {inputs}/nan.h5ad: cell c5, feature g3 holds NaN (not a number); 1 value in 1 cell is not "
        "finite. Remove or replace them (for example with 0) and load the file again."
    )
    assert not (inputs / "out").exists()


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        ({"validation_fraction": 0.001}, "error: validation_fraction 0.001 of 80 cells keeps 0 for validation; to keep "
         "one validation cell, raise it to 0.0125 or more, or set it to 0 to train without validation"),
        ({"early_stopping_patience": 2}, "error: early_stopping_patience watches the validation loss, but "
         "validation_fraction is 0: set validation_fraction above 0 (for example 0.1), or leave early stopping off"),
    ],
)
def test_training_settings_that_cannot_work_are_error_lines(inputs, capsys, training, expected):
    _write_config(inputs, "bad.yaml", training={**CONFIG["training"], **training})
    assert _train(inputs, config="bad.yaml") == 2
    assert _error(capsys) == expected
    assert not (inputs / "out" / "model").exists()


def test_a_failed_run_says_why_and_writes_no_results(inputs, capsys, monkeypatch):
    from engine.controllers.extractor import ExtractorController

    train = ExtractorController.train

    def diverging(self, batch, **task):
        losses = train(self, batch, **task)
        return {**losses, "total": losses["total"] * float("nan")}

    monkeypatch.setattr(ExtractorController, "train", diverging)
    assert _train(inputs) == 1
    message = _error(capsys)
    assert message == (
        "error: training failed: loss term total became nan at step 0 (epoch 0); restored the weights from step 0 "
        "and stopped. No model or results were written; a lower lr or clip_grad_norm often helps."
    )
    assert not (inputs / "out" / "model").exists() and not (inputs / "out" / "cells.h5ad").exists()


def test_a_config_that_is_not_yaml_names_the_line(inputs, capsys):
    (inputs / "broken.yaml").write_text("family: guided\n  training: [\n")
    assert _train(inputs, config="broken.yaml") == 2
    assert _error(capsys) == (
        f"error: {inputs}/broken.yaml: not valid YAML at line 2, column 11 (mapping values are not allowed here); "
        "fix that line"
    )


def test_a_device_that_is_not_there_is_an_error_line(inputs, capsys):
    from engine.cli import main

    args = ["train", str(inputs / "config.yaml"), "--data", str(inputs / "cells.h5ad"), "--out", str(inputs / "out")]
    assert main([*args, "--device", "banana"]) == 2
    assert _error(capsys) == "error: device banana is not a device name; use auto, cpu, cuda, cuda:1 (a GPU by number) or mps"
    assert main([*args, "--device", "cuda:64"]) == 2
    assert _error(capsys).startswith("error: device cuda:64: this machine has ")
