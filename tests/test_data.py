"""Tests of dlvr_jax.data: the generators' laws, transforms, utilities and checks."""

from __future__ import annotations

import functools
import itertools
import math
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats  # a dependency of jax

from dlvr_jax import _validate as check
from dlvr_jax import data

CLASSIFICATION = data.names("classification")
REGRESSION = data.names("regression")
seeds = st.integers(0, 2**32 - 1)
sizes = st.sampled_from([1, 2, 7, 64])


def test_registry_lists_every_generator():
    assert set(data.names()) == {
        "linear",
        "circle",
        "xor",
        "gaussian",
        "spiral",
        "moons",
        "plane",
        "multi_gaussian",
    }
    assert set(CLASSIFICATION) | set(REGRESSION) == set(data.names())
    assert data.task("plane") == "regression"
    assert data.task("circle") == "classification"


@given(seed=seeds, n=sizes, name=st.sampled_from(data.names()))
def test_shapes_and_dtypes(seed, n, name):
    x, y = data.make(name, jax.random.key(seed), n)
    assert x.shape == (n, 2)
    assert x.dtype == jnp.float32
    assert y.shape == (n,)
    if name in REGRESSION:
        assert y.dtype == jnp.float32
    else:
        assert y.dtype == jnp.int32
        assert set(np.unique(y).tolist()) <= {0, 1}
    assert np.all(np.isfinite(x))


@given(seed=seeds, name=st.sampled_from(data.names()))
def test_same_key_same_bits_different_key_different_data(seed, name):
    first = data.make(name, jax.random.key(seed), 64)
    again = data.make(name, jax.random.key(seed), 64)
    other = data.make(name, jax.random.key(seed ^ 1), 64)
    np.testing.assert_array_equal(first.x.view(np.uint32), again.x.view(np.uint32))
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.array_equal(first.x, other.x)


def test_legacy_uint32_keys_are_accepted():
    typed = data.circle(jax.random.key(3), 10)
    legacy = data.circle(jax.random.PRNGKey(3), 10)
    np.testing.assert_array_equal(typed.x, legacy.x)


@given(seed=seeds)
def test_linear_label_rule(seed):
    x, y = data.linear(jax.random.key(seed), 200)
    np.testing.assert_array_equal(y, (x[:, 0] + x[:, 1] > 0).astype(np.int32))
    assert np.all(np.abs(x) < 1)


@given(seed=seeds, margin=st.floats(0.0, 1.0))
def test_linear_margin_is_respected(seed, margin):
    x, y = data.linear(jax.random.key(seed), 64, margin=margin)
    distance = np.abs(np.asarray(x, np.float64).sum(axis=1)) / math.sqrt(2)
    assert distance.min() >= margin - 1e-6
    np.testing.assert_array_equal(y, (x[:, 0] + x[:, 1] > 0).astype(np.int32))


@given(seed=seeds)
def test_circle_label_rule(seed):
    x, y = data.circle(jax.random.key(seed), 200)
    radius = np.linalg.norm(np.asarray(x, np.float64), axis=1)
    assert radius.max() <= 2 + 1e-6
    clear = np.abs(radius - 1) > 1e-5  # float32 rounding of r cos θ, r sin θ
    np.testing.assert_array_equal(y[clear], (radius[clear] >= 1).astype(np.int32))


@given(seed=seeds)
def test_xor_label_rule(seed):
    x, y = data.xor(jax.random.key(seed), 200)
    np.testing.assert_array_equal(y, ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int32))


@given(seed=seeds)
def test_regression_targets(seed):
    x, y = data.plane(jax.random.key(seed), 200)
    np.testing.assert_allclose(y, (x[:, 0] + x[:, 1]) / 2, rtol=1e-6, atol=1e-7)
    _, bumps = data.multi_gaussian(jax.random.key(seed), 200)
    assert np.all(np.abs(bumps) <= 1)
    assert np.any(bumps > 0.2)
    assert np.any(bumps < -0.2)


@pytest.mark.parametrize("name", ["linear", "circle", "xor"])
def test_rule_based_classes_are_balanced(name):
    # Each label is a fair coin: with n = 4000 the rate is within 0.05 of 1/2 at
    # 6 standard deviations (0.0079); checked over several keys.
    for seed in range(5):
        y = data.make(name, jax.random.key(seed), 4000).y
        assert abs(float(y.mean()) - 0.5) < 0.05, (name, seed)


@given(
    seed=seeds,
    n=st.sampled_from([1, 2, 7, 64, 201]),
    name=st.sampled_from(["gaussian", "spiral", "moons"]),
)
def test_sampled_classes_are_exactly_balanced(seed, n, name):
    y = data.make(name, jax.random.key(seed), n).y
    assert int(y.sum()) == n // 2


@given(seed=seeds, noise=st.floats(0.01, 1.0), name=st.sampled_from(CLASSIFICATION))
def test_noise_jitters_points_but_keeps_clean_labels(seed, noise, name):
    clean = data.make(name, jax.random.key(seed), 64)
    noisy = data.make(name, jax.random.key(seed), 64, noise=noise)
    np.testing.assert_array_equal(clean.y, noisy.y)
    shift = np.asarray(noisy.x - clean.x)
    assert np.any(shift != 0)
    assert np.abs(shift).max() < 8 * noise  # Gaussian jitter, not a different draw


@given(seed=seeds, noise=st.floats(0.01, 1.0), name=st.sampled_from(REGRESSION))
def test_regression_noise_is_on_targets(seed, noise, name):
    clean = data.make(name, jax.random.key(seed), 64)
    noisy = data.make(name, jax.random.key(seed), 64, noise=noise)
    np.testing.assert_array_equal(clean.x, noisy.x)
    assert np.any(clean.y != noisy.y)


