"""Training: a pure ``train_step``, and ``fit``, in which every epoch and minibatch compiles.

The contract, in the manner of Flax's MNIST example::

    state = create_train_state(key, model, optimizer, x)      # TrainState pytree
    state, metrics = train_step(state, batch)                 # pure; jit it
    state, history = fit(key, model, optimizer, data, epochs=2000)

:func:`fit` runs all epochs and all minibatches inside ``lax.scan``; each
epoch reshuffles the minibatches from ``fold_in(state.key, epoch)``, so
training is reproducible from the key and a run split into chunks (for
progress reports, or stopped, saved and resumed) is bit-identical to one run.

The compiled loop, its host loop and the checks live in the package's
internal :mod:`dlvr_jax.engine`; this module is the public door, and
re-exports the engine's :class:`TrainState`, :class:`History`,
:func:`train_step` and the other types under the same names.

Keys: ``create_train_state`` splits ``key`` into the initialisation key and
``state.key``; epoch ``e`` shuffles with ``fold_in(fold_in(state.key, 0), e)``
and step ``s`` drops out with ``fold_in(fold_in(state.key, 1), s)``.

Examples:
    >>> import jax
    >>> from dlvr_jax import data, models, optim, train
    >>> circle = data.circle(jax.random.key(0), 200)
    >>> state, history = train.fit(jax.random.key(1), models.MLP(hidden=(16, 16)),
    ...                            optim.optimizer("adam", 1e-2), circle, epochs=300)
    >>> bool(history.train_loss[-1] < history.train_loss[0] / 5)
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Unpack, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlvr_jax import _compiled, engine, losses
from dlvr_jax import _validate as check
from dlvr_jax import data as data_module
from dlvr_jax.data import Dataset
from dlvr_jax.engine import (
    Batch,
    Cancelled,
    Evaluation,
    FitOptions,
    History,
    ModuleApply,
    StateOptions,
    StepMetrics,
    TrainingDiverged,
    TrainState,
    concatenate,
    train_step,
)

ON_NAN = engine.ON_NAN
"""What :func:`fit`'s ``on_nan`` accepts: ``"raise"`` or ``"stop"``."""

Progress = engine.Progress
"""The type of :func:`fit`'s ``progress``: ``progress(epochs_done, epochs, history) -> None``."""

__all__ = [
    "ON_NAN",
    "PREDICT_BLOCK",
    "Batch",
    "Cancelled",
    "Evaluation",
    "FitOptions",
    "History",
    "ModuleApply",
    "Progress",
    "StateOptions",
    "StepMetrics",
    "TrainState",
    "TrainingDiverged",
    "concatenate",
    "create_train_state",
    "evaluate",
    "fit",
    "minibatches",
    "predict",
    "probabilities",
    "steps_per_epoch",
    "train_step",
]


def _apply(model: nn.Module, params: Any, x: jax.Array) -> jax.Array:
    """``model.apply(params, x)`` for a model that returns one array."""
    return cast(jax.Array, model.apply(params, x))


def create_train_state(
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    x: Any,
    **options: Unpack[StateOptions],
) -> TrainState:
    """Initialises the model on ``x[:1]`` and the optimizer, in one compiled program.

    ``key`` is split into the initialisation key and ``state.key``. The
    program is compiled once per (model, optimizer, loss, task, row shape):
    equal modules share it, and its result is bit-identical to running
    ``model.init`` and ``optimizer.init`` one operation at a time.

    Args:
        key: PRNG key.
        model: a Flax linen module.
        optimizer: an Optax transformation.
        x: example inputs ``[n, d]`` (only the first row is used).
        **options: :class:`StateOptions`, as for :func:`fit`: ``loss`` (the loss
            name or callable, stored in the state; default cross-entropy),
            ``task`` (default from ``loss``; decides whether the accuracy is
            NaN), ``l1`` and ``l2`` (the penalty weights, default 0).

    Raises:
        TypeError, ValueError: for bad arguments.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from dlvr_jax import models, optim, train
        >>> state = train.create_train_state(jax.random.key(0), models.MLP(hidden=(3,)),
        ...                                  optim.optimizer("sgd", 0.1), jnp.zeros((5, 2)))
        >>> int(state.step), state.task, state.params["params"]["hidden_0"]["kernel"].shape
        (0, 'classification', (2, 3))
    """
    engine.check_options("create_train_state", options, StateOptions, required=())
    key = check.prng_key("key", key)
    engine.check_model(model, optimizer)
    loss = options.get("loss", "cross_entropy")
    loss_fn = losses.get_loss(loss)
    kind = losses.task(loss, options.get("task"))
    x = check.array("x", x, ndim=2, finite=False)
    return engine.init_state(
        key,
        model,
        optimizer,
        x,
        loss_fn=loss_fn,
        task=kind,
        l1=check.real("l1", options.get("l1", 0.0), low=0.0),
        l2=check.real("l2", options.get("l2", 0.0), low=0.0),
    )


