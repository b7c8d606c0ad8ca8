"""The engine's doors: the training options, declared once, their checks, and the host loop.

Part of :mod:`dlvr_jax.engine` (which re-exports every name here):
:class:`FitOptions` (the one declaration of the training options),
:func:`check_fit` and :func:`prepare` (checked on the host, before anything is
traced), :class:`FitPlan` and :func:`loop`, the one host loop of every fit,
sweep and Playground session. The compiled program and the initialisation are
looked up on :mod:`dlvr_jax.engine` at call time (``engine.run``,
``engine.init_state``): the seams that tests patch.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Required, TypedDict, Unpack, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlvr_jax import _validate as check
from dlvr_jax import engine, losses
from dlvr_jax.data import Dataset
from dlvr_jax.engine.core import (
    Cancel,
    Cancelled,
    EpochRecord,
    History,
    ModuleApply,
    Progress,
    TrainingDiverged,
    TrainState,
    concatenate,
    history_from,
    map_epochs,
    pad_to_batches,
    truncate,
)

ON_NAN = ("raise", "stop")
"""What a fit may do when the loss or parameters become NaN/inf."""

LOOP_ON_NAN = (*ON_NAN, "keep")
"""What :func:`loop` accepts: a fit's :data:`ON_NAN`, or ``"keep"`` (no recovery, for sweeps)."""

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
            per_example = f" ({targets} targets per example)" if targets > 1 else ""
            raise ValueError(
                f"loss {_loss_name(loss_fn)!r} needs a model with n_outputs={targets} for "
                f"regression{per_example}, got {n_outputs}"
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
    with np.errstate(over="ignore"):  # a weight past float32 is what the sum check reports
        weight = check.array("sample_weight", sample_weight, ndim=1)
    if weight.shape[0] != n:
        raise ValueError(
            f"sample_weight must have one weight per example: {n} examples, "
            f"{weight.shape[0]} weights"
        )
    if check.is_tracer(weight):
        return weight.astype(jnp.float32)
    host = np.asarray(sample_weight, np.float64)  # the caller's values, not their float32
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
        return engine.run(
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


def _init_while_compiling(
    key: jax.Array,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    args: FitArgs,
    ahead: bool,
) -> TrainState:
    """A fresh state (:func:`init_state`), while a thread compiles the fit's first chunk.

    The two programs are independent once the state's shapes are known
    (:func:`init_shapes`, a trace), so their compiles overlap: a fit's first
    call waits for the longer, not the sum. The training program is the one
    :func:`run` would compile (same function, options and shapes), so the bits
    do not change. Not under a transform (tracers have no program of their
    own) nor with ``pad_batches`` (the padding follows the state's key); a
    failed ahead-of-time compile is left for the run itself to report.
    """
    options: dict[str, Any] = {"loss_fn": args.loss_fn, "task": args.task}
    options.update(l1=args.l1, l2=args.l2)

    def init() -> TrainState:
        return engine.init_state(key, model, optimizer, args.data.x, **options)

    values = (key, args.data.x, args.l1, args.l2, args.weights)
    if not ahead or args.pad_batches or any(check.is_tracer(value) for value in values):
        return init()
    shapes = engine.init_shapes(key, model, optimizer, args.data.x, **options)
    epochs = min(args.chunk, args.epochs)

    def compile_first_chunk() -> None:
        with contextlib.suppress(Exception):  # the run compiles again and raises it there
            engine.precompile(shapes, args.data, args.test, epochs, args.batch_size, None,
                              args.weights)  # fmt: skip

    worker = threading.Thread(target=compile_first_chunk, name="dlvr-jax-compile", daemon=True)
    worker.start()
    try:
        return init()
    finally:
        worker.join()


def prepare(
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    data: Any,
    *,
    compile_ahead: bool = True,
    **options: Unpack[FitOptions],
) -> FitPlan:
    """Checks a fit's arguments and :class:`FitOptions`, and gives the state to start from.

    ``compile_ahead``: with a fresh state, compile the first chunk of :func:`run`
    in a thread while the initialisation compiles (the plan's :meth:`FitPlan.run`
    then compiles nothing); a door that runs another program (mapped over devices)
    passes False.

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
        state = _init_while_compiling(key, model, optimizer, args, compile_ahead)
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
