"""The package's internal training engine: the one compiled loop under ``train`` and ``parallel``.

The contract::

    state = init_state(key, model, tx, x1, loss_fn=f, task=t, l1=a, l2=b)  # one jitted program
    state, metrics = train_step(state, batch, axis_name=None)              # pure; jit it
    plan = prepare(key, model, tx, data, epochs=E, state=None, ...)        # FitPlan, checked
    state, records, grads, first_bad = run(state, data, test, E, batch_size)   # compiled
    state, history = loop(state, run_chunk, epochs=E, chunk=C, on_nan=..., progress=...)
    history = concatenate(h1, h2) | truncate(h, k) | history_from(records, grads)
    history = map_epochs(f, *histories)                                    # every field, once

Internal to the package: its names have no underscore so that :mod:`dlvr_jax.train`
(which re-exports :class:`TrainState`, :class:`History`, :func:`train_step` and
the other public pieces under the same names) and :mod:`dlvr_jax.parallel` may
use them; users should call ``train.fit``, ``parallel.fit_pmap``,
``parallel.fit_sharded`` and ``parallel.sweep``, the thin front doors over it.

- :func:`run_epochs` is the compiled core: ``epochs`` epochs in one
  ``lax.scan``, each epoch's minibatches in an inner ``lax.scan``, noting the
  first epoch whose loss or parameters became NaN/inf with ``jnp.where``.
  ``parallel`` maps it (``vmap``, ``pmap``) and shards it (a :class:`Sharding`).
- :func:`loop` is the host loop around a compiled chunk: chunks, progress,
  and recovery from NaN by running the chunk again for fewer epochs.
- :func:`prepare` validates a fit's arguments on the host, before anything is
  traced, and returns a :class:`FitPlan` whose state is fresh or resumed.

Seams for tests: :func:`run` (the compiled core) and :func:`init_state` are
looked up on this module at call time, so a test may patch them to prove that
bad arguments are rejected before anything is traced.

Examples:
    >>> import jax
    >>> from dlvr_jax import data, engine, models, optim
    >>> circle = data.circle(jax.random.key(0), 100)
    >>> plan = engine.prepare(jax.random.key(1), models.MLP(hidden=(4,)),
    ...                       optim.optimizer("adam", 1e-2), circle, epochs=5)
    >>> plan.epochs, plan.batch_size, plan.chunk, int(plan.state.epoch)
    (5, 100, 5, 0)
    >>> state, history = engine.loop(
    ...     plan.state, lambda s, k: engine.run(s, plan.data, None, k, plan.batch_size),
    ...     epochs=plan.epochs, chunk=plan.chunk, on_nan="raise", progress=None)
    >>> history.train_loss.shape, int(state.epoch)
    ((5,), 5)
"""

from __future__ import annotations

import dataclasses
import functools
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
from dlvr_jax import _xla, losses, models
from dlvr_jax import data as data_module
from dlvr_jax.data import Dataset

__all__ = [
    "ON_NAN",
    "Batch",
    "Chunk",
    "EpochRecord",
    "Evaluation",
    "FitArgs",
    "FitPlan",
    "History",
    "ModuleApply",
    "Progress",
    "Sharding",
    "StepMetrics",
    "TrainState",
    "TrainingDiverged",
    "check_dataset",
    "check_fit",
    "check_model",
    "compiled_run",
    "concatenate",
    "evaluate_state",
    "history_from",
    "init_state",
    "layer_norms",
    "loop",
    "map_epochs",
    "metric",
    "pad_to_batches",
    "prepare",
    "run",
    "run_epochs",
    "train_step",
    "truncate",
]

ON_NAN = ("raise", "stop")
"""What a fit may do when the loss or parameters become NaN/inf."""

# Typed handles on JAX functions that mypy sees as untyped.
_psum: Callable[..., Any] = lax.psum
_constrain: Callable[..., Any] = lax.with_sharding_constraint
_barrier: Callable[..., Any] = lax.optimization_barrier


