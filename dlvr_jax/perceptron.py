r"""Rosenblatt's perceptron learning algorithm (PLA) as pure functions.

The contract, in the manner of ``stax``::

    init(n_features)               -> Params(w: float32[d], b: float32[])
    predict(params, x)             -> int32 labels in {-1, +1}   (score > 0 gives +1)
    step(params, x_i, y_i, *, learning_rate) -> Params            (one online update)
    fit(x, y, *, learning_rate, max_epochs, params) -> FitResult
    fit_batched(x[B, n, d], y[B, n], *, ...) -> FitResult     (leaves: leading axis B)
    pocket(x, y, *, ...)           -> PocketResult                (non-separable data)

The update is the chapter's:

.. math::
    \hat y = \operatorname{sign}(w \cdot x + b), \quad
    w \leftarrow w + \eta (y - \hat y) x, \quad b \leftarrow b + \eta (y - \hat y).

Labels are ±1; use :func:`dlvr_jax.data.signed` to convert 0/1 labels. Each
call of :func:`fit` or :func:`pocket` is one compiled program: a loop over
the samples (in data order) inside a ``lax.while_loop`` over epochs, which
stops after the first epoch without a mistake. :func:`fit` scores the samples
in blocks and jumps from one mistake to the next: the same updates as one
sample at a time, but ~1.7 ns per sample update at n = 100 000 on a 2-core
CPU instead of 13–19 ns (``python -m benchmarks C``). :func:`pocket` steps
sample by sample, as its ratchet needs. Both can be ``jit``-ed,
``vmap``-ed over datasets and ``pmap``-ed; for many datasets,
:func:`fit_batched` (or ``vmap`` of :func:`fit`, which on a CPU runs the
datasets one after another in one program) gives each dataset exactly the
result of :func:`fit` alone.

Examples:
    >>> import jax
    >>> from dlvr_jax import data, perceptron
    >>> train = data.linear(jax.random.key(0), 200, margin=0.05)
    >>> result = perceptron.fit(train.x, data.signed(train.y))
    >>> bool(result.converged)
    True
    >>> float(perceptron.accuracy(result.params, train.x, data.signed(train.y)))
    1.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import custom_batching, lax

from dlvr_jax import _compiled
from dlvr_jax import _validate as check

__all__ = [
    "FitResult",
    "Params",
    "PocketResult",
    "accuracy",
    "fit",
    "fit_batched",
    "init",
    "margin",
    "mistake_bound",
    "pocket",
    "predict",
    "score",
    "step",
]


class Params(NamedTuple):
    """Perceptron parameters: weights ``w: float[d]`` and bias ``b: float[]``."""

    w: jax.Array
    b: jax.Array


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
        params: the final weights.
        epochs: epochs run, counting the final epoch without a mistake.
        updates: total number of updates (mistakes) over all epochs.
        converged: True iff the last epoch made no mistake.
        mistakes_per_epoch: ``int32[max_epochs]``; entries past ``epochs`` are 0,
            so ``mistakes_per_epoch.sum() == updates``.
    """

    params: Params
    epochs: jax.Array
    updates: jax.Array
    converged: jax.Array
    mistakes_per_epoch: jax.Array


class PocketResult(NamedTuple):
    """What :func:`pocket` returns.

    Attributes:
        params: the pocket weights: the most accurate weights the ratchet kept.
        accuracy: training accuracy of ``params``.
        last_params: the PLA's last iterate (the ``params`` of :func:`fit`).
        epochs: as in :class:`FitResult`.
        updates: as in :class:`FitResult`.
        converged: as in :class:`FitResult`.
        mistakes_per_epoch: as in :class:`FitResult`.
    """

    params: Params
    accuracy: jax.Array
    last_params: Params
    epochs: jax.Array
    updates: jax.Array
    converged: jax.Array
    mistakes_per_epoch: jax.Array


# ----------------------------------------------------------------------------
# Checks.


class _Labelled(NamedTuple):
    """What :func:`_check_xy` returns: checked inputs and ±1 labels (int32)."""

    x: jax.Array
    y: jax.Array


class _Training(NamedTuple):
    """What :func:`_check_training` returns: the arguments of a training call, checked."""

    x: jax.Array
    y: jax.Array
    learning_rate: Any  # a Python float, or a tracer under the user's jit
    max_epochs: int
    params: Params


class _Points(NamedTuple):
    """What :func:`_check_points` returns: checked params and points in the params' dtype."""

    params: Params
    x: jax.Array


class _Batched(NamedTuple):
    """What :func:`_check_batched` returns: :func:`fit_batched`'s arguments, checked."""

    x: jax.Array
    y: jax.Array
    learning_rate: Any
    max_epochs: int
    params: Params
    method: str
    chunk_epochs: int | None


def _require_params(params: Any) -> Params:
    if not isinstance(params, Params):
        raise TypeError(
            "params must be a perceptron.Params(w, b), got "
            f"{type(params).__name__} {check.show(params)}"
        )
    return params


