"""Scale with JAX transforms: ``vmap`` sweeps, data parallelism, and multi-host start.

The contract::

    result = sweep(seeds, model, data, optimizer="adam", learning_rates=lrs, epochs=E)
    rows = sweep_table(seeds, {"8x5": model}, data, batch_sizes=(32, None), ...)
    state, history = fit_pmap(key, model, optimizer, data, epochs=E)      # pmap + psum
    state, history = fit_sharded(key, model, optimizer, data, epochs=E)   # jit + NamedSharding
    initialize("10.0.0.1:1234", num_processes=2, process_id=0)            # before any JAX call

:func:`sweep` trains one model per (seed, learning rate, l1, l2) in a single
jitted ``vmap`` over the compiled core of :func:`dlvr_jax.train.fit` (the
package's :mod:`dlvr_jax.engine`, which all the doors here share); model
``k`` equals ``train.fit`` run alone with its seed and hyperparameters (the
learning rate lives in the optimizer state through
``optax.inject_hyperparams``, so one program serves every rate).

:func:`fit_pmap` and :func:`fit_sharded` train one model on several devices:
every global minibatch of :func:`~dlvr_jax.train.fit` is split across them
and the gradients are summed, so the result equals single-device training on
the same global batches, up to float32 rounding. Like ``train.fit``, both take
``state=`` to resume, bit for bit. The dataset is replicated on
every device (the datasets here are small); the batches are split. Padding
policy: a global batch that the device count does not divide is padded with
zero-weight rows, which changes nothing but compute.

Examples:
    >>> import jax
    >>> from dlvr_jax import data, models, parallel
    >>> xor = data.xor(jax.random.key(0), 200)
    >>> result = parallel.sweep([0, 1], models.MLP(hidden=(8,)), xor,
    ...                         learning_rates=[1e-2, 3e-2], epochs=50)
    >>> result.history.train_loss.shape   # 2 seeds x 2 learning rates, 50 epochs
    (4, 50)
    >>> [f"{rate:g}" for rate in result.learning_rate]
    ['0.01', '0.01', '0.03', '0.03']
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Unpack, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dlvr_jax import _compiled, _xla, engine, optim, train
from dlvr_jax import _validate as check
from dlvr_jax.data import Dataset

__all__ = [
    "AXIS",
    "ENV_COORDINATOR",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "GROUP",
    "Sweep",
    "SweepSummary",
    "fit_pmap",
    "fit_sharded",
    "initialize",
    "sweep",
    "sweep_summary",
    "sweep_table",
]

_block: Callable[..., Any] = jax.block_until_ready
_spec: Callable[..., Any] = PartitionSpec

AXIS = "batch"
"""The name of the device axis (``pmap`` axis name and mesh axis) used here."""

GROUP = 32
"""Models per ``vmap`` group in :func:`sweep` on CPU (measured: see ``benchmarks``)."""

ENV_COORDINATOR = "DLVR_JAX_COORDINATOR_ADDRESS"
"""Environment variable :func:`initialize` reads: ``host:port`` of process 0's coordinator."""
ENV_NUM_PROCESSES = "DLVR_JAX_NUM_PROCESSES"
"""Environment variable :func:`initialize` reads: the number of processes."""
ENV_PROCESS_ID = "DLVR_JAX_PROCESS_ID"
"""Environment variable :func:`initialize` reads: this process's index, from 0."""


# ----------------------------------------------------------------------------
# Sweeps: many models in one vmap.


