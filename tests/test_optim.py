"""Tests of dlvr_jax.optim.optimizer: thin names for Optax transformations, never re-implemented.

Every optimizer must make exactly the updates of its Optax alias, bit for bit.
The descent toolkit is tested in test_descent.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlvr_jax import descent, optim

LEARNING_RATE = 0.05

# The Optax alias, with Optax's own defaults, that each name must be.
ALIASES = {
    "sgd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda lr: optax.rmsprop(lr),
    "adagrad": lambda lr: optax.adagrad(lr),
    "adam": lambda lr: optax.adam(lr),
    "adamw": lambda lr: optax.adamw(lr),
}

# An ill-conditioned quadratic with a pytree of params: f = sum_i a_i (w_i - c_i)^2 / 2.
SCALES = {"w": jnp.array([[1.0, 10.0], [0.1, 3.0]]), "b": jnp.array([5.0, 0.5, 2.0])}
CENTRES = {"w": jnp.array([[1.0, -2.0], [0.5, 0.0]]), "b": jnp.array([-1.0, 3.0, 0.25])}
START = jax.tree.map(jnp.zeros_like, SCALES)


def quadratic(params):
    return sum(
        jnp.sum(a * (p - c) ** 2) / 2
        for a, p, c in zip(
            jax.tree.leaves(SCALES), jax.tree.leaves(params), jax.tree.leaves(CENTRES), strict=True
        )
    )


def run(tx: optax.GradientTransformation, steps: int = 5) -> list:
    """The params after each of ``steps`` optimizer steps on the quadratic."""
    params, state = START, tx.init(START)
    path = []
    for _ in range(steps):
        grads = jax.grad(quadratic)(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        path.append(params)
    return path


def assert_same_path(first: list, second: list) -> None:
    for a, b in zip(first, second, strict=True):
        jax.tree.map(np.testing.assert_array_equal, a, b)


def differs(first: list, second: list) -> bool:
    """Whether two paths differ anywhere (adam and adamw differ by ~1e-6 at weight decay 1e-4)."""
    return any(
        not np.array_equal(a, b)
        for p, q in zip(first, second, strict=True)
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(q), strict=True)
    )


def test_names():
    assert optim.names() == tuple(sorted(ALIASES))


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_each_optimizer_is_its_optax_alias(name):
    tx = optim.optimizer(name, LEARNING_RATE)
    assert isinstance(tx, optax.GradientTransformation)
    path = run(tx)
    assert_same_path(path, run(ALIASES[name](LEARNING_RATE)))
    assert quadratic(path[-1]) < quadratic(START)  # it descends
    # ... and is not some other optimizer of the list (the comparison has teeth).
    for other in ALIASES:
        if other != name:
            assert differs(path, run(ALIASES[other](LEARNING_RATE))), other


def test_a_jitted_step_is_the_alias_step():
    tx, alias = optim.optimizer("adam", 1e-3), optax.adam(1e-3)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(jax.grad(quadratic)(params), state, params)
        return optax.apply_updates(params, updates), state

    params, _ = step(START, tx.init(START))
    updates, _ = alias.update(jax.grad(quadratic)(START), alias.init(START), START)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
        params,
        optax.apply_updates(START, updates),
    )


@pytest.mark.parametrize(
    ("name", "options", "alias"),
    [
        ("momentum", {"momentum": 0.5}, lambda lr: optax.sgd(lr, momentum=0.5)),
        (
            "nesterov",
            {"momentum": 0.5},
            lambda lr: optax.sgd(lr, momentum=0.5, nesterov=True),
        ),
        ("rmsprop", {"decay": 0.5, "eps": 1e-3}, lambda lr: optax.rmsprop(lr, decay=0.5, eps=1e-3)),
        ("rmsprop", {"momentum": 0.5}, lambda lr: optax.rmsprop(lr, momentum=0.5)),
        (
            "adagrad",
            {"initial_accumulator_value": 1.0},
            lambda lr: optax.adagrad(lr, initial_accumulator_value=1.0),
        ),
        ("adam", {"b1": 0.5, "b2": 0.9}, lambda lr: optax.adam(lr, b1=0.5, b2=0.9)),
        ("adam", {"eps": 1.0}, lambda lr: optax.adam(lr, eps=1.0)),
        ("adamw", {"weight_decay": 0.5}, lambda lr: optax.adamw(lr, weight_decay=0.5)),
    ],
)
def test_options_pass_through(name, options, alias):
    path = run(optim.optimizer(name, LEARNING_RATE, **options))
    assert_same_path(path, run(alias(LEARNING_RATE)))
    assert differs(path, run(optim.optimizer(name, LEARNING_RATE)))


def test_learning_rate_can_be_a_schedule():
    schedule = optax.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)
    for name in ("sgd", "adam"):
        path = run(optim.optimizer(name, schedule))
        assert_same_path(path, run(ALIASES[name](schedule)))
        assert differs(path, run(optim.optimizer(name, 0.1)))
    # sgd with the schedule: step t moves by 0.1 * 0.5^t times the gradient.
    params, state = START, optim.optimizer("sgd", schedule).init(START)
    tx = optim.optimizer("sgd", schedule)
    for t in range(3):
        grads = jax.grad(quadratic)(params)
        updates, state = tx.update(grads, state, params)
        jax.tree.map(
            lambda u, g, t=t: np.testing.assert_allclose(u, -0.1 * 0.5**t * g, rtol=1e-6),
            updates,
            grads,
        )
        params = optax.apply_updates(params, updates)


def test_clip_norm_bounds_the_update():
    # Gradients of global norm 50: sgd's step is clipped to learning_rate * clip_norm.
    grads = {"w": jnp.full((2, 2), 20.0), "b": jnp.array([10.0, 10.0, 10.0])}
    norm = float(optax.tree.norm(grads))
    tx = optim.optimizer("sgd", 0.1, clip_norm=1.0)
    updates, _ = tx.update(grads, tx.init(START), START)
    assert float(optax.tree.norm(updates)) == pytest.approx(0.1 * 1.0, rel=1e-6)
    # The direction is kept: the update is -lr * clip_norm * g / |g|.
    jax.tree.map(
        lambda u, g: np.testing.assert_allclose(u, -0.1 * g / norm, rtol=1e-6), updates, grads
    )
    plain = optim.optimizer("sgd", 0.1)
    unclipped, _ = plain.update(grads, plain.init(START), START)
    assert float(optax.tree.norm(unclipped)) == pytest.approx(0.1 * norm, rel=1e-6)
    # Small gradients pass unchanged; and clipping composes with any optimizer as Optax does.
    small = jax.tree.map(lambda g: g / 1000, grads)
    updates, _ = tx.update(small, tx.init(START), START)
    jax.tree.map(lambda u, g: np.testing.assert_allclose(u, -0.1 * g, rtol=1e-6), updates, small)
    chained = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.01))
    assert_same_path(run(optim.optimizer("adam", 0.01, clip_norm=0.5)), run(chained))


def test_same_arguments_give_the_same_object():
    # So that jitted training holding the optimizer as static data is not recompiled.
    assert optim.optimizer("adam", 1e-3) is optim.optimizer("adam", 1e-3)
    assert optim.optimizer("adam", 1e-3) is optim.optimizer("adam", learning_rate=0.001)
    assert optim.optimizer("sgd", 1) is optim.optimizer("sgd", 1.0)
    assert optim.optimizer("adam", 1e-3, b1=0.8, b2=0.9) is optim.optimizer(
        "adam", 1e-3, b2=0.9, b1=0.8
    )
    assert optim.optimizer("adam", 1e-3, clip_norm=1.0) is optim.optimizer(
        "adam", 1e-3, clip_norm=1.0
    )
    schedule = optax.linear_schedule(1.0, 0.1, 10)
    assert optim.optimizer("sgd", schedule) is optim.optimizer("sgd", schedule)
    # Different arguments, different objects.
    assert optim.optimizer("adam", 1e-3) is not optim.optimizer("adam", 1e-2)
    assert optim.optimizer("adam", 1e-3) is not optim.optimizer("adamw", 1e-3)
    assert optim.optimizer("adam", 1e-3) is not optim.optimizer("adam", 1e-3, clip_norm=1.0)
    assert optim.optimizer("momentum", 0.1) is not optim.optimizer("momentum", 0.1, momentum=0.5)


def test_an_equal_optimizer_does_not_retrace_a_jitted_function():
    traces = []

    def step(tx, params):
        traces.append(None)
        updates, _ = tx.update(jax.grad(quadratic)(params), tx.init(params), params)
        return optax.apply_updates(params, updates)

    jitted = jax.jit(step, static_argnums=0)
    first = jitted(optim.optimizer("adam", 1e-3), START)
    second = jitted(optim.optimizer("adam", 1e-3), START)
    assert len(traces) == 1
    jax.tree.map(np.testing.assert_array_equal, first, second)
    jitted(optax.adam(1e-3), START)  # a fresh Optax object is a new static argument
    assert len(traces) == 2


def test_a_traced_learning_rate_works_under_vmap():
    # A sweep over learning rates: the rate is a tracer, which cannot be cached, so a
    # fresh transformation is built; each lane is sgd at its own rate.
    grads = jax.grad(quadratic)(START)

    def update(learning_rate):
        tx = optim.optimizer("sgd", learning_rate)
        updates, _ = tx.update(grads, tx.init(START), START)
        return updates

    rates = jnp.array([0.1, 0.01, 1.0])
    updates = jax.vmap(update)(rates)
    for i, rate in enumerate(rates):
        jax.tree.map(
            lambda u, g, i=i, rate=rate: np.testing.assert_allclose(u[i], -rate * g, rtol=1e-6),
            updates,
            grads,
        )


# ---------------------------------------------------------------------------
# Checks at the door.


def test_unknown_name():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamax'.*'adam'"):
        optim.optimizer("adamax", 1e-3)
    with pytest.raises(ValueError, match="'Adam'"):
        optim.optimizer("Adam", 1e-3)
    with pytest.raises(TypeError, match="optimizer"):
        optim.optimizer(optax.adam, 1e-3)


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(TypeError, match=r"'momentum'.*\['nesterov'\].*\['momentum'\]"):
        optim.optimizer("momentum", 0.1, nesterov=True)
    with pytest.raises(TypeError) as info:
        optim.optimizer("adam", 1e-3, beta1=0.9)
    for word in ("'beta1'", "'b1'", "'b2'", "'eps'"):
        assert word in str(info.value)
    with pytest.raises(TypeError, match=r"\[\]"):
        optim.optimizer("sgd", 0.1, momentum=0.9)  # plain sgd takes no options


@pytest.mark.parametrize("learning_rate", [0.0, -1e-3, float("nan")])
def test_learning_rate_must_be_positive(learning_rate):
    with pytest.raises(ValueError, match="learning_rate"):
        optim.optimizer("adam", learning_rate)


@pytest.mark.parametrize("learning_rate", ["0.1", True, None, jnp.ones(2)])
def test_learning_rate_must_be_a_number_or_a_schedule(learning_rate):
    with pytest.raises(TypeError, match="learning_rate"):
        optim.optimizer("adam", learning_rate)


@pytest.mark.parametrize("clip_norm", [0.0, -1.0])
def test_clip_norm_must_be_positive(clip_norm):
    with pytest.raises(ValueError, match="clip_norm"):
        optim.optimizer("sgd", 0.1, clip_norm=clip_norm)


def test_optim_lists_only_the_factory_and_knows_nothing_of_descent():
    # The descent toolkit's names lived here once (never released): they are descent's.
    assert optim.__all__ == ["injected", "names", "optimizer", "with_learning_rate"]
    with pytest.raises(AttributeError, match="has no attribute 'sgd_path'"):
        optim.sgd_path  # noqa: B018
    assert callable(descent.sgd_path)


@pytest.mark.parametrize("name", optim.names())
def test_injected_with_a_learning_rate_steps_as_the_plain_optimizer(name):
    # One cached object for every learning rate: compiled training holding it as
    # static data is not recompiled when the rate changes, and it steps the same bits.
    tx = optim.injected(name, clip_norm=1.0)
    assert tx is optim.injected(name, clip_norm=1.0)
    params = {"w": jnp.array([0.5, -1.5, 2.0]), "b": jnp.array(0.25)}
    grads = {"w": jnp.array([0.3, -0.2, 4.0]), "b": jnp.array(-1.0)}
    for rate in (0.01, 0.3):
        plain = optim.optimizer(name, rate, clip_norm=1.0)
        plain_state = plain.init(params)
        state = optim.with_learning_rate(tx.init(params), rate)
        p1, p2 = params, params
        for _ in range(3):
            u1, plain_state = plain.update(grads, plain_state, p1)
            u2, state = tx.update(grads, state, p2)
            p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
        for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_injected_checks_its_arguments():
    with pytest.raises(ValueError, match="optimizer"):
        optim.injected("nope")
    with pytest.raises(ValueError, match="clip_norm"):
        optim.injected("sgd", clip_norm=0.0)
    with pytest.raises(TypeError, match="unknown option"):
        optim.injected("sgd", momentum=0.9)
