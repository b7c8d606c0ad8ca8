r"""Losses, metrics and regularizers; every loss is a mean over the batch.

The contract::

    loss(outputs, targets, weights=None) -> float[]   # weighted mean over examples
    accuracy(logits, labels, weights=None) -> float[]
    l1_penalty(params), l2_penalty(params) -> float[] # over weight matrices only

``weights`` (``float[n]``, e.g. 0/1 for padded examples) turn each mean into
:math:`\sum_i w_i \ell_i / \sum_i w_i`. The losses over logits use Optax's
numerically stable implementations, so they are finite whenever each
example's loss is representable (e.g. logits of ±1e4, or even ±3e38 when the
label's logit is the largest).

Examples:
    >>> import jax.numpy as jnp
    >>> from dlvr_jax import losses
    >>> logits = jnp.array([[2.0, -1.0], [0.0, 3.0]])
    >>> round(float(losses.accuracy(logits, jnp.array([0, 0]))), 2)
    0.5
    >>> float(losses.cross_entropy(jnp.array([[1e4, -1e4]]), jnp.array([1])))
    20000.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax

from dlvr_jax import _validate as check
from dlvr_jax import models

__all__ = [
    "LOSSES",
    "REGRESSION_LOSSES",
    "TASKS",
    "accuracy",
    "binary_cross_entropy",
    "cross_entropy",
    "get_loss",
    "hinge",
    "l1_penalty",
    "l2_penalty",
    "mean_squared_error",
    "task",
]


# A typed handle on a JAX function that mypy sees as untyped.
_barrier: Callable[[jax.Array], jax.Array] = lax.optimization_barrier


def _mean(values: jax.Array, weights: jax.Array | None) -> jax.Array:
    r""":math:`\sum_i w_i \ell_i / \sum_i w_i` (plain mean without weights; 0 if all w are 0).

    The sum is divided once, after summing: a perfect accuracy is exactly 1.0
    and an accuracy never leaves [0, 1]. Only when the sum overflows (losses
    near the float maximum) is each term scaled before summing instead.
    """
    if weights is None:
        if not values.size:
            return jnp.zeros((), values.dtype)
        weights = jnp.ones(values.shape, values.dtype)
    weights = jnp.asarray(weights, values.dtype)
    # The barrier keeps XLA from rewriting ``/ n`` as ``* (1 / n)`` for a constant n,
    # which would make a perfect accuracy 0.99999994 for n = 41.
    total = _barrier(jnp.sum(weights))
    safe_total = jnp.where(total > 0, total, 1)
    weighted = jnp.sum(values * weights)
    direct = weighted / safe_total
    scaled = jnp.sum(values * (weights / safe_total))
    # Rounding is monotone and both sums run in the same order, so for values
    # in [0, 1] the weighted sum never exceeds the total: the mean stays in [0, 1].
    return jnp.where(jnp.isfinite(weighted) | ~jnp.isfinite(scaled), direct, scaled)


def cross_entropy(
    logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    r"""Softmax cross-entropy with integer labels: :math:`-\log \mathrm{softmax}(z)_y`."""
    values = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return _mean(values, weights)


def _binary_targets(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One logit per example; labels in {0, 1} (or ±1, mapped to {0, 1})."""
    logits = logits[..., 0] if logits.ndim == labels.ndim + 1 else logits
    return logits, (jnp.asarray(labels) > 0).astype(logits.dtype)


