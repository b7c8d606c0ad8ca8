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


def sweep_rows() -> list[dict[str, Any]]:
    """A small ``parallel.sweep_table``-like table: 2 batch sizes x 2 rates x 3 seeds, one
    (batch 128, rate 1e-2) cell diverged in every seed (its metrics are None)."""
    rows = []
    for batch in (32, 128):
        for rate in (1e-3, 1e-2):
            for seed in (0, 1, 2):
                diverged = batch == 128 and rate == 1e-2
                rows.append(
                    {
                        "learning_rate": rate,
                        "batch_size": batch,
                        "seed": seed,
                        "test_accuracy": None if diverged else 0.5 + 0.1 * seed + rate,
                        "test_loss": None if diverged else 1.0 - 0.1 * seed,
                    }
                )
    return rows
