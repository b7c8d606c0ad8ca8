"""Checkpoints: save, load and resume training, as msgpack (never pickle).

The contract::

    save(path, state, history, config=...)      # atomic: temporary file, then rename
    state, history = load(path, like=state)     # `like`: a TrainState of the same shapes
    info(path) -> Info(epoch, step, config, metadata, verified)   # without building a state

A file is a msgpack map (written with :mod:`flax.serialization`) of six
entries: ``format`` (``"dlvr_jax.checkpoint"``), ``sha256`` (the digest, 32
bytes), ``version`` (:data:`FORMAT_VERSION`, 2), the ``state``'s leaves (the
PRNG key as its raw ``uint32`` data), the ``history`` and the ``metadata``,
in this order, so that the first :data:`HEADER_SIZE` bytes of every file are
the same and the digest's 32 bytes follow them.

The digest is the SHA-256 of the whole file without its 32 digest bytes.
:func:`load`, :func:`info` and :func:`read_metadata` check it before they
parse anything, and refuse a file whose digest does not match (a flipped bit
anywhere, or a cut) with :class:`CorruptedCheckpoint`, ``<path> is corrupted
(digest mismatch)``. A file whose header differs from the expected one in at
most two bytes is taken as a damaged checkpoint and refused the same way.
Loading then checks the entries and raises :class:`CheckpointError` (a
``ValueError``) for a truncated, corrupt or mismatched file.

Version 1 files (before the digest) are the same map without ``sha256``,
with ``version`` 1.
They still load, without an integrity check: :func:`load` then warns with an
:class:`UnverifiedCheckpointWarning` (a ``UserWarning``), and :func:`info`
reports ``verified=False``. Saving again writes version 2.

A checkpoint records the configuration it was trained with (dataset, model,
optimizer, loss, seed: a JSON-like map, ``save(..., config=...)``) in its
metadata under ``"config"``; :func:`info` reads it back, with the epoch, so
that a resume can refuse a checkpoint of another configuration. Files written
before configurations were recorded load as before; their ``config`` is None.

Training to epoch k, saving, loading and training on to N gives the same
bits as training to N at once (see ``tests/test_checkpoint.py``).
"""

from __future__ import annotations

import hashlib
import os
import warnings
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
    "HEADER_SIZE",
    "CheckpointError",
    "CorruptedCheckpoint",
    "Info",
    "UnverifiedCheckpointWarning",
    "info",
    "load",
    "read_metadata",
    "save",
]

FORMAT = "dlvr_jax.checkpoint"
"""The ``format`` field written into every checkpoint; :func:`load` refuses other files."""
FORMAT_VERSION = 2
"""The version of the checkpoint layout written; :func:`load` reads it and version 1."""

