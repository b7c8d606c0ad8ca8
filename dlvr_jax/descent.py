r"""Exercise 1.3's descent toolkit: toy objectives, gradient descent paths, SGD and mini-batch.

The contract, in the manner of ``stax``::

    gradient_descent(f, x0, *, learning_rate)           -> Path    (x <- x - eta grad f(x))
    minimize(f, x0, optimizer)                          -> Path    (any Optax transformation)
    compare(f, x0, *, optimizers, learning_rate)        -> {name: Path}
    objective(name)                                     -> Objective(f, minima, f_star, ...)
    quadratic_samples(key, n, *, coefficients, noise)   -> LeastSquares(features, targets)
    least_squares_loss(w, features, targets)            -> scalar  (|Phi w - y|^2 / 2m)
    least_squares_solution(problem)                     -> (w_star, loss at w_star)
    sgd_path(key, problem, w0, *, learning_rate, batch_size, epochs)
                                                        -> Path    (mini-batches, one loop)
    convergence_grid(key, problem, w0, *, learning_rates, batch_sizes, epochs)
                                                        -> {(learning_rate, batch_size): Path}

Every run is one compiled ``lax.while_loop`` and returns a :class:`Path` of
fixed length ``max_steps + 1`` (a pytree: ``vmap`` stacks it). The toy
objectives of known minima are in :data:`OBJECTIVES` (``quadratic``, ``bowl``,
``rosenbrock``, ``beale``, ``himmelblau``, ``saddle``); optimizers come from
:func:`dlvr_jax.optim.optimizer`. Mini-batch descent visits, in epoch ``e``,
the batches of :func:`dlvr_jax.data.batch_order` ``(key, e, n, batch_size,
remainder="drop")``, each batch's rows sorted (so that ``batch_size = n`` is
full gradient descent, bit for bit).

The compiled cores ``_descend`` and ``_sgd_descend`` are the tests' one seam:
the tests replace them to show that bad input is refused before anything is
compiled.

Examples:
    >>> import jax.numpy as jnp
    >>> from dlvr_jax import descent
    >>> path = descent.gradient_descent(descent.quadratic, jnp.array(3.0), learning_rate=0.25)
    >>> round(float(path.xs[int(path.steps)]), 4), bool(path.converged)
    (-2.0, True)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from dlvr_jax import _validate as check
from dlvr_jax import data, optim

__all__ = [
    "OBJECTIVES",
    "LeastSquares",
    "Objective",
    "Path",
    "beale",
    "bowl",
    "compare",
    "convergence_grid",
    "gradient_descent",
    "himmelblau",
    "least_squares_loss",
    "least_squares_solution",
    "minimize",
    "objective",
    "quadratic",
    "quadratic_samples",
    "rosenbrock",
    "saddle",
    "sgd_path",
]


# ----------------------------------------------------------------------------
# Toy objectives with known minima (Exercise 1.3 and the figures of §1.3).


def quadratic(x: jax.Array) -> jax.Array:
    r"""The chapter's :math:`f(x) = x^2 + 4x + 4 = (x + 2)^2`, summed over the entries of ``x``.

    Its minimum is :math:`f(-2) = 0`. Gradient descent with step :math:`\eta`
    contracts the error exactly: :math:`x_{k+1} + 2 = (1 - 2\eta)(x_k + 2)`.
    (Written as the chapter writes it, it cancels near the minimum: in float32
    ``f`` and its gradient ``2x + 4`` are accurate to about ``1e-6`` there.)
    """
    return jnp.sum(x**2 + 4.0 * x + 4.0)


def bowl(x: jax.Array) -> jax.Array:
    r"""An elliptic bowl :math:`f(x, y) = x^2 + 10 y^2`: minimum 0 at the origin.

    Its Hessian has condition number 10: steep across, shallow along.
    """
    return x[0] ** 2 + 10.0 * x[1] ** 2


def rosenbrock(x: jax.Array) -> jax.Array:
    r"""Rosenbrock's banana :math:`(1 - x)^2 + 100 (y - x^2)^2`: minimum 0 at (1, 1).

    The minimum lies in a long, curved, nearly flat valley: easy to find, slow to follow.
    """
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def beale(x: jax.Array) -> jax.Array:
    r"""Beale's function :math:`\sum_{i=1}^3 (c_i - x + x y^i)^2`: minimum 0 at (3, 0.5).

    Here :math:`c = (1.5, 2.25, 2.625)`; sharp ridges surround a flat basin.
    """
    a, b = x[0], x[1]
    return (1.5 - a + a * b) ** 2 + (2.25 - a + a * b**2) ** 2 + (2.625 - a + a * b**3) ** 2


def himmelblau(x: jax.Array) -> jax.Array:
    r"""Himmelblau's function :math:`(x^2 + y - 11)^2 + (x + y^2 - 7)^2`: four minima, all 0."""
    return (x[0] ** 2 + x[1] - 11.0) ** 2 + (x[0] + x[1] ** 2 - 7.0) ** 2


