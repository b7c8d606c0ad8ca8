"""Tests of dlvr_jax.train: convergence, invariants, NaN handling and checks."""

from __future__ import annotations

import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_bit_identical
from hypothesis import given
from hypothesis import strategies as st

from dlvr_jax import data, engine, losses, models, optim, train

ADAM = optim.optimizer("adam", 1e-3)
FAST = optim.optimizer("adam", 1e-2)


@pytest.fixture(scope="module")
def circle_split():
    full = data.circle(jax.random.key(0), 1000)
    return data.train_test_split(jax.random.key(1), full, test_fraction=0.2)


@pytest.fixture(scope="module")
def seed_run(circle_split):
    """The chapter's program: circle, 5x8 ReLU, Adam 1e-3, 2000 full-batch epochs."""
    train_set, test_set = circle_split
    return train.fit(jax.random.key(2), models.MLP(), ADAM, train_set, epochs=2000, test=test_set)


# ---------------------------------------------------------------------------
# Convergence.


def test_seed_configuration_reaches_097_on_held_out_circle_data(seed_run, circle_split):
    state, history = seed_run
    assert float(history.test_accuracy[-1]) >= 0.97
    evaluation = train.evaluate(models.MLP(), state.params, circle_split[1])
    assert float(evaluation.accuracy) == pytest.approx(float(history.test_accuracy[-1]))
    assert history.train_loss.shape == (2000,)
    assert set(history.grad_norms) == {f"hidden_{i}" for i in range(5)} | {"output"}
    assert int(state.step) == 2000
    assert int(state.epoch) == 2000


def test_no_hidden_layer_stays_linear_on_circle(circle_split):
    train_set, test_set = circle_split
    _, history = train.fit(
        jax.random.key(2), models.MLP(hidden=()), FAST, train_set, epochs=300, test=test_set
    )
    assert float(history.test_accuracy[-1]) <= 0.75


def test_xor_with_a_hidden_layer():
    full = data.xor(jax.random.key(3), 600)
    train_set, test_set = data.train_test_split(jax.random.key(4), full, test_fraction=0.25)
    model = models.MLP(hidden=(16,), activation="tanh")
    _, history = train.fit(
        jax.random.key(5),
        model,
        optim.optimizer("adam", 0.05),
        train_set,
        epochs=600,
        test=test_set,
    )
    assert float(history.test_accuracy[-1]) >= 0.95


def test_loss_falls_tenfold_on_separable_data():
    separable = data.linear(jax.random.key(6), 200, margin=0.1)
    _, history = train.fit(jax.random.key(7), models.MLP(hidden=(8,)), FAST, separable, epochs=300)
    assert float(history.train_loss[-1]) * 10 <= float(history.train_loss[0])


def test_multiclass_and_minibatches():
    key_x, key_y = jax.random.split(jax.random.key(8))
    labels = jax.random.randint(key_y, (300,), 0, 3)
    centres = jnp.array([[0.0, 1.0], [-1.0, -0.5], [1.0, -0.5]])
    x = centres[labels] + 0.2 * jax.random.normal(key_x, (300, 2))
    blobs = data.from_arrays(x, labels)
    model = models.MLP(hidden=(16,), n_outputs=3)
    state, history = train.fit(jax.random.key(9), model, FAST, blobs, epochs=40, batch_size=32)
    assert float(history.train_accuracy[-1]) >= 0.95
    assert train.predict(model, state.params, blobs.x).shape == (300,)
    assert set(np.unique(train.predict(model, state.params, blobs.x)).tolist()) == {0, 1, 2}
    probabilities = train.probabilities(model, state.params, blobs.x)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert int(state.step) == 40 * 10  # ceil(300 / 32) = 10 steps per epoch


def test_regression_with_mse():
    surface = data.plane(jax.random.key(10), 400)
    model = models.MLP(hidden=(16,), n_outputs=1, activation="tanh")
    state, history = train.fit(jax.random.key(11), model, FAST, surface, epochs=300, loss="mse")
    assert float(history.train_loss[-1]) < 1e-3
    assert np.all(np.isnan(history.train_accuracy))
    assert train.predict(model, state.params, surface.x, loss="mse").dtype == jnp.float32


def test_l2_shrinks_the_weights(circle_split):
    train_set, _ = circle_split
    model = models.MLP(hidden=(8,))
    plain, _ = train.fit(jax.random.key(2), model, FAST, train_set, epochs=100)
    shrunk, _ = train.fit(jax.random.key(2), model, FAST, train_set, epochs=100, l2=0.1)
    assert float(losses.l2_penalty(shrunk.params)) < float(losses.l2_penalty(plain.params))