def binary_cross_entropy(
    logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    """Sigmoid cross-entropy of one logit per example (``[n]`` or ``[n, 1]``) with 0/1 labels."""
    logits, targets = _binary_targets(logits, labels)
    return _mean(optax.sigmoid_binary_cross_entropy(logits, targets), weights)


def hinge(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    r"""Hinge loss :math:`\max(0, 1 - y z)` of one score per example, labels 0/1 or ±1."""
    logits, targets = _binary_targets(logits, labels)
    return _mean(optax.hinge_loss(logits, 2 * targets - 1), weights)


def mean_squared_error(
    predictions: jax.Array, targets: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    r"""The Playground's loss, :math:`(\hat y - y)^2` averaged.

    One output per example (``targets`` ``[n]``), or ``k`` (``[n, k]``): then
    each example's error is the mean over its ``k`` targets, and the examples
    are averaged with their ``weights``.
    """
    predictions = predictions[..., 0] if predictions.ndim == targets.ndim + 1 else predictions
    errors = optax.squared_error(predictions, jnp.asarray(targets, predictions.dtype))
    if errors.ndim == 2:
        errors = jnp.mean(errors, axis=-1)
    return _mean(errors, weights)


def accuracy(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Fraction of correct predictions: argmax of the logits, or ``logit > 0`` for one logit."""
    if logits.ndim == labels.ndim + 1 and logits.shape[-1] > 1:
        predicted = jnp.argmax(logits, axis=-1)
        correct = predicted == labels
    else:
        logits, targets = _binary_targets(logits, labels)
        correct = (logits > 0) == (targets > 0)
    return _mean(correct.astype(jnp.float32), weights)


def _sum_over_weights(params: Any, term: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """``sum(term(W))`` over the weight matrices (:func:`dlvr_jax.models.dense_layers`)."""
    leaves = [jnp.sum(term(layer.kernel)) for layer in models.dense_layers(params)]
    return jnp.sum(jnp.stack(leaves)) if leaves else jnp.zeros(())


def l1_penalty(params: Any) -> jax.Array:
    r""":math:`\sum |W|` over the weight matrices (``kernel`` leaves) only."""
    return _sum_over_weights(params, jnp.abs)


def l2_penalty(params: Any) -> jax.Array:
    r""":math:`\tfrac12 \sum W^2` over the weight matrices (``kernel`` leaves) only."""
    return 0.5 * _sum_over_weights(params, jnp.square)


LOSSES: dict[str, Callable[..., jax.Array]] = {
    "cross_entropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "mse": mean_squared_error,
    "hinge": hinge,
}
"""Losses by name, as :func:`dlvr_jax.train.fit` takes them."""

REGRESSION_LOSSES = ("mse",)
"""Losses whose targets are real numbers rather than class labels."""

TASKS = ("classification", "regression")
"""The two kinds of task, by their targets (integer class labels, or real numbers)."""


def task(loss: str | Callable[..., jax.Array], task: str | None = None) -> str:
    """The one rule for whether training is regression: ``"classification"`` or ``"regression"``.

    In order: an explicit ``task`` wins; a loss name is regression when it is
    in :data:`REGRESSION_LOSSES`; a callable declares its task with a ``task``
    attribute (``my_loss.task = "regression"``); a callable registered in
    :data:`LOSSES` has its name's task; any other callable is classification.

    Raises:
        ValueError, TypeError: for an unknown task or loss name.

    Examples:
        >>> from dlvr_jax import losses
        >>> losses.task("mse"), losses.task(losses.cross_entropy)
        ('regression', 'classification')
        >>> def huber(outputs, targets, weights=None): ...
        >>> huber.task = "regression"
        >>> losses.task(huber)
        'regression'
    """
    if task is not None:
        return check.choice("task", task, TASKS)
    if isinstance(loss, str):
        check.choice("loss", loss, tuple(LOSSES))
        return "regression" if loss in REGRESSION_LOSSES else "classification"
    if not callable(loss):
        raise TypeError(
            f"loss must be a name in {sorted(LOSSES)} or a callable, got {check.show(loss)}"
        )
    declared = getattr(loss, "task", None)
    if declared is not None:
        return check.choice(f"{getattr(loss, '__name__', 'loss')}.task", declared, TASKS)
    for name, registered in LOSSES.items():
        if registered is loss:
            return "regression" if name in REGRESSION_LOSSES else "classification"
    return "classification"


def get_loss(loss: str | Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """The loss called ``loss`` (see :data:`LOSSES`), or ``loss`` itself if callable."""
    if callable(loss):
        return loss
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a name in {sorted(LOSSES)} or a callable, got {loss!r}")
    check.choice("loss", loss, tuple(LOSSES))
    return LOSSES[loss]
