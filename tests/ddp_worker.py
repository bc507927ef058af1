"""One rank of the two-process test in tests/unit/test_distributed.py (started by torchrun).

Trains the toy controller through a two-phase story (interleaved, then summed) with validation and
checkpoints, and saves what the test compares with a single-process run: final weights, the
validation values, and which events this rank wrote.
"""
import sys
from pathlib import Path

import torch
from toy_controller import ToyController, toy_cells

from engine.training import DistributedContext, Phase, Story, Trainer, exit_rank

TASKS = [{"terms": ["recon"]}, {"terms": ["value"]}]
STORY = Story(
    phases=[
        Phase(name="apart", epochs=1, tasks=TASKS, mode="interleaved"),
        Phase(name="together", epochs=1, tasks=TASKS, mode="summed"),
    ]
)
SETTINGS = dict(story=STORY, batch_size=16, validation_fraction=0.25, log_every=3, progress=False)


def main(out: Path) -> None:
    context = DistributedContext.from_env()
    cells = toy_cells(device=context.device)
    controller = ToyController(cells.n_genes)
    trainer = Trainer(controller, cells, distributed=context, checkpoint_dir=out / "checkpoints", **SETTINGS)
    run = trainer.run()
    torch.save(
        {
            "state": run.state,
            "weights": controller.model.state_dict(),
            "validation": run.validation()["total"].tolist(),
            "kinds": sorted({event.kind for event in run.events.snapshot()}),
            "steps": run.steps,
        },
        out / f"rank{context.rank}.pt",
    )
    context.close()
    exit_rank(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
