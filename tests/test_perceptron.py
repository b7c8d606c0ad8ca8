"""Tests of dlvr_jax.perceptron: the PLA's laws, checked rather than assumed."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dlvr_jax import data, perceptron

seeds = st.integers(0, 2**32 - 1)


def separable(seed: int, n: int, d: int, gamma: float) -> tuple[jax.Array, jax.Array, np.ndarray]:
    """Random data separated by a random hyperplane (w*, b*) with geometric margin >= gamma.

    Points are drawn uniformly in a box and pushed away from the hyperplane
    along its normal, so every point is at least ``gamma`` from it.
    """
    k_x, k_w, k_b = jax.random.split(jax.random.key(seed), 3)
    x = np.array(jax.random.uniform(k_x, (n, d), minval=-1, maxval=1), np.float64)
    w = np.array(jax.random.normal(k_w, (d,)), np.float64)
    w /= np.linalg.norm(w)
    b = float(jax.random.uniform(k_b, (), minval=-0.5, maxval=0.5))
    s = x @ w + b
    y = np.where(s > 0, 1, -1)
    x = x + (y * np.maximum(gamma - np.abs(s), 0))[:, None] * w[None, :]
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32), np.append(w, b)


# ---------------------------------------------------------------------------
# Novikoff's theorem.


@given(
    seed=seeds,
    d=st.sampled_from([2, 5]),
    gamma=st.floats(0.02, 0.5),
    learning_rate=st.floats(1e-3, 10.0),
)
def test_novikoff_on_random_separable_data(seed, d, gamma, learning_rate):
    x, y, w_star = separable(seed, 100, d, gamma)
    bound = float(perceptron.mistake_bound(x, y, w_star))
    # (R / gamma)^2 computed independently, in float64, with the bias folded in.
    folded = np.hstack([np.asarray(x, np.float64), np.ones((len(y), 1))])
    radius = np.linalg.norm(folded, axis=1).max()
    gamma_folded = (np.asarray(y) * (folded @ w_star)).min() / np.linalg.norm(w_star)
    assert gamma_folded > 0
    assert bound == pytest.approx((radius / gamma_folded) ** 2, rel=1e-4)
    result = perceptron.fit(x, y, learning_rate=learning_rate, max_epochs=1000)
    assert bool(result.converged)
    assert float(perceptron.accuracy(result.params, x, y)) == 1.0
    assert float(perceptron.margin(result.params, x, y)) > 0
    assert int(result.updates) <= bound
    mistakes = np.asarray(result.mistakes_per_epoch)
    epochs = int(result.epochs)
    assert mistakes.sum() == int(result.updates)
    assert mistakes[epochs - 1] == 0
    assert np.all(mistakes[: epochs - 1] > 0)
    assert np.all(mistakes[epochs:] == 0)


@given(seed=seeds, margin=st.floats(0.05, 0.5), learning_rate=st.floats(1e-3, 10.0))
def test_novikoff_on_the_chapter_data(seed, margin, learning_rate):
    train = data.linear(jax.random.key(seed), 200, margin=margin)
    x, y = train.x, data.signed(train.y)
    # For w* = (1, 1), b* = 0: gamma >= margin and R <= sqrt(3), so (R/gamma)^2 <= 3/margin^2.
    bound = float(perceptron.mistake_bound(x, y, jnp.array([1.0, 1.0])))
    assert bound <= 3 / margin**2 * (1 + 1e-5)
    result = perceptron.fit(x, y, learning_rate=learning_rate)
    assert bool(result.converged)
    assert int(result.updates) <= bound
    np.testing.assert_array_equal(perceptron.predict(result.params, x), y)


def test_mistake_bound_is_infinite_for_a_non_separating_hyperplane():
    x = jnp.array([[1.0, 0.0], [-1.0, 0.0]])
    y = jnp.array([1, -1])
    assert math.isinf(float(perceptron.mistake_bound(x, y, jnp.array([-1.0, 0.0]))))
    assert float(perceptron.mistake_bound(x, y, jnp.array([1.0, 0.0, 0.0]))) == pytest.approx(2.0)
    params = perceptron.Params(jnp.array([2.0, 0.0]), jnp.array(0.0))
    assert float(perceptron.mistake_bound(x, y, params)) == pytest.approx(2.0)
    assert float(perceptron.margin(params, x, y)) == pytest.approx(1.0)


@given(seed=seeds, power=st.integers(-6, 6))
def test_learning_rate_only_scales_the_weights_from_zero(seed, power):
    # From w = 0 every iterate is eta times the eta = 1 iterate; with eta = 2^k the
    # scaling is exact in floating point, so the runs must agree bit for bit.
    train = data.linear(jax.random.key(seed), 64)
    x, y = train.x, data.signed(train.y)
    unit = perceptron.fit(x, y, learning_rate=1.0)
    scaled = perceptron.fit(x, y, learning_rate=2.0**power)
    assert int(unit.updates) == int(scaled.updates)
    np.testing.assert_array_equal(unit.mistakes_per_epoch, scaled.mistakes_per_epoch)
    np.testing.assert_array_equal(scaled.params.w, unit.params.w * 2.0**power)


# ---------------------------------------------------------------------------
# The update rule and prediction.


def test_step_is_the_chapter_update():
    params = perceptron.Params(jnp.array([0.5, -1.0]), jnp.array(0.25))
    x = jnp.array([2.0, 1.0])  # score 0.25 > 0: predicted +1
    same = perceptron.step(params, x, 1, learning_rate=0.1)
    np.testing.assert_array_equal(same.w, params.w)  # correct: no change
    moved = perceptron.step(params, x, -1, learning_rate=0.1)
    # w <- w + eta (y - y_hat) x = w + 0.1 * (-2) * x
    np.testing.assert_allclose(moved.w, [0.5 - 0.4, -1.0 - 0.2])
    np.testing.assert_allclose(moved.b, 0.25 - 0.2)


def test_predict_gives_minus_one_at_zero_score():
    params = perceptron.init(2)
    np.testing.assert_array_equal(perceptron.predict(params, jnp.ones((3, 2))), [-1, -1, -1])
    assert perceptron.predict(params, jnp.ones(2)).dtype == jnp.int32


@given(seed=seeds)
def test_fit_matches_a_plain_python_transcription_of_the_chapter(seed):
    train = data.linear(jax.random.key(seed), 40, noise=0.2)
    x = np.asarray(train.x)
    y = np.asarray(data.signed(train.y))
    w1 = w2 = b = np.float32(0)
    eta = np.float32(0.1)
    epochs = updates = 0
    for _ in range(30):
        epochs += 1
        converged = True
        for (x1, x2), target in zip(x, y, strict=True):
            prediction = 1 if w1 * x1 + w2 * x2 + b > 0 else -1
            if prediction != target:
                delta = eta * np.float32(target - prediction)
                w1, w2, b = w1 + delta * x1, w2 + delta * x2, b + delta
                converged = False
                updates += 1
        if converged:
            break
    result = perceptron.fit(train.x, data.signed(train.y), learning_rate=0.1, max_epochs=30)
    assert int(result.epochs) == epochs
    assert int(result.updates) == updates
    np.testing.assert_allclose(result.params.w, [w1, w2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.params.b, b, rtol=1e-5, atol=1e-6)


def test_fit_resumes_from_given_params():
    train = data.linear(jax.random.key(3), 100, margin=0.05)
    x, y = train.x, data.signed(train.y)
    done = perceptron.fit(x, y)
    again = perceptron.fit(x, y, params=done.params)
    assert int(again.epochs) == 1
    assert int(again.updates) == 0
    np.testing.assert_array_equal(again.params.w, done.params.w)


# ---------------------------------------------------------------------------
# Transforms.


# One jitted function for every example: a new jax.jit per example compiled anew.
FIT_6 = functools.partial(perceptron.fit, learning_rate=0.5, max_epochs=6)
JIT_FIT_6 = jax.jit(FIT_6)


@given(seed=seeds)
def test_fit_under_jit_equals_fit_without_jit(seed):
    train = data.linear(jax.random.key(seed), 16, noise=0.3)
    x, y = train.x, data.signed(train.y)
    fit = FIT_6
    compiled = JIT_FIT_6(x, y)
    with jax.disable_jit():
        eager = fit(x, y)
    for got, want in zip(jax.tree.leaves(compiled), jax.tree.leaves(eager), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert int(compiled.updates) == int(eager.updates)


# vmap of fit, traced and compiled once for all examples (an eager vmap traces the
# batched program anew at every call).
VMAP_FIT_40 = jax.jit(jax.vmap(lambda xi, yi: perceptron.fit(xi, yi, max_epochs=40)))


@given(seed=seeds)
def test_vmap_fit_equals_fitting_each_dataset_alone(seed):
    keys = jax.random.split(jax.random.key(seed), 6)
    # Half separable, half noisy (some of those never converge): lanes finish at
    # different epochs and must not disturb each other.
    stacks = [data.linear(k, 50, noise=0.0 if i % 2 else 0.3) for i, k in enumerate(keys)]
    x = jnp.stack([s.x for s in stacks])
    y = jnp.stack([data.signed(s.y) for s in stacks])
    mapped = VMAP_FIT_40(x, y)
    for i in range(len(keys)):
        alone = perceptron.fit(x[i], y[i], max_epochs=40)
        for got, want in zip(jax.tree.leaves(mapped), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-6)
        assert int(mapped.epochs[i]) == int(alone.epochs)
        assert int(mapped.updates[i]) == int(alone.updates)


def test_vmap_over_learning_rates():
    train = data.linear(jax.random.key(0), 64, noise=0.2)
    x, y = train.x, data.signed(train.y)
    rates = jnp.array([0.01, 0.1, 1.0])
    mapped = jax.vmap(lambda r: perceptron.fit(x, y, learning_rate=r, max_epochs=20))(rates)
    for i, rate in enumerate(rates.tolist()):
        alone = perceptron.fit(x, y, learning_rate=rate, max_epochs=20)
        np.testing.assert_allclose(mapped.params.w[i], alone.params.w, rtol=1e-6)


# ---------------------------------------------------------------------------
# XOR and the pocket algorithm.


def _xor_certificate(x: np.ndarray, y: np.ndarray) -> bool:
    """True if two class-0 points and two class-1 points have crossing segments.

    Crossing segments mean the convex hulls of the classes intersect, so no
    hyperplane separates them: a proof that the sample is not separable.
    """
    zeros, ones = x[y == 0], x[y == 1]
    if len(zeros) < 2 or len(ones) < 2:
        return False
    a, c = zeros[np.argmax(zeros.sum(1))], zeros[np.argmin(zeros.sum(1))]
    p, q = ones[np.argmin(ones[:, 0] - ones[:, 1])], ones[np.argmax(ones[:, 0] - ones[:, 1])]

    def side(o, u, v):
        return np.sign((u[0] - o[0]) * (v[1] - o[1]) - (u[1] - o[1]) * (v[0] - o[0]))

    return side(a, c, p) * side(a, c, q) < 0 and side(p, q, a) * side(p, q, c) < 0


@given(seed=seeds)
def test_xor_does_not_converge_and_pocket_beats_the_last_iterate(seed):
    train = data.xor(jax.random.key(seed), 64)
    assume(_xor_certificate(np.asarray(train.x), np.asarray(train.y)))
    x, y = train.x, data.signed(train.y)
    result = perceptron.fit(x, y, max_epochs=100)
    assert not bool(result.converged)
    assert int(result.epochs) == 100
    last = float(perceptron.accuracy(result.params, x, y))
    for every_update in (False, True):
        kept = perceptron.pocket(x, y, max_epochs=100, every_update=every_update)
        assert float(kept.accuracy) >= last
        assert float(kept.accuracy) == pytest.approx(float(perceptron.accuracy(kept.params, x, y)))
        # The pocket runs the very same PLA.
        np.testing.assert_array_equal(kept.last_params.w, result.params.w)
        assert int(kept.updates) == int(result.updates)


def gallant_pocket(x, y, learning_rate, max_epochs, every_update=False):
    """Gallant's pocket algorithm with ratchet, transcribed literally in plain Python.

    After every sample: if the current weights have a longer run of consecutive
    correct classifications than the pocket's best run, and (ratchet) classify
    more training points correctly, they go into the pocket. With
    ``every_update`` the run test is dropped. The last iterate competes at the end.
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    w, b = np.zeros(x.shape[1], np.float32), np.float32(0)
    eta = np.float32(learning_rate)

    def correct(w, b):
        return int(np.sum(np.where(x @ w + b > 0, 1, -1) == y))

    pocket, pocket_correct, pocket_run = (w.copy(), b), correct(w, b), 0
    run, holding = 0, True  # holding: the current weights are the pocket's
    for _ in range(max_epochs):
        mistakes = 0
        for xi, yi in zip(x, y, strict=True):
            prediction = 1 if xi @ w + b > 0 else -1
            if prediction != yi:
                delta = eta * np.float32(yi - prediction)
                w, b = w + delta * xi, b + delta
                mistakes += 1
                run, holding = 0, False
            else:
                run += 1
                if holding:
                    pocket_run = max(pocket_run, run)
            if not holding and (run > pocket_run or every_update):
                now = correct(w, b)
                if now > pocket_correct:
                    pocket, pocket_correct, pocket_run, holding = (w.copy(), b), now, run, True
        if mistakes == 0:
            break
    if correct(w, b) > pocket_correct:
        pocket, pocket_correct = (w.copy(), b), correct(w, b)
    return pocket, pocket_correct / len(y)