def saddle(x: jax.Array) -> jax.Array:
    r"""The saddle :math:`x^2 - y^2`: a stationary point at the origin and no minimum.

    Gradient descent from off the ``x`` axis escapes along ``y`` and is
    reported as diverged (the function is unbounded below).
    """
    return x[0] ** 2 - x[1] ** 2


class Objective(NamedTuple):
    """A toy objective and what is known about it.

    Attributes:
        f: the function of ``x`` (shape ``(d,)``) to a scalar.
        minima: every global minimiser, as tuples of length ``d`` (empty when
            there is none, as for the saddle).
        f_star: the minimum value (``-inf`` when unbounded below).
        start: a suggested starting point.
        extent: a plotting window ``(x0, x1, y0, y1)`` (for ``d = 1``, ``(x0, x1)``
            and two bounds for ``f``).
    """

    f: Callable[[jax.Array], jax.Array]
    minima: tuple[tuple[float, ...], ...]
    f_star: float
    start: tuple[float, ...]
    extent: tuple[float, float, float, float]


OBJECTIVES: dict[str, Objective] = {
    "quadratic": Objective(quadratic, ((-2.0,),), 0.0, (3.0,), (-6.0, 4.0, -1.0, 37.0)),
    "bowl": Objective(bowl, ((0.0, 0.0),), 0.0, (-4.0, 1.5), (-5.0, 5.0, -2.5, 2.5)),
    "rosenbrock": Objective(rosenbrock, ((1.0, 1.0),), 0.0, (-1.2, 1.0), (-2.0, 2.0, -1.0, 3.0)),
    "beale": Objective(beale, ((3.0, 0.5),), 0.0, (1.0, 1.4), (-1.0, 4.5, -1.5, 2.0)),
    "himmelblau": Objective(
        himmelblau,
        (
            (3.0, 2.0),
            (-2.805118, 3.131312),
            (-3.779310, -3.283186),
            (3.584428, -1.848126),
        ),
        0.0,
        (0.0, -0.5),
        (-5.0, 5.0, -5.0, 5.0),
    ),
    "saddle": Objective(saddle, (), -math.inf, (1.5, 0.01), (-2.0, 2.0, -2.0, 2.0)),
}
"""The toy objectives by name, each with its minima, minimum value, a start and a plot window."""


def objective(name: str) -> Objective:
    """The toy :class:`Objective` called ``name`` (one of ``OBJECTIVES``)."""
    check.choice("objective", name, tuple(OBJECTIVES))
    return OBJECTIVES[name]


# ----------------------------------------------------------------------------
# Descent paths: one compiled while_loop per run.


class Path(NamedTuple):
    """An optimization run, recorded in fixed-length arrays (a pytree: vmap stacks it).

    Index ``k`` holds the ``k``-th iterate, ``k = 0..steps``; the entries after
    ``steps`` repeat the last recorded one, so ``xs[-1]`` is always the final
    iterate and a whole path can be plotted as is. Use ``xs[: steps + 1]`` for
    the iterates actually visited.

    Attributes:
        xs: ``[max_steps + 1, *x0.shape]`` iterates.
        values: ``[max_steps + 1]`` objective values ``f(x_k)``.
        grad_norms: ``[max_steps + 1]`` Euclidean norms of the (full) gradient at ``x_k``.
        steps: the number of updates taken (int32 scalar).
        converged: a stopping criterion fired: gradient norm or step size below ``tol``.
        diverged: the next iterate was non-finite or past the divergence
            threshold; it was not recorded, so every recorded value is finite.
    """

    xs: jax.Array
    values: jax.Array
    grad_norms: jax.Array
    steps: jax.Array
    converged: jax.Array
    diverged: jax.Array


