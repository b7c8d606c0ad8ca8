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
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, Required, TypedDict, Unpack, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax import lax

from dlvr_jax import _compiled, _xla, losses, models
from dlvr_jax import _validate as check
from dlvr_jax import data as data_module
from dlvr_jax.data import Dataset

__all__ = [
    "LOOP_ON_NAN",
    "ON_NAN",
    "OPTIONS",
    "Batch",
    "Cancel",
    "Cancelled",
    "Chunk",
    "EpochRecord",
    "Evaluation",
    "FitArgs",
    "FitOptions",
    "FitPlan",
    "History",
    "ModuleApply",
    "Progress",
    "Sharding",
    "StateOptions",
    "StepMetrics",
    "SweepOptions",
    "TrainState",
    "TrainingDiverged",
    "check_dataset",
    "check_fit",
    "check_model",
    "check_options",
    "check_sample_weight",
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
    "program_key",
    "run",
    "run_epochs",
    "train_step",
    "truncate",
]

ON_NAN = ("raise", "stop")
"""What a fit may do when the loss or parameters become NaN/inf."""

LOOP_ON_NAN = (*ON_NAN, "keep")
"""What :func:`loop` accepts: a fit's :data:`ON_NAN`, or ``"keep"`` (no recovery, for sweeps)."""

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


class Cancelled(Exception):
    """Training was stopped between two chunks because its ``cancel`` was set.

    Attributes:
        epochs: the epochs this call completed before it stopped.
        state: the state after them (the starting state if none ran).
        history: their history, or None if no chunk ran.
    """

    def __init__(self, epochs: int, state: Any, history: History | None) -> None:
        super().__init__(f"training cancelled after {epochs} epochs")
        self.epochs = epochs
        self.state = state
        self.history = history


class Cancel(Protocol):
    """What a fit's ``cancel`` is: anything with ``is_set()``, e.g. a ``threading.Event``."""

    def is_set(self) -> bool:
        """Whether training should stop at the next chunk boundary."""
        ...


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
# The training options: declared once, here.


class _LossOptions(TypedDict, total=False):
    """The loss and the task (see :class:`FitOptions`)."""

    loss: str | Callable[..., jax.Array]
    task: str | None


class StateOptions(_LossOptions, total=False):
    """The options a fresh :class:`TrainState` records (see :class:`FitOptions`).

    ``dlvr_jax.train.create_train_state`` takes them: ``loss``, ``task``, ``l1``, ``l2``.
    """

    l1: float
    l2: float


class _RunOptions(_LossOptions, total=False):
    """The options a fit and a sweep share (see :class:`FitOptions` for each one)."""

    epochs: Required[int]
    batch_size: int | None
    test: Dataset | None
    chunk_epochs: int | None
    cancel: Cancel | None


class FitOptions(_RunOptions, StateOptions, total=False):
    """The training options of a fit, declared once for every door.

    ``train.fit``, ``parallel.fit_pmap``, ``parallel.fit_sharded``,
    :func:`check_fit` and :func:`prepare` all take them as keywords
    (``**options: Unpack[FitOptions]``); a door that builds them passes a dict
    (``train.fit(key, model, optimizer, data, **options)``).

    Keys:
        epochs: passes over the data in this call, ``>= 1`` (required).
        batch_size: examples per step; None (default) for full batch. The last
            minibatch of an epoch is padded and masked when ``batch_size`` does
            not divide ``n``, so every example counts once.
        loss: ``cross_entropy`` (default), ``binary_cross_entropy``, ``hinge``,
            ``mse`` or a callable ``loss(outputs, targets, weights)``.
        task: ``"classification"`` or ``"regression"``; default from ``loss``
            (:func:`dlvr_jax.losses.task`).
        l1: weight of the L1 penalty on the weight matrices (default 0).
        l2: weight of the L2 penalty on the weight matrices (default 0).
        test: an optional held-out dataset, evaluated after every epoch.
        sample_weight: ``float[n]``, each example's weight in the loss and the
            accuracy (>= 0, finite, not all zero); default: all 1.
        state: continue from this :class:`TrainState` (resume) instead of
            initialising from the key; ``n`` epochs and a resume for ``m``
            more are bit-identical to one run of ``n + m``.
        on_nan: ``"raise"`` (default) raises :class:`TrainingDiverged`;
            ``"stop"`` warns and returns the state before the bad epoch.
        progress: ``progress(epochs_done, epochs, history)``, on the host after each chunk.
        chunk_epochs: epochs per compiled chunk (default: all in one); chunked
            and unchunked runs give bit-identical results.
        cancel: anything with ``is_set()`` (a ``threading.Event``), checked
            before each chunk; once set, the fit raises :class:`Cancelled`
            carrying what it had done.
        pad_batches: pad the training set to whole batches
            (:func:`pad_to_batches`), so that sizes with the same number of
            batches share one compiled loop, with the bits of the unpadded run
            (default False: padding costs a copy of the training set).
    """

    sample_weight: Any
    state: TrainState | None
    on_nan: str
    progress: Progress | None
    pad_batches: bool


