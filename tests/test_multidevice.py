"""Tests that need several JAX devices: pmap equals one device.

Run them with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the
``multidevice`` tox environment); on one device they skip, saying why.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_bit_identical

from dlvr_jax import data, engine, models, optim, parallel, perceptron, train

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


# ----------------------------------------------------------------------------
# Data parallelism: pmap and jit + NamedSharding equal one device.

XOR = data.xor(jax.random.key(0), 120)
TEST = data.xor(jax.random.key(9), 40)


def _assert_close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=2e-5)


# Full batch, a batch the device count divides, and batches it does not divide
# (padded with zero-weight rows), with the last batch of the epoch padded too.
@pytest.mark.parametrize("batch_size", [None, 40, 24, 7])
@pytest.mark.parametrize("fit", [parallel.fit_pmap, parallel.fit_sharded])
def test_data_parallel_training_equals_one_device(fit, batch_size):
    model = models.MLP(hidden=(8, 8))
    optimizer = optim.optimizer("adam", 1e-2)
    kwargs = {"epochs": 6, "batch_size": batch_size, "l2": 1e-3, "test": TEST}
    state, history = train.fit(jax.random.key(2), model, optimizer, XOR, **kwargs)
    state_d, history_d = fit(jax.random.key(2), model, optimizer, XOR, **kwargs)
    _assert_close(state.params, state_d.params)
    _assert_close(state.opt_state, state_d.opt_state)
    _assert_close(history, history_d)
    assert int(state_d.step) == int(state.step)


def test_pmap_runs_on_every_device_and_sums_their_gradients():
    devices = jax.local_devices()
    model = models.MLP(hidden=(4,))
    optimizer = optim.optimizer("sgd", 0.1)
    # On a subset of the devices, the same result.
    state_all, _ = parallel.fit_pmap(jax.random.key(1), model, optimizer, XOR, epochs=3)
    state_two, _ = parallel.fit_pmap(
        jax.random.key(1), model, optimizer, XOR, epochs=3, devices=devices[:2]
    )
    _assert_close(state_all.params, state_two.params)
    # Training on one shard only (what a missing psum would do) differs.
    shard = data.Dataset(XOR.x[: 120 // len(devices)], XOR.y[: 120 // len(devices)])
    state_shard, _ = train.fit(jax.random.key(1), model, optimizer, shard, epochs=3)
    assert not np.allclose(
        np.asarray(jax.tree.leaves(state_all.params)[0]),
        np.asarray(jax.tree.leaves(state_shard.params)[0]),
    )


def test_the_sharded_program_is_partitioned_across_the_mesh():
    devices = jax.devices()
    mesh = jax.sharding.Mesh(np.asarray(devices), (parallel.AXIS,))
    state, _ = parallel.fit_sharded(
        jax.random.key(0), models.MLP(hidden=(4,)), optim.optimizer("adam", 1e-2), XOR,
        epochs=1, batch_size=40, mesh=mesh,
    )  # fmt: skip
    leaf = jax.tree.leaves(state.params)[0]
    assert len(leaf.sharding.device_set) == len(devices)
    assert leaf.sharding.is_fully_replicated
    # The compiled program splits each batch's rows: XLA inserted the all-reduce.
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    sharding = engine.Sharding(
        len(devices),
        batch_sharding=jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch")),
    )
    text = (
        parallel._sharded_run(replicated)
        .lower(state, XOR, None, epochs=1, batch_size=40, sharding=sharding)
        .compile()
        .as_text()
    )
    assert "all-reduce" in text


@pytest.mark.parametrize("fit", [parallel.fit_pmap, parallel.fit_sharded])
@pytest.mark.parametrize("batch_size", [None, 24])
def test_data_parallel_training_resumes_bit_for_bit(fit, batch_size):
    model = models.MLP(hidden=(8, 8), dropout=0.1)
    optimizer = optim.optimizer("adam", 1e-2)
    kwargs = {"batch_size": batch_size, "l2": 1e-3, "test": TEST}
    whole_state, whole_history = fit(jax.random.key(3), model, optimizer, XOR, epochs=9, **kwargs)
    first_state, first_history = fit(jax.random.key(3), model, optimizer, XOR, epochs=4, **kwargs)
    rest_state, rest_history = fit(
        None, model, optimizer, XOR, epochs=5, state=first_state, **kwargs
    )
    assert int(rest_state.epoch) == 9
    assert_bit_identical(whole_state, rest_state)
    assert_bit_identical(whole_history, train.concatenate(first_history, rest_history))
