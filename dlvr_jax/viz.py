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

Examples:
    >>> import jax
    >>> from dlvr_jax import data, viz
    >>> fig = viz.plot_dataset(data.circle(jax.random.key(0), 100))
    >>> type(fig).__name__
    'Figure'
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any, cast

import jax
import jax.numpy as jnp
import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from dlvr_jax import _io, models, parallel
from dlvr_jax.data import Dataset
from dlvr_jax.descent import Path
from dlvr_jax.perceptron import Params
from dlvr_jax.train import History  # at run time, so the docs resolve the hint to one class

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

# The chapter's colours: class +1 (or 1) red, class -1 (or 0) blue.
_NEGATIVE, _POSITIVE = "#1f4fd1", "#d62728"
_REGIONS = ListedColormap(["#c6d4f5", "#f5c6c6"])
_PROBABILITY = "P(class 1)"
# A logarithmic gradient scale spans at most six decades below its largest value.
_LOG_DECADES_FLOOR = 1e-6
# plot_neuron_maps' margins in inches (left: "layer 10" labels; top: title and "unit k").
_NEURON_MARGINS = (0.85, 0.1, 0.3, 0.55)
# PNG compression: zlib level 3 writes the same pixels as matplotlib's default (6) about
# a quarter faster, in files about a sixth larger.
_PNG_OPTIONS = {"compress_level": 3}


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


def _grid_values(predict_fn: Callable[[jax.Array], Any], grid: jax.Array) -> np.ndarray:
    """``predict_fn`` on the whole grid in one jitted call, as ``float64[m]``.

    ``(m, 1)`` outputs are squeezed; ``(m, 2)`` rows that are probabilities
    (in [0, 1], summing to 1) give their second column, ``P(class 1)``.
    """
    m = grid.shape[0]
    values = np.asarray(jax.jit(predict_fn)(grid), dtype=np.float64)
    if values.ndim == 2 and values.shape[0] == m and values.shape[1] == 1:
        values = values[:, 0]
    elif (
        values.ndim == 2
        and values.shape == (m, 2)
        and np.all((values >= 0) & (values <= 1))
        and np.allclose(values.sum(axis=1), 1.0, atol=1e-4)
    ):
        values = values[:, 1]
    if values.shape != (m,):
        raise ValueError(
            f"predict_fn must map float32[m, 2] points to m values (labels, scores or "
            f"P(class 1)), or to (m, 2) class probabilities; on a grid of m={m} points it "
            f"returned shape {values.shape}"
        )
    return values


