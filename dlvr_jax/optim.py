"""Optimizers by name, as Optax gradient transformations (never re-implemented here).

The contract is Optax's::

    tx = optimizer("adam", 1e-3)                 # optax.GradientTransformation
    opt_state = tx.init(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)

Examples:
    >>> import optax
    >>> from dlvr_jax import optim
    >>> tx = optim.optimizer("momentum", 0.1, momentum=0.8, clip_norm=1.0)
    >>> isinstance(tx, optax.GradientTransformation)
    True
    >>> optim.names()
    ('adagrad', 'adam', 'adamw', 'momentum', 'nesterov', 'rmsprop', 'sgd')

The descent toolkit of Exercise 1.3 (toy objectives, :class:`~dlvr_jax.descent.Path`,
``gradient_descent``, ``sgd_path``, ...) lives in :mod:`dlvr_jax.descent`, which
imports this module (never the other way).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import optax

from dlvr_jax import _compiled
from dlvr_jax import _validate as check

__all__ = ["injected", "names", "optimizer", "with_learning_rate"]


def _sgd(learning_rate: Any) -> optax.GradientTransformation:
    return optax.sgd(learning_rate)


def _momentum(learning_rate: Any, momentum: float = 0.9) -> optax.GradientTransformation:
    return optax.sgd(learning_rate, momentum=momentum)


def _nesterov(learning_rate: Any, momentum: float = 0.9) -> optax.GradientTransformation:
    return optax.sgd(learning_rate, momentum=momentum, nesterov=True)


def _rmsprop(
    learning_rate: Any, decay: float = 0.9, eps: float = 1e-8, momentum: float | None = None
) -> optax.GradientTransformation:
    return optax.rmsprop(learning_rate, decay=decay, eps=eps, momentum=momentum)


def _adagrad(
    learning_rate: Any, initial_accumulator_value: float = 0.1, eps: float = 1e-7
) -> optax.GradientTransformation:
    return optax.adagrad(
        learning_rate, initial_accumulator_value=initial_accumulator_value, eps=eps
    )


def _adam(
    learning_rate: Any, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> optax.GradientTransformation:
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


def _adamw(
    learning_rate: Any,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-4,
) -> optax.GradientTransformation:
    return optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)


_FACTORIES: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "rmsprop": _rmsprop,
    "adagrad": _adagrad,
    "adam": _adam,
    "adamw": _adamw,
}


def names() -> tuple[str, ...]:
    """The optimizer names :func:`optimizer` accepts."""
    return tuple(sorted(_FACTORIES))


def optimizer(
    name: str,
    learning_rate: float | optax.Schedule,
    *,
    clip_norm: float | None = None,
    **options: Any,
) -> optax.GradientTransformation:
    """An Optax optimizer by name, optionally with global-norm gradient clipping.

    Args:
        name: one of :func:`names`: ``sgd``, ``momentum``, ``nesterov``,
            ``rmsprop``, ``adagrad``, ``adam`` or ``adamw``.
        learning_rate: a number > 0 or an Optax schedule (a callable of the step).
        clip_norm: if given, gradients are first clipped to this global norm
            (``optax.clip_by_global_norm``).
        **options: the optimizer's own hyperparameters, e.g. ``momentum=0.8``
            for ``momentum``/``nesterov``, ``b1``/``b2``/``eps`` for ``adam``,
            ``weight_decay`` for ``adamw``, ``decay`` for ``rmsprop``.

    Returns:
        An ``optax.GradientTransformation``.

    Raises:
        ValueError: for an unknown name, ``learning_rate <= 0`` or ``clip_norm <= 0``.
        TypeError: for an option the optimizer does not take (the message lists
            those it does).
    """
    check.choice("optimizer", name, names())
    if not callable(learning_rate):
        learning_rate = check.real("learning_rate", learning_rate, low=0.0, low_open=True)
    factory = _FACTORIES[name]
    accepted = [p for p in inspect.signature(factory).parameters if p != "learning_rate"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"optimizer {name!r} got unknown option(s) {unknown}; it accepts {accepted}"
        )
    if clip_norm is not None:
        clip_norm = check.real("clip_norm", clip_norm, low=0.0, low_open=True)
    arguments = (name, learning_rate, clip_norm, tuple(sorted(options.items())))
    try:
        hash(arguments)
    except TypeError:  # e.g. a traced learning rate under vmap: build a fresh one
        return _build(*arguments)
    return _build_cached(*arguments)


def _build(
    name: str, learning_rate: Any, clip_norm: float | None, options: tuple[tuple[str, Any], ...]
) -> optax.GradientTransformation:
    transformation = _FACTORIES[name](learning_rate, **dict(options))
    if clip_norm is not None:
        transformation = optax.chain(optax.clip_by_global_norm(clip_norm), transformation)
    return transformation


# The same arguments give the same object, so jitted training that holds the
# optimizer as static data is not recompiled for an equal optimizer. The objects
# key compiled programs, so they live in the one compile-cache registry.
_build_cached = _compiled.memoize(_build)


def injected(
    name: str, *, clip_norm: float | None = None, **options: Any
) -> optax.GradientTransformation:
    """The optimizer ``name`` with its learning rate in its state, not in its program.

    ``optax.inject_hyperparams`` over :func:`optimizer`: the learning rate is
    a leaf of ``opt_state.hyperparams`` (start value 1.0; set it with
    :func:`with_learning_rate`), so compiled training that holds the optimizer
    as static data runs any learning rate without recompiling. The same
    arguments give the same object (cached), which keeps that static data equal.

    Examples:
        >>> import jax.numpy as jnp
        >>> from dlvr_jax import optim
        >>> tx = optim.injected("adam")
        >>> tx is optim.injected("adam")
        True
        >>> state = optim.with_learning_rate(tx.init({"w": jnp.zeros(2)}), 0.5)
        >>> float(state.hyperparams["learning_rate"])
        0.5
    """
    check.choice("optimizer", name, names())
    if clip_norm is not None:
        clip_norm = check.real("clip_norm", clip_norm, low=0.0, low_open=True)
    optimizer(name, 1.0, clip_norm=clip_norm, **options)  # checks the options
    return _injected(name, clip_norm, tuple(sorted(options.items())))


@_compiled.memoize
def _injected(
    name: str, clip_norm: float | None, options: tuple[tuple[str, Any], ...]
) -> optax.GradientTransformation:
    def factory(learning_rate: Any) -> optax.GradientTransformation:
        return optimizer(name, learning_rate, clip_norm=clip_norm, **dict(options))

    return optax.inject_hyperparams(factory)(learning_rate=1.0)


def with_learning_rate(opt_state: Any, learning_rate: Any) -> Any:
    """``opt_state`` of an :func:`injected` optimizer with its learning rate set (a copy).

    ``learning_rate`` may be a number or a (traced) array; it takes the dtype
    of the state's learning rate.
    """
    hyperparams = dict(opt_state.hyperparams)
    hyperparams["learning_rate"] = jnp.asarray(learning_rate, hyperparams["learning_rate"].dtype)
    return opt_state._replace(hyperparams=hyperparams)