@given(seed=seeds, every_update=st.booleans())
def test_pocket_matches_a_plain_python_transcription_of_gallant(seed, every_update):
    train = data.xor(jax.random.key(seed), 48)
    x, y = train.x, data.signed(train.y)
    (w, b), accuracy = gallant_pocket(x, y, 0.1, 12, every_update)
    kept = perceptron.pocket(x, y, learning_rate=0.1, max_epochs=12, every_update=every_update)
    np.testing.assert_allclose(kept.params.w, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kept.params.b, b, rtol=1e-5, atol=1e-6)
    assert float(kept.accuracy) == pytest.approx(accuracy)


def test_gallant_pocket_beats_the_last_iterate_on_the_readme_xor():
    train = data.xor(jax.random.key(0), 200)
    x, y = train.x, data.signed(train.y)
    last = perceptron.fit(x, y)
    kept = perceptron.pocket(x, y)
    better = perceptron.pocket(x, y, every_update=True)
    assert float(kept.accuracy) > float(perceptron.accuracy(last.params, x, y)) + 0.05
    assert float(better.accuracy) >= float(kept.accuracy)
    assert float(better.accuracy) >= 0.7  # the best line for XOR gets about 3/4 right


def test_pocket_every_update_keeps_the_best_iterate():
    train = data.xor(jax.random.key(0), 60)
    x, y = np.asarray(train.x), np.asarray(data.signed(train.y))
    params, best = perceptron.init(2), 0.0
    for _ in range(5):
        for xi, yi in zip(x, y, strict=True):
            params = perceptron.step(params, xi, yi, learning_rate=0.1)
            best = max(best, float(perceptron.accuracy(params, x, y)))
    kept = perceptron.pocket(x, y, max_epochs=5, every_update=True)
    assert float(kept.accuracy) == pytest.approx(best)
    gallant = perceptron.pocket(x, y, max_epochs=5)
    assert float(gallant.accuracy) <= best + 1e-7


