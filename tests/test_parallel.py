"""Tests for dlvr_jax.parallel on one device: sweeps, one-device pmap/sharding, initialize.

The multi-device equivalences are in ``test_multidevice.py`` and the
2-process run in ``test_distributed.py``.
"""

from __future__ import annotations

import subprocess
import sys

import jax
import numpy as np
import pytest
from helpers import assert_bit_identical, leaves, sweep_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from dlvr_jax import data, models, optim, parallel, train

XOR = data.xor(jax.random.key(0), 120)
TEST = data.xor(jax.random.key(9), 60)
MODEL = models.MLP(hidden=(6,))
# One training configuration for most tests, so that they share compiled programs
# (a sweep compiles once per number of models, epochs, batch size and test set; a
# fit once per optimizer, that is per learning rate): the suite stays short.
COMMON = {"epochs": 4, "batch_size": 50, "test": TEST}
RATES = (1e-2, 3e-2)


def _close(a, b, *, atol=2e-5):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=atol)


def _alone(seed, result, k, **kwargs):
    return train.fit(
        jax.random.key(seed),
        MODEL,
        optim.optimizer("adam", float(result.learning_rate[k])),
        XOR,
        l1=float(result.l1[k]),
        l2=float(result.l2[k]),
        **kwargs,
    )


@pytest.mark.slow
@settings(max_examples=2)
@given(
    seeds=st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2, unique=True),
    rates=st.lists(st.sampled_from(RATES), min_size=2, max_size=2),
    l2=st.sampled_from([0.0, 1e-3]),
)
def test_every_model_of_a_sweep_equals_fit_alone(seeds, rates, l2):
    # The rates come from a few values: each one compiles fit's program once.
    kwargs = COMMON
    result = parallel.sweep(seeds, MODEL, XOR, learning_rates=rates, l2=l2, **kwargs)
    assert result.size == 4
    np.testing.assert_array_equal(result.diverged_epoch, 0)
    for k in range(result.size):
        seed = seeds[int(result.seed_index[k])]
        state, history = _alone(seed, result, k, **kwargs)
        model_state, model_history = result.select(k)
        _close(state.params, model_state.params)
        _close(history, model_history)
        assert int(model_state.step) == int(state.step) == 4 * 3


# A grid of 8 models (2 rates x 2 l1 x 1 l2 x 2 seeds), shared by the next tests.
GRID = {"learning_rates": RATES, "l1": [0.0, 1e-4], "l2": 1e-3, **COMMON}


def test_the_grid_is_ordered_learning_rate_l1_l2_then_seed():
    result = parallel.sweep([5, 6], MODEL, XOR, **GRID)
    assert result.size == 8
    np.testing.assert_allclose(result.learning_rate, [RATES[0]] * 4 + [RATES[1]] * 4)
    np.testing.assert_allclose(result.l1, [0, 0, 1e-4, 1e-4] * 2)
    np.testing.assert_allclose(result.l2, 1e-3)
    np.testing.assert_array_equal(result.seed_index, [0, 1] * 4)
    assert result.seeds == (5, 6)
    assert result.history.train_loss.shape == (8, COMMON["epochs"])
    # Different seeds, different initial parameters.
    first = jax.tree.leaves(result.state.params)[0]
    assert not np.allclose(first[0], first[1])


@pytest.mark.slow
def test_a_sweep_takes_keys_and_equals_fit_with_those_keys():
    keys = jax.random.split(jax.random.key(3), 2)
    result = parallel.sweep(keys, MODEL, XOR, learning_rates=RATES[0], **COMMON)
    for k in range(2):
        optimizer = optim.optimizer("adam", RATES[0])
        state, _ = train.fit(keys[k], MODEL, optimizer, XOR, **COMMON)
        _close(state.params, result.select(k)[0].params)


# The diverging sweeps share one configuration (and so their compiled programs).
DIVERGING = {"learning_rates": [1e-2, 1e30], "epochs": 7, "test": TEST, "batch_size": 40}


