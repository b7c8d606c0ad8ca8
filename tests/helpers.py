"""Helpers shared by the tests (imported as ``from helpers import ...``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def leaves(tree: Any) -> list[Any]:
    """Leaves with PRNG keys replaced by their raw bits, for exact comparison."""
    return [
        jax.random.key_data(leaf) if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf
        for leaf in jax.tree.leaves(tree)
    ]


def assert_bit_identical(a: Any, b: Any) -> None:
    """Same tree of leaves, same dtypes, same bits."""
    first, second = leaves(a), leaves(b)
    assert len(first) == len(second)
    for x, y in zip(first, second, strict=True):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