def test_pocket_on_separable_data_is_perfect():
    train = data.linear(jax.random.key(1), 100, margin=0.05)
    x, y = train.x, data.signed(train.y)
    kept = perceptron.pocket(x, y)
    assert bool(kept.converged)
    assert float(kept.accuracy) == 1.0


# ---------------------------------------------------------------------------
# Bad input: clear errors naming the argument, raised before any tracing.


@pytest.fixture
def no_tracing(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("validation must happen before any tracing")

    monkeypatch.setattr(perceptron, "_train", forbidden)


X = np.array([[0.0, 1.0], [1.0, 0.0], [-1.0, -1.0]], np.float32)
Y = np.array([1, 1, -1])


@pytest.mark.parametrize("function", [perceptron.fit, perceptron.pocket])
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"x": X[0]}, ValueError, r"x must have rank 2, got shape \(2,\)"),
        ({"x": X[None]}, ValueError, "x must have rank 2"),
        ({"y": Y[:2]}, ValueError, "y must have one label per row of x: x has 3 rows, y has 2"),
        ({"y": np.array([1, 0, 1])}, ValueError, "data.signed"),
        ({"y": np.array([1, 2, -1])}, ValueError, r"y must hold labels in \{-1, \+1\}"),
        (
            {"x": np.array([[0, np.nan], [1, 0], [1, 1]])},
            ValueError,
            r"x must be finite, got nan at index \[0, 1\]",
        ),
        ({"x": np.array([[0, np.inf], [1, 0], [1, 1]])}, ValueError, "x must be finite"),
        ({"learning_rate": 0.0}, ValueError, r"learning_rate must be in \(0.0, inf\], got 0.0"),
        ({"learning_rate": -1}, ValueError, "learning_rate must be in"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate must be a real number"),
        ({"max_epochs": 0}, ValueError, "max_epochs must be an int >= 1, got 0"),
        ({"max_epochs": 10.0}, TypeError, "max_epochs must be an int"),
        ({"params": (1, 2)}, TypeError, r"params must be a perceptron.Params.*got tuple \(1, 2\)"),
        ({"params": perceptron.init(3)}, ValueError, r"params must have w of shape \(2,\)"),
    ],
)
def test_training_rejects_bad_input(no_tracing, function, kwargs, error, message):
    arguments = {"x": X, "y": Y, **kwargs}
    x, y = arguments.pop("x"), arguments.pop("y")
    with pytest.raises(error, match=message):
        function(x, y, **arguments)


