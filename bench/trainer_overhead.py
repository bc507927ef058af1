"""Trainer overhead: steps per second through `engine.Trainer` against a bare loop of the same
controller steps on the same CellBatches batches, in one process.

The two are timed alternately, several times, and the best time of each is compared (the fairest
figure on a shared machine). Target: at most 5% overhead.

    .venv/bin/python bench/trainer_overhead.py [--epochs 4] [--repeats 9] [--log-every 10 50]
"""
import argparse
import time

import torch
from workload import make_adata, make_model

from engine import Trainer
from engine.config import TrainingConfig

BATCH_SIZE = 256


SMALL = dict(pre_encoder_dims=[128], encoder_dims=[32], decoder_dims=[128], main_latent_dim=8)


def bare_loop(adata, epochs: int) -> tuple[float, int]:
    model = make_model(adata, **SMALL)
    controller, cells = model.controller, model.batches
    torch.manual_seed(0)
    steps = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        controller.set_epoch(epoch)
        for batch in cells.batches(BATCH_SIZE, seed=0, epoch=epoch):
            controller.train(batch)
            steps += 1
    return time.perf_counter() - start, steps


def through_trainer(adata, epochs: int, log_every: int) -> tuple[float, int]:
    model = make_model(adata, **SMALL)
    settings = TrainingConfig(max_epochs=epochs, batch_size=BATCH_SIZE, log_every=log_every)
    trainer = Trainer(model.controller, model.batches, settings, progress=False)
    start = time.perf_counter()
    run = trainer.run()
    return time.perf_counter() - start, run.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--log-every", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adata = make_adata(20_000, 200)
    bare_loop(adata, 1)  # warm-up

    bare, trainer = [], {every: [] for every in args.log_every}
    for _ in range(args.repeats):
        seconds, steps = bare_loop(adata, args.epochs)
        bare.append(steps / seconds)
        for every in args.log_every:
            seconds, trainer_steps = through_trainer(adata, args.epochs, every)
            assert trainer_steps == steps
            trainer[every].append(steps / seconds)

    best_bare = max(bare)
    print(f"{steps} steps of batch {BATCH_SIZE}, {adata.n_obs} cells x {adata.n_vars} genes, "
          f"{args.threads} thread(s), best of {args.repeats}")
    print(f"bare loop           {best_bare:8.1f} steps/s")
    for every, rates in trainer.items():
        best = max(rates)
        print(f"Trainer log_every={every:<3d} {best:8.1f} steps/s   overhead {100 * (best_bare / best - 1):+.1f}%")


if __name__ == "__main__":
    main()
