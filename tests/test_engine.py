"""Tests of dlvr_jax.engine: History over every field, fit preparation, resume, NaN, batch order.

The doors (``train.fit``, ``parallel.fit_pmap``, ``parallel.fit_sharded``) are
exercised here on one device; ``test_multidevice.py`` repeats resume on 4.
Seams patched here: ``engine.run``, ``engine.compiled_run`` and
``engine.init_state`` (documented in the engine's module docstring).
"""

from __future__ import annotations

import itertools
import logging
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_bit_identical
from hypothesis import given, settings
from hypothesis import strategies as st

from dlvr_jax import data, engine, models, optim, parallel, train

XOR = data.xor(jax.random.key(0), 120)
TEST = data.xor(jax.random.key(9), 40)
ADAM = optim.optimizer("adam", 1e-2)


# ---------------------------------------------------------------------------
# History: one definition over every field.


def _history(epochs: int, layers: tuple[str, ...], with_test: bool, seed: int) -> train.History:
    rng = np.random.default_rng(seed)

    def per_epoch() -> jax.Array:
        return jnp.asarray(rng.normal(size=epochs).astype(np.float32))

    return train.History(
        train_loss=per_epoch(),
        train_accuracy=per_epoch(),
        test_loss=per_epoch() if with_test else None,
        test_accuracy=per_epoch() if with_test else None,
        grad_norms={name: per_epoch() for name in layers},
        final_grads={"params": {"w": jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)}},
    )


histories = st.builds(
    lambda epochs, layers, with_test, seed, k: (_history(epochs, layers, with_test, seed), k),
    epochs=st.integers(1, 9),
    layers=st.lists(st.sampled_from(["hidden_0", "hidden_1", "output"]), unique=True).map(tuple),
    with_test=st.booleans(),
    seed=st.integers(0, 2**16),
    k=st.integers(0, 9),
)


@given(histories)
def test_concatenate_of_a_truncation_and_the_rest_is_the_whole(case):
    history, k = case
    epochs = int(history.train_loss.shape[0])
    k = min(k, epochs)
    head = engine.truncate(history, k)
    rest = engine.map_epochs(lambda a: a[k:], history)
    # Every per-epoch field was cut, None fields stayed None, final_grads kept.
    for field in ("test_loss", "test_accuracy"):
        assert (getattr(head, field) is None) == (getattr(history, field) is None)
    per_epoch = jax.tree.leaves(head._replace(final_grads=None))
    assert len(per_epoch) == 2 + 2 * (history.test_loss is not None) + len(history.grad_norms)
    assert all(leaf.shape == (k,) for leaf in per_epoch)
    assert set(head.grad_norms) == set(history.grad_norms)
    assert_bit_identical(head.final_grads, history.final_grads)
    assert_bit_identical(engine.concatenate(head, rest), history)
    assert_bit_identical(train.concatenate(head, rest), history)


def test_map_epochs_touches_every_per_epoch_field_and_only_those():
    history = _history(4, ("hidden_0", "output"), True, 0)
    ones = engine.map_epochs(jnp.ones_like, history)
    for leaf in jax.tree.leaves(ones._replace(final_grads=None)):
        np.testing.assert_array_equal(leaf, np.ones(4))
    assert ones.final_grads is history.final_grads
    second = _history(3, ("hidden_0", "output"), True, 1)
    assert engine.concatenate(history, second).final_grads is second.final_grads
    with pytest.raises(ValueError, match="pytree"):
        engine.concatenate(history, _history(3, ("hidden_0",), True, 1))


def test_history_from_records_keeps_every_field():
    records = engine.EpochRecord(
        jnp.ones(2), jnp.zeros(2), None, None, {"output": jnp.full(2, 3.0)}
    )
    history = engine.history_from(records, {"g": jnp.ones(1)})
    assert history.train_loss.tolist() == [1.0, 1.0]
    assert history.test_loss is None
    assert history.test_accuracy is None
    assert history.grad_norms["output"].tolist() == [3.0, 3.0]
    assert history.final_grads["g"].tolist() == [1.0]


