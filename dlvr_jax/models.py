"""Flax (linen) models: the chapter's multi-layer perceptron and its activation registry.

The contract is linen's::

    model = MLP(hidden=(8,) * 5, n_outputs=2, activation="relu")
    params = model.init(key, x)                  # a plain pytree
    logits = model.apply(params, x)              # float[n, n_outputs]
    logits = model.apply(params, x, train=True, rngs={"dropout": key})   # with dropout

The defaults are the chapter's network: five hidden layers of eight ReLU units
and two logits, initialised as PyTorch (and so ``tch``) initialises
``Linear`` layers. Hidden activations are recorded with ``sow`` under the
``"intermediates"`` collection; :func:`hidden_activations` returns them.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> from dlvr_jax import models
    >>> model = models.MLP()
    >>> params = model.init(jax.random.key(0), jnp.zeros((1, 2)))
    >>> model.apply(params, jnp.zeros((4, 2))).shape
    (4, 2)
    >>> models.count_params(params)
    330
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from dlvr_jax import _validate as check

__all__ = [
    "INITIALIZERS",
    "MLP",
    "DenseLayer",
    "activations",
    "count_params",
    "dense_layers",
    "get_activation",
    "hidden_activations",
    "layer_names",
]

Activation = Callable[[jax.Array], jax.Array]


def _linear(x: jax.Array) -> jax.Array:
    return x


activations: dict[str, Activation] = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
    "softplus": jax.nn.softplus,
    "linear": _linear,
}
"""The activations by name. ``swish`` is ``silu``; ``linear`` is the identity."""

SMOOTH_ACTIVATIONS = ("sigmoid", "tanh", "gelu", "silu", "softplus", "linear")
"""Activations that are differentiable everywhere (the others have a kink at 0)."""


def get_activation(activation: str | Activation) -> Activation:
    """The activation called ``activation``, or ``activation`` itself if it is callable.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
        TypeError: for anything that is neither a name nor a callable.
    """
    if callable(activation):
        return activation
    if not isinstance(activation, str):
        raise TypeError(
            f"activation must be a name in {sorted(activations)} or a callable, got {activation!r}"
        )
    check.choice("activation", activation, tuple(sorted(activations)))
    return activations[activation]


def _torch_uniform(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    """PyTorch's ``nn.Linear`` kernel init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(shape[0])
    return jax.random.uniform(key, shape, dtype, -bound, bound)


INITIALIZERS: dict[str, Callable[..., Any]] = {
    "torch": _torch_uniform,
    "lecun_normal": nn.initializers.lecun_normal(),
    "glorot_uniform": nn.initializers.glorot_uniform(),
    "glorot_normal": nn.initializers.glorot_normal(),
    "he_uniform": nn.initializers.he_uniform(),
    "he_normal": nn.initializers.he_normal(),
}
"""Kernel initialisers by name. ``torch`` (the default) is what the chapter's ``tch`` uses."""