# ----------------------------------------------------------------------------
# The types.


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
        task: ``"classification"`` or ``"regression"`` (static; see
            :func:`dlvr_jax.losses.task`): the accuracy of a regression is NaN.
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
    task: str = dataclasses.field(default="classification", metadata={"pytree_node": False})

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

    Every field but ``final_grads`` is per epoch; :func:`map_epochs` is the one
    definition of an operation over all of them.

    Attributes:
        train_loss: mean training loss over the epoch's minibatches (before each update).
        train_accuracy: the same for accuracy (NaN for regression).
        test_loss: loss on ``test`` after each epoch, or None without a test set.
        test_accuracy: accuracy on ``test`` after each epoch, or None.
        grad_norms: ``{layer: float[epochs]}``, the mean over the epoch of each
            dense layer's gradient norm (layers as :func:`dlvr_jax.models.dense_layers`).
        final_grads: the gradients of the last step, shaped like the params.
    """

    train_loss: jax.Array
    train_accuracy: jax.Array
    test_loss: jax.Array | None
    test_accuracy: jax.Array | None
    grad_norms: dict[str, jax.Array]
    final_grads: Any


class EpochRecord(NamedTuple):
    """What one epoch of :func:`run_epochs` records: the per-epoch fields of :class:`History`."""

    train_loss: jax.Array
    train_accuracy: jax.Array
    test_loss: jax.Array | None
    test_accuracy: jax.Array | None
    grad_norms: dict[str, jax.Array]


class Evaluation(NamedTuple):
    """Loss and accuracy of a model on a dataset (accuracy is NaN for regression)."""

    loss: jax.Array
    accuracy: jax.Array


Progress = Callable[[int, int, History], None]
"""``progress(epochs_done, epochs, history)``, called on the host after each chunk."""


# ----------------------------------------------------------------------------
# History: one definition over every per-epoch field.


def map_epochs(f: Callable[..., Any], *histories: History) -> History:
    """``f`` applied to each per-epoch field of ``histories`` (all of them, leaf by leaf).

    A field that is None in any history (no test set) stays None;
    ``final_grads`` is taken from the last history. This is the one place that
    knows which fields are per epoch: :func:`concatenate`, :func:`truncate`
    and ``parallel``'s masking of diverged epochs are all made from it.
    """

    def leaf(*values: Any) -> Any:
        return None if any(value is None for value in values) else f(*values)

    per_epoch = [history._replace(final_grads=None) for history in histories]
    mapped = jax.tree.map(leaf, *per_epoch, is_leaf=lambda value: value is None)
    return cast(History, mapped._replace(final_grads=histories[-1].final_grads))


def concatenate(first: History, second: History) -> History:
    """Joins the histories of two consecutive runs (e.g. before and after a resume)."""
    return map_epochs(lambda a, b: jnp.concatenate([a, b]), first, second)


def truncate(history: History, epochs: int) -> History:
    """The first ``epochs`` epochs of ``history`` (``final_grads`` unchanged)."""
    return map_epochs(lambda a: a[:epochs], history)


def history_from(records: EpochRecord, grads: Any) -> History:
    """The :class:`History` of a run's stacked :class:`EpochRecord` and its last gradients."""
    return History(**records._asdict(), final_grads=grads)


# ----------------------------------------------------------------------------
# The pure pieces.


def metric(outputs: jax.Array, y: jax.Array, weights: jax.Array | None, task: str) -> jax.Array:
    """The accuracy of ``outputs`` on ``y``, or NaN for a regression ``task``."""
    if task == "regression":
        return jnp.full((), jnp.nan, jnp.float32)
    return losses.accuracy(outputs, y, weights)


def _init(
    key: jax.Array,
    x: jax.Array,
    l1: jax.Array,
    l2: jax.Array,
    *,
    model: nn.Module,
    tx: optax.GradientTransformation,
    loss_fn: Callable[..., jax.Array],
    task: str,
) -> TrainState:
    init_key, train_key = jax.random.split(key)
    params = model.init(init_key, x)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        epoch=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        key=train_key,
        l1=jnp.asarray(l1, jnp.float32),
        l2=jnp.asarray(l2, jnp.float32),
        apply_fn=ModuleApply(model),
        tx=tx,
        loss_fn=loss_fn,
        task=task,
    )