class SweepOptions(_RunOptions, total=False):
    """The training options of :func:`dlvr_jax.parallel.sweep`: a fit's, with grids of penalties.

    Keys: as :class:`FitOptions`, except that ``l1`` and ``l2`` may be one
    value or a grid of values (each model trains one combination).
    """

    l1: float | Sequence[float]
    l2: float | Sequence[float]


OPTIONS = tuple(FitOptions.__annotations__)
"""The names of the training options (the keys of :class:`FitOptions`)."""


def check_options(
    owner: str,
    options: Mapping[str, Any],
    allowed: Any = FitOptions,
    required: tuple[str, ...] = ("epochs",),
) -> None:
    """Raises ``TypeError`` for an option ``owner`` does not take, or a missing required one.

    ``allowed`` is the TypedDict of the options ``owner`` takes.
    """
    known = tuple(allowed.__annotations__)
    for name in options:
        if name not in known:
            raise TypeError(
                f"{owner}() got an unexpected keyword argument {name!r}; its training options "
                f"are {', '.join(known)}"
            )
    for name in required:
        if name not in options:
            raise TypeError(f"{owner}() missing the required keyword argument {name!r}")


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


@_compiled.memoize
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
    weights: jax.Array | None = None,
) -> tuple[TrainState, EpochRecord, Any]:
    """One pass over ``data`` in shuffled minibatches (the last one padded and masked).

    The order is :func:`dlvr_jax.data.batch_order` under ``fold_in(state.key, 0)``
    (what :func:`dlvr_jax.train.minibatches` documents). With ``count``, only
    the first ``count`` rows of ``data`` are examples (see :func:`pad_to_batches`).
    With ``weights`` (one per row), each example's loss and accuracy count with
    its weight, and the epoch's means are weighted means.
    """
    n = data.x.shape[0]
    if batch_size == n and sharding is None and count is None:
        # Full batch: no shuffle, no padding, no gather.
        state, metrics = train_step(state, Batch(data.x, data.y, weights))
        total: Any = n if weights is None else jnp.sum(weights)
        state, record = _finish_epoch(
            state,
            test,
            total,
            metrics.loss * total,
            metrics.accuracy * total,
            layer_norms(metrics.grads),
        )
        return state, record, metrics.grads
    index, mask = data_module.batch_order(
        jax.random.fold_in(state.key, 0), state.epoch, n, batch_size, remainder="pad", count=count
    )
    padded = count is not None or index.size > n or weights is not None
    examples: Any = n if count is None else count
    if weights is not None:
        mask = mask * weights[index]
        examples = jnp.sum(weights)
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
    weights: jax.Array | None = None,
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

    ``weights`` (``float32[n]``, one per row of ``data``, 0 for padding): each
    example's weight in the loss and the accuracy (a fit's ``sample_weight``).
    """
    if count is not None and sharding is not None:
        raise ValueError("count and sharding cannot be combined: shard the unpadded data")

    def one_epoch(carry: Any, index: jax.Array) -> Any:
        state, _, first_bad = carry
        state, record, grads = _train_epoch(state, data, test, batch_size, sharding, count, weights)
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


@_compiled.memoize
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
    weights: jax.Array | None = None,
) -> tuple[TrainState, EpochRecord, Any, jax.Array]:
    """:func:`run_epochs`, compiled, on the default device (a seam tests may patch).

    Each program it compiles is noted in the registry (:mod:`dlvr_jax._compiled`),
    so the programs of a long-running process stay bounded.
    """
    platform = jax.default_backend()
    _compiled.note(program_key(state, data, test, epochs, batch_size, count, weights))
    compiled = compiled_run(platform)
    return cast(
        Any,
        compiled(
            state, data, test, epochs=epochs, batch_size=batch_size, count=count, weights=weights
        ),
    )


def program_key(
    state: TrainState,
    data: Dataset,
    test: Dataset | None,
    epochs: int,
    batch_size: int,
    count: jax.Array | None = None,
    weights: jax.Array | None = None,
) -> tuple[Any, ...]:
    """What decides whether :func:`run` compiles: two calls with equal keys share one program.

    The static parts of the state (model, optimizer, loss, task), the shapes and
    dtypes of everything else, and the static sizes: the identity rule that
    ``docs/contributing.md`` states.
    """
    leaves, structure = jax.tree.flatten((state, data, test, count, weights))
    shapes = tuple((getattr(leaf, "shape", ()), str(getattr(leaf, "dtype", type(leaf))))
                   for leaf in leaves)  # fmt: skip
    return (jax.default_backend(), structure, shapes, epochs, batch_size)


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
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    pieces: Callable[[int], Sequence[int]] | None = None,
    epoch_axis: int = 0,
) -> tuple[Any, History]:
    """The host loop of every fit, sweep and Playground session, around a compiled chunk.

    Runs ``epochs`` epochs as ``run_chunk(state, n)`` in chunks of ``chunk``
    and calls ``progress(done, epochs, history)`` after each. ``run_chunk``
    returns what :func:`run_epochs` does; the state may be in any form (e.g.
    replicated across devices, or one per model of a sweep), the rest must be
    host-readable, with the epochs along ``epoch_axis`` of each record.

    Stopping: ``cancel.is_set()`` is checked before every chunk; once set,
    :class:`Cancelled` is raised, carrying the epochs done, their state and
    history. A chunk that has started runs to its end, so a door that must stop
    within a time sizes its chunks to it.

    NaN/inf: on the first non-finite epoch, the good epochs of the chunk run
    again from its start, as chunks of the sizes ``pieces(bad)`` (default one
    chunk of ``bad`` epochs; a door that has programs of some sizes compiled
    gives those), which is bit-identical; then ``on_nan="raise"`` raises
    :class:`TrainingDiverged`, ``"stop"`` warns and returns the last good state.
    ``"keep"`` does no recovery (a sweep's models each note their own).
    """
    check.choice("on_nan", on_nan, LOOP_ON_NAN)
    history: History | None = None

    def join(part: History) -> History:
        if history is None:
            return part
        return map_epochs(lambda a, b: jnp.concatenate([a, b], axis=epoch_axis), history, part)

    done = 0
    while done < epochs:
        if cancel is not None and cancel.is_set():
            raise Cancelled(done, state, history)
        length = min(chunk, epochs - done)
        start = state
        state, records, grads, first_bad = run_chunk(start, length)
        bad = -1 if on_nan == "keep" else int(first_bad)
        if bad >= 0:
            state, part = _recover(start, run_chunk, bad, records, grads, pieces)
            if bad == 0 and history is not None:  # nothing of this chunk is kept
                part = part._replace(final_grads=history.final_grads)
            history = join(part)
            _diverged(on_nan, done + bad + 1, state, history)
            return state, history
        history = join(history_from(records, grads))
        done += length
        if progress is not None:
            progress(done, epochs, history)
    assert history is not None
    return state, history


def _recover(
    start: Any,
    run_chunk: Chunk,
    bad: int,
    records: EpochRecord,
    grads: Any,
    pieces: Callable[[int], Sequence[int]] | None,
) -> tuple[Any, History]:
    """The state before a chunk's first bad epoch (run again from ``start``) and its history.

    With ``bad == 0`` nothing runs: the history is the chunk's, with no epochs,
    and zero gradients.
    """
    if bad == 0:
        zeros = jax.tree.map(lambda g: jnp.zeros(g.shape, g.dtype), grads)
        return start, truncate(history_from(records, zeros), 0)
    state, part = start, None
    for size in [bad] if pieces is None else pieces(bad):
        state, piece, grads, _ = run_chunk(state, size)
        more = history_from(piece, grads)
        part = more if part is None else concatenate(part, more)
    assert part is not None
    return state, part


def _diverged(on_nan: str, epoch: int, state: Any, history: History) -> None:
    if on_nan == "raise":
        raise TrainingDiverged(epoch, state, history)
    warnings.warn(
        f"training stopped at epoch {epoch}: loss or parameters became "
        "NaN/inf; returning the state from before that epoch",
        RuntimeWarning,
        stacklevel=4,
    )


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

    Regression targets become float32 (``[n]``, or ``[n, k]`` for a model of
    ``k`` outputs); class labels must be integers in range for the model's
    outputs (when they can be read: not under a transform).

    Raises:
        TypeError, ValueError: naming ``name``, the value and what is expected.
    """
    if not (hasattr(dataset, "x") and hasattr(dataset, "y")):
        raise TypeError(f"{name} must be a Dataset(x, y), got {type(dataset).__name__}")
    x = check.array(f"{name}.x", dataset.x, ndim=2)
    y = check.array(f"{name}.y", dataset.y, ndim=(1, 2) if task == "regression" else 1)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: {name}.x has shape {x.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name}.y must have one entry per row of {name}.x: {x.shape[0]} rows, "
            f"{y.shape[0]} targets"
        )
    n_outputs = _n_outputs(model)
    if task == "regression":
        targets = 1 if y.ndim == 1 else y.shape[1]
        if n_outputs not in (None, targets):
            raise ValueError(
                f"loss {_loss_name(loss_fn)!r} needs a model with n_outputs={targets} for "
                f"{targets} regression target(s) per example, got {n_outputs}"
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
    """A fit's options, checked (see :func:`check_fit`).

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
        weights: the sample weights as ``float32[n]``, or None.
        progress: the progress callback, or None.
        cancel: the cancellation token, or None.
        pad_batches: whether to pad the training set to whole batches.
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
    weights: jax.Array | None = None
    progress: Progress | None = None
    cancel: Cancel | None = None
    pad_batches: bool = False


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


def check_fit(model: Any, optimizer: Any, data: Any, **options: Unpack[FitOptions]) -> FitArgs:
    """Checks a fit's arguments and :class:`FitOptions` on the host, before anything is traced.

    Raises:
        TypeError, ValueError: naming the argument, the value and what is expected.
    """
    check_options("fit", options)
    check_model(model, optimizer)
    loss = options.get("loss", "cross_entropy")
    loss_fn = losses.get_loss(loss)
    kind = losses.task(loss, options.get("task"))
    data = check_dataset("data", data, loss_fn, model, kind)
    test = options.get("test")
    if test is not None:
        test = check_dataset("test", test, loss_fn, model, kind)
        if test.x.shape[1] != data.x.shape[1]:
            raise ValueError(
                f"test.x must have {data.x.shape[1]} features like data.x, got {test.x.shape[1]}"
            )
    epochs = check.positive_int("epochs", options["epochs"])
    n = data.x.shape[0]
    batch_size = options.get("batch_size")
    batch_size = n if batch_size is None else check.positive_int("batch_size", batch_size)
    if batch_size > n:
        raise ValueError(
            f"batch_size must be in [1, {n}] (the number of examples), got {batch_size}"
        )
    chunk_epochs = options.get("chunk_epochs")
    chunk = epochs if chunk_epochs is None else check.positive_int("chunk_epochs", chunk_epochs)
    return FitArgs(
        data,
        test,
        epochs,
        batch_size,
        loss_fn,
        kind,
        check.real("l1", options.get("l1", 0.0), low=0.0),
        check.real("l2", options.get("l2", 0.0), low=0.0),
        chunk,
        check.choice("on_nan", options.get("on_nan", "raise"), ON_NAN),
        check_sample_weight(options.get("sample_weight"), n),
        _check_callable("progress", options.get("progress"), "progress(done, epochs, history)"),
        _check_cancel(options.get("cancel")),
        bool(options.get("pad_batches", False)),
    )


def _check_callable(name: str, value: Any, form: str) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable {form}, got {check.show(value)}")
    return value


def _check_cancel(cancel: Any) -> Cancel | None:
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise TypeError(
            "cancel must have an is_set() method (e.g. a threading.Event), "
            f"got {check.show(cancel)}"
        )
    return cast("Cancel | None", cancel)


def check_sample_weight(sample_weight: Any, n: int) -> jax.Array | None:
    """``sample_weight`` as ``float32[n]`` on the device: finite, >= 0, not all 0, finite sum.

    Raises:
        TypeError, ValueError: naming ``sample_weight``, the value and what is expected.
    """
    if sample_weight is None:
        return None
    weight = check.array("sample_weight", sample_weight, ndim=1)
    if weight.shape[0] != n:
        raise ValueError(
            f"sample_weight must have one weight per example: {n} examples, "
            f"{weight.shape[0]} weights"
        )
    if check.is_tracer(weight):
        return weight.astype(jnp.float32)
    host = np.asarray(weight, np.float64)
    if np.any(host < 0):
        raise ValueError(f"sample_weight must be >= 0, got {host.min():g}")
    if not np.any(host > 0):
        raise ValueError("sample_weight must contain at least one non-zero weight, got all zeros")
    with np.errstate(over="ignore"):  # an overflow is what the check below reports
        single = host.astype(np.float32)
        total = np.sum(single, dtype=np.float32)
    if not np.isfinite(total):
        raise ValueError(
            f"sample_weight must sum to a finite float32 (training runs in float32), got a "
            f"largest weight of {host.max():.3g}; divide the weights by a common factor"
        )
    return check.to_device(single)


class FitPlan(NamedTuple):
    """Everything a front door needs to run a fit (see :func:`prepare`).

    Attributes:
        state: the state to start from: fresh from the key, or the resumed one
            with this fit's model, optimizer, loss, task, l1 and l2.
        data: the checked training set (padded to whole batches with ``pad_batches``).
        test: the checked test set, or None.
        epochs: epochs to run in this call.
        batch_size: examples per step.
        chunk: epochs per compiled chunk.
        on_nan: one of :data:`ON_NAN`.
        progress: the progress callback, or None.
        example_count: the example count of a padded ``data``, or None.
        weights: the sample weights (padded like ``data``), or None.
        cancel: the cancellation token, or None.
    """

    state: TrainState
    data: Dataset
    test: Dataset | None
    epochs: int
    batch_size: int
    chunk: int
    on_nan: str
    progress: Progress | None
    example_count: jax.Array | None = None
    weights: jax.Array | None = None
    cancel: Cancel | None = None

    def run_chunk(self, state: Any, epochs: int) -> Any:
        """``epochs`` epochs of this plan's fit from ``state`` (a :data:`Chunk`)."""
        return run(
            state, self.data, self.test, epochs, self.batch_size, self.example_count, self.weights
        )

    def run(self, *, pieces: Callable[[int], Sequence[int]] | None = None) -> tuple[Any, History]:
        """The fit: :func:`loop` over :meth:`run_chunk` with this plan's settings."""
        return self.run_with(self.run_chunk, pieces=pieces)

    def run_with(
        self, run_chunk: Chunk, *, pieces: Callable[[int], Sequence[int]] | None = None
    ) -> tuple[Any, History]:
        """:func:`loop` from this plan's state over another door's ``run_chunk``
        (e.g. a program mapped over devices), with this plan's settings."""
        return loop(
            self.state,
            run_chunk,
            epochs=self.epochs,
            chunk=self.chunk,
            on_nan=self.on_nan,
            progress=self.progress,
            cancel=self.cancel,
            pieces=pieces,
        )


def prepare(
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    data: Any,
    **options: Unpack[FitOptions],
) -> FitPlan:
    """Checks a fit's arguments and :class:`FitOptions`, and gives the state to start from.

    Without ``state``, a fresh state from ``key`` (:func:`init_state`). With
    ``state`` (resume), that state continues: its step, epoch, parameters,
    optimizer state and key are kept, and its static parts, ``l1`` and ``l2``
    come from this call's options, so a run of ``n`` epochs and a resumed run
    of ``m`` more are bit-identical to one run of ``n + m``.

    Raises:
        TypeError, ValueError: for bad arguments, before anything is traced.
    """
    args = check_fit(model, optimizer, data, **options)
    state = options.get("state")
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
    train_set, weights, count = args.data, args.weights, None
    if args.pad_batches:
        train_set, count = pad_to_batches(args.data, args.batch_size, state.key)
        if count is not None and weights is not None:
            weights = pad_to_batches(
                Dataset(weights[:, None], weights), args.batch_size, state.key
            )[0].y
    return FitPlan(
        state,
        train_set,
        args.test,
        args.epochs,
        args.batch_size,
        args.chunk,
        args.on_nan,
        args.progress,
        count,
        weights,
        args.cancel,
    )
