"""Argument checks shared by the public functions ("validate at the door").

Every check runs on the host before anything is traced and raises a
``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, bad value)
whose message names the argument, shows the value received and says what is
expected. Internal to the package: its names have no underscore so that the other
modules may use them (``check.show`` formats any value for a message).
Values that are tracers (the function is being called under ``jit``
or ``vmap`` by the user) cannot be inspected: their shapes and dtypes are still
checked, their values are not.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np


def is_tracer(value: Any) -> bool:
    """True when ``value`` is an abstract value being traced by a JAX transform."""
    return isinstance(value, jax.core.Tracer)


def show(value: Any) -> str:
    """A short representation of ``value`` for an error message (the package's one formatter)."""
    if isinstance(value, (jax.Array, np.ndarray)) and not is_tracer(value) and value.size > 8:
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if is_tracer(value):
        return f"traced array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_int(value: Any) -> bool:
    """True for a Python or NumPy integer that is not a bool (a value, not text)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Checks that ``value`` is a static Python integer ``>= minimum``."""
    if is_tracer(value):
        raise TypeError(
            f"{name} must be a static Python int, got a {show(value)}; "
            f"mark it static under jit (e.g. static_argnames=({name!r},))"
        )
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {show(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> Any:
    """Checks a finite real scalar against an interval; tracers pass unchanged.

    ``low_open``/``high_open`` exclude the end points; ``allow_inf`` admits
    ±inf. Returns the value as a Python float (or the tracer itself).
    """
    if is_tracer(value):
        if value.ndim != 0:
            raise TypeError(f"{name} must be a scalar, got a {show(value)}")
        return value
    if isinstance(value, (jax.Array, np.ndarray)):
        if value.ndim != 0:
            raise TypeError(f"{name} must be a scalar, got {show(value)}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {show(value)}")
    number = float(value)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise ValueError(f"{name} must be a finite number in {interval}, got {number}")
    if low is not None and (number < low or (low_open and number == low)):
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    if high is not None and (number > high or (high_open and number == high)):
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return number


def prng_key(name: str, key: Any) -> jax.Array:
    """Checks that ``key`` is one JAX PRNG key (typed or legacy ``uint32[2]``)."""
    if isinstance(key, (jax.Array, np.ndarray)):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            if key.shape == ():
                return jnp.asarray(key)
        elif key.dtype == np.uint32 and key.shape == (2,):
            return jnp.asarray(key)
        raise TypeError(
            f"{name} must be a single PRNG key such as jax.random.key(0), got {show(key)}; "
            "to map over several keys use jax.vmap"
        )
    raise TypeError(f"{name} must be a PRNG key such as jax.random.key(0), got {show(key)}")


def array(
    name: str,
    value: Any,
    *,
    ndim: int | tuple[int, ...],
    finite: bool = True,
) -> jax.Array:
    """Converts ``value`` to a numeric JAX array and checks its rank (and finiteness).

    ``ndim`` may be a tuple of accepted ranks. The finiteness check runs only
    on concrete arrays.
    """
    if not is_tracer(value):
        try:
            host = np.asarray(value)
        except Exception as error:  # e.g. a ragged list
            raise TypeError(f"{name} must be an array, got {show(value)}: {error}") from None
        if host.dtype == object or not (
            np.issubdtype(host.dtype, np.number) or host.dtype == np.bool_
        ):
            raise TypeError(f"{name} must be a numeric array, got dtype {host.dtype}")
        if not isinstance(value, jax.Array):
            value = host
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    shape = tuple(value.shape)
    if len(shape) not in ranks:
        wanted = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name} must have rank {wanted}, got shape {shape}")
    if (
        finite
        and not is_tracer(value)
        and np.issubdtype(host.dtype, np.inexact)
        and not np.all(np.isfinite(host))
    ):
        bad = np.argwhere(~np.isfinite(host))[0]
        where = ", ".join(str(i) for i in bad)
        raise ValueError(f"{name} must be finite, got {host[tuple(bad)]} at index [{where}]")
    return value if is_tracer(value) else to_device(value)


def to_device(value: Any) -> jax.Array:
    """``jnp.asarray(value)``, but a NumPy array is transferred without compiling anything.

    (``jnp.asarray`` of a NumPy array compiles an identity program per shape
    and dtype on this JAX; ``jax.device_put`` gives the same array, same
    dtype, without it.)
    """
    if isinstance(value, np.ndarray):
        return cast(jax.Array, jax.device_put(value))
    return jnp.asarray(value)


def choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    """Checks that ``value`` is one of the strings in ``options``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {list(options)}, got {show(value)}")
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {list(options)}")
    return value
