"""Tensor exercises (§1.4, Exercise 1.4): matrix multiplication from scratch, PCA, softmax.

The contract of the three matrix products is ``jnp.matmul``'s for 2-D arrays::

    c = matmul_naive(a, b)                     # a: [m, k], b: [k, n] -> c: [m, n]
    c = matmul_blocked(a, b, block=8)          # the same product, tiled and fast
    c = batched_matmul(a, b, method="blocked") # a: [batch, m, k], b: [batch, k, n] (vmap)

None of them calls ``jnp.dot``, ``matmul``, ``einsum``, ``tensordot`` or ``@``:
their jaxprs hold no ``dot_general``. The result dtype is
``jnp.result_type(a, b)``; empty dimensions give an empty or all-zero result,
as in NumPy.

**matmul_naive** is the textbook triple loop, ``c[i, j] = Σ_p a[i, p] b[p, j]``,
written as three nested ``lax.fori_loop``. It computes one scalar
multiply-add per loop iteration and runs at well under 1 GFLOP/s: it is for
reading and for small matrices only, and refuses products of more than
``512³`` multiply-adds.

**matmul_blocked** works in tiles of multiply-and-sum. ``k`` is cut into tiles
of ``block`` columns of ``a`` (rows of ``b``), zero-padded to a whole number of
tiles; a ``lax.scan`` over the tiles accumulates

.. math:: C \\leftarrow C + \\sum_{p \\in \\text{tile}} a_{:, p}\\, b_{p, :},

the sum of ``block`` outer products, as ``jnp.sum(a_tile[:, :, None] *
b_tile[None, :, :], axis=1)``. XLA fuses the broadcast product, the sum and
the accumulation into one loop over the output that never materialises the
``m × block × n`` product and is vectorised along the rows of ``b`` and split
over the CPU cores. Wide matrices are cut into column panels of at most
``panel`` columns (zero-padded, one ``lax.map`` step each) so that the rows of
``b`` a tile reads stay in the L1 cache.

*Tuning, measured on this machine's 2 CPU cores (AVX2 + FMA, ~190 GFLOP/s
peak), float32, medians of 7 runs side by side with* ``jnp.matmul`` *(which
itself swung between 87 and 173 GFLOP/s as other jobs loaded the machine):*

- ``block = 8`` is the sweet spot: 85–118 GFLOP/s at n = 1024, 0.54–0.69 of
  ``jnp.matmul`` in the same run (a full ``python -m benchmarks matmul`` on a
  quiet machine: 109.4 against 172.3 GFLOP/s, 0.63; n = 512: 0.67;
  n = 2048: 0.68). ``block = 4`` reads and writes the
  accumulator twice as often (0.38–0.63); ``block = 16`` and more stops being
  unrolled and vectorised by XLA (0.27); unrolling the scan broke the fusion
  (0.02).
- The kernel is load-bound: each 8-wide FMA needs one load of ``b`` (``a``'s
  values are broadcast and hoisted), so it can reach about half of the FMA
  peak, where a BLAS micro-kernel keeps a tile of ``C`` in registers and
  re-uses every load several times. Carrying several row accumulators
  (a register tile by hand) did not help: XLA does not share the loads.
- Column panels of 512 raised n = 2048 from 0.45 to 0.64 of ``jnp.matmul``
  (the accumulator stops thrashing the cache); row panels did not.
- On CPU, jaxlib (≥ 0.8) hands fused reductions to the YNNPACK library, whose
  ``rewrite_sum_to_dot`` pass turns a sum of products back into a library dot
  product. That would make "from scratch" a figure of speech, and it was
  slower here (0.45–0.55). :func:`matmul_blocked` therefore compiles with
  YNNPACK fusion switched off (``xla_cpu_experimental_ynn_fusion_type=""``),
  so the code that runs is XLA's own code generation of the loop above. Call
  it eagerly (or through :func:`kernel`) to get those options: inside your own
  ``jit`` they are the outer function's.

:func:`kernel` returns the jitted kernels (no argument checks) for benchmarks;
``python -m benchmarks matmul`` measures them against ``jnp.matmul`` and NumPy.

The linear algebra of §1.4: :func:`pca` by eigendecomposition of the
covariance, :func:`weight_spectrum` (the singular values of every weight
matrix of a Flax params tree) and a numerically stable :func:`softmax` with
its Jacobian :func:`softmax_jacobian`.

Examples:
    >>> import jax.numpy as jnp
    >>> from dlvr_jax import tensor
    >>> a = jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3)
    >>> b = jnp.ones((3, 2), jnp.float32)
    >>> tensor.matmul_blocked(a, b, block=2)
    Array([[ 3.,  3.],
           [12., 12.]], dtype=float32)
    >>> tensor.matmul_naive(a, b).tolist() == (a @ b).tolist()
    True
    >>> tensor.batched_matmul(jnp.stack([a, 2 * a]), jnp.stack([b, b])).shape
    (2, 2, 2)
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlvr_jax import _compiled, _xla, models
from dlvr_jax import _validate as check

__all__ = [
    "METHODS",
    "PCA",
    "batched_matmul",
    "kernel",
    "matmul_blocked",
    "matmul_naive",
    "pca",
    "softmax",
    "softmax_jacobian",
    "weight_spectrum",
]

METHODS = ("blocked", "naive", "jnp")
"""The ``method`` names of :func:`batched_matmul` and :func:`kernel` (``jnp`` is the peer)."""

DEFAULT_BLOCK = 8
DEFAULT_PANEL = 512
# The naive loop runs at ~0.5 GFLOP/s: 512³ multiply-adds take about half a second.
NAIVE_MAX_MULTIPLY_ADDS = 512**3


# ---------------------------------------------------------------------------
# Argument checks.


def _operand(name: str, value: Any, ndim: int) -> jax.Array:
    """A numeric (not boolean) array of rank ``ndim``; NaN and inf are allowed, as in matmul.

    JAX arrays are checked by shape and dtype only, without a copy to the host.
    """
    if isinstance(value, jax.Array):
        dtype = value.dtype
        if value.ndim != ndim:
            raise ValueError(f"{name} must have rank {ndim}, got shape {tuple(value.shape)}")
    else:
        value = check.array(name, value, ndim=ndim, finite=False)
        dtype = value.dtype
    if dtype == jnp.bool_ or not jnp.issubdtype(dtype, jnp.number):
        raise TypeError(f"{name} must be a numeric array, got dtype {dtype}")
    return value


def _operands(a: Any, b: Any, ndim: int) -> tuple[jax.Array, jax.Array]:
    """Checks ``a`` and ``b`` for a product: ranks, dtypes, inner and batch dimensions."""
    a = _operand("a", a, ndim)
    b = _operand("b", b, ndim)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"a and b do not match for a product: a has shape {tuple(a.shape)} and b has "
            f"shape {tuple(b.shape)}; a.shape[-1] ({a.shape[-1]}) must equal "
            f"b.shape[-2] ({b.shape[-2]})"
        )
    if a.shape[:-2] != b.shape[:-2]:
        raise ValueError(
            f"a and b must have the same batch size: a has shape {tuple(a.shape)} and b has "
            f"shape {tuple(b.shape)}"
        )
    dtype = jnp.result_type(a, b)
    return a.astype(dtype), b.astype(dtype)


def _empty(a: jax.Array, b: jax.Array) -> jax.Array | None:
    """The result when a dimension is empty (all zeros, or no elements), else None."""
    if 0 in a.shape or 0 in b.shape:
        return jnp.zeros((*a.shape[:-1], b.shape[-1]), a.dtype)
    return None


def _check_naive_size(a: jax.Array, b: jax.Array) -> None:
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if m * k * n > NAIVE_MAX_MULTIPLY_ADDS:
        raise ValueError(
            f"matmul_naive is for teaching, on small matrices: shapes {tuple(a.shape)} @ "
            f"{tuple(b.shape)} need {m * k * n} multiply-adds per product, more than "
            f"{NAIVE_MAX_MULTIPLY_ADDS} (512³); use matmul_blocked"
        )


# ---------------------------------------------------------------------------
# The kernels: pure functions of validated, non-empty 2-D operands of one dtype.


def _naive(a: jax.Array, b: jax.Array) -> jax.Array:
    """c[i, j] = Σ_p a[i, p] b[p, j], one scalar multiply-add per loop iteration."""
    m, k = a.shape
    n = b.shape[1]

    def row(i: jax.Array, c: jax.Array) -> jax.Array:
        def column(j: jax.Array, c: jax.Array) -> jax.Array:
            def multiply_add(p: jax.Array, total: jax.Array) -> jax.Array:
                return total + a[i, p] * b[p, j]

            return c.at[i, j].set(lax.fori_loop(0, k, multiply_add, jnp.zeros((), c.dtype)))

        return lax.fori_loop(0, n, column, c)

    return lax.fori_loop(0, m, row, jnp.zeros((m, n), a.dtype))


def _blocked(a: jax.Array, b: jax.Array, block: int, panel: int) -> jax.Array:
    """Sums of ``block`` outer products, scanned over k, in column panels of ``b``."""
    m, k = a.shape
    n = b.shape[1]
    tiles = -(-k // block)  # ceil(k / block)
    panels = -(-n // panel)
    width = -(-n // panels)  # balanced panels: at most panels - 1 padding columns
    # Zero padding adds zero terms to the sums and columns that are cut off at the end.
    a = jnp.pad(a, ((0, 0), (0, tiles * block - k)))
    b = jnp.pad(b, ((0, tiles * block - k), (0, panels * width - n)))
    a_tiles = a.reshape(m, tiles, block).transpose(1, 0, 2)  # [tiles, m, block]
    b_tiles = b.reshape(tiles, block, panels, width).transpose(2, 0, 1, 3)  # [panels, tiles, ...]

    def panel_product(b_panel: jax.Array) -> jax.Array:  # [tiles, block, width] -> [m, width]
        def add_tile(c: jax.Array, tile: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
            a_tile, b_tile = tile  # [m, block], [block, width]
            # Σ_p a[:, p] b[p, :]: XLA fuses product, sum and add into one loop over c.
            return c + jnp.sum(a_tile[:, :, None] * b_tile[None, :, :], axis=1, dtype=c.dtype), None

        c, _ = lax.scan(add_tile, jnp.zeros((m, width), a.dtype), (a_tiles, b_panel))
        return c

    if panels == 1:
        return panel_product(b_tiles[0])[:, :n]
    c = lax.map(panel_product, b_tiles)  # [panels, m, width]
    return c.transpose(1, 0, 2).reshape(m, panels * width)[:, :n]


def _peer(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b)


@_compiled.memoize
def _jitted(method: str, batched: bool, platform: str, top_level: bool) -> Callable[..., jax.Array]:
    kernels: dict[str, Callable[..., jax.Array]] = {
        "blocked": _blocked,
        "naive": _naive,
        "jnp": _peer,
    }
    fun = kernels[method]
    statics = ("block", "panel") if method == "blocked" else ()
    if batched:
        fun = _vmapped(fun, statics)
    # jax.jit refuses compiler options on a jit nested in another trace.
    options = dict(_xla.cpu_options(platform)) if method != "jnp" and top_level else {}
    return jax.jit(fun, static_argnames=statics, compiler_options=options or None)


def _vmapped(fun: Callable[..., jax.Array], statics: tuple[str, ...]) -> Callable[..., jax.Array]:
    def batched(a: jax.Array, b: jax.Array, **static: Any) -> jax.Array:
        return jax.vmap(functools.partial(fun, **static))(a, b)

    batched.__name__ = f"batched_{getattr(fun, '__name__', 'kernel').lstrip('_')}"
    return batched


def kernel(method: str, *, batched: bool = False) -> Callable[..., jax.Array]:
    """The jitted kernel behind ``method``, with its compiler options, and no argument checks.

    For benchmarks: ``kernel("blocked").lower(a, b, block=8, panel=512).compile()``
    gives the compiled program, its compile time and ``memory_analysis()``.
    The operands must be non-empty, of one dtype and matching shapes.

    Args:
        method: one of :data:`METHODS`.
        batched: the ``vmap``-ped kernel over a leading batch axis of both operands.

    Raises:
        ValueError: for an unknown method.
    """
    check.choice("method", method, METHODS)
    return _jitted(method, bool(batched), jax.default_backend(), True)


def _call(method: str, batched: bool, a: jax.Array, b: jax.Array, **static: Any) -> jax.Array:
    """Runs a kernel; with its compiler options at top level, without them under a trace."""
    platform = jax.default_backend()
    if not (check.is_tracer(a) or check.is_tracer(b)):
        try:
            return _jitted(method, batched, platform, True)(a, b, **static)
        except ValueError as error:  # called inside a jit with concrete (closed-over) operands
            if "compiler_options" not in str(error):
                raise
    return _jitted(method, batched, platform, False)(a, b, **static)


# ---------------------------------------------------------------------------
# The public products.


def _block_and_panel(block: Any, panel: Any) -> tuple[int, int]:
    return check.positive_int("block", block), check.positive_int("panel", panel)


def matmul_naive(a: Any, b: Any) -> jax.Array:
    """The textbook triple loop, ``c[i, j] = Σ_p a[i, p] b[p, j]``, for teaching only.

    .. math:: c_{ij} = \\sum_{p=1}^{k} a_{ip} b_{pj}

    Three nested ``lax.fori_loop``, one scalar multiply-add per iteration: clear
    and slow (about 0.5 GFLOP/s on a CPU core). Use :func:`matmul_blocked` for
    real work.

    Args:
        a: ``[m, k]`` numeric array.
        b: ``[k, n]`` numeric array.

    Returns:
        ``[m, n]`` array of dtype ``jnp.result_type(a, b)``.

    Raises:
        TypeError: when an operand is not a numeric array.
        ValueError: for ranks other than 2, ``a.shape[1] != b.shape[0]``, or more
            than ``512³`` multiply-adds.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import tensor
        >>> row = jnp.array([[1.0, 2.0]], jnp.float32)
        >>> tensor.matmul_naive(row, row.T + 2)
        Array([[11.]], dtype=float32)
    """
    a, b = _operands(a, b, 2)
    _check_naive_size(a, b)
    empty = _empty(a, b)
    if empty is not None:
        return empty
    return _call("naive", False, a, b)


def matmul_blocked(
    a: Any, b: Any, *, block: int = DEFAULT_BLOCK, panel: int = DEFAULT_PANEL
) -> jax.Array:
    """Matrix product from scratch, in tiles of multiply-and-sum (see the module docstring).

    .. math:: C = \\sum_{t} A_{:, t} B_{t, :}, \\quad
        A_{:, t} B_{t, :} = \\sum_{p \\in t} a_{:, p} \\otimes b_{p, :}

    ``k`` is cut into tiles of ``block``; each tile's outer products are
    multiplied and summed in one fused loop and added to the accumulator in a
    ``lax.scan``. Shapes that are not multiples of ``block`` or ``panel`` are
    zero-padded; empty dimensions give zeros.

    Args:
        a: ``[m, k]`` numeric array.
        b: ``[k, n]`` numeric array.
        block: rows of ``b`` per tile (8 is fastest on an AVX2 CPU).
        panel: most columns of ``b`` per column panel.

    Returns:
        ``[m, n]`` array of dtype ``jnp.result_type(a, b)``.

    Raises:
        TypeError: for non-numeric operands or a non-integer ``block``/``panel``.
        ValueError: for ranks other than 2, ``a.shape[1] != b.shape[0]``, or
            ``block``/``panel`` < 1.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import tensor
        >>> a = jnp.arange(12.0).reshape(3, 4)
        >>> bool(jnp.allclose(tensor.matmul_blocked(a, a.T, block=3), a @ a.T))
        True
    """
    block, panel = _block_and_panel(block, panel)
    a, b = _operands(a, b, 2)
    empty = _empty(a, b)
    if empty is not None:
        return empty
    return _call("blocked", False, a, b, block=block, panel=panel)


def batched_matmul(
    a: Any,
    b: Any,
    *,
    method: str = "blocked",
    block: int = DEFAULT_BLOCK,
    panel: int = DEFAULT_PANEL,
) -> jax.Array:
    """A batch of matrix products, ``c[i] = a[i] @ b[i]``, by ``jax.vmap`` of one method.

    Args:
        a: ``[batch, m, k]`` numeric array.
        b: ``[batch, k, n]`` numeric array.
        method: ``"blocked"`` (:func:`matmul_blocked`), ``"naive"``
            (:func:`matmul_naive`) or ``"jnp"`` (``jnp.matmul``, the peer).
        block: tile size for ``"blocked"``.
        panel: column panel width for ``"blocked"``.

    Returns:
        ``[batch, m, n]`` array of dtype ``jnp.result_type(a, b)``.

    Raises:
        TypeError, ValueError: as :func:`matmul_blocked`, and for an unknown method
            or different batch sizes.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import tensor
        >>> a = jnp.ones((4, 2, 3))
        >>> tensor.batched_matmul(a, jnp.ones((4, 3, 5)), method="naive").shape
        (4, 2, 5)
    """
    check.choice("method", method, METHODS)
    block, panel = _block_and_panel(block, panel)
    a, b = _operands(a, b, 3)
    if method == "naive":
        _check_naive_size(a, b)
    empty = _empty(a, b)
    if empty is not None:
        return empty
    static = {"block": block, "panel": panel} if method == "blocked" else {}
    return _call(method, True, a, b, **static)


# ---------------------------------------------------------------------------
# The linear algebra of §1.4.


class PCA(NamedTuple):
    """Principal components of data ``x`` (``[n, d]``), the top ``k`` first.

    Project with ``z = (x - mean) @ components.T`` and reconstruct with
    ``z @ components + mean``.
    """

    components: jax.Array  # [k, d], orthonormal rows, largest variance first
    explained_variance: jax.Array  # [k], eigenvalues of the covariance, descending
    explained_variance_ratio: jax.Array  # [k], fractions of the total variance
    mean: jax.Array  # [d]


def pca(x: Any, k: int) -> PCA:
    """Principal component analysis by eigendecomposition of the covariance matrix.

    .. math:: \\Sigma = \\tfrac{1}{n-1} (X - \\bar{x})^\\top (X - \\bar{x}) = V \\Lambda V^\\top

    The components are the eigenvectors of Σ (``jnp.linalg.eigh``) with the
    ``k`` largest eigenvalues λ, the explained variances; their ratio is
    ``λ / trace(Σ)``. Each component's sign is fixed so that its entry of
    largest magnitude is positive, so results do not depend on the solver.

    Args:
        x: ``[n, d]`` finite real data, ``n >= 2``.
        k: number of components, ``1 <= k <= d``.

    Returns:
        :class:`PCA`.

    Raises:
        TypeError: when ``x`` is not a real array or ``k`` not an int.
        ValueError: for a rank other than 2, fewer than 2 rows, non-finite
            values, or ``k`` outside ``[1, d]``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import tensor
        >>> x = jnp.array([[-2.0, 0.1], [0.0, -0.1], [2.0, 0.0]])
        >>> result = tensor.pca(x, 1)
        >>> [round(float(v), 3) for v in result.components[0]]
        [1.0, -0.025]
        >>> round(float(result.explained_variance_ratio[0]), 3)
        0.998
    """
    x = check.array("x", x, ndim=2)
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"x must be a real array, got dtype {x.dtype}")
    n, d = x.shape
    if n < 2:
        raise ValueError(f"x must have at least 2 rows (samples) for a covariance, got {n}")
    k = check.positive_int("k", k)
    if k > d:
        raise ValueError(f"k must be at most the number of features d = {d}, got {k}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return _pca(x, k)


@functools.partial(jax.jit, static_argnames="k")
def _pca(x: jax.Array, k: int) -> PCA:
    mean = jnp.mean(x, axis=0)
    centred = x - mean[None, :]
    covariance = centred.T @ centred / (x.shape[0] - 1)
    eigenvalues, eigenvectors = jnp.linalg.eigh(covariance)  # ascending
    order = jnp.argsort(-eigenvalues)[:k]
    variance = jnp.maximum(eigenvalues[order], 0.0)  # rounding can give -1e-9
    components = eigenvectors[:, order].T  # [k, d]
    largest = jnp.take_along_axis(
        components, jnp.argmax(jnp.abs(components), axis=1)[:, None], axis=1
    )
    components = components * jnp.where(largest < 0, -1.0, 1.0).astype(components.dtype)
    total = jnp.trace(covariance)
    ratio = jnp.where(total > 0, variance / jnp.where(total > 0, total, 1.0), 0.0)
    return PCA(components, variance, ratio, mean)


def weight_spectrum(params: Any) -> dict[str, jax.Array]:
    """The singular values of every 2-D ``kernel`` in a Flax params tree, by layer.

    Watching them during training shows how each layer stretches its input:
    the largest is the layer's spectral norm (its Lipschitz constant), the
    ratio of largest to smallest its condition number.

    Args:
        params: a pytree such as ``models.MLP().init(key, x)``; the top-level
            ``"params"`` collection is optional.

    Returns:
        ``{layer path: float[min(d_in, d_out)]}``, singular values in descending
        order, one entry per layer of :func:`dlvr_jax.models.dense_layers`, input
        to output (``"hidden_0"``, ..., ``"output"``).

    Raises:
        TypeError: when ``params`` is not a mapping.
        ValueError: when it holds no 2-D ``kernel``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from dlvr_jax import models, tensor
        >>> params = models.MLP(hidden=(4, 3)).init(jax.random.key(0), jnp.zeros((1, 2)))
        >>> {name: s.shape for name, s in tensor.weight_spectrum(params).items()}
        {'hidden_0': (2,), 'hidden_1': (3,), 'output': (2,)}
    """
    layers = models.dense_layers(params)  # TypeError for a non-mapping
    if not layers:
        raise ValueError("params holds no 2-D 'kernel' (a Dense layer's weight matrix)")
    return {
        layer.name: jnp.linalg.svd(
            check.array(f"{layer.name}/kernel", layer.kernel, ndim=2, finite=False),
            compute_uv=False,
        )
        for layer in layers
    }


def _axis(z: jax.Array, axis: Any) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int, got {axis!r}")
    axis = int(axis)
    if not -z.ndim <= axis < z.ndim:
        raise ValueError(f"axis must be in [{-z.ndim}, {z.ndim}) for shape {z.shape}, got {axis}")
    return axis % z.ndim


def softmax(z: Any, axis: int = -1) -> jax.Array:
    """Softmax along ``axis``, computed stably by subtracting the maximum first.

    .. math:: \\operatorname{softmax}(z)_i = \\frac{e^{z_i - \\max z}}{\\sum_j e^{z_j - \\max z}}

    Subtracting ``max z`` changes nothing mathematically (softmax is invariant
    to adding a constant) and keeps ``exp`` from overflowing.

    Args:
        z: array of rank >= 1 (finite, when concrete).
        axis: the axis that sums to 1.

    Returns:
        An array of ``z``'s shape, floating point.

    Raises:
        TypeError: for a non-numeric ``z`` or non-integer ``axis``.
        ValueError: for a scalar ``z``, non-finite values, or an axis out of range.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import tensor
        >>> tensor.softmax(jnp.array([1000.0, 1000.0], jnp.float32))
        Array([0.5, 0.5], dtype=float32)
    """
    z = check.array("z", z, ndim=tuple(range(1, 33)))
    axis = _axis(z, axis)
    if not jnp.issubdtype(z.dtype, jnp.inexact):
        z = z.astype(jnp.result_type(float))
    shifted = z - lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    exponentials = jnp.exp(shifted)
    return exponentials / jnp.sum(exponentials, axis=axis, keepdims=True)


def softmax_jacobian(z: Any) -> jax.Array:
    """The Jacobian of :func:`softmax` of a vector, in closed form.

    .. math:: \\frac{\\partial s_i}{\\partial z_j} = s_i (\\delta_{ij} - s_j),
        \\quad J = \\operatorname{diag}(s) - s s^\\top

    Its rows sum to zero (the outputs always sum to 1) and it is symmetric.

    Args:
        z: ``[c]`` vector of scores.

    Returns:
        ``[c, c]`` matrix.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import tensor
        >>> tensor.softmax_jacobian(jnp.zeros(2, jnp.float32))
        Array([[ 0.25, -0.25],
               [-0.25,  0.25]], dtype=float32)
    """
    z = check.array("z", z, ndim=1)
    s = softmax(z)
    return jnp.diag(s) - s[:, None] * s[None, :]