# ---------------------------------------------------------------------------
# prepare: one typed plan, errors before tracing.


def test_prepare_returns_a_typed_plan_fresh_or_resumed():
    plan = engine.prepare(
        jax.random.key(0), models.MLP(hidden=(4,)), ADAM, XOR,
        epochs=5, batch_size=32, test=TEST, l2=1e-3, chunk_epochs=2,
    )  # fmt: skip
    assert isinstance(plan, engine.FitPlan)
    assert (plan.epochs, plan.batch_size, plan.chunk, plan.on_nan) == (5, 32, 2, "raise")
    assert plan.data.x.dtype == jnp.float32
    assert plan.data.y.dtype == jnp.int32
    assert plan.test is not None
    assert plan.progress is None
    assert int(plan.state.epoch) == 0
    assert float(plan.state.l2) == pytest.approx(1e-3)
    assert plan.state.task == "classification"
    # Full batch by default; resume keeps the leaves and takes l1/l2/static parts anew.
    trained, _ = train.fit(jax.random.key(0), models.MLP(hidden=(4,)), ADAM, XOR, epochs=2)
    sgd = optim.optimizer("sgd", 0.1)
    resumed = engine.prepare(
        None, models.MLP(hidden=(4,)), sgd, XOR, epochs=3, state=trained, l1=0.5
    )
    assert resumed.batch_size == 120
    assert resumed.chunk == 3
    assert int(resumed.state.epoch) == 2
    assert resumed.state.tx is sgd
    assert float(resumed.state.l1) == 0.5
    assert_bit_identical(resumed.state.params, trained.params)


@pytest.fixture
def no_tracing(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("validation must happen before any tracing")

    # The engine's documented seams.
    monkeypatch.setattr(engine, "run", forbidden)
    monkeypatch.setattr(engine, "compiled_run", forbidden)
    monkeypatch.setattr(engine, "init_state", forbidden)


@pytest.mark.parametrize("fit", [train.fit, parallel.fit_pmap, parallel.fit_sharded])
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epochs": 0}, ValueError, "epochs must be an int >= 1, got 0"),
        ({"batch_size": 500}, ValueError, r"batch_size must be in \[1, 120\]"),
        ({"state": "checkpoint"}, TypeError, "state must be a TrainState, got str"),
        ({"progress": 3}, TypeError, "progress must be a callable"),
        ({"task": "ranking"}, ValueError, "unknown task 'ranking'"),
        ({"task": "regression"}, ValueError, "needs a model with n_outputs=1 for regression"),
        ({"chunk_epochs": -1}, ValueError, "chunk_epochs must be an int >= 1, got -1"),
        ({"l1": float("nan")}, ValueError, "l1 must be a finite number"),
    ],
)
def test_every_door_rejects_bad_arguments_before_tracing(no_tracing, fit, kwargs, error, message):
    arguments = {"epochs": 2, **kwargs}
    with pytest.raises(error, match=message):
        fit(jax.random.key(0), models.MLP(hidden=(4,)), ADAM, XOR, **arguments)


def test_a_fresh_fit_compiles_its_training_program_while_it_initialises(caplog):
    # prepare compiles the first chunk's program (from the state's shapes, in a thread,
    # while init compiles and runs), so the run compiles nothing more; the bits are the
    # same as init then run (the precompiled program is the one run would build).
    model, points = models.MLP(hidden=(5, 3)), data.circle(jax.random.key(3), 37)

    def compiles(step):
        caplog.clear()
        with jax.log_compiles(), caplog.at_level(logging.WARNING):
            result = step()
        return result, [r.getMessage().split(" with ")[0] for r in caplog.records
                        if r.getMessage().startswith("Compiling jit(")]  # fmt: skip

    plan, during_prepare = compiles(
        lambda: engine.prepare(jax.random.key(4), model, ADAM, points, epochs=7, test=points)
    )
    assert "Compiling jit(_init)" in during_prepare  # (the thread's compile logs elsewhere:
    # jax.log_compiles is a thread's own setting)
    (state, history), during_run = compiles(plan.run)
    assert "Compiling jit(run_epochs)" not in during_run  # new shapes, already compiled
    expected = engine.run(plan.state, plan.data, plan.test, 7, plan.batch_size)
    assert_bit_identical(state.params, expected[0].params)
    assert_bit_identical(history.train_loss, expected[1].train_loss)


