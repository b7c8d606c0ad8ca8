"""Training: a pure ``train_step``, and ``fit``, in which every epoch and minibatch compiles.

The contract, in the manner of Flax's MNIST example::

    state = create_train_state(key, model, optimizer, x)      # TrainState pytree
    state, metrics = train_step(state, batch)                 # pure; jit it
    state, history = fit(key, model, optimizer, data, epochs=2000)

:func:`fit` runs all epochs and all minibatches inside ``lax.scan``; each
epoch reshuffles the minibatches from ``fold_in(state.key, epoch)``, so
training is reproducible from the key and a run split into chunks (for
progress reports, or stopped, saved and resumed) is bit-identical to one run.

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

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax import lax

from dlvr_jax import _validate as check
from dlvr_jax import _xla, losses
from dlvr_jax import data as data_module
from dlvr_jax.data import Dataset

__all__ = [
    "Batch",
    "Evaluation",
    "History",
    "ModuleApply",
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
    "train_step",
]

ON_NAN = ("raise", "stop")

# Typed handles on JAX functions that mypy sees as untyped.
_psum: Callable[..., Any] = lax.psum
_constrain: Callable[..., Any] = lax.with_sharding_constraint


class TrainingDiverged(FloatingPointError):
    """The loss (or the parameters) became NaN or infinite; ``epoch`` is 1-based."""

    def __init__(self, epoch: int, state: TrainState, history: History) -> None:
        super().__init__(
            f"training diverged: the loss or parameters became NaN/inf at epoch {epoch}; "
            "lower the learning rate, clip gradients (clip_norm) or check the data"
        )
        self.epoch = epoch
        self.state = state
        self.history = history


@struct.dataclass
class TrainState:
    """Everything training needs, as one pytree (static fields are not leaves).

    Attributes:
        step: optimizer steps taken.
        epoch: epochs completed.
        params: the model's variables, as ``model.init`` returns them.
        opt_state: the optimizer's state.
        key: the base PRNG key of training (shuffling and dropout derive from it).
        l1: weight of the L1 penalty on the weight matrices.
        l2: weight of the L2 penalty on the weight matrices.
        apply_fn: ``model.apply`` as a :class:`ModuleApply` (static).
        tx: the Optax optimizer (static).
        loss_fn: the loss ``(outputs, targets, weights) -> float[]`` (static).
    """

    step: jax.Array
    epoch: jax.Array
    params: Any
    opt_state: Any
    key: jax.Array
    l1: jax.Array
    l2: jax.Array
    apply_fn: Callable[..., Any] = dataclasses.field(metadata={"pytree_node": False})
    tx: optax.GradientTransformation = dataclasses.field(metadata={"pytree_node": False})
    loss_fn: Callable[..., jax.Array] = dataclasses.field(metadata={"pytree_node": False})

    def replace(self, **updates: Any) -> TrainState:
        """A copy with ``updates`` applied (the state itself is immutable)."""
        return dataclasses.replace(self, **updates)


class ModuleApply:
    """``module.apply`` that compares equal for equal modules (the static ``TrainState.apply_fn``).

    A bound method compares by the identity of its module, so two equal
    ``MLP()`` objects would give two compiled programs; this wrapper compares
    (and hashes) by the module's fields, so ``fit`` compiles once per architecture.
    """

    __slots__ = ("module",)

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.apply(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModuleApply) and self.module == other.module

    def __hash__(self) -> int:
        return hash((ModuleApply, self.module))

    def __repr__(self) -> str:
        return f"ModuleApply({self.module!r})"


class Batch(NamedTuple):
    """A minibatch; ``weights`` is 1 for real examples and 0 for padding."""

    x: jax.Array
    y: jax.Array
    weights: jax.Array | None = None


class StepMetrics(NamedTuple):
    """What :func:`train_step` reports: loss and accuracy before the update, and the gradients."""

    loss: jax.Array
    accuracy: jax.Array
    grads: Any


class History(NamedTuple):
    """Per-epoch training record (a pytree; arrays have one entry per epoch).

    Attributes:
        train_loss: mean training loss over the epoch's minibatches (before each update).
        train_accuracy: the same for accuracy (NaN for regression).
        test_loss: loss on ``test`` after each epoch, or None without a test set.
        test_accuracy: accuracy on ``test`` after each epoch, or None.
        grad_norms: ``{layer: float[epochs]}``, the mean over the epoch of each
            layer's gradient norm.
        final_grads: the gradients of the last step, shaped like the params.
    """

    train_loss: jax.Array
    train_accuracy: jax.Array
    test_loss: jax.Array | None
    test_accuracy: jax.Array | None
    grad_norms: dict[str, jax.Array]
    final_grads: Any


class Evaluation(NamedTuple):
    """Loss and accuracy of a model on a dataset (accuracy is NaN for regression)."""

    loss: jax.Array
    accuracy: jax.Array


# ----------------------------------------------------------------------------
# The pure pieces.


def _apply(model: nn.Module, params: Any, x: jax.Array) -> jax.Array:
    """``model.apply(params, x)`` for a model that returns one array."""
    return cast(jax.Array, model.apply(params, x))


def _is_regression(loss_fn: Callable[..., Any]) -> bool:
    return loss_fn is losses.mean_squared_error


def _metric(outputs: jax.Array, y: jax.Array, weights: jax.Array | None, regression: bool) -> Any:
    if regression:
        return jnp.full((), jnp.nan, jnp.float32)
    return losses.accuracy(outputs, y, weights)


def create_train_state(
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    x: Any,
    *,
    loss: str | Callable[..., jax.Array] = "cross_entropy",
    l1: float = 0.0,
    l2: float = 0.0,
) -> TrainState:
    """Initialises the model on ``x[:1]`` and the optimizer.

    ``key`` is split into the initialisation key and ``state.key``.
    """
    key = check.prng_key("key", key)
    init_key, train_key = jax.random.split(key)
    params = model.init(init_key, jnp.asarray(x)[:1])
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        epoch=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=optimizer.init(params),
        key=train_key,
        l1=jnp.asarray(l1, jnp.float32),
        l2=jnp.asarray(l2, jnp.float32),
        apply_fn=ModuleApply(model),
        tx=optimizer,
        loss_fn=losses.get_loss(loss),
    )


def _layer_norms(grads: Any) -> dict[str, jax.Array]:
    """The global norm of each top-level module's gradients."""
    tree = grads["params"] if isinstance(grads, dict) and "params" in grads else grads
    return {
        name: jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(sub)))
        for name, sub in tree.items()
    }