# ---------------------------------------------------------------------------
# Invariants.


@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 60),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 1000),
)
def test_minibatches_visit_each_example_once_per_epoch(n, batch_size, seed, epoch):
    batch_size = min(batch_size, n)
    index, mask = train.minibatches(jax.random.key(seed), jnp.int32(epoch), n, batch_size)
    assert index.shape == mask.shape == (-(-n // batch_size), batch_size)
    visited = np.asarray(index)[np.asarray(mask) > 0]
    np.testing.assert_array_equal(np.sort(visited), np.arange(n))


class _Counter(nn.Module):
    """One parameter per example: the gradient of its loss shows which examples were used."""

    n: int

    @nn.compact
    def __call__(self, x, *, train=False):
        counts = self.param("counts", nn.initializers.zeros, (self.n,))
        return counts[x[:, 0].astype(jnp.int32)][:, None]


def _visits(outputs, labels, weights):
    weights = jnp.ones(outputs.shape[:1]) if weights is None else weights
    return -jnp.sum(outputs[:, 0] * weights)


@pytest.mark.parametrize("batch_size", [1, 7, 10, 50])
def test_fit_uses_each_example_once_per_epoch(batch_size):
    # With SGD at rate 1 and loss -sum(counts[batch]), each epoch adds exactly 1 to the
    # count of every example it uses: after 3 epochs every count must be 3.
    n = 50
    ids = jnp.stack([jnp.arange(n), jnp.zeros(n)], axis=1).astype(jnp.float32)
    dataset = data.Dataset(ids, jnp.zeros(n, jnp.int32))
    state, _ = train.fit(
        jax.random.key(0),
        _Counter(n),
        optim.optimizer("sgd", 1.0),
        dataset,
        epochs=3,
        batch_size=batch_size,
        loss=_visits,
    )
    np.testing.assert_array_equal(state.params["params"]["counts"], np.full(n, 3.0))


# The next three tests train one model in one configuration (20 epochs, in chunks
# of 7 where chunked), so that they share compiled programs.
DROPOUT = models.MLP(hidden=(8, 8), dropout=0.1)


def test_same_key_gives_a_bit_identical_history(circle_split):
    train_set, test_set = circle_split
    model = DROPOUT
    runs = [
        train.fit(
            jax.random.key(4), model, FAST, train_set, epochs=20, batch_size=100, test=test_set
        )
        for _ in range(2)
    ]
    assert_bit_identical(runs[0], runs[1])
    other, _ = train.fit(
        jax.random.key(5), model, FAST, train_set, epochs=20, batch_size=100, test=test_set
    )
    assert not np.array_equal(
        other.params["params"]["output"]["kernel"], runs[0][0].params["params"]["output"]["kernel"]
    )


def test_chunked_training_with_progress_equals_one_run(circle_split):
    train_set, test_set = circle_split
    model = DROPOUT
    whole = train.fit(
        jax.random.key(4), model, FAST, train_set, epochs=20, batch_size=100, test=test_set
    )
    reports = []
    chunked = train.fit(
        jax.random.key(4),
        model,
        FAST,
        train_set,
        epochs=20,
        batch_size=100,
        test=test_set,
        chunk_epochs=7,
        progress=lambda done, total, h: reports.append((done, total, len(h.train_loss))),
    )
    assert reports == [(7, 20, 7), (14, 20, 14), (20, 20, 20)]
    assert_bit_identical(whole, chunked)


def test_resume_equals_uninterrupted_training(circle_split):
    train_set, test_set = circle_split
    model = DROPOUT
    kwargs = {"batch_size": 100, "test": test_set}
    whole_state, whole_history = train.fit(
        jax.random.key(4), model, FAST, train_set, epochs=20, **kwargs
    )
    first_state, first_history = train.fit(
        jax.random.key(4), model, FAST, train_set, epochs=7, **kwargs
    )
    # The other 13 epochs in chunks of 7 and 6: the programs of the chunked test above.
    rest_state, rest_history = train.fit(
        None, model, FAST, train_set, epochs=13, chunk_epochs=7, state=first_state, **kwargs
    )
    assert_bit_identical(whole_state, rest_state)
    assert_bit_identical(whole_history, train.concatenate(first_history, rest_history))


def test_train_step_does_not_retrace(circle_split):
    train_set, _ = circle_split
    state = train.create_train_state(jax.random.key(0), models.MLP(), ADAM, train_set.x)
    traces = []

    def step(state, batch):
        traces.append(1)
        return train.train_step(state, batch)

    compiled = jax.jit(step)
    batch = train.Batch(train_set.x, train_set.y)
    state, first = compiled(state, batch)
    state, second = compiled(state, batch)
    assert len(traces) == 1
    assert float(second.loss) < float(first.loss) + 1e-3
    assert int(state.step) == 2


def test_train_step_matches_a_hand_written_adam_step(circle_split):
    train_set, _ = circle_split
    model = models.MLP(hidden=(4,))
    state = train.create_train_state(jax.random.key(0), model, ADAM, train_set.x)
    # Both sides compiled (as training runs them): eagerly, each operation compiles alone.
    step = jax.jit(train.train_step)
    new_state, metrics = step(state, train.Batch(train_set.x, train_set.y))

    def objective(params):
        return losses.cross_entropy(model.apply(params, train_set.x), train_set.y)

    grads = jax.jit(jax.grad(objective))(state.params)
    updates, _ = ADAM.update(grads, ADAM.init(state.params), state.params)
    expected = jax.tree.map(lambda p, u: p + u, state.params, updates)
    for got, want in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert float(metrics.loss) == pytest.approx(float(objective(state.params)), rel=1e-6)


# ---------------------------------------------------------------------------
# NaN and inf.


def test_nan_stops_training_and_names_the_epoch(circle_split):
    train_set, _ = circle_split
    exploding = optim.optimizer("sgd", 1e6)
    with pytest.raises(train.TrainingDiverged, match=r"at epoch (\d+)") as info:
        train.fit(jax.random.key(0), models.MLP(), exploding, train_set, epochs=50)
    error = info.value
    assert 1 <= error.epoch <= 50
    assert len(error.history.train_loss) == error.epoch - 1
    assert np.all(np.isfinite(error.history.train_loss))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(error.state.params))


def test_on_nan_stop_returns_the_last_good_state(circle_split):
    train_set, _ = circle_split
    exploding = optim.optimizer("sgd", 1e6)
    with pytest.warns(RuntimeWarning, match="training stopped at epoch"):
        state, history = train.fit(
            jax.random.key(0), models.MLP(), exploding, train_set, epochs=50, on_nan="stop"
        )
    assert int(state.epoch) == len(history.train_loss) < 50
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state.params))