def minibatches(
    key: jax.Array, epoch: jax.Array, n: int, batch_size: int
) -> tuple[jax.Array, jax.Array]:
    """The minibatches of one epoch: ``(index, mask)``, both ``[n_batches, batch_size]``.

    Row ``b`` of ``index`` lists the examples of batch ``b``; ``mask`` is 1 for
    real entries and 0 for the padding that fills the last batch when
    ``batch_size`` does not divide ``n``. This is
    :func:`dlvr_jax.data.batch_order` with ``remainder="pad"`` under the
    shuffle key ``fold_in(key, 0)``: the permutation is drawn from
    ``fold_in(fold_in(key, 0), epoch)`` (no shuffle for a single full batch),
    so each example appears exactly once per epoch. :func:`fit` visits exactly
    these batches, in this order.
    """
    return data_module.batch_order(
        jax.random.fold_in(key, 0), epoch, n, batch_size, remainder="pad"
    )


def fit(
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    data: Dataset,
    **options: Unpack[FitOptions],
) -> tuple[TrainState, History]:
    """Trains ``model`` on ``data``: every epoch and minibatch runs inside ``lax.scan``.

    Args:
        key: PRNG key for initialisation, shuffling and dropout.
        model: a Flax linen module, e.g. :class:`dlvr_jax.models.MLP`.
        optimizer: an Optax transformation, e.g. ``optim.optimizer("adam", 1e-3)``.
        data: the training :class:`~dlvr_jax.data.Dataset`: integer class labels
            for a classification loss (any number of classes), float targets for
            regression.
        **options: the training options, :class:`FitOptions` (declared once for
            every door): ``epochs`` (required), ``batch_size``, ``loss``,
            ``task``, ``l1``, ``l2``, ``test``, ``sample_weight``, ``state``
            (resume), ``on_nan``, ``progress``, ``chunk_epochs``, ``cancel`` and
            ``pad_batches``. A dict of them passes as ``**options``.

    Returns:
        ``(state, history)``.

    Raises:
        TypeError, ValueError: for bad arguments, before anything is traced.
        TrainingDiverged: on NaN/inf with ``on_nan="raise"``.
        Cancelled: when ``cancel`` was set, between two chunks.
    """
    return engine.prepare(key, model, optimizer, data, **options).run()


def evaluate(
    model: nn.Module,
    params: Any,
    data: Dataset,
    *,
    loss: str | Callable[..., jax.Array] = "cross_entropy",
    task: str | None = None,
) -> Evaluation:
    """Loss and accuracy of ``model`` with ``params`` on ``data`` (no dropout).

    ``task`` is as for :func:`fit`: the accuracy of a regression is NaN.
    """
    loss_fn = losses.get_loss(loss)
    kind = losses.task(loss, task)
    data = engine.check_dataset("data", data, loss_fn, model, kind)
    outputs = _apply(model, params, data.x)
    return Evaluation(loss_fn(outputs, data.y, None), engine.metric(outputs, data.y, None, kind))