class Sweep(NamedTuple):
    """K models trained together; every array has a leading axis of length K.

    Model ``k`` used ``seeds[seed_index[k]]``, ``learning_rate[k]``, ``l1[k]``
    and ``l2[k]``. The grid is ordered learning rate, then l1, then l2, then
    seed (the seed varies fastest).

    Attributes:
        state: the stacked :class:`~dlvr_jax.train.TrainState` (its ``tx`` is the
            optimizer with the learning rate injected into ``opt_state``).
        history: the stacked :class:`~dlvr_jax.train.History`; entries from the
            epoch a model diverged on are NaN.
        learning_rate: ``float[K]``.
        l1: ``float[K]``.
        l2: ``float[K]``.
        seed_index: ``int[K]``, an index into ``seeds``.
        seeds: the seeds (ints) or keys the sweep was given.
        diverged_epoch: ``int[K]``, the 1-based epoch at which model k's loss or
            parameters became NaN/inf, 0 if it never did. A diverged model's
            state is not finite; the others are unaffected.
        compile_seconds: time spent tracing and compiling (0 when the program was
            cached by an earlier sweep of the same shapes).
        run_seconds: time spent training, compilation excluded.
    """

    state: train.TrainState
    history: train.History
    learning_rate: np.ndarray
    l1: np.ndarray
    l2: np.ndarray
    seed_index: np.ndarray
    seeds: Any
    diverged_epoch: np.ndarray
    compile_seconds: float
    run_seconds: float

    @property
    def size(self) -> int:
        """The number of models, K."""
        return int(self.learning_rate.shape[0])

    def select(self, k: int) -> tuple[train.TrainState, train.History]:
        """Model ``k``'s state and history, as :func:`dlvr_jax.train.fit` returns them."""
        if not check.is_int(k) or not 0 <= int(k) < self.size:
            raise ValueError(f"k must be an integer in [0, {self.size - 1}], got {k!r}")
        return jax.tree.map(lambda a: a[k], (self.state, self.history))


def _as_keys(seeds: Any) -> tuple[jax.Array, Any]:
    """Seeds (ints) or a key array ``[S]`` -> a key array ``[S]`` and what to report."""
    if isinstance(seeds, jax.Array) and jnp.issubdtype(seeds.dtype, jax.dtypes.prng_key):
        if seeds.ndim != 1 or seeds.shape[0] == 0:
            raise ValueError(
                f"seeds must be a non-empty 1-D array of keys (jax.random.split(key, S)), "
                f"got shape {seeds.shape}"
            )
        return seeds, seeds
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence | np.ndarray):
        raise TypeError(f"seeds must be a sequence of ints or an array of PRNG keys, got {seeds!r}")
    values = list(seeds)
    for value in values:
        if not check.is_int(value) or not 0 <= int(value) < 2**32:
            raise ValueError(f"seeds must be integers in [0, 2**32), got {value!r}")
    if not values:
        raise ValueError("seeds must not be empty")
    ints = [int(v) for v in values]
    return jnp.stack([jax.random.key(s) for s in ints]), tuple(ints)


def _grid_values(name: str, values: Any, *, positive: bool) -> tuple[float, ...]:
    """A non-empty tuple of finite floats (> 0, or >= 0) from a number or a sequence."""
    if isinstance(values, int | float | np.floating | np.integer) and not isinstance(values, bool):
        values = (values,)
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {values!r}")
    if len(values) == 0:
        raise ValueError(f"{name} must not be empty")
    out = []
    for value in values:
        if positive:
            out.append(check.real(name, value, low=0.0, low_open=True))
        else:
            out.append(check.real(name, value, low=0.0))
    return tuple(out)


def _sweep_body(
    states: train.TrainState,
    data: Dataset,
    test: Dataset | None,
    epochs: int,
    batch_size: int,
    group: int,
) -> Any:
    """Trains the stacked ``states``, ``group`` models at a time in one ``vmap``.

    The groups run one after another (``lax.map`` with ``batch_size=group``):
    a group's activations stay in cache for all its epochs, which on a CPU is
    faster than one ``vmap`` over every model, whose activations do not fit.
    """

    def one(state: train.TrainState) -> Any:
        return engine.run_epochs(state, data, test, epochs, batch_size)

    if group >= jax.tree.leaves(states)[0].shape[0]:
        return jax.vmap(one)(states)
    return lax.map(one, states, batch_size=group)


@_compiled.memoize
def _jitted_sweep(platform: str) -> Any:
    return jax.jit(
        _sweep_body,
        static_argnames=("epochs", "batch_size", "group"),
        compiler_options=dict(_xla.cpu_options(platform)) or None,
    )


@functools.partial(jax.jit, static_argnames=("model", "tx", "loss_fn", "task"))
def _init_states(
    keys: jax.Array,
    rates: jax.Array,
    l1: jax.Array,
    l2: jax.Array,
    x: jax.Array,
    *,
    model: nn.Module,
    tx: optax.GradientTransformation,
    loss_fn: Callable[..., jax.Array],
    task: str,
) -> train.TrainState:
    """One fresh state per model, as ``train.fit`` makes it (:func:`dlvr_jax.engine.init_state`)."""

    def init(key: jax.Array, rate: jax.Array, l1: jax.Array, l2: jax.Array) -> Any:
        state = engine.init_state(key, model, tx, x, loss_fn=loss_fn, task=task, l1=l1, l2=l2)
        return state.replace(opt_state=optim.with_learning_rate(state.opt_state, rate))

    return cast(train.TrainState, jax.vmap(init)(keys, rates, l1, l2))