@pytest.mark.slow
@pytest.mark.parametrize("name", data.names())
def test_generators_work_under_jit_and_vmap(name):
    keys = jax.random.split(jax.random.key(7), 4)
    generate = getattr(data, name)
    jitted = jax.jit(generate, static_argnums=1)(keys[0], 32)
    eager = generate(keys[0], 32)
    # Compiled inside another program, XLA may fuse a multiply-add: one ulp at most.
    np.testing.assert_allclose(jitted.x, eager.x, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(jitted.y, eager.y)
    mapped = jax.vmap(lambda k: generate(k, 32))(keys)
    assert mapped.x.shape == (4, 32, 2)
    for i, k in enumerate(keys):
        alone = generate(k, 32)
        np.testing.assert_allclose(mapped.x[i], alone.x, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(mapped.y[i], alone.y)


def test_noise_and_margin_can_be_traced():
    mapped = jax.vmap(lambda m: data.linear(jax.random.key(0), 64, margin=m))(jnp.array([0.0, 0.3]))
    distance = np.abs(np.asarray(mapped.x[1]).sum(axis=1)) / math.sqrt(2)
    assert distance.min() >= 0.3 - 1e-6


# ---------------------------------------------------------------------------
# Utilities.


@pytest.mark.slow
@given(seed=seeds, fraction=st.floats(0.01, 0.99), n=st.sampled_from([2, 10, 101]))
def test_train_test_split_partitions_the_data(seed, fraction, n):
    full = data.linear(jax.random.key(1), n)
    train, test = data.train_test_split(jax.random.key(seed), full, test_fraction=fraction)
    assert len(test.y) == min(max(round(fraction * n), 1), n - 1)
    assert len(train.y) + len(test.y) == n
    together = np.concatenate([train.x, test.x])
    order = np.lexsort(together.T)
    np.testing.assert_array_equal(together[order], np.asarray(full.x)[np.lexsort(full.x.T)])
    # Labels travel with their points.
    for part in (train, test):
        np.testing.assert_array_equal(part.y, (part.x[:, 0] + part.x[:, 1] > 0).astype(int))


def test_train_test_split_is_keyed():
    full = data.circle(jax.random.key(0), 50)
    a = data.train_test_split(jax.random.key(1), full, test_fraction=0.2)
    b = data.train_test_split(jax.random.key(1), full, test_fraction=0.2)
    c = data.train_test_split(jax.random.key(2), full, test_fraction=0.2)
    np.testing.assert_array_equal(a[1].x, b[1].x)
    assert not np.array_equal(a[1].x, c[1].x)


def test_signed():
    np.testing.assert_array_equal(data.signed(jnp.array([0, 1, 1, 0])), [-1, 1, 1, -1])
    np.testing.assert_array_equal(data.signed(np.array([-1, 1])), [-1, 1])
    assert data.signed(jnp.array([0, 1])).dtype == jnp.int32
    with pytest.raises(ValueError, match="y must hold class labels"):
        data.signed(jnp.array([-1, 0, 1]))
    with pytest.raises(ValueError, match="y must hold class labels"):
        data.signed(jnp.array([0, 2]))


def test_features():
    x = jnp.array([[0.5, -2.0], [1.0, 3.0]])
    out = data.features(x)
    assert out.shape == (2, 7)
    expected = np.array(
        [
            [0.5, -2.0, 0.25, 4.0, -1.0, math.sin(0.5), math.sin(-2.0)],
            [1.0, 3.0, 1.0, 9.0, 3.0, math.sin(1.0), math.sin(3.0)],
        ]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(
        data.features(x, ["x1²", "x1·x2"]), data.features(x, ["x1^2", "x1*x2"])
    )
    with pytest.raises(ValueError, match="unknown feature 'x3'"):
        data.features(x, ["x1", "x3"])
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        data.features(jnp.ones((3, 3)), ["x1"])
    with pytest.raises(TypeError, match="names must be a non-empty sequence"):
        data.features(x, "x1")


def test_from_arrays_infers_the_task():
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float64)
    classes = data.from_arrays(x, np.array([0, 1]))
    assert classes.x.dtype == jnp.float32
    assert classes.y.dtype == jnp.int32
    targets = data.from_arrays(x, np.array([0.5, 1.5]))
    assert targets.y.dtype == jnp.float32
    forced = data.from_arrays(x, np.array([0.0, 1.0]), task="classification")
    assert forced.y.dtype == jnp.int32


@pytest.mark.parametrize(
    ("x", "y", "error", "message"),
    [
        (np.ones((3,)), np.zeros(3, int), ValueError, "x must have rank 2"),
        (np.ones((3, 2)), np.zeros(2, int), ValueError, "y must have one entry per row"),
        (np.array([[1.0, np.nan]]), np.zeros(1, int), ValueError, "x must be finite"),
        (np.ones((2, 2)), np.array([0, -1]), ValueError, "non-negative integer"),
        (np.array([["a", "b"]]), np.zeros(1, int), TypeError, "x must be a numeric array"),
    ],
)
def test_from_arrays_rejects_bad_input(x, y, error, message):
    with pytest.raises(error, match=message):
        data.from_arrays(x, y)


@pytest.mark.parametrize("name", ["circle", "plane"])
def test_csv_round_trip_is_exact(tmp_path, name):
    original = data.make(name, jax.random.key(4), 50, noise=0.1)
    path = tmp_path / "points.csv"
    data.save_csv(path, original)
    loaded = data.load_csv(path)
    assert loaded.y.dtype == original.y.dtype
    np.testing.assert_array_equal(loaded.x.view(np.uint32), original.x.view(np.uint32))
    np.testing.assert_array_equal(loaded.y, original.y)
    assert path.read_text().splitlines()[0] == "x1,x2,y"
    assert [p.name for p in tmp_path.iterdir()] == ["points.csv"]  # no temporary left


def test_load_csv_without_header_and_its_errors(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("0.5,0.25,1\n-1,2,0\n\n")
    loaded = data.load_csv(good)
    np.testing.assert_array_equal(loaded.y, [1, 0])
    bad = tmp_path / "bad.csv"
    bad.write_text("x1,x2,y\n1,2,0\n1,oops,1\n")
    with pytest.raises(ValueError, match=r"bad.csv:3:2: column 2 is not a number: 'oops'"):
        data.load_csv(bad)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,0\n1,2\n")
    with pytest.raises(ValueError, match=r"ragged.csv:2:3: expected 3 columns, got 2"):
        data.load_csv(ragged)
    empty = tmp_path / "empty.csv"
    empty.write_text("x1,x2,y\n")
    with pytest.raises(ValueError, match="no data rows"):
        data.load_csv(empty)


def test_save_csv_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "keep.csv"
    path.write_text("old\n")

    class Boom(Exception):
        pass

    def explode(*args, **kwargs):
        raise Boom

    monkeypatch.setattr(data, "_format", explode)
    with pytest.raises(Boom):
        data.save_csv(path, data.linear(jax.random.key(0), 3))
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["keep.csv"]


# ---------------------------------------------------------------------------
# Bad input: a clear error naming the argument, raised before any tracing.


@pytest.fixture
def no_tracing(monkeypatch):
    """Replaces every compiled generator core with one that fails the test if called."""

    def forbidden(*args, **kwargs):
        raise AssertionError("validation must happen before any tracing")

    for name in data.names():
        monkeypatch.setattr(data, f"_{name}", forbidden)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda k: data.linear(k, 0), ValueError, "n must be an int >= 1, got 0"),
        (lambda k: data.circle(k, -3), ValueError, "n must be an int >= 1, got -3"),
        (lambda k: data.xor(k, 2.5), TypeError, "n must be an int >= 1, got 2.5"),
        (lambda k: data.moons(k, True), TypeError, "n must be an int"),
        (lambda k: data.linear(k, "10"), TypeError, "n must be an int"),
        (lambda k: data.linear(k, 10, noise=-0.1), ValueError, r"noise must be in \[0.0, inf\]"),
        (
            lambda k: data.linear(k, 10, noise=float("nan")),
            ValueError,
            "noise must be a finite number",
        ),
        (lambda k: data.linear(k, 10, margin=1.5), ValueError, r"margin must be in \[0.0, 1.0\]"),
        (lambda k: data.gaussian(k, 10, std=0), ValueError, r"std must be in \(0.0, inf\]"),
        (lambda k: data.spiral(k, 10, turns=-1), ValueError, "turns must be in"),
        (lambda k: data.make("ring", k, 10), ValueError, "unknown dataset name 'ring'"),
        (lambda k: data.linear(0, 10), TypeError, "key must be a PRNG key"),
        (lambda k: data.linear(jax.random.split(k, 3), 10), TypeError, "use jax.vmap"),
    ],
)
def test_generators_reject_bad_input(no_tracing, key, call, error, message):
    with pytest.raises(error, match=message):
        call(key)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 2.0, float("nan")])
