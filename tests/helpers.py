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


FLOAT32_EQUIVALENCE = (
    "float32 training: fitting with integer sample_weight and fitting on the repeated rows "
    "sum the same terms in a different order (and w * loss is not always loss + ... + loss "
    "in float32), so full-batch predictions agree to 1-2 float32 ulps (~2e-7 relative), not "
    "to the check's rtol=1e-7; no summation order makes them exact short of merging repeated "
    "rows into weights. With minibatches smaller than the data, the repeated rows make more "
    "steps on other batches: not the same training (scikit-learn runs this check on its own "
    "MLPClassifier with solver='lbfgs' only, and marks its minibatch estimators). "
    "test_sample_weight_equals_repetition_in_float32 checks the equivalence at 1e-5."
)
"""Why scikit-learn's float32 sample-weight check is marked for the MLP estimators."""


def estimator_expected_failures(estimator: Any) -> dict[str, str]:
    """The marked scikit-learn checks (one per MLP configuration), each with its reason."""
    from dlvr_jax import estimators

    if isinstance(estimator, (estimators.MLPClassifier, estimators.MLPRegressor)):
        return {"check_sample_weight_equivalence_on_dense_data": FLOAT32_EQUIVALENCE}
    return {}