@functools.cache
def _compiled_init(platform: str | None) -> Callable[..., Any]:
    """:func:`_init` under ``jit``; on a ``platform``, compiled for compile time (it runs
    once per fit). None: the plain ``jit`` for a call inside a transform, where a nested
    ``jit`` may not carry compiler options."""
    options = None if platform is None else dict(_xla.run_once_options(platform))
    return jax.jit(
        _init, static_argnames=("model", "tx", "loss_fn", "task"), compiler_options=options or None
    )


def _under_a_transform(*values: Any) -> bool:
    """Whether the caller is inside ``jit``/``vmap``/...: an input, or a new array, is a tracer."""
    return any(check.is_tracer(value) for value in values) or check.is_tracer(jnp.int32(0))


def init_state(
    key: jax.Array,
    model: nn.Module,
    tx: optax.GradientTransformation,
    x: Any,
    *,
    loss_fn: Callable[..., jax.Array],
    task: str,
    l1: Any = 0.0,
    l2: Any = 0.0,
) -> TrainState:
    """A fresh :class:`TrainState`: ``model.init`` on ``x[:1]`` and ``tx.init``, in one program.

    ``key`` is split into the initialisation key and ``state.key``. The program
    is compiled once per (model, optimizer, loss, task, shape of a row) and
    gives the same bits as running ``model.init`` and ``tx.init`` eagerly. No
    checks: :func:`dlvr_jax.train.create_train_state` is the validating door.
    """
    # A concrete x is sliced on the host: an eager slice would compile a program of its own.
    first = x[:1] if check.is_tracer(x) else np.asarray(x)[:1]
    return cast(
        TrainState,
        _compiled_init(None if _under_a_transform(key, x, l1, l2) else jax.default_backend())(
            key,
            first,
            jnp.float32(l1) if not check.is_tracer(l1) else l1,
            jnp.float32(l2) if not check.is_tracer(l2) else l2,
            model=model,
            tx=tx,
            loss_fn=loss_fn,
            task=task,
        ),
    )


def layer_norms(grads: Any) -> dict[str, jax.Array]:
    """The global norm of each dense layer's gradients (kernel and bias), by layer name."""
    norms = {}
    for layer in models.dense_layers(grads):
        total = jnp.sum(jnp.square(layer.kernel))
        if layer.bias is not None:
            total = jnp.sum(jnp.square(layer.bias)) + total
        norms[layer.name] = jnp.sqrt(total)
    return norms


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
    accuracy = metric(outputs, batch.y, batch.weights, state.task)
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


def evaluate_state(state: TrainState, data: Dataset) -> Evaluation:
    """Loss and accuracy of ``state``'s parameters on ``data`` (no dropout)."""
    outputs = state.apply_fn(state.params, data.x)
    return Evaluation(
        state.loss_fn(outputs, data.y, None), metric(outputs, data.y, None, state.task)
    )


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves))


# ----------------------------------------------------------------------------
# The compiled epoch loop.


class Sharding(NamedTuple):
    """How :func:`run_epochs` splits each global minibatch across devices (static, hashable).

    Attributes:
        shards: the number of devices; each global minibatch is padded with
            zero-weight rows to a multiple of it.
        axis_name: the ``pmap`` axis, or None under ``jit`` with shardings.
        batch_sharding: under ``jit``, the ``NamedSharding`` that splits a batch's rows.
    """

    shards: int
    axis_name: str | None = None
    batch_sharding: Any = None


