"""Checkpoints: save, load and resume training, as msgpack (never pickle).

The contract::

    save(path, state, history, config=...)      # atomic: temporary file, then rename
    state, history = load(path, like=state)     # `like`: a TrainState of the same shapes
    info(path) -> Info(epoch, step, config, metadata)   # without building a state

A file is a msgpack map (written with :mod:`flax.serialization`) holding
``format`` (``"dlvr_jax.checkpoint"``), ``version`` (:data:`FORMAT_VERSION`),
the state's leaves (the PRNG key as its raw ``uint32`` data) and the history.
Loading checks all of these and raises :class:`CheckpointError` (a
``ValueError``) for a truncated, corrupt or mismatched file.

A checkpoint records the configuration it was trained with (dataset, model,
optimizer, loss, seed: a JSON-like map, ``save(..., config=...)``) in its
metadata under ``"config"``; :func:`info` reads it back, with the epoch, so
that a resume can refuse a checkpoint of another configuration. Files written
before configurations were recorded load as before; their ``config`` is None.

Training to epoch k, saving, loading and training on to N gives the same
bits as training to N at once (see ``tests/test_checkpoint.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import msgpack
import numpy as np
from flax import serialization

from dlvr_jax import _io
from dlvr_jax.train import History, TrainState

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "Info",
    "info",
    "load",
    "read_metadata",
    "save",
]

FORMAT = "dlvr_jax.checkpoint"
"""The ``format`` field written into every checkpoint; :func:`load` refuses other files."""
FORMAT_VERSION = 1
"""The version of the checkpoint layout; :func:`load` reads only this version."""


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, of another format or does not match."""


def _key_data(key: jax.Array) -> np.ndarray:
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(key))
    return np.asarray(key)


def _state_dict(state: TrainState) -> dict[str, Any]:
    return {
        "step": np.asarray(state.step),
        "epoch": np.asarray(state.epoch),
        "params": serialization.to_state_dict(state.params),
        "opt_state": serialization.to_state_dict(state.opt_state),
        "key": _key_data(state.key),
        "key_impl": str(jax.random.key_impl(state.key))
        if jnp.issubdtype(state.key.dtype, jax.dtypes.prng_key)
        else "",
        "l1": np.asarray(state.l1),
        "l2": np.asarray(state.l2),
    }


def _history_dict(history: History | None) -> dict[str, Any] | None:
    if history is None:
        return None
    return {
        "train_loss": np.asarray(history.train_loss),
        "train_accuracy": np.asarray(history.train_accuracy),
        "test_loss": None if history.test_loss is None else np.asarray(history.test_loss),
        "test_accuracy": (
            None if history.test_accuracy is None else np.asarray(history.test_accuracy)
        ),
        "grad_norms": {k: np.asarray(v) for k, v in history.grad_norms.items()},
        "final_grads": serialization.to_state_dict(history.final_grads),
    }