def test_a_diverging_model_is_reported_and_leaves_the_others_alone():
    result = parallel.sweep([0, 1], MODEL, XOR, optimizer="sgd", **DIVERGING)
    np.testing.assert_array_equal(result.diverged_epoch[:2], 0)  # rate 1e-2, both seeds
    for k in (2, 3):  # rate 1e30
        assert 1 <= result.diverged_epoch[k] <= 7
        bad = int(result.diverged_epoch[k])
        assert np.all(np.isnan(np.asarray(result.history.train_loss[k, bad - 1 :])))
    assert np.all(np.isfinite(np.asarray(result.history.train_loss[:2])))
    kwargs = {"epochs": 7, "test": TEST, "batch_size": 40}
    state, _ = train.fit(jax.random.key(0), MODEL, optim.optimizer("sgd", 1e-2), XOR, **kwargs)
    _close(state.params, result.select(0)[0].params)


@pytest.mark.slow
def test_sweep_table_compiles_once_per_shape_and_gathers_one_table():
    lines = []
    # "wide" with batches of 50 is the sweep of the tests above (its program is shared).
    rows = parallel.sweep_table(
        [0, 1],
        {"narrow": models.MLP(hidden=(4,)), "wide": MODEL},
        XOR,
        learning_rates=list(RATES),
        batch_sizes=[COMMON["batch_size"], None],
        epochs=COMMON["epochs"],
        test=TEST,
        progress=lines.append,
    )
    assert len(rows) == 2 * 2 * 2 * 2
    assert len(lines) == 4
    assert {(r["model"], r["batch_size"]) for r in rows} == {
        (m, b) for m in ("narrow", "wide") for b in (COMMON["batch_size"], 120)
    }
    assert {r["seed"] for r in rows} == {0, 1}
    for row in rows:
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert row["diverged_epoch"] == 0
    # Each row is the model trained alone with that configuration.
    row = next(r for r in rows if r["model"] == "wide" and r["batch_size"] == COMMON["batch_size"])
    optimizer = optim.optimizer("adam", row["learning_rate"])
    _, history = train.fit(jax.random.key(row["seed"]), MODEL, optimizer, XOR, **COMMON)
    assert row["test_loss"] == pytest.approx(float(history.test_loss[-1]), rel=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"learning_rates": []}, ValueError, "learning_rates must not be empty"),
        ({"learning_rates": [1e-2, 0.0]}, ValueError, "learning_rates"),
        ({"learning_rates": [-1.0]}, ValueError, "learning_rates"),
        ({"learning_rates": "fast"}, TypeError, "learning_rates"),
        ({"learning_rates": [float("nan")]}, ValueError, "learning_rates"),
        ({"l2": [-0.1]}, ValueError, "l2"),
        ({"optimizer": optim.optimizer("adam", 1e-3)}, TypeError, "optimizer name"),
        ({"optimizer": "adamm"}, ValueError, "optimizer"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"batch_size": 1000}, ValueError, "batch_size"),
    ],
)
def test_sweep_rejects_bad_arguments_before_tracing(monkeypatch, kwargs, error, match):
    def traced(*args, **kw):
        raise AssertionError("traced before the arguments were checked")

    monkeypatch.setattr(parallel, "_jitted_sweep", traced)
    arguments = {"learning_rates": [1e-2], "epochs": 2, **kwargs}
    with pytest.raises(error, match=match):
        parallel.sweep([0], MODEL, XOR, **arguments)


@pytest.mark.parametrize(
    ("seeds", "error"),
    [([], ValueError), ([-1], ValueError), ([1.5], ValueError), ("0", TypeError)],
)
def test_sweep_rejects_bad_seeds(seeds, error):
    with pytest.raises(error, match="seeds"):
        parallel.sweep(seeds, MODEL, XOR, learning_rates=[1e-2], epochs=1)


def test_select_rejects_an_index_out_of_range():
    result = parallel.sweep([0, 1], MODEL, XOR, learning_rates=RATES[0], **COMMON)
    with pytest.raises(ValueError, match=r"k must be an integer in \[0, 1\]"):
        result.select(2)


@pytest.mark.parametrize("fit", [parallel.fit_pmap, parallel.fit_sharded])
def test_one_device_data_parallel_training_equals_fit(fit):
    kwargs = {**COMMON, "l2": 1e-3}
    optimizer = optim.optimizer("adam", RATES[0])
    state, history = train.fit(jax.random.key(4), MODEL, optimizer, XOR, **kwargs)
    state_p, history_p = fit(jax.random.key(4), MODEL, optimizer, XOR, **kwargs)
    _close(state.params, state_p.params)
    _close(history, history_p)