def _compiled_sweep(
    states: train.TrainState,
    data: Dataset,
    test: Dataset | None,
    epochs: int,
    batch_size: int,
    group: int,
) -> tuple[Any, float]:
    """The compiled sweep program and the seconds spent tracing and compiling it (0 if cached)."""
    platform = jax.default_backend()
    leaves, structure = jax.tree.flatten((states, data, test))
    signature = (
        "sweep",
        platform,
        structure,
        tuple((leaf.shape, str(leaf.dtype)) for leaf in leaves),
        epochs,
        batch_size,
        group,
    )
    start = time.perf_counter()
    compiled, made = _compiled.lookup(
        signature,
        lambda: (
            _jitted_sweep(platform)
            .lower(states, data, test, epochs=epochs, batch_size=batch_size, group=group)
            .compile()
        ),
    )
    return compiled, (time.perf_counter() - start if made else 0.0)


def _check_optimizer_name(optimizer: Any) -> str:
    if not isinstance(optimizer, str):
        raise TypeError(
            f"optimizer must be an optimizer name (one of {list(optim.names())}) so that the "
            f"learning rate can vary per model, got {type(optimizer).__name__}"
        )
    return check.choice("optimizer", optimizer, optim.names())


def sweep(
    seeds: Sequence[int] | jax.Array,
    model: nn.Module,
    data: Dataset,
    *,
    learning_rates: float | Sequence[float],
    optimizer: str = "adam",
    clip_norm: float | None = None,
    optimizer_options: Mapping[str, Any] | None = None,
    group: int | None = None,
    **options: Unpack[engine.SweepOptions],
) -> Sweep:
    """Trains one model per (learning rate, l1, l2, seed) in one jitted ``vmap``.

    Model ``k`` equals ``train.fit(key, model, optim.optimizer(optimizer,
    learning_rate, clip_norm=clip_norm, **optimizer_options), data, epochs=...,
    l1=..., l2=..., batch_size=..., loss=..., test=...)`` with its key
    (``jax.random.key(seed)`` for an int seed), up to float32 rounding: the
    batched matrix products sum in a different order. A model that diverges
    does not stop the others: see :attr:`Sweep.diverged_epoch`.

    Args:
        seeds: int seeds, or a 1-D array of PRNG keys, one per replicate.
        model: a Flax linen module, shared by all models (its shapes are static).
        data: the training :class:`~dlvr_jax.data.Dataset`, shared by all models.
        learning_rates: one or more learning rates, each > 0.
        optimizer: the name of an optimizer from :func:`dlvr_jax.optim.names`.
        clip_norm: optional global-norm gradient clipping.
        optimizer_options: the optimizer's other hyperparameters (e.g. ``b1``).
        group: models trained together in one ``vmap``; groups run in sequence.
            Default: :data:`GROUP` on CPU (activations stay in cache), all of
            them on an accelerator. The results do not depend on it.
        **options: the training options, :class:`dlvr_jax.engine.SweepOptions`:
            ``epochs`` (required), ``batch_size``, ``loss``, ``task``, ``test``
            as for :func:`dlvr_jax.train.fit`; ``l1`` and ``l2``, one or more
            penalty weights each (>= 0); ``chunk_epochs``, epochs per compiled
            chunk of the host loop (:func:`dlvr_jax.engine.loop`; default all
            in one; the results do not depend on it); ``cancel``, checked
            between chunks (a set one raises :class:`dlvr_jax.engine.Cancelled`).

    Returns:
        A :class:`Sweep` of ``K = len(learning_rates) * len(l1) * len(l2) * len(seeds)`` models.

    Raises:
        TypeError, ValueError: for bad arguments (an empty or non-positive
            learning-rate grid among them), before anything is traced.
        dlvr_jax.engine.Cancelled: when ``cancel`` was set, between two chunks.
    """
    engine.check_options("sweep", options, engine.SweepOptions)
    keys, reported_seeds = _as_keys(seeds)
    rates = _grid_values("learning_rates", learning_rates, positive=True)
    l1s = _grid_values("l1", options.get("l1", 0.0), positive=False)
    l2s = _grid_values("l2", options.get("l2", 0.0), positive=False)
    name = _check_optimizer_name(optimizer)
    settings = tuple(sorted((optimizer_options or {}).items()))
    # Validates the options (and the first rate) exactly as train.fit's caller would.
    probe = optim.optimizer(name, rates[0], clip_norm=clip_norm, **dict(settings))
    fit_options = cast(engine.FitOptions, {**options, "l1": l1s[0], "l2": l2s[0]})
    args = engine.check_fit(model, probe, data, **fit_options)
    tx = optim.injected(name, clip_norm=clip_norm, **dict(settings))
    if group is None:
        group = GROUP if jax.default_backend() == "cpu" else 2**31 - 1
    group = check.positive_int("group", group)
    grid = list(itertools.product(range(len(rates)), range(len(l1s)), range(len(l2s)),
                                  range(keys.shape[0])))  # fmt: skip
    rate = np.array([rates[g[0]] for g in grid], np.float32)
    l1_k = np.array([l1s[g[1]] for g in grid], np.float32)
    l2_k = np.array([l2s[g[2]] for g in grid], np.float32)
    seed_index = np.array([g[3] for g in grid], np.int32)

    states = _init_states(
        keys[jnp.asarray(seed_index)],
        jnp.asarray(rate),
        jnp.asarray(l1_k),
        jnp.asarray(l2_k),
        args.data.x[:1],
        model=model,
        tx=tx,
        loss_fn=args.loss_fn,
        task=args.task,
    )
    states, history, first_bad, compile_seconds, run_seconds = _run_sweep(states, args, group)
    epoch_index = np.arange(args.epochs)[None, :]
    bad = jnp.asarray((first_bad[:, None] >= 0) & (epoch_index >= first_bad[:, None]))
    # Entries from the epoch a model diverged on are NaN, in every per-epoch field.
    history = engine.map_epochs(lambda values: jnp.where(bad, jnp.nan, values), history)
    return Sweep(
        state=states,
        history=history,
        learning_rate=rate,
        l1=l1_k,
        l2=l2_k,
        seed_index=seed_index,
        seeds=reported_seeds,
        diverged_epoch=np.where(first_bad >= 0, first_bad + 1, 0).astype(np.int32),
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
    )


