"""The package's one compile-cache registry: one bound, one ``clear()``.

The contract::

    factory = memoize(factory)    # functools.cache, its entries kept here
    value, made = lookup(key, make)   # one entry by an explicit key (e.g. an AOT program)
    note(key)                     # a program compiled through a jit's own cache
    clear()                       # every entry here, and JAX's compiled programs
    size() -> int; BOUND          # entries held; passing BOUND clears everything
    set_bound(n)                  # a long-running process may keep fewer (the Playground)

Internal to the package (its names have no underscore so that every module
may use them). Every module that keeps compiled programs, or objects that key
them, keeps them here: the engine's training and init programs, ``parallel``'s
sweep, ``pmap`` and sharded programs, ``optim``'s cached optimizers (equal
arguments give the same object, so its programs are reused), ``train``'s
predictions, ``perceptron``'s and ``tensor``'s jitted cores, and the
Playground's chunk programs.

The module-level ``jax.jit`` functions of the package (the data generators,
the perceptron's loops) keep their few programs in JAX's cache, which
:func:`clear` empties; ``train.predict`` and ``train.probabilities``, whose
programs grow with the shapes a user predicts on, note their keys.

Why one bound: every XLA:CPU executable holds memory maps, and a long-running
process (the Playground's server, a grid search, the test suite) that compiles
program after program would reach the kernel's limit of maps per process, or
simply grow. When the entries pass :data:`BOUND`, the registry clears them all
and JAX's caches with them (``jax.clear_caches``); the programs still in use
compile again once, at their next call. A module-level ``jax.jit`` keeps its
executables in JAX's own cache, which ``clear()`` empties too; to count
toward the bound, its callers :func:`note` the keys they compile.

When two calls share one compiled program (the identity rule): the same
program key, i.e. an equal model (a Flax module compares by its fields), the
same optimizer object (Optax transformations compare by identity: use
``optim.optimizer`` / ``optim.injected``, which return one object per
arguments), the same loss callable and task, the same shapes and dtypes, and
the same static sizes (epochs per chunk, batch size).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import jax

__all__ = ["BOUND", "clear", "lookup", "memoize", "note", "noted", "set_bound", "size"]

BOUND = 256
"""The most entries (memoized results and noted program keys) kept before everything is
cleared (:func:`set_bound` changes it)."""

_F = TypeVar("_F", bound=Callable[..., Any])

_lock = threading.RLock()
_entries: OrderedDict[Any, Any] = OrderedDict()
_clear_jax: Callable[[], None] = jax.clear_caches  # typed: mypy sees it as untyped
_NOTED = object()


def _add(key: Any, value: Any) -> None:
    """Keeps ``key``; past :data:`BOUND` entries, clears everything first."""
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            return
        if len(_entries) >= BOUND:
            clear()
        _entries[key] = value


def memoize(function: _F) -> _F:
    """``functools.cache`` for ``function`` whose results are entries of the registry.

    Arguments must be hashable. The result of a call is kept until :func:`clear`
    (or the bound) drops it; the next call then computes it again.
    """

    @functools.wraps(function)
    def cached(*args: Any, **kwargs: Any) -> Any:
        key = (function, args, tuple(sorted(kwargs.items())))
        return lookup(key, lambda: function(*args, **kwargs))[0]

    return cached  # type: ignore[return-value]


def lookup(key: Any, make: Callable[[], Any]) -> tuple[Any, bool]:
    """The entry for ``key``, made by ``make()`` if absent; and whether it was made now.

    ``make`` runs outside the registry's lock (a compilation may take seconds);
    if two threads make the same entry, the first one kept is returned to both.
    """
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            return _entries[key], False
    value = make()
    with _lock:
        if key in _entries:
            return _entries[key], False
        _add(key, value)
    return value, True


def note(key: Any) -> None:
    """Counts ``key`` (a program compiled through a jit's own cache) toward the bound."""
    _add(("noted", key), _NOTED)


def noted(key: Any) -> bool:
    """Whether ``key`` was noted since the last :func:`clear`."""
    with _lock:
        return ("noted", key) in _entries


def clear() -> None:
    """Drops every entry and JAX's compiled programs (they compile again when next used)."""
    with _lock:
        _entries.clear()
        _clear_jax()


def set_bound(bound: int) -> int:
    """Sets :data:`BOUND` (clearing now if more entries are held); returns the previous one.

    A long-running process whose memory matters more than compile time (the
    Playground's server) keeps fewer programs.

    Raises:
        ValueError: for a bound under 1.
    """
    global BOUND
    if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
        raise ValueError(f"bound must be an integer >= 1, got {bound!r}")
    with _lock:
        previous, BOUND = BOUND, bound
        if len(_entries) > bound:
            clear()
    return previous


def size() -> int:
    """The entries held now."""
    with _lock:
        return len(_entries)
