"""Figures of measurement tables: a hyperparameter sweep's, and the matmul benchmark's.

- :func:`plot_sweep_heatmap`: the rows of :func:`dlvr_jax.parallel.sweep_table`, as the
  mean and spread over seeds on a learning rate × batch size grid.
- :func:`plot_matmul_scaling`: ``python -m benchmarks matmul``'s ``results.json``.

Import them from :mod:`dlvr_jax.viz`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dlvr_jax import parallel
from dlvr_jax.viz import _figure

__all__ = ["plot_matmul_scaling", "plot_sweep_heatmap"]

_MATMUL_STYLES = {
    "matmul_blocked": ("#d62728", "o"),
    "jnp.matmul": ("#1f4fd1", "s"),
    "numpy": ("#2ca02c", "^"),
    "matmul_naive": ("#7f7f7f", "x"),
}


def plot_sweep_heatmap(
    rows: Any,
    *,
    metrics: tuple[str, ...] = ("test_accuracy", "test_loss"),
    title: str = "Sensitivity: learning rate × batch size",
) -> Figure:
    """Heatmaps of final metrics over learning rate × batch size: mean (top) and spread (bottom).

    Each cell is the mean over seeds of the metric at the end of training; the
    row below shows the standard deviation over the seeds. Cells where every
    seed diverged are grey and marked ``div``.

    Args:
        rows: the table of :func:`dlvr_jax.parallel.sweep_table`.
        metrics: the columns to show (each a panel pair).
        title: the figure title.
    """
    if not isinstance(metrics, tuple) or not metrics:
        raise TypeError(f"metrics must be a non-empty tuple of column names, got {metrics!r}")
    summaries = [parallel.sweep_summary(rows, metric) for metric in metrics]
    xs, ys = summaries[0][0], summaries[0][1]
    figure = Figure(
        figsize=(max(6.0, 0.55 * len(xs) + 2.5) * len(metrics), 2.0 + 1.3 * len(ys) * 2),
        layout="constrained",
    )
    axes = figure.subplots(2, len(metrics), squeeze=False)
    for column, (metric, (_, _, mean, std, count)) in enumerate(
        zip(metrics, summaries, strict=True)
    ):
        for row, (values, label) in enumerate(((mean, "mean"), (std, "std over seeds"))):
            ax = axes[row, column]
            reverse = "loss" in metric and row == 0
            cmap = mpl.colormaps["viridis_r" if reverse else "viridis"].with_extremes(bad="0.8")
            image = ax.imshow(
                np.ma.masked_invalid(values), aspect="auto", cmap=cmap, origin="lower"
            )
            figure.colorbar(image, ax=ax, shrink=0.85)
            for i in range(len(ys)):
                for j in range(len(xs)):
                    if count[i, j] == 0:
                        text, colour = "div", "black"
                    else:
                        text = f"{values[i, j]:.2f}"
                        red, green, blue, _ = image.cmap(image.norm(values[i, j]))
                        bright = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
                        colour = "black" if bright else "white"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
            ax.set_xticks(range(len(xs)), [f"{v:.0e}" for v in xs], rotation=60, fontsize=7)
            ax.set_yticks(range(len(ys)), [str(v) for v in ys])
            ax.set_xlabel("learning rate")
            ax.set_ylabel("batch size")
            ax.set_title(f"{metric.replace('_', ' ')}: {label}")
    figure.suptitle(title)
    return figure


def plot_matmul_scaling(
    results: Mapping[str, Any],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """GFLOP/s against n (log-log), one line per method, from the matmul benchmark.

    ``results`` is what ``python -m benchmarks matmul`` writes to
    ``results.json``: a mapping with a ``"square"`` list of rows
    ``{"method", "n", "gflops", ...}`` (and optionally ``"platform"``).
    """
    if not isinstance(results, Mapping) or not isinstance(results.get("square"), list):
        raise TypeError(
            "results must be a mapping with a 'square' list of rows, as written by "
            f"`python -m benchmarks matmul`, got {type(results).__name__}"
        )
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in results["square"]:
        if not isinstance(row, Mapping) or not {"method", "n", "gflops"} <= set(row):
            raise ValueError(f"each row needs 'method', 'n' and 'gflops', got {row!r}")
        curves.setdefault(str(row["method"]), []).append((int(row["n"]), float(row["gflops"])))
    if not curves:
        raise ValueError("results['square'] is empty: nothing to plot")
    figure, ax = _figure.axes(ax, (6.5, 4.5))
    for method, points in curves.items():
        n, gflops = zip(*sorted(points), strict=True)
        color, marker = _MATMUL_STYLES.get(method, (None, "."))
        ax.plot(n, gflops, marker=marker, color=color, label=method)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("n (float32 [n, n] @ [n, n])")
    ax.set_ylabel("GFLOP/s (2n³ / time)")
    platform = results.get("platform", "")
    ax.set_title(title or f"Matrix multiplication on {platform or 'the default device'}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return figure