class _Carry(NamedTuple):
    k: jax.Array
    x: jax.Array
    state: Any
    grad: jax.Array
    xs: jax.Array
    values: jax.Array
    grad_norms: jax.Array
    converged: jax.Array
    diverged: jax.Array


def _norm(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(x)))


def _descent_loop(
    objective_fn: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
    advance: Callable[[jax.Array, jax.Array, Any, jax.Array], tuple[jax.Array, Any]],
    x0: jax.Array,
    state0: Any,
    *,
    tol: jax.Array,
    step_tol: jax.Array,
    threshold: jax.Array,
    max_steps: int,
) -> Path:
    """The loop shared by every method (traced, not jitted on its own).

    ``objective_fn(x) -> (f(x), grad f(x))``; ``advance(x, grad, state, k) ->
    (x_next, state_next)`` is the method's update at step ``k``. Stops when the
    gradient norm is below ``tol``, the step is shorter than ``step_tol``,
    ``max_steps`` updates are done, or the next iterate is non-finite or has an
    entry past ``threshold`` in absolute value (diverged; not recorded).
    """
    value0, grad0 = objective_fn(x0)
    norm0 = _norm(grad0)
    length = max_steps + 1
    xs = jnp.zeros((length, *x0.shape), x0.dtype).at[0].set(x0)
    values = jnp.zeros((length,), value0.dtype).at[0].set(value0)
    grad_norms = jnp.zeros((length,), norm0.dtype).at[0].set(norm0)
    start_ok = jnp.isfinite(value0) & jnp.isfinite(norm0)

    def running(carry: _Carry) -> jax.Array:
        return (carry.k < max_steps) & ~carry.converged & ~carry.diverged

    def step(carry: _Carry) -> _Carry:
        x_next, state_next = advance(carry.x, carry.grad, carry.state, carry.k)
        value, grad = objective_fn(x_next)
        norm = _norm(grad)
        finite = jnp.isfinite(value) & jnp.isfinite(norm) & jnp.all(jnp.isfinite(x_next))
        accept = finite & (jnp.max(jnp.abs(x_next)) <= threshold)
        k = carry.k + 1

        def keep(new: jax.Array, old: jax.Array) -> jax.Array:
            return jnp.where(accept, new, old)

        x = keep(x_next, carry.x)
        # Written at k even when rejected (then it repeats x_k); padding overwrites it.
        return _Carry(
            k=jnp.where(accept, k, carry.k),
            x=x,
            state=jax.tree.map(keep, state_next, carry.state),
            grad=keep(grad, carry.grad),
            xs=lax.dynamic_update_index_in_dim(carry.xs, x, k, 0),
            values=carry.values.at[k].set(keep(value, carry.values[carry.k])),
            grad_norms=carry.grad_norms.at[k].set(keep(norm, carry.grad_norms[carry.k])),
            converged=accept & ((norm < tol) | (_norm(x_next - carry.x) < step_tol)),
            diverged=~accept,
        )

    carry = lax.while_loop(
        running,
        step,
        _Carry(
            k=jnp.asarray(0, jnp.int32),
            x=x0,
            state=state0,
            grad=grad0,
            xs=xs,
            values=values,
            grad_norms=grad_norms,
            converged=start_ok & (norm0 < tol),
            diverged=~start_ok,
        ),
    )
    after = jnp.arange(length) > carry.k

    def pad(array: jax.Array) -> jax.Array:
        mask = after.reshape((length,) + (1,) * (array.ndim - 1))
        return jnp.where(mask, array[carry.k], array)

    return Path(
        xs=pad(carry.xs),
        values=pad(carry.values),
        grad_norms=pad(carry.grad_norms),
        steps=carry.k,
        converged=carry.converged,
        diverged=carry.diverged,
    )


@functools.partial(jax.jit, static_argnames=("f", "optimizer", "max_steps"))
def _descend(
    f: Callable[[jax.Array], jax.Array],
    optimizer: optax.GradientTransformation | None,
    x0: jax.Array,
    learning_rate: jax.Array,
    tol: jax.Array,
    threshold: jax.Array,
    *,
    max_steps: int,
) -> Path:
    """The compiled core of :func:`gradient_descent` (``optimizer=None``) and :func:`minimize`."""
    value_and_grad = jax.value_and_grad(f)

    if optimizer is None:

        def advance(x: jax.Array, grad: jax.Array, state: Any, k: jax.Array) -> tuple[Any, Any]:
            return x - learning_rate * grad, state  # the chapter's update

        state0: Any = ()
    else:
        transformation = optimizer

        def advance(x: jax.Array, grad: jax.Array, state: Any, k: jax.Array) -> tuple[Any, Any]:
            updates, state = transformation.update(grad, state, x)
            return optax.apply_updates(x, updates), state

        state0 = optimizer.init(x0)
    return _descent_loop(
        value_and_grad,
        advance,
        x0,
        state0,
        tol=tol,
        step_tol=tol,
        threshold=threshold,
        max_steps=max_steps,
    )


