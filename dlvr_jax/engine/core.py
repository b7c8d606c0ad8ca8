"""The engine's compiled core: the training state, one step, whole epochs in ``lax.scan``.

Part of :mod:`dlvr_jax.engine` (which re-exports every name here): the types
(:class:`TrainState`, :class:`History`, ...), the operations over every
per-epoch field of a history, initialisation, :func:`train_step`, and the
compiled epoch loop :func:`run_epochs` with its jitted form :func:`run`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, cast

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


def init_shapes(
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
    """The state :func:`init_state` would return, as shapes and dtypes: traced, not compiled.

    Its leaves are :class:`jax.ShapeDtypeStruct`; its static parts (model,
    optimizer, loss, task) are the real state's. With it, :func:`precompile`
    compiles the training program while the initialisation still compiles.
    """
    return cast(
        TrainState,
        cast(Any, _compiled_init(jax.default_backend())).eval_shape(
            key, np.asarray(x)[:1], jnp.float32(l1), jnp.float32(l2), model=model, tx=tx,
            loss_fn=loss_fn, task=task,
        ),
    )  # fmt: skip


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


def precompile(
    state: TrainState,
    data: Dataset,
    test: Dataset | None,
    epochs: int,
    batch_size: int,
    count: jax.Array | None = None,
    weights: jax.Array | None = None,
) -> None:
    """Compiles the program :func:`run` would run with these arguments, ahead of the call.

    ``state`` may be the shapes of one (:func:`init_shapes`): the compiled
    program lands in ``jit``'s own cache, so the later :func:`run` with a real
    state of those shapes compiles nothing. XLA releases the GIL while it
    compiles, so a thread can compile this while another compiles (and runs)
    the initialisation; the programs, hence the bits, are those :func:`run`
    would compile itself.
    """
    compiled: Any = compiled_run(jax.default_backend())
    compiled.lower(
        state, data, test, epochs=epochs, batch_size=batch_size, count=count, weights=weights
    ).compile()


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
    shapes = tuple((getattr(leaf, "shape", ()), getattr(leaf, "dtype", type(leaf)))
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