@pytest.mark.parametrize("fit", [parallel.fit_pmap, parallel.fit_sharded])
def test_data_parallel_training_reports_the_diverged_epoch_like_fit(fit):
    optimizer = optim.optimizer("sgd", 1e30)
    with pytest.raises(train.TrainingDiverged) as alone:
        train.fit(jax.random.key(0), MODEL, optimizer, XOR, epochs=4)
    with pytest.raises(train.TrainingDiverged, match=f"epoch {alone.value.epoch}") as caught:
        fit(jax.random.key(0), MODEL, optimizer, XOR, epochs=4)
    assert int(caught.value.state.epoch) == alone.value.epoch - 1
    _close(caught.value.state.params, alone.value.state.params)


def test_data_parallel_training_checks_its_arguments():
    optimizer = optim.optimizer("adam", 1e-2)
    with pytest.raises(ValueError, match="devices must not be empty"):
        parallel.fit_pmap(jax.random.key(0), MODEL, optimizer, XOR, epochs=1, devices=[])
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("model",))
    with pytest.raises(ValueError, match="axis named 'batch'"):
        parallel.fit_sharded(jax.random.key(0), MODEL, optimizer, XOR, epochs=1, mesh=mesh)
    with pytest.raises(ValueError, match="batch_size"):
        parallel.fit_pmap(jax.random.key(0), MODEL, optimizer, XOR, epochs=1, batch_size=0)


# ----------------------------------------------------------------------------
# initialize: everything is checked before JAX's distributed runtime is touched.


@pytest.fixture
def no_cluster(monkeypatch):
    for name in (
        parallel.ENV_COORDINATOR,
        parallel.ENV_NUM_PROCESSES,
        parallel.ENV_PROCESS_ID,
        "SLURM_JOB_ID",
        "OMPI_COMM_WORLD_SIZE",
        "TPU_WORKER_HOSTNAMES",
        "CLOUD_TPU_TASK_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    return calls


def test_initialize_without_a_coordinator_says_what_is_missing(no_cluster):
    with pytest.raises(ValueError, match="initialize needs the coordinator"):
        parallel.initialize()
    with pytest.raises(ValueError, match="coordinator_address is missing"):
        parallel.initialize(num_processes=2, process_id=0)
    assert no_cluster == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coordinator_address": "localhost", "num_processes": 2, "process_id": 0}, "host:port"),
        ({"coordinator_address": "h:99999", "num_processes": 2, "process_id": 0}, "port"),
        ({"coordinator_address": "h:1234", "process_id": 0}, "num_processes is missing"),
        ({"coordinator_address": "h:1234", "num_processes": 2}, "process_id is missing"),
        ({"coordinator_address": "h:1234", "num_processes": 0, "process_id": 0}, "num_processes"),
        ({"coordinator_address": "h:1234", "num_processes": 2, "process_id": 2}, r"\[0, 1\]"),
    ],
)
def test_initialize_rejects_bad_arguments(no_cluster, kwargs, match):
    with pytest.raises(ValueError, match=match):
        parallel.initialize(**kwargs)
    assert no_cluster == []


def test_initialize_reads_the_environment_and_arguments_win(no_cluster, monkeypatch):
    monkeypatch.setenv(parallel.ENV_COORDINATOR, "10.0.0.1:1234")
    monkeypatch.setenv(parallel.ENV_NUM_PROCESSES, "4")
    monkeypatch.setenv(parallel.ENV_PROCESS_ID, "3")
    parallel.initialize()
    parallel.initialize(process_id=1, local_device_ids=[0])
    assert no_cluster[0]["coordinator_address"] == "10.0.0.1:1234"
    assert (no_cluster[0]["num_processes"], no_cluster[0]["process_id"]) == (4, 3)
    assert no_cluster[1]["process_id"] == 1
    assert no_cluster[1]["local_device_ids"] == [0]
    monkeypatch.setenv(parallel.ENV_PROCESS_ID, "three")
    with pytest.raises(ValueError, match="DLVR_JAX_PROCESS_ID must be an integer"):
        parallel.initialize()