def _run_sweep(
    states: train.TrainState, args: engine.FitArgs, group: int
) -> tuple[train.TrainState, train.History, np.ndarray, float, float]:
    """The stacked states trained through :func:`dlvr_jax.engine.loop`, in chunks.

    Returns the states, the stacked history, each model's 0-based first bad
    epoch (-1 if none), and the seconds spent compiling and training.
    """
    sizes = {min(args.chunk, args.epochs), args.epochs % args.chunk} - {0}
    programs, compile_seconds = {}, 0.0
    for size in sorted(sizes):
        if args.cancel is not None and args.cancel.is_set():  # compiling cannot be interrupted
            raise engine.Cancelled(0, states, None)
        compiled = _compiled_sweep(states, args.data, args.test, size, args.batch_size, group)
        programs[size], compile_seconds = compiled[0], compile_seconds + compiled[1]
    first_bad = np.full(jax.tree.leaves(states)[0].shape[0], -1, np.int64)
    done = [0]

    def run_chunk(states: Any, epochs: int) -> Any:
        states, records, grads, bad = programs[epochs](states, args.data, args.test)
        bad = np.asarray(bad)
        fresh = (first_bad < 0) & (bad >= 0)
        first_bad[fresh] = done[0] + bad[fresh]
        done[0] += epochs
        return states, records, grads, -1

    start = time.perf_counter()
    states, history = engine.loop(
        states,
        run_chunk,
        epochs=args.epochs,
        chunk=args.chunk,
        on_nan="keep",
        cancel=args.cancel,
        epoch_axis=1,
    )
    states, history = _block((states, history))
    return states, history, first_bad, compile_seconds, time.perf_counter() - start


def _final(values: Any, k: int) -> float | None:
    if values is None:
        return None
    value = float(values[k, -1])
    return None if math.isnan(value) else value