def _check_params(params: Any, n_features: int) -> Params:
    params = _require_params(params)
    w = check.array("params.w", params.w, ndim=1)
    b = check.array("params.b", params.b, ndim=0)
    if w.shape != (n_features,):
        raise ValueError(
            f"params must have w of shape ({n_features},) and a scalar b to match x, got "
            f"w {w.shape} and b {b.shape}"
        )
    if not jnp.issubdtype(w.dtype, jnp.floating):
        w = w.astype(jnp.result_type(float))
    return Params(w, _as_dtype(b, w.dtype))


def _as_dtype(a: jax.Array, dtype: Any) -> jax.Array:
    """``a.astype(dtype)``, without dispatching a conversion when it already has that dtype."""
    return a if a.dtype == dtype else a.astype(dtype)


def _host_zeros(shape: tuple[int, ...], dtype: Any) -> Params:
    """Zero initial weights ``w: shape``, ``b: shape[:-1]`` as NumPy arrays.

    Cheaper than :func:`init` per call (no device dispatch): the compiled
    training program takes them as they are.
    """
    return Params(np.zeros(shape, dtype), np.zeros(shape[:-1], dtype))  # type: ignore[arg-type]


def _check_labels(y: jax.Array) -> jax.Array:
    if not check.is_tracer(y):
        host = np.asarray(y)
        if np.all((host == 1) | (host == -1)):  # the common case: cheaper than np.unique
            return y if y.dtype == jnp.int32 else y.astype(jnp.int32)
        values = set(np.unique(host).tolist())
        if not values <= {-1, 1}:
            hint = "; convert 0/1 labels with dlvr_jax.data.signed(y)" if values <= {0, 1} else ""
            raise ValueError(
                f"y must hold labels in {{-1, +1}}, got values "
                f"{check.show(sorted(values)[:10])}{hint}"
            )
    return y if y.dtype == jnp.int32 else y.astype(jnp.int32)


def _check_xy(x: Any, y: Any) -> _Labelled:
    x = check.array("x", x, ndim=2)
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (n, d) with n, d >= 1, got {x.shape}")
    y = check.array("y", y, ndim=1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"y must have one label per row of x: x has {x.shape[0]} rows, y has {y.shape[0]}"
        )
    y = _check_labels(y)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return _Labelled(x, y)


def _check_training(x: Any, y: Any, learning_rate: Any, max_epochs: Any, params: Any) -> _Training:
    x, y = _check_xy(x, y)
    learning_rate = check.real("learning_rate", learning_rate, low=0.0, low_open=True)
    max_epochs = check.positive_int("max_epochs", max_epochs)
    if params is None:
        return _Training(x, y, learning_rate, max_epochs, _host_zeros((x.shape[1],), x.dtype))
    params = _check_params(params, x.shape[1])
    return _Training(_as_dtype(x, params.w.dtype), y, learning_rate, max_epochs, params)


# ----------------------------------------------------------------------------
# The model.


def init(n_features: int, *, dtype: Any = jnp.float32) -> Params:
    """Zero weights and bias, as in the chapter.

    Raises:
        ValueError: if ``n_features < 1``.
    """
    n_features = check.positive_int("n_features", n_features)
    return Params(jnp.zeros((n_features,), dtype), jnp.zeros((), dtype))


# Up to this many features, scores are summed feature by feature, left to right.
_CHAIN_FEATURES = 16


