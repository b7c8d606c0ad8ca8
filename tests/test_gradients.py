"""Gradient checks (issue 3): ``jax.grad`` of the training objective against finite differences.

Every test runs in float64 (``jax.enable_x64``). Hypothesis draws small random
architectures (0-3 hidden layers of width 1-8, 1-3 outputs, every activation,
with or without residual connections, and with or without layer norm for the
smooth ones), random data from a drawn seed, and a loss (``cross_entropy``
with 2-3 logits; ``mse`` or ``binary_cross_entropy`` with one). The gradient
of the training objective

    loss(model.apply(params, x), y) + l1 * l1_penalty(params) + l2 * l2_penalty(params)

with respect to the params *and* the inputs ``x`` is checked twice:

1. against our own central finite differences, every scalar perturbed by
   ``h = 1e-6`` (:func:`assert_gradient_matches`, relative tolerance 1e-5);
2. with ``jax.test_util.check_grads`` at order 2, forward and reverse mode.

Params have the shapes ``model.init`` gives and values on PyTorch's scale
(one test uses ``model.init`` itself, cast to float64). Kernels are kept at
least ``L1_OFFSET`` from 0, where the L1 penalty has its kink. ReLU-like
activations (relu, leaky_relu, elu) are checked away from their kinks: hidden
biases are shifted so that no pre-activation lies within ``MARGIN`` of 0, far
more than either check's steps move it.

The last tests show that the checks bite: a backward pass that is 1% wrong, or
one gradient entry off by 1e-4 relative, fails them.

Each architecture costs XLA compilations (``check_grads`` at order 2 alone
compiles about a dozen programs), so the CI profile draws few examples;
``HYPOTHESIS_PROFILE=fuzz`` draws ten times more.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from dlvr_jax import losses, models

SMOOTH = models.SMOOTH_ACTIVATIONS
KINKED = ("relu", "leaky_relu", "elu")
MARGIN = 0.05  # ReLU-like pre-activations stay this far from 0 (check_grads steps by ~1e-4)
L1_OFFSET = 0.05  # kernels are pushed this far from 0
H = 1e-6
RTOL = 1e-5
ATOL = 1e-8
seeds = st.integers(0, 2**32 - 1)


def examples(fraction: float) -> int:
    """A fraction of the profile's max_examples: 20 in CI, ten times more with ``fuzz``."""
    return max(1, round(settings.default.max_examples * fraction))


@pytest.fixture(autouse=True, scope="module")
def x64():
    with jax.enable_x64(True):
        yield


def test_registry_splits_into_smooth_and_kinked():
    assert set(SMOOTH) | set(KINKED) | {"swish"} == set(models.activations)
    assert not set(SMOOTH) & set(KINKED)
    assert jnp.zeros(()).dtype == jnp.float64  # the fixture is on


# ---------------------------------------------------------------------------
# Our finite-difference checker, on functions of one flat float64 vector.


def finite_difference_gradient(
    f: Callable[[Any], Any], theta: np.ndarray, h: float = H
) -> np.ndarray:
    """Central differences ``(f(θ + h e_i) - f(θ - h e_i)) / 2h`` for every coordinate ``i``."""
    theta = np.asarray(theta)
    assert theta.dtype == np.float64, "finite differences need float64"
    assert theta.ndim == 1
    gradient = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        gradient[i] = (float(f(theta + step)) - float(f(theta - step))) / (2 * h)
    return gradient