def sweep_table(
    seeds: Sequence[int] | jax.Array,
    models: nn.Module | Mapping[str, nn.Module],
    data: Dataset,
    *,
    learning_rates: float | Sequence[float],
    batch_sizes: Sequence[int | None] = (None,),
    optimizer: str = "adam",
    progress: Callable[[str], None] | None = None,
    **options: Unpack[engine.SweepOptions],
) -> list[dict[str, Any]]:
    """A grid that also varies shapes (model, batch size): one :func:`sweep` per shape.

    Each (model, batch size) pair compiles once and trains all its (learning
    rate, l1, l2, seed) models in one ``vmap``; the results are gathered into
    one table, a row per model with its final metrics.

    Args:
        seeds, learning_rates, optimizer: as for :func:`sweep`.
        models: one module, or ``{label: module}`` for several architectures
            (widths, activations).
        batch_sizes: the batch sizes to try (None for full batch).
        progress: called with a line of text after each shape.
        **options: the training options of :func:`sweep` (``epochs`` required,
            ``l1``, ``l2``, ``loss``, ``task``, ``test``, ...), but not
            ``batch_size``: ``batch_sizes`` gives them.

    Returns:
        A list of dicts with the keys ``model``, ``batch_size``, ``learning_rate``,
        ``l1``, ``l2``, ``seed``, ``epochs``, ``train_loss``, ``train_accuracy``,
        ``test_loss``, ``test_accuracy`` (None without a test set or after
        divergence), ``diverged_epoch``, ``compile_seconds`` and ``run_seconds``
        (per shape).
    """
    engine.check_options("sweep_table", options, engine.SweepOptions)
    if "batch_size" in options:
        raise TypeError("sweep_table takes batch_sizes (a sequence), not batch_size")
    if isinstance(models, nn.Module):
        models = {type(models).__name__: models}
    if not isinstance(models, Mapping) or not models:
        raise TypeError(f"models must be a Module or a non-empty {{label: Module}}, got {models!r}")
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence):
        raise TypeError(f"batch_sizes must be a sequence, got {batch_sizes!r}")
    if not batch_sizes:
        raise ValueError("batch_sizes must not be empty")
    rows: list[dict[str, Any]] = []
    for label, model in models.items():
        for batch_size in batch_sizes:
            shape = cast(engine.SweepOptions, {**options, "batch_size": batch_size})
            result = sweep(seeds, model, data, learning_rates=learning_rates,
                           optimizer=optimizer, **shape)  # fmt: skip
            n = int(np.shape(data.x)[0])
            for k in range(result.size):
                seed = result.seeds[int(result.seed_index[k])]
                rows.append(
                    {
                        "model": str(label),
                        "batch_size": n if batch_size is None else int(batch_size),
                        "learning_rate": float(result.learning_rate[k]),
                        "l1": float(result.l1[k]),
                        "l2": float(result.l2[k]),
                        "seed": seed if isinstance(seed, int) else int(result.seed_index[k]),
                        "epochs": options["epochs"],
                        "train_loss": _final(result.history.train_loss, k),
                        "train_accuracy": _final(result.history.train_accuracy, k),
                        "test_loss": _final(result.history.test_loss, k),
                        "test_accuracy": _final(result.history.test_accuracy, k),
                        "diverged_epoch": int(result.diverged_epoch[k]),
                        "compile_seconds": result.compile_seconds,
                        "run_seconds": result.run_seconds,
                    }
                )
            if progress is not None:
                progress(
                    f"{label}, batch size {batch_size or n}: {result.size} models in "
                    f"{result.run_seconds:.2f} s (+{result.compile_seconds:.2f} s compiling)"
                )
    return rows


class SweepSummary(NamedTuple):
    """A metric of a sweep table over seeds, on a grid of two columns (see :func:`sweep_summary`).

    Attributes:
        x_values: the grid's columns (sorted values of the ``x`` column).
        y_values: the grid's rows (sorted values of the ``y`` column).
        mean: ``float[len(y_values), len(x_values)]``, the mean over the finite runs (NaN if none).
        std: the same shape, the standard deviation over the finite runs.
        counts: the same shape, the number of finite runs averaged.
    """

    x_values: list[Any]
    y_values: list[Any]
    mean: np.ndarray
    std: np.ndarray
    counts: np.ndarray


