"""Tests of dlvr_jax.losses: each loss against a NumPy formula, its laws, and the penalties.

The losses are tested jitted, as training calls them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlvr_jax import losses, models

seeds = st.integers(0, 2**32 - 1)
batch_sizes = st.sampled_from([1, 5, 16])
class_counts = st.sampled_from([2, 3, 10])

cross_entropy = jax.jit(losses.cross_entropy)
binary_cross_entropy = jax.jit(losses.binary_cross_entropy)
mean_squared_error = jax.jit(losses.mean_squared_error)
hinge = jax.jit(losses.hinge)
accuracy = jax.jit(losses.accuracy)


@jax.jit
def _random_pool(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    k_z, k_y = jax.random.split(key)
    return jax.random.normal(k_z, (160,)), jax.random.uniform(k_y, (16,))


def logits_and_labels(seed: int, n: int, k: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``float32[n, k]`` logits and ``int32[n]`` labels below k, from ``jax.random.key(seed)``.

    Drawn with fixed shapes in one compiled call and cut to size on the host,
    so that a new (n, k) costs no compilation beyond the loss's own.
    """
    normal, uniform = (np.asarray(a) for a in _random_pool(jax.random.key(seed)))
    z = (scale * normal[: n * k]).reshape(n, k).astype(np.float32)
    return z, np.minimum(np.floor(uniform[:n] * k), k - 1).astype(np.int32)


