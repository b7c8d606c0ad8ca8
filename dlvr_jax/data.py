"""Datasets: pure generators keyed by a PRNG key, and the utilities around them.

The contract of a generator fits in one line::

    generator(key, n, *, noise=0.0, ...) -> Dataset(x: float32[n, 2], y)

where ``y`` is ``int32[n]`` with classes 0/1 for classification sets and
``float32[n]`` for the regression sets (``plane``, ``multi_gaussian``). The
same key gives the same bits; ``n`` is static (pass it with
``static_argnums=1`` under :func:`jax.jit`) and the key can be mapped over
with :func:`jax.vmap`.

For the classification sets, ``noise`` is the standard deviation of an
isotropic Gaussian jitter added to the points *after* they are labelled, so
that classes overlap near the boundary as ``noise`` grows (``noise=0`` gives
the exact rule). For the regression sets it is the standard deviation of
Gaussian noise added to the targets.

The user's own data come through one door: :func:`from_arrays` for arrays,
and one CSV parser for files and text (:func:`parse_csv`, :func:`read_csv`,
:func:`load_csv`), which reports every problem as a :class:`CsvError` at
``path:line:column``. Class labels follow one policy, :func:`encode_labels`:
names and integers that are not ``0..k-1`` are mapped to codes ``0..k-1``
(their names kept), and a single class is refused.

Examples:
    >>> import jax
    >>> from dlvr_jax import data
    >>> train = data.linear(jax.random.key(0), 200)
    >>> train.x.shape, str(train.x.dtype), str(train.y.dtype)
    ((200, 2), 'float32', 'int32')
    >>> bool(((train.x[:, 0] + train.x[:, 1] > 0) == (train.y == 1)).all())
    True
"""

from __future__ import annotations

import csv
import functools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dlvr_jax import _io, _tables
from dlvr_jax import _validate as check

__all__ = [
    "FEATURES",
    "REMAINDERS",
    "CsvError",
    "Dataset",
    "Labels",
    "Table",
    "batch_order",
    "bucket",
    "circle",
    "encode_labels",
    "features",
    "from_arrays",
    "gaussian",
    "linear",
    "load_csv",
    "make",
    "moons",
    "multi_gaussian",
    "names",
    "parse_csv",
    "plane",
    "read_csv",
    "save_csv",
    "signed",
    "spiral",
    "task",
    "train_test_split",
    "xor",
]

Task = Literal["classification", "regression"]


class Dataset(NamedTuple):
    """A labelled dataset; a pytree, so it passes through ``jit``, ``vmap`` and ``pmap``.

    Attributes:
        x: inputs, ``float32[n, d]`` (``d = 2`` for every generator here).
        y: targets, ``int32[n]`` class labels or ``float32[n]`` regression targets.
    """

    x: jax.Array
    y: jax.Array


# ----------------------------------------------------------------------------
# Shared pieces.


def _check_common(key: Any, n: Any, noise: Any) -> tuple[jax.Array, int, Any]:
    key = check.prng_key("key", key)
    n = check.positive_int("n", n)
    noise = check.real("noise", noise, low=0.0)
    return key, n, noise


def _jitter(key: jax.Array, x: jax.Array, noise: Any) -> jax.Array:
    """Adds isotropic Gaussian noise of standard deviation ``noise`` to ``x``."""
    return x + jnp.asarray(noise, jnp.float32) * jax.random.normal(key, x.shape, jnp.float32)


def _uniform_square(key: jax.Array, n: int) -> jax.Array:
    return jax.random.uniform(key, (n, 2), jnp.float32, minval=-1.0, maxval=1.0)


def _balanced_labels(key: jax.Array, n: int) -> jax.Array:
    """Exactly ``n // 2`` ones and ``n - n // 2`` zeros, in random order."""
    return jax.random.permutation(key, jnp.arange(n, dtype=jnp.int32) % 2)


# ----------------------------------------------------------------------------
# Classification generators.


