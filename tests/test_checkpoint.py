"""Tests of dlvr_jax.checkpoint: exact round trips, resume, digests, and clear errors."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest
from helpers import assert_bit_identical
from hypothesis import given
from hypothesis import strategies as st

from dlvr_jax import _io, checkpoint, data, models, optim, train

MODEL = models.MLP(hidden=(8, 8), dropout=0.1)
OPTIMIZER = optim.optimizer("adam", 1e-2)
DATA = data.circle(jax.random.key(0), 200)
TEST = data.circle(jax.random.key(1), 50)


def fresh_like():
    return train.create_train_state(jax.random.key(99), MODEL, OPTIMIZER, DATA.x)


def fit(epochs, state=None):
    return train.fit(
        jax.random.key(3),
        MODEL,
        OPTIMIZER,
        DATA,
        epochs=epochs,
        batch_size=64,
        test=TEST,
        state=state,
        l2=1e-3,
    )


def test_save_load_round_trip_is_exact(tmp_path):
    state, history = fit(5)
    path = tmp_path / "run.msgpack"
    checkpoint.save(path, state, history, metadata={"argv": ["mlp", "--epochs", "5"]})
    loaded_state, loaded_history = checkpoint.load(path, fresh_like())
    assert_bit_identical(state, loaded_state)
    assert_bit_identical(history, loaded_history)
    assert checkpoint.read_metadata(path) == {"argv": ["mlp", "--epochs", "5"]}
    assert [p.name for p in tmp_path.iterdir()] == ["run.msgpack"]  # no temporary left


def test_resume_from_a_file_equals_uninterrupted_training(tmp_path):
    whole_state, whole_history = fit(12)
    first_state, first_history = fit(5)
    checkpoint.save(tmp_path / "k.msgpack", first_state, first_history)
    state, history = checkpoint.load(tmp_path / "k.msgpack", fresh_like())
    rest_state, rest_history = fit(7, state=state)
    assert_bit_identical(whole_state, rest_state)
    assert_bit_identical(whole_history, train.concatenate(history, rest_history))


def test_state_without_history(tmp_path):
    state = fresh_like()
    checkpoint.save(tmp_path / "s.msgpack", state)
    loaded, history = checkpoint.load(tmp_path / "s.msgpack", fresh_like())
    assert history is None
    assert_bit_identical(state, loaded)


def test_files_are_msgpack_with_a_format_version_a_digest_and_no_pickle(tmp_path):
    import hashlib

    from flax import serialization

    state, history = fit(2)
    path = tmp_path / "v.msgpack"
    checkpoint.save(path, state, history)
    blob = path.read_bytes()
    raw = serialization.msgpack_restore(blob)
    assert list(raw) == ["format", "sha256", "version", "state", "history", "metadata"]
    assert raw["format"] == "dlvr_jax.checkpoint"
    assert raw["version"] == checkpoint.FORMAT_VERSION == 2
    start = checkpoint.HEADER_SIZE
    assert raw["sha256"] == blob[start : start + 32]
    assert raw["sha256"] == hashlib.sha256(blob[:start] + blob[start + 32 :]).digest()
    assert b"pickle" not in blob


def test_truncated_file_raises_a_clear_error(tmp_path):
    state, history = fit(2)
    path = tmp_path / "t.msgpack"
    checkpoint.save(path, state, history)
    blob = path.read_bytes()
    path.write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match="truncated or corrupt"):
        checkpoint.load(path, fresh_like())
    for cut in (1, 10, checkpoint.HEADER_SIZE + 5, len(blob) // 2, len(blob) - 1):
        path.write_bytes(blob[:cut])
        with pytest.raises(checkpoint.CorruptedCheckpoint, match=r"corrupted \(digest mismatch\)"):
            checkpoint.load(path, fresh_like())


def test_corrupt_foreign_and_future_files_raise_clear_errors(tmp_path):
    from flax import serialization

    path = tmp_path / "x.msgpack"
    path.write_bytes(b"\xc1\xc1\xc1 not msgpack")
    with pytest.raises(checkpoint.CheckpointError, match="truncated or corrupt"):
        checkpoint.load(path, fresh_like())
    path.write_bytes(serialization.msgpack_serialize({"hello": np.zeros(3)}))
    with pytest.raises(checkpoint.CheckpointError, match="not a dlvr_jax checkpoint"):
        checkpoint.load(path, fresh_like())
    path.write_bytes(
        serialization.msgpack_serialize({"format": checkpoint.FORMAT, "version": 99, "state": {}})
    )
    with pytest.raises(checkpoint.CheckpointError, match="format version 99"):
        checkpoint.load(path, fresh_like())
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoint.load(tmp_path / "missing.msgpack", fresh_like())


def test_mismatched_model_raises_a_clear_error(tmp_path):
    state, history = fit(2)
    path = tmp_path / "m.msgpack"
    checkpoint.save(path, state, history)
    other = train.create_train_state(
        jax.random.key(0), models.MLP(hidden=(4, 8)), OPTIMIZER, DATA.x
    )
    with pytest.raises(checkpoint.CheckpointError, match="do not match the model"):
        checkpoint.load(path, other)
    deeper = train.create_train_state(
        jax.random.key(0), models.MLP(hidden=(8, 8, 8)), OPTIMIZER, DATA.x
    )
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load(path, deeper)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    state, history = fit(2)
    path = tmp_path / "keep.msgpack"
    checkpoint.save(path, state, history)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    # The new bytes are written to the temporary file, then syncing it fails.
    monkeypatch.setattr(_io.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, state, history)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.msgpack"]


def test_save_rejects_non_states(tmp_path):
    with pytest.raises(TypeError, match="state must be a TrainState"):
        checkpoint.save(tmp_path / "x", {"params": 1})
    with pytest.raises(TypeError, match="like must be a TrainState"):
        checkpoint.load(tmp_path / "x", {"params": 1})


def test_info_reads_the_recorded_configuration_without_a_state(tmp_path):
    state, history = fit(3)
    path = tmp_path / "c.msgpack"
    config = {
        "dataset": {"name": "circle", "n": 200, "noise": 0.0},
        "model": {"hidden": [8, 8], "activation": "relu", "n_outputs": 2},
        "optimizer": {"name": "adam", "learning_rate": 1e-2, "clip_norm": None},
        "loss": "cross_entropy",
        "seed": 3,
    }
    checkpoint.save(path, state, history, metadata={"argv": ["mlp"]}, config=config)
    info = checkpoint.info(path)
    assert (info.epoch, info.step) == (3, int(state.step))
    assert info.config == config
    assert info.metadata == {"argv": ["mlp"], "config": config}
    loaded, _ = checkpoint.load(path, fresh_like())  # the config does not change loading
    assert_bit_identical(state, loaded)


def as_version_1(path, drop=()):
    """Rewrites a checkpoint as dlvr_jax wrote it before digests (format version 1)."""
    from flax import serialization

    raw = serialization.msgpack_restore(path.read_bytes())
    del raw["sha256"]
    raw["version"] = 1
    for name in drop:
        del raw[name]
    path.write_bytes(serialization.msgpack_serialize(raw))


def test_older_checkpoints_without_a_configuration_still_load(tmp_path):
    state, history = fit(2)
    path = tmp_path / "old.msgpack"
    checkpoint.save(path, state, history)
    as_version_1(path, drop=["metadata"])  # as written before metadata existed
    info = checkpoint.info(path)
    assert info.config is None
    assert info.epoch == 2
    with pytest.warns(checkpoint.UnverifiedCheckpointWarning):
        loaded, _ = checkpoint.load(path, fresh_like())
    assert_bit_identical(state, loaded)


def test_a_version_1_checkpoint_loads_with_a_note_and_saves_as_version_2(tmp_path):
    state, history = fit(2)
    path = tmp_path / "v1.msgpack"
    checkpoint.save(path, state, history, metadata={"argv": ["mlp"]})
    as_version_1(path)
    assert checkpoint.info(path).verified is False
    assert checkpoint.read_metadata(path) == {"argv": ["mlp"]}
    with pytest.warns(checkpoint.UnverifiedCheckpointWarning) as caught:
        loaded_state, loaded_history = checkpoint.load(path, fresh_like())
    assert len(caught) == 1
    note = str(caught[0].message)
    assert note.startswith(f"{path} has no digest (checkpoint format version 1)")
    assert "\n" not in note
    assert_bit_identical(state, loaded_state)
    assert_bit_identical(history, loaded_history)
    checkpoint.save(path, loaded_state, loaded_history)  # saved again: verified, no note
    assert checkpoint.info(path).verified is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint.load(path, fresh_like())


def test_a_version_2_file_without_its_digest_is_refused(tmp_path):
    from flax import serialization

    path = tmp_path / "bare.msgpack"
    checkpoint.save(path, fresh_like())
    raw = serialization.msgpack_restore(path.read_bytes())
    del raw["sha256"]
    path.write_bytes(serialization.msgpack_serialize(raw))
    with pytest.raises(checkpoint.CheckpointError, match="version 2 without its digest"):
        checkpoint.load(path, fresh_like())


def flip(blob, offset, mask):
    return blob[:offset] + bytes([blob[offset] ^ mask]) + blob[offset + 1 :]


def assert_refused(path, like):
    expected = f"{path} is corrupted (digest mismatch)"
    for read in (lambda: checkpoint.load(path, like), lambda: checkpoint.info(path)):
        with pytest.raises(checkpoint.CorruptedCheckpoint) as caught:
            read()
        assert str(caught.value) == expected
        assert isinstance(caught.value, checkpoint.CheckpointError)
        assert isinstance(caught.value, ValueError)


def test_a_flipped_bit_at_every_offset_of_a_small_checkpoint_is_refused(tmp_path):
    """Exhaustive over offsets (header, digest, metadata, arrays), the bit turning with them."""
    path = tmp_path / "small.ckpt"
    like = fresh_like()
    checkpoint.save(path, like, metadata={"argv": ["mlp"]}, config={"seed": 0})
    blob = path.read_bytes()
    expected = f"{path} is corrupted (digest mismatch)"
    refused = 0
    for offset in range(len(blob)):
        path.write_bytes(flip(blob, offset, 1 << offset % 8))
        with pytest.raises(checkpoint.CorruptedCheckpoint) as caught:
            checkpoint.load(path, like)
        assert str(caught.value) == expected, offset
        refused += 1
    assert refused == len(blob) > 1000
    path.write_bytes(blob)
    assert_bit_identical(checkpoint.load(path, like)[0], like)  # the intact file loads


FULL = {}


def full_checkpoint(tmp_path):
    """A checkpoint with a history, a configuration and metadata (computed once)."""
    if not FULL:
        path = tmp_path / "full.ckpt"
        state, history = fit(2)
        checkpoint.save(path, state, history, metadata={"argv": ["mlp"]}, config={"seed": 3})
        FULL["blob"] = path.read_bytes()
    return FULL["blob"]


@given(data=st.data())
def test_one_flipped_byte_anywhere_is_refused(tmp_path_factory, data):
    blob = full_checkpoint(tmp_path_factory.mktemp("full"))
    offset = data.draw(st.integers(0, len(blob) - 1), label="offset")
    mask = data.draw(st.integers(1, 255), label="mask")
    path = tmp_path_factory.mktemp("flipped") / "run.ckpt"
    path.write_bytes(flip(blob, offset, mask))
    assert_refused(path, fresh_like())
    with pytest.raises(checkpoint.CorruptedCheckpoint):
        checkpoint.read_metadata(path)


def test_save_rejects_a_config_that_is_not_a_mapping(tmp_path):
    with pytest.raises(TypeError, match="config must be a mapping"):
        checkpoint.save(tmp_path / "x", fresh_like(), config=["adam"])
    assert not (tmp_path / "x").exists()
