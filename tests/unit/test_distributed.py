"""Data-parallel training: two gloo processes on the CPU match one process with the same global
batch, in both interleaved and summed phases."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_worker import SETTINGS
from toy_controller import ToyController, toy_cells

from engine.training import DistributedContext, Trainer

WORKER = Path(__file__).resolve().parents[1] / "ddp_worker.py"


def test_from_env_explains_how_to_start(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        DistributedContext.from_env()


def test_exit_rank_flushes_the_streams_and_keeps_the_status():
    code = ("import sys; from engine.training import exit_rank; "
            "print('done', end=''); print('warn', end='', file=sys.stderr); exit_rank(3)")
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", code], env=buffered, capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout, done.stderr) == (3, "done", "warn")


def test_two_gloo_processes_match_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(WORKER), str(tmp_path),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]

    cells = toy_cells()
    single = ToyController(cells.n_genes)
    run = Trainer(single, cells, **SETTINGS).run()

    for rank in ranks:
        assert rank["state"] == "finished" and rank["steps"] == run.steps == 5 * 2 + 5
        for name, value in single.model.state_dict().items():
            torch.testing.assert_close(rank["weights"][name], value, rtol=1e-5, atol=1e-6)
        assert rank["validation"] == pytest.approx(run.validation()["total"].tolist(), rel=1e-5)
    # Only rank 0 writes checkpoints.
    assert "checkpoint" in ranks[0]["kinds"] and "checkpoint" not in ranks[1]["kinds"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.pt"]