def _finish_epoch(
    state: TrainState,
    test: Dataset | None,
    n: int | jax.Array,
    loss_sum: jax.Array,
    accuracy_sum: jax.Array,
    grad_norms: dict[str, jax.Array],
) -> tuple[TrainState, EpochRecord]:
    test_loss: jax.Array | None
    test_accuracy: jax.Array | None
    if test is not None:
        tested = evaluate_state(state, test)
        test_loss, test_accuracy = tested.loss, tested.accuracy
    else:
        test_loss = test_accuracy = None
    # The example count as an opaque value: XLA would fold a constant divisor into a
    # multiplication, and a padded run (a traced count) must record the same bits.
    examples = _barrier(jnp.asarray(n, jnp.float32))
    record = EpochRecord(
        loss_sum / examples, accuracy_sum / examples, test_loss, test_accuracy, grad_norms
    )
    return state.replace(epoch=state.epoch + 1), record


def _train_epoch(
    state: TrainState,
    data: Dataset,
    test: Dataset | None,
    batch_size: int,
    sharding: Sharding | None = None,
    count: jax.Array | None = None,
) -> tuple[TrainState, EpochRecord, Any]:
    """One pass over ``data`` in shuffled minibatches (the last one padded and masked).

    The order is :func:`dlvr_jax.data.batch_order` under ``fold_in(state.key, 0)``
    (what :func:`dlvr_jax.train.minibatches` documents). With ``count``, only
    the first ``count`` rows of ``data`` are examples (see :func:`pad_to_batches`).
    """
    n = data.x.shape[0]
    if batch_size == n and sharding is None and count is None:
        # Full batch: no shuffle, no padding, no gather.
        state, metrics = train_step(state, Batch(data.x, data.y))
        state, record = _finish_epoch(
            state, test, n, metrics.loss * n, metrics.accuracy * n, layer_norms(metrics.grads)
        )
        return state, record, metrics.grads
    index, mask = data_module.batch_order(
        jax.random.fold_in(state.key, 0), state.epoch, n, batch_size, remainder="pad", count=count
    )
    padded = count is not None or index.size > n
    examples: Any = n if count is None else count
    if sharding is not None:
        extra = -batch_size % sharding.shards
        if extra:
            index = jnp.pad(index, ((0, 0), (0, extra)))
            mask = jnp.pad(mask, ((0, 0), (0, extra)))
            padded = True

    def one_batch(carry: tuple[TrainState, Any], batch: tuple[jax.Array, jax.Array]) -> Any:
        state, _ = carry
        rows, weights = batch
        weight = jnp.sum(weights)  # this batch's examples (not the padding)
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
            state, Batch(x, y, weights if padded else None), axis_name=axis_name
        )
        return (state, metrics.grads), (
            metrics.loss * weight,
            metrics.accuracy * weight,
            layer_norms(metrics.grads),
        )

    zero_grads = jax.tree.map(jnp.zeros_like, state.params)
    (state, last_grads), (loss_sums, accuracy_sums, norms) = lax.scan(
        one_batch, (state, zero_grads), (index, mask)
    )
    mean_norms = {name: jnp.mean(value) for name, value in norms.items()}
    state, record = _finish_epoch(
        state, test, examples, jnp.sum(loss_sums), jnp.sum(accuracy_sums), mean_norms
    )
    return state, record, last_grads