def test_prepare_rejects_a_bad_key_before_tracing(no_tracing):
    with pytest.raises(TypeError, match="key must be a PRNG key"):
        engine.prepare(0, models.MLP(), ADAM, XOR, epochs=1)


# ---------------------------------------------------------------------------
# Resume through every door, bit for bit.


@pytest.mark.slow
@pytest.mark.parametrize("fit", [train.fit, parallel.fit_pmap, parallel.fit_sharded])
def test_every_door_resumes_bit_for_bit(fit):
    model = models.MLP(hidden=(6,), dropout=0.1)
    kwargs = {"batch_size": 32, "test": TEST, "l2": 1e-3}
    # 6 epochs as 3 + 3: two compiled programs per door.
    whole_state, whole_history = fit(jax.random.key(4), model, ADAM, XOR, epochs=6, **kwargs)
    first_state, first_history = fit(jax.random.key(4), model, ADAM, XOR, epochs=3, **kwargs)
    rest_state, rest_history = fit(None, model, ADAM, XOR, epochs=3, state=first_state, **kwargs)
    assert int(rest_state.epoch) == 6
    assert_bit_identical(whole_state, rest_state)
    assert_bit_identical(whole_history, train.concatenate(first_history, rest_history))


# ---------------------------------------------------------------------------
# The host loop: NaN detection and recovery by running the chunk again.


def _fake_chunk(bad_epoch: int, calls: list[tuple[int, int]]):
    """A run_chunk over an int state (epochs done) whose epoch ``bad_epoch`` (1-based) is NaN."""

    def run_chunk(state: int, length: int):
        calls.append((state, length))
        epochs = np.arange(state + 1, state + length + 1)
        loss = np.where(epochs >= bad_epoch, np.nan, 1.0 / epochs).astype(np.float32)
        records = engine.EpochRecord(
            jnp.asarray(loss), jnp.zeros(length), None, None, {"output": jnp.asarray(loss)}
        )
        bad = np.flatnonzero(epochs == bad_epoch)
        first_bad = int(bad[0]) if bad.size else -1
        return state + length, records, {"g": jnp.full(1, float(state + length))}, first_bad

    return run_chunk


def test_the_loop_reruns_the_chunk_up_to_the_bad_epoch():
    calls: list[tuple[int, int]] = []
    with pytest.raises(train.TrainingDiverged, match="at epoch 6;") as info:
        engine.loop(0, _fake_chunk(6, calls), epochs=10, chunk=4, on_nan="raise", progress=None)
    assert calls == [(0, 4), (4, 4), (4, 1)]  # the second chunk again, for its good epoch
    assert info.value.state == 5
    np.testing.assert_array_equal(
        info.value.history.train_loss, np.float32(1) / np.arange(1, 6, dtype=np.float32)
    )
    assert info.value.history.final_grads["g"].tolist() == [5.0]
    # A bad first epoch of a chunk: the state before it, the last good gradients.
    calls.clear()
    with pytest.warns(RuntimeWarning, match="training stopped at epoch 5"):
        state, history = engine.loop(
            0, _fake_chunk(5, calls), epochs=10, chunk=4, on_nan="stop", progress=None
        )
    assert calls == [(0, 4), (4, 4)]
    assert state == 4
    assert len(history.train_loss) == 4
    assert history.final_grads["g"].tolist() == [4.0]