def _dot(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x @ w`` over the last axis, rounded the same way in every program that uses it.

    XLA lowers a dot differently by shape (a vector dot, a matrix-vector
    product, a batched product under ``vmap``), and the roundings may differ in
    the last bit, which can flip the sign of a score that is almost 0. Every
    score of this module is therefore this explicit sum, left to right, for up
    to ``_CHAIN_FEATURES`` features, so that :func:`fit`, :func:`fit_batched`,
    :func:`pocket` and :func:`predict` agree bit for bit. Beyond that it is
    ``jnp.sum``, whose order is XLA's (the tests check d = 20 on a CPU).
    """
    d = w.shape[-1]
    if d > _CHAIN_FEATURES:
        return jnp.sum(x * w.reshape((1,) * (x.ndim - 1) + w.shape), axis=-1)
    total = x[..., 0] * w[0]
    for j in range(1, d):
        total = total + x[..., j] * w[j]
    return total


def _score(params: Params, x: jax.Array) -> jax.Array:
    return _dot(x, params.w) + params.b


def _predict(params: Params, x: jax.Array) -> jax.Array:
    return jnp.where(_score(params, x) > 0, 1, -1).astype(jnp.int32)


def _check_points(params: Any, x: Any) -> _Points:
    """Checks ``x`` (one point ``[d]`` or a batch ``[n, d]``) against ``params``."""
    x = check.array("x", x, ndim=(1, 2), finite=False)
    params = _check_params(_require_params(params), x.shape[-1])
    return _Points(params, x.astype(params.w.dtype))


def score(params: Params, x: Any) -> jax.Array:
    """The signed score ``x @ w + b`` for one point ``[d]`` or a batch ``[n, d]``."""
    params, x = _check_points(params, x)
    return _score(params, x)


def predict(params: Params, x: Any) -> jax.Array:
    """Labels in {-1, +1}: +1 where ``score > 0`` (so a score of exactly 0 gives -1)."""
    params, x = _check_points(params, x)
    return _predict(params, x)


def accuracy(params: Params, x: Any, y: Any) -> jax.Array:
    """The fraction of points whose ±1 label :func:`predict` gets right.

    Raises:
        ValueError: for labels outside ±1 (0/1 labels: use :func:`dlvr_jax.data.signed`).
    """
    x, y = _check_xy(x, y)
    params, x = _check_points(params, x)
    return jnp.mean(_predict(params, x) == y)


def _update(
    params: Params, x_i: jax.Array, y_i: jax.Array, learning_rate: Any
) -> tuple[Params, jax.Array]:
    """One online update; also returns whether the point was a mistake."""
    y_hat = _predict(params, x_i)
    delta = jnp.asarray(learning_rate, params.w.dtype) * (y_i - y_hat).astype(params.w.dtype)
    return Params(params.w + delta * x_i, params.b + delta), y_i != y_hat


def step(params: Params, x_i: Any, y_i: Any, *, learning_rate: float) -> Params:
    r"""One update of the PLA on the sample ``(x_i, y_i)``.

    .. math::
        w \leftarrow w + \eta (y_i - \hat y_i) x_i, \quad
        b \leftarrow b + \eta (y_i - \hat y_i)

    A correctly classified sample leaves the parameters unchanged. The result
    keeps the dtype of ``params``.

    Raises:
        ValueError: for ``x_i`` not of shape ``[d]``, ``y_i`` not in {-1, +1} or
            ``learning_rate <= 0``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import perceptron
        >>> p = perceptron.step(perceptron.init(2), jnp.array([1.0, 2.0]), 1, learning_rate=0.5)
        >>> p.w.tolist(), float(p.b)
        ([1.0, 2.0], 1.0)
    """
    x_i = check.array("x_i", x_i, ndim=1)
    params, x_i = _check_points(params, x_i)
    y_i = check.array("y_i", y_i, ndim=0)
    if not check.is_tracer(y_i) and int(y_i) not in (-1, 1):
        raise ValueError(f"y_i must be -1 or +1, got {check.show(y_i.item())}")
    learning_rate = check.real("learning_rate", learning_rate, low=0.0, low_open=True)
    return _update(params, x_i, y_i.astype(jnp.int32), learning_rate)[0]


# ----------------------------------------------------------------------------
# Training: one compiled program per call.


class _Pocket(NamedTuple):
    params: Params
    correct: jax.Array  # training points the pocket classifies right
    run: jax.Array  # longest run of consecutive correct classifications it had
    current_run: jax.Array  # run of the current weights
    evaluated: jax.Array  # whether the current weights were already compared
    holding: jax.Array  # whether the current weights are the pocket's


def _n_correct(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.sum(_predict(params, x) == y, dtype=jnp.int32)


# The PLA of fit, block by block. Within an epoch the weights change only at a
# mistake, so the scores of the next `block` samples can be computed at once
# from the current weights; the first wrong one (if any) is the next update, and
# the scan resumes right after it. The updates, their order and their
# arithmetic are those of the sample-by-sample loop; only the loop is shorter:
# one iteration per mistake or per `block` correct samples. (On a 2-core CPU a
# sample-by-sample `lax.scan` step costs ~13 ns, latency-bound by the chain
# score -> compare -> update; a block of 16 costs ~10-25 ns.)


def _block_size(n: int, d: int) -> int:
    """Samples scored per loop iteration.

    XLA's CPU runtime runs a loop body inline (no task graph, no allocation)
    only while it has at most 8 kernels or uses buffers of at most 512 bytes;
    these sizes keep the body in that regime (measured for d = 2: 0.6–1.7 ns per
    sample on separable data, ≤ the sample-by-sample cost even on XOR, where
    every other sample is a mistake; blocks of 64 split into more kernels).
    """
    return max(1, min(16 if d <= 8 else 8, n))


class _Lane(NamedTuple):
    """The PLA's state on one dataset between epochs (in fit_batched: one row per dataset)."""

    wb: jax.Array  # the weights with the bias last: float[d + 1]
    epochs: jax.Array
    updates: jax.Array
    converged: jax.Array
    mistakes: jax.Array  # int32[max_epochs]


def _new_lane(params: Params, max_epochs: int) -> _Lane:
    zero = jnp.zeros(params.b.shape, jnp.int32)
    return _Lane(
        wb=jnp.concatenate([params.w, params.b[..., None]], axis=-1),
        epochs=zero,
        updates=zero,
        converged=jnp.zeros(params.b.shape, jnp.bool_),
        mistakes=jnp.zeros((*params.b.shape, max_epochs), jnp.int32),
    )


def _lane_params(lane: _Lane) -> Params:
    return Params(lane.wb[..., :-1], lane.wb[..., -1])


def _pad_rows(x: jax.Array, y: jax.Array, block: int) -> tuple[jax.Array, jax.Array]:
    """``block`` rows of padding after the last sample, so a block can start at any sample."""
    pad = [(0, 0)] * (x.ndim - 2)
    return (
        jnp.pad(x, [*pad, (0, block), (0, 0)]),
        jnp.pad(y, [*pad, (0, block)], constant_values=1),
    )


def _next_update(
    xp: jax.Array,
    yp: jax.Array,
    n: int,
    wb: jax.Array,
    position: jax.Array,
    learning_rate: jax.Array,
    block: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Scores samples ``position ... position + block - 1`` and updates at the first mistake.

    Returns the weights, where the scan resumes and whether there was a mistake.
    """
    d = xp.shape[-1]
    offsets = jnp.arange(block, dtype=jnp.int32)
    xb = lax.dynamic_slice(xp, (position, jnp.zeros_like(position)), (block, d))
    yb = lax.dynamic_slice(yp, (position,), (block,))
    y_hat = jnp.where(_dot(xb, wb[:d]) + wb[d] > 0, 1, -1)
    wrong = (y_hat != yb) & (offsets < n - position)
    first = jnp.min(jnp.where(wrong, offsets, block))
    hit = first < block
    i = position + jnp.minimum(first, block - 1)
    x_i = lax.dynamic_index_in_dim(xp, i, keepdims=False)
    y_i = lax.dynamic_index_in_dim(yp, i, keepdims=False)
    # At a mistake y_hat = -y_i, so eta (y_i - y_hat) = eta 2 y_i: the same numbers as step's.
    delta = learning_rate * (2 * y_i).astype(wb.dtype)
    moved = wb + delta * jnp.concatenate([x_i, jnp.ones((1,), wb.dtype)])
    return jnp.where(hit, moved, wb), jnp.where(hit, i + 1, position + block), hit


def _lane_running(lane: _Lane, max_epochs: int) -> jax.Array:
    return ~lane.converged & (lane.epochs < max_epochs)


def _lane_epoch(
    xp: jax.Array, yp: jax.Array, n: int, lane: _Lane, learning_rate: Any, block: int
) -> _Lane:
    """One epoch of the PLA on a lane that is still running (a finished lane is returned as is)."""
    max_epochs = lane.mistakes.shape[-1]
    active = _lane_running(lane, max_epochs)
    rate = jnp.asarray(learning_rate, lane.wb.dtype)

    def scan(carry: tuple[jax.Array, jax.Array, jax.Array]) -> Any:
        wb, position, made = carry
        wb, position, hit = _next_update(xp, yp, n, wb, position, rate, block)
        return wb, position, made + hit.astype(jnp.int32)

    # A finished lane does not scan (under vmap the others would wait for it).
    start = jnp.where(active, jnp.int32(0), jnp.int32(n))
    wb, _, made = lax.while_loop(
        lambda carry: carry[1] < n, scan, (lane.wb, start, jnp.zeros((), jnp.int32))
    )
    new = _Lane(
        wb,
        lane.epochs + 1,
        lane.updates + made,
        made == 0,
        lane.mistakes.at[jnp.minimum(lane.epochs, max_epochs - 1)].set(made),
    )
    return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, lane)


def _fit_lane(
    x: jax.Array, y: jax.Array, params: Params, learning_rate: Any, max_epochs: int
) -> _Lane:
    """The whole PLA on one dataset: epochs until one without a mistake, or ``max_epochs``."""
    n, d = x.shape
    block = _block_size(n, d)
    xp, yp = _pad_rows(x, y, block)
    return lax.while_loop(
        lambda lane: _lane_running(lane, max_epochs),
        lambda lane: _lane_epoch(xp, yp, n, lane, learning_rate, block),
        _new_lane(params, max_epochs),
    )


@_compiled.memoize
def _fit_one_by_one(max_epochs: int) -> Callable[..., _Lane]:
    """:func:`_fit_lane` that ``vmap`` turns into a loop over the datasets, not lanes in step.

    Under ``vmap`` a ``while_loop`` runs every lane until the slowest is done,
    and on a CPU a lane costs about what a whole single run costs: there,
    running the datasets one after another in one compiled loop
    (``lax.map``) is much faster, and each dataset runs exactly :func:`fit`'s
    program.
    """

    def fit_one(x: jax.Array, y: jax.Array, params: Params, learning_rate: Any) -> _Lane:
        return _fit_lane(x, y, params, learning_rate, max_epochs)

    return custom_batching.sequential_vmap(fit_one)  # type: ignore[no-untyped-call]


def _lanes_in_step() -> bool:
    """Whether ``vmap`` of :func:`fit` runs datasets side by side (accelerators) or not (CPU)."""
    return jax.default_backend() != "cpu"


@functools.partial(jax.jit, static_argnames=("max_epochs", "use_pocket", "every_update"))
def _train(
    x: jax.Array,
    y: jax.Array,
    params: Params,
    learning_rate: Any,
    max_epochs: int,
    use_pocket: bool,
    every_update: bool = False,
) -> tuple[Params, jax.Array, jax.Array, jax.Array, jax.Array, _Pocket | None]:
    """The PLA (``use_pocket=False``: block by block) or the PLA with Gallant's pocket."""
    if not use_pocket:
        if _lanes_in_step():
            lane = _fit_lane(x, y, params, learning_rate, max_epochs)
        else:
            lane = _fit_one_by_one(max_epochs)(x, y, params, learning_rate)
        return _lane_params(lane), lane.epochs, lane.updates, lane.converged, lane.mistakes, None
    zero = jnp.zeros((), jnp.int32)
    yes = jnp.bool_(True)
    best = _Pocket(params, _n_correct(params, x, y), zero, zero, yes, yes)

    def sample(
        carry: tuple[Params, _Pocket], xy: tuple[jax.Array, jax.Array]
    ) -> tuple[tuple[Params, _Pocket], jax.Array]:
        current, best = carry
        current, mistake = _update(current, xy[0], xy[1], learning_rate)
        best = _ratchet(best, current, mistake, x, y, every_update)
        return (current, best), mistake

    def epoch(
        carry: tuple[Params, _Pocket, jax.Array, jax.Array, jax.Array, jax.Array],
    ) -> tuple[Params, _Pocket, jax.Array, jax.Array, jax.Array, jax.Array]:
        current, best, count, updates, _, mistakes = carry
        (current, best), mistaken = lax.scan(sample, (current, best), (x, y))
        made = jnp.sum(mistaken, dtype=jnp.int32)
        return current, best, count + 1, updates + made, made == 0, mistakes.at[count].set(made)

    def running(carry: tuple[Any, ...]) -> jax.Array:
        return (carry[2] < max_epochs) & ~carry[4]

    start = (params, best, zero, zero, jnp.bool_(False), jnp.zeros((max_epochs,), jnp.int32))
    current, best, epochs, updates, converged, mistakes = lax.while_loop(running, epoch, start)
    # The last iterate competes too, so the pocket is never worse than it.
    last_correct = _n_correct(current, x, y)
    take = last_correct > best.correct
    best = best._replace(
        params=jax.tree.map(lambda new, old: jnp.where(take, new, old), current, best.params),
        correct=jnp.maximum(last_correct, best.correct),
    )
    return current, epochs, updates, converged, mistakes, best


def _ratchet(
    best: _Pocket,
    current: Params,
    mistake: jax.Array,
    x: jax.Array,
    y: jax.Array,
    every_update: bool,
) -> _Pocket:
    """Gallant's pocket with ratchet, after one sample.

    The run of the current weights restarts at a mistake (new weights) and
    grows otherwise. When it first beats the pocket's longest run, the current
    weights are evaluated on the whole training set once; they replace the
    pocket only if they also classify strictly more points right (the ratchet).
    With ``every_update`` every new weight vector is evaluated, run or not.
    """
    current_run = jnp.where(mistake, 0, best.current_run + 1)
    holding = best.holding & ~mistake
    run = jnp.where(holding, jnp.maximum(best.run, current_run), best.run)
    evaluated = best.evaluated & ~mistake
    due = ~evaluated & ((current_run > run) | every_update)

    def compare(best: _Pocket) -> _Pocket:
        correct = _n_correct(current, x, y)
        take = correct > best.correct
        return _Pocket(
            params=jax.tree.map(lambda new, old: jnp.where(take, new, old), current, best.params),
            correct=jnp.where(take, correct, best.correct),
            run=jnp.where(take, current_run, best.run),
            current_run=current_run,
            evaluated=jnp.bool_(True),
            holding=take,
        )

    waiting = best._replace(run=run, current_run=current_run, evaluated=evaluated, holding=holding)
    return lax.cond(due, compare, lambda b: b, waiting)


def fit(
    x: Any,
    y: Any,
    *,
    learning_rate: float = 0.1,
    max_epochs: int = 1000,
    params: Params | None = None,
) -> FitResult:
    """Runs the PLA: online updates in data order until an epoch makes no mistake.

    On linearly separable data it converges after at most
    :func:`mistake_bound` updates (Novikoff); otherwise it stops after
    ``max_epochs`` with ``converged=False``.

    Args:
        x: ``float[n, d]`` finite inputs.
        y: ``int[n]`` labels in {-1, +1}.
        learning_rate: the step size η > 0 (with zero initial weights it only
            scales the weights; the mistakes made do not depend on it).
        max_epochs: the most passes over the data (static), ``>= 1``.
        params: initial :class:`Params`; zeros by default.

    Returns:
        A :class:`FitResult`.

    Raises:
        TypeError: if ``max_epochs`` is not an int or ``params`` not :class:`Params`.
        ValueError: for a wrong shape, non-finite ``x``, labels outside ±1
            (0/1 labels: use :func:`dlvr_jax.data.signed`), ``learning_rate <= 0``
            or ``max_epochs < 1``.
    """
    args = _check_training(x, y, learning_rate, max_epochs, params)
    last, epochs, updates, converged, mistakes, _ = _train(
        args.x, args.y, args.params, args.learning_rate, args.max_epochs, False
    )
    return FitResult(last, epochs, updates, converged, mistakes)


def pocket(
    x: Any,
    y: Any,
    *,
    learning_rate: float = 0.1,
    max_epochs: int = 1000,
    params: Params | None = None,
    every_update: bool = False,
) -> PocketResult:
    """Gallant's pocket algorithm with ratchet, for data that are not separable.

    Runs exactly the PLA of :func:`fit` and keeps "in its pocket" the weights
    with the longest run of consecutive correct classifications, replacing
    them only when the newcomer is also more accurate on the training set (the
    ratchet). At the end the last iterate competes as well, so the pocket is
    never less accurate than the weights :func:`fit` returns.

    Gallant's run-length test is a good proxy for accuracy when samples are
    drawn at random; in data order it lets some good weights pass unseen.
    ``every_update=True`` evaluates every new weight vector instead (one
    pass over the data per update, the variant of Abu-Mostafa et al.'s
    *Learning from Data*), which keeps the most accurate iterate of the run.

    Arguments, checks and the stopping rule are otherwise those of :func:`fit`.

    Returns:
        A :class:`PocketResult`.
    """
    args = _check_training(x, y, learning_rate, max_epochs, params)
    if not isinstance(every_update, bool):
        raise TypeError(f"every_update must be a bool, got {check.show(every_update)}")
    last, epochs, updates, converged, mistakes, best = _train(
        args.x, args.y, args.params, args.learning_rate, args.max_epochs, True, every_update
    )
    assert best is not None
    n = jnp.asarray(args.x.shape[0], jnp.float32)
    return PocketResult(best.params, best.correct / n, last, epochs, updates, converged, mistakes)


# ----------------------------------------------------------------------------
# Many datasets at once.

METHODS = ("auto", "sequential", "lanes")


def _check_batched(
    x: Any,
    y: Any,
    learning_rate: Any,
    max_epochs: Any,
    params: Any,
    method: Any,
    chunk_epochs: Any,
) -> _Batched:
    for name, value in (("x", x), ("y", y)):
        if check.is_tracer(value):
            raise TypeError(
                f"fit_batched runs on the host and cannot be traced, but {name} is a "
                f"{check.show(value)}; inside jit or vmap use jax.vmap(perceptron.fit)"
            )
    x = check.array("x", x, ndim=3)
    if min(x.shape) < 1:
        raise ValueError(
            f"x must have shape (datasets, n, d) with datasets, n, d >= 1, got {x.shape}"
        )
    y = check.array("y", y, ndim=2)
    if y.shape != x.shape[:2]:
        raise ValueError(
            f"y must have one label per row of each dataset, shape {x.shape[:2]} for x of "
            f"shape {x.shape}, got {y.shape}"
        )
    y = _check_labels(y)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    learning_rate = check.real("learning_rate", learning_rate, low=0.0, low_open=True)
    max_epochs = check.positive_int("max_epochs", max_epochs)
    method = check.choice("method", method, METHODS)
    if chunk_epochs is not None:
        chunk_epochs = check.positive_int("chunk_epochs", chunk_epochs)
    datasets, _, d = x.shape
    if params is None:
        zeros = _host_zeros((datasets, d), x.dtype)
        return _Batched(x, y, learning_rate, max_epochs, zeros, method, chunk_epochs)
    w = check.array("params.w", _require_params(params).w, ndim=2)
    b = check.array("params.b", params.b, ndim=1)
    if w.shape != (datasets, d) or b.shape != (datasets,):
        raise ValueError(
            f"params must have w of shape ({datasets}, {d}) and b of shape ({datasets},), one "
            f"row per dataset, to match x of shape {x.shape}, got w {w.shape} and b {b.shape}"
        )
    if not jnp.issubdtype(w.dtype, jnp.floating):
        w = w.astype(jnp.result_type(float))
    return _Batched(
        _as_dtype(x, w.dtype),
        y,
        learning_rate,
        max_epochs,
        Params(w, _as_dtype(b, w.dtype)),
        method,
        chunk_epochs,
    )


def _result(lanes: _Lane) -> FitResult:
    return FitResult(
        _lane_params(lanes), lanes.epochs, lanes.updates, lanes.converged, lanes.mistakes
    )


@functools.partial(jax.jit, static_argnames=("max_epochs",))
def _fit_sequential(
    x: jax.Array, y: jax.Array, params: Params, learning_rate: Any, max_epochs: int
) -> FitResult:
    fit_one = _fit_one_by_one(max_epochs)
    return _result(jax.vmap(fit_one, in_axes=(0, 0, 0, None))(x, y, params, learning_rate))


@functools.partial(jax.jit, static_argnames=("max_epochs", "block"))
def _prepare_lanes(
    x: jax.Array, y: jax.Array, params: Params, max_epochs: int, block: int
) -> tuple[jax.Array, jax.Array, _Lane]:
    """Padded data and the lanes' start, plus one finished dummy lane (index ``datasets``)."""
    xp, yp = _pad_rows(x, y, block)
    xp = jnp.concatenate([xp, jnp.zeros_like(xp[:1])])
    yp = jnp.concatenate([yp, jnp.ones_like(yp[:1])])
    lanes = _new_lane(
        jax.tree.map(lambda a: jnp.concatenate([a, jnp.zeros_like(a[:1])]), params), max_epochs
    )
    return xp, yp, lanes._replace(converged=lanes.converged.at[-1].set(True))


@functools.partial(jax.jit, static_argnames=("n", "block"), donate_argnums=(0,))
def _advance(
    lanes: _Lane,
    xp: jax.Array,
    yp: jax.Array,
    index: jax.Array,
    learning_rate: Any,
    stop_at: Any,
    chunk_epochs: Any,
    n: int,
    block: int,
) -> tuple[_Lane, jax.Array]:
    """One compiled chunk: the lanes ``index`` run epochs side by side (``vmap``).

    The chunk ends when at most ``stop_at`` of them are still running, or
    after ``chunk_epochs`` epochs. Returns all lanes, updated, and which of
    ``index`` are still running.

    A documented test seam: :func:`_fit_lanes` looks it up as a module global
    at each chunk, so ``tests/test_perceptron_batched.py`` wraps it (with
    ``monkeypatch``) to watch the schedule, one call per compiled chunk.
    """
    max_epochs = lanes.mistakes.shape[-1]
    part = jax.tree.map(lambda a: a[index], lanes)
    x, y = xp[index], yp[index]

    def one_epoch(xi: jax.Array, yi: jax.Array, lane: _Lane) -> _Lane:
        return _lane_epoch(xi, yi, n, lane, learning_rate, block)

    epoch = jax.vmap(one_epoch)

    def more(carry: tuple[_Lane, jax.Array]) -> jax.Array:
        part, done = carry
        return (jnp.sum(_lane_running(part, max_epochs)) > stop_at) & (done < chunk_epochs)

    def run(carry: tuple[_Lane, jax.Array]) -> tuple[_Lane, jax.Array]:
        return epoch(x, y, carry[0]), carry[1] + 1

    part, _ = lax.while_loop(more, run, (part, jnp.zeros((), jnp.int32)))
    lanes = jax.tree.map(lambda whole, new: whole.at[index].set(new), lanes, part)
    return lanes, _lane_running(part, max_epochs)


def _fit_lanes(
    x: jax.Array,
    y: jax.Array,
    params: Params,
    learning_rate: Any,
    max_epochs: int,
    chunk_epochs: int | None,
) -> _Lane:
    """The datasets side by side, in chunks; between chunks, finished datasets leave.

    The running datasets are gathered into a batch of the next power of two
    (padded with a finished dummy lane), so at most ``log2(datasets) + 1``
    batch shapes compile, and a chunk runs until half of its lanes are done:
    the stragglers then continue in a batch half the size.
    """
    datasets, n, d = x.shape
    block = _block_size(n, d)
    xp, yp, lanes = _prepare_lanes(x, y, params, max_epochs, block)
    chunk = max_epochs if chunk_epochs is None else chunk_epochs
    active = np.arange(datasets)
    while active.size:
        size = 1 << (active.size - 1).bit_length()
        index = np.full(size, datasets, np.int32)
        index[: active.size] = active
        lanes, running = _advance(
            lanes, xp, yp, index, learning_rate, size // 2, chunk, n=n, block=block
        )
        active = active[np.asarray(running)[: active.size]]
    return jax.tree.map(lambda a: a[:datasets], lanes)


def fit_batched(
    x: Any,
    y: Any,
    *,
    learning_rate: float = 0.1,
    max_epochs: int = 1000,
    params: Params | None = None,
    method: str = "auto",
    chunk_epochs: int | None = None,
) -> FitResult:
    """Runs :func:`fit` on many datasets of the same shape at once.

    Dataset ``i`` gets exactly what ``fit(x[i], y[i], ...)`` returns: the same
    epochs, updates, mistakes per epoch and weights, bit for bit (both run
    the same per-dataset code; ``tests/test_perceptron_batched.py`` checks it
    on a CPU). Only the schedule differs:

    - ``"sequential"``: one compiled program runs the datasets one after
      another, each with :func:`fit`'s own loop, so a dataset that converges in
      3 epochs never waits for one that runs to ``max_epochs``. On a CPU, where
      a ``vmap`` lane costs about as much as a whole single run, this is the
      fast way (``jax.vmap(fit)`` does the same there).
    - ``"lanes"``: the datasets run side by side (``vmap``) in compiled chunks
      of epochs. A chunk ends when half of its datasets have finished (or
      after ``chunk_epochs`` epochs); the host then drops the finished ones
      and gathers the rest into a batch of the next power of two, so the
      stragglers run on in ever smaller batches and at most
      ``log2(datasets) + 1`` shapes compile. For accelerators, where lanes
      are nearly free.
    - ``"auto"`` (default): ``"sequential"`` on a CPU, ``"lanes"`` elsewhere.

    ``fit_batched`` runs on the host: call it outside ``jit``; inside traced
    code use ``jax.vmap(perceptron.fit)``.

    Args:
        x: ``float[datasets, n, d]`` finite inputs, one dataset per row.
        y: ``int[datasets, n]`` labels in {-1, +1}.
        learning_rate: the step size η > 0, shared by all datasets.
        max_epochs: the most passes over each dataset, ``>= 1``.
        params: initial :class:`Params` with ``w: [datasets, d]`` and
            ``b: [datasets]``; zeros by default.
        method: ``"auto"``, ``"sequential"`` or ``"lanes"`` (see above).
        chunk_epochs: with ``"lanes"``, the most epochs one compiled chunk runs
            before the host drops finished datasets (default: no limit).

    Returns:
        A :class:`FitResult` whose every leaf has a leading ``datasets`` axis
        (``mistakes_per_epoch: int32[datasets, max_epochs]``).

    Raises:
        TypeError: for traced ``x`` or ``y``, a non-int ``max_epochs`` or
            ``chunk_epochs``, or ``params`` that are not :class:`Params`.
        ValueError: for a wrong shape, non-finite ``x``, labels outside ±1,
            ``learning_rate <= 0``, ``max_epochs < 1``, ``chunk_epochs < 1`` or
            an unknown ``method``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from dlvr_jax import data, perceptron
        >>> keys = jax.random.split(jax.random.key(0), 16)
        >>> sets = jax.vmap(lambda k: data.linear(k, 100, noise=0.1))(keys)
        >>> x, y = sets.x, 2 * sets.y - 1
        >>> result = perceptron.fit_batched(x, y, max_epochs=50)
        >>> result.params.w.shape, result.mistakes_per_epoch.shape
        ((16, 2), (16, 50))
        >>> alone = perceptron.fit(x[3], y[3], max_epochs=50)
        >>> int(result.epochs[3]) == int(alone.epochs), int(result.updates[3]) == int(alone.updates)
        (True, True)
        >>> bool(jnp.array_equal(result.params.w[3], alone.params.w))
        True
    """
    args = _check_batched(x, y, learning_rate, max_epochs, params, method, chunk_epochs)
    if args.method == "lanes" or (args.method == "auto" and _lanes_in_step()):
        return _result(
            _fit_lanes(
                args.x, args.y, args.params, args.learning_rate, args.max_epochs, args.chunk_epochs
            )
        )
    return _fit_sequential(args.x, args.y, args.params, args.learning_rate, args.max_epochs)


# ----------------------------------------------------------------------------
# Margins and Novikoff's bound.


def margin(params: Params, x: Any, y: Any) -> jax.Array:
    r"""The geometric margin of the hyperplane ``params`` on labelled data, in input space.

    .. math:: \gamma = \min_i \frac{y_i (w \cdot x_i + b)}{\lVert w \rVert}

    Positive iff every point is strictly on its side (``w`` must not be zero).
    This is the distance of the closest point to the line ``w · x + b = 0``;
    the γ inside :func:`mistake_bound` differs: it folds the bias into the
    weights and divides by :math:`\lVert (w, b) \rVert`, so it is never larger.
    """
    x, y = _check_xy(x, y)
    params, x = _check_points(params, x)
    return jnp.min(y * _score(params, x)) / jnp.linalg.norm(params.w)


def _as_params(w_star: Any, n_features: int) -> Params:
    if isinstance(w_star, Params):
        return _check_params(w_star, n_features)
    w_star = check.array("w_star", w_star, ndim=1)
    if w_star.shape[0] == n_features:
        return Params(w_star, jnp.zeros((), w_star.dtype))
    if w_star.shape[0] == n_features + 1:
        return Params(w_star[:-1], w_star[-1])
    raise ValueError(
        f"w_star must be Params or a vector of length {n_features} (no bias) or "
        f"{n_features + 1} (bias last), got shape {w_star.shape}"
    )


def mistake_bound(x: Any, y: Any, w_star: Any) -> jax.Array:
    r"""Novikoff's bound :math:`(R/\gamma)^2` on the PLA's updates, with the bias folded in.

    With :math:`\tilde x_i = (x_i, 1)` and :math:`\tilde w = (w^*, b^*)`,

    .. math::
        R = \max_i \lVert \tilde x_i \rVert, \qquad
        \gamma = \min_i \frac{y_i\, \tilde w \cdot \tilde x_i}{\lVert \tilde w \rVert},

    and :func:`fit` from zero weights makes at most :math:`(R/\gamma)^2`
    updates on the data. Returns ``inf`` when ``w_star`` does not separate
    the data (γ ≤ 0).

    Args:
        x: ``float[n, d]`` inputs.
        y: labels in {-1, +1}.
        w_star: any separating hyperplane: :class:`Params`, or a vector of
            length ``d`` (bias 0) or ``d + 1`` (bias last).
    """
    x, y = _check_xy(x, y)
    params = _as_params(w_star, x.shape[1])
    folded_x = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
    folded_w = jnp.concatenate([params.w, params.b[None]]).astype(x.dtype)
    radius = jnp.max(jnp.linalg.norm(folded_x, axis=1))
    gamma = jnp.min(y * (folded_x @ folded_w)) / jnp.linalg.norm(folded_w)
    return jnp.where(gamma > 0, (radius / gamma) ** 2, jnp.inf)
