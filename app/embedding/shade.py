"""The explorer's rendering, shared by the page, the PNG export and bench/render.py.

Categories go through ``datashade`` with a categorical count (one RGBA image per update, whatever
the number of categories); numbers go through ``rasterize`` with a mean, sent as float32, so the
browser maps the colours and draws a colour bar. ``dynspread`` keeps isolated cells visible: it
composites categorical images "over" each other, and spreads a number by taking the larger of
neighbouring means ("max"), never their sum, so the colour bar spans exactly the cells' values.
"""
from __future__ import annotations

import io

import datashader as ds
import datashader.transfer_functions as tf
import holoviews as hv
import numpy as np
import pandas as pd
from bokeh.palettes import Viridis256
from holoviews.operation.datashader import datashade, dynspread, rasterize

from app.embedding.coloring import Coloring

LABEL, VALUE = "label", "value"
CMAP = list(Viridis256)
MIN_ALPHA = 100
SPREAD = {"threshold": 0.8, "max_px": 5}


def points_frame(xy: np.ndarray, coloring: Coloring) -> pd.DataFrame:
    """x, y and the colour column under a fixed name, so operations survive a change of gene."""
    column = LABEL if coloring.categorical else VALUE
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], column: coloring.values}, copy=False)


def extent(values: pd.Series) -> tuple[float, float]:
    """min to max with a 2% margin, so cells on the edge are not cut in half."""
    low, high = float(values.min()), float(values.max())
    margin = 0.02 * (high - low) if high > low else 0.5
    return low - margin, high + margin


def axes(frame: pd.DataFrame, labels: tuple[str, str] = ("x", "y")) -> list[hv.Dimension]:
    """x and y carrying the extent of all cells: no min/max pass per update, same frame when
    categories are hidden, and an empty frame (everything hidden) still has a canvas to shade."""
    return [hv.Dimension(axis, label=label, range=extent(frame[axis])) for axis, label in zip("xy", labels)]


def points_element(frame: pd.DataFrame, kdims: list[hv.Dimension]) -> hv.Points:
    return hv.Points(frame, kdims=kdims, vdims=[c for c in frame.columns if c not in ("x", "y")])


def shaded(points, coloring: Coloring, dynamic: bool = True, **canvas):
    """datashade(count_cat) or rasterize(mean), then dynspread; ``canvas`` fixes width/height/ranges."""
    if coloring.categorical:
        image = datashade(
            points,
            aggregator=ds.count_cat(LABEL),
            color_key=coloring.colors,
            min_alpha=MIN_ALPHA,
            dynamic=dynamic,
            **canvas,
        )
    else:
        image = rasterize(points, aggregator=ds.mean(VALUE), dynamic=dynamic, **canvas)
    spread = dynspread(image, dynamic=dynamic, how=None if coloring.categorical else "max", **SPREAD)
    if coloring.categorical:
        return spread.opts(show_legend=False)
    return spread.apply(_float32).opts(cmap=CMAP, colorbar=True)


def _float32(image: hv.Image) -> hv.Image:
    """Means sent as float32: half the bytes of datashader's float64 per update, same picture."""
    return image.clone(image.data.astype(np.float32))


def shaded_image(frame: pd.DataFrame, coloring: Coloring, x_range, y_range, width: int, height: int):
    """The view drawn by datashader's transfer functions alone (aggregate, shade, spread)."""
    canvas = ds.Canvas(plot_width=width, plot_height=height, x_range=x_range, y_range=y_range)
    if coloring.categorical:
        aggregate = canvas.points(frame, "x", "y", agg=ds.count_cat(LABEL))
        image = tf.shade(aggregate, color_key=coloring.colors, how="eq_hist", min_alpha=MIN_ALPHA)
    else:
        aggregate = canvas.points(frame, "x", "y", agg=ds.mean(VALUE))
        image = tf.shade(aggregate, cmap=CMAP, how="linear")
    return tf.dynspread(image, **SPREAD)


def png(frame: pd.DataFrame, coloring: Coloring, x_range, y_range, width: int = 800, height: int = 600) -> bytes:
    """The same picture drawn by datashader's transfer functions alone, on white, as PNG bytes."""
    image = tf.set_background(shaded_image(frame, coloring, x_range, y_range, width, height), "white")
    buffer = io.BytesIO()
    image.to_pil().save(buffer, format="PNG")
    return buffer.getvalue()