def run_epochs(
    state: TrainState,
    data: Dataset,
    test: Dataset | None,
    epochs: int,
    batch_size: int,
    sharding: Sharding | None = None,
    count: jax.Array | None = None,
) -> tuple[TrainState, EpochRecord, Any, jax.Array]:
    """``epochs`` epochs in one ``lax.scan``, noting the first that produces NaN/inf.

    Returns the state, the per-epoch records, the last gradients and the
    0-based index of the first bad epoch of this run (-1 if none). Epochs after
    a bad one still run (on non-finite values); :func:`loop` discards them and
    recovers the state from before the bad epoch by running the chunk again for
    fewer epochs, which is bit-identical and keeps the hot loop free of
    branches and per-epoch copies of the state. This is the core that
    :mod:`dlvr_jax.parallel` maps (``vmap``, ``pmap``) and shards.

    ``count`` (an int32 scalar, a value rather than a shape): ``data`` holds
    ``count`` examples padded with rows that are never read, as
    :func:`pad_to_batches` makes it; the run is bit-identical to the run on
    the unpadded examples, and one compiled program serves every count that
    pads to the same size. Not with ``sharding``.
    """
    if count is not None and sharding is not None:
        raise ValueError("count and sharding cannot be combined: shard the unpadded data")

    def one_epoch(carry: Any, index: jax.Array) -> Any:
        state, _, first_bad = carry
        state, record, grads = _train_epoch(state, data, test, batch_size, sharding, count)
        finite = jnp.isfinite(record.train_loss) & _all_finite(state.params)
        first_bad = jnp.where((first_bad < 0) & ~finite, index, first_bad)
        return (state, grads, first_bad), record

    zero_grads = jax.tree.map(jnp.zeros_like, state.params)
    (state, grads, first_bad), records = lax.scan(
        one_epoch, (state, zero_grads, jnp.int32(-1)), jnp.arange(epochs, dtype=jnp.int32)
    )
    return state, records, grads, first_bad


def compiled_run(platform: str) -> Callable[..., Any]:
    """:func:`run_epochs` under ``jit``, with the CPU options of :mod:`dlvr_jax._xla`."""
    return _compiled_run(platform)


@functools.cache
def _compiled_run(platform: str) -> Callable[..., Any]:
    return jax.jit(
        run_epochs,
        static_argnames=("epochs", "batch_size", "sharding"),
        compiler_options=dict(_xla.cpu_options(platform)) or None,
    )


def run(
    state: TrainState,
    data: Dataset,
    test: Dataset | None,
    epochs: int,
    batch_size: int,
    count: jax.Array | None = None,
) -> tuple[TrainState, EpochRecord, Any, jax.Array]:
    """:func:`run_epochs`, compiled, on the default device (a seam tests may patch)."""
    compiled = compiled_run(jax.default_backend())
    return cast(Any, compiled(state, data, test, epochs=epochs, batch_size=batch_size, count=count))


def pad_to_batches(
    data: Dataset, batch_size: int, key: jax.Array
) -> tuple[Dataset, jax.Array | None]:
    """``data`` padded with zero rows to whole batches, and its example count (or None).

    The compiled loop's shapes then count batches, not examples: training
    sets of 455 and 456 rows in batches of 200 both become 600 rows, and
    :func:`run` compiles once for both, where it would compile once per size
    (a grid search's folds, for example). The run on the padded set, with the
    count, is bit-identical to the run on ``data`` (tested). Returns ``(data,
    None)`` unchanged when :func:`dlvr_jax.data.bucket` finds nothing to pad
    or cannot pad safely. It costs a copy of the training set.
    """
    n = int(data.x.shape[0])
    size = data_module.bucket(n, batch_size, key)
    if size is None:
        return data, None

    def pad(array: Any) -> Any:
        shape = (size - n, *array.shape[1:])
        if isinstance(array, jax.Array) and (
            check.is_tracer(array) or any(d.platform != "cpu" for d in array.devices())
        ):
            return jnp.concatenate([array, jnp.zeros(shape, array.dtype)])
        # On the host (NumPy, or the CPU backend's memory): no program to compile.
        return check.to_device(np.concatenate([np.asarray(array), np.zeros(shape, array.dtype)]))

    return Dataset(pad(data.x), pad(data.y)), jnp.int32(n)


# ----------------------------------------------------------------------------
# The host loop.

Chunk = Callable[[Any, int], tuple[Any, EpochRecord, Any, jax.Array]]
"""``run_chunk(state, epochs)``, returning what :func:`run_epochs` does."""