def test_split_rejects_bad_fraction(key, fraction):
    full = data.linear(key, 10)
    with pytest.raises(ValueError, match="test_fraction must be"):
        data.train_test_split(key, full, test_fraction=fraction)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="expected one of") as info:
        data.make("ring", jax.random.key(0), 10)
    for name in data.names():
        assert name in str(info.value)


# ---------------------------------------------------------------------------
# The shapes of the sampled sets.


def test_gaussian_blobs_sit_at_their_centres():
    x, y = data.gaussian(jax.random.key(0), 4000, std=0.25)
    x, y = np.asarray(x), np.asarray(y)
    np.testing.assert_allclose(x[y == 1].mean(axis=0), [0.5, 0.5], atol=0.03)
    np.testing.assert_allclose(x[y == 0].mean(axis=0), [-0.5, -0.5], atol=0.03)
    np.testing.assert_allclose(x[y == 1].std(axis=0), [0.25, 0.25], atol=0.02)


def test_moons_follow_make_moons_equations():
    x, y = data.moons(jax.random.key(0), 500)
    x, y = np.asarray(x, np.float64) + np.array([0.5, 0.25]), np.asarray(y)
    upper, lower = x[y == 0], x[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-5)
    assert np.all(upper[:, 1] >= -1e-6)
    np.testing.assert_allclose(np.hypot(1 - lower[:, 0], 0.5 - lower[:, 1]), 1.0, atol=1e-5)
    assert np.all(lower[:, 1] <= 0.5 + 1e-6)


def test_spiral_angle_grows_with_radius():
    turns = 1.75
    x, y = data.spiral(jax.random.key(0), 500, turns=turns)
    x, y = np.asarray(x, np.float64), np.asarray(y)
    radius = np.hypot(x[:, 0], x[:, 1])
    angle = np.arctan2(x[:, 0], x[:, 1])  # x = t sin(a), y = t cos(a)
    expected = 2 * np.pi * turns * radius + np.pi * y
    difference = np.angle(np.exp(1j * (angle - expected)))
    keep = radius > 1e-3
    np.testing.assert_allclose(difference[keep], 0.0, atol=1e-3)


@pytest.mark.parametrize("name", ["gaussian", "spiral", "moons"])
def test_balanced_labels_are_shuffled(name):
    y = np.asarray(data.make(name, jax.random.key(0), 200).y)
    assert not np.array_equal(y, np.arange(200) % 2)
    assert not np.array_equal(y, np.sort(y))


def test_a_traced_margin_above_one_is_clipped_and_terminates():
    mapped = jax.jit(lambda m: data.linear(jax.random.key(0), 8, margin=m))(jnp.float32(2.0))
    distance = np.abs(np.asarray(mapped.x).sum(axis=1)) / math.sqrt(2)
    assert distance.min() >= 1.0 - 1e-6


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda k: data.linear(k, 10, noise=float("inf")),
            ValueError,
            "noise must be a finite number",
        ),
        (
            lambda k: data.train_test_split(k, (np.ones((4, 2)), np.zeros(4)), test_fraction=0.5),
            TypeError,
            "data must be a Dataset",
        ),
        (
            lambda k: data.from_arrays(np.ones((1, 2)), np.array([2**40])),
            ValueError,
            "below 2\\*\\*31",
        ),
    ],
)
def test_more_bad_input(key, call, error, message):
    with pytest.raises(error, match=message):
        call(key)


# ---------------------------------------------------------------------------
# Laws of the random draws: every generator's draws are independent of one another.
#
# Each generator draws a few quantities from its own split keys (circle: a radius
# r, an angle theta and a jitter; gaussian: a label permutation, a spread and a
# jitter; ...). A key used twice makes two of them functions of each other (for
# example theta = pi * r when theta is drawn with r's key), which no shape or
# determinism test sees. So each test below recovers the underlying draws from the
# generator's output (the clean set, noise=0, and the noisy set of the same key),
# maps each continuous one to U(0, 1) through its CDF (the probability integral
# transform), and checks that each is uniform (Kolmogorov-Smirnov) and that every
# pair is independent (chi-square test of a contingency table of their bins).
#
# Thresholds: the seeds are fixed, so the tests are deterministic; a test fails
# when p < 1e-6, which independent draws reach once in a million seeds, while a
# dependence as weak as a correlation of 0.1 gives p < 1e-20 at N = 12,000.

STAT_N = 12_000
STAT_SEEDS = (0, 1, 2)
STAT_NOISE = 0.5
P_FLOOR = 1e-6
BINS = 6


