"""Figures of the descent toolkit (Exercise 1.3): paths over an objective, and convergence.

- :func:`plot_optimization_paths`: :class:`~dlvr_jax.descent.Path` runs over a toy
  objective, on its contour map (or 3-D surface, or curve for one variable).
- :func:`plot_convergence`: ``f - f*`` against the step, for many runs (one panel
  per batch size for a :func:`~dlvr_jax.descent.convergence_grid`).

Import them from :mod:`dlvr_jax.viz`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from dlvr_jax.descent import Path
from dlvr_jax.viz import _figure

__all__ = ["plot_convergence", "plot_optimization_paths"]


_Run = tuple[np.ndarray, np.ndarray, int, bool, bool]
"""A visited path: ``(xs [steps + 1, d], values [steps + 1], steps, converged, diverged)``."""


def _descent_paths(paths: Any) -> dict[str, _Run]:
    """``{name: Path}`` -> ``{name: (xs, values, steps, converged, diverged)}``, visited part."""
    if not isinstance(paths, Mapping) or not paths:
        raise TypeError(
            f"paths must be a non-empty mapping name -> descent.Path, got {type(paths).__name__}"
        )
    out = {}
    for name, path in paths.items():
        if not isinstance(path, Path):
            raise TypeError(f"paths[{name!r}] must be an descent.Path, got {type(path).__name__}")
        xs = np.asarray(path.xs, dtype=np.float64)
        values = np.asarray(path.values, dtype=np.float64)
        if xs.ndim not in (1, 2) or values.ndim != 1 or xs.shape[0] != values.shape[0]:
            raise ValueError(
                f"paths[{name!r}] must be a single path (xs [T] or [T, d], values [T]), "
                f"got xs {xs.shape} and values {values.shape}; index a vmapped Path first"
            )
        steps = int(path.steps)
        out[str(name)] = (
            xs[: steps + 1].reshape(steps + 1, -1),
            values[: steps + 1],
            steps,
            bool(path.converged),
            bool(path.diverged),
        )
    return out


def _descent_label(name: str, run: _Run) -> str:
    _, values, steps, converged, diverged = run
    status = ", converged" if converged else ", diverged" if diverged else ""
    return f"{name}: {steps} steps{status}, f = {values[-1]:.3g}"


# A path's last point: a star when it converged, a square when it stopped, a cross (diverged).
_PATH_ENDS = {True: "*", False: "s"}


def _check_paths_plot(
    f: Any, paths: Any, kind: str, resolution: int | None, levels: int
) -> tuple[dict[str, _Run], int, int]:
    """Checks ``plot_optimization_paths``' arguments; returns the runs, dimension and resolution."""
    if not callable(f):
        raise TypeError(f"f must be a callable x -> scalar, got {type(f).__name__}")
    if kind not in ("contour", "surface"):
        raise ValueError(f"unknown kind {kind!r}; expected one of ['contour', 'surface']")
    drawn = _descent_paths(paths)
    dims = {xs.shape[1] for xs, *_ in drawn.values()}
    if len(dims) != 1 or not dims <= {1, 2}:
        raise ValueError(f"paths must all be of one or all of two variables, got {sorted(dims)}")
    dim = dims.pop()
    if resolution is None:
        resolution = 60 if kind == "surface" else 200
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an int >= 2, got {levels!r}")
    return drawn, dim, resolution


