"""Internal to :mod:`dlvr_jax.viz`: what its figure modules share (public names, no API).

axes(ax, size)              -> (Figure, Axes)      the caller's axes, or a new figure
bounds(x, pad)              -> (x0, x1, y0, y1)    around points, padded
window(data, extent, pad)   -> (x0, x1, y0, y1)    a plot's window over the plane
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dlvr_jax.data import Dataset


def axes(ax: Axes | None, size: tuple[float, float] = (6.0, 6.0)) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new constrained-layout figure of ``size`` inches and its axes."""
    if ax is not None:
        figure = ax.get_figure()
        if not isinstance(figure, Figure):  # a SubFigure: use its root figure
            figure = figure.figure  # type: ignore[union-attr]
        return figure, ax
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def bounds(x: np.ndarray, pad: float) -> tuple[float, float, float, float]:
    """The window ``(x0, x1, y0, y1)`` around points ``x: [n, 2]``, ``pad`` wider on each side."""
    low = x.min(axis=0) - pad
    high = x.max(axis=0) + pad
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])


def window(data: Dataset | None, extent: Any, pad: float) -> tuple[float, float, float, float]:
    """A plot's window over the plane: ``extent`` checked, or ``data``'s (± ``pad``).

    Neither: the chapter's ``(-2.5, 2.5, -2.5, 2.5)``. Both: a ``ValueError``.
    """
    if extent is not None:
        if data is not None:
            raise ValueError("give data or extent, not both: extent would override the data")
        try:
            x0, x1, y0, y1 = (float(e) for e in extent)
        except (TypeError, ValueError):
            raise TypeError(
                f"extent must be four numbers (x0, x1, y0, y1), got {extent!r}"
            ) from None
        if not all(math.isfinite(e) for e in (x0, x1, y0, y1)) or x0 >= x1 or y0 >= y1:
            raise ValueError(
                f"extent must be finite with x0 < x1 and y0 < y1, got {(x0, x1, y0, y1)}"
            )
        return x0, x1, y0, y1
    if data is None:
        return -2.5, 2.5, -2.5, 2.5
    x = np.asarray(data.x)
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] == 0:
        raise ValueError(f"data.x must have shape (n, 2) with n >= 1, got {x.shape}")
    return bounds(x, pad)
