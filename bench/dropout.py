"""Dropout on the CPU: PyTorch's `nn.Dropout` against `engine.nn.Dropout` (the mask from 16-bit
random integers), per call and in a whole SysVI training step.

Per call: forward and backward on a 128 x 256 activation (SysVI's hidden layer at batch 128),
float32 and bf16, the median of --calls calls. Per step: two `engine.SysVIModel`s on the same
generated cells (--cells x --genes, 2 systems, batch 128, the bench/sysvi.py architecture), one
with PyTorch's dropout put back, trained in alternating blocks of 40 steps (--blocks per side,
the order flipped every block, the first block left out as warm-up) in one process; the time is
the thread's CPU time, which a busy neighbour disturbs less than wall time. Printed: each side's
median ms per step and the median and range of the per-block ratio ours / PyTorch's; written to
bench/results/dropout.json.

    .venv/bin/python bench/dropout.py [--cells 20000] [--genes 2000] [--blocks 12] [--threads 1] [--bf16]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import engine
from engine.data.simulate_systems import cells_from_systems
from engine.nn.dropout import Dropout
from results_file import save
from sysvi import SETTINGS

STEPS_PER_BLOCK = 40


def per_call(layer: nn.Module, dtype: torch.dtype, calls: int) -> float:
    """Median microseconds of one forward and backward through `layer`."""
    x = torch.randn(128, 256, dtype=dtype, requires_grad=True)
    times = []
    for _ in range(calls):
        start = time.thread_time()
        layer(x).sum().backward()
        times.append(time.thread_time() - start)
    return statistics.median(times) * 1e6


def torch_dropout_back(model) -> None:
    """Put PyTorch's own forward back into every `engine.nn.Dropout` of a model."""
    for module in model.model.modules():
        if isinstance(module, Dropout):
            module.forward = nn.Dropout.forward.__get__(module)


def step_blocks(args) -> dict[str, list[float]]:
    adata = cells_from_systems(args.cells, args.genes, system_effect=0.3, seed=0)
    models = {side: engine.SysVIModel(adata, "system", batch_keys=["batch"], device="cpu", **SETTINGS)
              for side in ("torch", "ours")}
    torch_dropout_back(models["torch"])
    batches = list(models["ours"].batches.batches(128, models["ours"].batches.cell_index(None), shuffle=True,
                                                  seed=0))[:STEPS_PER_BLOCK]

    def step(controller, batch) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            losses = controller.train(batch, suppress_backward=True)
        controller.backward_step(losses["total"])

    times = {side: [] for side in models}
    for block in range(args.blocks + 1):
        order = list(models) if block % 2 == 0 else list(models)[::-1]
        for side in order:
            controller = models[side].controller
            start = time.thread_time()
            for batch in batches:
                step(controller, batch)
            if block:  # the first block warms both sides up
                times[side].append((time.thread_time() - start) / len(batches) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="the SysVI steps under bf16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    calls = {}
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).removeprefix("torch.")
        calls[name] = {side: per_call(layer, dtype, args.calls) for side, layer in
                       (("torch_us", nn.Dropout(0.1)), ("ours_us", Dropout(0.1)))}
        print(f"one call, 128 x 256 {name}: PyTorch's {calls[name]['torch_us']:.0f} us, "
              f"ours {calls[name]['ours_us']:.0f} us (forward and backward)")
    times = step_blocks(args)
    ratios = [o / t for o, t in zip(times["ours"], times["torch"])]
    precision = "bf16 autocast" if args.bf16 else "float32"
    print(f"SysVI step, {args.cells:,} x {args.genes:,}, batch 128, {precision}: PyTorch's dropout "
          f"{statistics.median(times['torch']):.2f} ms, ours {statistics.median(times['ours']):.2f} ms (medians of "
          f"{args.blocks} blocks); ours / PyTorch's per block {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}-{max(ratios):.3f})")
    save("dropout", {"settings": vars(args), "per_call": calls, "step_ms": times,
                     "ratio_median": statistics.median(ratios), "ratio_range": [min(ratios), max(ratios)]})


if __name__ == "__main__":
    main()
