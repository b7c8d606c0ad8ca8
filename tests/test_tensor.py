"""Tests of dlvr_jax.tensor: the from-scratch products against a float64 reference, PCA, softmax."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlvr_jax import models, tensor

ROOT = Path(__file__).resolve().parents[1]
seeds = st.integers(0, 2**32 - 1)


def operands(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Random float32 arrays (drawn with jax.random), as NumPy arrays."""
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return [
        np.asarray(jax.random.normal(k, s, jnp.float32)) for k, s in zip(keys, shapes, strict=True)
    ]


def reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a.astype(np.float64), b.astype(np.float64))


def assert_close(result, a: np.ndarray, b: np.ndarray) -> None:
    """float32 agreement with the float64 product, the tolerance growing with k."""
    expected = reference(a, b)
    result = np.asarray(result)
    assert result.shape == expected.shape
    assert result.dtype == np.result_type(a, b)
    k = a.shape[-1]
    # Each entry sums k products of N(0, 1) numbers: rounding error ~ eps * sqrt(k) * |terms|.
    scale = np.sqrt(np.maximum(reference(np.abs(a), np.abs(b)), 1.0))
    tolerance = 8 * np.finfo(np.float32).eps * max(k, 1) ** 0.5 * scale
    np.testing.assert_array_less(np.abs(result - expected), tolerance + 1e-30)


def primitives(jaxpr: jax.extend.core.Jaxpr) -> set[str]:
    """Every primitive in a jaxpr and in all its sub-jaxprs (scan, while, pjit, cond...)."""
    found = set()
    for eqn in jaxpr.eqns:
        found.add(eqn.primitive.name)
        for param in eqn.params.values():
            for value in param if isinstance(param, (list, tuple)) else [param]:
                inner = getattr(value, "jaxpr", value)
                if isinstance(inner, jax.extend.core.Jaxpr):
                    found |= primitives(inner)
    return found


# ---------------------------------------------------------------------------
# The products agree with the reference.

# Few sizes, because each distinct shape compiles once.
dims = st.sampled_from([0, 1, 3, 8, 13])


@settings(max_examples=12)
@given(seed=seeds, m=dims, k=dims, n=dims, block=st.sampled_from([1, 3, 8]))
def test_matmul_blocked_equals_reference(seed, m, k, n, block):
    a, b = operands(seed, (m, k), (k, n))
    assert_close(tensor.matmul_blocked(a, b, block=block, panel=5), a, b)


@settings(max_examples=8)
@given(seed=seeds, m=dims, k=dims, n=dims)
def test_matmul_naive_equals_reference(seed, m, k, n):
    a, b = operands(seed, (m, k), (k, n))
    assert_close(tensor.matmul_naive(a, b), a, b)


@pytest.mark.slow
@settings(max_examples=8)
@given(
    seed=seeds,
    batch=st.sampled_from([0, 1, 3]),
    m=dims,
    k=dims,
    method=st.sampled_from(tensor.METHODS),
)
def test_batched_matmul_equals_reference(seed, batch, m, k, method):
    a, b = operands(seed, (batch, m, k), (batch, k, 5))
    assert_close(tensor.batched_matmul(a, b, method=method, block=3), a, b)


def test_batched_matmul_equals_a_loop_of_products():
    a, b = operands(1, (4, 9, 11), (4, 11, 7))
    batched = tensor.batched_matmul(a, b, block=4)
    for i in range(4):
        np.testing.assert_array_equal(batched[i], tensor.matmul_blocked(a[i], b[i], block=4))


@pytest.mark.parametrize(
    ("shape_a", "shape_b", "block", "panel"),
    [
        ((37, 70), (70, 29), 8, 512),  # k = 8 * 8 + 6: the last tile is padded
        ((5, 100), (100, 1100), 8, 512),  # three panels of 367, 367 and 366 columns
        ((64, 64), (64, 64), 64, 16),  # one tile, four exact panels
        ((17, 9), (9, 33), 10, 32),  # block > k, panel not dividing n
    ],
)
def test_matmul_blocked_on_tiles_that_do_not_fit(shape_a, shape_b, block, panel):
    """A wrong tile (an off-by-one, a dropped remainder, a misplaced panel) fails here."""
    a, b = operands(7, shape_a, shape_b)
    assert_close(tensor.matmul_blocked(a, b, block=block, panel=panel), a, b)


