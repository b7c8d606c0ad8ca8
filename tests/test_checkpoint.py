"""Tests of dlvr_jax.checkpoint: exact round trips, resume, and clear errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from helpers import assert_bit_identical

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


def test_files_are_msgpack_with_a_format_version_and_no_pickle(tmp_path):
    from flax import serialization

    state, history = fit(2)
    path = tmp_path / "v.msgpack"
    checkpoint.save(path, state, history)
    raw = serialization.msgpack_restore(path.read_bytes())
    assert raw["format"] == "dlvr_jax.checkpoint"
    assert raw["version"] == checkpoint.FORMAT_VERSION
    assert b"pickle" not in path.read_bytes()


def test_truncated_file_raises_a_clear_error(tmp_path):
    state, history = fit(2)
    path = tmp_path / "t.msgpack"
    checkpoint.save(path, state, history)
    blob = path.read_bytes()
    for cut in (0, 10, len(blob) // 2, len(blob) - 1):
        path.write_bytes(blob[:cut])
        with pytest.raises(checkpoint.CheckpointError, match=r"truncated or corrupt|not a dlvr"):
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


def test_older_checkpoints_without_a_configuration_still_load(tmp_path):
    from flax import serialization

    state, history = fit(2)
    path = tmp_path / "old.msgpack"
    checkpoint.save(path, state, history)
    raw = serialization.msgpack_restore(path.read_bytes())
    del raw["metadata"]  # as written before metadata existed
    path.write_bytes(serialization.msgpack_serialize(raw))
    info = checkpoint.info(path)
    assert info.config is None
    assert info.epoch == 2
    loaded, _ = checkpoint.load(path, fresh_like())
    assert_bit_identical(state, loaded)


def test_save_rejects_a_config_that_is_not_a_mapping(tmp_path):
    with pytest.raises(TypeError, match="config must be a mapping"):
        checkpoint.save(tmp_path / "x", fresh_like(), config=["adam"])
    assert not (tmp_path / "x").exists()