def test_the_loop_reports_progress_after_each_chunk():
    reports: list[tuple[int, int, int]] = []
    state, history = engine.loop(
        0, _fake_chunk(99, []), epochs=10, chunk=4, on_nan="raise",
        progress=lambda done, total, h: reports.append((done, total, len(h.train_loss))),
    )  # fmt: skip
    assert reports == [(4, 10, 4), (8, 10, 8), (10, 10, 10)]
    assert state == 10
    assert history.grad_norms["output"].shape == (10,)


class _CancelAfter:
    """A cancel token that is set once ``calls`` checks have been made."""

    def __init__(self, calls: int) -> None:
        self.calls, self.checks = calls, 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks > self.calls


def test_the_loop_stops_between_chunks_when_cancelled():
    calls: list[tuple[int, int]] = []
    with pytest.raises(engine.Cancelled, match="after 8 epochs") as info:
        engine.loop(
            0, _fake_chunk(99, calls), epochs=20, chunk=4, on_nan="raise", cancel=_CancelAfter(2)
        )
    assert calls == [(0, 4), (4, 4)]  # checked before every chunk: two ran, then it stopped
    assert info.value.epochs == 8
    assert info.value.state == 8
    assert info.value.history.train_loss.shape == (8,)
    # Set before anything ran: nothing runs, no history.
    calls.clear()
    with pytest.raises(engine.Cancelled) as info:
        engine.loop(0, _fake_chunk(99, calls), epochs=5, chunk=5, on_nan="raise",
                    cancel=_CancelAfter(0))  # fmt: skip
    assert calls == []
    assert info.value.history is None
    assert info.value.epochs == 0
    # Never set: the whole run, as without a token.
    state, history = engine.loop(
        0, _fake_chunk(99, []), epochs=10, chunk=4, on_nan="raise", cancel=_CancelAfter(99)
    )
    assert state == 10
    assert history.train_loss.shape == (10,)


def test_the_loop_recovers_in_the_pieces_it_is_given():
    calls: list[tuple[int, int]] = []
    asked: list[int] = []

    def pieces(bad: int) -> list[int]:
        asked.append(bad)
        return [4, 2]  # e.g. the sizes whose programs are compiled

    with pytest.raises(train.TrainingDiverged, match="at epoch 15;") as info:
        engine.loop(0, _fake_chunk(15, calls), epochs=16, chunk=8, on_nan="raise", pieces=pieces)
    assert asked == [6]
    # The second chunk (epochs 9-16) is bad at its 7th epoch: 6 good epochs, as 4 + 2.
    assert calls == [(0, 8), (8, 8), (8, 4), (12, 2)]
    assert info.value.state == 14
    assert info.value.history.train_loss.shape == (14,)
    assert np.all(np.isfinite(info.value.history.train_loss))


def test_a_fit_is_cancelled_between_chunks_with_what_it_had():
    import threading

    event = threading.Event()
    seen: list[int] = []

    def progress(done: int, epochs: int, history: train.History) -> None:
        seen.append(done)
        if done >= 4:
            event.set()

    model = models.MLP(hidden=(4,))
    with pytest.raises(train.Cancelled) as info:
        train.fit(jax.random.key(1), model, ADAM, XOR, epochs=12, chunk_epochs=2,
                  progress=progress, cancel=event)  # fmt: skip
    assert seen == [2, 4]
    assert info.value.epochs == 4
    # What it had is the run of 4 epochs, bit for bit: it can be resumed.
    state, history = train.fit(jax.random.key(1), model, ADAM, XOR, epochs=4, chunk_epochs=2)
    assert_bit_identical(info.value.state, state)
    assert_bit_identical(info.value.history, history)


def test_options_are_checked_by_name():
    model = models.MLP(hidden=(4,))
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        train.fit(jax.random.key(0), model, ADAM, XOR, epoch=3)
    with pytest.raises(TypeError, match="missing the required keyword argument 'epochs'"):
        train.fit(jax.random.key(0), model, ADAM, XOR)
    with pytest.raises(TypeError, match="cancel must have an is_set"):
        train.fit(jax.random.key(0), model, ADAM, XOR, epochs=1, cancel=True)
    with pytest.raises(ValueError, match="sample_weight must have one weight per example"):
        train.fit(jax.random.key(0), model, ADAM, XOR, epochs=1, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="at least one non-zero weight"):
        train.fit(jax.random.key(0), model, ADAM, XOR, epochs=1, sample_weight=np.zeros(120))
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        train.fit(jax.random.key(0), model, ADAM, XOR, epochs=1, sample_weight=-np.ones(120))