def test_matmul_blocked_at_the_benchmark_size():
    a, b = operands(3, (1024, 1024), (1024, 1024))
    assert_close(tensor.matmul_blocked(a, b), a, b)


def test_products_work_inside_a_users_jit_and_vmap():
    a, b = operands(4, (6, 10), (10, 7))
    expected = tensor.matmul_blocked(a, b, block=4)
    np.testing.assert_array_equal(jax.jit(tensor.matmul_blocked)(a, b), tensor.matmul_blocked(a, b))
    closed = jax.jit(lambda: tensor.matmul_blocked(a, b, block=4))()  # concrete, under a trace
    np.testing.assert_array_equal(closed, expected)
    rows = jax.vmap(lambda row: tensor.matmul_blocked(row[None, :], b, block=4)[0])(a)
    np.testing.assert_allclose(rows, expected, rtol=1e-6)


def test_integer_and_mixed_dtypes_follow_numpy_promotion():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    b = np.arange(8, dtype=np.int32).reshape(4, 2)
    np.testing.assert_array_equal(tensor.matmul_blocked(a, b, block=3), a @ b)
    np.testing.assert_array_equal(tensor.matmul_naive(a, b), a @ b)
    mixed = tensor.matmul_blocked(a, b.astype(np.float32))
    assert mixed.dtype == jnp.float32