def loop(
    state: Any,
    run_chunk: Chunk,
    *,
    epochs: int,
    chunk: int,
    on_nan: str,
    progress: Progress | None,
) -> tuple[Any, History]:
    """The host loop of a fit around a compiled ``run_chunk(state, epochs)``.

    Runs ``epochs`` epochs in chunks of ``chunk``, calls ``progress`` after
    each, and on the first non-finite epoch runs the chunk again up to the
    epoch before it: then raises :class:`TrainingDiverged` (``on_nan="raise"``)
    or warns and returns the last good state (``"stop"``). ``run_chunk``
    returns what :func:`run_epochs` does; the state may be in any form (e.g.
    replicated across devices), the rest must be host-readable.
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
            part = truncate(history_from(records, grads), bad)
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
        part = history_from(records, grads)
        history = part if history is None else concatenate(history, part)
        done += length
        if progress is not None:
            progress(done, epochs, history)
    assert history is not None
    return state, history


# ----------------------------------------------------------------------------
# Checks at the door, and fit preparation (resume included).


def _n_outputs(model: nn.Module) -> int | None:
    value = getattr(model, "n_outputs", None)
    return value if isinstance(value, int) else None


_BINARY = (losses.binary_cross_entropy, losses.hinge)


def _loss_name(loss_fn: Callable[..., Any]) -> str:
    """The registered name of ``loss_fn`` (e.g. ``mse``), else its ``__name__``."""
    for name, registered in losses.LOSSES.items():
        if registered is loss_fn:
            return name
    return str(getattr(loss_fn, "__name__", type(loss_fn).__name__))


def check_dataset(
    name: str, dataset: Any, loss_fn: Callable[..., Any], model: nn.Module, task: str
) -> Dataset:
    """``dataset`` as a float32/int32 :class:`~dlvr_jax.data.Dataset` fit for ``loss_fn``.

    Regression targets become float32; class labels must be integers in range
    for the model's outputs (when they can be read: not under a transform).

    Raises:
        TypeError, ValueError: naming ``name``, the value and what is expected.
    """
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
    if task == "regression":
        if n_outputs not in (None, 1):
            raise ValueError(
                f"loss {_loss_name(loss_fn)!r} needs a model with n_outputs=1 for regression, "
                f"got {n_outputs}"
            )
        return Dataset(x.astype(jnp.float32), y.astype(jnp.float32))
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(
            f"{name}.y must hold integer class labels for a classification loss, got dtype "
            f"{y.dtype}; for regression targets use loss='mse' or task='regression'"
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
        elif loss_fn in _BINARY and labels.max() > 1:
            raise ValueError(f"{name}.y must hold labels 0/1 for a binary loss, got {labels.max()}")
    if loss_fn in _BINARY and n_outputs not in (None, 1):
        raise ValueError(f"a binary loss needs a model with n_outputs=1, got {n_outputs}")
    return Dataset(x.astype(jnp.float32), y.astype(jnp.int32))


class FitArgs(NamedTuple):
    """A fit's arguments, checked (see :func:`check_fit`).

    Attributes:
        data: the training set, float32 features and int32 labels (float32 targets).
        test: the test set likewise, or None.
        epochs: epochs to run, ``>= 1``.
        batch_size: examples per step, in ``[1, n]`` (``n`` for full batch).
        loss_fn: the loss callable.
        task: ``"classification"`` or ``"regression"``.
        l1: the L1 weight, a float >= 0.
        l2: the L2 weight, a float >= 0.
        chunk: epochs per compiled chunk.
        on_nan: one of :data:`ON_NAN`.
    """

    data: Dataset
    test: Dataset | None
    epochs: int
    batch_size: int
    loss_fn: Callable[..., jax.Array]
    task: str
    l1: float
    l2: float
    chunk: int
    on_nan: str


def check_model(model: Any, optimizer: Any) -> None:
    """Raises ``TypeError`` unless ``model`` is a linen Module and ``optimizer`` an Optax one."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a flax.linen Module, got {type(model).__name__}: {check.show(model)}"
        )
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"optimizer must be an optax.GradientTransformation (see dlvr_jax.optim.optimizer), "
            f"got {type(optimizer).__name__}: {check.show(optimizer)}"
        )


