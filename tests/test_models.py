"""Tests of dlvr_jax.models: the chapter's MLP, its options, and its checks at the door.

Outputs are compared with a forward pass written out in NumPy, so that a
test fails if an option (residual, layer norm, activation) is ignored.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlvr_jax import models

seeds = st.integers(0, 2**32 - 1)

# What each registered name must compute: its jax.nn definition.
JAX_NN = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
    "softplus": jax.nn.softplus,
    "linear": lambda z: z,
}

# The same functions written out in NumPy (gelu in its tanh form, jax.nn.gelu's default).
NUMPY = {
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "gelu": lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))),
    "silu": lambda z: z / (1 + np.exp(-z)),
    "swish": lambda z: z / (1 + np.exp(-z)),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "softplus": lambda z: np.logaddexp(z, 0),
    "linear": lambda z: z,
}


def numpy_forward(
    model: models.MLP, params: Any, x: Any, act: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The MLP written out in float64 NumPy: outputs and hidden activations."""
    tree = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    h = np.asarray(x, np.float64)
    hidden = []
    for i, width in enumerate(model.hidden):
        z = h @ tree[f"hidden_{i}"]["kernel"] + tree[f"hidden_{i}"]["bias"]
        if model.layer_norm:
            norm = tree[f"norm_{i}"]
            z = (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-6)
            z = z * norm["scale"] + norm["bias"]
        a = act(z)
        hidden.append(a)
        h = a + h if model.residual and h.shape[-1] == width else a
    return h @ tree["output"]["kernel"] + tree["output"]["bias"], hidden


@functools.partial(jax.jit, static_argnums=(0, 2))
def _init(model: models.MLP, key: jax.Array, n_inputs: int) -> Any:
    return model.init(key, jnp.zeros((1, n_inputs)))


def init(model: models.MLP, seed: int, n_inputs: int) -> Any:
    """The jitted ``model.init``, compiled once per (equal) model and input width."""
    return _init(model, jax.random.key(seed), n_inputs)


@jax.jit
def _random_pool(key: jax.Array) -> jax.Array:
    return jax.random.uniform(key, (2048,), minval=-1.0, maxval=1.0)


def shapes(model: models.MLP, n_inputs: int) -> Any:
    """The shapes of ``model.init``'s params, without running it."""
    return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, n_inputs)))


def random_params(model: models.MLP, seed: int, n_inputs: int) -> Any:
    """Params of ``model.init``'s structure, U(-1, 1) / sqrt(fan_in) kernels and U(-1/2, 1/2)
    vectors, from one compiled random draw of fixed size (initialisation is slow to compile,
    and the tests of the forward pass need only some params of the right shapes)."""
    pool, start = np.asarray(_random_pool(jax.random.key(seed))), 0

    def fill(leaf: Any) -> jax.Array:
        nonlocal start
        values = pool[start : start + leaf.size].reshape(leaf.shape)
        start += leaf.size
        scale = 1 / np.sqrt(leaf.shape[0]) if leaf.ndim == 2 else 0.5
        return jnp.asarray(scale * values, jnp.float32)

    return jax.tree.map(fill, shapes(model, n_inputs))


def apply(model: models.MLP, params: Any, x: Any, **kwargs: Any) -> jax.Array:
    """The jitted ``model.apply``."""
    return jax.jit(functools.partial(model.apply, **kwargs))(params, x)


# ---------------------------------------------------------------------------
# The chapter's network.


def test_defaults_are_the_chapter_network():
    model = models.MLP()
    assert model.hidden == (8, 8, 8, 8, 8)
    assert model.n_outputs == 2
    assert model.activation == "relu"
    assert model.kernel_init == "torch"
    assert (model.residual, model.layer_norm, model.dropout) == (False, False, 0.0)
    params = init(model, 0, 2)
    assert models.layer_names(params) == [f"hidden_{i}" for i in range(5)] + ["output"]
    shapes = jax.tree.map(jnp.shape, params["params"])
    assert shapes["hidden_0"] == {"kernel": (2, 8), "bias": (8,)}
    for i in range(1, 5):
        assert shapes[f"hidden_{i}"] == {"kernel": (8, 8), "bias": (8,)}
    assert shapes["output"] == {"kernel": (8, 2), "bias": (2,)}
    assert models.count_params(params) == 330 == 5 * 8 + 2 + 2 * 8 + 4 * 64 + 8 * 2
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    x = jax.random.normal(jax.random.key(1), (16, 2))
    logits = apply(model, params, x)
    assert logits.shape == (16, 2)
    assert logits.dtype == jnp.float32
    expected, _ = numpy_forward(model, params, x, NUMPY["relu"])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