def _float_dtype(x: jax.Array) -> Any:
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)


class _Start(NamedTuple):
    """The checked common arguments of :func:`gradient_descent` and :func:`minimize`."""

    x0: jax.Array
    max_steps: int
    tol: float
    threshold: float


def _check_start(f: Any, x0: Any, max_steps: Any, tol: Any, divergence_threshold: Any) -> _Start:
    """The common door checks of the descent functions (nothing is traced but ``f``'s shape)."""
    if not callable(f):
        raise TypeError(f"f must be a callable x -> scalar, got {check.show(f)}")
    x0 = check.array("x0", x0, ndim=(0, 1))
    x0 = x0.astype(_float_dtype(x0))
    max_steps = check.positive_int("max_steps", max_steps)
    tol = check.real("tol", tol, low=0.0)
    threshold = check.real("divergence_threshold", divergence_threshold, low=0.0, low_open=True)
    try:
        out = jax.eval_shape(f, x0)
    except Exception as error:
        raise TypeError(
            f"f could not be evaluated at x0 of shape {check.show(x0.shape)}: {error}"
        ) from error
    if not (hasattr(out, "shape") and out.shape == () and jnp.issubdtype(out.dtype, jnp.floating)):
        raise TypeError(
            f"f must return a float scalar for x0 of shape {check.show(x0.shape)}, "
            f"got {check.show(out)}"
        )
    return _Start(x0, max_steps, tol, threshold)


def gradient_descent(
    f: Callable[[jax.Array], jax.Array],
    x0: Any,
    *,
    learning_rate: float,
    max_steps: int = 1000,
    tol: float = 1e-6,
    divergence_threshold: float = 1e6,
) -> Path:
    r"""Gradient descent :math:`x_{k+1} = x_k - \eta \nabla f(x_k)`, in one ``lax.while_loop``.

    Stopping criteria: the gradient norm drops below ``tol`` (converged), the
    step :math:`\|x_{k+1} - x_k\|` is shorter than ``tol`` (converged),
    ``max_steps`` updates are done, or the next iterate is non-finite or has an
    entry beyond ``divergence_threshold`` in absolute value (``diverged``; the
    offending iterate is not recorded, so the path holds no NaN or inf).

    Args:
        f: the objective, a differentiable function of one array to a float scalar
            (hashable: it is a static argument of the compiled loop, so pass the
            same function object to reuse the compilation).
        x0: the start, a finite scalar or vector (ints become floats).
        learning_rate: the step size :math:`\eta > 0`.
        max_steps: most updates, ``>= 1``; the path has ``max_steps + 1`` entries.
        tol: the tolerance of both convergence criteria, ``>= 0`` (0 runs all steps).
        divergence_threshold: ``|x|`` beyond which the run counts as diverged.

    Returns:
        A :class:`Path` (padded after ``steps`` by repeating the last iterate).

    Raises:
        TypeError: ``f`` is not callable or does not return a float scalar at ``x0``.
        ValueError: ``x0`` is not finite or of rank > 1, ``learning_rate <= 0``,
            ``max_steps < 1``, ``tol < 0``. All before anything is compiled.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import descent
        >>> path = descent.gradient_descent(descent.quadratic, jnp.array(0.0), learning_rate=0.1)
        >>> [round(float(x), 4) for x in path.xs[:3]]  # x_k + 2 = 0.8^k (0 + 2)
        [0.0, -0.4, -0.72]
        >>> bool(descent.gradient_descent(descent.quadratic, 0.0, learning_rate=1.5).diverged)
        True
    """
    learning_rate = check.real("learning_rate", learning_rate, low=0.0, low_open=True)
    start = _check_start(f, x0, max_steps, tol, divergence_threshold)
    dtype = start.x0.dtype
    return _descend(
        f,
        None,
        start.x0,
        jnp.asarray(learning_rate, dtype),
        jnp.asarray(start.tol, dtype),
        jnp.asarray(start.threshold, dtype),
        max_steps=start.max_steps,
    )