@pytest.mark.parametrize("chunk_epochs", [None, 4])
def test_nan_names_the_global_epoch_even_in_a_later_chunk(chunk_epochs):
    # Each epoch adds 1 to every count (see _Counter); the loss turns NaN once the counts
    # reach 5, that is in epoch 6, which is in the second chunk of 4 epochs.
    n = 10
    ids = jnp.stack([jnp.arange(n), jnp.zeros(n)], axis=1).astype(jnp.float32)
    dataset = data.Dataset(ids, jnp.zeros(n, jnp.int32))

    def breaks_at_five(outputs, labels, weights):
        return _visits(outputs, labels, weights) + jnp.where(outputs.max() >= 5, jnp.nan, 0.0)

    with pytest.raises(train.TrainingDiverged, match="at epoch 6;") as info:
        train.fit(
            jax.random.key(0),
            _Counter(n),
            optim.optimizer("sgd", 1.0),
            dataset,
            epochs=10,
            batch_size=5,
            loss=breaks_at_five,
            chunk_epochs=chunk_epochs,
        )
    assert info.value.epoch == 6
    np.testing.assert_array_equal(info.value.state.params["params"]["counts"], np.full(n, 5.0))
    assert len(info.value.history.train_loss) == 5


# ---------------------------------------------------------------------------
# Bad input: clear errors before tracing.