def test_init_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_features must be an int >= 1, got 0"):
        perceptron.init(0)
    with pytest.raises(TypeError, match="n_features must be an int"):
        perceptron.init(2.0)


def test_mistake_bound_rejects_a_wrong_sized_w_star():
    with pytest.raises(ValueError, match="w_star must be Params or a vector of length 2"):
        perceptron.mistake_bound(X, Y, jnp.ones(5))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: perceptron.step(perceptron.init(2), X[0], 0, learning_rate=0.1),
            ValueError,
            "y_i must be -1 or \\+1, got 0",
        ),
        (
            lambda: perceptron.step(perceptron.init(2), X[0], 1, learning_rate=-1),
            ValueError,
            "learning_rate must be in",
        ),
        (
            lambda: perceptron.step(perceptron.init(3), X[0], 1, learning_rate=0.1),
            ValueError,
            r"params must have w of shape \(2,\)",
        ),
        (
            lambda: perceptron.accuracy(perceptron.init(2), X, np.array([1, 0, 1])),
            ValueError,
            "data.signed",
        ),
        (
            lambda: perceptron.predict(perceptron.init(2), np.ones((3, 5))),
            ValueError,
            r"params must have w of shape \(5,\)",
        ),
        (
            lambda: perceptron.predict((1.0, 2.0), X),
            TypeError,
            r"params must be a perceptron.Params\(w, b\), got tuple \(1.0, 2.0\)",
        ),
        (
            lambda: perceptron.pocket(X, Y, every_update="yes"),
            TypeError,
            "every_update must be a bool, got 'yes'",
        ),
        (lambda: perceptron.margin((1.0, 2.0), X, Y), TypeError, "params must be a perceptron"),
        (
            lambda: perceptron.fit(
                X, Y, params=perceptron.Params(jnp.array([np.nan, 0.0]), jnp.array(0.0))
            ),
            ValueError,
            "params.w must be finite",
        ),
        (
            lambda: perceptron.fit(X, Y, learning_rate=float("inf")),
            ValueError,
            "learning_rate must be a finite number",
        ),
    ],
)
def test_every_public_function_checks_its_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_float64_inputs_and_params_keep_their_dtype():
    with jax.enable_x64(True):
        x = jnp.asarray(X, jnp.float64)
        result = perceptron.fit(x, Y, params=perceptron.init(2))  # float32 params, float64 x
        assert result.params.w.dtype == jnp.float32
        wide = perceptron.fit(x, Y)
        assert wide.params.w.dtype == jnp.float64
        assert bool(wide.converged)
        stepped = perceptron.step(perceptron.init(2), x[0], -1, learning_rate=0.1)
        assert stepped.w.dtype == jnp.float32


def test_params_given_as_lists_are_converted():
    params = perceptron.Params([1.0, 1.0], 0.0)
    np.testing.assert_array_equal(perceptron.predict(params, X), [1, 1, -1])