def save(
    path: str | os.PathLike[str],
    state: TrainState,
    history: History | None = None,
    *,
    metadata: dict[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Writes ``state`` (and ``history``) to ``path`` atomically.

    Args:
        path: the file to write; its folder is created if needed.
        state: the :class:`~dlvr_jax.train.TrainState` to save.
        history: the training history so far, if any.
        metadata: JSON-like extras (e.g. the command line), returned by
            :func:`read_metadata`.
        config: the configuration trained (JSON-like: dicts, lists, strings,
            numbers, None), stored as ``metadata["config"]`` and returned by
            :func:`info`.

    Raises:
        TypeError: ``state`` is not a TrainState, or ``config`` is not a mapping.
    """
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState, got {type(state).__name__}")
    metadata = dict(metadata or {})
    if config is not None:
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping, got {type(config).__name__}")
        metadata["config"] = dict(config)
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "state": _state_dict(state),
        "history": _history_dict(history),
        "metadata": metadata,
    }
    blob = serialization.msgpack_serialize(payload)
    _io.write_atomic(path, lambda stream: stream.write(blob))


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as stream:
            blob = stream.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)!r}") from None
    try:
        payload = serialization.msgpack_restore(blob)
    except (
        msgpack.exceptions.ExtraData,
        msgpack.exceptions.UnpackException,
        ValueError,
        TypeError,
        KeyError,
    ) as error:
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a readable checkpoint (truncated or corrupt): {error}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{os.fspath(path)!r} is not a dlvr_jax checkpoint")
    if payload.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{os.fspath(path)!r} has checkpoint format version {payload.get('version')!r}; "
            f"this dlvr_jax reads version {FORMAT_VERSION}"
        )
    return payload


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``metadata`` map saved with a checkpoint."""
    return dict(_read(path).get("metadata") or {})


class Info(NamedTuple):
    """What :func:`info` reads from a checkpoint without building a state.

    Attributes:
        epoch: epochs trained.
        step: optimizer steps taken.
        config: the recorded configuration, or None for a file that has none.
        metadata: the whole metadata map.
    """

    epoch: int
    step: int
    config: dict[str, Any] | None
    metadata: dict[str, Any]


def info(path: str | os.PathLike[str]) -> Info:
    """The epoch, step and recorded configuration of a checkpoint.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: a truncated, corrupt or foreign file.
    """
    payload = _read(path)
    try:
        epoch = int(np.asarray(payload["state"]["epoch"]))
        step = int(np.asarray(payload["state"]["step"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint is missing the entry {error}") from None
    metadata = dict(payload.get("metadata") or {})
    config = metadata.get("config")
    return Info(epoch, step, dict(config) if isinstance(config, Mapping) else None, metadata)


def _restore(like: Any, saved: Any, what: str) -> Any:
    expected: Any = jax.tree_util.tree_structure(serialization.to_state_dict(like))
    try:
        restored = serialization.from_state_dict(like, saved)
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint {what} do not match the model: {error}") from None
    if jax.tree_util.tree_structure(serialization.to_state_dict(restored)) != expected:
        raise CheckpointError(f"checkpoint {what} have a different structure than expected")
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(like), strict=True):
        if np.shape(got) != np.shape(want):
            raise CheckpointError(
                f"checkpoint {what} do not match the model: a leaf of shape {np.shape(got)} "
                f"where {np.shape(want)} was expected"
            )
    return jax.tree.map(lambda got, want: jnp.asarray(got, jnp.asarray(want).dtype), restored, like)


def load(path: str | os.PathLike[str], like: TrainState) -> tuple[TrainState, History | None]:
    """Reads a checkpoint written by :func:`save`.

    Args:
        path: the checkpoint file.
        like: a :class:`~dlvr_jax.train.TrainState` of the same model and
            optimizer (e.g. from :func:`dlvr_jax.train.create_train_state`); it
            gives the structure, shapes and the static fields.

    Returns:
        ``(state, history)``; ``history`` is None if none was saved.

    Raises:
        CheckpointError: for a truncated, corrupt, foreign or mismatched file.
    """
    if not isinstance(like, TrainState):
        raise TypeError(f"like must be a TrainState, got {type(like).__name__}")
    payload = _read(path)
    saved = payload["state"]
    try:
        key_data = jnp.asarray(saved["key"], jnp.uint32)
        if jnp.issubdtype(like.key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key_data, impl=jax.random.key_impl(like.key))
        else:
            key = key_data
        if key.shape != like.key.shape:
            raise CheckpointError("checkpoint key does not match the state's key")
        state = like.replace(
            step=jnp.asarray(saved["step"], jnp.int32),
            epoch=jnp.asarray(saved["epoch"], jnp.int32),
            params=_restore(like.params, saved["params"], "params"),
            opt_state=_restore(like.opt_state, saved["opt_state"], "optimizer state"),
            key=key,
            l1=jnp.asarray(saved["l1"], jnp.float32),
            l2=jnp.asarray(saved["l2"], jnp.float32),
        )
    except KeyError as error:
        raise CheckpointError(f"checkpoint is missing the entry {error}") from None
    stored = payload.get("history")
    if stored is None:
        return state, None
    try:
        history = History(
            jnp.asarray(stored["train_loss"]),
            jnp.asarray(stored["train_accuracy"]),
            None if stored["test_loss"] is None else jnp.asarray(stored["test_loss"]),
            None if stored["test_accuracy"] is None else jnp.asarray(stored["test_accuracy"]),
            {k: jnp.asarray(v) for k, v in stored["grad_norms"].items()},
            _restore(like.params, stored["final_grads"], "gradients"),
        )
    except KeyError as error:
        raise CheckpointError(f"checkpoint history is missing the entry {error}") from None
    return state, history