@pytest.fixture
def no_tracing(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("validation must happen before any tracing")

    # The engine's documented seams: the compiled core and the state's initialisation.
    monkeypatch.setattr(engine, "run", forbidden)
    monkeypatch.setattr(engine, "init_state", forbidden)


GOOD = data.circle(jax.random.key(0), 20)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"data": data.Dataset(GOOD.x, GOOD.y[:5])},
            ValueError,
            "data.y must have one entry per row of data.x: 20 rows, 5 targets",
        ),
        ({"data": data.Dataset(GOOD.x[:, 0], GOOD.y)}, ValueError, "data.x must have rank 2"),
        (
            {"data": data.Dataset(GOOD.x, GOOD.y + 2)},
            ValueError,
            r"data.y has label 3 but the model has n_outputs=2; labels must be in \[0, 1\]",
        ),
        (
            {"data": data.Dataset(GOOD.x, GOOD.y - 1)},
            ValueError,
            "data.y must hold class labels >= 0, got -1",
        ),
        (
            {"data": data.Dataset(GOOD.x, GOOD.y.astype(jnp.float32))},
            TypeError,
            "data.y must hold integer class labels",
        ),
        ({"data": data.Dataset(GOOD.x[:0], GOOD.y[:0])}, ValueError, "data is empty"),
        (
            {"data": data.Dataset(GOOD.x.at[0, 0].set(jnp.nan), GOOD.y)},
            ValueError,
            "data.x must be finite",
        ),
        ({"data": (1, 2)}, TypeError, "data must be a Dataset"),
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1, got 0"),
        ({"batch_size": 21}, ValueError, r"batch_size must be in \[1, 20\]"),
        ({"epochs": 0}, ValueError, "epochs must be an int >= 1, got 0"),
        ({"epochs": 2.5}, TypeError, "epochs must be an int"),
        ({"loss": "l7"}, ValueError, "unknown loss 'l7'"),
        ({"l2": -1.0}, ValueError, "l2 must be in"),
        ({"on_nan": "ignore"}, ValueError, "unknown on_nan 'ignore'"),
        ({"model": "mlp"}, TypeError, "model must be a flax.linen Module"),
        ({"optimizer": "adam"}, TypeError, "optimizer must be an optax.GradientTransformation"),
        ({"loss": "mse"}, ValueError, "loss 'mse' needs a model with n_outputs=1"),
        ({"test": data.Dataset(GOOD.x, GOOD.y + 5)}, ValueError, "test.y has label 6"),
    ],
)
def test_fit_rejects_bad_input(no_tracing, kwargs, error, message):
    arguments = {"model": models.MLP(), "optimizer": ADAM, "data": GOOD, "epochs": 3, **kwargs}
    with pytest.raises(error, match=message):
        train.fit(
            jax.random.key(0),
            arguments.pop("model"),
            arguments.pop("optimizer"),
            arguments.pop("data"),
            **arguments,
        )


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        models.MLP(activation="relu6")
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        optim.optimizer("adamax", 1e-3)


# ---------------------------------------------------------------------------
# The task: one rule (losses.task), a user's own loss may declare regression.

LINEAR = models.MLP(hidden=(), n_outputs=1)
LINEAR_PARAMS = {
    "params": {"output": {"kernel": jnp.array([[1.0], [0.0]]), "bias": jnp.array([-0.5])}}
}
POINTS = jnp.array([[0.0, 1.0], [2.0, 0.0], [0.25, 3.0]])


def test_predict_gives_labels_for_classification_and_values_for_regression():
    values = np.array([-0.5, 1.5, -0.25], np.float32)
    for loss in ("binary_cross_entropy", "hinge", "cross_entropy"):
        labels = train.predict(LINEAR, LINEAR_PARAMS, POINTS, loss=loss)
        assert labels.dtype == jnp.int32
        np.testing.assert_array_equal(labels, [0, 1, 0])  # logit > 0
    for kwargs in ({"loss": "mse"}, {"task": "regression"}):
        predicted = train.predict(LINEAR, LINEAR_PARAMS, POINTS, **kwargs)
        # The model's own output dtype (float32, or float64 under JAX_ENABLE_X64).
        assert predicted.dtype == LINEAR.apply(LINEAR_PARAMS, POINTS).dtype
        assert jnp.issubdtype(predicted.dtype, jnp.floating)
        np.testing.assert_array_equal(predicted, values)
    # Several outputs: the argmax, or every value for regression.
    two = {"params": {"output": {"kernel": jnp.eye(2), "bias": jnp.zeros(2)}}}
    model = models.MLP(hidden=(), n_outputs=2)
    np.testing.assert_array_equal(train.predict(model, two, POINTS), [1, 0, 1])
    np.testing.assert_array_equal(train.predict(model, two, POINTS, task="regression"), POINTS)
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        train.predict(model, two, POINTS, task="ranking")


def test_predict_and_probabilities_are_one_program_per_width_from_numpy(caplog):
    # A NumPy input of a width used nowhere else: no per-operation programs, no copy
    # program for the transfer; a second call, of any number of rows, compiles nothing.
    model = models.MLP(hidden=(3,), n_outputs=2)
    params = model.init(jax.random.key(0), jnp.zeros((1, 2)))
    x = np.random.default_rng(0).normal(size=(37, 2))
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        train.predict(model, params, x)
        train.probabilities(model, params, x)
        first = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling")]
        caplog.clear()
        labels = train.predict(model, params, x)
        chances = train.probabilities(model, params, x)
        # Another number of rows runs the same blocks: nothing compiles either.
        train.predict(model, params, x[:5])
        train.probabilities(model, params, np.concatenate([x, x, x, x, x, x, x, x]))
        again = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling")]
    assert [m.split(" with ")[0] for m in first] == [
        "Compiling jit(_predictions)",
        "Compiling jit(_class_probabilities)",
    ]
    assert again == []
    np.testing.assert_array_equal(labels, np.argmax(chances, axis=-1))