class _TorchDense(nn.Module):
    """A dense layer with PyTorch's default bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""

    features: int
    kernel_init: Callable[..., Any]
    torch_bias: bool

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (fan_in, self.features), jnp.float32)
        if self.torch_bias:
            bound = 1.0 / math.sqrt(fan_in)

            def bias_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> Any:
                return jax.random.uniform(key, shape, dtype, -bound, bound)

        else:
            bias_init = nn.initializers.zeros
        bias = self.param("bias", bias_init, (self.features,), jnp.float32)
        y = jnp.asarray(x, kernel.dtype) @ kernel
        return y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


class MLP(nn.Module):
    """A multi-layer perceptron: ``[Dense -> (LayerNorm) -> activation -> (Dropout)] * L -> Dense``.

    Attributes:
        hidden: widths of the hidden layers; ``()`` gives a linear model.
        n_outputs: number of outputs (logits for classification, 1 for regression).
        activation: a name from :data:`activations` or a callable.
        residual: add each hidden layer's input to its output when the widths match.
        layer_norm: apply layer normalisation before each activation.
        dropout: dropout rate in ``[0, 1)`` after each hidden activation, active only
            with ``train=True`` (pass ``rngs={"dropout": key}``).
        kernel_init: a name from :data:`INITIALIZERS` or an initializer function.
    """

    hidden: Sequence[int] = (8, 8, 8, 8, 8)
    n_outputs: int = 2
    activation: str | Activation = "relu"
    residual: bool = False
    layer_norm: bool = False
    dropout: float = 0.0
    kernel_init: str | Callable[..., Any] = "torch"

    def __post_init__(self) -> None:
        # Checked when the module is built, before any tracing.
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, Sequence):
            raise TypeError(f"hidden must be a sequence of ints, got {self.hidden!r}")
        for width in self.hidden:
            check.positive_int("hidden width", width)
        check.positive_int("n_outputs", self.n_outputs)
        get_activation(self.activation)
        check.real("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        if isinstance(self.kernel_init, str):
            check.choice("kernel_init", self.kernel_init, tuple(INITIALIZERS))
        elif not callable(self.kernel_init):
            raise TypeError(f"kernel_init must be a name or a callable, got {self.kernel_init!r}")
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        act = get_activation(self.activation)
        init = (
            INITIALIZERS[self.kernel_init]
            if isinstance(self.kernel_init, str)
            else self.kernel_init
        )
        torch_bias = self.kernel_init == "torch"
        for i, width in enumerate(self.hidden):
            h = _TorchDense(width, init, torch_bias, name=f"hidden_{i}")(x)
            if self.layer_norm:
                h = nn.LayerNorm(name=f"norm_{i}")(h)
            h = act(h)
            self.sow("intermediates", f"activation_{i}", h)
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
            if self.residual and x.shape[-1] == width:
                h = h + x
            x = h
        return _TorchDense(self.n_outputs, init, torch_bias, name="output")(x)


class DenseLayer(NamedTuple):
    """One dense layer of a params (or gradients) tree: its path, kernel and bias.

    Attributes:
        name: the layer's path in the tree, e.g. ``"hidden_0"`` or ``"block/output"``.
        kernel: the weight matrix ``[d_in, d_out]``.
        bias: the bias ``[d_out]``, or None for a layer without one.
    """

    name: str
    kernel: Any
    bias: Any


def _layer_order(name: str) -> tuple[Any, ...]:
    """Input to output: ``hidden_2`` before ``hidden_10``, and ``output`` last."""
    parts = re.split(r"(\d+)", name)
    return (name.rsplit("/", 1)[-1] == "output", [int(p) if p.isdigit() else p for p in parts])


def _find_dense(tree: Mapping[str, Any], prefix: str, found: list[DenseLayer]) -> None:
    for name, value in tree.items():
        if not isinstance(value, Mapping):
            continue
        path = f"{prefix}{name}"
        kernel = value.get("kernel")
        if kernel is not None and getattr(kernel, "ndim", None) == 2:
            found.append(DenseLayer(path, kernel, value.get("bias")))
        else:
            _find_dense(value, f"{path}/", found)


def dense_layers(params: Any) -> list[DenseLayer]:
    """The dense layers of a params tree, input to output: the one place that walks layers.

    A dense layer is a mapping that holds a 2-D ``kernel`` (and usually a
    ``bias``); the top-level ``"params"`` collection is optional, and the same
    walk works on a gradients tree shaped like the params. Layers are ordered
    by their path with numbers compared as numbers (``hidden_2`` before
    ``hidden_10``) and ``output`` last. Works on traced values (only shapes
    are read).

    Raises:
        TypeError: when ``params`` is not a mapping.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from dlvr_jax import models
        >>> params = models.MLP(hidden=(4, 3)).init(jax.random.key(0), jnp.zeros((1, 2)))
        >>> [(layer.name, layer.kernel.shape) for layer in models.dense_layers(params)]
        [('hidden_0', (2, 4)), ('hidden_1', (4, 3)), ('output', (3, 2))]
    """
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be a mapping (a Flax params tree), got {type(params).__name__}"
        )
    tree = params["params"] if isinstance(params.get("params"), Mapping) else params
    found: list[DenseLayer] = []
    _find_dense(tree, "", found)
    return sorted(found, key=lambda layer: _layer_order(layer.name))


def layer_names(params: Any) -> list[str]:
    """The names of :func:`dense_layers`, input to output (``hidden_0``, ..., ``output``).

    A tree keyed by layer without kernels, such as ``History.grad_norms``
    (``{layer: values}``), gives its ``hidden_*`` and ``output`` keys in the same order.
    """
    layers = dense_layers(params)
    if layers:
        return [layer.name for layer in layers]
    tree = params["params"] if isinstance(params.get("params"), Mapping) else params
    names = (name for name in tree if name.startswith("hidden_") or name == "output")
    return sorted(names, key=_layer_order)


def hidden_activations(model: MLP, params: Any, x: jax.Array) -> list[jax.Array]:
    """The output of every hidden layer (after the activation), input to output."""
    _, state = model.apply(params, x, mutable=["intermediates"])
    sown = state.get("intermediates", {})  # nothing is sown without hidden layers
    return [sown[f"activation_{i}"][0] for i in range(len(model.hidden))]


def count_params(params: Any) -> int:
    """The number of scalars in a parameter pytree."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))