def assert_gradient_matches(
    f: Callable[[Any], Any],
    theta: Any,
    gradient: Any,
    *,
    h: float = H,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> None:
    """Raises ``AssertionError`` unless ``gradient`` is the gradient of ``f`` at ``theta``.

    Every entry must satisfy ``|g - fd| <= atol + rtol * |fd|``, ``fd`` the central
    difference; the message names the worst entry.
    """
    expected = finite_difference_gradient(f, np.asarray(theta), h)
    actual = np.asarray(gradient)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    excess = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    worst = int(np.argmax(excess))
    assert excess[worst] <= 0, (
        f"gradient entry {worst} of {actual.size}: autodiff {actual[worst]!r}, "
        f"finite differences {expected[worst]!r}"
    )


# ---------------------------------------------------------------------------
# Random problems.
#
# Each architecture costs XLA compilations, so everything random is drawn in
# one jitted call of fixed shapes (compiled once for all examples) and cut into
# params and data on the host; the params take the shapes ``model.init`` gives.

POOL = 512  # enough for the largest drawn network (about 250 scalars)


@jax.jit
def _random_pool(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    k_params, k_x, k_y = jax.random.split(key, 3)
    return (
        jax.random.uniform(k_params, (POOL,), jnp.float64, -1.0, 1.0),
        jax.random.normal(k_x, (POOL,), jnp.float64),
        jax.random.uniform(k_y, (POOL,), jnp.float64),
    )


class Flat:
    """Flattening of a pytree into one vector and back, usable on the host and under jit."""

    def __init__(self, tree: Any) -> None:
        leaves, self.treedef = jax.tree.flatten(tree)
        self.shapes = [np.shape(leaf) for leaf in leaves]
        self.sizes = [int(np.prod(shape)) for shape in self.shapes]
        self.size = sum(self.sizes)

    def ravel(self, tree: Any) -> Any:
        leaves = jax.tree.leaves(tree)
        if all(isinstance(leaf, np.ndarray) for leaf in leaves):
            return np.concatenate([leaf.ravel() for leaf in leaves])
        return jnp.concatenate([jnp.ravel(leaf) for leaf in leaves])

    def unravel(self, theta: Any) -> Any:
        leaves, start = [], 0
        for shape, size in zip(self.shapes, self.sizes, strict=True):
            leaves.append(theta[start : start + size].reshape(shape))
            start += size
        return jax.tree.unflatten(self.treedef, leaves)


class Problem:
    """A model, float64 params and data, and the training objective ``f(params, x)``."""

    def __init__(
        self,
        *,
        hidden: tuple[int, ...],
        activation: str | Callable[[jax.Array], jax.Array],
        n_inputs: int,
        n_outputs: int,
        n: int,
        loss: str,
        l1: float,
        l2: float,
        residual: bool = False,
        layer_norm: bool = False,
        seed: int = 0,
        model_init: bool = False,
    ) -> None:
        self.model = models.MLP(
            hidden=hidden,
            n_outputs=n_outputs,
            activation=activation,
            residual=residual,
            layer_norm=layer_norm,
        )
        self.loss_fn = losses.get_loss(loss)
        self.l1, self.l2 = l1, l2
        uniform, normal, labels = (np.asarray(a) for a in _random_pool(jax.random.key(seed)))
        assert uniform.dtype == np.float64
        self.x = normal[: n * n_inputs].reshape(n, n_inputs)
        if loss == "cross_entropy":
            assert n_outputs >= 2
            self.y = np.floor(labels[:n] * n_outputs).astype(np.int32)
        elif loss == "binary_cross_entropy":
            assert n_outputs == 1
            self.y = np.floor(labels[:n] * 2).astype(np.int32)
        else:
            assert n_outputs == 1
            self.y = normal[-n:]
        shapes = jax.eval_shape(
            self.model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, n_inputs), jnp.float64)
        )
        assert Flat(shapes).size <= POOL
        start = 0

        def draw(path: Any, leaf: Any) -> np.ndarray:
            # Kernels and biases on PyTorch's scale, U(-1, 1) / sqrt(fan_in), with
            # kernels kept at least L1_OFFSET from 0 (the kink of the L1 penalty);
            # layer-norm scales near 1 and biases near 0.
            nonlocal start
            size = int(np.prod(leaf.shape))
            u = uniform[start : start + size].reshape(leaf.shape)
            start += size
            name = path[-1].key
            module = path[-2].key
            if module.startswith("norm_"):
                return 1 + 0.2 * u if name == "scale" else 0.2 * u
            fan_in = self._fan_in(module, n_inputs)
            w = u / np.sqrt(fan_in)
            if name == "kernel":
                assert leaf.shape[0] == fan_in
                return np.where(w >= 0, w + L1_OFFSET, w - L1_OFFSET)
            return w

        self.params = jax.tree_util.tree_map_with_path(draw, shapes)
        if model_init:  # the model's own initialisation, cast to float64
            params = jax.jit(self.model.init)(jax.random.key(seed), self.x[:1])
            assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
            self.params = jax.tree.map(lambda a: np.asarray(a.astype(jnp.float64)), params)
        if not layer_norm and not callable(activation) and activation in KINKED:
            self.params = away_from_kinks(self.model, self.params, self.x)
        self.flat = Flat((self.params, self.x))
        self.theta = self.flat.ravel((self.params, self.x))
        assert self.theta.dtype == np.float64

    def _fan_in(self, module: str, n_inputs: int) -> int:
        widths = (n_inputs, *self.model.hidden)
        return widths[-1] if module == "output" else widths[int(module.split("_")[1])]

    def objective(self, params: Any, x: jax.Array) -> jax.Array:
        """The training objective: data loss plus the L1 and L2 penalties."""
        outputs = self.model.apply(params, x)
        penalty = self.l1 * losses.l1_penalty(params) + self.l2 * losses.l2_penalty(params)
        return self.loss_fn(outputs, self.y) + penalty

    def flat_objective(self) -> Callable[[Any], jax.Array]:
        """The jitted objective as a function of one vector holding params and x."""
        return jax.jit(lambda theta: self.objective(*self.flat.unravel(theta)))

    def check(self, *, with_check_grads: bool) -> None:
        """Our finite-difference check and, if asked, ``check_grads`` at order 2."""

        @jax.jit
        def value_and_gradient(theta: jax.Array) -> tuple[jax.Array, jax.Array]:
            # jax.grad with respect to the params and the inputs, as a pytree, then flattened.
            params, x = self.flat.unravel(theta)
            value, grads = jax.value_and_grad(self.objective, argnums=(0, 1))(params, x)
            assert jax.tree.structure(grads) == jax.tree.structure((params, x))
            return value, self.flat.ravel(grads)

        value, gradient = value_and_gradient(self.theta)
        assert value.dtype == gradient.dtype == jnp.float64
        assert np.isfinite(float(value))
        assert float(jnp.max(jnp.abs(gradient))) > 0
        # The same compiled program gives the values for the finite differences.
        assert_gradient_matches(lambda t: value_and_gradient(t)[0], self.theta, gradient)
        if with_check_grads:
            check_grads(self.flat_objective(), (self.theta,), order=2, modes=("fwd", "rev"))


