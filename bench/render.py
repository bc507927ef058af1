"""Server-side render time of the embedding explorer's view at 1M and 10M cells.

Each update of the explorer runs holoviews' datashade(count_cat) + dynspread for a label, or
rasterize(mean) + dynspread for a gene, on the plot's canvas. This script applies exactly those
operations (``app.embedding.shade.shaded``) to the element at a fixed 800x600 canvas, with the
axis extents the explorer gives its points, and times them against plain datashader
(Canvas.points + shade + dynspread, what ``png_bytes`` runs) in the same process. The payload is
the image array bokeh puts in the plot's data source: what one update sends to the browser.

    .venv/bin/python bench/render.py                     # 1,000,000 and 10,000,000 cells
    .venv/bin/python bench/render.py --cells 200000      # a quick try
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import colorcet as cc
import datashader as ds
import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh backend for get_plot)
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.embedding.coloring import Coloring  # noqa: E402
from app.embedding.shade import axes, points_element, points_frame, shaded, shaded_image  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
N_LABELS = 20
WIDTH, HEIGHT = 800, 600
SEED = 0


def blobs(n_cells: int, seed: int = SEED) -> tuple[np.ndarray, pd.Categorical, np.ndarray]:
    """Seeded gaussian blobs: positions, a 20-category label, and a gene-like float per cell."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(N_LABELS, 2)).astype(np.float32)
    spreads = rng.uniform(0.4, 1.5, size=N_LABELS).astype(np.float32)
    codes = rng.integers(0, N_LABELS, size=n_cells, dtype=np.int8)
    xy = rng.standard_normal((n_cells, 2), dtype=np.float32)
    xy *= spreads[codes, None]
    xy += centres[codes]
    level = rng.gamma(2.0, 1.0, size=N_LABELS).astype(np.float32)
    gene = np.log1p(level[codes] * rng.exponential(1.0, size=n_cells).astype(np.float32))
    labels = pd.Categorical.from_codes(codes, categories=[f"type {i:02d}" for i in range(N_LABELS)])
    return xy, labels, gene


def colorings(labels: pd.Categorical, gene: np.ndarray) -> dict[str, Coloring]:
    colors = {name: cc.palette["glasbey_category10"][i] for i, name in enumerate(labels.categories)}
    return {"label": Coloring("obs", "label", labels, colors), "gene": Coloring("gene", "gene", gene, None)}


def holoviews_render(points: hv.Points, coloring: Coloring):
    return shaded(points, coloring, dynamic=False, width=WIDTH, height=HEIGHT)


def datashader_render(frame: pd.DataFrame, coloring: Coloring, x_range, y_range):
    return shaded_image(frame, coloring, x_range, y_range, WIDTH, HEIGHT)


def timed(render, repeats: int) -> tuple[float, float, list[float]]:
    """First call (numba compiles there) apart, then the median of ``repeats`` calls."""
    start = time.perf_counter()
    render()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), times


def traced_peak_mb(render) -> float:
    """Peak of the memory one render allocates (numpy and Python), above what was live before."""
    gc.collect()
    tracemalloc.start()
    render()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def payload(element) -> tuple[int, str]:
    """Bytes and dtype of the image array in the bokeh data source of the rendered plot."""
    plot = hv.renderer("bokeh").get_plot(element)
    image = np.asarray(plot.handles["source"].data["image"][0])
    return image.nbytes, f"{image.dtype}[{image.shape[0]}x{image.shape[1]}]"


def run(n_cells: int, repeats: int) -> list[dict]:
    start = time.perf_counter()
    xy, labels, gene = blobs(n_cells)
    generated_s = time.perf_counter() - start
    rows = []
    for mode, coloring in colorings(labels, gene).items():
        frame = points_frame(xy, coloring)
        points = points_element(frame, axes(frame))
        x_range, y_range = points.get_dimension("x").range, points.get_dimension("y").range
        hv_first, hv_median, hv_times = timed(lambda: holoviews_render(points, coloring), repeats)
        ds_first, ds_median, _ = timed(lambda: datashader_render(frame, coloring, x_range, y_range), repeats)
        nbytes, layout = payload(holoviews_render(points, coloring))
        rows.append({
            "cells": n_cells,
            "mode": mode,
            "operation": "datashade(count_cat)+dynspread" if coloring.categorical else "rasterize(mean)+dynspread",
            "holoviews_median_s": hv_median,
            "holoviews_first_s": hv_first,
            "holoviews_times_s": hv_times,
            "datashader_median_s": ds_median,
            "datashader_first_s": ds_first,
            "holoviews_over_datashader": hv_median / ds_median,
            "render_peak_mb": traced_peak_mb(lambda: holoviews_render(points, coloring)),
            "frame_mb": frame.memory_usage(deep=True).sum() / 2**20,
            "payload_bytes": nbytes,
            "payload_array": layout,
            "generate_s": generated_s,
        })
        print(f"  {n_cells:,} cells by {mode}: {hv_median:.3f} s", file=sys.stderr, flush=True)
        del frame, points
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for n_cells in args.cells:
        rows += run(n_cells, args.repeats)
        gc.collect()
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    header = ("cells", "colour", "hv median s", "first s", "datashader s", "hv/ds", "render peak MB", "payload")
    print(f"\nserver-side render of one {WIDTH}x{HEIGHT} update, median of {args.repeats}")
    print("{:>12} {:>6} {:>12} {:>8} {:>13} {:>6} {:>15} {:>24}".format(*header))
    for r in rows:
        print("{:>12,} {:>6} {:>12.3f} {:>8.2f} {:>13.3f} {:>6.2f} {:>15.0f} {:>24}".format(
            r["cells"], r["mode"], r["holoviews_median_s"], r["holoviews_first_s"], r["datashader_median_s"],
            r["holoviews_over_datashader"], r["render_peak_mb"],
            f"{r['payload_bytes'] / 1e6:.2f} MB {r['payload_array']}",
        ))
    print("datashader s: Canvas.points + shade + dynspread to RGBA; holoviews leaves a gene's colours to the browser")
    print(f"process max RSS: {max_rss_mb:.0f} MB (data included)")

    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "holoviews": hv.__version__,
        "datashader": ds.__version__,
    }
    report = {
        "canvas": [WIDTH, HEIGHT], "repeats": args.repeats, "max_rss_mb": max_rss_mb, "machine": machine, "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "render.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