def sweep_summary(
    rows: Any, metric: str, *, x: str = "learning_rate", y: str = "batch_size"
) -> SweepSummary:
    """Mean, spread (standard deviation) and count over seeds of ``metric`` on a grid.

    The grid is ``x`` (columns) × ``y`` (rows), by default learning rate × batch
    size. ``rows`` is the table of :func:`sweep_table`. Diverged runs (a None or
    non-finite metric) are left out of the mean and of the count. A statistic,
    computed with NumPy: it needs no matplotlib (``viz.plot_sweep_heatmap``
    draws it).

    Raises:
        TypeError: when ``rows`` is not a non-empty list of dicts.
        ValueError: when ``metric``, ``x`` or ``y`` is not a column.

    Examples:
        >>> from dlvr_jax import parallel
        >>> rows = [{"learning_rate": 0.1, "batch_size": 8, "seed": s, "loss": v}
        ...         for s, v in enumerate([1.0, 3.0, None])]
        >>> summary = parallel.sweep_summary(rows, "loss")
        >>> summary.mean.tolist(), summary.std.tolist(), summary.counts.tolist()
        ([[2.0]], [[1.0]], [[2]])
    """
    if not isinstance(rows, list) or not rows or not all(isinstance(r, Mapping) for r in rows):
        raise TypeError(
            f"rows must be a non-empty list of dicts (parallel.sweep_table), got {check.show(rows)}"
        )
    for name in (metric, x, y):
        if name not in rows[0]:
            raise ValueError(f"{name!r} is not a column of the table; columns: {sorted(rows[0])}")
    xs = sorted({r[x] for r in rows})
    ys = sorted({r[y] for r in rows})
    mean = np.full((len(ys), len(xs)), np.nan)
    std = np.full((len(ys), len(xs)), np.nan)
    count = np.zeros((len(ys), len(xs)), np.int64)
    for i, y_value in enumerate(ys):
        for j, x_value in enumerate(xs):
            values = [
                float(r[metric])
                for r in rows
                if r[x] == x_value and r[y] == y_value and r[metric] is not None
            ]
            values = [v for v in values if math.isfinite(v)]
            count[i, j] = len(values)
            if values:
                mean[i, j] = float(np.mean(values))
                std[i, j] = float(np.std(values))
    return SweepSummary(xs, ys, mean, std, count)


# ----------------------------------------------------------------------------
# Data parallelism: one model, several devices.


def _pmap_body(
    state: train.TrainState,
    data: Dataset,
    test: Dataset | None,
    weights: jax.Array | None,
    epochs: int,
    batch_size: int,
    sharding: engine.Sharding,
) -> Any:
    return engine.run_epochs(state, data, test, epochs, batch_size, sharding, weights=weights)


@_compiled.memoize
def _pmap_run(devices: tuple[Any, ...]) -> Any:
    return jax.pmap(
        _pmap_body,
        axis_name=AXIS,
        in_axes=(0, None, None, None),
        static_broadcasted_argnums=(4, 5, 6),
        devices=devices,
    )


def fit_pmap(
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    data: Dataset,
    *,
    devices: Sequence[Any] | None = None,
    **options: Unpack[engine.FitOptions],
) -> tuple[train.TrainState, train.History]:
    """:func:`dlvr_jax.train.fit` on several local devices with ``pmap``.

    The state is replicated on every device; each global minibatch (the same
    ones ``train.fit`` draws) is split into one shard per device, and
    :func:`dlvr_jax.train.train_step` sums the gradients with ``lax.psum`` over
    the axis :data:`AXIS`. The result equals ``train.fit`` with the same
    arguments up to float32 rounding (with dropout, each device draws its own
    mask). ``state=`` resumes: ``n`` epochs and a resume for ``m`` more are
    bit-identical to one run of ``n + m``. The arguments are those of
    ``train.fit``, plus:

    Args:
        devices: the local devices to use (default: all of ``jax.local_devices()``).

    Returns:
        ``(state, history)`` on the first device, as ``train.fit`` returns them.
    """
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must not be empty")
    plan = _data_parallel_plan("fit_pmap", key, model, optimizer, data, options)
    sharding = engine.Sharding(len(devices), axis_name=AXIS)
    # One copy per device, placed as pmap expects it (a resumed state may be anywhere).
    stacked = jax.tree.map(lambda a: jnp.broadcast_to(a, (len(devices), *a.shape)), plan.state)
    replicated = jax.device_put(
        stacked, NamedSharding(Mesh(np.asarray(devices), (AXIS,)), _spec(AXIS))
    )
    run = _pmap_run(tuple(devices))

    def run_chunk(state: Any, length: int) -> Any:
        state, records, grads, first_bad = run(
            state, plan.data, plan.test, plan.weights, length, plan.batch_size, sharding
        )
        first = jax.tree.map(lambda a: a[0], (records, grads, first_bad))
        return (state, *first)

    try:
        final, history = plan._replace(state=replicated).run_with(run_chunk)
    except train.TrainingDiverged as error:
        raise train.TrainingDiverged(
            error.epoch, jax.tree.map(lambda a: a[0], error.state), error.history
        ) from None
    except engine.Cancelled as error:
        raise engine.Cancelled(
            error.epochs, jax.tree.map(lambda a: a[0], error.state), error.history
        ) from None
    return jax.tree.map(lambda a: a[0], final), history


