"""The chapter's figures: a dataset, a model over the plane, and its training.

The contract (each returns a :class:`~matplotlib.figure.Figure`; most take ``ax=`` too)::

    plot_dataset(data)                                        points by class (or target)
    plot_decision_boundary(predict_fn, data, line=None)       regions, or P(class 1), and points
    plot_mistakes(mistakes_per_epoch, epochs)                 a perceptron run's mistakes
    plot_loss_curve(history)                                  loss (and accuracy) per epoch
    plot_gradient_heatmap(grads)                              layers × units, log scale
    plot_neuron_maps(model, params, data=None)                every unit over the plane
    plot_activation_comparison(histories, boundaries=None)    runs side by side

Import them from :mod:`dlvr_jax.viz`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from dlvr_jax import models
from dlvr_jax.data import Dataset
from dlvr_jax.perceptron import Params
from dlvr_jax.train import History  # at run time, so the docs resolve the hint to one class
from dlvr_jax.viz import _figure

__all__ = [
    "plot_activation_comparison",
    "plot_dataset",
    "plot_decision_boundary",
    "plot_gradient_heatmap",
    "plot_loss_curve",
    "plot_mistakes",
    "plot_neuron_maps",
]

# The chapter's colours: class +1 (or 1) red, class -1 (or 0) blue.
_NEGATIVE, _POSITIVE = "#1f4fd1", "#d62728"
_REGIONS = ListedColormap(["#c6d4f5", "#f5c6c6"])
_PROBABILITY = "P(class 1)"
# A logarithmic gradient scale spans at most six decades below its largest value.
_LOG_DECADES_FLOOR = 1e-6
# plot_neuron_maps' margins in inches (left: "layer 10" labels; top: title and "unit k").
_NEURON_MARGINS = (0.85, 0.1, 0.3, 0.55)


def _class_labels(y: np.ndarray, names: Sequence[str] | None) -> tuple[str, str]:
    """The legend's two entries: the first class and the others (``class 1`` for two)."""
    first = int(y.min()) if (y <= 0).any() else 0
    if names is None:
        return f"class {first}", "class 1"
    names = [str(name) for name in names]
    return names[first] if 0 <= first < len(names) else f"class {first}", ", ".join(names[1:])


def _scatter(ax: Axes, data: Dataset, class_names: Sequence[str] | None = None) -> None:
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
    first, others = _class_labels(y, class_names)
    ax.scatter(
        x[~positive, 0],
        x[~positive, 1],
        s=18,
        c=_NEGATIVE,
        edgecolors="k",
        linewidths=0.3,
        label=first,
    )
    ax.scatter(
        x[positive, 0],
        x[positive, 1],
        s=18,
        c=_POSITIVE,
        edgecolors="k",
        linewidths=0.3,
        label=others,
    )
    ax.legend(loc="upper right", fontsize="small")


def plot_dataset(
    data: Dataset,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Scatter plot of a 2-D dataset: class 1 red, the other class blue.

    Regression targets are shown as a colour scale instead. ``class_names``
    (label ``i``'s name, e.g. a CSV's ``setosa``) name the legend's entries.
    """
    figure, ax = _figure.axes(ax)
    _scatter(ax, data, class_names)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return figure


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
    class_names: Sequence[str] | None = None,
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
        class_names: the name of each class label, for the legend (default ``class i``).

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
    figure, ax = _figure.axes(ax)
    shaded, label = _draw_boundary(
        predict_fn, data, ax, resolution, pad, line, probability, class_names
    )
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
    class_names: Sequence[str] | None = None,
) -> tuple[Any, str]:
    """Draws the regions, data and line; returns the shading (or None) and its label."""
    x0, x1, y0, y1 = _figure.bounds(np.asarray(data.x), pad)
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
    _scatter(ax, data, class_names)
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
    figure, ax = _figure.axes(ax, (6.0, 3.5))
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
        figure, loss_ax = _figure.axes(ax)
        accuracy_ax = None
    elif accuracy:
        figure = Figure(figsize=(8.0, 6.0), layout="constrained")
        loss_ax, accuracy_ax = figure.subplots(
            2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]}
        )
    else:
        figure, loss_ax = _figure.axes(None, (8.0, 6.0))
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
    figure, ax = _figure.axes(ax, (8.0, 6.0))
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
    window = _figure.window(data, extent, float(pad))
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
        figure, loss_ax = _figure.axes(None, (8.0, 6.0))
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