@pytest.mark.parametrize("batch_size", [None, 32])
def test_integer_sample_weights_equal_repeated_examples(batch_size):
    # Full batch: weights 0/1/2 and the data with those rows dropped or repeated give the
    # same objective; minibatches visit other batches, so there the law is the zero weight:
    # examples of weight 0 change nothing but the order.
    # Two epochs, as in the tests above: the unweighted runs share their programs.
    model = models.MLP(hidden=(4,))
    weights = np.asarray(np.arange(120) % 3, np.float32)
    key = jax.random.key(3)
    if batch_size is None:
        repeated = data.Dataset(
            jnp.asarray(np.repeat(np.asarray(XOR.x), weights.astype(int), axis=0)),
            jnp.asarray(np.repeat(np.asarray(XOR.y), weights.astype(int))),
        )
        weighted, _ = train.fit(key, model, ADAM, XOR, epochs=2, sample_weight=weights)
        plain, _ = train.fit(key, model, ADAM, repeated, epochs=2)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6),
            weighted.params, plain.params,
        )  # fmt: skip
    ones, history = train.fit(key, model, ADAM, XOR, epochs=2, batch_size=batch_size,
                              sample_weight=np.ones(120))  # fmt: skip
    unweighted, plain_history = train.fit(key, model, ADAM, XOR, epochs=2, batch_size=batch_size)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        (ones.params, history.train_loss), (unweighted.params, plain_history.train_loss),
    )  # fmt: skip


def test_padded_weighted_fit_equals_the_unpadded_weighted_fit():
    model = models.MLP(hidden=(4,))
    weights = np.asarray(np.arange(100) % 4, np.float32)
    part = data.Dataset(XOR.x[:100], XOR.y[:100])
    options = {"epochs": 3, "batch_size": 24, "sample_weight": weights}
    padded = train.fit(jax.random.key(5), model, ADAM, part, pad_batches=True, **options)
    plain = train.fit(jax.random.key(5), model, ADAM, part, **options)
    assert_bit_identical(padded, plain)


# ---------------------------------------------------------------------------
# The trainer visits exactly the documented minibatches.


def _recording_loss(visits: list[tuple[np.ndarray, np.ndarray]]):
    def loss(outputs, labels, weights):
        ids = labels
        shown = jnp.ones(ids.shape, jnp.float32) if weights is None else weights
        jax.debug.callback(
            lambda i, w: visits.append((np.asarray(i), np.asarray(w))), ids, shown, ordered=True
        )
        return jnp.mean(jnp.square(outputs[:, 0]))

    return loss


@pytest.mark.parametrize("batch_size", [7, 10, 50])
def test_the_trainer_visits_the_documented_batches_in_order(batch_size):
    # The label of example i is i: the loss records the labels of every batch it sees.
    n, epochs = 50, 3
    dataset = data.Dataset(jax.random.normal(jax.random.key(1), (n, 2)), jnp.arange(n))
    visits: list[tuple[np.ndarray, np.ndarray]] = []
    model = models.MLP(hidden=(), n_outputs=1)
    state, _ = train.fit(
        jax.random.key(3), model, optim.optimizer("sgd", 0.01), dataset,
        epochs=epochs, batch_size=batch_size, loss=_recording_loss(visits),
    )  # fmt: skip
    jax.effects_barrier()
    orders = []
    for epoch in range(epochs):
        index, mask = train.minibatches(state.key, jnp.int32(epoch), n, batch_size)
        expected = data.batch_order(
            jax.random.fold_in(state.key, 0), epoch, n, batch_size, remainder="pad"
        )
        assert_bit_identical((index, mask), expected)
        rows = len(index)
        seen = visits[epoch * rows : (epoch + 1) * rows]
        np.testing.assert_array_equal(np.stack([ids for ids, _ in seen]), index)
        np.testing.assert_array_equal(np.stack([w for _, w in seen]), mask)
        orders.append(np.asarray(index).ravel())
    assert len(visits) == epochs * len(index)
    if batch_size < n:  # consecutive epochs are ordered differently
        assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(orders))