def _data_parallel_plan(
    owner: str,
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    data: Dataset,
    options: engine.FitOptions,
) -> engine.FitPlan:
    """:func:`dlvr_jax.engine.prepare` for a door that splits each batch across devices."""
    if options.get("pad_batches"):
        raise ValueError(
            f"{owner} does not take pad_batches=True: each global batch is already split "
            "across the devices (pad the data yourself with engine.pad_to_batches if needed)"
        )
    # Its programs are mapped across devices: the one-device program would be compiled in vain.
    return engine.prepare(key, model, optimizer, data, compile_ahead=False, **options)


def _put(tree: Any, sharding: NamedSharding) -> Any:
    """Places host values on ``sharding``'s devices (every process passes the same values)."""

    def put(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
            return leaf  # already placed (e.g. a state fit_sharded returned, to resume)
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            impl = jax.random.key_impl(leaf)
            return jax.random.wrap_key_data(put(jax.random.key_data(leaf)), impl=impl)
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)


@_compiled.memoize
def _sharded_run(replicated: NamedSharding) -> Any:
    platform = replicated.mesh.devices.flat[0].platform
    return jax.jit(
        engine.run_epochs,
        static_argnames=("epochs", "batch_size", "sharding"),
        out_shardings=replicated,
        compiler_options=dict(_xla.cpu_options(platform)) or None,
    )


def fit_sharded(
    key: Any,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    data: Dataset,
    *,
    mesh: Mesh | None = None,
    **options: Unpack[engine.FitOptions],
) -> tuple[train.TrainState, train.History]:
    """:func:`dlvr_jax.train.fit` under ``jit`` with a ``NamedSharding`` device mesh.

    The same program as ``train.fit``, partitioned by XLA (GSPMD): the state
    and the dataset are replicated, and each global minibatch's rows are
    sharded along the mesh axis :data:`AXIS`, so every device computes the
    forward and backward pass of its rows and XLA inserts the all-reduce of the
    gradients. Works unchanged across processes after :func:`initialize`
    (the mesh then spans every process's devices). ``state=`` resumes: ``n``
    epochs and a resume for ``m`` more are bit-identical to one run of
    ``n + m``. The arguments are those of ``train.fit``, plus:

    Args:
        mesh: a ``jax.sharding.Mesh`` with an axis named :data:`AXIS`; default:
            all devices (``jax.devices()``, every process's) on that one axis.

    Returns:
        ``(state, history)``; the state's arrays are replicated on the mesh.
    """
    if mesh is None:
        mesh = Mesh(np.asarray(jax.devices()), (AXIS,))
    if not isinstance(mesh, Mesh) or AXIS not in mesh.axis_names:
        raise ValueError(
            f"mesh must be a jax.sharding.Mesh with an axis named {AXIS!r}, got {mesh}"
        )
    plan = _data_parallel_plan("fit_sharded", key, model, optimizer, data, options)
    replicated = NamedSharding(mesh, _spec())
    sharding = engine.Sharding(
        int(mesh.shape[AXIS]), batch_sharding=NamedSharding(mesh, _spec(AXIS))
    )
    placed, train_set = _put(plan.state, replicated), _put(plan.data, replicated)
    test_set = None if plan.test is None else _put(plan.test, replicated)
    weights = None if plan.weights is None else _put(plan.weights, replicated)
    run = _sharded_run(replicated)
    return plan._replace(state=placed).run_with(
        lambda state, length: run(
            state,
            train_set,
            test_set,
            epochs=length,
            batch_size=plan.batch_size,
            sharding=sharding,
            weights=weights,
        )
    )