def _draw_paths_on_curve(
    ax: Axes,
    f: Callable[[jax.Array], Any],
    drawn: dict[str, _Run],
    window: tuple[float, float, float, float],
    resolution: int,
    marks: np.ndarray,
) -> None:
    """A function of one variable: its curve, each path's iterates on it, the minima."""
    x0, x1, y0, y1 = window
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    u = np.linspace(x0, x1, resolution)
    curve = np.asarray(jax.jit(jax.vmap(f))(jnp.asarray(u[:, None], jnp.float32)))
    ax.plot(u, curve, color="0.3", linewidth=1.0, label="f")
    for index, (name, run) in enumerate(drawn.items()):
        xs, values, *_ = run
        ax.plot(
            xs[:, 0],
            values,
            "-o",
            color=colours[index % len(colours)],
            markersize=3,
            linewidth=0.8,
            label=_descent_label(name, run),
        )
    for point in marks:
        ax.axvline(point[0], color="0.5", linestyle=":", linewidth=0.8)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$f(x)$")
    ax.legend(fontsize="small")


def _surface_axes(ax: Axes | None) -> tuple[Figure, Any]:
    """A new figure with one 3-D axes, or ``ax``'s figure when ``ax`` is a 3-D axes."""
    if ax is None:
        figure = Figure(figsize=(8.0, 6.5), layout="constrained")
        return figure, figure.add_subplot(projection="3d")
    if not hasattr(ax, "zaxis"):
        raise TypeError("kind='surface' needs a 3-D axes (projection='3d')")
    return _figure.axes(ax)


def _draw_paths_on_surface(
    ax3: Any,
    f: Callable[[jax.Array], Any],
    surface: tuple[np.ndarray, np.ndarray, np.ndarray],
    drawn: dict[str, _Run],
    marks: np.ndarray,
) -> None:
    """A function of two variables as an mplot3d surface, each path at its values' height."""
    u, v, z = surface
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    ax3.plot_surface(u, v, z, cmap="viridis", alpha=0.55, linewidth=0, antialiased=True)
    for index, (name, run) in enumerate(drawn.items()):
        xs, values, _, converged, diverged = run
        colour = colours[index % len(colours)]
        ax3.plot(
            xs[:, 0], xs[:, 1], values, color=colour, linewidth=2.0, label=_descent_label(name, run)
        )
        ax3.scatter(xs[:1, 0], xs[:1, 1], values[:1], color=colour, marker="o", s=30)
        ax3.scatter(
            xs[-1:, 0],
            xs[-1:, 1],
            values[-1:],
            color=colour,
            s=60,
            marker="x" if diverged else _PATH_ENDS[converged],
        )
    if marks.size:
        heights = np.asarray(jax.vmap(f)(jnp.asarray(marks, jnp.float32)))
        ax3.scatter(
            marks[:, 0],
            marks[:, 1],
            heights,
            marker="*",
            s=120,
            color="red",
            edgecolors="k",
            label="minimum",
        )
    ax3.set_zlabel("$f(x, y)$")


def _draw_log_contours(
    figure: Figure, ax: Axes, surface: tuple[np.ndarray, np.ndarray, np.ndarray], levels: int
) -> None:
    """Contour lines at log-spaced heights above the window's lowest value, with a colour bar."""
    u, v, z = surface
    offset = min(float(z.min()), 0.0)  # shift only a function that goes negative
    height = z - offset
    top = float(height.max()) if np.isfinite(height.max()) and height.max() > 0 else 1.0
    positive = height[height > 0]
    low = max(float(positive.min()) if positive.size else top * 1e-6, top * 1e-6)
    contours = ax.contour(
        u,
        v,
        np.maximum(height, low),
        levels=np.geomspace(low, top, levels),
        norm=LogNorm(vmin=low, vmax=top),
        cmap="viridis",
        linewidths=0.8,
    )
    label = "f" if offset == 0 else f"f − ({offset:.3g})"
    bar = figure.colorbar(contours, ax=ax, label=f"{label} (log-spaced levels)")
    ticks = [float(t) for t in np.geomspace(low, top, 6)]
    bar.set_ticks(ticks, labels=[f"{t:.2g}" for t in ticks])
    bar.minorticks_off()