KINKED_IN_NUMPY = {
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
}


def _pre_activations(model: models.MLP, params: Any, x: np.ndarray) -> list[np.ndarray]:
    """Every hidden layer's pre-activations, by hand in NumPy (ReLU-like, no layer norm)."""
    tree = params["params"]
    act = KINKED_IN_NUMPY[model.activation]
    h = np.asarray(x)
    pre = []
    for i, width in enumerate(model.hidden):
        layer = tree[f"hidden_{i}"]
        z = h @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"])
        pre.append(z)
        h = act(z) + h if model.residual and h.shape[-1] == width else act(z)
    return pre


def away_from_kinks(model: models.MLP, params: Any, x: np.ndarray) -> Any:
    """``params`` with hidden biases shifted so that no pre-activation is within MARGIN of 0.

    Layer by layer (a bias moves only its own and later pre-activations), each
    unit's shift is the first of 0, +s, -s, +2s, -2s, ... (s = 2.5 MARGIN) that
    clears all of its pre-activations: with n points at most n candidates are blocked.
    """
    candidates = 2.5 * MARGIN * np.array([0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5], np.float64)
    for i in range(len(model.hidden)):
        z = _pre_activations(model, params, x)[i]  # [n, width]
        clear = np.all(np.abs(z[None, :, :] + candidates[:, None, None]) >= MARGIN, axis=1)
        assert np.all(clear.any(axis=0))
        shift = candidates[np.argmax(clear, axis=0)]
        layer = params["params"][f"hidden_{i}"]
        layer = {**layer, "bias": layer["bias"] + shift}
        params = {"params": {**params["params"], f"hidden_{i}": layer}}
    pre = _pre_activations(model, params, x)
    assert all(np.min(np.abs(z)) >= MARGIN for z in pre)
    if model.hidden:  # the hand-made pre-activations are the model's
        sown = jax.jit(functools.partial(models.hidden_activations, model))(params, x)
        act = KINKED_IN_NUMPY[model.activation]
        for z, a in zip(pre, sown, strict=True):
            np.testing.assert_allclose(act(z), a, rtol=1e-12, atol=1e-12)
    return params