def minimize(
    f: Callable[[jax.Array], jax.Array],
    x0: Any,
    optimizer: optax.GradientTransformation,
    *,
    max_steps: int = 1000,
    tol: float = 1e-6,
    divergence_threshold: float = 1e6,
) -> Path:
    """Runs any Optax optimizer on ``f`` from ``x0`` with :func:`gradient_descent`'s stopping rules.

    ``optimizer`` is a static argument of the compiled loop:
    :func:`dlvr_jax.optim.optimizer` returns the same object for the same
    arguments, so repeated runs compile once.

    Args:
        f: the objective (see :func:`gradient_descent`).
        x0: the start, a finite scalar or vector.
        optimizer: an ``optax.GradientTransformation``, e.g. ``optim.optimizer("adam", 1e-2)``.
        max_steps, tol, divergence_threshold: as for :func:`gradient_descent`.

    Returns:
        A :class:`Path`.

    Raises:
        TypeError, ValueError: as for :func:`gradient_descent`, and ``optimizer``
            that is not an Optax transformation.

    Examples:
        >>> from dlvr_jax import descent, optim
        >>> path = descent.minimize(descent.bowl, [-4.0, 1.5], optim.optimizer("adam", 0.1))
        >>> bool(path.values[-1] < 1e-4 * path.values[0])
        True
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "optimizer must be an optax.GradientTransformation such as "
            f"optim.optimizer('adam', 1e-3), got {check.show(optimizer)}"
        )
    start = _check_start(f, x0, max_steps, tol, divergence_threshold)
    dtype = start.x0.dtype
    return _descend(
        f,
        optimizer,
        start.x0,
        jnp.asarray(0.0, dtype),
        jnp.asarray(start.tol, dtype),
        jnp.asarray(start.threshold, dtype),
        max_steps=start.max_steps,
    )


def compare(
    f: Callable[[jax.Array], jax.Array],
    x0: Any,
    *,
    optimizers: Sequence[str] = ("gd", "momentum", "rmsprop", "adam"),
    learning_rate: float | Mapping[str, float] = 1e-3,
    max_steps: int = 1000,
    tol: float = 1e-6,
    divergence_threshold: float = 1e6,
) -> dict[str, Path]:
    """Runs several methods on the same objective from the same start; returns their paths.

    ``"gd"`` is :func:`gradient_descent`; every other name is an Optax
    optimizer from :func:`dlvr_jax.optim.names`, with its default hyperparameters, run by
    :func:`minimize`. On a deterministic ``f`` there is nothing to sample, so
    ``"sgd"`` (Optax's ``sgd``) makes the same steps as ``"gd"``: stochastic
    and mini-batch descent need a finite sum, see :func:`sgd_path` and
    :func:`convergence_grid`.

    Args:
        f: the objective.
        x0: the common start.
        optimizers: method names, ``"gd"`` or any of :func:`dlvr_jax.optim.names`.
        learning_rate: one step size for all, or a mapping name -> step size
            (e.g. Adam usually wants a larger one than plain GD).
        max_steps, tol, divergence_threshold: as for :func:`gradient_descent`.

    Returns:
        ``{name: Path}`` in the order of ``optimizers``.

    Raises:
        ValueError: an unknown or repeated name, a missing or bad learning rate,
            or the arguments :func:`gradient_descent` rejects.
    """
    if isinstance(optimizers, str) or not isinstance(optimizers, Sequence) or not optimizers:
        raise TypeError(
            f"optimizers must be a non-empty sequence of names, got {check.show(optimizers)}"
        )
    known = ("gd", *optim.names())
    for name in optimizers:
        check.choice("optimizer", name, known)
    if len(set(optimizers)) != len(optimizers):
        raise ValueError(f"optimizers must not repeat a name, got {list(optimizers)}")
    if isinstance(learning_rate, Mapping):
        missing = [name for name in optimizers if name not in learning_rate]
        if missing:
            raise ValueError(f"learning_rate has no entry for {missing}")
        rates = {name: learning_rate[name] for name in optimizers}
    else:
        rates = dict.fromkeys(optimizers, learning_rate)
    for name, rate in rates.items():
        check.real(f"learning_rate[{name!r}]", rate, low=0.0, low_open=True)
    options: dict[str, Any] = {
        "max_steps": max_steps,
        "tol": tol,
        "divergence_threshold": divergence_threshold,
    }
    paths: dict[str, Path] = {}
    for name in optimizers:
        if name == "gd":
            paths[name] = gradient_descent(f, x0, learning_rate=rates[name], **options)
        else:
            paths[name] = minimize(f, x0, optim.optimizer(name, rates[name]), **options)
    return paths


# ----------------------------------------------------------------------------
# Stochastic and mini-batch gradient descent on a finite sum: least squares.


class LeastSquares(NamedTuple):
    r"""A least-squares problem :math:`L(w) = \frac{1}{2n} \sum_i (\phi_i \cdot w - y_i)^2`.

    Attributes:
        features: ``[n, d]``, the rows :math:`\phi_i`.
        targets: ``[n]``, the :math:`y_i`.
    """

    features: jax.Array
    targets: jax.Array


def quadratic_samples(
    key: Any,
    n: int,
    *,
    coefficients: tuple[float, float, float] = (1.0, 4.0, 4.0),
    noise: float = 0.5,
    low: float = -2.0,
    high: float = 2.0,
) -> LeastSquares:
    r"""Noisy samples of :math:`f(x) = a x^2 + b x + c`, by default :math:`x^2 + 4x + 4`.

    Fitting ``w`` with features :math:`\phi(x) = (x^2, x, 1)` recovers the
    coefficients, up to the noise: the finite sum on which stochastic and
    mini-batch descent act.

    Args:
        key: PRNG key; ``x ~ U(low, high)`` and the Gaussian noise come from its two halves.
        n: number of samples, ``>= 1``.
        coefficients: ``(a, b, c)``.
        noise: standard deviation of the noise added to ``y``, ``>= 0``.
        low, high: the sampling interval, ``low < high``.

    Returns:
        :class:`LeastSquares` with features ``[n, 3]``.

    Examples:
        >>> import jax
        >>> from dlvr_jax import descent
        >>> problem = descent.quadratic_samples(jax.random.key(0), 200, noise=0.0)
        >>> w, loss = descent.least_squares_solution(problem)
        >>> [round(float(v), 3) for v in w], round(float(loss), 6)
        ([1.0, 4.0, 4.0], 0.0)
    """
    key = check.prng_key("key", key)
    n = check.positive_int("n", n)
    noise = check.real("noise", noise, low=0.0)
    low = check.real("low", low)
    high = check.real("high", high)
    if not low < high:
        raise ValueError(f"low must be < high, got low={check.show(low)}, high={check.show(high)}")
    try:
        a, b, c = (check.real("coefficients", v) for v in coefficients)
    except TypeError:
        raise TypeError(
            f"coefficients must be three numbers, got {check.show(coefficients)}"
        ) from None
    except ValueError as error:
        if "finite" in str(error):
            raise
        raise TypeError(
            f"coefficients must be three numbers, got {check.show(coefficients)}"
        ) from None
    x_key, noise_key = jax.random.split(key)
    dtype = jnp.result_type(float)
    x = jax.random.uniform(x_key, (n,), dtype, minval=low, maxval=high)
    y = a * x**2 + b * x + c + noise * jax.random.normal(noise_key, (n,), dtype)
    return LeastSquares(jnp.stack([x**2, x, jnp.ones_like(x)], axis=1), y)


def least_squares_loss(w: jax.Array, features: jax.Array, targets: jax.Array) -> jax.Array:
    r""":math:`\frac{1}{2m} \|\Phi w - y\|^2` over the ``m`` rows given (all, or one mini-batch)."""
    residual = features @ w - targets
    return 0.5 * jnp.mean(jnp.square(residual))


def least_squares_solution(problem: LeastSquares) -> tuple[jax.Array, jax.Array]:
    """The exact minimiser ``w*`` (by ``lstsq``) and the minimum loss ``L(w*)``."""
    _check_problem(problem)
    w, *_ = jnp.linalg.lstsq(problem.features, problem.targets)
    return w, least_squares_loss(w, problem.features, problem.targets)


def _check_problem(problem: Any) -> LeastSquares:
    if not isinstance(problem, LeastSquares):
        raise TypeError(
            f"problem must be a LeastSquares(features, targets), got {type(problem).__name__}"
        )
    features = check.array("problem.features", problem.features, ndim=2)
    targets = check.array("problem.targets", problem.targets, ndim=1)
    if features.shape[0] != targets.shape[0] or features.shape[0] == 0:
        raise ValueError(
            "problem.features and problem.targets must have the same number n >= 1 of rows, "
            f"got shapes {check.show(features.shape)} and {check.show(targets.shape)}"
        )
    return LeastSquares(features, targets)


def _batch_rows(key: jax.Array, n: int, batch_size: int, epochs: int) -> jax.Array:
    """``[epochs * (n // batch_size), batch_size]`` example indices, one row per step.

    Epoch ``e``'s rows are those of ``data.batch_order(key, e, n, batch_size,
    remainder="drop")``: shuffled with ``fold_in(key, e)``, the ``n % batch_size``
    examples left over dropped. Each row is then sorted, so a batch is a set of
    examples summed in data order (with ``batch_size = n`` every batch is
    ``0..n-1``: full gradient descent, bit for bit).
    """

    def epoch(e: jax.Array) -> jax.Array:
        index, _ = data.batch_order(key, e, n, batch_size, remainder="drop")
        return jnp.sort(index, axis=1)

    return jax.vmap(epoch)(jnp.arange(epochs)).reshape(-1, batch_size)


@functools.partial(jax.jit, static_argnames=("batch_size", "epochs"))
def _sgd_descend(
    key: jax.Array,
    problem: LeastSquares,
    w0: jax.Array,
    learning_rate: jax.Array,
    tol: jax.Array,
    threshold: jax.Array,
    *,
    batch_size: int,
    epochs: int,
) -> Path:
    n = problem.targets.shape[0]
    order = _batch_rows(key, n, batch_size, epochs)
    full = jax.value_and_grad(least_squares_loss)

    def advance(w: jax.Array, grad: jax.Array, state: Any, k: jax.Array) -> tuple[Any, Any]:
        rows = order[k]
        batch_grad = jax.grad(least_squares_loss)(w, problem.features[rows], problem.targets[rows])
        return w - learning_rate * batch_grad, state

    return _descent_loop(
        lambda w: full(w, problem.features, problem.targets),
        advance,
        w0,
        (),
        tol=tol,
        step_tol=jnp.zeros_like(tol),  # SGD steps do not shrink with a constant rate
        threshold=threshold,
        max_steps=order.shape[0],
    )


class _SgdArguments(NamedTuple):
    """The checked arguments of one :func:`sgd_path` run."""

    key: jax.Array
    problem: LeastSquares
    w0: jax.Array
    batch_size: int
    epochs: int
    tol: float
    threshold: float


def _check_sgd(
    key: Any,
    problem: Any,
    w0: Any,
    batch_size: Any,
    epochs: Any,
    tol: Any,
    threshold: Any,
    *,
    batch_name: str = "batch_size",
) -> _SgdArguments:
    """The door checks of :func:`sgd_path` (``batch_name`` names the batch size in messages)."""
    key = check.prng_key("key", key)
    problem = _check_problem(problem)
    n, d = problem.features.shape
    w0 = check.array("w0", w0, ndim=1)
    w0 = w0.astype(_float_dtype(w0))
    if w0.shape != (d,):
        raise ValueError(
            f"w0 must have shape ({d},) to match problem.features, got {check.show(w0.shape)}"
        )
    batch_size = check.positive_int(batch_name, batch_size)
    if batch_size > n:
        raise ValueError(f"{batch_name} must be at most n = {n}, got {check.show(batch_size)}")
    epochs = check.positive_int("epochs", epochs)
    tol = check.real("tol", tol, low=0.0)
    threshold = check.real("divergence_threshold", threshold, low=0.0, low_open=True)
    return _SgdArguments(key, problem, w0, batch_size, epochs, tol, threshold)


def sgd_path(
    key: Any,
    problem: LeastSquares,
    w0: Any,
    *,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    tol: float = 0.0,
    divergence_threshold: float = 1e6,
) -> Path:
    r"""Mini-batch gradient descent on a least-squares finite sum, in one ``lax.while_loop``.

    Step ``k`` uses the gradient of the loss on mini-batch ``k`` only:
    :math:`w_{k+1} = w_k - \eta \nabla L_{B_k}(w_k)`. ``batch_size=1`` is
    stochastic gradient descent, ``batch_size=n`` is full gradient descent
    (bit for bit equal to :func:`gradient_descent` on the full loss with
    ``tol=0``). Epoch ``e`` visits the batches of
    :func:`dlvr_jax.data.batch_order` ``(key, e, n, batch_size, remainder="drop")``:
    the examples reshuffled with ``fold_in(key, e)``, the ``n % batch_size`` left
    over dropped, each batch's rows sorted (a batch is a set, summed in data
    order). The path records the full loss and full gradient norm at every
    iterate; it stops early only when the full gradient norm drops below ``tol``
    (default 0: never) or on divergence.

    Args:
        key: PRNG key for the shuffles.
        problem: a :class:`LeastSquares` problem, e.g. :func:`quadratic_samples`.
        w0: the starting weights, shape ``(d,)``.
        learning_rate: :math:`\eta > 0`.
        batch_size: examples per step, ``1 <= batch_size <= n``.
        epochs: passes over the data; the path has ``epochs * (n // batch_size) + 1`` entries.
        tol: stop when the full gradient norm is below it (``>= 0``).
        divergence_threshold: as for :func:`gradient_descent`.

    Returns:
        A :class:`Path` of the weights.

    Raises:
        TypeError, ValueError: bad key, problem, shapes or hyperparameters, before tracing.
    """
    learning_rate = check.real("learning_rate", learning_rate, low=0.0, low_open=True)
    checked = _check_sgd(key, problem, w0, batch_size, epochs, tol, divergence_threshold)
    dtype = checked.w0.dtype
    return _sgd_descend(
        checked.key,
        checked.problem,
        checked.w0,
        jnp.asarray(learning_rate, dtype),
        jnp.asarray(checked.tol, dtype),
        jnp.asarray(checked.threshold, dtype),
        batch_size=checked.batch_size,
        epochs=checked.epochs,
    )


def convergence_grid(
    key: Any,
    problem: LeastSquares,
    w0: Any,
    *,
    learning_rates: Sequence[float],
    batch_sizes: Sequence[int],
    epochs: int,
    divergence_threshold: float = 1e6,
) -> dict[tuple[float, int], Path]:
    """:func:`sgd_path` over learning rates × batch sizes, ``vmap``-ped over the learning rates.

    Every run uses the same key (the same shuffles for a given batch size), so
    the grid isolates the effect of the two hyperparameters. One compilation
    per batch size (the shapes change with it); the learning rates share it.

    Returns:
        ``{(learning_rate, batch_size): Path}``, for :func:`dlvr_jax.viz.plot_convergence`.

    Raises:
        TypeError, ValueError: as for :func:`sgd_path` (naming the offending
            ``learning_rates[i]`` or ``batch_sizes[i]``), for every entry before
            anything is compiled.
    """
    rate_list: Any = learning_rates
    batch_list: Any = batch_sizes
    if isinstance(rate_list, str) or not isinstance(rate_list, Sequence) or not rate_list:
        raise TypeError(
            f"learning_rates must be a non-empty sequence of numbers, got {check.show(rate_list)}"
        )
    if isinstance(batch_list, str) or not isinstance(batch_list, Sequence) or not batch_list:
        raise TypeError(
            f"batch_sizes must be a non-empty sequence of ints, got {check.show(batch_list)}"
        )
    rates = [
        check.real(f"learning_rates[{i}]", rate, low=0.0, low_open=True)
        for i, rate in enumerate(rate_list)
    ]
    runs = [
        _check_sgd(
            key,
            problem,
            w0,
            batch_size,
            epochs,
            0.0,
            divergence_threshold,
            batch_name=f"batch_sizes[{position}]",
        )
        for position, batch_size in enumerate(batch_list)
    ]  # every batch size is checked before the first run compiles
    grid: dict[tuple[float, int], Path] = {}
    for checked in runs:
        dtype = checked.w0.dtype
        run = functools.partial(
            _sgd_descend,
            checked.key,
            checked.problem,
            checked.w0,
            tol=jnp.asarray(checked.tol, dtype),
            threshold=jnp.asarray(checked.threshold, dtype),
            batch_size=checked.batch_size,
            epochs=checked.epochs,
        )
        paths = jax.vmap(run)(jnp.asarray(rates, dtype))
        for index, rate in enumerate(rates):
            grid[(rate, checked.batch_size)] = jax.tree.map(lambda leaf, i=index: leaf[i], paths)
    return grid