@given(seed=seeds)
def test_torch_init_bounds(seed):
    # PyTorch's nn.Linear: kernel and bias both U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    params = init(models.MLP(), seed, 2)["params"]
    kernels, biases = [], []
    for name in models.layer_names(params):
        layer = params[name]
        bound = 1 / math.sqrt(layer["kernel"].shape[0])
        kernels.append(np.abs(np.asarray(layer["kernel"])).ravel() / bound)
        biases.append(np.abs(np.asarray(layer["bias"])).ravel() / bound)
    kernels, biases = np.concatenate(kernels), np.concatenate(biases)
    assert kernels.max() <= 1
    assert biases.max() <= 1
    # ... and they fill that range (330 uniform draws): not a narrower init, not zero biases.
    assert kernels.max() > 0.9
    assert biases.max() > 0.8
    assert 0.4 < kernels.mean() < 0.6


def test_vmap_over_init_keys_equals_a_loop():
    model = models.MLP(hidden=(3,))
    keys = jax.random.split(jax.random.key(3), 3)
    x = jnp.zeros((1, 2))
    batched = jax.jit(jax.vmap(lambda k: model.init(k, x)))(keys)
    for i in range(len(keys)):
        single = _init(model, keys[i], 2)
        jax.tree.map(lambda b, s, i=i: np.testing.assert_array_equal(b[i], s), batched, single)
    # Different keys, different networks; and apply maps over the stacked params too.
    assert not np.array_equal(
        batched["params"]["output"]["kernel"][0], batched["params"]["output"]["kernel"][1]
    )
    xs = jax.random.normal(jax.random.key(4), (5, 2))
    outputs = jax.vmap(model.apply, in_axes=(0, None))(batched, xs)
    for i in range(len(keys)):
        np.testing.assert_allclose(
            outputs[i], model.apply(jax.tree.map(lambda a, i=i: a[i], batched), xs), rtol=1e-6
        )


# ---------------------------------------------------------------------------
# Activations.


def test_registry_lists_the_issue_activations():
    assert set(models.activations) == set(JAX_NN)
    assert models.activations["swish"] is models.activations["silu"]
    assert set(models.SMOOTH_ACTIVATIONS) <= set(models.activations)
    assert not {"relu", "leaky_relu", "elu"} & set(models.SMOOTH_ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(JAX_NN))