def numpy_cross_entropy(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-log softmax(z)_y per example, in float64 (shifted by the max, as it must be)."""
    z = np.asarray(z, np.float64)
    shifted = z - z.max(-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(log_softmax, np.asarray(y)[:, None], -1)[:, 0]


def numpy_binary_cross_entropy(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)) in its stable form, float64."""
    z = np.asarray(z, np.float64)
    y = (np.asarray(y) > 0).astype(np.float64)
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


# ---------------------------------------------------------------------------
# Softmax cross-entropy.


@given(seed=seeds, n=batch_sizes, k=class_counts, scale=st.sampled_from([0.1, 3.0, 30.0]))
def test_cross_entropy_is_minus_log_softmax(seed, n, k, scale):
    z, y = logits_and_labels(seed, n, k, scale)
    expected = numpy_cross_entropy(z, y)
    np.testing.assert_allclose(cross_entropy(z, y), expected.mean(), rtol=1e-5, atol=1e-5)
    # Per example too (a one-hot weight picks one out).
    for i in range(min(n, 3)):
        weights = np.eye(n, dtype=np.float32)[i]
        np.testing.assert_allclose(cross_entropy(z, y, weights), expected[i], rtol=1e-5, atol=1e-5)


@given(seed=seeds, n=batch_sizes, k=class_counts, shift=st.floats(-100, 100))
def test_cross_entropy_is_non_negative_and_shift_invariant(seed, n, k, shift):
    z, y = logits_and_labels(seed, n, k, 3.0)
    value = float(cross_entropy(z, y))
    assert value >= 0
    assert float(cross_entropy(z + shift, y)) == pytest.approx(value, rel=1e-4, abs=1e-4)


@given(seed=seeds, n=batch_sizes)
def test_two_class_cross_entropy_is_binary_cross_entropy_of_the_logit_difference(seed, n):
    z, y = logits_and_labels(seed, n, 2, 3.0)
    np.testing.assert_allclose(
        cross_entropy(z, y), binary_cross_entropy(z[:, 1] - z[:, 0], y), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    ("logits", "label", "expected"),
    [
        ([1e4, -1e4], 0, 0.0),
        ([1e4, -1e4], 1, 2e4),
        ([1e4, 1e4], 1, np.log(2)),
        ([-1e4, -1e4, -1e4], 2, np.log(3)),
        ([1e4, 0.0, -1e4], 2, 2e4),
        ([3e38, 0.0], 0, 0.0),
        ([3e38, 0.0], 1, 3e38),
        ([-3e38, 0.0], 0, 3e38),
        ([-3e38, 0.0], 1, 0.0),
        ([1e38, -1e38], 1, 2e38),
        ([-3.4e38, -3.4e38], 0, np.log(2)),  # log 2, within the rounding of -3.4e38
    ],
)
def test_cross_entropy_is_finite_for_huge_logits(logits, label, expected):
    # One example each, so that the exact loss is representable in float32
    # (-log softmax of [3e38, -3e38] at the second class, 6e38, is not).
    z, y = jnp.array([logits], jnp.float32), jnp.array([label])
    value = float(cross_entropy(z, y))
    assert np.isfinite(value)
    # The logits themselves carry a rounding error of about eps * |z|.
    tolerance = 1e-6 + 4 * np.finfo(np.float32).eps * np.max(np.abs(logits))
    assert value == pytest.approx(expected, rel=1e-6, abs=tolerance)
    grad = jax.grad(losses.cross_entropy)(z, y)  # softmax - one_hot, in [-1, 1]
    assert np.all(np.isfinite(grad))
    assert np.all(np.abs(grad) <= 1)


def test_cross_entropy_of_two_equal_huge_logits_is_finite():
    # log 2 is lost next to 3e38 in float32; what matters is that nothing overflows.
    value = float(cross_entropy(jnp.array([[3e38, 3e38]]), jnp.array([0])))
    assert np.isfinite(value)
    assert 0 <= value <= np.log(2) + 1e-6


def test_the_mean_of_huge_finite_losses_is_finite():
    z = jnp.array([[3e38, 0.0], [3e38, 0.0]], jnp.float32)
    assert np.isfinite(float(cross_entropy(z, jnp.array([1, 1]))))


# ---------------------------------------------------------------------------
# Binary cross-entropy, mean squared error, hinge.


@given(seed=seeds, n=batch_sizes, scale=st.sampled_from([0.1, 3.0, 100.0]))
def test_binary_cross_entropy_matches_the_stable_formula(seed, n, scale):
    z, y = logits_and_labels(seed, n, 2, scale)
    z = z[:, 0]
    expected = numpy_binary_cross_entropy(z, y).mean()
    np.testing.assert_allclose(binary_cross_entropy(z, y), expected, rtol=1e-5, atol=1e-6)
    # [n, 1] logits (one output unit) and ±1 labels mean the same.
    np.testing.assert_allclose(binary_cross_entropy(z[:, None], y), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(binary_cross_entropy(z, 2 * y - 1), expected, rtol=1e-5, atol=1e-6)
    # Flipping the logit and the label changes nothing; the loss is never negative.
    np.testing.assert_allclose(binary_cross_entropy(-z, 1 - y), expected, rtol=1e-5, atol=1e-6)
    assert float(binary_cross_entropy(z, y)) >= 0


@pytest.mark.parametrize(
    ("logit", "label", "expected"),
    [
        (1e4, 1, 0.0),
        (1e4, 0, 1e4),
        (-1e4, 1, 1e4),
        (-1e4, 0, 0.0),
        (3e38, 0, 3e38),
        (3e38, 1, 0.0),
        (-3e38, 1, 3e38),
        (0.0, 1, np.log(2)),
    ],
)
def test_binary_cross_entropy_is_finite_for_huge_logits(logit, label, expected):
    z, y = jnp.array([logit], jnp.float32), jnp.array([label])
    value = float(binary_cross_entropy(z, y))
    assert np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert np.all(np.isfinite(jax.grad(losses.binary_cross_entropy)(z, y)))


@given(seed=seeds, n=batch_sizes)
def test_mean_squared_error(seed, n):
    k_p, k_t = jax.random.split(jax.random.key(seed))
    predictions = jax.random.normal(k_p, (n, 1))
    targets = jax.random.normal(k_t, (n,))
    expected = np.mean((np.asarray(predictions[:, 0], np.float64) - np.asarray(targets)) ** 2)
    np.testing.assert_allclose(mean_squared_error(predictions, targets), expected, rtol=1e-5)
    np.testing.assert_allclose(mean_squared_error(predictions[:, 0], targets), expected, rtol=1e-5)
    assert float(mean_squared_error(targets, targets)) == 0


def test_mean_squared_error_takes_integer_targets():
    value = mean_squared_error(jnp.array([[0.5], [2.0]]), jnp.array([1, 2]))
    assert float(value) == pytest.approx((0.25 + 0.0) / 2)


@pytest.mark.parametrize("signed", [False, True])
def test_hinge(signed):
    z = jnp.array([2.0, 0.5, -0.5, -2.0, 0.0, 1.0])
    y01 = jnp.array([1, 1, 1, 0, 0, 0])
    # max(0, 1 - s z) with s = +1 for label 1 and -1 for label 0 (or -1).
    per_example = np.array([0.0, 0.5, 1.5, 0.0, 1.0, 2.0])
    y = 2 * y01 - 1 if signed else y01
    assert float(hinge(z, y)) == pytest.approx(per_example.mean())
    assert float(hinge(z[:, None], y)) == pytest.approx(per_example.mean())


@given(seed=seeds, n=batch_sizes)
def test_hinge_is_non_negative_and_zero_beyond_the_margin(seed, n):
    z, y = logits_and_labels(seed, n, 2, 3.0)
    z = z[:, 0]
    assert float(hinge(z, y)) >= 0
    s = 2 * y - 1
    assert float(hinge(s * (1 + jnp.abs(z)), y)) == 0  # every margin >= 1


# ---------------------------------------------------------------------------
# Accuracy.


def test_accuracy_of_k_class_logits():
    z = jnp.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 1.0, 5.0], [4.0, 0.0, 0.0]])
    assert float(accuracy(z, jnp.array([0, 1, 2, 0]))) == 1.0
    assert float(accuracy(z, jnp.array([0, 1, 2, 1]))) == 0.75
    assert float(accuracy(z, jnp.array([1, 2, 0, 1]))) == 0.0