def test_initialize_defers_to_jax_cluster_detection_under_slurm(no_cluster, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    parallel.initialize()
    assert no_cluster == [{"initialization_timeout": 300}]


def test_the_learning_rate_really_lives_in_the_optimizer_state():
    result = parallel.sweep([0], MODEL, XOR, learning_rates=RATES, **COMMON)
    rates = result.state.opt_state.hyperparams["learning_rate"]
    np.testing.assert_allclose(np.asarray(rates), RATES, rtol=1e-6)


def test_the_vmap_group_size_does_not_change_the_models():
    kwargs = GRID
    together = parallel.sweep([5, 6], MODEL, XOR, **kwargs)  # all 8 in one group on a CPU
    in_groups = parallel.sweep([5, 6], MODEL, XOR, group=3, **kwargs)  # 3 + 3 + 2 models
    _close(together.state.params, in_groups.state.params)
    _close(together.history, in_groups.history)
    with pytest.raises(ValueError, match="group"):
        parallel.sweep([0], MODEL, XOR, group=0, **kwargs)


def test_sweep_summary_is_the_mean_and_spread_over_seeds():
    xs, ys, mean, std, count = parallel.sweep_summary(sweep_rows(), "test_accuracy")
    assert xs == [1e-3, 1e-2]
    assert ys == [32, 128]
    np.testing.assert_allclose(mean[0], [0.6 + 1e-3, 0.6 + 1e-2])
    np.testing.assert_allclose(std[0, 0], np.std([0.5, 0.6, 0.7]))
    np.testing.assert_array_equal(count, [[3, 3], [3, 0]])
    assert np.isnan(mean[1, 1])


def test_sweep_summary_needs_no_matplotlib():
    # A statistic: computing it in a fresh process imports no matplotlib.
    code = (
        "import sys; from dlvr_jax import parallel; "
        "rows = [{'learning_rate': 1.0, 'batch_size': 2, 'test_accuracy': 0.5}]; "
        "parallel.sweep_summary(rows, 'test_accuracy'); "
        "print('matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        ([], TypeError),
        ("rows", TypeError),
        ([{"learning_rate": 1, "batch_size": 2}], ValueError),
    ],
)
def test_sweep_summary_rejects_bad_tables(rows, error):
    with pytest.raises(error):
        parallel.sweep_summary(rows, "test_accuracy")


def test_a_chunked_sweep_equals_one_run_and_keeps_each_divergence():
    # The host loop drives the sweep in chunks (so that it can be cancelled): the models,
    # their histories and each model's diverged epoch are those of one run.
    kwargs = DIVERGING
    whole = parallel.sweep([0, 1], MODEL, XOR, optimizer="sgd", **kwargs)
    chunked = parallel.sweep([0, 1], MODEL, XOR, optimizer="sgd", chunk_epochs=3, **kwargs)
    assert_bit_identical(whole.state, chunked.state)
    assert_bit_identical(whole.history, chunked.history)
    np.testing.assert_array_equal(whole.diverged_epoch, chunked.diverged_epoch)
    assert chunked.diverged_epoch.tolist()[:2] == [0, 0]
    assert all(epoch > 0 for epoch in chunked.diverged_epoch.tolist()[2:])


def test_a_sweep_stops_between_chunks_when_cancelled():
    import threading

    class SetAfter:
        def __init__(self) -> None:
            self.checks = 0

        def is_set(self) -> bool:
            self.checks += 1
            return self.checks > 3  # once before compiling, then before each chunk

    # Chunks of COMMON's epochs over 2 models: the program of the sweeps above.
    kwargs = {**COMMON, "epochs": 3 * COMMON["epochs"], "chunk_epochs": COMMON["epochs"]}
    done = 2 * COMMON["epochs"]
    with pytest.raises(parallel.engine.Cancelled, match=f"after {done} epochs") as info:
        parallel.sweep([0, 1], MODEL, XOR, learning_rates=RATES[0], cancel=SetAfter(), **kwargs)
    assert info.value.history.train_loss.shape == (2, done)
    event = threading.Event()
    event.set()
    with pytest.raises(parallel.engine.Cancelled, match="after 0 epochs"):
        parallel.sweep([0, 1], MODEL, XOR, learning_rates=RATES[0], cancel=event, **kwargs)


def test_a_sweep_cancelled_before_it_starts_compiles_nothing(monkeypatch):
    # Compiling cannot be interrupted, so a tab closed before its sweep starts must cost nothing.
    import threading

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled a sweep that was already cancelled")

    monkeypatch.setattr(parallel, "_compiled_sweep", no_compile)
    event = threading.Event()
    event.set()
    kwargs = {**COMMON, "epochs": 3 * COMMON["epochs"], "chunk_epochs": COMMON["epochs"]}
    with pytest.raises(parallel.engine.Cancelled, match="after 0 epochs"):
        parallel.sweep([0, 1], MODEL, XOR, learning_rates=RATES[0], cancel=event, **kwargs)
