r"""Rosenblatt's perceptron learning algorithm (PLA) as pure functions.

The contract, in the manner of ``stax``::

    init(n_features)               -> Params(w: float32[d], b: float32[])
    predict(params, x)             -> int32 labels in {-1, +1}   (score > 0 gives +1)
    step(params, x_i, y_i, *, learning_rate) -> Params            (one online update)
    fit(x, y, *, learning_rate, max_epochs, params) -> FitResult
    pocket(x, y, *, ...)           -> PocketResult                (non-separable data)

The update is the chapter's:

.. math::
    \hat y = \operatorname{sign}(w \cdot x + b), \quad
    w \leftarrow w + \eta (y - \hat y) x, \quad b \leftarrow b + \eta (y - \hat y).

Labels are ±1; use :func:`dlvr_jax.data.signed` to convert 0/1 labels. Each
call of :func:`fit` or :func:`pocket` is one compiled program: a
``lax.scan`` over the samples (in data order) inside a ``lax.while_loop``
over epochs, which stops after the first epoch without a mistake. Both can be
``jit``-ed, ``vmap``-ed over datasets and ``pmap``-ed.

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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlvr_jax import _validate as check

__all__ = [
    "FitResult",
    "Params",
    "PocketResult",
    "accuracy",
    "fit",
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


def _check_params(params: Any, n_features: int) -> Params:
    if not isinstance(params, Params):
        raise TypeError(f"params must be a perceptron.Params(w, b), got {type(params).__name__}")
    w = check.array("params.w", params.w, ndim=1)
    b = check.array("params.b", params.b, ndim=0)
    if w.shape != (n_features,):
        raise ValueError(
            f"params must have w of shape ({n_features},) and a scalar b to match x, got "
            f"w {w.shape} and b {b.shape}"
        )
    if not jnp.issubdtype(w.dtype, jnp.floating):
        w = w.astype(jnp.result_type(float))
    return Params(w, b.astype(w.dtype))


def _check_xy(x: Any, y: Any) -> tuple[jax.Array, jax.Array]:
    x = check.array("x", x, ndim=2)
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x must have shape (n, d) with n, d >= 1, got {x.shape}")
    y = check.array("y", y, ndim=1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"y must have one label per row of x: x has {x.shape[0]} rows, y has {y.shape[0]}"
        )
    if not check.is_tracer(y):
        values = set(np.unique(np.asarray(y)).tolist())
        if not values <= {-1, 1}:
            hint = "; convert 0/1 labels with dlvr_jax.data.signed(y)" if values <= {0, 1} else ""
            raise ValueError(
                f"y must hold labels in {{-1, +1}}, got values {sorted(values)[:10]}{hint}"
            )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x, y.astype(jnp.int32)


def _check_training(
    x: Any, y: Any, learning_rate: Any, max_epochs: Any, params: Any
) -> tuple[jax.Array, jax.Array, Any, int, Params]:
    x, y = _check_xy(x, y)
    learning_rate = check.real("learning_rate", learning_rate, low=0.0, low_open=True)
    max_epochs = check.positive_int("max_epochs", max_epochs)
    if params is None:
        return x, y, learning_rate, max_epochs, init(x.shape[1], dtype=x.dtype)
    params = _check_params(params, x.shape[1])
    return x.astype(params.w.dtype), y, learning_rate, max_epochs, params


# ----------------------------------------------------------------------------
# The model.


def init(n_features: int, *, dtype: Any = jnp.float32) -> Params:
    """Zero weights and bias, as in the chapter.

    Raises:
        ValueError: if ``n_features < 1``.
    """
    n_features = check.positive_int("n_features", n_features)
    return Params(jnp.zeros((n_features,), dtype), jnp.zeros((), dtype))


def _score(params: Params, x: jax.Array) -> jax.Array:
    return x @ params.w + params.b


def _predict(params: Params, x: jax.Array) -> jax.Array:
    return jnp.where(_score(params, x) > 0, 1, -1).astype(jnp.int32)


def _check_points(params: Any, x: Any) -> tuple[Params, jax.Array]:
    """Checks ``x`` (one point ``[d]`` or a batch ``[n, d]``) against ``params``."""
    x = check.array("x", x, ndim=(1, 2), finite=False)
    if not isinstance(params, Params):
        raise TypeError(f"params must be a perceptron.Params(w, b), got {type(params).__name__}")
    params = _check_params(params, x.shape[-1])
    return params, x.astype(params.w.dtype)


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
        raise ValueError(f"y_i must be -1 or +1, got {y_i.item()}")
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


@functools.partial(jax.jit, static_argnames=("max_epochs", "use_pocket", "every_update"))
def _train(
    x: jax.Array,
    y: jax.Array,
    params: Params,
    learning_rate: Any,
    max_epochs: int,
    use_pocket: bool,
    every_update: bool = False,
) -> tuple[Params, jax.Array, jax.Array, jax.Array, jax.Array, _Pocket]:
    zero = jnp.zeros((), jnp.int32)
    yes = jnp.bool_(True)
    best = _Pocket(params, _n_correct(params, x, y), zero, zero, yes, yes)

    def sample(
        carry: tuple[Params, _Pocket], xy: tuple[jax.Array, jax.Array]
    ) -> tuple[tuple[Params, _Pocket], jax.Array]:
        current, best = carry
        current, mistake = _update(current, xy[0], xy[1], learning_rate)
        if use_pocket:
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
    if use_pocket:  # the last iterate competes too, so the pocket is never worse than it
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
    x, y, learning_rate, max_epochs, params = _check_training(
        x, y, learning_rate, max_epochs, params
    )
    last, epochs, updates, converged, mistakes, _ = _train(
        x, y, params, learning_rate, max_epochs, False
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
    x, y, learning_rate, max_epochs, params = _check_training(
        x, y, learning_rate, max_epochs, params
    )
    if not isinstance(every_update, bool):
        raise TypeError(f"every_update must be a bool, got {every_update!r}")
    last, epochs, updates, converged, mistakes, best = _train(
        x, y, params, learning_rate, max_epochs, True, every_update
    )
    n = jnp.asarray(x.shape[0], jnp.float32)
    return PocketResult(best.params, best.correct / n, last, epochs, updates, converged, mistakes)


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
