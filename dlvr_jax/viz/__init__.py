"""Figures. The only module that imports matplotlib.

Every function builds a :class:`matplotlib.figure.Figure` directly (no
``pyplot``, so no global figure registry and no GUI backend), returns it and
never calls ``show()``: it is safe under the Agg backend, on a server and in
tests. Pass ``ax=`` to draw into an axes of your own figure instead; save
with :func:`save`, which writes atomically.

The figures, and what they take:

- :func:`plot_dataset`, :func:`plot_decision_boundary`: a :class:`~dlvr_jax.data.Dataset`
  and a ``predict_fn(float32[m, 2]) -> float[m]`` (labels, scores or ``P(class 1)``).
- :func:`plot_mistakes`: a perceptron run's mistakes per epoch.
- :func:`plot_loss_curve`, :func:`plot_activation_comparison`: :class:`~dlvr_jax.train.History`.
- :func:`plot_gradient_heatmap`: a gradient pytree shaped like the params (layers × units).
- :func:`plot_neuron_maps`: a :class:`~dlvr_jax.models.MLP` and its params (every unit's output
  over the plane, the TensorFlow Playground's picture).
- :func:`plot_optimization_paths`, :func:`plot_convergence`: :class:`~dlvr_jax.descent.Path`
  runs over a toy objective (contour or 3-D surface) and ``f - f*`` against the step.
- :func:`plot_sweep_heatmap`, :func:`plot_matmul_scaling`: tables of measurements (a sweep's
  rows, the matmul benchmark's results).

They live in one module per concept, all imported here (use ``viz.plot_x``):
:mod:`dlvr_jax.viz.training` (the chapter's figures of a dataset, a model and its
training), :mod:`dlvr_jax.viz.optimization` (the descent toolkit's) and
:mod:`dlvr_jax.viz.measurements` (sweeps and benchmarks); ``viz._figure`` holds
what they share.

Examples:
    >>> import jax
    >>> from dlvr_jax import data, viz
    >>> fig = viz.plot_dataset(data.circle(jax.random.key(0), 100))
    >>> type(fig).__name__
    'Figure'
"""

from __future__ import annotations

import os
from typing import Any

from matplotlib.figure import Figure

from dlvr_jax import _io
from dlvr_jax.viz.measurements import plot_matmul_scaling, plot_sweep_heatmap
from dlvr_jax.viz.optimization import plot_convergence, plot_optimization_paths
from dlvr_jax.viz.training import (
    plot_activation_comparison,
    plot_dataset,
    plot_decision_boundary,
    plot_gradient_heatmap,
    plot_loss_curve,
    plot_mistakes,
    plot_neuron_maps,
)

__all__ = [
    "plot_activation_comparison",
    "plot_convergence",
    "plot_dataset",
    "plot_decision_boundary",
    "plot_gradient_heatmap",
    "plot_loss_curve",
    "plot_matmul_scaling",
    "plot_mistakes",
    "plot_neuron_maps",
    "plot_optimization_paths",
    "plot_sweep_heatmap",
    "save",
]

# PNG compression: zlib level 3 writes the same pixels as matplotlib's default (6) about
# a quarter faster, in files about a sixth larger.
_PNG_OPTIONS = {"compress_level": 3}


def save(figure: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> None:
    """Saves ``figure`` to ``path`` atomically; the format follows the file suffix."""
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    options: dict[str, Any] = {"pil_kwargs": _PNG_OPTIONS} if suffix.lower() == "png" else {}
    _io.write_atomic(path, lambda stream: figure.savefig(stream, format=suffix, dpi=dpi, **options))