def predict(
    model: nn.Module,
    params: Any,
    x: Any,
    *,
    loss: str | Callable[..., jax.Array] = "cross_entropy",
    task: str | None = None,
) -> jax.Array:
    """Class labels for classification, the model's values for regression.

    Classification (``task`` from ``loss``, see :func:`dlvr_jax.losses.task`):
    ``int32[n]`` labels, the argmax of the logits, or ``logit > 0`` for a
    one-output model (a binary loss). Regression: the raw outputs, ``[n]`` for
    a one-output model, else ``[n, k]``.

    A row's prediction does not depend on the batch: ``x`` runs in blocks of
    :data:`PREDICT_BLOCK` rows (the last one padded with zeros), each through
    one compiled program per model, task, width and dtype of ``x``, so a row
    gets the same bits alone, in any batch, in any order (XLA's CPU kernels
    choose their blocking by shape, which changed a row's last bit with the
    number of rows). A model that cannot be hashed (a module with a list
    field) runs eagerly on the same blocks; under a JAX transform (``x`` a
    tracer) it is one traced call.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from dlvr_jax import models, train
        >>> model = models.MLP(hidden=(), n_outputs=1)
        >>> params = {"params": {"output": {"kernel": jnp.array([[1.0], [0.0]]),
        ...                                 "bias": jnp.array([-0.5])}}}
        >>> x = jnp.array([[0.0, 1.0], [2.0, 0.0]])
        >>> train.predict(model, params, x, loss="binary_cross_entropy").tolist()
        [0, 1]
        >>> train.predict(model, params, x, loss="mse").tolist()
        [-0.5, 1.5]
    """
    kind = losses.task(loss, task)
    x = check.array("x", x, ndim=2)
    return _blocked(_predictions, _predict, ("predict", model, kind), model, params, x, kind=kind)


PREDICT_BLOCK = 1024
"""The rows of one block of :func:`predict` and :func:`probabilities` (one compiled shape)."""


def _blocked(
    eager: Callable[..., jax.Array],
    jitted: Callable[..., jax.Array],
    key: tuple[Any, ...],
    model: nn.Module,
    params: Any,
    x: jax.Array,
    **static: Any,
) -> jax.Array:
    """``eager(model, params, x)`` row-wise, block by block of :data:`PREDICT_BLOCK` rows.

    Every block has the one shape ``[PREDICT_BLOCK, d]``, so every row goes
    through the same compiled program whatever the other rows; the outputs
    are row-wise, and the padded rows are dropped.
    """
    if any(check.is_tracer(leaf) for leaf in jax.tree.leaves((x, params))):
        return eager(model, params, x, **static)
    run = jitted if _hashable(model) else eager
    if run is jitted:
        _compiled.note((*key, x.shape[1:], str(x.dtype)))
    host = np.asarray(x)
    n = host.shape[0]
    blocks = []
    for start in range(0, max(n, 1), PREDICT_BLOCK):
        block = host[start : start + PREDICT_BLOCK]
        if block.shape[0] < PREDICT_BLOCK:
            padding = np.zeros((PREDICT_BLOCK - block.shape[0], *host.shape[1:]), host.dtype)
            block = np.concatenate([block, padding])
        blocks.append(run(model, params, check.to_device(block), **static))
    rows = np.concatenate([np.asarray(block) for block in blocks])[:n]
    return check.to_device(rows)


def _hashable(model: nn.Module) -> bool:
    """Whether ``model`` can key a compiled program (a module with a list field cannot)."""
    try:
        hash(model)
    except TypeError:
        return False
    return True


def _predictions(model: nn.Module, params: Any, x: jax.Array, *, kind: str) -> jax.Array:
    outputs = _apply(model, params, x)
    if kind == "regression":
        return outputs[..., 0] if outputs.shape[-1] == 1 else outputs
    if outputs.shape[-1] == 1:
        return (outputs[..., 0] > 0).astype(jnp.int32)
    return jnp.argmax(outputs, axis=-1).astype(jnp.int32)


_predict = jax.jit(_predictions, static_argnames=("model", "kind"))


def probabilities(model: nn.Module, params: Any, x: Any) -> jax.Array:
    """Class probabilities ``float[n, k]``: softmax of the logits (sigmoid for one logit).

    Like :func:`predict`, in blocks of :data:`PREDICT_BLOCK` rows: a row's
    probabilities do not depend on the other rows, their order or number.
    """
    x = check.array("x", x, ndim=2)
    return _blocked(
        _class_probabilities, _probabilities, ("probabilities", model), model, params, x
    )


def _class_probabilities(model: nn.Module, params: Any, x: jax.Array) -> jax.Array:
    outputs = _apply(model, params, x)
    if outputs.shape[-1] == 1:
        p = jax.nn.sigmoid(outputs[..., 0])
        return jnp.stack([1 - p, p], axis=-1)
    return jax.nn.softmax(outputs, axis=-1)


_probabilities = jax.jit(_class_probabilities, static_argnames=("model",))


def steps_per_epoch(n: int, batch_size: int | None) -> int:
    """Optimizer steps in one epoch of ``n`` examples."""
    return 1 if batch_size is None else math.ceil(n / batch_size)