def train_step(
    state: TrainState, batch: Batch, *, axis_name: str | None = None
) -> tuple[TrainState, StepMetrics]:
    r"""One optimizer step on ``batch``: a pure function of ``(state, batch)``.

    The objective is the batch loss plus :math:`l_1 \sum|W| + l_2 \tfrac12 \sum W^2`
    over the weight matrices. Dropout, if the model has it, uses a key derived
    from ``state.key`` and ``state.step``. The returned metrics are those of the
    parameters *before* the update (the loss the step differentiated).

    Data parallelism: inside ``jax.pmap(..., axis_name=axis_name)``, pass the
    same ``axis_name`` and give each device its shard of the global batch. Each
    device weighs its loss by its share of the global batch's weight and the
    gradients are summed with ``lax.psum``, so every device applies the update
    of the whole global batch (shards may differ in size, or hold only padding)
    and the replicated states stay equal. The metrics are the global batch's.
    """
    dropout_key = jax.random.fold_in(jax.random.fold_in(state.key, 1), state.step)
    regression = _is_regression(state.loss_fn)
    share: Any = 1.0
    if axis_name is not None:
        dropout_key = jax.random.fold_in(dropout_key, lax.axis_index(axis_name))
        count = jnp.float32(batch.x.shape[0]) if batch.weights is None else jnp.sum(batch.weights)
        share = count / _psum(count, axis_name)
        devices = _psum(jnp.float32(1), axis_name)

    def objective(params: Any) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        outputs = state.apply_fn(params, batch.x, train=True, rngs={"dropout": dropout_key})
        data_loss = state.loss_fn(outputs, batch.y, batch.weights)
        penalty = state.l1 * losses.l1_penalty(params) + state.l2 * losses.l2_penalty(params)
        if axis_name is None:
            return data_loss + penalty, (data_loss, outputs)
        # Summed over the devices this is the global batch's objective.
        return data_loss * share + penalty / devices, (data_loss, outputs)

    (_, (data_loss, outputs)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    accuracy = _metric(outputs, batch.y, batch.weights, regression)
    if axis_name is not None:
        grads = _psum(grads, axis_name)
        data_loss = _psum(data_loss * share, axis_name)
        accuracy = _psum(accuracy * share, axis_name)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
    )
    return new_state, StepMetrics(data_loss, accuracy, grads)