@st.composite
def problems(
    draw: st.DrawFn, activations: tuple[str, ...], layer_norm: bool = False
) -> dict[str, Any]:
    """Keyword arguments of :class:`Problem`; ``layer_norm`` allows drawing layer norm."""
    depth = draw(st.integers(0, 3))
    hidden = tuple(draw(st.lists(st.integers(1, 8), min_size=depth, max_size=depth)))
    loss = draw(st.sampled_from(["cross_entropy", "mse", "binary_cross_entropy"]))
    n_outputs = draw(st.integers(2, 3)) if loss == "cross_entropy" else 1
    return {
        "hidden": hidden,
        "activation": draw(st.sampled_from(activations)),
        "n_inputs": draw(st.integers(1, 3)),
        "n_outputs": n_outputs,
        "n": draw(st.integers(1, 4)),
        "loss": loss,
        "l1": draw(st.sampled_from([0.0, 0.01])),
        "l2": draw(st.sampled_from([0.0, 0.1])),
        "residual": draw(st.booleans()),
        "layer_norm": layer_norm and draw(st.booleans()),
        "seed": draw(seeds),
    }


# ---------------------------------------------------------------------------
# The checks.


@pytest.mark.slow
@settings(max_examples=examples(0.6))
@given(spec=problems(SMOOTH, layer_norm=True))
def test_smooth_networks_match_finite_differences(spec):
    Problem(**spec).check(with_check_grads=False)


@settings(max_examples=examples(0.4))
@given(spec=problems(KINKED))
def test_relu_like_networks_match_finite_differences_away_from_kinks(spec):
    Problem(**spec).check(with_check_grads=False)


@pytest.mark.slow
@settings(max_examples=examples(0.2))
@given(spec=problems(SMOOTH + KINKED))
def test_networks_pass_check_grads_at_order_two(spec):
    Problem(**spec).check(with_check_grads=True)


@pytest.mark.parametrize("activation", SMOOTH + KINKED)
def test_every_activation_matches_finite_differences(activation):
    # Hypothesis draws activations at random; this pins each one down once, on
    # two hidden layers, with both penalties on.
    problem = Problem(
        hidden=(4, 3),
        activation=activation,
        n_inputs=2,
        n_outputs=3,
        n=4,
        loss="cross_entropy",
        l1=0.01,
        l2=0.1,
        seed=11,
    )
    if activation in KINKED:  # both pieces of the activation are exercised
        pre = np.concatenate(
            [z.ravel() for z in _pre_activations(problem.model, problem.params, problem.x)]
        )
        assert np.any(pre > 0)
        assert np.any(pre < 0)
    problem.check(with_check_grads=False)


def test_the_chapter_network_from_its_own_init_matches_finite_differences():
    # Five hidden layers of eight ReLU units and two logits, initialised by
    # model.init (float32) and cast to float64; biases shifted off the kinks.
    problem = Problem(
        hidden=(8,) * 5,
        activation="relu",
        n_inputs=2,
        n_outputs=2,
        n=4,
        loss="cross_entropy",
        l1=0.0,
        l2=0.1,
        seed=0,
        model_init=True,
    )
    assert problem.model == models.MLP()
    problem.check(with_check_grads=False)