def test_accuracy_of_one_logit():
    # logit > 0 predicts class 1 (or +1); a logit of exactly 0 predicts class 0 (or -1).
    z = jnp.array([2.0, -1.0, 0.0, 0.5])
    for labels in (jnp.array([1, 0, 0, 1]), jnp.array([1, -1, -1, 1])):
        assert float(accuracy(z, labels)) == 1.0
        assert float(accuracy(z[:, None], labels)) == 1.0
        assert float(accuracy(-z, labels)) == 0.25  # only the tie at 0 stays right


@given(seed=seeds, n=batch_sizes, k=class_counts)
def test_accuracy_agrees_with_argmax(seed, n, k):
    z, y = logits_and_labels(seed, n, k, 1.0)
    expected = np.mean(np.argmax(np.asarray(z), -1) == np.asarray(y))
    assert float(accuracy(z, y)) == pytest.approx(expected)
    assert float(accuracy(z, jnp.argmax(z, -1))) == 1.0


# Accuracy lies in [0, 1], and a perfect score is exactly 1.0 (the mean divides
# once, after summing: summing values / n read 1.0000001 for n = 10 or 40).


def _perfect_logits(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Random logits whose argmax (or sign, for k = 1) is ``labels``."""
    z = np.abs(logits_and_labels(seed, 16, 10, 1.0)[0].ravel())  # 160 magnitudes
    z = np.resize(z, labels.shape[0] * max(k, 1)).reshape(labels.shape[0], max(k, 1))
    if k == 1:
        return np.where(labels == 1, 0.5 + z[:, 0], -0.5 - z[:, 0]).astype(np.float32)
    z[np.arange(labels.shape[0]), labels] = z.max() + 1.0
    return z.astype(np.float32)


weights_kinds = st.sampled_from(["none", "ones", "mask", "positive"])


def _weights(kind: str, n: int, draw: st.DataObject) -> np.ndarray | None:
    if kind == "none":
        return None
    if kind == "ones":
        return np.ones(n, np.float32)
    if kind == "mask":  # padding: the real examples first, then zeros
        real = draw.draw(st.integers(1, n))
        return (np.arange(n) < real).astype(np.float32)
    values = draw.draw(st.lists(st.floats(2.0**-10, 2.0**20, width=32), min_size=n, max_size=n))
    return np.asarray(values, np.float32)


# Under jit without weights the divisor of losses._mean is the constant n, and XLA
# would rewrite `sum / n` into `sum * (1 / n)`, so that a perfect accuracy read
# 0.99999994 for n = 41, 47, 55, ... (eagerly it was 1.0); 41 and 107 are two such n.
@pytest.mark.parametrize(
    "n",
    [
        10,
        40,
        160,
        41,
        107,
    ],
)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_perfect_accuracy_is_exactly_one(n, k):
    labels = (np.arange(n) * 7 % max(k, 2)).astype(np.int32)
    z = _perfect_logits(labels, k, n)
    assert float(losses.accuracy(jnp.asarray(z), jnp.asarray(labels))) == 1.0  # eagerly
    assert float(accuracy(z, labels, jnp.ones(n))) == 1.0
    mask = (np.arange(n) < n - 3).astype(np.float32)  # a padded last batch
    wrong = labels.copy()
    wrong[n - 3 :] = 1 - np.minimum(wrong[n - 3 :], 1)  # padding entries may be wrong
    assert float(accuracy(z, wrong, mask)) == 1.0
    assert float(accuracy(z, labels)) == 1.0  # compiled, no weights


def _labels(data: st.DataObject, n: int, k: int) -> np.ndarray:
    values = data.draw(st.lists(st.integers(0, max(k, 2) - 1), min_size=n, max_size=n))
    return np.asarray(values, np.int32)


@given(
    n=st.integers(1, 300),
    k=st.sampled_from([1, 2, 5]),
    seed=seeds,
    kind=weights_kinds,
    data=st.data(),
)
def test_accuracy_lies_in_zero_one_and_a_perfect_score_is_exactly_one(n, k, seed, kind, data):
    labels = _labels(data, n, k)
    weights = _weights(kind, n, data)
    perfect = _perfect_logits(labels, k, seed)
    if weights is not None:  # (without weights: see the next test)
        assert float(accuracy(perfect, labels, weights)) == 1.0
    # Any logits: a score in [0, 1], and 0 when every example is wrong.
    z = np.resize(logits_and_labels(seed, 16, 10, 3.0)[0].ravel(), (n, k)).astype(np.float32)
    score = float(accuracy(z, labels, weights))
    assert 0.0 <= score <= 1.0
    assert 0.0 <= float(accuracy(perfect, labels, weights)) <= 1.0
    if k == 1:
        assert float(accuracy(-perfect, labels, weights)) == 0.0


@given(n=st.integers(1, 300), k=st.sampled_from([1, 2, 5]), seed=seeds, data=st.data())
def test_a_perfect_score_without_weights_is_exactly_one_for_every_n(n, k, seed, data):
    labels = _labels(data, n, k)
    assert float(accuracy(_perfect_logits(labels, k, seed), labels)) == 1.0


# ---------------------------------------------------------------------------
# Weights.

ALL = {
    "cross_entropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "mse": mean_squared_error,
    "hinge": hinge,
    "accuracy": accuracy,
}


def _inputs(name: str, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    z, y = logits_and_labels(seed, n, 3 if name in ("cross_entropy", "accuracy") else 1, 2.0)
    return z, (z[:, 0] + 0.5 if name == "mse" else y)


@given(
    name=st.sampled_from(sorted(ALL)),
    seed=seeds,
    mask=st.lists(st.booleans(), min_size=5, max_size=5).filter(any),
)
def test_a_zero_one_mask_is_the_mean_over_the_kept_examples(name, seed, mask):
    z, y = _inputs(name, seed, 5)
    keep = np.flatnonzero(mask)
    f = ALL[name]
    masked = float(f(z, y, np.asarray(mask, np.float32)))
    subset = float(f(z[keep], y[keep]))
    assert masked == pytest.approx(subset, rel=1e-5, abs=1e-6)


@given(
    name=st.sampled_from(sorted(ALL)),
    seed=seeds,
    weights=st.lists(st.floats(0, 3), min_size=16, max_size=16).filter(lambda w: sum(w) >= 1),
)
def test_weights_give_the_weighted_mean(name, seed, weights):
    # sum_i w_i l_i / sum_i w_i, with the per-example losses read off one-hot weights.
    z, y = _inputs(name, seed, 16)
    f = ALL[name]
    eye = np.eye(16, dtype=np.float32)
    per_example = np.array([float(f(z, y, e)) for e in eye])
    w = np.asarray(weights, np.float64)
    expected = float(w @ per_example / w.sum())
    assert float(f(z, y, w.astype(np.float32))) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_the_weighted_mean_does_not_depend_on_the_scale_of_the_weights():
    z = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    y = jnp.array([0, 1])
    plain = float(cross_entropy(z, y))
    assert float(cross_entropy(z, y, jnp.array([0.25, 0.25]))) == pytest.approx(plain)


def test_all_zero_weights_give_zero_not_nan():
    z, y = logits_and_labels(0, 4, 3, 1.0)
    for name in ("cross_entropy", "accuracy"):
        assert float(ALL[name](z, y, jnp.zeros(4))) == 0.0


# ---------------------------------------------------------------------------
# Penalties.


def _small_model_params() -> tuple[models.MLP, dict]:
    model = models.MLP(hidden=(2,), n_outputs=1, layer_norm=True)
    params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 2)))
    known = {
        "hidden_0": {
            "kernel": jnp.array([[1.0, -2.0], [3.0, -4.0]]),
            "bias": jnp.array([5.0, 6.0]),
        },
        "norm_0": {"scale": jnp.array([7.0, -8.0]), "bias": jnp.array([9.0, 10.0])},
        "output": {"kernel": jnp.array([[0.5], [-1.5]]), "bias": jnp.array([11.0])},
    }
    assert jax.tree.structure(params) == jax.tree.structure({"params": known})
    return model, {"params": known}


def test_penalties_count_only_the_kernels():
    _, params = _small_model_params()
    # Kernels: 1, -2, 3, -4, 0.5, -1.5. Biases and the layer norm's scale are not weights.
    assert float(losses.l1_penalty(params)) == 12.0
    assert float(losses.l2_penalty(params)) == 0.5 * (1 + 4 + 9 + 16 + 0.25 + 2.25)
    changed = jax.tree_util.tree_map_with_path(
        lambda path, a: a if path[-1].key == "kernel" else 100 * a, params
    )
    assert float(losses.l1_penalty(changed)) == 12.0
    assert float(losses.l2_penalty(changed)) == 16.25
    # The gradient of the L2 penalty is the kernel itself on kernels, zero elsewhere.
    grads = jax.grad(losses.l2_penalty)(params)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        expected = params["params"][path[1].key][path[2].key] if path[-1].key == "kernel" else 0
        np.testing.assert_array_equal(g, expected)


def test_penalties_of_an_initialised_mlp():
    # The chapter's MLP, its parameter shapes filled with random numbers.
    model = models.MLP()
    shapes = jax.eval_shape(model.init, jax.random.key(1), jnp.zeros((1, 2)))
    normal = np.asarray(_random_pool(jax.random.key(1))[0])
    params = jax.tree.map(lambda a: normal[: a.size].reshape(a.shape) + 0.1, shapes)
    kernels = [np.asarray(params["params"][name]["kernel"]) for name in models.layer_names(params)]
    l1 = sum(np.abs(k).sum() for k in kernels)
    l2 = 0.5 * sum((k.astype(np.float64) ** 2).sum() for k in kernels)
    assert float(jax.jit(losses.l1_penalty)(params)) == pytest.approx(l1, rel=1e-6)
    assert float(jax.jit(losses.l2_penalty)(params)) == pytest.approx(l2, rel=1e-6)
    all_leaves = sum(np.abs(np.asarray(leaf)).sum() for leaf in jax.tree.leaves(params))
    assert l1 < all_leaves  # the biases would count if the penalty were over every leaf


def test_penalties_of_a_model_without_kernels_are_zero():
    assert float(losses.l1_penalty({})) == 0.0
    assert float(losses.l2_penalty({"params": {"norm_0": {"scale": jnp.ones(3)}}})) == 0.0


# ---------------------------------------------------------------------------
# The registry.


def test_get_loss_by_name_and_errors():
    assert set(losses.LOSSES) == {"cross_entropy", "binary_cross_entropy", "mse", "hinge"}
    assert losses.get_loss("cross_entropy") is losses.cross_entropy
    assert losses.get_loss("binary_cross_entropy") is losses.binary_cross_entropy
    assert losses.get_loss("mse") is losses.mean_squared_error
    assert losses.get_loss("hinge") is losses.hinge
    assert set(losses.REGRESSION_LOSSES) == {"mse"}

    def custom(outputs, targets, weights=None):
        return jnp.zeros(())

    assert losses.get_loss(custom) is custom
    with pytest.raises(ValueError, match=r"unknown loss 'crossentropy'.*'cross_entropy'"):
        losses.get_loss("crossentropy")
    with pytest.raises(ValueError, match="'MSE'"):
        losses.get_loss("MSE")
    with pytest.raises(TypeError, match="loss must be"):
        losses.get_loss(3)


# ---------------------------------------------------------------------------
# losses.task: the one rule for whether training is regression.


def test_task_of_every_registered_name_and_function():
    for name, loss in losses.LOSSES.items():
        expected = "regression" if name in losses.REGRESSION_LOSSES else "classification"
        assert losses.task(name) == expected
        assert losses.task(loss) == expected  # the registered callable has its name's task
    assert losses.task("mse") == losses.task(losses.mean_squared_error) == "regression"
    assert losses.task("cross_entropy") == "classification"
    assert losses.task("hinge") == "classification"
    assert losses.TASKS == ("classification", "regression")


def test_an_explicit_task_wins_over_everything():
    def declared(outputs, targets, weights=None):
        return jnp.zeros(())

    declared.task = "classification"
    for loss in ("mse", "cross_entropy", losses.mean_squared_error, declared):
        for task in losses.TASKS:
            assert losses.task(loss, task) == task
            assert losses.task(loss, task=task) == task


def test_a_users_loss_declares_its_task_and_is_classification_otherwise():
    def huber(outputs, targets, weights=None):
        return jnp.zeros(())

    assert losses.task(huber) == "classification"  # undeclared: classification
    huber.task = "regression"
    assert losses.task(huber) == "regression"
    huber.task = "classification"
    assert losses.task(huber) == "classification"

    class Scaled:  # any callable, not only functions
        task = "regression"

        def __call__(self, outputs, targets, weights=None):
            return jnp.zeros(())

    assert losses.task(Scaled()) == "regression"
    # A wrapper of a registered regression loss is a new callable: it must declare its task.
    wrapped = functools.partial(losses.mean_squared_error)
    assert losses.task(wrapped) == "classification"
    wrapped.task = "regression"  # type: ignore[attr-defined]
    assert losses.task(wrapped) == "regression"


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "words"),
    [
        (("mse",), {"task": "Regression"}, ValueError, ["task", "'Regression'", "regression"]),
        (("mse",), {"task": "binary"}, ValueError, ["task", "'binary'", "classification"]),
        (("mse",), {"task": 1}, TypeError, ["task", "1"]),
        (("msee",), {}, ValueError, ["loss", "'msee'", "mse"]),
        ((3,), {}, TypeError, ["loss must be a name", "got 3", "callable"]),
        ((None,), {}, TypeError, ["loss must be a name", "got None"]),
    ],
)
def test_task_rejects_bad_input(args, kwargs, error, words):
    with pytest.raises(error) as info:
        losses.task(*args, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_a_bad_declared_task_names_the_loss():
    def odd(outputs, targets, weights=None):
        return jnp.zeros(())

    odd.task = "ranking"
    with pytest.raises(ValueError, match=r"odd.task.*'ranking'.*classification"):
        losses.task(odd)