def _evaluate(state: TrainState, data: Dataset) -> Evaluation:
    outputs = state.apply_fn(state.params, data.x)
    return Evaluation(
        state.loss_fn(outputs, data.y, None),
        _metric(outputs, data.y, None, _is_regression(state.loss_fn)),
    )


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves))


class _EpochRecord(NamedTuple):
    train_loss: jax.Array
    train_accuracy: jax.Array
    test_loss: jax.Array | None
    test_accuracy: jax.Array | None
    grad_norms: dict[str, jax.Array]


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
    so each example appears exactly once per epoch.
    """
    return data_module.batch_order(
        jax.random.fold_in(key, 0), epoch, n, batch_size, remainder="pad"
    )


class _Sharding(NamedTuple):
    """How :func:`_run` splits each global minibatch across devices (static, hashable).

    Attributes:
        shards: the number of devices; each global minibatch is padded with
            zero-weight rows to a multiple of it.
        axis_name: the ``pmap`` axis, or None under ``jit`` with shardings.
        batch_sharding: under ``jit``, the ``NamedSharding`` that splits a batch's rows.
    """

    shards: int
    axis_name: str | None = None
    batch_sharding: Any = None


def _epoch(
    state: TrainState,
    data: Dataset,
    test: Dataset | None,
    batch_size: int,
    sharding: _Sharding | None = None,
) -> tuple[TrainState, _EpochRecord, Any]:
    """One pass over ``data`` in shuffled minibatches (the last one padded and masked)."""
    n = data.x.shape[0]
    if batch_size == n and sharding is None:  # full batch: no shuffle, no padding, no gather
        state, metrics = train_step(state, Batch(data.x, data.y))
        state, record = _finish_epoch(
            state, test, n, metrics.loss * n, metrics.accuracy * n, _layer_norms(metrics.grads)
        )
        return state, record, metrics.grads
    index, mask = minibatches(state.key, state.epoch, n, batch_size)
    pad = index.size - n
    if sharding is not None:
        extra = -batch_size % sharding.shards
        if extra:
            index = jnp.pad(index, ((0, 0), (0, extra)))
            mask = jnp.pad(mask, ((0, 0), (0, extra)))
        pad += extra

    def one_batch(carry: tuple[TrainState, Any], batch: tuple[jax.Array, jax.Array]) -> Any:
        state, _ = carry
        rows, weights = batch
        count = jnp.sum(weights)
        axis_name = None
        if sharding is not None and sharding.axis_name is not None:
            axis_name = sharding.axis_name
            device = lax.axis_index(axis_name)
            rows = rows.reshape(sharding.shards, -1)[device]
            weights = weights.reshape(sharding.shards, -1)[device]
        x, y = data.x[rows], data.y[rows]
        if sharding is not None and sharding.batch_sharding is not None:
            x, y, weights = _constrain((x, y, weights), sharding.batch_sharding)
        state, metrics = train_step(
            state, Batch(x, y, weights if pad else None), axis_name=axis_name
        )
        return (state, metrics.grads), (
            metrics.loss * count,
            metrics.accuracy * count,
            _layer_norms(metrics.grads),
        )

    zero_grads = jax.tree.map(jnp.zeros_like, state.params)
    (state, last_grads), (loss_sums, accuracy_sums, norms) = lax.scan(
        one_batch, (state, zero_grads), (index, mask)
    )
    mean_norms = {name: jnp.mean(value) for name, value in norms.items()}
    state, record = _finish_epoch(
        state, test, n, jnp.sum(loss_sums), jnp.sum(accuracy_sums), mean_norms
    )
    return state, record, last_grads


def _finish_epoch(
    state: TrainState,
    test: Dataset | None,
    n: int,
    loss_sum: jax.Array,
    accuracy_sum: jax.Array,
    grad_norms: dict[str, jax.Array],
) -> tuple[TrainState, _EpochRecord]:
    test_loss: jax.Array | None
    test_accuracy: jax.Array | None
    if test is not None:
        tested = _evaluate(state, test)
        test_loss, test_accuracy = tested.loss, tested.accuracy
    else:
        test_loss = test_accuracy = None
    record = _EpochRecord(loss_sum / n, accuracy_sum / n, test_loss, test_accuracy, grad_norms)
    return state.replace(epoch=state.epoch + 1), record


def _run_epochs(
    state: TrainState,
    data: Dataset,
    test: Dataset | None,
    epochs: int,
    batch_size: int,
    sharding: _Sharding | None = None,
) -> tuple[TrainState, _EpochRecord, Any, jax.Array]:
    """``epochs`` epochs in one ``lax.scan``, noting the first that produces NaN/inf.

    Returns the state, the per-epoch records, the last gradients and the
    0-based index of the first bad epoch of this run (-1 if none). Epochs after
    a bad one still run (on non-finite values); :func:`fit` discards them and
    recovers the state from before the bad epoch by running the chunk again for
    fewer epochs, which is bit-identical and keeps the hot loop free of
    branches and per-epoch copies of the state. This is the core that
    :mod:`dlvr_jax.parallel` maps (``vmap``, ``pmap``) and shards.
    """

    def one_epoch(carry: Any, index: jax.Array) -> Any:
        state, _, first_bad = carry
        state, record, grads = _epoch(state, data, test, batch_size, sharding)
        finite = jnp.isfinite(record.train_loss) & _all_finite(state.params)
        first_bad = jnp.where((first_bad < 0) & ~finite, index, first_bad)
        return (state, grads, first_bad), record

    zero_grads = jax.tree.map(jnp.zeros_like, state.params)
    (state, grads, first_bad), records = lax.scan(
        one_epoch, (state, zero_grads, jnp.int32(-1)), jnp.arange(epochs, dtype=jnp.int32)
    )
    return state, records, grads, first_bad


@functools.cache
def _jitted_run(platform: str) -> Callable[..., Any]:
    return jax.jit(
        _run_epochs,
        static_argnames=("epochs", "batch_size", "sharding"),
        compiler_options=dict(_xla.cpu_options(platform)) or None,
    )


def _run(
    state: TrainState, data: Dataset, test: Dataset | None, epochs: int, batch_size: int
) -> tuple[TrainState, _EpochRecord, Any, jax.Array]:
    """:func:`_run_epochs`, compiled (with the CPU options of :mod:`dlvr_jax._xla`)."""
    run = _jitted_run(jax.default_backend())
    return cast(Any, run(state, data, test, epochs=epochs, batch_size=batch_size))


# ----------------------------------------------------------------------------
# Checks at the door.


def _n_outputs(model: nn.Module) -> int | None:
    value = getattr(model, "n_outputs", None)
    return value if isinstance(value, int) else None


def _check_dataset(
    name: str, dataset: Any, loss_fn: Callable[..., Any], model: nn.Module
) -> Dataset:
    if not (hasattr(dataset, "x") and hasattr(dataset, "y")):
        raise TypeError(f"{name} must be a Dataset(x, y), got {type(dataset).__name__}")
    x = check.array(f"{name}.x", dataset.x, ndim=2)
    y = check.array(f"{name}.y", dataset.y, ndim=1)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: {name}.x has shape {x.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name}.y must have one entry per row of {name}.x: {x.shape[0]} rows, "
            f"{y.shape[0]} targets"
        )
    n_outputs = _n_outputs(model)
    if _is_regression(loss_fn):
        if n_outputs not in (None, 1):
            raise ValueError(f"loss 'mse' needs a model with n_outputs=1, got {n_outputs}")
        return Dataset(x.astype(jnp.float32), y.astype(jnp.float32))
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(
            f"{name}.y must hold integer class labels for a classification loss, got dtype "
            f"{y.dtype}; for regression targets use loss='mse'"
        )
    if not check.is_tracer(y):
        labels = np.asarray(y)
        if labels.min() < 0:
            raise ValueError(f"{name}.y must hold class labels >= 0, got {labels.min()}")
        if loss_fn is losses.cross_entropy and n_outputs is not None:
            if labels.max() >= n_outputs:
                raise ValueError(
                    f"{name}.y has label {labels.max()} but the model has n_outputs={n_outputs}; "
                    f"labels must be in [0, {n_outputs - 1}]"
                )
        elif loss_fn in (losses.binary_cross_entropy, losses.hinge) and labels.max() > 1:
            raise ValueError(f"{name}.y must hold labels 0/1 for a binary loss, got {labels.max()}")
    if loss_fn in (losses.binary_cross_entropy, losses.hinge) and n_outputs not in (None, 1):
        raise ValueError(f"a binary loss needs a model with n_outputs=1, got {n_outputs}")
    return Dataset(x.astype(jnp.float32), y.astype(jnp.int32))


def _check_fit(
    model: Any,
    optimizer: Any,
    data: Any,
    epochs: Any,
    batch_size: Any,
    loss: Any,
    l1: Any,
    l2: Any,
    test: Any,
    on_nan: Any,
    chunk_epochs: Any,
) -> tuple[Dataset, Dataset | None, int, int, Callable[..., jax.Array], int]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a flax.linen Module, got {type(model).__name__}")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer must be an optax.GradientTransformation (see dlvr_jax.optim.optimizer), "
            f"got {type(optimizer).__name__}"
        )
    loss_fn = losses.get_loss(loss)
    data = _check_dataset("data", data, loss_fn, model)
    if test is not None:
        test = _check_dataset("test", test, loss_fn, model)
        if test.x.shape[1] != data.x.shape[1]:
            raise ValueError(
                f"test.x must have {data.x.shape[1]} features like data.x, got {test.x.shape[1]}"
            )
    epochs = check.positive_int("epochs", epochs)
    n = data.x.shape[0]
    if batch_size is None:
        batch_size = n
    batch_size = check.positive_int("batch_size", batch_size)
    if batch_size > n:
        raise ValueError(
            f"batch_size must be in [1, {n}] (the number of examples), got {batch_size}"
        )
    check.real("l1", l1, low=0.0)
    check.real("l2", l2, low=0.0)
    check.choice("on_nan", on_nan, ON_NAN)
    chunk = epochs if chunk_epochs is None else check.positive_int("chunk_epochs", chunk_epochs)
    return data, test, epochs, batch_size, loss_fn, chunk


# ----------------------------------------------------------------------------
# The public training loop.


def concatenate(first: History, second: History) -> History:
    """Joins the histories of two consecutive runs (e.g. before and after a resume)."""

    def join(a: Any, b: Any) -> Any:
        return None if a is None else jnp.concatenate([a, b])

    return History(
        join(first.train_loss, second.train_loss),
        join(first.train_accuracy, second.train_accuracy),
        join(first.test_loss, second.test_loss),
        join(first.test_accuracy, second.test_accuracy),
        {
            name: jnp.concatenate([first.grad_norms[name], second.grad_norms[name]])
            for name in first.grad_norms
        },
        second.final_grads,
    )


def _history(records: _EpochRecord, grads: Any) -> History:
    return History(
        records.train_loss,
        records.train_accuracy,
        records.test_loss,
        records.test_accuracy,
        records.grad_norms,
        grads,
    )


def _truncate(history: History, epochs: int) -> History:
    def cut(a: Any) -> Any:
        return None if a is None else a[:epochs]

    return History(
        cut(history.train_loss),
        cut(history.train_accuracy),
        cut(history.test_loss),
        cut(history.test_accuracy),
        {name: values[:epochs] for name, values in history.grad_norms.items()},
        history.final_grads,
    )


Progress = Callable[[int, int, History], None]


def fit(
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    data: Dataset,
    *,
    epochs: int,
    batch_size: int | None = None,
    loss: str | Callable[..., jax.Array] = "cross_entropy",
    l1: float = 0.0,
    l2: float = 0.0,
    test: Dataset | None = None,
    state: TrainState | None = None,
    on_nan: str = "raise",
    progress: Progress | None = None,
    chunk_epochs: int | None = None,
) -> tuple[TrainState, History]:
    """Trains ``model`` on ``data``: every epoch and minibatch runs inside ``lax.scan``.

    Args:
        key: PRNG key for initialisation, shuffling and dropout.
        model: a Flax linen module, e.g. :class:`dlvr_jax.models.MLP`.
        optimizer: an Optax transformation, e.g. ``optim.optimizer("adam", 1e-3)``.
        data: the training :class:`~dlvr_jax.data.Dataset`: integer class labels
            for a classification loss (any number of classes), float targets for ``mse``.
        epochs: passes over the data, ``>= 1`` (static).
        batch_size: examples per step; None for full batch (the chapter's setting).
            The last minibatch of an epoch is padded and masked when
            ``batch_size`` does not divide ``n``, so every example counts once.
        loss: ``cross_entropy``, ``binary_cross_entropy``, ``hinge``, ``mse`` or a callable.
        l1: weight of the L1 penalty on weight matrices (the Playground's regularization).
        l2: weight of the L2 penalty on weight matrices.
        test: an optional held-out dataset, evaluated after every epoch.
        state: continue from this :class:`TrainState` (resume) instead of
            initialising from ``key``; ``l1``/``l2`` still come from the arguments.
        on_nan: ``"raise"`` (default) raises :class:`TrainingDiverged` naming the
            epoch where the loss or parameters became NaN/inf; ``"stop"`` warns and
            returns the state before that epoch with the history up to it.
        progress: called on the host as ``progress(epochs_done, epochs, history)``
            after each chunk of ``chunk_epochs`` epochs.
        chunk_epochs: epochs per compiled chunk (default: all in one). Chunked and
            unchunked runs give bit-identical results.

    Returns:
        ``(state, history)``.

    Raises:
        TypeError, ValueError: for bad arguments, before anything is traced.
        TrainingDiverged: on NaN/inf with ``on_nan="raise"``.
    """
    data, test, epochs, batch_size, loss_fn, chunk = _check_fit(
        model, optimizer, data, epochs, batch_size, loss, l1, l2, test, on_nan, chunk_epochs
    )
    if state is None:
        state = create_train_state(key, model, optimizer, data.x, loss=loss_fn, l1=l1, l2=l2)
    else:
        if not isinstance(state, TrainState):
            raise TypeError(f"state must be a TrainState, got {type(state).__name__}")
        state = state.replace(
            apply_fn=ModuleApply(model),
            tx=optimizer,
            loss_fn=loss_fn,
            l1=jnp.asarray(l1, jnp.float32),
            l2=jnp.asarray(l2, jnp.float32),
        )
    return _loop(
        state,
        lambda state, length: _run(state, data, test, length, batch_size),
        epochs=epochs,
        chunk=chunk,
        on_nan=on_nan,
        progress=progress,
    )


Chunk = Callable[[Any, int], tuple[Any, _EpochRecord, Any, jax.Array]]


def _loop(
    state: Any,
    run_chunk: Chunk,
    *,
    epochs: int,
    chunk: int,
    on_nan: str,
    progress: Progress | None,
) -> tuple[Any, History]:
    """The host loop of :func:`fit` around a compiled ``run_chunk(state, epochs)``.

    ``run_chunk`` returns what :func:`_run_epochs` does; the state may be in any
    form (e.g. replicated across devices), the rest must be host-readable.
    """
    history: History | None = None
    done = 0
    while done < epochs:
        length = min(chunk, epochs - done)
        start = state
        state, records, grads, first_bad = run_chunk(start, length)
        bad = int(first_bad)
        if bad >= 0:
            # Run the good epochs of this chunk again: the state before the bad one.
            if bad > 0:
                state, records, grads, _ = run_chunk(start, bad)
            else:
                state = start
                grads = jax.tree.map(lambda g: jnp.zeros(g.shape, g.dtype), grads)
                if history is not None:
                    grads = history.final_grads
            part = _truncate(_history(records, grads), bad)
            history = part if history is None else concatenate(history, part)
            epoch = done + bad + 1
            if on_nan == "raise":
                raise TrainingDiverged(epoch, state, history)
            warnings.warn(
                f"training stopped at epoch {epoch}: loss or parameters became "
                "NaN/inf; returning the state from before that epoch",
                RuntimeWarning,
                stacklevel=3,
            )
            return state, history
        part = _history(records, grads)
        history = part if history is None else concatenate(history, part)
        done += length
        if progress is not None:
            progress(done, epochs, history)
    assert history is not None
    return state, history


def evaluate(
    model: nn.Module,
    params: Any,
    data: Dataset,
    *,
    loss: str | Callable[..., jax.Array] = ("cross_entropy"),
) -> Evaluation:
    """Loss and accuracy of ``model`` with ``params`` on ``data`` (no dropout)."""
    loss_fn = losses.get_loss(loss)
    data = _check_dataset("data", data, loss_fn, model)
    outputs = _apply(model, params, data.x)
    return Evaluation(
        loss_fn(outputs, data.y, None), _metric(outputs, data.y, None, _is_regression(loss_fn))
    )


def predict(model: nn.Module, params: Any, x: Any) -> jax.Array:
    """Class labels (argmax of the logits; ``logit > 0`` for one output), or values for regression.

    For a one-output model trained with ``mse`` this returns the raw outputs;
    use ``model.apply`` directly when in doubt.
    """
    x = check.array("x", x, ndim=2)
    outputs = _apply(model, params, x)
    if outputs.shape[-1] == 1:
        return outputs[..., 0]
    return jnp.argmax(outputs, axis=-1).astype(jnp.int32)


def probabilities(model: nn.Module, params: Any, x: Any) -> jax.Array:
    """Class probabilities ``float[n, k]``: softmax of the logits (sigmoid for one logit)."""
    x = check.array("x", x, ndim=2)
    outputs = _apply(model, params, x)
    if outputs.shape[-1] == 1:
        p = jax.nn.sigmoid(outputs[..., 0])
        return jnp.stack([1 - p, p], axis=-1)
    return jax.nn.softmax(outputs, axis=-1)


def steps_per_epoch(n: int, batch_size: int | None) -> int:
    """Optimizer steps in one epoch of ``n`` examples."""
    return 1 if batch_size is None else math.ceil(n / batch_size)