def _draw_paths_on_plane(ax: Axes, drawn: dict[str, _Run], marks: np.ndarray) -> None:
    """Each path as a line from a circle (start) to its end mark, and the minima as stars."""
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, run) in enumerate(drawn.items()):
        xs, _, steps, converged, diverged = run
        colour = colours[index % len(colours)]
        ax.plot(
            xs[:, 0],
            xs[:, 1],
            "-",
            color=colour,
            linewidth=1.6,
            marker="." if steps <= 200 else None,
            markersize=4,
            label=_descent_label(name, run),
        )
        ax.plot(xs[0, 0], xs[0, 1], "o", color=colour, markeredgecolor="k", markersize=7)
        ax.plot(
            xs[-1, 0],
            xs[-1, 1],
            "x" if diverged else _PATH_ENDS[converged],
            color=colour,
            markeredgecolor="k",
            markersize=10,
        )
    if marks.size:
        ax.plot(
            marks[:, 0],
            marks[:, 1],
            "*",
            color="red",
            markeredgecolor="k",
            markersize=14,
            linestyle="none",
            label="minimum",
        )


def plot_optimization_paths(
    f: Callable[[jax.Array], Any],
    paths: Mapping[str, Path],
    *,
    extent: tuple[float, float, float, float],
    kind: str = "contour",
    minima: Any = (),
    resolution: int | None = None,
    levels: int = 30,
    ax: Axes | None = None,
    title: str = "Optimization paths",
) -> Figure:
    """Optimization paths drawn over the objective: a 2-D contour map or a 3-D surface.

    For a function of two variables, ``kind="contour"`` draws contour lines
    at log-spaced heights above the lowest value in the window (so the flat
    valleys near a minimum show) and each path as a line from a circle (start)
    to its end: a star when it converged, a cross when it diverged, a square
    otherwise. ``kind="surface"`` draws the surface with mplot3d and each path
    at the height of its values. For a function of one variable the curve is
    drawn with each path's iterates on it. ``f`` is evaluated on the whole grid
    in one jitted ``vmap`` call; paths that leave the window are clipped.

    Args:
        f: the objective, e.g. ``descent.rosenbrock``.
        paths: ``{name: descent.Path}``, e.g. from :func:`dlvr_jax.descent.compare`.
        extent: the window ``(x0, x1, y0, y1)``; for one variable, the ``x``
            range and the ``f`` range.
        kind: ``"contour"`` or ``"surface"`` (two variables only).
        minima: points to mark, e.g. ``descent.OBJECTIVES[name].minima``.
        resolution: grid points per axis (default 200 for contours, 60 for surfaces).
        levels: number of contour levels, ``>= 2``.
        ax: draw into this axes (a ``projection="3d"`` one for surfaces).
        title: the axes title.

    Raises:
        TypeError: ``f`` not callable, ``paths`` not a mapping of paths, bad ``extent``.
        ValueError: unknown ``kind``, paths of mixed or unsupported dimension,
            a surface for one variable, bad ``resolution`` or ``levels``.
    """
    drawn, dim, resolution = _check_paths_plot(f, paths, kind, resolution, levels)
    window = _figure.window(None, extent, 0.0)
    x0, x1, y0, y1 = window
    marks = np.asarray(minima, dtype=np.float64).reshape(-1, dim)
    if dim == 1:
        if kind == "surface":
            raise ValueError("kind='surface' needs a function of two variables; use 'contour'")
        figure, ax = _figure.axes(ax, (7.0, 5.0))
        _draw_paths_on_curve(ax, f, drawn, window, resolution, marks)
        ax.set_title(title)
        return figure
    u, v = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = jnp.asarray(np.stack([u.ravel(), v.ravel()], axis=1), jnp.float32)
    z = np.asarray(jax.jit(jax.vmap(f))(grid), dtype=np.float64).reshape(u.shape)
    if kind == "surface":
        figure, ax3 = _surface_axes(ax)
        _draw_paths_on_surface(ax3, f, (u, v, z), drawn, marks)
        ax3.set_xlim(x0, x1)
        ax3.set_ylim(y0, y1)
        ax3.set_xlabel("$x$")
        ax3.set_ylabel("$y$")
        ax3.legend(fontsize="small", loc="upper left")
        ax3.set_title(title)
        return figure
    figure, ax = _figure.axes(ax, (7.0, 6.0))
    _draw_log_contours(figure, ax, (u, v, z), levels)
    _draw_paths_on_plane(ax, drawn, marks)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    ax.legend(fontsize="small")
    ax.set_title(title)
    return figure