# ---------------------------------------------------------------------------
# Padding to whole batches: one program for every count, the bits of each.

PADDED_MODEL = models.MLP(hidden=(6,), dropout=0.25)


@pytest.mark.slow
@settings(max_examples=10)  # 3 counts x 2 penalties: 6 cases, and random seeds
@given(
    count=st.sampled_from([49, 61, 71]),  # each compiles an unpadded fit: the ends and one between
    seed=st.integers(0, 2**16),
    l2=st.sampled_from([0.0, 1e-2]),
)
def test_a_padded_run_is_the_run_of_its_examples_bit_for_bit(count, seed, l2):
    # Every count from 49 to 71 pads to 72 rows (3 batches of 24) and runs one
    # compiled program; each run equals train.fit on the unpadded examples:
    # parameters, optimizer state, key, and every field of the history.
    examples = data.Dataset(XOR.x[:count], XOR.y[:count])
    state = train.create_train_state(jax.random.key(seed), PADDED_MODEL, ADAM, examples.x, l2=l2)
    expected, expected_history = train.fit(
        None, PADDED_MODEL, ADAM, examples, epochs=4, batch_size=24, l2=l2, state=state
    )
    padded, number = engine.pad_to_batches(examples, 24, state.key)
    assert padded.x.shape == (72, 2)
    assert int(number) == count
    np.testing.assert_array_equal(padded.x[count:], 0)
    ran, records, grads, first_bad = engine.run(state, padded, None, 4, 24, number)
    assert int(first_bad) == -1
    assert_bit_identical(ran, expected)
    assert_bit_identical(engine.history_from(records, grads), expected_history)


def test_counts_that_pad_alike_share_one_compiled_loop(caplog):
    def compiles(count: int) -> int:
        examples = data.Dataset(XOR.x[:count], XOR.y[:count])
        state = train.create_train_state(jax.random.key(0), PADDED_MODEL, ADAM, examples.x)
        padded, number = engine.pad_to_batches(examples, 20, state.key)
        caplog.clear()
        with jax.log_compiles(), caplog.at_level(logging.WARNING):
            engine.run(state, padded, None, 2, 20, number)
        return sum("Compiling jit(run_epochs)" in r.getMessage() for r in caplog.records)

    compiles(101)
    assert [compiles(n) for n in (102, 110, 119)] == [0, 0, 0]  # all pad to 120 rows
    assert compiles(121) == 1  # 140 rows: another program


def test_pad_to_batches_leaves_whole_batches_alone():
    key = jax.random.key(0)
    assert engine.pad_to_batches(XOR, 40, key) == (XOR, None)  # 120 = 3 x 40
    assert engine.pad_to_batches(XOR, 120, key) == (XOR, None)  # full batch
    # Traced data (under jit) is padded on the device, like an accelerator's.
    traced, count = jax.jit(lambda d: engine.pad_to_batches(d, 50, key))(XOR)
    assert traced.x.shape == (150, 2)
    assert int(count) == 120
    np.testing.assert_array_equal(traced.x[:120], XOR.x)
    np.testing.assert_array_equal(traced.y[120:], 0)
    with pytest.raises(ValueError, match="count and sharding"):
        engine.run_epochs(
            train.create_train_state(key, PADDED_MODEL, ADAM, XOR.x), XOR, None, 1, 40,
            engine.Sharding(1), jnp.int32(110),
        )  # fmt: skip


# ---------------------------------------------------------------------------
# Initialisation: one program, cached, bit-identical to eager init.