def _jitter_draws(clean: np.ndarray, noisy: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """The standard normal draws behind ``noisy = clean + NOISE * z``, as U(0, 1) values."""
    z = (np.asarray(noisy, np.float64) - np.asarray(clean, np.float64)) / STAT_NOISE
    z = z.reshape(z.shape[0], -1)
    return {f"{prefix}{j + 1}": stats.norm.cdf(z[:, j]) for j in range(z.shape[1])}


def _square_draws(x: np.ndarray) -> dict[str, np.ndarray]:
    """Uniform points of (-1, 1)^2, coordinate by coordinate, as U(0, 1) values."""
    return {"x1": (x[:, 0] + 1) / 2, "x2": (x[:, 1] + 1) / 2}


def _circle_draws(clean: data.Dataset) -> dict[str, np.ndarray]:
    x = np.asarray(clean.x, np.float64)
    theta = np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * np.pi)
    return {"r": np.hypot(x[:, 0], x[:, 1]) / 2, "theta": theta / (2 * np.pi)}


def _gaussian_draws(clean: data.Dataset) -> dict[str, np.ndarray]:
    x, y = np.asarray(clean.x, np.float64), np.asarray(clean.y)
    spread = (x - np.where(y[:, None] == 1, 0.5, -0.5)) / 0.25  # std=0.25, the default
    return {
        "label": y,
        "spread1": stats.norm.cdf(spread[:, 0]),
        "spread2": stats.norm.cdf(spread[:, 1]),
    }


def _spiral_draws(clean: data.Dataset) -> dict[str, np.ndarray]:
    x = np.asarray(clean.x, np.float64)
    return {"label": np.asarray(clean.y), "t": np.hypot(x[:, 0], x[:, 1])}  # radius t ~ U(0, 1)


def _moons_draws(clean: data.Dataset) -> dict[str, np.ndarray]:
    x, y = np.asarray(clean.x, np.float64) + np.array([0.5, 0.25]), np.asarray(clean.y)
    upper = np.arctan2(x[:, 1], x[:, 0])  # class 0: (cos a, sin a)
    lower = np.arctan2(0.5 - x[:, 1], 1 - x[:, 0])  # class 1: (1 - cos a, 0.5 - sin a)
    return {"label": y, "angle": np.clip(np.where(y == 1, lower, upper), 0, np.pi) / np.pi}


def draws(name: str, seed: int) -> dict[str, np.ndarray]:
    """The generator's underlying random draws on ``STAT_N`` points: U(0, 1) values or labels."""
    key = jax.random.key(seed)
    clean = data.make(name, key, STAT_N)
    noisy = data.make(name, key, STAT_N, noise=STAT_NOISE)
    found: dict[str, np.ndarray]
    if name in ("linear", "xor", "plane", "multi_gaussian"):
        found = _square_draws(np.asarray(clean.x, np.float64))
    else:
        found = {
            "circle": _circle_draws,
            "gaussian": _gaussian_draws,
            "spiral": _spiral_draws,
            "moons": _moons_draws,
        }[name](clean)
    if name in REGRESSION:  # the noise is on the targets
        found.update(_jitter_draws(clean.y, noisy.y, "noise"))
    else:  # the noise is on the points, after labelling
        found.update(_jitter_draws(clean.x, noisy.x, "noise"))
    return found


def _binned(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "iub":  # labels are categories already
        return values.astype(np.int64)
    return np.clip((values * BINS).astype(np.int64), 0, BINS - 1)


def independence_p(a: np.ndarray, b: np.ndarray) -> float:
    """The chi-square test's p-value for "a and b are independent", on their binned values."""
    table = np.zeros((_binned(a).max() + 1, _binned(b).max() + 1))
    np.add.at(table, (_binned(a), _binned(b)), 1)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    return float(stats.chi2_contingency(table).pvalue)


EXPECTED_DRAWS = {
    "linear": {"x1", "x2", "noise1", "noise2"},
    "xor": {"x1", "x2", "noise1", "noise2"},
    "circle": {"r", "theta", "noise1", "noise2"},
    "gaussian": {"label", "spread1", "spread2", "noise1", "noise2"},
    "spiral": {"label", "t", "noise1", "noise2"},
    "moons": {"label", "angle", "noise1", "noise2"},
    "plane": {"x1", "x2", "noise1"},
    "multi_gaussian": {"x1", "x2", "noise1"},
}


def test_every_generator_has_its_draws_listed():
    assert set(EXPECTED_DRAWS) == set(data.names())


@pytest.mark.parametrize("seed", STAT_SEEDS)
@pytest.mark.parametrize("name", data.names())
def test_each_draw_has_its_distribution(name, seed):
    found = draws(name, seed)
    assert set(found) == EXPECTED_DRAWS[name]
    for what, values in found.items():
        if what == "label":  # a shuffled balanced set: exactly half ones
            assert int(values.sum()) == STAT_N // 2
            continue
        p = stats.kstest(values, "uniform").pvalue
        assert p > P_FLOOR, f"{name}: {what} is not distributed as drawn (KS p = {p:.2g})"


@pytest.mark.parametrize("seed", STAT_SEEDS)
@pytest.mark.parametrize("name", data.names())
def test_draws_are_pairwise_independent(name, seed):
    found = draws(name, seed)
    names = sorted(found)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            p = independence_p(found[first], found[second])
            assert p > P_FLOOR, (
                f"{name}: {first} and {second} are dependent (chi-square p = {p:.2g})"
            )


def test_the_independence_check_sees_a_reused_key():
    # The law's own check: a draw made twice with one key, or a function of another draw,
    # fails it; two draws from split keys pass.
    k1, k2 = jax.random.split(jax.random.key(0))
    u = np.asarray(jax.random.uniform(k1, (STAT_N,)), np.float64)
    same_key = np.asarray(jax.random.uniform(k1, (STAT_N,), maxval=2 * np.pi)) / (2 * np.pi)
    normal_same_key = stats.norm.cdf(np.asarray(jax.random.normal(k1, (STAT_N,)), np.float64))
    other = np.asarray(jax.random.uniform(k2, (STAT_N,)), np.float64)
    assert independence_p(u, same_key) < 1e-100
    assert independence_p(u, normal_same_key) < 1e-100
    assert independence_p(u, (u + 0.3 * other) % 1.0) < 1e-20  # partly dependent
    assert independence_p(u, other) > P_FLOOR


@pytest.mark.parametrize("seed", STAT_SEEDS)
def test_circle_angle_is_uniform_whatever_the_radius(seed):
    x, y = data.circle(jax.random.key(seed), STAT_N)
    x, y = np.asarray(x, np.float64), np.asarray(y)
    theta = np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * np.pi)
    radius = np.hypot(x[:, 0], x[:, 1])
    inner, outer = theta[y == 0], theta[y == 1]
    # The inner disc and the outer ring have the same angle distribution...
    assert stats.ks_2samp(inner, outer).pvalue > P_FLOOR
    # ...which is uniform on [0, 2 pi) in each.
    for ring in (inner, outer):
        assert stats.kstest(ring / (2 * np.pi), "uniform").pvalue > P_FLOOR
    # Radius and angle are uncorrelated (|r| < 6 / sqrt(N) = 0.055 under independence).
    assert abs(np.corrcoef(radius, theta)[0, 1]) < 6 / math.sqrt(STAT_N)
    assert abs(np.corrcoef(radius, np.cos(theta))[0, 1]) < 6 / math.sqrt(STAT_N)
    # Every quadrant holds about a quarter of each ring (binomial sd 0.4% at N/2 points).
    for label in (0, 1):
        ring = x[y == label]
        quadrants = 2 * (ring[:, 0] < 0) + (ring[:, 1] < 0)
        shares = np.bincount(quadrants, minlength=4) / len(ring)
        np.testing.assert_allclose(shares, 0.25, atol=0.03)