def _positive_class(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Which grid cells a label-valued classifier puts in the positive class.

    Labels in {-1, +1} split at 0 and labels in {0, 1} at 0.5, so a model that
    predicts one class everywhere is still painted in that class's colour.
    """
    present = set(levels.tolist())
    if present <= {-1.0, 1.0}:
        return values > 0
    if present <= {0.0, 1.0}:
        return values > 0.5
    return values >= levels.mean()


def plot_decision_boundary(
    predict_fn: Callable[[jax.Array], Any],
    data: Dataset,
    *,
    ax: Axes | None = None,
    resolution: int = 200,
    pad: float = 0.5,
    line: Params | None = None,
    probability: bool | None = None,
    colorbar: bool = True,
    title: str | None = None,
) -> Figure:
    """Filled contour of a classifier's output over the plane, with the data on top.

    ``predict_fn`` maps ``float32[m, 2]`` points to ``m`` labels, scores or
    probabilities (``(m, 2)`` class probabilities such as
    :func:`dlvr_jax.train.probabilities` returns are accepted too: the second
    column is used); it is evaluated on the whole ``resolution × resolution``
    grid in one jitted call. Three kinds of output are drawn differently:

    - two values (labels): two flat regions, blue and red;
    - probabilities of class 1 (continuous, within [0, 1]): shaded on a fixed
      0..1 colour scale labelled ``P(class 1)``, with the ``P = 0.5`` contour,
      the decision boundary, drawn in black;
    - anything else (scores, logits): shaded on the range of the values.

    Args:
        predict_fn: the classifier, e.g. ``lambda g: perceptron.predict(params, g)``
            or ``lambda g: train.probabilities(model, params, g)[:, 1]``.
        data: the points to draw on top; they also set the plotted window.
        ax: draw into this axes instead of a new figure.
        resolution: grid points per axis, ``>= 2``.
        pad: margin added around the data, in data units.
        line: for a linear model, the :class:`~dlvr_jax.perceptron.Params` whose
            line ``w · x + b = 0`` is drawn in black, as in the chapter.
        probability: whether the output is ``P(class 1)``; None (default) decides
            from the values (continuous and within [0, 1]) unless ``data`` holds
            regression targets (float ``y``).
        colorbar: add a colour bar to shaded (continuous) outputs.
        title: the axes title.

    Raises:
        TypeError: ``predict_fn`` is not callable, or ``probability`` is not a bool or None.
        ValueError: bad ``resolution``, an output of the wrong shape, or
            ``probability=True`` with values outside [0, 1].
    """
    if not callable(predict_fn):
        raise TypeError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    if probability is not None and not isinstance(probability, bool):
        raise TypeError(f"probability must be True, False or None, got {probability!r}")
    figure, ax = _axes(ax)
    shaded, label = _draw_boundary(predict_fn, data, ax, resolution, pad, line, probability)
    if shaded is not None and colorbar:
        bar = figure.colorbar(shaded, ax=ax, label=label)
        if label == _PROBABILITY:
            bar.set_ticks([0.0, 0.25, 0.5, 0.75, 1.0])
    if title:
        ax.set_title(title)
    return figure


def _draw_boundary(
    predict_fn: Callable[[jax.Array], Any],
    data: Dataset,
    ax: Axes,
    resolution: int,
    pad: float,
    line: Params | None,
    probability: bool | None,
) -> tuple[Any, str]:
    """Draws the regions, data and line; returns the shading (or None) and its label."""
    x0, x1, y0, y1 = _bounds(np.asarray(data.x), pad)
    u, v = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = jnp.asarray(np.stack([u.ravel(), v.ravel()], axis=1), jnp.float32)
    values = _grid_values(predict_fn, grid).reshape(u.shape)
    in_unit_interval = bool(np.all((values >= 0.0) & (values <= 1.0)))
    if probability and not in_unit_interval:
        raise ValueError(
            "probability=True needs predict_fn to return values in [0, 1], got values in "
            f"[{values.min():.4g}, {values.max():.4g}]"
        )
    levels = np.unique(values)
    if probability is None:  # regression targets (float data.y) are never probabilities
        regression = np.issubdtype(np.asarray(data.y).dtype, np.floating)
        probability = levels.size > 2 and in_unit_interval and not regression
    shaded: Any = None
    label = ""
    if probability:
        shaded = ax.contourf(
            u,
            v,
            values,
            levels=np.linspace(0.0, 1.0, 21),
            cmap="coolwarm",
            alpha=0.6,
            vmin=0.0,
            vmax=1.0,
        )
        label = _PROBABILITY
        if values.min() < 0.5 < values.max():
            ax.contour(u, v, values, levels=[0.5], colors="k", linewidths=1.5)
    elif levels.size <= 2:
        positive = _positive_class(values, levels)
        ax.contourf(u, v, positive, levels=[-0.5, 0.5, 1.5], cmap=_REGIONS, vmin=0, vmax=1)
    else:
        shaded = ax.contourf(u, v, values, levels=20, cmap="coolwarm", alpha=0.6)
        label = "model output"
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
    return shaded, label


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


# ----------------------------------------------------------------------------
# Training figures: loss curves, gradients, neuron maps.


def _history_curves(name: str, history: Any) -> dict[str, np.ndarray | None]:
    """The per-epoch arrays of a :class:`~dlvr_jax.train.History`, checked, as float64."""
    if not all(
        hasattr(history, field)
        for field in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    ):
        raise TypeError(
            f"{name} must be a dlvr_jax.train.History (as train.fit returns), "
            f"got {type(history).__name__}"
        )
    train_loss = np.asarray(history.train_loss, dtype=np.float64)
    if train_loss.ndim != 1 or train_loss.size == 0:
        raise ValueError(
            f"{name}.train_loss must be a non-empty 1-D array (one entry per epoch), "
            f"got shape {train_loss.shape}"
        )
    curves: dict[str, np.ndarray | None] = {"train_loss": train_loss}
    for field in ("train_accuracy", "test_loss", "test_accuracy"):
        value = getattr(history, field)
        if value is None:
            curves[field] = None
            continue
        array = np.asarray(value, dtype=np.float64)
        if array.shape != train_loss.shape:
            raise ValueError(
                f"{name}.{field} must have one entry per epoch like {name}.train_loss "
                f"(shape {train_loss.shape}), got shape {array.shape}"
            )
        curves[field] = array
    return curves


def _has_values(array: np.ndarray | None) -> bool:
    return array is not None and bool(np.isfinite(array).any())


def plot_loss_curve(
    history: History,
    *,
    ax: Axes | None = None,
    title: str = "Training Loss Curve",
    log_scale: bool = False,
    accuracy: bool | None = None,
) -> Figure:
    """Loss per epoch (1-based) of a training run: train, and test when it was recorded.

    With ``accuracy`` (default: when the history has accuracies and no ``ax``
    is given) a second panel below shows train and test accuracy on the same
    epochs.

    Args:
        history: the :class:`~dlvr_jax.train.History` that :func:`dlvr_jax.train.fit` returns.
        ax: draw the loss into this axes instead of a new figure (no accuracy panel).
        title: the title of the loss axes.
        log_scale: a logarithmic loss axis.
        accuracy: add the accuracy panel; None decides as above.

    Raises:
        TypeError: ``history`` is not a History.
        ValueError: empty or mismatched curves, or ``accuracy=True`` with ``ax`` or
            without accuracies (regression).
    """
    curves = _history_curves("history", history)
    has_accuracy = _has_values(curves["train_accuracy"]) or _has_values(curves["test_accuracy"])
    if accuracy is None:
        accuracy = ax is None and has_accuracy
    elif accuracy:
        if ax is not None:
            raise ValueError("accuracy=True draws a second panel and cannot be used with ax=")
        if not has_accuracy:
            raise ValueError(
                "accuracy=True but the history has no accuracies (all NaN: a regression run)"
            )
    if ax is not None:
        figure, loss_ax = _axes(ax)
        accuracy_ax = None
    elif accuracy:
        figure = Figure(figsize=(8.0, 6.0), layout="constrained")
        loss_ax, accuracy_ax = figure.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]}
        )
    else:
        figure, loss_ax = _axes(None, (8.0, 6.0))
        accuracy_ax = None
    train_loss = curves["train_loss"]
    assert train_loss is not None
    epochs = np.arange(1, train_loss.size + 1)
    marker = "o" if epochs.size <= 50 else None
    loss_ax.plot(epochs, train_loss, color=_NEGATIVE, marker=marker, label="train")
    if curves["test_loss"] is not None:
        loss_ax.plot(epochs, curves["test_loss"], color=_POSITIVE, marker=marker, label="test")
    if log_scale:
        loss_ax.set_yscale("log")
    loss_ax.set_ylabel("loss")
    loss_ax.set_title(title)
    loss_ax.grid(alpha=0.3)
    loss_ax.legend()
    if accuracy_ax is not None:
        for field, colour, label in (
            ("train_accuracy", _NEGATIVE, "train"),
            ("test_accuracy", _POSITIVE, "test"),
        ):
            if _has_values(curves[field]):
                accuracy_ax.plot(epochs, curves[field], color=colour, marker=marker, label=label)
        accuracy_ax.set_ylabel("accuracy")
        accuracy_ax.set_xlabel("epoch")
        accuracy_ax.grid(alpha=0.3)
        accuracy_ax.legend(loc="lower right")
    else:
        loss_ax.set_xlabel("epoch")
    loss_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def _unit_gradient_norms(grads: Any) -> tuple[list[str], list[np.ndarray]]:
    """Layer names (input to output) and each layer's per-unit gradient norms."""
    if hasattr(grads, "final_grads") and hasattr(grads, "train_loss"):  # a History
        grads = grads.final_grads
    if not isinstance(grads, Mapping):
        raise TypeError(
            "grads must be a gradient pytree shaped like the params, a dict "
            f"({{'params': {{layer: {{'kernel', 'bias'}}}}}} or the inner dict), "
            f"got {type(grads).__name__}"
        )
    layers = models.dense_layers(grads)
    if not layers:
        tree = grads["params"] if isinstance(grads.get("params"), Mapping) else grads
        raise ValueError(
            "grads has no dense layers: expected dicts with a 2-D 'kernel' "
            f"(and a 'bias'), got top-level keys {sorted(tree)}"
        )
    names = [layer.name for layer in layers]
    norms = []
    for name, kernel, bias in layers:
        kernel = np.asarray(kernel, dtype=np.float64)
        squares = np.sum(kernel**2, axis=0)
        if bias is not None:
            bias = np.asarray(bias, dtype=np.float64)
            if bias.shape != (kernel.shape[1],):
                raise ValueError(
                    f"grads layer {name!r}: bias must have shape ({kernel.shape[1]},) to match "
                    f"kernel shape {kernel.shape}, got {bias.shape}"
                )
            squares = squares + bias**2
        norm = np.sqrt(squares)
        if not np.all(np.isfinite(norm)):
            raise ValueError(f"grads layer {name!r} has NaN or infinite gradients")
        norms.append(norm)
    return names, norms


def plot_gradient_heatmap(
    grads: Any,
    *,
    ax: Axes | None = None,
    title: str = "Gradient Heatmap",
    annotate: bool | None = None,
) -> Figure:
    r"""Heatmap of ``|gradient|``: one row per dense layer (input to output), one column per unit.

    The colour of unit :math:`j` of a layer with kernel gradient :math:`G` and
    bias gradient :math:`g` is the norm of everything that feeds it,

    .. math:: \sqrt{\textstyle\sum_i G_{ij}^2 + g_j^2}.

    Units are numbered from 1, as in :func:`plot_neuron_maps`. Layers narrower
    than the widest are padded with NaN and shown blank. The
    colour scale becomes logarithmic when the nonzero values span more than two
    decades; it then spans at most six decades below the largest value (smaller
    ones take its lowest colour) and exact zeros (dead units) are drawn grey.

    Args:
        grads: gradients shaped like the params: ``{"params": {...}}``, the inner
            dict, or a :class:`~dlvr_jax.train.History` (its ``final_grads``).
            Every dict with a 2-D ``kernel`` is a layer; ``hidden_2`` sorts before
            ``hidden_10`` and ``output`` goes last.
        ax: draw into this axes instead of a new figure.
        title: the axes title.
        annotate: write each value in its cell; None does so for grids of at most
            10 × 10.

    Raises:
        TypeError: ``grads`` is not a dict (or History).
        ValueError: no dense layers, mismatched bias, or non-finite gradients.
    """
    names, norms = _unit_gradient_norms(grads)
    width = max(norm.size for norm in norms)
    grid = np.full((len(names), width), np.nan)
    for row, norm in enumerate(norms):
        grid[row, : norm.size] = norm
    if annotate is None:
        annotate = grid.shape[0] <= 10 and grid.shape[1] <= 10
    figure, ax = _axes(ax, (8.0, 6.0))
    values = grid[np.isfinite(grid)]
    positive = values[values > 0]
    cmap = mpl.colormaps["viridis"].with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
    norm_: Normalize
    log = positive.size > 0 and positive.max() > 100.0 * positive.min()
    if log:
        floor = max(float(positive.min()), float(positive.max()) * _LOG_DECADES_FLOOR)
        norm_ = LogNorm(vmin=floor, vmax=positive.max())
        zeros = np.where(grid == 0.0, 1.0, np.nan)
        if np.any(zeros == 1.0):
            ax.imshow(
                np.ma.masked_invalid(zeros),
                cmap=ListedColormap(["#b0b0b0"]).with_extremes(bad=(0.0, 0.0, 0.0, 0.0)),
                aspect="auto",
                interpolation="nearest",
            )
    else:
        top = float(values.max()) if values.size and values.max() > 0 else 1.0
        norm_ = Normalize(vmin=0.0, vmax=top)
    image = ax.imshow(
        np.ma.masked_invalid(grid), cmap=cmap, norm=norm_, aspect="auto", interpolation="nearest"
    )
    label = "|gradient| (grey: exactly 0)" if log and np.any(grid == 0.0) else "|gradient|"
    clipped = log and bool(np.any((grid > 0) & (grid < norm_.vmin)))
    figure.colorbar(image, ax=ax, label=label, extend="min" if clipped else "neither")
    if annotate:
        for (row, column), value in np.ndenumerate(grid):
            if not np.isfinite(value):
                continue
            red, green, blue, _ = cmap(norm_(value)) if value > 0 or not log else (1, 1, 1, 1)
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
            ax.text(
                column,
                row,
                f"{value:.2g}",
                ha="center",
                va="center",
                fontsize="x-small",
                color="white" if dark else "black",
            )
    ax.set_yticks(np.arange(len(names)), labels=names)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{round(value) + 1}"))
    ax.set_xlabel("unit")
    ax.set_ylabel("layer (input → output)")
    ax.set_title(title)
    return figure


def _extent(data: Dataset | None, extent: Any, pad: float) -> tuple[float, float, float, float]:
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
    return _bounds(x, pad)


def _check_neuron_model(model: Any, params: Any) -> tuple[int, ...]:
    """Checks ``plot_neuron_maps``' model and params; returns the hidden widths."""
    if not isinstance(model, models.MLP):
        raise TypeError(f"model must be a dlvr_jax.models.MLP, got {type(model).__name__}")
    if not isinstance(params, Mapping) or not isinstance(params.get("params"), Mapping):
        raise TypeError(
            "params must be the model's variables {'params': {...}} as model.init returns, "
            f"got {type(params).__name__}"
        )
    widths = tuple(model.hidden)
    expected = [f"hidden_{i}" for i in range(len(widths))] + ["output"]
    found = models.layer_names(params)
    if found != expected:
        raise ValueError(f"params do not match the model: expected layers {expected}, got {found}")
    first = np.shape(params["params"][expected[0]]["kernel"])
    if first[0] != 2:
        raise ValueError(
            f"plot_neuron_maps needs a model with 2 inputs (a plane), got {first[0]} inputs"
        )
    return widths


def _neuron_values(
    model: models.MLP, params: Any, grid: jax.Array
) -> tuple[list[jax.Array], jax.Array]:
    """Every hidden unit's activation and the model's output on ``grid``, in one jitted call."""

    def evaluate(variables: Any, points: jax.Array) -> tuple[list[jax.Array], jax.Array]:
        # (models.hidden_activations needs at least one hidden layer to have sown.)
        hidden = models.hidden_activations(model, variables, points) if tuple(model.hidden) else []
        return hidden, cast(jax.Array, model.apply(variables, points))

    return cast(tuple[list[jax.Array], jax.Array], jax.jit(evaluate)(params, grid))


def _output_map(outputs: jax.Array, regression: bool) -> tuple[np.ndarray, Normalize, str]:
    """The output row's values, colour scale and label: ``P(class 1)``, or the raw output."""
    logits = np.asarray(outputs, dtype=np.float64)
    if regression:
        output = logits[:, 0]
        scale = float(np.abs(output).max()) or 1.0
        return output, Normalize(-scale, scale), "output"
    if logits.shape[1] == 1:
        output = 1.0 / (1.0 + np.exp(-logits[:, 0]))
        return output, Normalize(0.0, 1.0), "P(class 1)"
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    output = shifted[:, 1] / shifted.sum(axis=1)
    return output, Normalize(0.0, 1.0), "P(class 1)"


def _neuron_grid(widths: tuple[int, ...]) -> tuple[Figure, Any]:
    """The figure and its grid of thumbnails: one row per hidden layer plus the output row."""
    columns = max((*widths, 1))
    rows = len(widths) + 1
    size = min(1.2, 12.0 / columns)
    width, height = size * columns + 1.2, size * rows + 0.6
    # Fixed margins, in inches, instead of a layout engine: the thumbnails carry no
    # ticks, so the room their labels need is known, and constrained layout spent
    # most of savefig's time measuring ~40 axes (0.46 s -> 0.19 s for 41 thumbnails).
    figure = Figure(figsize=(width, height))
    cells = figure.add_gridspec(
        rows,
        columns,
        left=_NEURON_MARGINS[0] / width,
        right=1 - _NEURON_MARGINS[1] / width,
        bottom=_NEURON_MARGINS[2] / height,
        top=1 - _NEURON_MARGINS[3] / height,
        wspace=0.08,
        hspace=0.08,
    )
    return figure, cells


def _thumbnail(figure: Figure, cell: Any) -> Axes:
    """An axes without ticks and with equal aspect, for one map."""
    ax = figure.add_subplot(cell)
    ax.xaxis.set_major_locator(NullLocator())  # no ticks (cheaper than set_xticks([]))
    ax.yaxis.set_major_locator(NullLocator())
    ax.set_aspect("equal")
    return ax


def _draw_unit_maps(
    figure: Figure,
    cells: Any,
    hidden: list[jax.Array],
    resolution: int,
    window: tuple[float, float, float, float],
) -> None:
    """One thumbnail per hidden unit, each on a diverging scale of its own size."""
    for layer, values in enumerate(hidden):
        maps = np.asarray(values, dtype=np.float64).reshape(resolution, resolution, -1)
        for unit in range(maps.shape[-1]):
            ax = _thumbnail(figure, cells[layer, unit])
            unit_map = maps[..., unit]
            scale = float(np.abs(unit_map).max()) or 1.0
            ax.imshow(
                unit_map,
                origin="lower",
                extent=window,
                cmap="RdBu_r",
                norm=Normalize(-scale, scale),
                interpolation="bilinear",
            )
            if unit == 0:
                ax.set_ylabel(f"layer {layer + 1}", rotation=0, ha="right", va="center")
            if layer == 0:
                ax.set_title(f"unit {unit + 1}", fontsize="small")


def _draw_output_map(
    ax: Axes,
    output: np.ndarray,
    norm: Normalize,
    data: Dataset | None,
    regression: bool,
    resolution: int,
    window: tuple[float, float, float, float],
) -> None:
    """The model's output over the plane, with the data on top."""
    ax.imshow(
        output.reshape(resolution, resolution),
        origin="lower",
        extent=window,
        cmap="RdBu_r" if regression else "coolwarm",
        norm=norm,
        interpolation="bilinear",
    )
    if data is not None:
        x = np.asarray(data.x)
        y = np.asarray(data.y)
        colours = np.where(y > 0, _POSITIVE, _NEGATIVE) if not regression else "k"
        ax.scatter(x[:, 0], x[:, 1], s=1.0, c=colours, alpha=0.5, linewidths=0)
        ax.set_xlim(window[0], window[1])
        ax.set_ylim(window[2], window[3])
    ax.set_ylabel("output", rotation=0, ha="right", va="center")


def plot_neuron_maps(
    model: models.MLP,
    params: Any,
    data: Dataset | None = None,
    *,
    resolution: int = 60,
    pad: float = 0.5,
    extent: tuple[float, float, float, float] | None = None,
    title: str = "What each neuron computes",
) -> Figure:
    """Every hidden unit's output over the input plane, as a grid of thumbnails.

    The TensorFlow Playground's picture: one row per hidden layer (``layer 1``
    is the first), one column per unit, and a last row with the model's
    output. Each hidden unit is drawn after its activation, on a diverging
    colour scale centred at 0 and scaled by its own largest ``|value|`` (blue
    negative, white 0, red positive), so its pattern shows whatever its size; a
    dead unit is blank white. The output is ``P(class 1)`` on a fixed 0..1
    scale (softmax of two or more logits, sigmoid of one logit; for
    regression data, float ``data.y``, the raw output on a diverging scale),
    with the data on top. All units are evaluated on the grid in one jitted call.

    Args:
        model: a :class:`dlvr_jax.models.MLP` with 2 inputs.
        params: its variables, as ``model.init`` or ``train.fit`` return them.
        data: optional points; they set the window (± ``pad``) and are drawn on the output.
        resolution: grid points per axis, ``>= 2``.
        pad: margin added around the data.
        extent: the window ``(x0, x1, y0, y1)`` when there is no data; default
            ``(-2.5, 2.5, -2.5, 2.5)``, the chapter's.
        title: the figure title.

    Raises:
        TypeError: ``model`` is not an MLP, or a bad ``extent``.
        ValueError: params that do not match the model, a model without 2 inputs,
            bad ``resolution``, or both ``data`` and ``extent``.
    """
    widths = _check_neuron_model(model, params)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    pad_value: Any = pad
    if isinstance(pad_value, bool) or not isinstance(pad_value, numbers.Real) or not pad >= 0:
        raise ValueError(f"pad must be a number >= 0, got {pad!r}")
    window = _extent(data, extent, float(pad))
    x0, x1, y0, y1 = window
    u, v = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = jnp.asarray(np.stack([u.ravel(), v.ravel()], axis=1), jnp.float32)
    hidden, outputs = _neuron_values(model, params, grid)
    regression = data is not None and np.issubdtype(np.asarray(data.y).dtype, np.floating)
    output, output_norm, output_label = _output_map(outputs, regression)
    figure, cells = _neuron_grid(widths)
    _draw_unit_maps(figure, cells, hidden, resolution, window)
    ax = _thumbnail(figure, cells[len(widths), 0])
    _draw_output_map(ax, output, output_norm, data, regression, resolution, window)
    if len(widths) == 0:
        ax.set_title(output_label, fontsize="small")
    else:
        ax.set_xlabel(output_label, fontsize="small")
    figure.suptitle(title)
    return figure


_Panel = tuple[str, Callable[[jax.Array], Any], Dataset]
"""A decision-boundary panel of ``plot_activation_comparison``: ``(name, predict_fn, data)``."""


def _boundary_panels(boundaries: Any) -> list[_Panel]:
    """Checks ``boundaries`` (``None`` or name -> ``(predict_fn, data)``); returns the panels."""
    panels: list[_Panel] = []
    if boundaries is None:
        return panels
    if not isinstance(boundaries, Mapping):
        raise TypeError(
            "boundaries must be a mapping name -> (predict_fn, data), "
            f"got {type(boundaries).__name__}"
        )
    for name, entry in boundaries.items():
        if not (isinstance(entry, tuple) and len(entry) == 2 and callable(entry[0])):
            raise TypeError(
                f"boundaries[{name!r}] must be a pair (predict_fn, data), got {entry!r}"
            )
        if not (hasattr(entry[1], "x") and hasattr(entry[1], "y")):
            raise TypeError(
                f"boundaries[{name!r}] data must be a Dataset(x, y), got {type(entry[1]).__name__}"
            )
        panels.append((str(name), entry[0], entry[1]))
    return panels


def _draw_boundary_panels(
    figure: Figure, cells: Any, panels: list[_Panel], curves: Mapping[str, Any]
) -> None:
    """One decision-boundary panel per entry, titled with its run's final accuracy if any.

    Panels that shade ``P(class 1)`` share one colour bar on the fixed 0..1 scale.
    """
    probability_axes: list[Axes] = []
    probability_shading: Any = None
    for column, (name, predict_fn, points) in enumerate(panels):
        panel = figure.add_subplot(cells[1, column])
        label = name
        if name in curves:
            curve = curves[name]
            for field, kind in (("test_accuracy", "test"), ("train_accuracy", "train")):
                array = curve[field]
                if array is not None and np.isfinite(array[-1]):
                    label = f"{name} ({kind} accuracy {array[-1]:.3f})"
                    break
        shaded, shading = _draw_boundary(predict_fn, points, panel, 200, 0.5, None, None)
        panel.set_title(label)
        if shaded is not None and shading == _PROBABILITY:
            probability_axes.append(panel)
            probability_shading = shaded
        elif shaded is not None:
            figure.colorbar(shaded, ax=panel, label=shading)
    if probability_axes:  # one 0..1 scale, shared
        bar = figure.colorbar(probability_shading, ax=probability_axes, label=_PROBABILITY)
        bar.set_ticks([0.0, 0.25, 0.5, 0.75, 1.0])


def plot_activation_comparison(
    histories: Mapping[str, History],
    *,
    boundaries: Mapping[str, tuple[Callable[[jax.Array], Any], Dataset]] | None = None,
    title: str = "Activation functions compared",
    log_scale: bool = False,
) -> Figure:
    """Loss curves of several runs on one axes, and optionally their decision boundaries.

    Exercise 1.1: train the same network with ReLU, sigmoid and tanh and
    compare. Each run gets one colour: train loss solid, test loss dashed.
    With ``boundaries`` a row of :func:`plot_decision_boundary` panels follows,
    one per entry, titled with its name (and its final test accuracy, or train
    accuracy, when the run with that name recorded one).

    Args:
        histories: run name -> :class:`~dlvr_jax.train.History`, e.g.
            ``{"relu": h1, "sigmoid": h2, "tanh": h3}``.
        boundaries: run name -> ``(predict_fn, data)`` for the panels.
        title: the figure title.
        log_scale: a logarithmic loss axis.

    Raises:
        TypeError: ``histories`` or ``boundaries`` is not a mapping of the right values.
        ValueError: ``histories`` is empty.
    """
    if not isinstance(histories, Mapping):
        raise TypeError(
            f"histories must be a mapping name -> History, got {type(histories).__name__}"
        )
    if not histories:
        raise ValueError("histories must hold at least one run, got an empty mapping")
    curves = {
        str(name): _history_curves(f"histories[{name!r}]", history)
        for name, history in histories.items()
    }
    panels = _boundary_panels(boundaries)
    if panels:
        columns = len(panels)
        figure = Figure(figsize=(max(8.0, 4.0 * columns), 8.5), layout="constrained")
        cells = figure.add_gridspec(2, columns, height_ratios=[1.0, 1.2])
        loss_ax = figure.add_subplot(cells[0, :])
    else:
        figure, loss_ax = _axes(None, (8.0, 6.0))
    colours = mpl.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, curve) in enumerate(curves.items()):
        colour = colours[index % len(colours)]
        train_loss = curve["train_loss"]
        assert train_loss is not None
        epochs = np.arange(1, train_loss.size + 1)
        loss_ax.plot(epochs, train_loss, color=colour, label=f"{name} train")
        if curve["test_loss"] is not None:
            loss_ax.plot(epochs, curve["test_loss"], "--", color=colour, label=f"{name} test")
    if log_scale:
        loss_ax.set_yscale("log")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    loss_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.grid(alpha=0.3)
    loss_ax.legend(ncols=2 if len(curves) > 3 else 1)
    if panels:
        _draw_boundary_panels(figure, cells, panels, curves)
    figure.suptitle(title)
    return figure


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
    return _axes(ax)


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
    window = _extent(None, extent, 0.0)
    x0, x1, y0, y1 = window
    marks = np.asarray(minima, dtype=np.float64).reshape(-1, dim)
    if dim == 1:
        if kind == "surface":
            raise ValueError("kind='surface' needs a function of two variables; use 'contour'")
        figure, ax = _axes(ax, (7.0, 5.0))
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
    figure, ax = _axes(ax, (7.0, 6.0))
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


# ----------------------------------------------------------------------------
# Tensor figures: matmul scaling.

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
    figure, ax = _axes(ax, (6.5, 4.5))
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


def save(figure: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> None:
    """Saves ``figure`` to ``path`` atomically; the format follows the file suffix."""
    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    options: dict[str, Any] = {"pil_kwargs": _PNG_OPTIONS} if suffix.lower() == "png" else {}
    _io.write_atomic(path, lambda stream: figure.savefig(stream, format=suffix, dpi=dpi, **options))
