"""Tests that need several JAX devices: pmap equals one device.

Run them with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the
``multidevice`` tox environment); on one device they skip, saying why.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlvr_jax import data, perceptron

pytestmark = [
    pytest.mark.multidevice,
    pytest.mark.skipif(
        jax.local_device_count() < 2,
        reason=f"needs >= 2 devices, found {jax.local_device_count()}; set "
        "XLA_FLAGS=--xla_force_host_platform_device_count=8 (tox -e multidevice)",
    ),
]


def test_pmap_generates_the_same_data_as_one_device():
    devices = jax.local_device_count()
    keys = jax.random.split(jax.random.key(0), devices)
    mapped = jax.pmap(lambda k: data.circle(k, 64))(keys)
    for i in range(devices):
        alone = data.circle(keys[i], 64)
        np.testing.assert_allclose(mapped.x[i], alone.x, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(mapped.y[i], alone.y)


def test_pmap_fit_equals_fitting_each_dataset_on_one_device():
    devices = jax.local_device_count()
    keys = jax.random.split(jax.random.key(1), devices)
    sets = [data.linear(k, 100, noise=0.0 if i % 2 else 0.2) for i, k in enumerate(keys)]
    x = jnp.stack([s.x for s in sets])
    y = jnp.stack([data.signed(s.y) for s in sets])
    mapped = jax.pmap(lambda xi, yi: perceptron.fit(xi, yi, max_epochs=30))(x, y)
    assert len(mapped.params.w.sharding.device_set) == devices
    for i in range(devices):
        alone = perceptron.fit(x[i], y[i], max_epochs=30)
        assert int(mapped.updates[i]) == int(alone.updates)
        assert int(mapped.epochs[i]) == int(alone.epochs)
        np.testing.assert_allclose(mapped.params.w[i], alone.params.w, rtol=1e-6, atol=1e-6)
