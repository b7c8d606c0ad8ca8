"""Tests of perceptron.fit_batched: many datasets at once, each exactly as fit alone."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_bit_identical
from hypothesis import given
from hypothesis import strategies as st

from dlvr_jax import data, perceptron

seeds = st.integers(0, 2**32 - 1)
KINDS = ("margin", "noisy", "xor")


def dataset(kind: str, key: jax.Array, n: int, d: int = 2) -> tuple[jax.Array, jax.Array]:
    """One dataset: separable with a margin, noisy (rarely separable) or XOR (never)."""
    if d == 2:
        if kind == "margin":
            made = data.linear(key, n, margin=0.05)
        elif kind == "noisy":
            made = data.linear(key, n, noise=0.3)
        else:
            made = data.xor(key, n)
        return made.x, data.signed(made.y)
    k_x, k_w, k_noise = jax.random.split(key, 3)
    x = jax.random.uniform(k_x, (n, d), minval=-1, maxval=1)
    w = jax.random.normal(k_w, (d,))
    score = x @ w + (0.0 if kind == "margin" else 0.5 * jax.random.normal(k_noise, (n,)))
    return x, jnp.where(score > 0, 1, -1).astype(jnp.int32)


def stack(kinds: list[str], seed: int, n: int, d: int = 2) -> tuple[jax.Array, jax.Array]:
    keys = jax.random.split(jax.random.key(seed), len(kinds))
    pairs = [dataset(kind, k, n, d) for kind, k in zip(kinds, keys, strict=True)]
    return jnp.stack([x for x, _ in pairs]), jnp.stack([y for _, y in pairs])


def assert_each_equals_fit(
    result: perceptron.FitResult, x: jax.Array, y: jax.Array, **kwargs: object
) -> None:
    """Dataset i of ``result`` is, bit for bit, ``fit(x[i], y[i], **kwargs)``."""
    for i in range(x.shape[0]):
        alone = perceptron.fit(x[i], y[i], **kwargs)
        mine = jax.tree.map(lambda leaf, i=i: leaf[i], result)
        assert int(mine.epochs) == int(alone.epochs), f"epochs of dataset {i}"
        assert int(mine.updates) == int(alone.updates), f"updates of dataset {i}"
        assert_bit_identical(mine, alone)


# ---------------------------------------------------------------------------
# The law: the batch equals the datasets run alone.


@given(
    seed=seeds,
    kinds=st.lists(st.sampled_from(KINDS), min_size=5, max_size=5),
    learning_rate=st.sampled_from([0.1, 1.0, 0.37]),
    method=st.sampled_from(["sequential", "lanes"]),
)
def test_fit_batched_equals_fit_on_each_dataset(seed, kinds, learning_rate, method):
    x, y = stack(kinds, seed, 30)
    result = perceptron.fit_batched(x, y, learning_rate=learning_rate, max_epochs=25, method=method)
    assert result.params.w.shape == (5, 2)
    assert result.mistakes_per_epoch.shape == (5, 25)
    assert_each_equals_fit(result, x, y, learning_rate=learning_rate, max_epochs=25)


def test_a_mix_of_separable_and_non_separable_datasets():
    # Fixed mix, so that both kinds of ending are certainly exercised: XOR never
    # converges (it runs to max_epochs) while the margin data converge early.
    kinds = ["margin", "xor", "margin", "margin", "noisy", "margin", "xor"]
    x, y = stack(kinds, 7, 40)
    for method in ("sequential", "lanes"):
        result = perceptron.fit_batched(x, y, max_epochs=60, method=method)
        converged = np.asarray(result.converged)
        epochs = np.asarray(result.epochs)
        assert converged[[0, 2, 3, 5]].all()
        assert not converged[[1, 6]].any()
        assert (epochs[[1, 6]] == 60).all()
        assert epochs[[0, 2, 3, 5]].max() < 60
        assert_each_equals_fit(result, x, y, max_epochs=60)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("d", "method"), [(1, "sequential"), (5, "sequential"), (20, "sequential"), (20, "lanes")]
)
def test_fit_batched_equals_fit_in_other_dimensions(d, method):
    # d = 20 sums scores with jnp.sum instead of the explicit left-to-right chain.
    x, y = stack(["margin", "noisy", "margin"], d, 25, d)
    result = perceptron.fit_batched(x, y, learning_rate=0.5, max_epochs=30, method=method)
    assert result.params.w.shape == (3, d)
    assert_each_equals_fit(result, x, y, learning_rate=0.5, max_epochs=30)


# The tests below use the shapes of the law above (5 datasets of 30 points, 25 epochs)
# or of the mix (7 datasets of 40 points, 60 epochs): they share compiled programs.


def test_vmap_of_fit_is_the_same_batched_program():
    x, y = stack(["margin", "xor", "noisy", "margin", "xor"], 3, 30)
    mapped = jax.jit(jax.vmap(lambda xi, yi: perceptron.fit(xi, yi, max_epochs=25)))(x, y)
    assert_bit_identical(mapped, perceptron.fit_batched(x, y, max_epochs=25))


def test_fit_batched_resumes_from_given_params():
    x, y = stack(["margin", "margin", "xor", "noisy", "xor"], 11, 30)
    first = perceptron.fit_batched(x, y, max_epochs=25)
    again = perceptron.fit_batched(x, y, max_epochs=25, params=first.params)
    np.testing.assert_array_equal(again.epochs[:2], [1, 1])
    np.testing.assert_array_equal(again.updates[:2], [0, 0])
    np.testing.assert_array_equal(again.params.w[:2], first.params.w[:2])
    for i in range(5):
        alone = perceptron.fit(
            x[i], y[i], max_epochs=25, params=jax.tree.map(lambda p, i=i: p[i], first.params)
        )
        assert_bit_identical(jax.tree.map(lambda leaf, i=i: leaf[i], again), alone)


# ---------------------------------------------------------------------------
# The lanes schedule: finished datasets leave between chunks. These tests wrap
# perceptron._advance, the documented test seam of the lanes schedule (one call
# per compiled chunk; see its docstring), to watch the chunks without changing them.


def test_lanes_drop_finished_datasets_between_chunks(monkeypatch):
    calls = []
    advance = perceptron._advance

    def spy(lanes, xp, yp, index, *args, **kwargs):
        lanes, running = advance(lanes, xp, yp, index, *args, **kwargs)
        calls.append((len(index), np.asarray(index), np.asarray(running)))
        return lanes, running

    monkeypatch.setattr(perceptron, "_advance", spy)
    kinds = ["margin"] * 6 + ["xor"]  # one straggler that runs to max_epochs
    x, y = stack(kinds, 5, 40)
    result = perceptron.fit_batched(x, y, max_epochs=60, method="lanes")
    sizes = [size for size, _, _ in calls]
    # Powers of two, halving at least, down to the straggler alone.
    assert sizes[0] == 8
    assert all(s & (s - 1) == 0 for s in sizes)
    assert all(later <= earlier // 2 for earlier, later in itertools.pairwise(sizes))
    assert sizes[-1] == 1
    last_index = calls[-1][1]
    assert last_index.tolist() == [6]
    # Each chunk stopped once at most half of its lanes were running.
    for size, _, running in calls[:-1]:
        assert running.sum() <= size // 2
    assert int(result.epochs[6]) == 60
    assert_each_equals_fit(result, x, y, max_epochs=60)


def test_chunk_epochs_bounds_each_chunk_without_changing_results(monkeypatch):
    x, y = stack(["margin", "xor", "noisy", "margin", "margin"], 2, 30)
    whole = perceptron.fit_batched(x, y, max_epochs=25, method="lanes")
    calls = []
    advance = perceptron._advance

    def spy(*args, **kwargs):
        calls.append(1)
        return advance(*args, **kwargs)

    monkeypatch.setattr(perceptron, "_advance", spy)
    chunked = perceptron.fit_batched(x, y, max_epochs=25, method="lanes", chunk_epochs=2)
    assert len(calls) >= 25 // 2  # the XOR lane alone needs 13 chunks of 2 epochs
    assert_bit_identical(chunked, whole)


def test_float64_inputs_keep_their_dtype():
    with jax.enable_x64(True):
        x = jnp.asarray([[[0.0, 1.0], [1.0, 0.0], [-1.0, -1.0]]] * 2, jnp.float64)
        y = jnp.asarray([[1, 1, -1]] * 2)
        result = perceptron.fit_batched(x, y, max_epochs=5)
        assert result.params.w.dtype == jnp.float64
        assert bool(result.converged.all())


# ---------------------------------------------------------------------------
# Bad input: clear errors naming the argument, raised before any tracing.


@pytest.fixture
def no_tracing(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("validation must happen before any tracing")

    for name in ("_train", "_fit_sequential", "_prepare_lanes", "_advance"):
        monkeypatch.setattr(perceptron, name, forbidden)


X = np.array([[[0.0, 1.0], [1.0, 0.0], [-1.0, -1.0]]] * 2, np.float32)
Y = np.array([[1, 1, -1]] * 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"x": X[0]}, ValueError, r"x must have rank 3, got shape \(3, 2\)"),
        ({"x": X[:0]}, ValueError, r"x must have shape \(datasets, n, d\) with .* >= 1"),
        ({"y": Y[0]}, ValueError, r"y must have rank 2"),
        ({"y": Y[:, :2]}, ValueError, r"y must have one label per row .* got \(2, 2\)"),
        ({"y": Y[:1]}, ValueError, r"shape \(2, 3\) for x of shape \(2, 3, 2\), got \(1, 3\)"),
        ({"y": np.array([[1, 0, 1]] * 2)}, ValueError, "data.signed"),
        ({"y": np.array([[1, 2, -1]] * 2)}, ValueError, r"y must hold labels in \{-1, \+1\}"),
        ({"x": np.where(X == 1.0, np.nan, X)}, ValueError, r"x must be finite, got nan"),
        ({"learning_rate": 0.0}, ValueError, r"learning_rate must be in \(0.0, inf\], got 0.0"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate must be a real number"),
        ({"max_epochs": 0}, ValueError, "max_epochs must be an int >= 1, got 0"),
        ({"max_epochs": 10.0}, TypeError, "max_epochs must be an int"),
        ({"method": "parallel"}, ValueError, r"unknown method 'parallel'; expected one of"),
        ({"chunk_epochs": 0}, ValueError, "chunk_epochs must be an int >= 1, got 0"),
        ({"chunk_epochs": 1.5}, TypeError, "chunk_epochs must be an int"),
        ({"params": (1, 2)}, TypeError, r"params must be a perceptron.Params.*got tuple \(1, 2\)"),
        ({"params": perceptron.init(2)}, ValueError, r"params.w must have rank 2"),
        (
            {"params": perceptron.Params(np.zeros((3, 2)), np.zeros(3))},
            ValueError,
            r"params must have w of shape \(2, 2\) and b of shape \(2,\)",
        ),
    ],
)
def test_fit_batched_rejects_bad_input(no_tracing, kwargs, error, message):
    arguments = {"x": X, "y": Y, **kwargs}
    x, y = arguments.pop("x"), arguments.pop("y")
    with pytest.raises(error, match=message):
        perceptron.fit_batched(x, y, **arguments)


def test_fit_batched_cannot_be_traced():
    with pytest.raises(
        TypeError, match=r"fit_batched runs on the host .* jax.vmap\(perceptron.fit\)"
    ):
        jax.jit(perceptron.fit_batched)(X, Y)