# A model and data wide enough that XLA:CPU's matmul kernels change their blocking with
# the number of rows (a row's logits changed in the last bit with its batch before
# predictions ran in fixed-size blocks), and more rows than two blocks, the last partial.
_ROWS = 2 * train.PREDICT_BLOCK + 88
_ROWS_MODEL = models.MLP(hidden=(100, 50), n_outputs=3)
_ROWS_X = np.random.default_rng(7).normal(size=(_ROWS, 30)).astype(np.float32)
_ROWS_PARAMS = _ROWS_MODEL.init(jax.random.key(7), _ROWS_X[:1])


@pytest.fixture(scope="module")
def all_rows_predicted():
    return {
        "labels": np.asarray(train.predict(_ROWS_MODEL, _ROWS_PARAMS, _ROWS_X)),
        "values": np.asarray(train.predict(_ROWS_MODEL, _ROWS_PARAMS, _ROWS_X, loss="mse")),
        "probabilities": np.asarray(train.probabilities(_ROWS_MODEL, _ROWS_PARAMS, _ROWS_X)),
    }


@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, _ROWS))
def test_a_rows_prediction_does_not_depend_on_the_other_rows(all_rows_predicted, seed, count):
    # Any subset, in any order, of any size: each row gets the bits it gets among all rows.
    # (The permutation is drawn from a seed: hypothesis's permutations of 2000 rows are
    # too large an example for it.)
    rows = np.random.default_rng(seed).permutation(_ROWS)[:count]
    x = _ROWS_X[rows]
    got = {
        "labels": np.asarray(train.predict(_ROWS_MODEL, _ROWS_PARAMS, x)),
        "values": np.asarray(train.predict(_ROWS_MODEL, _ROWS_PARAMS, x, loss="mse")),
        "probabilities": np.asarray(train.probabilities(_ROWS_MODEL, _ROWS_PARAMS, x)),
    }
    for name, predicted in got.items():
        np.testing.assert_array_equal(predicted, all_rows_predicted[name][rows], err_msg=name)
    # One row alone, too.
    alone = np.asarray(train.probabilities(_ROWS_MODEL, _ROWS_PARAMS, x[:1]))
    np.testing.assert_array_equal(alone, all_rows_predicted["probabilities"][rows[:1]])


class _ListWidths(nn.Module):
    """A user's module with a list field: it cannot be hashed, so it keys no program."""

    widths: list

    @nn.compact
    def __call__(self, x):
        for width in self.widths:
            x = nn.Dense(width)(x)
        return x


def test_an_unhashable_model_still_predicts():
    model = _ListWidths([3, 2])
    params = model.init(jax.random.key(0), jnp.zeros((1, 2)))
    x = jax.random.normal(jax.random.key(1), (6, 2))
    logits = model.apply(params, x)
    np.testing.assert_array_equal(train.predict(model, params, x), jnp.argmax(logits, axis=-1))
    np.testing.assert_allclose(
        train.probabilities(model, params, x), jax.nn.softmax(logits), rtol=1e-6
    )


def _huber(outputs, targets, weights=None):
    error = outputs[:, 0] - targets
    return losses.mean_squared_error(outputs, targets, weights) + 0.0 * jnp.sum(error)


def test_a_users_own_loss_declares_regression_with_task():
    # The data, model and epochs of test_regression_with_mse: the reference run is its program.
    surface = data.plane(jax.random.key(10), 400)
    model = models.MLP(hidden=(16,), n_outputs=1, activation="tanh")
    with pytest.raises(TypeError, match="integer class labels"):
        train.fit(jax.random.key(0), model, FAST, surface, epochs=2, loss=_huber)
    state, history = train.fit(
        jax.random.key(0), model, FAST, surface, epochs=300, loss=_huber, task="regression"
    )
    assert state.task == "regression"
    assert np.all(np.isnan(history.train_accuracy))
    reference, _ = train.fit(jax.random.key(0), model, FAST, surface, epochs=300, loss="mse")
    assert_bit_identical(state.params, reference.params)
    evaluation = train.evaluate(model, state.params, surface, loss=_huber, task="regression")
    assert np.isnan(float(evaluation.accuracy))
    assert float(evaluation.loss) == pytest.approx(float(history.train_loss[-1]), rel=0.5)
    created = train.create_train_state(
        jax.random.key(0), model, FAST, surface.x, loss=_huber, task="regression"
    )
    assert created.task == "regression"
