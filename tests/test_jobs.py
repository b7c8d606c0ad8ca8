"""Tests of dlvr_jax.jobs: configs checked at the door, sessions in chunks, resume, divergence."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from helpers import assert_bit_identical
from hypothesis import given, settings
from hypothesis import strategies as st

from dlvr_jax import checkpoint, data, jobs, models, optim, train

SMALL = {"n": 120, "hidden": (6,), "learning_rate": 1e-2, "batch_size": 25}


def small(**changes):
    return jobs.MlpConfig(**{**SMALL, "epochs": 12, **changes})


def write_csv(path, x, y, header=True):
    lines = ["a,b,target"] if header else []
    lines += [",".join([*(f"{v:.6g}" for v in row), str(t)]) for row, t in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def session_run():
    """One 12-epoch job, trained in a single call."""
    return jobs.mlp(small(), out=None)


@pytest.mark.slow
def test_a_session_in_chunks_equals_one_job_bit_for_bit(session_run):
    session = jobs.MlpSession.start(small())
    assert session.epoch == 0
    assert [session.advance(k) for k in (5, 4, 3)] == [5, 4, 3]
    chunked = session.result()
    assert chunked.metrics["epochs"] == session_run.metrics["epochs"] == 12
    assert_bit_identical(session_run.state, chunked.state)
    assert_bit_identical(session_run.history, chunked.history)


def test_the_job_trains_what_train_fit_trains(session_run):
    # The job's data, key and model are the documented ones: seed -> (data, split, train) keys.
    data_key, split_key, train_key = jax.random.split(jax.random.key(0), 3)
    full = data.circle(data_key, 120)
    train_set, test_set = data.train_test_split(split_key, full, test_fraction=0.2)
    state, history = train.fit(
        train_key,
        models.MLP(hidden=(6,), n_outputs=2),
        optim.optimizer("adam", 1e-2),
        train_set,
        epochs=12,
        batch_size=25,
        test=test_set,
    )
    assert_bit_identical(state.params, session_run.state.params)
    assert_bit_identical(history, session_run.history)


@pytest.mark.slow
@settings(max_examples=4)
@given(first=st.integers(1, 5))
def test_any_split_of_the_epochs_gives_the_same_bits(first):
    config = jobs.MlpConfig(n=40, hidden=(3,), epochs=6, batch_size=16, learning_rate=1e-2)
    whole = jobs.MlpSession.start(config)
    whole.advance(6)
    parts = jobs.MlpSession.start(config)
    parts.advance(first)
    parts.advance(6 - first)
    assert_bit_identical(whole.state, parts.state)
    assert_bit_identical(whole.history, parts.history)


def test_the_job_writes_the_figures_and_one_metrics_document(tmp_path):
    result = jobs.mlp(small(epochs=3), out=str(tmp_path))
    assert [p.split("/")[-1] for p in result.files] == list(jobs.MLP_FILES)
    for name in jobs.MLP_FILES:
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "metrics.json").read_text()) == result.metrics
    assert result.metrics["epochs"] == 3
    # Where the command's time went, phase by phase (the benchmarks' "wait" workload reads it).
    assert set(result.metrics["timings"]) == {"data", "init", "train", "figures", "files"}
    assert all(seconds >= 0 for seconds in result.metrics["timings"].values())
    assert result.diverged is None
    assert not result.nothing_to_train


def test_out_none_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jobs.mlp(small(epochs=2), out=None)
    assert list(tmp_path.iterdir()) == []


def test_resume_continues_bit_for_bit_and_records_the_configuration(tmp_path, session_run):
    path = str(tmp_path / "c.msgpack")
    jobs.mlp(small(epochs=5), out=None, checkpoint_path=path)
    recorded = checkpoint.info(path).config
    assert recorded["model"] == {
        "hidden": [6],
        "activation": "relu",
        "n_outputs": 2,
        "n_features": 2,
    }
    assert recorded["dataset"] == {"name": "circle", "n": 120, "noise": 0.0, "test_fraction": 0.2}
    assert recorded["optimizer"] == {"name": "adam", "learning_rate": 1e-2, "clip_norm": None}
    assert (recorded["loss"], recorded["seed"], recorded["batch_size"]) == ("cross_entropy", 0, 25)
    resumed = jobs.mlp(small(), out=None, resume=path)
    assert_bit_identical(session_run.state, resumed.state)
    assert_bit_identical(session_run.history, resumed.history)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"activation": "tanh"}, "model.activation"),
        ({"hidden": (7,)}, "model.hidden"),
        ({"learning_rate": 3e-2}, "optimizer.learning_rate"),
        ({"clip_norm": 1.0}, "optimizer.clip_norm"),
        ({"seed": 1}, "seed"),
        ({"noise": 0.1}, "dataset.noise"),
        ({"dataset": "moons"}, "dataset.name"),
    ],
)
def test_resume_refuses_another_configuration_unless_forced(tmp_path, change, field):
    path = str(tmp_path / "c.msgpack")
    jobs.mlp(small(epochs=2), out=None, checkpoint_path=path)
    with pytest.raises(jobs.ConfigMismatch) as refused:
        jobs.MlpSession.start(small(**change), resume=path)
    assert refused.value.field == field
    assert "pass force=True" in str(refused.value)
    if field in ("model.hidden", "optimizer.clip_norm"):  # other shapes: forcing cannot load
        with pytest.raises(checkpoint.CheckpointError, match="do not match the model"):
            jobs.MlpSession.start(small(**change), resume=path, force=True)
        return
    forced = jobs.MlpSession.start(small(**change), resume=path, force=True)
    assert forced.epoch == 2


def test_resume_of_an_old_checkpoint_without_configuration(tmp_path):
    path = str(tmp_path / "old.msgpack")
    first = jobs.MlpSession.start(small())
    first.advance(4)
    checkpoint.save(path, first.state, first.history)  # no config recorded
    session = jobs.MlpSession.start(small(activation="tanh"), resume=path)  # nothing to check
    assert session.epoch == 4


def test_nothing_left_to_train_writes_nothing(tmp_path):
    path = str(tmp_path / "c.msgpack")
    jobs.mlp(small(epochs=4), out=None, checkpoint_path=path)
    before = (tmp_path / "c.msgpack").read_bytes()
    result = jobs.mlp(small(epochs=4), out=str(tmp_path / "out"), checkpoint_path=path, resume=path)
    assert result.nothing_to_train
    assert result.metrics["epochs"] == 4
    assert result.files == ()
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "c.msgpack").read_bytes() == before


@pytest.mark.slow
def test_divergence_keeps_the_last_good_epoch_and_names_the_cause(tmp_path):
    config = jobs.MlpConfig(learning_rate=1e6, epochs=50)  # the chapter's net, a huge step
    result = jobs.mlp(config, out=str(tmp_path))
    assert result.diverged is not None
    epoch, cause = result.diverged
    assert 1 <= epoch <= 50
    assert cause in ("loss became nan", "loss became inf", "parameters became nan",
                     "parameters became inf")  # fmt: skip
    assert result.metrics["epochs"] == epoch - 1 == int(result.state.epoch)
    assert len(result.history.train_loss) == epoch - 1
    assert all(bool(np.isfinite(leaf).all()) for leaf in jax.tree.leaves(result.state.params))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["diverged"] == {"epoch": epoch, "cause": cause}
    # A session that diverged trains nothing more.
    session = jobs.MlpSession.start(config)
    session.advance(50)
    assert session.diverged == result.diverged
    assert session.advance(5) == 0


def test_clip_norm_is_applied(session_run):
    clipped = jobs.mlp(small(clip_norm=1e-3), out=None)
    assert clipped.metrics["clip_norm"] == 1e-3
    assert not np.array_equal(
        np.asarray(clipped.history.train_loss), np.asarray(session_run.history.train_loss)
    )


def test_csv_classes_set_the_outputs_and_regression_uses_mse(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    labels = np.argmax(x, axis=1)  # three classes from three features
    path = write_csv(tmp_path / "three.csv", x, labels)
    result = jobs.mlp(jobs.MlpConfig(data_path=path, hidden=(4,), epochs=3), out=str(tmp_path))
    assert result.model.n_outputs == 3
    assert result.metrics["task"] == "classification"
    recorded = result.metrics["data"]
    assert len(recorded["sha256"]) == 64
    assert recorded["path"].endswith("three.csv")
    names = {p.split("/")[-1] for p in result.files}
    assert names == {"loss_curve.png", "gradient_heatmap.png", "metrics.json"}  # 3 inputs
    assert any("2 inputs" in note for note in result.metrics["notes"])
    floats = write_csv(tmp_path / "reg.csv", x, [f"{v:.4f}" for v in x.sum(axis=1)])
    regression = jobs.mlp(jobs.MlpConfig(data_path=floats, hidden=(4,), epochs=3), out=None)
    assert (regression.model.n_outputs, regression.metrics["loss"]) == (1, "mse")
    assert regression.metrics["train_accuracy"] is None
    forced = jobs.mlp(
        jobs.MlpConfig(data_path=path, task="regression", hidden=(4,), epochs=2), out=None
    )
    assert forced.metrics["loss"] == "mse"


def test_a_bad_csv_names_the_file_and_the_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,y\n0.1,0.2,1\n0.3,oops,0\n")
    with pytest.raises(ValueError, match=r"bad\.csv:3:2: column 2 is not a number: 'oops'"):
        jobs.MlpSession.start(jobs.MlpConfig(data_path=str(path)))
    with pytest.raises(FileNotFoundError, match=r"missing\.csv: no such file"):
        jobs.MlpSession.start(jobs.MlpConfig(data_path=str(tmp_path / "missing.csv")))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: jobs.MlpConfig(dataset="ring"), "dataset"),
        (lambda: jobs.MlpConfig(n=0), "n"),
        (lambda: jobs.MlpConfig(hidden=(8, 0)), r"hidden\[1\] must be an int in \[1, inf\)"),
        (lambda: jobs.MlpConfig(activation="relu6"), "activation"),
        (lambda: jobs.MlpConfig(learning_rate=0.0), "learning_rate"),
        (lambda: jobs.MlpConfig(clip_norm=-1.0), "clip_norm"),
        (lambda: jobs.MlpConfig(seed=2**32), "seed"),
        (lambda: jobs.MlpConfig(task="regression"), "task applies only to data_path"),
        (lambda: jobs.PerceptronConfig(dataset="plane"), "regression set"),
        (lambda: jobs.PerceptronConfig(dataset="xor", margin=0.2), "--margin applies only"),
        (lambda: jobs.SweepConfig(dataset="plane"), "regression set"),
        (lambda: jobs.CompareConfig(activations=()), "activations"),
        (lambda: jobs.OptimizeConfig(start=(1.0,)), "--start must have 2"),
        (lambda: jobs.OptimizeConfig(function="least_squares", n=5), "at most --n"),
    ],
)
def test_configs_are_checked_at_the_door(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_configs_are_frozen():
    config = jobs.MlpConfig()
    with pytest.raises(AttributeError):
        config.epochs = 3  # type: ignore[misc]
    assert jobs.MlpConfig(hidden=[4, 4]).hidden == (4, 4)


def test_perceptron_job_on_a_csv(tmp_path):
    x = np.array([[1.0, 1.0], [2.0, 0.5], [-1.0, -1.0], [-0.5, -2.0]])
    path = write_csv(tmp_path / "two.csv", x, [1, 1, 0, 0], header=False)
    result = jobs.perceptron(jobs.PerceptronConfig(data_path=path), out=str(tmp_path))
    assert result.metrics["converged"] is True
    assert result.metrics["accuracy"] == 1.0
    assert (tmp_path / "perceptron.png").exists()
    three = write_csv(tmp_path / "three.csv", x, [0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"three\.csv: the perceptron needs labels 0 and 1"):
        jobs.perceptron(jobs.PerceptronConfig(data_path=three), out=None)


def test_write_json_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    jobs.write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(TypeError):
        jobs.write_json(path, {"a": object()})  # not JSON: the old file stays
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


# ----------------------------------------------------------------------------
# The one problem preparation (jobs.prepare_problem), shared by every door.


def test_a_config_error_carries_its_field():
    from dlvr_jax import _validate as check

    for make, field in [
        (lambda: jobs.MlpConfig(learning_rate=-1.0), "learning_rate"),
        (lambda: jobs.MlpConfig(n=0), "n"),
        (lambda: jobs.MlpConfig(hidden=(8, 0)), "hidden"),
        (lambda: jobs.MlpConfig(task="regression"), "task"),
        (lambda: jobs.SweepConfig(batch_sizes=()), "batch_sizes"),
        (lambda: jobs.ProblemConfig(features=("x1", "x9")), "features"),
    ]:
        with pytest.raises((ValueError, TypeError)) as error:
            make()
        assert check.field_of(error.value) == field


def test_prepare_problem_is_the_jobs_data_model_and_key():
    config = small(epochs=3)
    problem = jobs.prepare_problem(config.problem())
    session = jobs.MlpSession.start(config)
    assert_bit_identical(problem.train, session.train_set)
    assert_bit_identical(problem.test, session.test_set)
    assert problem.model == session.model == models.MLP(hidden=(6,), n_outputs=2)
    assert (problem.task, problem.classes, problem.label_note) == (
        "classification",
        ("0", "1"),
        None,
    )
    train_key = jax.random.split(jax.random.key(0), 3)[2]
    assert_bit_identical(jax.random.key_data(problem.key), jax.random.key_data(train_key))


def test_labels_are_mapped_named_and_one_class_refused(tmp_path):
    x = np.arange(12, dtype=float).reshape(6, 2)
    shifted = write_csv(tmp_path / "shifted.csv", x, [1, 2, 3, 1, 2, 3])
    problem = jobs.prepare_problem(jobs.ProblemConfig(data_path=shifted, hidden=(2,)))
    assert problem.classes == ("1", "2", "3")
    assert problem.label_note == "class labels [1, 2, 3] mapped to 0..2"
    assert problem.model.n_outputs == 3
    both = np.concatenate([np.asarray(problem.train.y), np.asarray(problem.test.y)])
    assert sorted(both.tolist()) == [0, 0, 1, 1, 2, 2]
    names = write_csv(tmp_path / "names.csv", x, ["b", "a", "b", "a", "b", "a"])
    problem = jobs.prepare_problem(jobs.ProblemConfig(data_path=names, hidden=(2,)))
    assert problem.classes == ("a", "b")
    assert problem.label_note == "class labels ['a', 'b'] mapped to 0..1"
    one = write_csv(tmp_path / "one.csv", x, [1] * 6)
    with pytest.raises(ValueError, match="one class"):
        jobs.prepare_problem(jobs.ProblemConfig(data_path=one))
    upload = data.Dataset(np.asarray(x, np.float32), np.zeros(6, np.int32))
    with pytest.raises(ValueError, match="at least two classes"):
        jobs.prepare_problem(jobs.ProblemConfig(upload=upload))


def test_an_upload_gives_the_bits_of_its_csv_file(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 2)), rng.integers(0, 3, 30)
    path = write_csv(tmp_path / "u.csv", x, y)
    text = (tmp_path / "u.csv").read_text()
    options = {"hidden": (3,), "seed": 5, "features": ("x1", "x1*x2", "sin(x2)")}
    from_file = jobs.prepare_problem(jobs.ProblemConfig(data_path=path, **options))
    from_text = jobs.prepare_problem(jobs.ProblemConfig(upload=data.parse_csv(text), **options))
    for a, b in [(from_file.train, from_text.train), (from_file.test, from_text.test)]:
        assert_bit_identical(a, b)
    assert from_text.features == options["features"]
    assert from_text.train.x.shape == (24, 3)
    assert from_text.train_raw.x.shape == (24, 2)


def test_the_playgrounds_mse_classifier_has_one_output():
    problem = jobs.prepare_problem(jobs.ProblemConfig(dataset="xor", n=40, loss="mse"))
    assert (problem.loss, problem.loss_name, problem.n_outputs) == (jobs.signed_mse, "mse", 1)
    with pytest.raises(ValueError, match="does not fit a regression"):
        jobs.prepare_problem(jobs.ProblemConfig(dataset="plane", n=40, loss="cross_entropy"))
    with pytest.raises(ValueError, match="does not fit dataset 'circle'"):
        jobs.ProblemConfig(task="regression")