def test_every_activation_is_its_jax_nn_definition(name):
    z = jnp.linspace(-6.0, 6.0, 101)
    act = models.get_activation(name)
    assert act is models.activations[name]
    np.testing.assert_array_equal(act(z), JAX_NN[name](z))
    np.testing.assert_allclose(act(z), NUMPY[name](np.asarray(z, np.float64)), rtol=1e-5, atol=1e-6)
    # And the MLP uses it: outputs and sown hidden activations match a NumPy forward pass.
    model = models.MLP(hidden=(3, 4), n_outputs=2, activation=name)
    params = random_params(model, 0, 2)
    x = 2 * jax.random.normal(jax.random.key(1), (8, 2))
    expected, hidden = numpy_forward(model, params, x, NUMPY[name])
    np.testing.assert_allclose(apply(model, params, x), expected, rtol=1e-5, atol=1e-5)
    sown = jax.jit(functools.partial(models.hidden_activations, model))(params, x)
    for got, want in zip(sown, hidden, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_activations_differ_from_one_another():
    # Otherwise the test above could pass with every name mapped to one function.
    z = jnp.linspace(-3.0, 3.0, 31)
    values = {name: np.asarray(models.activations[name](z)) for name in models.activations}
    distinct = {tuple(v.round(6)) for v in values.values()}
    assert len(distinct) == len(values) - 1  # swish == silu


def test_a_callable_activation():
    model = models.MLP(hidden=(5,), n_outputs=1, activation=jnp.sin)
    params = random_params(model, 2, 3)
    x = jax.random.normal(jax.random.key(0), (6, 3))
    expected, hidden = numpy_forward(model, params, x, np.sin)
    np.testing.assert_allclose(apply(model, params, x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(models.hidden_activations(model, params, x)[0], hidden[0], rtol=1e-5)
    assert models.get_activation(jnp.sin) is jnp.sin

    def cube(z):
        return z**3

    cubed = models.MLP(hidden=(5,), n_outputs=1, activation=cube)
    expected, _ = numpy_forward(cubed, params, x, cube)
    np.testing.assert_allclose(apply(cubed, params, x), expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# Options: residual connections, layer norm, dropout, initialisers.


def test_residual_adds_the_input_where_widths_match():
    # Widths 4 -> 4 -> 4 -> 3: the first two hidden layers are residual, the third is not.
    model = models.MLP(hidden=(4, 4, 3), n_outputs=2, activation="tanh", residual=True)
    plain = models.MLP(hidden=(4, 4, 3), n_outputs=2, activation="tanh")
    params = random_params(model, 0, 4)
    assert shapes(model, 4) == shapes(plain, 4)  # no new params
    x = jax.random.normal(jax.random.key(1), (6, 4))
    expected, _ = numpy_forward(model, params, x, np.tanh)
    np.testing.assert_allclose(apply(model, params, x), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(apply(plain, params, x), expected, atol=1e-3)
    # When no width matches the input, residual changes nothing.
    narrow = models.MLP(hidden=(3,), activation="tanh", residual=True)
    narrow_params = random_params(narrow, 0, 4)
    np.testing.assert_array_equal(
        apply(narrow, narrow_params, x),
        apply(models.MLP(hidden=(3,), activation="tanh"), narrow_params, x),
    )


def test_layer_norm_normalises_each_hidden_layer():
    model = models.MLP(hidden=(5, 3), n_outputs=2, activation="relu", layer_norm=True)
    params = random_params(model, 0, 2)
    assert set(params["params"]) == {"hidden_0", "hidden_1", "norm_0", "norm_1", "output"}
    assert models.count_params(params) == (2 * 5 + 5) + (5 * 3 + 3) + (3 * 2 + 2) + 2 * (5 + 3)
    # Move the norms' scale and bias off their (1, 0) init so that they are tested too.
    norm_key = jax.random.key(9)
    for i, width in enumerate(model.hidden):
        k1, k2, norm_key = jax.random.split(norm_key, 3)
        params["params"][f"norm_{i}"] = {
            "scale": 1 + 0.3 * jax.random.normal(k1, (width,)),
            "bias": 0.3 * jax.random.normal(k2, (width,)),
        }
    x = 3 * jax.random.normal(jax.random.key(1), (7, 2))
    expected, _ = numpy_forward(model, params, x, NUMPY["relu"])
    np.testing.assert_allclose(apply(model, params, x), expected, rtol=1e-4, atol=1e-5)
    plain = models.MLP(hidden=(5, 3), n_outputs=2, activation="relu")
    without = {"params": {k: v for k, v in params["params"].items() if not k.startswith("norm")}}
    assert not np.allclose(apply(plain, without, x), expected, atol=1e-3)


def test_dropout_is_off_without_train_and_keyed_with_it():
    model = models.MLP(hidden=(32, 32), dropout=0.5)
    params = random_params(model, 0, 2)
    x = jax.random.normal(jax.random.key(1), (16, 2))
    plain = apply(models.MLP(hidden=(32, 32)), params, x)
    # Deterministic (and the same network as without dropout) unless train=True.
    np.testing.assert_array_equal(apply(model, params, x), plain)
    np.testing.assert_array_equal(apply(model, params, x, train=False), plain)
    k1, k2 = jax.random.key(2), jax.random.key(3)
    first = apply(model, params, x, train=True, rngs={"dropout": k1})
    again = apply(model, params, x, train=True, rngs={"dropout": k1})
    other = apply(model, params, x, train=True, rngs={"dropout": k2})
    np.testing.assert_array_equal(first, again)  # same key, same bits
    assert not np.allclose(first, plain)
    assert not np.allclose(first, other)
    # Dropout needs its explicit key.
    with pytest.raises(flax.errors.InvalidRngError):
        model.apply(params, x, train=True)


def test_dropout_zeroes_units_and_rescales_the_rest():
    # One hidden layer of 1000 linear units feeding one output: with dropout p the
    # output is b + sum_j mask_j h_j w_j / (1 - p), with about a fraction p of masks 0.
    p = 0.25
    model = models.MLP(hidden=(1000,), n_outputs=1, activation="linear", dropout=p)
    params = {
        "params": {
            "hidden_0": {"kernel": jnp.ones((1, 1000)), "bias": jnp.zeros(1000)},
            "output": {"kernel": jnp.ones((1000, 1)), "bias": jnp.zeros(1)},
        }
    }
    assert jax.tree.structure(params) == jax.tree.structure(shapes(model, 1))
    out = apply(model, params, jnp.ones((1, 1)), train=True, rngs={"dropout": jax.random.key(0)})
    kept = float(out[0, 0]) * (1 - p)
    assert kept == pytest.approx(round(kept), abs=1e-2)  # a whole number of units kept
    assert 0.7 < kept / 1000 < 0.8


def test_dropout_without_a_rate_ignores_train():
    model = models.MLP(hidden=(4,))
    params = random_params(model, 0, 2)
    x = jnp.ones((3, 2))
    np.testing.assert_array_equal(apply(model, params, x, train=True), apply(model, params, x))


@pytest.mark.parametrize(
    ("name", "std", "bound"),
    [
        ("torch", 1 / math.sqrt(3 * 64), 1 / 8),
        ("lecun_normal", 1 / 8, None),
        ("glorot_uniform", math.sqrt(2 / 128), math.sqrt(6 / 128)),
        ("glorot_normal", math.sqrt(2 / 128), None),
        ("he_uniform", math.sqrt(2 / 64), math.sqrt(6 / 64)),
        ("he_normal", math.sqrt(2 / 64), None),
    ],
)
def test_kernel_init_names(name, std, bound):
    # A 64 x 64 hidden kernel (4096 draws): its spread, and its range for the uniform ones.
    assert set(models.INITIALIZERS) == {
        "torch",
        "lecun_normal",
        "glorot_uniform",
        "glorot_normal",
        "he_uniform",
        "he_normal",
    }
    model = models.MLP(hidden=(64,), n_outputs=64, kernel_init=name)
    params = init(model, 0, 64)["params"]
    kernel = np.asarray(params["hidden_0"]["kernel"])
    assert kernel.shape == (64, 64)
    assert np.std(kernel) == pytest.approx(std, rel=0.06)
    if bound is not None:
        assert np.abs(kernel).max() <= bound
        assert np.abs(kernel).max() > 0.95 * bound
    bias = np.asarray(params["hidden_0"]["bias"])
    if name == "torch":  # PyTorch's bias init too
        assert 0 < np.abs(bias).max() <= 1 / 8
    else:  # flax's Dense default
        np.testing.assert_array_equal(bias, 0)


def test_a_callable_kernel_init():
    def halves(key, shape, dtype=jnp.float32):
        return jnp.full(shape, 0.5, dtype)

    model = models.MLP(hidden=(3,), n_outputs=1, kernel_init=halves, activation="linear")
    params = init(model, 0, 2)
    for name in ("hidden_0", "output"):
        np.testing.assert_array_equal(params["params"][name]["kernel"], 0.5)
    # (x1 + x2) / 2 in each of 3 units, then half their sum: 0.75 (x1 + x2).
    x = jnp.array([[1.0, 2.0], [-1.0, 3.0]])
    np.testing.assert_allclose(apply(model, params, x)[:, 0], [2.25, 1.5], rtol=1e-6)
    zeros = models.MLP(hidden=(3,), kernel_init=nn.initializers.zeros)
    np.testing.assert_array_equal(apply(zeros, init(zeros, 0, 2), x), 0)


# ---------------------------------------------------------------------------
# Introspection.


def test_hidden_activations_shapes_and_values():
    model = models.MLP(hidden=(3, 5, 2), n_outputs=4, activation="sigmoid")
    params = random_params(model, 0, 4)
    x = jax.random.normal(jax.random.key(1), (7, 4))
    sown = models.hidden_activations(model, params, x)
    assert [a.shape for a in sown] == [(7, 3), (7, 5), (7, 2)]
    _, expected = numpy_forward(model, params, x, NUMPY["sigmoid"])
    for got, want in zip(sown, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert models.layer_names(params) == ["hidden_0", "hidden_1", "hidden_2", "output"]
    assert models.count_params(params) == (4 * 3 + 3) + (3 * 5 + 5) + (5 * 2 + 2) + (2 * 4 + 4)


def test_hidden_activations_of_a_linear_model_is_empty():
    model = models.MLP(hidden=())
    params = random_params(model, 0, 2)
    assert models.layer_names(params) == ["output"]
    assert models.count_params(params) == 2 * 2 + 2
    assert models.hidden_activations(model, params, jnp.ones((3, 2))) == []


def test_a_linear_model_is_linear():
    model = models.MLP(hidden=())
    params = random_params(model, 0, 2)
    x = jax.random.normal(jax.random.key(1), (5, 2))
    kernel, bias = params["params"]["output"]["kernel"], params["params"]["output"]["bias"]
    expected = np.asarray(x) @ np.asarray(kernel) + np.asarray(bias)
    np.testing.assert_allclose(apply(model, params, x), expected, rtol=1e-5, atol=1e-6)


def test_hidden_may_be_a_list():
    model = models.MLP(hidden=[3, 4])
    assert model.hidden == (3, 4)
    assert models.layer_names(shapes(model, 2)) == ["hidden_0", "hidden_1", "output"]


# ---------------------------------------------------------------------------
# Checks at the door: at construction, before anything is traced.


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"activation": "softmax"}, ValueError, ["activation", "'softmax'", "relu"]),
        ({"activation": "ReLU"}, ValueError, ["activation", "'ReLU'"]),
        ({"activation": 3}, TypeError, ["activation", "callable"]),
        ({"hidden": (8, 0)}, ValueError, ["hidden width", "0"]),
        ({"hidden": (8, -2)}, ValueError, ["hidden width", "-2"]),
        ({"hidden": (2.5,)}, TypeError, ["hidden width", "2.5"]),
        ({"hidden": 8}, TypeError, ["hidden", "sequence"]),
        ({"hidden": "88"}, TypeError, ["hidden", "sequence"]),
        ({"n_outputs": 0}, ValueError, ["n_outputs", "0"]),
        ({"n_outputs": 2.0}, TypeError, ["n_outputs"]),
        ({"dropout": 1.0}, ValueError, ["dropout", "1.0"]),
        ({"dropout": -0.1}, ValueError, ["dropout", "-0.1"]),
        ({"dropout": "0.5"}, TypeError, ["dropout"]),
        ({"kernel_init": "xavier"}, ValueError, ["kernel_init", "'xavier'", "glorot_uniform"]),
        ({"kernel_init": 3}, TypeError, ["kernel_init"]),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, error, words):
    with pytest.raises(error) as info:
        models.MLP(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_get_activation_errors():
    with pytest.raises(ValueError, match=r"unknown activation 'mish'.*'relu'"):
        models.get_activation("mish")
    with pytest.raises(TypeError, match="activation"):
        models.get_activation(None)


# ---------------------------------------------------------------------------
# models.dense_layers: the one walk over a params tree's dense layers.


def _kernel(d_in: int, d_out: int, value: float = 1.0) -> jax.Array:
    return jnp.full((d_in, d_out), value)


@given(depth=st.integers(0, 14), width=st.integers(1, 3), n_inputs=st.integers(1, 3))
def test_dense_layers_run_input_to_output_with_numbers_compared_as_numbers(depth, width, n_inputs):
    model = models.MLP(hidden=(width,) * depth)
    params = shapes(model, n_inputs)
    layers = models.dense_layers(params)
    # hidden_2 before hidden_10 (a string sort would put hidden_10 after hidden_1).
    assert [layer.name for layer in layers] == [f"hidden_{i}" for i in range(depth)] + ["output"]
    # Input to output: each kernel's input width is the previous one's output width.
    widths = [n_inputs] + [width] * depth + [2]
    assert [layer.kernel.shape for layer in layers] == list(itertools.pairwise(widths))
    assert [layer.bias.shape for layer in layers] == [(w,) for w in widths[1:]]
    # The "params" collection is optional, and layer_names are the same names.
    assert models.dense_layers(params["params"]) == layers
    assert models.layer_names(params) == [layer.name for layer in layers]


def test_dense_layers_order_does_not_depend_on_the_trees_insertion_order():
    names = [f"hidden_{i}" for i in (10, 2, 11, 0, 1)] + ["output"]
    tree = {
        name: {"kernel": _kernel(2, 2, i), "bias": jnp.zeros(2)} for i, name in enumerate(names)
    }
    reversed_tree = dict(reversed(list(tree.items())))
    expected = ["hidden_0", "hidden_1", "hidden_2", "hidden_10", "hidden_11", "output"]
    for candidate in (tree, reversed_tree, {"params": tree}):
        layers = models.dense_layers(candidate)
        assert [layer.name for layer in layers] == expected
        for layer in layers:  # each name keeps its own kernel and bias
            assert layer.kernel is tree[layer.name]["kernel"]
            assert layer.bias is tree[layer.name]["bias"]


def test_dense_layers_of_nested_trees_are_named_by_path_with_outputs_last():
    tree = {
        "params": {
            "encoder": {
                "output": {"kernel": _kernel(3, 4), "bias": jnp.zeros(4)},
                "hidden_0": {"kernel": _kernel(2, 3), "bias": jnp.zeros(3)},
            },
            "decoder": {"block_1": {"dense": {"kernel": _kernel(4, 2)}}},
        }
    }
    layers = models.dense_layers(tree)
    assert [layer.name for layer in layers] == [
        "decoder/block_1/dense",
        "encoder/hidden_0",
        "encoder/output",
    ]
    assert layers[0].bias is None  # a layer without a bias
    assert layers[2].kernel.shape == (3, 4)


def test_dense_layers_of_a_gradients_tree_are_the_gradients():
    model = models.MLP(hidden=(3, 3))
    params = random_params(model, 0, 2)
    x = jax.random.normal(jax.random.key(1), (5, 2))
    grads = jax.grad(lambda p: jnp.sum(model.apply(p, x) ** 2))(params)
    by_params, by_grads = models.dense_layers(params), models.dense_layers(grads)
    assert [layer.name for layer in by_grads] == [layer.name for layer in by_params]
    for layer in by_grads:
        np.testing.assert_array_equal(layer.kernel, grads["params"][layer.name]["kernel"])
        np.testing.assert_array_equal(layer.bias, grads["params"][layer.name]["bias"])
    # Traced values work too (only shapes are read): under jit, per-layer sums.
    sums = jax.jit(lambda g: [jnp.sum(layer.kernel) for layer in models.dense_layers(g)])(grads)
    np.testing.assert_allclose(sums, [np.sum(layer.kernel) for layer in by_grads], rtol=1e-6)


def test_dense_layers_skip_layer_norm_parameters():
    model = models.MLP(hidden=(3, 4), layer_norm=True)
    params = shapes(model, 2)
    assert {"norm_0", "norm_1"} <= set(params["params"])  # present in the tree...
    assert models.layer_names(params) == ["hidden_0", "hidden_1", "output"]  # ...not layers


def test_dense_layers_skip_what_is_not_a_2d_kernel():
    assert models.dense_layers({}) == []
    assert models.dense_layers({"params": {}}) == []
    assert models.dense_layers({"scale": jnp.ones(3), "norm": {"scale": jnp.ones(3)}}) == []
    # A 1-D or 3-D "kernel" (a convolution's, say) is not a dense layer.
    assert models.dense_layers({"conv": {"kernel": jnp.ones((3, 3, 2, 4))}}) == []
    assert models.dense_layers({"odd": {"kernel": jnp.ones(3)}}) == []


@pytest.mark.parametrize("params", [[jnp.ones((2, 2))], jnp.ones((2, 2)), None, "params"])
def test_dense_layers_reject_a_non_mapping(params):
    with pytest.raises(TypeError, match="params must be a mapping"):
        models.dense_layers(params)


def test_layer_names_of_a_tree_keyed_by_layer_without_kernels():
    # History.grad_norms is {layer: values}: its layers come in the same order.
    norms = {name: jnp.zeros(3) for name in ("output", "hidden_10", "norm_0", "hidden_2")}
    assert models.layer_names({"params": norms}) == ["hidden_2", "hidden_10", "output"]
    assert models.layer_names(norms) == ["hidden_2", "hidden_10", "output"]
