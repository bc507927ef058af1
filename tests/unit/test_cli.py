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