@pytest.mark.parametrize("seed", STAT_SEEDS)
def test_xor_coordinates_are_independent_so_its_classes_are_balanced_in_each_half(seed):
    x, y = data.xor(jax.random.key(seed), STAT_N)
    x, y = np.asarray(x), np.asarray(y)
    assert independence_p((x[:, 0] + 1) / 2, (x[:, 1] + 1) / 2) > P_FLOOR
    for half in (x[:, 0] > 0, x[:, 0] <= 0):  # given x1's sign, x2's sign is a fair coin
        assert abs(y[half].mean() - 0.5) < 6 * 0.5 / math.sqrt(half.sum())


# ---------------------------------------------------------------------------
# data.batch_order: the one definition of an epoch's minibatch order.


# A few sizes (each compiles its own permutation), small and odd ones included.
ORDER_SIZES = (2, 3, 7, 16, 33, 100)


@st.composite
def orders(draw: st.DrawFn, min_n: int = 2) -> tuple[int, int, int, int]:
    """``(seed, epoch, n, batch_size)`` with ``1 <= batch_size < n`` (a real shuffle)."""
    n = draw(st.sampled_from([size for size in ORDER_SIZES if size >= min_n]))
    batch_size = draw(st.integers(1, n - 1))
    return draw(seeds), draw(st.integers(0, 10_000)), n, batch_size


