"""Figures. The only module that imports matplotlib.

Every function builds a :class:`matplotlib.figure.Figure` directly (no
``pyplot``, so no global figure registry and no GUI backend), returns it and
never calls ``show()``: it is safe under the Agg backend, on a server and in
tests. Pass ``ax=`` to draw into an axes of your own figure instead; save
with :func:`save`, which writes atomically.

Examples:
    >>> import jax
    >>> from dlvr_jax import data, viz
    >>> fig = viz.plot_dataset(data.circle(jax.random.key(0), 100))
    >>> type(fig).__name__
    'Figure'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from dlvr_jax import _io
from dlvr_jax.data import Dataset
from dlvr_jax.perceptron import Params

__all__ = ["plot_dataset", "plot_decision_boundary", "plot_mistakes", "save"]

# The chapter's colours: class +1 (or 1) red, class -1 (or 0) blue.
_NEGATIVE, _POSITIVE = "#1f4fd1", "#d62728"
_REGIONS = ListedColormap(["#c6d4f5", "#f5c6c6"])


def _axes(ax: Axes | None, size: tuple[float, float] = (6.0, 6.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        figure = ax.get_figure()
        if not isinstance(figure, Figure):  # a SubFigure: use its root figure
            figure = figure.figure  # type: ignore[union-attr]
        return figure, ax
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def _scatter(ax: Axes, data: Dataset) -> None:
    x = np.asarray(data.x)
    y = np.asarray(data.y)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"data.x must have shape (n, 2) to plot, got {x.shape}")
    if np.issubdtype(y.dtype, np.floating):  # regression targets: colour by value
        points = ax.scatter(
            x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=18, edgecolors="k", linewidths=0.3
        )
        ax.figure.colorbar(points, ax=ax, label="y")
        return
    positive = y > 0
    ax.scatter(
        x[~positive, 0],
        x[~positive, 1],
        s=18,
        c=_NEGATIVE,
        edgecolors="k",
        linewidths=0.3,
        label=f"class {int(y.min()) if (~positive).any() else 0}",
    )
    ax.scatter(
        x[positive, 0],
        x[positive, 1],
        s=18,
        c=_POSITIVE,
        edgecolors="k",
        linewidths=0.3,
        label="class 1",
    )
    ax.legend(loc="upper right", fontsize="small")


def plot_dataset(data: Dataset, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Scatter plot of a 2-D dataset: class 1 red, the other class blue.

    Regression targets are shown as a colour scale instead.
    """
    figure, ax = _axes(ax)
    _scatter(ax, data)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return figure


def _bounds(x: np.ndarray, pad: float) -> tuple[float, float, float, float]:
    low = x.min(axis=0) - pad
    high = x.max(axis=0) + pad
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])


def plot_decision_boundary(
    predict_fn: Callable[[jax.Array], Any],
    data: Dataset,
    *,
    ax: Axes | None = None,
    resolution: int = 200,
    pad: float = 0.5,
    line: Params | None = None,
    title: str | None = None,
) -> Figure:
    """Filled contour of a classifier's output over the plane, with the data on top.

    ``predict_fn`` maps ``float32[m, 2]`` points to ``m`` labels or scores; it
    is evaluated on the whole ``resolution × resolution`` grid in one jitted
    call. Outputs with two values (labels) give two flat regions; any other
    output (probabilities, scores) is shaded continuously.

    Args:
        predict_fn: the classifier, e.g. ``lambda g: perceptron.predict(params, g)``.
        data: the points to draw on top; they also set the plotted window.
        ax: draw into this axes instead of a new figure.
        resolution: grid points per axis, ``>= 2``.
        pad: margin added around the data, in data units.
        line: for a linear model, the :class:`~dlvr_jax.perceptron.Params` whose
            line ``w · x + b = 0`` is drawn in black, as in the chapter.
        title: the axes title.
    """
    if not callable(predict_fn):
        raise TypeError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    figure, ax = _axes(ax)
    x0, x1, y0, y1 = _bounds(np.asarray(data.x), pad)
    u, v = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = jnp.asarray(np.stack([u.ravel(), v.ravel()], axis=1), jnp.float32)
    values = np.asarray(jax.jit(predict_fn)(grid), dtype=np.float64).reshape(u.shape)
    levels = np.unique(values)
    if levels.size <= 2:
        split = levels.mean() if levels.size == 2 else levels[0]
        ax.contourf(u, v, values >= split, levels=[-0.5, 0.5, 1.5], cmap=_REGIONS, vmin=0, vmax=1)
    else:
        shaded = ax.contourf(u, v, values, levels=20, cmap="coolwarm", alpha=0.6)
        figure.colorbar(shaded, ax=ax, label="model output")
    _scatter(ax, data)
    if line is not None:
        w = np.asarray(line.w, dtype=np.float64)
        b = float(line.b)
        if w.shape != (2,):
            raise ValueError(f"line.w must have shape (2,), got {w.shape}")
        if abs(w[1]) > 1e-12:
            xs = np.array([x0, x1])
            ax.plot(xs, (-b - w[0] * xs) / w[1], "k-", linewidth=2, label="w·x + b = 0")
        elif abs(w[0]) > 1e-12:
            ax.axvline(-b / w[0], color="k", linewidth=2, label="w·x + b = 0")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return figure


def plot_mistakes(
    mistakes_per_epoch: Any,
    epochs: Any,
    *,
    ax: Axes | None = None,
    title: str = "Perceptron: mistakes per epoch",
) -> Figure:
    """Mistakes per epoch of a perceptron run (the first ``epochs`` entries)."""
    count = int(epochs)
    mistakes = np.asarray(mistakes_per_epoch)[:count]
    figure, ax = _axes(ax, (6.0, 3.5))
    ax.plot(np.arange(1, count + 1), mistakes, marker="o" if count <= 50 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mistakes")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return figure


def save(figure: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> None:
    """Saves ``figure`` to ``path`` atomically; the format follows the file suffix."""
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    _io.write_atomic(path, lambda stream: figure.savefig(stream, format=suffix, dpi=dpi))