_DIGEST_SIZE = 32
_HEADER = (
    b"\x86"  # a map of six entries: format, sha256, version, state, history, metadata
    + msgpack.packb("format")
    + msgpack.packb(FORMAT)
    + msgpack.packb("sha256")
    + b"\xc4"  # bin 8
    + bytes([_DIGEST_SIZE])
)
HEADER_SIZE = len(_HEADER)
"""The length of the fixed header that opens every version 2 file, before its digest."""


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, of another format or does not match."""


class CorruptedCheckpoint(CheckpointError):
    """A checkpoint's bytes do not match its digest: changed or cut after it was saved."""


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint of version 1 (without a digest) was loaded without an integrity check."""


def _digest(blob: bytes) -> bytes:
    """SHA-256 of a version 2 file without its digest bytes."""
    end = HEADER_SIZE + _DIGEST_SIZE
    return hashlib.sha256(blob[:HEADER_SIZE] + blob[end:]).digest()


def _signed(entries: dict[str, Any]) -> bytes:
    """A version 2 file: the header, the digest, then ``entries`` in their order."""
    blob = _HEADER + bytes(_DIGEST_SIZE)
    blob += b"".join(  # flax would sort a map's keys: each entry is serialized on its own
        msgpack.packb(name) + serialization.msgpack_serialize(value)
        for name, value in entries.items()
    )
    return _HEADER + _digest(blob) + blob[HEADER_SIZE + _DIGEST_SIZE :]


def _framed(blob: bytes) -> bool:
    """Whether ``blob`` opens with a version 2 header, give or take two damaged bytes."""
    head = blob[:HEADER_SIZE]
    return bool(head) and sum(a != b for a, b in zip(head, _HEADER, strict=False)) <= 2


def _verify(path: str, blob: bytes) -> None:
    """Refuses a version 2 file whose digest does not match its bytes."""
    end = HEADER_SIZE + _DIGEST_SIZE
    if len(blob) <= end or blob[:HEADER_SIZE] != _HEADER or blob[HEADER_SIZE:end] != _digest(blob):
        raise CorruptedCheckpoint(f"{path} is corrupted (digest mismatch)")


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
    payload = {  # after "format" and "sha256", which open every file (_HEADER)
        "version": FORMAT_VERSION,
        "state": _state_dict(state),
        "history": _history_dict(history),
        "metadata": metadata,
    }
    blob = _signed(payload)
    _io.write_atomic(path, lambda stream: stream.write(blob))


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bool]:
    """The payload of a checkpoint, and whether a digest verified it (False: version 1)."""
    try:
        with open(path, "rb") as stream:
            blob = stream.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)!r}") from None
    framed = _framed(blob)
    if framed:
        _verify(os.fspath(path), blob)
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
    payload.pop("sha256", None)
    version = payload.get("version")
    if version not in (1, FORMAT_VERSION):
        raise CheckpointError(
            f"{os.fspath(path)!r} has checkpoint format version {version!r}; "
            f"this dlvr_jax reads versions 1 and {FORMAT_VERSION}"
        )
    if framed != (version == FORMAT_VERSION):
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a readable checkpoint: format version {version} "
            + ("with a digest" if framed else "without its digest")
        )
    return payload, framed


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``metadata`` map saved with a checkpoint."""
    return dict(_read(path)[0].get("metadata") or {})


class Info(NamedTuple):
    """What :func:`info` reads from a checkpoint without building a state.

    Attributes:
        epoch: epochs trained.
        step: optimizer steps taken.
        config: the recorded configuration, or None for a file that has none.
        metadata: the whole metadata map.
        verified: whether a digest checked the file (False for version 1 files).
    """

    epoch: int
    step: int
    config: dict[str, Any] | None
    metadata: dict[str, Any]
    verified: bool = True


def info(path: str | os.PathLike[str]) -> Info:
    """The epoch, step and recorded configuration of a checkpoint.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: a truncated, corrupt or foreign file
            (:class:`CorruptedCheckpoint` where the digest does not match).
    """
    payload, verified = _read(path)
    try:
        epoch = int(np.asarray(payload["state"]["epoch"]))
        step = int(np.asarray(payload["state"]["step"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint is missing the entry {error}") from None
    metadata = dict(payload.get("metadata") or {})
    config = metadata.get("config")
    config = dict(config) if isinstance(config, Mapping) else None
    return Info(epoch, step, config, metadata, verified)


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
        CheckpointError: for a truncated, corrupt, foreign or mismatched file
            (:class:`CorruptedCheckpoint` where the digest does not match).

    Warns:
        UnverifiedCheckpointWarning: a version 1 file, which has no digest.
    """
    if not isinstance(like, TrainState):
        raise TypeError(f"like must be a TrainState, got {type(like).__name__}")
    payload, verified = _read(path)
    if not verified:
        warnings.warn(
            UnverifiedCheckpointWarning(
                f"{os.fspath(path)} has no digest (checkpoint format version 1): loaded "
                "without an integrity check; saving it again adds one"
            ),
            stacklevel=2,
        )
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