class _Traced(nn.Module):
    """A dense layer that counts how often it is traced (the class's list, shared)."""

    features: int = 2
    traces: ClassVar[list[int]] = []

    @nn.compact
    def __call__(self, x, *, train=False):
        _Traced.traces.append(1)
        return nn.Dense(self.features, name="output")(x)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    [
        models.MLP(),
        models.MLP(hidden=(8, 8), dropout=0.1, activation="tanh"),
        models.MLP(hidden=(3,), n_outputs=3, layer_norm=True),
        models.MLP(hidden=(), n_outputs=1),
    ],
)
@pytest.mark.parametrize("name", ["adam", "momentum"])
def test_create_train_state_equals_eager_init_bit_for_bit(model, name):
    tx = optim.optimizer(name, 1e-2, clip_norm=1.0)
    x = data.circle(jax.random.key(5), 20).x
    state = train.create_train_state(jax.random.key(7), model, tx, x, l2=0.5)
    init_key, train_key = jax.random.split(jax.random.key(7))
    params = model.init(init_key, x[:1])
    assert_bit_identical(state.params, params)
    assert_bit_identical(state.opt_state, tx.init(params))
    assert_bit_identical(state.key, train_key)
    assert (int(state.step), int(state.epoch), float(state.l2)) == (0, 0, 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("kernel_init", sorted(models.INITIALIZERS))
def test_every_initializer_compiles_to_the_bits_of_eager_init(kernel_init):
    # The init program is compiled for compile time (dlvr_jax._xla.RUN_ONCE); the
    # normal initialisers' transcendental functions must give the eager bits too.
    model = models.MLP(hidden=(17, 5), n_outputs=3, kernel_init=kernel_init)
    x = jnp.ones((4, 6))
    for seed in (0, 11):
        state = train.create_train_state(jax.random.key(seed), model, ADAM, x)
        init_key, _ = jax.random.split(jax.random.key(seed))
        assert_bit_identical(state.params, model.init(init_key, x[:1]))


def test_init_inside_a_transform_gives_the_same_state():
    # Inside jit (even with every input closed over) and vmap the init is a nested
    # program, which may not carry the compiler options of the top-level one.
    model, x, key = models.MLP(hidden=(5,)), jnp.ones((3, 2)), jax.random.key(2)
    alone = train.create_train_state(key, model, ADAM, x)
    assert_bit_identical(jax.jit(lambda: train.create_train_state(key, model, ADAM, x))(), alone)
    mapped = jax.vmap(lambda k: train.create_train_state(k, model, ADAM, x))(key[None])
    assert_bit_identical(jax.tree.map(lambda leaf: leaf[0], mapped), alone)


def test_equal_modules_share_one_compiled_init():
    _Traced.traces.clear()
    x = jnp.ones((4, 3))
    first = train.create_train_state(jax.random.key(0), _Traced(), ADAM, x)
    second = train.create_train_state(jax.random.key(1), _Traced(), ADAM, x[:2], l1=0.1)
    assert len(_Traced.traces) == 1  # traced once: no eager init, no recompilation
    assert not np.array_equal(
        first.params["params"]["output"]["kernel"], second.params["params"]["output"]["kernel"]
    )
    train.create_train_state(jax.random.key(0), _Traced(features=3), ADAM, x)
    assert len(_Traced.traces) == 2  # another module, another program


def test_task_is_static_and_adds_no_leaf():
    x = jnp.ones((4, 2))
    classification = train.create_train_state(jax.random.key(0), models.MLP(), ADAM, x)
    regression = train.create_train_state(
        jax.random.key(0), models.MLP(n_outputs=1), ADAM, x, loss="mse"
    )
    assert (classification.task, regression.task) == ("classification", "regression")
    fields = (
        classification.step, classification.epoch, classification.params,
        classification.opt_state, classification.key, classification.l1, classification.l2,
    )  # fmt: skip
    assert len(jax.tree.leaves(classification)) == len(jax.tree.leaves(fields))