def check_fit(
    model: Any,
    optimizer: Any,
    data: Any,
    *,
    epochs: Any,
    batch_size: Any = None,
    loss: Any = "cross_entropy",
    task: Any = None,
    l1: Any = 0.0,
    l2: Any = 0.0,
    test: Any = None,
    on_nan: Any = "raise",
    chunk_epochs: Any = None,
) -> FitArgs:
    """Checks a fit's arguments on the host, before anything is traced.

    Raises:
        TypeError, ValueError: naming the argument, the value and what is expected.
    """
    check_model(model, optimizer)
    loss_fn = losses.get_loss(loss)
    kind = losses.task(loss, task)
    data = check_dataset("data", data, loss_fn, model, kind)
    if test is not None:
        test = check_dataset("test", test, loss_fn, model, kind)
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
    l1 = check.real("l1", l1, low=0.0)
    l2 = check.real("l2", l2, low=0.0)
    check.choice("on_nan", on_nan, ON_NAN)
    chunk = epochs if chunk_epochs is None else check.positive_int("chunk_epochs", chunk_epochs)
    return FitArgs(data, test, epochs, batch_size, loss_fn, kind, l1, l2, chunk, on_nan)


class FitPlan(NamedTuple):
    """Everything a front door needs to run a fit (see :func:`prepare`).

    Attributes:
        state: the state to start from: fresh from the key, or the resumed one
            with this fit's model, optimizer, loss, task, l1 and l2.
        data: the checked training set.
        test: the checked test set, or None.
        epochs: epochs to run in this call.
        batch_size: examples per step.
        chunk: epochs per compiled chunk.
        on_nan: one of :data:`ON_NAN`.
        progress: the progress callback, or None.
    """

    state: TrainState
    data: Dataset
    test: Dataset | None
    epochs: int
    batch_size: int
    chunk: int
    on_nan: str
    progress: Progress | None


def prepare(
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    data: Any,
    *,
    epochs: Any,
    batch_size: Any = None,
    loss: Any = "cross_entropy",
    task: Any = None,
    l1: Any = 0.0,
    l2: Any = 0.0,
    test: Any = None,
    state: Any = None,
    on_nan: Any = "raise",
    progress: Any = None,
    chunk_epochs: Any = None,
) -> FitPlan:
    """Checks a fit's arguments and gives the state to start from, as one :class:`FitPlan`.

    Without ``state``, a fresh state from ``key`` (:func:`init_state`). With
    ``state`` (resume), that state continues: its step, epoch, parameters,
    optimizer state and key are kept, and its static parts, ``l1`` and ``l2``
    come from this call's arguments, so a run of ``n`` epochs and a resumed run
    of ``m`` more are bit-identical to one run of ``n + m``.

    Raises:
        TypeError, ValueError: for bad arguments, before anything is traced.
    """
    args = check_fit(
        model,
        optimizer,
        data,
        epochs=epochs,
        batch_size=batch_size,
        loss=loss,
        task=task,
        l1=l1,
        l2=l2,
        test=test,
        on_nan=on_nan,
        chunk_epochs=chunk_epochs,
    )
    if progress is not None and not callable(progress):
        raise TypeError(
            "progress must be a callable progress(done, epochs, history), "
            f"got {check.show(progress)}"
        )
    if state is None:
        key = check.prng_key("key", key)
        state = init_state(
            key,
            model,
            optimizer,
            args.data.x,
            loss_fn=args.loss_fn,
            task=args.task,
            l1=args.l1,
            l2=args.l2,
        )
    else:
        if not isinstance(state, TrainState):
            raise TypeError(f"state must be a TrainState, got {type(state).__name__}")
        state = state.replace(
            apply_fn=ModuleApply(model),
            tx=optimizer,
            loss_fn=args.loss_fn,
            task=args.task,
            l1=jnp.asarray(args.l1, jnp.float32),
            l2=jnp.asarray(args.l2, jnp.float32),
        )
    return FitPlan(
        state, args.data, args.test, args.epochs, args.batch_size, args.chunk, args.on_nan, progress
    )