def reference_order(key: jax.Array, epoch: int, n: int, batch_size: int, remainder: str):
    """The documented function of ``(key, epoch)``, written out with NumPy."""
    if batch_size == n:
        order = np.arange(n)
    else:
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
    if remainder == "drop":
        kept = n // batch_size * batch_size
        index = order[:kept].reshape(-1, batch_size)
        return index, np.ones(index.shape, np.float32)
    rows = -(-n // batch_size)
    index = np.zeros(rows * batch_size, order.dtype)
    index[:n] = order
    mask = (np.arange(rows * batch_size) < n).astype(np.float32)
    return index.reshape(rows, batch_size), mask.reshape(rows, batch_size)


@given(case=orders(min_n=16), remainder=st.sampled_from(data.REMAINDERS))
def test_consecutive_epochs_are_ordered_differently(case, remainder):
    # With n >= 16 two independent orders agree on the >= 8 kept positions with
    # probability below 1 / (16 * 15 * ... * 9) = 2e-9: a tie here is a bug.
    seed, epoch, n, batch_size = case
    key = jax.random.key(seed)
    this, _ = data.batch_order(key, epoch, n, batch_size, remainder=remainder)
    following, _ = data.batch_order(key, epoch + 1, n, batch_size, remainder=remainder)
    assert not np.array_equal(this, following)


@given(case=orders(min_n=3), remainder=st.sampled_from(data.REMAINDERS))
def test_a_run_of_epochs_is_not_one_order_repeated(case, remainder):
    # For small n two epochs may agree by chance, but ten in a row all alike have
    # probability at most (1/3!)^9 = 1e-7.
    seed, epoch, n, batch_size = case
    key = jax.random.key(seed)
    runs = {
        np.asarray(data.batch_order(key, e, n, batch_size, remainder=remainder)[0]).tobytes()
        for e in range(epoch, epoch + 10)
    }
    assert len(runs) > 1


@pytest.mark.slow
@given(case=orders(), remainder=st.sampled_from(data.REMAINDERS))
def test_the_order_is_the_documented_function_of_key_and_epoch(case, remainder):
    seed, epoch, n, batch_size = case
    key = jax.random.key(seed)
    index, mask = data.batch_order(key, epoch, n, batch_size, remainder=remainder)
    expected_index, expected_mask = reference_order(key, epoch, n, batch_size, remainder)
    np.testing.assert_array_equal(index, expected_index)
    np.testing.assert_array_equal(mask, expected_mask)
    # A traced epoch (inside the compiled loop) gives the same order.
    traced = jax.jit(lambda e: data.batch_order(key, e, n, batch_size, remainder=remainder))(
        jnp.int32(epoch)
    )
    np.testing.assert_array_equal(traced[0], expected_index)
    np.testing.assert_array_equal(traced[1], expected_mask)


# Padded orders: (batch_size, padded size) pairs, each compiling its own sort once.
PADDED_SIZES = ((7, 21), (16, 48), (48, 96), (100, 300))


@functools.cache
def padded_order(size: int, batch_size: int):
    """``batch_order`` of ``size`` padded rows, compiled once with the count and epoch traced."""
    return jax.jit(
        lambda key, epoch, count: data.batch_order(key, epoch, size, batch_size, count=count)
    )


@pytest.mark.slow
@given(
    seed=seeds,
    epoch=st.integers(0, 10_000),
    sizes=st.sampled_from(PADDED_SIZES),
    fill=st.integers(1, 99),
)
def test_a_padded_order_is_the_order_of_its_examples_bit_for_bit(seed, epoch, sizes, fill):
    # The law behind engine.pad_to_batches: count examples padded to whole batches
    # are visited in exactly the order of the unpadded count, whatever the count.
    batch_size, size = sizes
    count = size - batch_size + 1 + fill % (batch_size - 1)
    key = jax.random.key(seed)
    assert data.bucket(count, batch_size, key) == size
    expected_index, expected_mask = data.batch_order(key, epoch, count, batch_size)
    for index, mask in (
        padded_order(size, batch_size)(key, jnp.int32(epoch), jnp.int32(count)),
        data.batch_order(key, epoch, size, batch_size, count=count),
    ):
        np.testing.assert_array_equal(index, expected_index)
        np.testing.assert_array_equal(mask, expected_mask)


def test_a_padded_order_holds_over_several_shuffling_rounds():
    # 1626 examples and more are sorted twice by jax.random.permutation.
    key = jax.random.key(4)
    assert data.bucket(2000, 300, key) == 2100
    for epoch in (0, 7):
        np.testing.assert_array_equal(
            data.batch_order(key, epoch, 2100, 300, count=2000)[0],
            data.batch_order(key, epoch, 2000, 300)[0],
        )


def test_bucket_pads_to_whole_batches_only_when_the_order_survives():
    key = jax.random.key(0)
    assert data.bucket(455, 200, key) == data.bucket(456, 200, key) == 600
    assert data.bucket(400, 200, key) is None  # whole batches already
    assert data.bucket(150, 200, key) is None  # one batch, no shuffle
    assert data.bucket(1600, 300, key) is None  # 1800 rows would need a second round
    assert data.bucket(455, 200, jax.random.key(0, impl="rbg")) is None
    with jax.threefry_partitionable(False):
        assert data.bucket(455, 200, key) is None


@pytest.mark.parametrize(
    ("n", "batch_size", "options", "match"),
    [
        (600, 200, {"count": 300}, "count=300 does not pad to n=600"),
        (600, 200, {"count": 600}, "count=600 does not pad"),
        (600, 200, {"count": 455, "remainder": "drop"}, 'count needs remainder="pad"'),
        (500, 200, {"count": 455}, "multiple of batch_size"),
        (200, 200, {"count": 150}, "at least two batches"),
        (600, 200, {"count": 0}, "count"),
    ],
)
def test_a_count_that_does_not_fit_is_refused(n, batch_size, options, match):
    with pytest.raises(ValueError, match=match):
        data.batch_order(jax.random.key(0), 0, n, batch_size, **options)


def test_a_count_needs_a_threefry_key():
    with pytest.raises(ValueError, match="rbg, not threefry2x32"):
        data.batch_order(jax.random.key(0, impl="rbg"), 0, 600, 200, count=455)


@given(seed=seeds, epoch=st.integers(0, 100), n=st.sampled_from((1, *ORDER_SIZES)))
def test_a_single_full_batch_is_not_shuffled(seed, epoch, n):
    for remainder in data.REMAINDERS:
        index, mask = data.batch_order(jax.random.key(seed), epoch, n, n, remainder=remainder)
        np.testing.assert_array_equal(index, np.arange(n)[None, :])
        np.testing.assert_array_equal(mask, np.ones((1, n)))


@given(case=orders())
def test_pad_visits_every_example_once_per_epoch_and_masks_the_padding(case):
    seed, epoch, n, batch_size = case
    index, mask = data.batch_order(jax.random.key(seed), epoch, n, batch_size, remainder="pad")
    index, mask = np.asarray(index), np.asarray(mask)
    assert index.shape == mask.shape == (-(-n // batch_size), batch_size)
    np.testing.assert_array_equal(np.sort(index[mask == 1]), np.arange(n))
    # The mask is 1 on the first n entries, row by row, and 0 on the padding (index 0).
    np.testing.assert_array_equal(mask.ravel(), np.arange(index.size) < n)
    np.testing.assert_array_equal(index.ravel()[n:], 0)
    assert set(np.unique(mask).tolist()) <= {0.0, 1.0}


@given(case=orders())
def test_drop_keeps_full_batches_of_distinct_examples(case):
    seed, epoch, n, batch_size = case
    index, mask = data.batch_order(jax.random.key(seed), epoch, n, batch_size, remainder="drop")
    index, mask = np.asarray(index), np.asarray(mask)
    assert index.shape == mask.shape == (n // batch_size, batch_size)
    np.testing.assert_array_equal(mask, 1.0)
    assert len(np.unique(index)) == index.size  # no example twice
    assert index.min() >= 0
    assert index.max() < n
    # Drop keeps the same order as pad, minus the last partial batch.
    padded, _ = data.batch_order(jax.random.key(seed), epoch, n, batch_size, remainder="pad")
    np.testing.assert_array_equal(index, np.asarray(padded)[: n // batch_size])


@given(seed=seeds, epoch=st.integers(0, 1000), n=st.sampled_from(ORDER_SIZES), data_=st.data())
def test_train_minibatches_is_batch_order_under_the_key_fold_in_key_0(seed, epoch, n, data_):
    from dlvr_jax import train

    batch_size = data_.draw(st.integers(1, n))
    key = jax.random.key(seed)
    index, mask = train.minibatches(key, jnp.int32(epoch), n, batch_size)
    expected = data.batch_order(jax.random.fold_in(key, 0), epoch, n, batch_size)
    np.testing.assert_array_equal(index, expected[0])
    np.testing.assert_array_equal(mask, expected[1])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1, got 0"),
        ({"batch_size": 11}, ValueError, r"batch_size must be in \[1, 10\].*got 11"),
        ({"batch_size": 2.0}, TypeError, "batch_size must be an int"),
        ({"n": 0}, ValueError, "n must be an int >= 1, got 0"),
        ({"remainder": "keep"}, ValueError, r"unknown remainder 'keep'; expected one of"),
    ],
)
def test_batch_order_rejects_bad_input(key, kwargs, error, message):
    arguments = {"n": 10, "batch_size": 3, **kwargs}
    n, batch_size = arguments.pop("n"), arguments.pop("batch_size")
    with pytest.raises(error, match=message):
        data.batch_order(key, 0, n, batch_size, **arguments)


# ----------------------------------------------------------------------------
# CSV files: every problem at path:line:column, one parser for files and text.


@pytest.mark.parametrize(
    ("text", "line", "column", "problem"),
    [
        ("x1,x2,y\n0,0,1\n1,abc,0\n", 3, 2, "column 2 is not a number: 'abc'"),
        ("x1,x2,y\n0,0,1\n1,,0\n", 3, 2, "column 2 is empty"),
        ("0,0,1\n1,1,\n", 2, 3, "column 3 is empty"),
        ("0,0,1\n1,nan,0\n", 2, 2, "column 2 is not a finite number: 'nan'"),
        ("0,0,1\n-inf,1,0\n", 2, 1, "column 1 is not a finite number: '-inf'"),
        ("0,0,1\n1e39,1,0\n", 2, 1, "column 1 is '1e39', past float32's range"),
        ("0,0,0.5\n1,1,-1e39\n", 2, 3, "column 3 is '-1e39', past float32's range"),
        ("0,0,0.5\n1,1,inf\n", 2, 3, "column 3 is not a finite number: 'inf'"),
        ("0,0,1\n1,1,0\n2,2\n", 3, 3, "expected 3 columns, got 2"),
        ("0,0,1\n\n1,1,0,7\n", 3, 4, "expected 3 columns, got 4"),
        ("y\n1\n2\n", 2, 2, "expected at least 2 columns (x..., y), got 1"),
        ("0,0,1\n1,\ud800,0\n", 2, 2, "column 2 holds a lone surrogate (\\ud800), not text"),
        ("a,b,c\n0,0,x\n0,1,y\n1,1,2\n", 4, 3, "column 3 is a number, '2', but the other"),
        ("0,0,0.5\n0,1,1.5\n1,1,big\n", 4 - 1, 3, "column 3 is not a number: 'big', but the"),
        ("a,b,species\n0,0,setosa\n1,1,setosa\n", 2, 3, "column 3 (species) holds one class"),
        ("0,0,1\n1,1,1\n", 1, 3, "column 3 (y) holds one class, '1'; a classifier needs"),
        ("x1,x2,y\n", 2, 1, "no data rows"),
        ("", 1, 1, "no data rows"),
        ("\n\n", 3, 1, "no data rows"),
        ('0,"1\n2",1\n3,oops,0\n', 1, 2, "column 2 is not a number: '1\\n2'"),
        ("0,0,1\n\n\n3,oops,0\n", 4, 2, "column 2 is not a number: 'oops'"),
        ("a,b,y\r\n0,0,1\r\n3,oops,0\r\n", 3, 2, "column 2 is not a number: 'oops'"),
        ("0,0,1\n1," + "9" * 140_000 + ",0\n", 2, 1, "not a well-formed CSV row (field larger"),
    ],
)
def test_every_csv_problem_has_its_line_and_column(text, line, column, problem):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from a cast past float32
        with pytest.raises(data.CsvError) as info:
            data.parse_csv(text, source="points.csv")
    error = info.value
    assert (error.path, error.line, error.column) == ("points.csv", line, column)
    assert error.problem.startswith(problem)
    assert str(error) == f"points.csv:{line}:{column}: {error.problem}"
    assert error.field == "text"
    assert isinstance(error, ValueError)


def test_the_first_problem_in_the_file_is_the_one_reported():
    # A bad target on line 2 comes before a bad feature on line 3, whichever is found first.
    with pytest.raises(data.CsvError) as info:
        data.parse_csv("0,0,0.5\n0,0,nan\n1,x,0.5\n")
    assert (info.value.line, info.value.column) == (2, 3)
    with pytest.raises(data.CsvError) as info:
        data.parse_csv("0,0,1\n1,x,0\n0,0,-1\n2,2\n", task="regression")
    assert (info.value.line, info.value.column) == (2, 2)


def test_a_file_that_is_not_utf8_is_a_csv_error(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("x,y,name\n1,2,a\n3,4,caf\u00e9\n".encode("latin-1"))
    for read in (data.read_csv, data.load_csv):
        with pytest.raises(data.CsvError) as info:
            read(path)
        error = info.value
        assert (error.path, error.line, error.column) == (str(path), 3, 3)
        assert error.problem == "column 3 is not UTF-8 text (byte 0xe9)"
        assert error.field == "path"


def test_load_csv_reports_labels_it_cannot_keep_at_their_cell(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("a,b,y\n0,0,1\n1,1,-1\n")
    with pytest.raises(data.CsvError, match=r"labels.csv:3:3: the target '-1' is not a class"):
        data.load_csv(path)
    path.write_text("0,0,1\n1,1,2147483648\n")
    with pytest.raises(data.CsvError, match=r"labels.csv:2:3: the target '2147483648'"):
        data.load_csv(path)
    with pytest.raises(data.CsvError, match=r"labels.csv:2:3: the target '0.5' is not a class"):
        data.parse_csv("0,0,1\n1,1,0.5\n", source="labels.csv", task="classification")


def test_read_csv_gives_class_names_and_maps_labels(tmp_path):
    path = tmp_path / "iris.csv"
    path.write_text("length,width,species\n1,2,virginica\n3,4,setosa\n5,6,versicolor\n7,8,setosa\n")
    table = data.read_csv(path)
    assert table.task == "classification"
    assert table.classes == ("setosa", "versicolor", "virginica")
    assert table.mapped
    assert table.columns == ("length", "width", "species")
    assert table.dataset.y.dtype == jnp.int32
    np.testing.assert_array_equal(table.dataset.y, [2, 0, 1, 0])
    np.testing.assert_array_equal(table.dataset.x, [[1, 2], [3, 4], [5, 6], [7, 8]])
    shifted = data.parse_csv("0,0,1\n1,1,3\n2,2,2\n0,1,3\n")
    np.testing.assert_array_equal(shifted.dataset.y, [0, 2, 1, 2])
    assert (shifted.classes, shifted.mapped, shifted.columns) == (
        ("1", "2", "3"),
        True,
        ("x1", "x2", "y"),
    )
    plain = data.parse_csv("0,0,1\n1,1,0\n")
    assert (plain.classes, plain.mapped) == (("0", "1"), False)
    regression = data.parse_csv("0,0,0.5\n1,1,1\n")
    assert (regression.task, regression.classes, regression.mapped) == ("regression", None, False)
    assert regression.dataset.y.dtype == jnp.float32


def test_task_decides_how_targets_are_read():
    mixed = "0,0,1\n1,1,b\n1,0,a\n"
    assert data.parse_csv(mixed, task="classification").classes == ("1", "a", "b")
    with pytest.raises(data.CsvError, match="column 3 is not a number: 'b'"):
        data.parse_csv(mixed, task="regression")
    integral = data.parse_csv("0,0,0\n1,1,1.0\n", task="classification")
    np.testing.assert_array_equal(integral.dataset.y, [0, 1])
    as_numbers = data.parse_csv("0,0,0\n1,1,2\n", task="regression")
    np.testing.assert_array_equal(as_numbers.dataset.y, np.array([0.0, 2.0], np.float32))
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        data.parse_csv("0,0,0\n1,1,2\n", task="ranking")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text must be a CSV's text") as info:
        data.parse_csv(b"0,0,1\n")  # type: ignore[arg-type]
    assert info.value.field == "text"


def test_load_csv_keeps_what_it_loaded_before(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("0,0,1\n1,1,3\n2,2,3\n")
    loaded = data.load_csv(path)  # labels as written, one class or several
    assert loaded.y.dtype == jnp.int32
    np.testing.assert_array_equal(loaded.y, [1, 3, 3])
    path.write_text("x,y,t\n0,0,2\n1,1,2\n")
    np.testing.assert_array_equal(data.load_csv(path).y, [2, 2])
    path.write_text("0,0,b\n1,1,a\n")  # names: now loaded, coded in sorted order
    np.testing.assert_array_equal(data.load_csv(path).y, [1, 0])
    path.write_text(
        "\ufeffx1,x2,y\n0.5,1,0\n1,1,1\n"
    )  # a byte order mark is not part of the header
    assert data.read_csv(path).columns == ("x1", "x2", "y")


@pytest.mark.parametrize("name", ["circle", "plane"])
def test_read_csv_and_load_csv_give_the_same_bits(tmp_path, name):
    original = data.make(name, jax.random.key(5), 40, noise=0.1)
    path = tmp_path / "points.csv"
    data.save_csv(path, original)
    table = data.read_csv(path)
    loaded = data.load_csv(path)
    text = data.parse_csv(path.read_text(), source="upload")
    for dataset in (table.dataset, text.dataset, loaded):
        np.testing.assert_array_equal(dataset.x.view(np.uint32), original.x.view(np.uint32))
        np.testing.assert_array_equal(dataset.y, original.y)
        assert dataset.y.dtype == original.y.dtype


@given(
    rows=st.integers(1, 6),
    columns=st.integers(2, 4),
    header=st.booleans(),
    blank=st.integers(0, 2),
    spot=st.tuples(st.integers(0, 10), st.integers(0, 10)),
    bad=st.sampled_from(["oops", "", "nan", "inf", "1e39", "-3.5e38"]),
)
def test_a_bad_cell_anywhere_is_reported_at_its_line_and_column(
    rows, columns, header, blank, spot, bad
):
    lines = [",".join(f"c{j}" for j in range(columns))] if header else []
    lines += [",".join(str(i + j) for j in range(columns)) for i in range(rows)]
    row = spot[0] % rows
    column = spot[1] % columns
    assume(header or row or column or bad in ("nan", "inf", "1e39", "-3.5e38"))  # else a header
    cells = lines[row + header].split(",")
    cells[column] = bad
    lines[row + header] = ",".join(cells)
    text = "\n" * blank + "\n".join(lines) + "\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(data.CsvError) as info:
            data.parse_csv(text)
    assert (info.value.line, info.value.column) == (blank + header + row + 1, column + 1)


@given(value=st.floats(3.4e38, 3.5e38) | st.floats(-3.5e38, -3.4e38))
def test_past_float32_is_exactly_what_float32_rounds_to_infinity(value):
    with np.errstate(over="ignore"):
        fits = bool(np.isfinite(np.float32(value)))
    text = f"{value!r},0,0.5\n0,0,1.5\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if fits:
            assert float(data.parse_csv(text).dataset.x[0, 0]) == float(np.float32(value))
        else:
            with pytest.raises(data.CsvError, match="past float32's range"):
                data.parse_csv(text)


# ----------------------------------------------------------------------------
# The label policy.


@given(
    labels=st.lists(st.integers(-(2**40), 2**40), min_size=2, max_size=30)
    | st.lists(st.text(max_size=4), min_size=2, max_size=30)
)
def test_labels_map_to_codes_in_order_and_names_round_trip(labels):
    if len(set(labels)) < 2:
        with pytest.raises(check.InvalidArgument, match="needs at least two classes") as info:
            data.encode_labels(labels)
        assert info.value.field == "y"
        return
    coded = data.encode_labels(labels)
    k = len(coded.names)
    assert coded.codes.dtype == np.int32
    assert sorted(set(coded.codes.tolist())) == list(range(k))
    for a, b in itertools.pairwise(labels):
        assert (a < b) == (coded.codes[labels.index(a)] < coded.codes[labels.index(b)])
    assert [coded.names[c] for c in coded.codes] == [str(label) for label in labels]
    assert coded.mapped == (sorted(set(labels)) != list(range(k)))


@given(labels=st.lists(st.integers(0, 5), min_size=2, max_size=30))
def test_labels_already_0_to_k_minus_1_keep_their_values(labels):
    if len(set(labels)) < 2:
        return
    for values in (labels, np.asarray(labels, np.int64), np.asarray(labels, np.float32)):
        coded = data.encode_labels(values)
        if set(labels) == set(range(len(set(labels)))):
            assert not coded.mapped
            np.testing.assert_array_equal(coded.codes, labels)
        else:
            assert coded.mapped


def test_encode_labels_refuses_what_is_not_a_label():
    with pytest.raises(check.InvalidArgument, match="target holds one class") as info:
        data.encode_labels(["a", "a"], field="target")
    assert info.value.field == "target"
    assert data.encode_labels(["a", "a"], min_classes=1).names == ("a",)
    cases = [
        ([0.5, 1.0], check.InvalidArgument, "continuous targets are regression"),
        ([0.0, np.nan], check.InvalidArgument, r"got nan at index \[1\]"),
        (np.zeros((2, 2)), check.InvalidArgument, "y must have rank 1"),
        ([], check.InvalidArgument, "at least one label"),
        (["a", 1], check.InvalidType, "one kind"),
        ([[0, 1], [1, 0]], check.InvalidType, r"names or integers\), got \[0, 1\]"),
        (np.array([1 + 2j, 3j]), check.InvalidType, "dtype complex128"),
    ]
    for values, error, message in cases:
        with pytest.raises(error, match=message) as info:
            data.encode_labels(values)
        assert info.value.field == "y"
    booleans = data.encode_labels([True, False, True])
    assert (booleans.names, booleans.mapped, booleans.codes.tolist()) == (
        ("False", "True"),
        False,
        [1, 0, 1],
    )
    huge = data.encode_labels([2**70, 1, 2**70])
    assert (huge.names, huge.codes.tolist()) == (("1", str(2**70)), [1, 0, 1])