def test_layer_norm_and_residual_match_finite_differences():
    # One hidden layer as wide as the input, so that the residual connection applies.
    Problem(
        hidden=(3,),
        activation="tanh",
        n_inputs=3,
        n_outputs=1,
        n=4,
        loss="mse",
        l1=0.01,
        l2=0.1,
        residual=True,
        layer_norm=True,
        seed=3,
    ).check(with_check_grads=False)


# ---------------------------------------------------------------------------
# The checks bite.


@jax.custom_vjp
def tanh_wrong_backward(z: jax.Array) -> jax.Array:
    return jnp.tanh(z)


def _tanh_forward(z: jax.Array) -> tuple[jax.Array, jax.Array]:
    t = jnp.tanh(z)
    return t, t


def _tanh_backward(t: jax.Array, g: jax.Array) -> tuple[jax.Array]:
    return (1.01 * g * (1 - t * t),)  # 1% too large


tanh_wrong_backward.defvjp(_tanh_forward, _tanh_backward)


def _tanh_problem(activation: Callable[[jax.Array], jax.Array]) -> Problem:
    return Problem(
        hidden=(3,),
        activation=activation,
        n_inputs=2,
        n_outputs=1,
        n=3,
        loss="mse",
        l1=0.0,
        l2=0.1,
        seed=5,
    )


def test_a_one_percent_wrong_backward_pass_fails_both_checks():
    right, wrong = _tanh_problem(jnp.tanh), _tanh_problem(tanh_wrong_backward)
    f_right, f_wrong, theta = right.flat_objective(), wrong.flat_objective(), right.theta
    np.testing.assert_array_equal(theta, wrong.theta)
    # The same function, the same point; only the backward pass differs.
    assert float(f_right(theta)) == float(f_wrong(theta))
    assert_gradient_matches(f_right, theta, jax.grad(f_right)(theta))  # the control
    with pytest.raises(AssertionError, match="gradient entry"):
        assert_gradient_matches(f_wrong, theta, jax.grad(f_wrong)(theta))
    # custom_vjp has no forward mode, so check_grads is asked for reverse mode only.
    check_grads(f_right, (theta,), order=1, modes=("rev",))
    with pytest.raises(AssertionError):
        check_grads(f_wrong, (theta,), order=1, modes=("rev",))


@pytest.mark.parametrize("relative_error", [1e-3, 1e-4])
def test_one_wrong_entry_fails_the_checker(relative_error):
    problem = _tanh_problem(jnp.tanh)
    f, theta = problem.flat_objective(), problem.theta
    gradient = np.asarray(jax.grad(f)(theta))
    assert_gradient_matches(f, theta, gradient)
    for entry in (int(np.argmax(np.abs(gradient))), theta.size - 1):  # a weight; an input
        wrong = gradient.copy()
        wrong[entry] *= 1 + relative_error
        with pytest.raises(AssertionError, match=f"gradient entry {entry} "):
            assert_gradient_matches(f, theta, wrong)


def test_finite_differences_of_a_known_function():
    # The checker's own arithmetic: d/dθ (sum θ^3 + sin θ_0) = 3 θ^2 + cos θ_0 e_0.
    theta = np.array([0.3, -1.5, 2.0])

    def f(t):
        return jnp.sum(t**3) + jnp.sin(t[0])

    exact = 3 * theta**2 + np.array([np.cos(0.3), 0.0, 0.0])
    np.testing.assert_allclose(finite_difference_gradient(f, theta), exact, rtol=1e-9)
    assert_gradient_matches(f, theta, exact)
    with pytest.raises(AssertionError, match="gradient entry 0 "):
        assert_gradient_matches(f, theta, exact * np.array([1.01, 1.0, 1.0]))
    with pytest.raises(AssertionError, match="float64"):
        finite_difference_gradient(f, theta.astype(np.float32))