@functools.partial(jax.jit, static_argnums=1)
def _linear(key: jax.Array, n: int, noise: Any, margin: Any) -> Dataset:
    k_points, k_noise = jax.random.split(key)
    # A traced margin skips the host check: clip it so the redraw loop always ends.
    margin = jnp.clip(jnp.asarray(margin, jnp.float32), 0.0, 1.0)

    def too_close(x: jax.Array) -> jax.Array:
        return jnp.abs(x[:, 0] + x[:, 1]) / jnp.sqrt(jnp.float32(2.0)) < margin

    def redraw(state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        k, x = state
        k, sub = jax.random.split(k)
        return k, jnp.where(too_close(x)[:, None], _uniform_square(sub, n), x)

    k_first, k_rest = jax.random.split(k_points)
    x = _uniform_square(k_first, n)
    _, x = lax.while_loop(lambda s: jnp.any(too_close(s[1])), redraw, (k_rest, x))
    y = (x[:, 0] + x[:, 1] > 0).astype(jnp.int32)
    return Dataset(_jitter(k_noise, x, noise), y)


def linear(key: Any, n: int, *, noise: float = 0.0, margin: float = 0.0) -> Dataset:
    r"""The chapter's perceptron data: uniform points labelled by the line x1 + x2 = 0.

    Points are uniform on :math:`(-1, 1)^2` and

    .. math:: y = 1 \iff x_1 + x_2 > 0.

    Args:
        key: a PRNG key.
        n: number of points (static).
        noise: standard deviation of Gaussian jitter added to the points after
            labelling; with ``noise > 0`` the data may no longer be separable.
        margin: points closer than ``margin`` to the line are redrawn, so that
            (with ``noise=0``) the data are separated with geometric margin at
            least ``margin`` by ``w = (1, 1), b = 0``. Must be in ``[0, 1]``.

    Returns:
        ``Dataset(x: float32[n, 2], y: int32[n])``.

    Raises:
        TypeError: if ``key`` is not a PRNG key or ``n`` is not an int.
        ValueError: if ``n < 1``, ``noise < 0`` or ``margin`` is outside ``[0, 1]``.
    """
    key, n, noise = _check_common(key, n, noise)
    margin = check.real("margin", margin, low=0.0, high=1.0)
    return _linear(key, n, noise, margin)


@functools.partial(jax.jit, static_argnums=1)
def _circle(key: jax.Array, n: int, noise: Any) -> Dataset:
    k_r, k_theta, k_noise = jax.random.split(key, 3)
    r = jax.random.uniform(k_r, (n,), jnp.float32, minval=0.0, maxval=2.0)
    theta = jax.random.uniform(k_theta, (n,), jnp.float32, minval=0.0, maxval=2 * math.pi)
    x = jnp.stack([r * jnp.cos(theta), r * jnp.sin(theta)], axis=1)
    y = (r >= 1.0).astype(jnp.int32)
    return Dataset(_jitter(k_noise, x, noise), y)


def circle(key: Any, n: int, *, noise: float = 0.0) -> Dataset:
    r"""The chapter's MLP data: a disc of class 0 inside a ring of class 1.

    Draws :math:`r \sim U(0, 2)` and :math:`\theta \sim U(0, 2\pi)`, places the
    point at :math:`r(\cos\theta, \sin\theta)` and labels it 1 iff
    :math:`r \ge 1`. The classes are balanced in expectation.

    Args:
        key: a PRNG key.
        n: number of points (static).
        noise: standard deviation of Gaussian jitter added to the points after
            labelling.

    Returns:
        ``Dataset(x: float32[n, 2], y: int32[n])``.
    """
    key, n, noise = _check_common(key, n, noise)
    return _circle(key, n, noise)


@functools.partial(jax.jit, static_argnums=1)
def _xor(key: jax.Array, n: int, noise: Any) -> Dataset:
    k_points, k_noise = jax.random.split(key)
    x = _uniform_square(k_points, n)
    y = ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(jnp.int32)
    return Dataset(_jitter(k_noise, x, noise), y)


def xor(key: Any, n: int, *, noise: float = 0.0) -> Dataset:
    r"""Minsky and Papert's XOR: uniform points, class 1 iff x1 and x2 differ in sign.

    .. math:: y = [x_1 > 0] \oplus [x_2 > 0]

    No line separates the classes, which is why a perceptron cannot learn it.

    Args:
        key: a PRNG key.
        n: number of points (static).
        noise: standard deviation of Gaussian jitter added after labelling.

    Returns:
        ``Dataset(x: float32[n, 2], y: int32[n])``.
    """
    key, n, noise = _check_common(key, n, noise)
    return _xor(key, n, noise)


@functools.partial(jax.jit, static_argnums=1)
def _gaussian(key: jax.Array, n: int, noise: Any, std: Any) -> Dataset:
    k_labels, k_points, k_noise = jax.random.split(key, 3)
    y = _balanced_labels(k_labels, n)
    centre = jnp.where(y[:, None] == 1, 0.5, -0.5).astype(jnp.float32)
    spread = jnp.asarray(std, jnp.float32) * jax.random.normal(k_points, (n, 2), jnp.float32)
    return Dataset(_jitter(k_noise, centre + spread, noise), y)


def gaussian(key: Any, n: int, *, noise: float = 0.0, std: float = 0.25) -> Dataset:
    """Two Gaussian blobs: class 1 around (0.5, 0.5), class 0 around (-0.5, -0.5).

    The classes are exactly balanced (``n // 2`` of class 1) and shuffled.

    Args:
        key: a PRNG key.
        n: number of points (static).
        noise: standard deviation of extra Gaussian jitter added after labelling
            (it adds to the blobs' own spread ``std``).
        std: standard deviation of each blob, ``> 0``.

    Returns:
        ``Dataset(x: float32[n, 2], y: int32[n])``.
    """
    key, n, noise = _check_common(key, n, noise)
    std = check.real("std", std, low=0.0, low_open=True)
    return _gaussian(key, n, noise, std)


@functools.partial(jax.jit, static_argnums=1)
def _spiral(key: jax.Array, n: int, noise: Any, turns: Any) -> Dataset:
    k_labels, k_t, k_noise = jax.random.split(key, 3)
    y = _balanced_labels(k_labels, n)
    t = jax.random.uniform(k_t, (n,), jnp.float32)
    angle = 2 * math.pi * jnp.asarray(turns, jnp.float32) * t + math.pi * y
    x = jnp.stack([t * jnp.sin(angle), t * jnp.cos(angle)], axis=1)
    return Dataset(_jitter(k_noise, x, noise), y)


def spiral(key: Any, n: int, *, noise: float = 0.0, turns: float = 1.75) -> Dataset:
    r"""Two interleaved spiral arms (TensorFlow Playground's hardest set).

    A point of class ``k`` at parameter :math:`t \sim U(0, 1)` sits at radius
    :math:`t` and angle :math:`2\pi \cdot \text{turns} \cdot t + k\pi`. The
    classes are exactly balanced and shuffled.

    Args:
        key: a PRNG key.
        n: number of points (static).
        noise: standard deviation of Gaussian jitter added after labelling.
        turns: how many turns each arm makes, ``> 0``.

    Returns:
        ``Dataset(x: float32[n, 2], y: int32[n])``.
    """
    key, n, noise = _check_common(key, n, noise)
    turns = check.real("turns", turns, low=0.0, low_open=True)
    return _spiral(key, n, noise, turns)


@functools.partial(jax.jit, static_argnums=1)
def _moons(key: jax.Array, n: int, noise: Any) -> Dataset:
    k_labels, k_t, k_noise = jax.random.split(key, 3)
    y = _balanced_labels(k_labels, n)
    angle = math.pi * jax.random.uniform(k_t, (n,), jnp.float32)
    upper = jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    lower = jnp.stack([1.0 - jnp.cos(angle), 0.5 - jnp.sin(angle)], axis=1)
    x = jnp.where(y[:, None] == 1, lower, upper) - jnp.array([[0.5, 0.25]], jnp.float32)
    return Dataset(_jitter(k_noise, x, noise), y)


def moons(key: Any, n: int, *, noise: float = 0.0) -> Dataset:
    """Two interleaving half circles, as scikit-learn's ``make_moons``, centred at 0.

    Class 0 is the upper moon. The classes are exactly balanced and shuffled.

    Args:
        key: a PRNG key.
        n: number of points (static).
        noise: standard deviation of Gaussian jitter added after labelling.

    Returns:
        ``Dataset(x: float32[n, 2], y: int32[n])``.
    """
    key, n, noise = _check_common(key, n, noise)
    return _moons(key, n, noise)


# ----------------------------------------------------------------------------
# Regression generators (TensorFlow Playground).


@functools.partial(jax.jit, static_argnums=1)
def _plane(key: jax.Array, n: int, noise: Any) -> Dataset:
    k_points, k_noise = jax.random.split(key)
    x = _uniform_square(k_points, n)
    y = (x[:, 0] + x[:, 1]) / 2
    return Dataset(x, _jitter(k_noise, y, noise))


def plane(key: Any, n: int, *, noise: float = 0.0) -> Dataset:
    r"""Regression on a tilted plane: :math:`y = (x_1 + x_2) / 2` on :math:`(-1, 1)^2`.

    Args:
        key: a PRNG key.
        n: number of points (static).
        noise: standard deviation of Gaussian noise added to the targets.

    Returns:
        ``Dataset(x: float32[n, 2], y: float32[n])`` with targets in ``(-1, 1)``
        when ``noise=0``.
    """
    key, n, noise = _check_common(key, n, noise)
    return _plane(key, n, noise)


# Playground's six bumps, rescaled from its [-6, 6] square to ours: (cx, cy, sign).
_BUMPS = np.array(
    [[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]],
    dtype=np.float32,
) / np.array([6, 6, 1], dtype=np.float32)
_BUMP_RADIUS = 2.0 / 6.0


@functools.partial(jax.jit, static_argnums=1)
def _multi_gaussian(key: jax.Array, n: int, noise: Any) -> Dataset:
    k_points, k_noise = jax.random.split(key)
    x = _uniform_square(k_points, n)
    bumps = jnp.asarray(_BUMPS)
    distance = jnp.linalg.norm(x[:, None, :] - bumps[None, :, :2], axis=-1)
    height = bumps[None, :, 2] * jnp.clip(1.0 - distance / _BUMP_RADIUS, 0.0, 1.0)
    strongest = jnp.argmax(jnp.abs(height), axis=1)
    y = jnp.take_along_axis(height, strongest[:, None], axis=1)[:, 0]
    return Dataset(x, _jitter(k_noise, y, noise))


def multi_gaussian(key: Any, n: int, *, noise: float = 0.0) -> Dataset:
    """Regression on six signed bumps (TensorFlow Playground's "multi gaussian").

    Each bump is a cone of height ±1 and radius 1/3; the target at a point is
    the bump value largest in absolute value there, so targets lie in
    ``[-1, 1]`` when ``noise=0``.

    Args:
        key: a PRNG key.
        n: number of points (static).
        noise: standard deviation of Gaussian noise added to the targets.

    Returns:
        ``Dataset(x: float32[n, 2], y: float32[n])``.
    """
    key, n, noise = _check_common(key, n, noise)
    return _multi_gaussian(key, n, noise)


# ----------------------------------------------------------------------------
# Registry.

_REGISTRY: dict[str, tuple[Callable[..., Dataset], Task]] = {
    "linear": (linear, "classification"),
    "circle": (circle, "classification"),
    "xor": (xor, "classification"),
    "gaussian": (gaussian, "classification"),
    "spiral": (spiral, "classification"),
    "moons": (moons, "classification"),
    "plane": (plane, "regression"),
    "multi_gaussian": (multi_gaussian, "regression"),
}


def names(task: Task | None = None) -> tuple[str, ...]:
    """The registered generator names, optionally only those of one ``task``.

    Examples:
        >>> from dlvr_jax import data
        >>> data.names("regression")
        ('multi_gaussian', 'plane')
    """
    if task is not None:
        check.choice("task", task, ("classification", "regression"))
    return tuple(sorted(name for name, (_, t) in _REGISTRY.items() if task in (None, t)))


def task(name: str) -> Task:
    """``"classification"`` or ``"regression"`` for the generator called ``name``."""
    check.choice("name", name, names())
    return _REGISTRY[name][1]


def make(name: str, key: Any, n: int, **kwargs: Any) -> Dataset:
    """Calls the generator registered as ``name``: ``make("circle", key, n, noise=0.1)``.

    Raises:
        ValueError: for an unknown ``name``; the message lists the known ones.
    """
    check.choice("dataset name", name, names())
    return _REGISTRY[name][0](key, n, **kwargs)


# ----------------------------------------------------------------------------
# Utilities.

REMAINDERS = ("pad", "drop")
"""What :func:`batch_order` does with the ``n % batch_size`` examples left over."""


def batch_order(
    key: jax.Array,
    epoch: Any,
    n: int,
    batch_size: int,
    *,
    remainder: str = "pad",
    count: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """One epoch's minibatches: ``(index, mask)``, both ``[n_batches, batch_size]``.

    The one definition of an epoch's order, shared by the trainer and the
    descent toolkit. The examples are permuted by
    ``jax.random.permutation(jax.random.fold_in(key, epoch), n)`` and cut into
    rows of ``batch_size``: row ``b`` of ``index`` lists the examples of batch
    ``b``. With ``batch_size == n`` there is a single batch and no shuffle
    (``index`` is ``0..n-1``). The ``n % batch_size`` examples left over are:

    - ``remainder="pad"``: kept in a last, padded batch, ``ceil(n / batch_size)``
      batches; ``mask`` is 1 for real entries and 0 for the padding (index 0),
      so every example appears exactly once per epoch;
    - ``remainder="drop"``: dropped, ``n // batch_size`` full batches; ``mask``
      is all ones.

    It is a pure function of ``(key, epoch)``: the same pair gives the same
    order, and consecutive epochs are ordered differently. ``n``,
    ``batch_size`` and ``remainder`` are static; ``epoch`` may be traced.

    ``count`` (an int or a traced int32 scalar) says that only the first
    ``count`` of ``n`` rows are examples and the rest are padding: the result
    is then that of ``batch_order(key, epoch, count, batch_size)``, bit for
    bit, with the size of an ``n``-row set. One compiled program thus serves
    every ``count`` with the same number of batches (see :func:`bucket`).
    It requires ``remainder="pad"``, ``n`` a multiple of ``batch_size``,
    ``n - batch_size < count < n`` and ``bucket(count, batch_size, key) == n``,
    which is checked when ``count`` is concrete.

    Raises:
        ValueError, TypeError: for ``batch_size`` outside ``[1, n]``, an unknown
            remainder, or a concrete ``count`` that does not fit ``n``.

    Examples:
        >>> import jax
        >>> from dlvr_jax import data
        >>> index, mask = data.batch_order(jax.random.key(0), 0, 5, 2)
        >>> index.shape, mask.tolist()
        ((3, 2), [[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
        >>> sorted(index.ravel()[:5].tolist())
        [0, 1, 2, 3, 4]
    """
    n = check.positive_int("n", n)
    batch_size = check.positive_int("batch_size", batch_size)
    if batch_size > n:
        raise check.InvalidArgument(
            f"batch_size must be in [1, {n}] (the number of examples), got {batch_size}",
            field="batch_size",
        )
    check.choice("remainder", remainder, REMAINDERS)
    if count is not None:
        return _padded_batch_order(key, epoch, n, batch_size, remainder, count)
    if batch_size == n:
        order = jnp.arange(n)  # one full batch: the order does not matter
    else:
        order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
    if remainder == "drop":
        kept = (n // batch_size) * batch_size
        index = order[:kept].reshape(-1, batch_size)
        return index, jnp.ones(index.shape, jnp.float32)
    n_batches = -(-n // batch_size)
    pad = n_batches * batch_size - n
    index = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)]).reshape(n_batches, -1)
    mask = jnp.concatenate([jnp.ones((n,), jnp.float32), jnp.zeros((pad,), jnp.float32)])
    return index, mask.reshape(n_batches, -1)


def _shuffle_rounds(n: int) -> int:
    """The sorting rounds of ``jax.random.permutation(key, n)`` (its static stop rule)."""
    return math.ceil(3 * math.log(max(1, n)) / math.log(np.iinfo(np.uint32).max))


def _order_survives_padding(key: Any) -> str | None:
    """Why a padded :func:`batch_order` could differ from the unpadded one, or None."""
    impl = str(jax.random.key_impl(key))
    if impl != "threefry2x32":
        return f"the key's implementation is {impl}, not threefry2x32"
    if not cast(Any, jax.config).jax_threefry_partitionable:
        return "jax_threefry_partitionable is off"
    return None


def bucket(n: int, batch_size: int, key: Any) -> int | None:
    """The padded size that lets ``n`` examples share a program with others, or None.

    ``n`` rounded up to a whole number of batches of ``batch_size``: 455 and
    456 examples in batches of 200 both become 600, so a loop compiled for
    600 rows and a ``count`` (:func:`batch_order`) trains on either, with the
    bits of its own unpadded run. None when there is nothing to pad (``n`` is
    a multiple of ``batch_size``, or a single batch) or when the padded order
    could differ from the unpadded one: ``key`` is not a threefry key, the
    threefry bits are not partitionable (``jax_threefry_partitionable``), or
    the padded size needs more shuffling rounds than ``n``.
    """
    if n % batch_size == 0 or batch_size > n:
        return None
    size = -(-n // batch_size) * batch_size
    if _order_survives_padding(key) is not None:
        return None
    if _shuffle_rounds(size) != _shuffle_rounds(n):
        return None
    return size


def _padded_permutation(key: jax.Array, size: int, count: jax.Array) -> jax.Array:
    """``jax.random.permutation(key, count)`` in the first ``count`` of ``size`` slots.

    ``jax.random.permutation`` sorts ``arange(count)`` by fresh random 32-bit
    keys, once per round. With partitionable threefry bits, the first
    ``count`` keys drawn for ``size`` slots are those drawn for ``count``; the
    padding slots get the largest key, and the stable sort keeps them after
    every example (which sit first after each round), so the examples come out
    in the same order. Checked bit for bit against ``jax.random.permutation``.
    """
    order = jnp.arange(size)
    real = order < count
    for _ in range(_shuffle_rounds(size)):
        key, subkey = jax.random.split(key)
        bits = jax.random.bits(subkey, (size,), jnp.uint32)
        bits = jnp.where(real, bits, jnp.uint32(np.iinfo(np.uint32).max))
        _, order = lax.sort_key_val(bits, order, is_stable=True)
    return order


def _padded_batch_order(
    key: jax.Array, epoch: Any, n: int, batch_size: int, remainder: str, count: Any
) -> tuple[jax.Array, jax.Array]:
    if remainder != "pad":
        raise check.InvalidArgument(
            f'count needs remainder="pad", got remainder={remainder!r}', field="remainder"
        )
    if n % batch_size or n < 2 * batch_size:
        raise check.InvalidArgument(
            f"with count, n must be a multiple of batch_size ({batch_size}) of at least "
            f"two batches, got n={n}",
            field="n",
        )
    why = _order_survives_padding(key)
    if why is not None:
        raise check.InvalidArgument(
            f"count needs a padding-proof order, but {why} (see data.bucket)", field="key"
        )
    if not check.is_tracer(count):
        count = check.positive_int("count", count)
        if count >= n or bucket(count, batch_size, key) != n:
            raise check.InvalidArgument(
                f"count={count} does not pad to n={n} in batches of {batch_size}: "
                f"expected bucket(count, batch_size, key) == n (see data.bucket)",
                field="count",
            )
    order = _padded_permutation(jax.random.fold_in(key, epoch), n, jnp.asarray(count))
    real = jnp.arange(n) < count
    index = jnp.where(real, order, 0).reshape(-1, batch_size)
    return index, real.astype(jnp.float32).reshape(-1, batch_size)


def train_test_split(
    key: Any, data: Dataset, *, test_fraction: float = 0.2
) -> tuple[Dataset, Dataset]:
    """Shuffles ``data`` with ``key`` and splits it into ``(train, test)``.

    The test set has ``round(test_fraction * n)`` points, at least one, and the
    train set keeps at least one.

    Raises:
        ValueError: if ``test_fraction`` is not in ``(0, 1)`` or ``data`` has
            fewer than two points.
    """
    key = check.prng_key("key", key)
    if not isinstance(data, Dataset):
        raise check.InvalidType(
            f"data must be a Dataset(x, y), got {type(data).__name__}", field="data"
        )
    fraction = check.real(
        "test_fraction", test_fraction, low=0.0, high=1.0, low_open=True, high_open=True
    )
    if check.is_tracer(fraction):
        raise check.InvalidType(
            "test_fraction must be a static Python float, got a traced value", field="test_fraction"
        )
    n = int(jnp.shape(data.x)[0])
    if n < 2:
        raise check.InvalidArgument(
            f"data must have at least 2 points to split, got {n}", field="data"
        )
    n_test = min(max(round(fraction * n), 1), n - 1)
    order = jax.random.permutation(key, n)
    shuffled = jax.tree.map(lambda leaf: leaf[order], data)
    test = jax.tree.map(lambda leaf: leaf[:n_test], shuffled)
    train = jax.tree.map(lambda leaf: leaf[n_test:], shuffled)
    return Dataset(*train), Dataset(*test)


def signed(y: Any) -> jax.Array:
    """Maps class labels {0, 1} to {-1, +1} (labels already in {-1, +1} pass unchanged).

    The perceptron works with ±1 labels; the generators return 0/1.

    Raises:
        ValueError: if concrete labels are neither all in {0, 1} nor all in {-1, 1}.

    Examples:
        >>> from dlvr_jax import data
        >>> data.signed([0, 1, 1]).tolist()
        [-1, 1, 1]
    """
    y = check.array("y", y, ndim=(0, 1))
    if not check.is_tracer(y):
        values = set(np.unique(np.asarray(y)).tolist())
        if not (values <= {0, 1} or values <= {-1, 1}):
            raise check.InvalidArgument(
                f"y must hold class labels in {{0, 1}} (or already in {{-1, 1}}), "
                f"got values {sorted(values)[:10]}",
                field="y",
            )
    return jnp.where(y > 0, 1, -1).astype(jnp.int32)


_FEATURE_MAPS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "x1": lambda x: x[:, 0],
    "x2": lambda x: x[:, 1],
    "x1^2": lambda x: x[:, 0] ** 2,
    "x2^2": lambda x: x[:, 1] ** 2,
    "x1*x2": lambda x: x[:, 0] * x[:, 1],
    "sin(x1)": lambda x: jnp.sin(x[:, 0]),
    "sin(x2)": lambda x: jnp.sin(x[:, 1]),
}
FEATURES: tuple[str, ...] = tuple(_FEATURE_MAPS)
"""The TensorFlow Playground's input features, in its order."""

_FEATURE_ALIASES = {
    "x1²": "x1^2",
    "x2²": "x2^2",
    "x1x2": "x1*x2",
    "x1·x2": "x1*x2",
    "sin x1": "sin(x1)",
    "sin x2": "sin(x2)",
}


def features(x: Any, names: Sequence[str] = FEATURES) -> jax.Array:
    """The Playground's feature map: one column per name in ``names``.

    Known names are ``x1, x2, x1^2, x2^2, x1*x2, sin(x1), sin(x2)`` (also
    ``x1²``, ``x1·x2``, ``sin x1`` ...).

    Args:
        x: ``float[n, 2]`` points.
        names: the features to compute, in order.

    Returns:
        ``float[n, len(names)]``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import data
        >>> data.features(jnp.array([[2.0, 3.0]]), ["x1*x2", "x2^2"]).tolist()
        [[6.0, 9.0]]
    """
    x = check.array("x", x, ndim=2, finite=False)
    if x.shape[1] != 2:
        raise check.InvalidArgument(f"x must have shape (n, 2), got {x.shape}", field="x")
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise check.InvalidType(
            f"names must be a non-empty sequence of feature names, got {names!r}", field="names"
        )
    columns = []
    for name in names:
        canonical = _FEATURE_ALIASES.get(name, name)
        check.choice("feature", canonical, FEATURES)
        columns.append(_FEATURE_MAPS[canonical](x))
    return jnp.stack(columns, axis=1)


def _infer_task(y: np.ndarray) -> Task:
    return (
        "classification" if np.issubdtype(y.dtype, np.integer) or y.dtype == bool else "regression"
    )


def from_arrays(x: Any, y: Any, *, task: Task | None = None) -> Dataset:
    """Wraps the user's own arrays as a :class:`Dataset`, checking them first.

    Args:
        x: ``[n, d]`` finite inputs (converted to float32).
        y: ``[n]`` targets. Integer or boolean labels make a classification set
            (``int32``, labels must be ``>= 0``), floats a regression set
            (``float32``), unless ``task`` says otherwise.
        task: ``"classification"``, ``"regression"`` or None to infer.

    Raises:
        ValueError: for a wrong rank, mismatched lengths, non-finite values or
            negative / non-integer class labels.
    """
    host_y = np.asarray(y) if not isinstance(y, jax.Array) else y  # before any int32 cast
    x = check.array("x", x, ndim=2)
    y = check.array("y", y, ndim=1)
    if x.shape[0] != y.shape[0]:
        raise check.InvalidArgument(
            f"y must have one entry per row of x ({x.shape[0]}), got {y.shape[0]}", field="y"
        )
    if x.shape[0] < 1:
        raise check.InvalidArgument("x must have at least one row, got 0", field="x")
    host_y = np.asarray(host_y)
    kind = (
        _infer_task(host_y)
        if task is None
        else check.choice("task", task, ("classification", "regression"))
    )
    if kind == "classification":
        if np.any(host_y != np.round(host_y)) or np.any(host_y < 0):
            raise check.InvalidArgument(
                "y must hold non-negative integer class labels for classification", field="y"
            )
        if host_y.size and host_y.max() > np.iinfo(np.int32).max:
            raise check.InvalidArgument(
                f"y must hold class labels below 2**31, got {host_y.max()}", field="y"
            )
        return Dataset(jnp.asarray(x, jnp.float32), jnp.asarray(host_y, jnp.int32))
    return Dataset(jnp.asarray(x, jnp.float32), jnp.asarray(host_y, jnp.float32))


def _format(value: float, integral: bool) -> str:
    if integral:
        return str(int(value))
    text = f"{value:.9g}"  # 9 significant digits round-trip float32 exactly
    return text if any(c in text for c in ".en") else text + ".0"


def save_csv(path: str | os.PathLike[str], data: Dataset) -> None:
    """Writes ``data`` as CSV with header ``x1,...,xd,y``, atomically.

    Class labels are written as integers and regression targets always with a
    decimal point, so :func:`load_csv` gets the same task and the same float32
    bits back.
    """
    x = np.asarray(data.x, dtype=np.float32)
    y = np.asarray(data.y)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise check.InvalidArgument(
            f"data must have x of shape (n, d) and y of shape (n,), got {x.shape} and {y.shape}",
            field="data",
        )
    integral = _infer_task(y) == "classification"
    header = [f"x{i + 1}" for i in range(x.shape[1])] + ["y"]
    with _io.atomic_open(path, "w") as stream:
        writer = csv.writer(stream, lineterminator="\n")  # type: ignore[arg-type]
        writer.writerow(header)
        for row, target in zip(x.tolist(), y.tolist(), strict=True):
            writer.writerow([_format(v, False) for v in row] + [_format(target, integral)])


# ----------------------------------------------------------------------------
# Class labels, and CSV files: one label policy, one parser.


CsvError = _tables.CsvError
"""A problem in a CSV at ``path:line:column`` (attributes ``path``, ``line``, ``column``,
``problem``, ``field``); an :class:`~dlvr_jax._validate.InvalidArgument`, so a ``ValueError``."""

Labels = _tables.Labels
"""Class labels coded ``0..k-1``: ``Labels(codes: int32[n], names, mapped)``."""

encode_labels = _tables.encode_labels
"""The one label policy: ``encode_labels(values, *, field="y", min_classes=2) -> Labels``
(names sorted, integers in numeric order, one class refused)."""

for _shared in (CsvError, Labels, encode_labels):
    _shared.__module__ = __name__  # documented, shown in tracebacks and pickled as data's
del _shared


class Table(NamedTuple):
    """A CSV's data with what the file says about it (see :func:`read_csv`).

    Attributes:
        dataset: ``Dataset(x: float32[n, d], y)``; ``y`` is ``int32`` codes
            ``0..k-1`` for classification, ``float32`` for regression.
        task: ``"classification"`` or ``"regression"``.
        classes: the class names (``classes[code]``), or None for regression.
        mapped: whether the class labels were re-coded (names, or integers
            that were not ``0..k-1``).
        columns: the header's names, or ``x1..xd, y`` when there is no header.
    """

    dataset: Dataset
    task: Task
    classes: tuple[str, ...] | None
    mapped: bool
    columns: tuple[str, ...]


def parse_csv(text: str, *, source: str = "upload", task: Task | None = None) -> Table:
    """The package's one CSV parser, on a file's text: features..., target last.

    A header line is optional (the first row, when its first cell is not a
    number); blank lines are skipped. ``task=None`` infers the task from the
    target column: integers are class labels, other numbers regression
    targets, names (any non-number) class labels. Class labels follow
    :func:`encode_labels`: names and integers other than ``0..k-1`` are
    mapped to codes (``Table.mapped``), and one class is refused.

    Args:
        text: the CSV's text.
        source: what the messages call the text (a file name, ``"upload"``).
        task: ``"classification"``, ``"regression"`` or None to infer.

    Returns:
        A :class:`Table`: the dataset, task, class names, whether labels were
        mapped, and the column names.

    Raises:
        CsvError: for every problem, at ``source:line:column``: a cell that
            is empty, not a number, not finite or past float32's range, a
            ragged row, bytes that are not UTF-8 or lone surrogates, a target
            that fits no task, one class, no data rows.

    Examples:
        >>> from dlvr_jax import data
        >>> table = data.parse_csv("a,b,species\\n1,2,setosa\\n3,4,virginica\\n")
        >>> table.classes, table.dataset.y.tolist(), table.columns
        (('setosa', 'virginica'), [0, 1], ('a', 'b', 'species'))
        >>> try:
        ...     data.parse_csv("1,2,0\\n3,x,1\\n")
        ... except data.CsvError as error:
        ...     print(error, (error.line, error.column))
        upload:2:2: column 2 is not a number: 'x' (2, 2)
    """
    if not isinstance(text, str):
        raise check.InvalidType(
            f"text must be a CSV's text (a str), got {check.show(text)}", field="text"
        )
    return _table(_tables.parse(text, source=str(source), field="text", task=task, encode=True))


def _table(parsed: _tables.Parsed) -> Table:
    dataset = from_arrays(parsed.x, parsed.y, task=parsed.task)
    return Table(dataset, parsed.task, parsed.classes, parsed.mapped, parsed.columns)


def read_csv(path: str | os.PathLike[str], *, task: Task | None = None) -> Table:
    """:func:`parse_csv` of a UTF-8 file: the :class:`Table` with class names and columns.

    Raises:
        CsvError: at ``path:line:column`` (see :func:`parse_csv`).
        OSError: when the file cannot be read (``FileNotFoundError``...).
    """
    text = _tables.read_text(path)
    return _table(_tables.parse(text, source=os.fspath(path), field="path", task=task, encode=True))


def load_csv(path: str | os.PathLike[str], *, task: Task | None = None) -> Dataset:
    """Reads a CSV whose last column is the target (a header line is optional).

    The parser is :func:`parse_csv`'s. Integer class labels are kept as
    written (each in ``[0, 2**31)``) and a single class is accepted: the file
    is loaded, not judged. Class names are coded ``0..k-1`` in sorted order;
    :func:`read_csv` gives them back, and maps integer labels as well.

    Raises:
        CsvError: at ``path:line:column`` for every problem (see :func:`parse_csv`).
    """
    text = _tables.read_text(path)
    parsed = _tables.parse(text, source=os.fspath(path), field="path", task=task, encode=False)
    return _table(parsed).dataset