def plot_convergence(
    paths: Mapping[Any, Path],
    f_star: float,
    *,
    floor: float = 1e-12,
    log_steps: bool = False,
    title: str = "Convergence: f − f* against the step",
) -> Figure:
    """The gap ``f(x_k) − f*`` on a log scale against the step, for many runs.

    With keys ``(learning_rate, batch_size)`` (as :func:`dlvr_jax.descent.convergence_grid`
    returns) there is one panel per batch size and one colour per learning rate,
    the same in every panel; with any other keys (e.g. optimizer names), one
    panel with one line per run. A diverged run ends in a cross.

    Args:
        paths: ``{(learning_rate, batch_size): Path}`` or ``{name: Path}``.
        f_star: the minimum value, finite (e.g. ``descent.least_squares_solution(problem)[1]``).
        floor: gaps below this (rounding) are drawn at it, ``> 0``.
        log_steps: a logarithmic step axis.
        title: the figure title.

    Raises:
        TypeError: ``paths`` is not a mapping of paths.
        ValueError: a non-finite ``f_star`` or ``floor <= 0``.
    """
    f_star_value: Any = f_star
    if isinstance(f_star_value, bool) or not isinstance(
        f_star_value, numbers.Real | np.ndarray | jax.Array
    ):
        raise TypeError(f"f_star must be a real number, got {f_star!r}")
    f_star = float(f_star_value)
    if not math.isfinite(f_star):
        raise ValueError(f"f_star must be finite (an objective with a minimum), got {f_star}")
    floor_value: Any = floor
    if isinstance(floor_value, bool) or not isinstance(floor_value, numbers.Real) or floor <= 0:
        raise ValueError(f"floor must be a number > 0, got {floor!r}")
    if not isinstance(paths, Mapping) or not paths:
        raise TypeError(
            f"paths must be a non-empty mapping -> descent.Path, got {type(paths).__name__}"
        )
    grid = all(isinstance(k, tuple) and len(k) == 2 for k in paths)
    drawn = _descent_paths({str(k): v for k, v in paths.items()})
    runs = list(zip(paths, drawn.values(), strict=True))
    if grid:
        batches = sorted({k[1] for k in paths})
        rates = sorted({k[0] for k in paths})
    else:
        batches, rates = [None], [str(k) for k in paths]
    figure = Figure(figsize=(max(6.0, 4.5 * len(batches)), 4.8), layout="constrained")
    axes = figure.subplots(1, len(batches), sharey=True, squeeze=False)[0]
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for key, (_, values, steps, _, diverged) in runs:
        column = batches.index(key[1]) if grid else 0
        index = rates.index(key[0] if grid else str(key))
        colour = colours[index % len(colours)]
        ax = axes[column]
        gap = np.maximum(values - f_star, floor)
        name = f"η = {key[0]:g}" if grid else str(key)
        ax.plot(
            np.arange(steps + 1),
            gap,
            color=colour,
            label=name + (" (diverged)" if diverged else ""),
        )
        if diverged:
            ax.plot(steps, gap[-1], "x", color=colour, markersize=9)
    for column, ax in enumerate(axes):
        ax.set_yscale("log")
        if log_steps:
            ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("step (parameter update)")
        if grid:
            ax.set_title(f"batch size {batches[column]}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    axes[0].set_ylabel("f − f*")
    figure.suptitle(title)
    return figure