# ----------------------------------------------------------------------------
# Beyond one machine.

_ADDRESS = re.compile(r"^(?P<host>[^\s:]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d+)$")


def _from_env(name: str, value: Any, variable: str) -> Any:
    if value is not None:
        return value
    text = os.environ.get(variable)
    if text is None or text == "":
        return None
    try:
        return int(text) if name != "coordinator_address" else text
    except ValueError:
        raise ValueError(f"{variable} must be an integer for {name}, got {text!r}") from None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: Sequence[int] | None = None,
    initialization_timeout: int = 300,
) -> None:
    """Starts JAX's distributed runtime (``jax.distributed.initialize``) for this process.

    Call it first, before any other JAX call, in every process. Each argument
    left out is read from the environment: :data:`ENV_COORDINATOR`
    (``host:port`` of process 0's coordinator), :data:`ENV_NUM_PROCESSES` and
    :data:`ENV_PROCESS_ID`. If none of the three is given anywhere, JAX's own
    cluster detection (SLURM, Open MPI, Cloud TPU) supplies them; outside such a
    cluster that is an error. On CPU, the collectives run over gloo (JAX's
    default), so :func:`fit_sharded` trains across processes on one machine or
    several.

    Args:
        coordinator_address: ``"host:port"`` of process 0, e.g. ``"10.0.0.1:1234"``.
        num_processes: the number of processes, >= 1.
        process_id: this process's index, in ``[0, num_processes)``.
        local_device_ids: restrict this process to these local devices (e.g. one
            GPU per process).
        initialization_timeout: seconds to wait for the other processes.

    Raises:
        ValueError: a missing or malformed coordinator address, process count or
            id (outside a cluster JAX detects), checked before JAX is touched.
    """
    address = _from_env("coordinator_address", coordinator_address, ENV_COORDINATOR)
    count = _from_env("num_processes", num_processes, ENV_NUM_PROCESSES)
    index = _from_env("process_id", process_id, ENV_PROCESS_ID)
    timeout = check.positive_int("initialization_timeout", initialization_timeout)
    if address is None and count is None and index is None:
        if not _cluster_detected():
            raise ValueError(
                "initialize needs the coordinator: pass coordinator_address='host:port' "
                f"(process 0's address), num_processes and process_id, or set {ENV_COORDINATOR}, "
                f"{ENV_NUM_PROCESSES} and {ENV_PROCESS_ID}; none were given and no SLURM, "
                "Open MPI or TPU cluster was detected"
            )
        jax.distributed.initialize(initialization_timeout=timeout)
        return
    if address is None:
        raise ValueError(
            f"coordinator_address is missing: pass 'host:port' of process 0 or set "
            f"{ENV_COORDINATOR} (num_processes={count}, process_id={index} were given)"
        )
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise ValueError(f"coordinator_address must be 'host:port', got {address!r}")
    port = int(address.rsplit(":", 1)[1])
    if not 0 < port < 65536:
        raise ValueError(f"coordinator_address port must be in [1, 65535], got {port}")
    if count is None or index is None:
        missing = "num_processes" if count is None else "process_id"
        raise ValueError(
            f"{missing} is missing: pass it or set "
            f"{ENV_NUM_PROCESSES if count is None else ENV_PROCESS_ID}"
        )
    count = check.positive_int("num_processes", count)
    if not check.is_int(index) or not 0 <= int(index) < count:
        raise ValueError(f"process_id must be an integer in [0, {count - 1}], got {index!r}")
    jax.distributed.initialize(
        coordinator_address=address,
        num_processes=count,
        process_id=int(index),
        local_device_ids=None if local_device_ids is None else list(local_device_ids),
        initialization_timeout=timeout,
    )


def _cluster_detected() -> bool:
    markers = ("SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES", "CLOUD_TPU_TASK_ID")
    return any(os.environ.get(name) for name in markers)