def test_float64_products_are_exact_to_float64():
    with jax.enable_x64(True):
        a, b = (np.asarray(x, np.float64) for x in operands(5, (20, 30), (30, 10)))
        for result in (tensor.matmul_blocked(a, b, block=7), tensor.matmul_naive(a, b)):
            assert result.dtype == jnp.float64
            np.testing.assert_allclose(result, a @ b, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# From scratch: no dot_general anywhere, and the kernels are jitted.


@pytest.mark.parametrize("method", ["blocked", "naive"])
@pytest.mark.parametrize("batched", [False, True])
def test_from_scratch_kernels_hold_no_dot_general(method, batched):
    shape_a, shape_b = ((2, 9, 20), (2, 20, 1030)) if batched else ((9, 20), (20, 1030))
    a, b = jnp.ones(shape_a), jnp.ones(shape_b)
    public = tensor.batched_matmul if batched else tensor.matmul_blocked
    if method == "naive":
        public = (
            (lambda a, b: tensor.batched_matmul(a, b, method="naive"))
            if batched
            else tensor.matmul_naive
        )
    found = primitives(jax.make_jaxpr(public)(a, b).jaxpr)
    assert "dot_general" not in found
    assert {"scan", "while"} & found  # the loop is there, compiled
    # The test can see a dot: the peer's jaxpr has one.
    assert "dot_general" in primitives(jax.make_jaxpr(jnp.matmul)(a, b).jaxpr)


def test_blocked_kernel_compiles_without_a_library_dot():
    """On CPU the fused sum is not handed to a library dot; no dot survives in the HLO."""
    a, b = jnp.ones((64, 40)), jnp.ones((40, 64))
    hlo = tensor.kernel("blocked").lower(a, b, block=8, panel=512).compile().as_text()
    assert " dot(" not in hlo
    if jax.default_backend() == "cpu" and "ynn" in jax.jit(jnp.matmul).lower(a, b).as_text():
        assert "ynn" not in hlo  # pragma: no cover - only with a YNNPACK-enabled jaxlib


# ---------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: tensor.matmul_blocked(np.ones((2, 3)), np.ones((4, 2))), ValueError, "a.shape"),
        (lambda: tensor.matmul_naive(np.ones((2, 3)), np.ones((2, 2))), ValueError, r"\(3\)"),
        (lambda: tensor.matmul_blocked(np.ones((2, 3)), np.ones((3, 2)), block=0), ValueError,
         "block must be an int >= 1, got 0"),
        (lambda: tensor.matmul_blocked(np.ones((2, 3)), np.ones((3, 2)), block=-4), ValueError,
         "block"),
        (lambda: tensor.matmul_blocked(np.ones((2, 3)), np.ones((3, 2)), block=2.5), TypeError,
         "block"),
        (lambda: tensor.matmul_blocked(np.ones((2, 3)), np.ones((3, 2)), panel=0), ValueError,
         "panel"),
        (lambda: tensor.matmul_blocked(np.ones(3), np.ones((3, 2))), ValueError,
         r"a must have rank 2, got shape \(3,\)"),
        (lambda: tensor.matmul_blocked(jnp.ones((2, 3)), jnp.ones((1, 3, 2))), ValueError,
         "b must have rank 2"),
        (lambda: tensor.matmul_blocked([["x"]], np.ones((1, 1))), TypeError, "numeric"),
        (lambda: tensor.matmul_blocked(np.ones((1, 1), bool), np.ones((1, 1))), TypeError,
         "numeric"),
        (lambda: tensor.batched_matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2))), ValueError,
         "batch"),
        (lambda: tensor.batched_matmul(np.ones((2, 3)), np.ones((3, 2))), ValueError, "rank 3"),
        (lambda: tensor.batched_matmul(np.ones((1, 2, 3)), np.ones((1, 3, 2)), method="fast"),
         ValueError, "method"),
        (lambda: tensor.matmul_naive(jnp.ones((600, 600)), jnp.ones((600, 600))), ValueError,
         "teaching"),
        (lambda: tensor.kernel("strassen"), ValueError, "method"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------
# PCA.


@settings(max_examples=10)
@given(seed=seeds, n=st.sampled_from([5, 40]), d=st.sampled_from([2, 6]))
def test_pca_components_are_orthonormal_and_sorted(seed, n, d):
    (x,) = operands(seed, (n, d))
    x = x * np.linspace(0.5, 3.0, d, dtype=np.float32)  # unequal variances
    result = tensor.pca(x, d)
    components = np.asarray(result.components, np.float64)
    np.testing.assert_allclose(components @ components.T, np.eye(d), atol=1e-5)
    variance = np.asarray(result.explained_variance)
    assert np.all(np.diff(variance) <= 1e-6 * variance[0])
    assert np.all(variance >= 0)
    # All components: the ratios sum to one and the projection reconstructs x exactly.
    assert float(np.sum(result.explained_variance_ratio)) == pytest.approx(1.0, abs=1e-5)
    z = (x - np.asarray(result.mean)) @ components.T
    np.testing.assert_allclose(z @ components + np.asarray(result.mean), x, atol=1e-4)
    # The variances are the variances of the projections, and match NumPy's eigenvalues.
    np.testing.assert_allclose(np.var(z, axis=0, ddof=1), variance, rtol=1e-3, atol=1e-5)
    expected = np.sort(np.linalg.eigvalsh(np.cov(x.astype(np.float64), rowvar=False)))[::-1]
    np.testing.assert_allclose(variance, expected, rtol=1e-3, atol=1e-5)


def test_pca_finds_the_direction_of_largest_variance():
    (noise,) = operands(2, (500, 2))
    direction = np.array([0.6, 0.8], np.float32)
    x = noise * np.float32(0.05) + np.linspace(-3, 3, 500, dtype=np.float32)[:, None] * direction
    result = tensor.pca(x, 1)
    assert result.components.shape == (1, 2)
    np.testing.assert_allclose(result.components[0], direction, atol=1e-2)  # sign fixed: +
    assert float(result.explained_variance_ratio[0]) > 0.99


def test_pca_rejects_bad_input():
    with pytest.raises(ValueError, match="k must be at most"):
        tensor.pca(np.ones((5, 3)), 4)
    with pytest.raises(ValueError, match="k must be an int >= 1, got 0"):
        tensor.pca(np.ones((5, 3)), 0)
    with pytest.raises(ValueError, match="at least 2 rows"):
        tensor.pca(np.ones((1, 3)), 1)
    with pytest.raises(ValueError, match="finite"):
        tensor.pca(np.array([[1.0, np.nan], [0.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="rank 2"):
        tensor.pca(np.ones(4), 1)


# ---------------------------------------------------------------------------
# Weight spectrum.


def test_weight_spectrum_matches_numpy_svd():
    model = models.MLP(hidden=(8, 5, 3))
    params = model.init(jax.random.key(0), jnp.zeros((1, 2)))
    spectrum = tensor.weight_spectrum(params)
    assert list(spectrum) == ["hidden_0", "hidden_1", "hidden_2", "output"]
    assert [s.shape for s in spectrum.values()] == [(2,), (5,), (3,), (2,)]
    for name, values in spectrum.items():
        kernel = np.asarray(params["params"][name]["kernel"], np.float64)
        np.testing.assert_allclose(values, np.linalg.svd(kernel, compute_uv=False), rtol=1e-5)
    # Without the "params" level, the same answer.
    bare = tensor.weight_spectrum(params["params"])
    assert list(bare) == list(spectrum)


def test_weight_spectrum_orders_layers_naturally_and_rejects_trees_without_kernels():
    kernels = {f"hidden_{i}": {"kernel": jnp.eye(2) * (i + 1)} for i in (10, 2, 0)}
    spectrum = tensor.weight_spectrum({**kernels, "output": {"kernel": jnp.ones((2, 1))}})
    assert list(spectrum) == ["hidden_0", "hidden_2", "hidden_10", "output"]
    np.testing.assert_allclose(spectrum["hidden_10"], [11.0, 11.0])
    with pytest.raises(ValueError, match="no 2-D 'kernel'"):
        tensor.weight_spectrum({"bias": jnp.ones(3)})
    with pytest.raises(TypeError, match="mapping"):
        tensor.weight_spectrum([jnp.ones((2, 2))])


# ---------------------------------------------------------------------------
# Softmax and its Jacobian.

scores = st.lists(st.floats(-30, 30, width=32), min_size=1, max_size=6)


@given(z=scores, shift=st.floats(-100, 100))
def test_softmax_is_a_distribution_invariant_to_a_constant(z, shift):
    z = np.asarray(z, np.float32)
    s = tensor.softmax(z)
    assert float(jnp.sum(s)) == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.asarray(s) >= 0)
    np.testing.assert_allclose(tensor.softmax(z + np.float32(shift)), s, atol=1e-5)
    expected = np.exp(z.astype(np.float64) - z.max())
    np.testing.assert_allclose(s, expected / expected.sum(), atol=1e-6)


@given(z=scores)
def test_softmax_jacobian_is_diag_s_minus_s_s_transposed(z):
    with jax.enable_x64(True):
        z = np.asarray(z, np.float64)
        jacobian = np.asarray(jax.jacobian(tensor.softmax)(z))
        s = np.asarray(tensor.softmax(z))
        np.testing.assert_allclose(jacobian, np.diag(s) - np.outer(s, s), atol=1e-12)
        np.testing.assert_allclose(tensor.softmax_jacobian(z), jacobian, atol=1e-12)
        np.testing.assert_allclose(jacobian.sum(axis=1), 0.0, atol=1e-12)
        np.testing.assert_allclose(jacobian, jacobian.T, atol=1e-12)


def test_softmax_is_stable_and_follows_the_axis():
    z = np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]], np.float32)
    rows = tensor.softmax(z)
    np.testing.assert_allclose(rows, [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-6)
    columns = tensor.softmax(z, axis=0)
    np.testing.assert_allclose(np.sum(columns, axis=0), [1.0, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(jax.jit(tensor.softmax)(z), rows)
    with pytest.raises(ValueError, match="axis"):
        tensor.softmax(z, axis=2)
    with pytest.raises(ValueError, match="rank"):
        tensor.softmax(np.float32(1.0))
    with pytest.raises(ValueError, match="finite"):
        tensor.softmax(np.array([np.inf, 0.0]))


# ---------------------------------------------------------------------------
# The benchmark runs end to end.


@pytest.mark.e2e
def test_matmul_benchmark_runs(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "matmul", "--sizes", "32,64", "--batched", "4x32",
         "--repeats", "3", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )  # fmt: skip
    table = (tmp_path / "results.md").read_text()
    assert "matmul_blocked" in table
    assert "jnp.matmul" in table
    assert (tmp_path / "results.json").exists()


def test_plot_matmul_scaling_draws_one_line_per_method():
    from dlvr_jax import viz

    rows = [
        {"method": method, "n": n, "gflops": speed * n / 64}
        for method, speed in (("matmul_blocked", 1.0), ("jnp.matmul", 2.0), ("numpy", 1.5))
        for n in (256, 64, 128)
    ]
    figure = viz.plot_matmul_scaling({"platform": "cpu", "square": rows})
    (ax,) = figure.axes
    assert [line.get_label() for line in ax.get_lines()] == [
        "matmul_blocked",
        "jnp.matmul",
        "numpy",
    ]
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), [64, 128, 256])
    assert ax.get_xscale() == "log"
    assert ax.get_yscale() == "log"
    with pytest.raises(TypeError, match="square"):
        viz.plot_matmul_scaling({"rows": rows})
    with pytest.raises(ValueError, match="gflops"):
        viz.plot_matmul_scaling({"square": [{"method": "x", "n": 1}]})
