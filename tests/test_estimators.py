"""Tests of dlvr_jax.estimators: scikit-learn's own estimator checks, and the library's laws."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import assert_bit_identical, estimator_expected_failures
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, make_blobs, make_moons
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from dlvr_jax import data, estimators, models, optim, train

EPOCHS_DEEP = 5

# scikit-learn's checks on one deeper configuration than the defaults (theirs are in
# test_estimator_checks.py, a module of its own so that the suite's two workers share
# the checks): two hidden layers and minibatches of 8 (several steps per epoch on the
# checks' small data sets, the last batch padded), with the epochs lowered only as far
# as the checks' own scores allow (check_classifiers_train: 2 epochs fail it, 5 pass
# every check). The classifier's only: its checks are the slowest (a minibatch loop
# compiles per data shape), and the regressor shares all of its code but the loss and
# the output layer.
CHECKED = [estimators.MLPClassifier(hidden=(16, 16), batch_size=8, epochs=EPOCHS_DEEP)]


@pytest.mark.slow
@parametrize_with_checks(CHECKED, expected_failed_checks=estimator_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def small_mlp(**options):
    """The tests' classifier; most tests share its settings, so its programs compile once."""
    settings = {
        "hidden": (8,),
        "learning_rate": 0.02,
        "epochs": 30,
        "batch_size": 48,
        "random_state": 0,
    }
    return estimators.MLPClassifier(**{**settings, **options})


@pytest.fixture(scope="module")
def moons():
    x, y = make_moons(120, noise=0.2, random_state=0)
    return x, y


@pytest.fixture(scope="module")
def breast_cancer():
    return load_breast_cancer(return_X_y=True)


@pytest.fixture(autouse=True, scope="module")
def _no_persistent_cache():
    """The suite's fits stay in memory: no user cache folder written (see the cache test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLVR_JAX_NO_CACHE", "1")
        yield


def test_importing_the_package_does_not_import_scikit_learn():
    code = "import dlvr_jax, sys; assert 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_estimators_does_not_import_jax():
    code = (
        "import sys, dlvr_jax.estimators as e; assert 'jax' not in sys.modules; "
        "e.MLPClassifier(); e.MLPRegressor(); e.PerceptronClassifier(); "
        "assert 'jax' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_child_environment())


def _child_environment(**variables):
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DLVR_JAX_NO_CACHE", "DLVR_JAX_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")
    }
    root = str(Path(__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join([root, environment.get("PYTHONPATH", "")])
    return {**environment, **variables}


_FIT_AND_SHOW_THE_CACHE = """
import jax, numpy as np
from dlvr_jax import estimators
x = np.random.default_rng(0).normal(size=(20, 3)); y = (x[:, 0] > 0).astype(int)
estimators.MLPClassifier(hidden=(2,), epochs=1, random_state=0).fit(x, y)
print(jax.config.jax_compilation_cache_dir)
"""


@pytest.mark.slow
def test_the_first_fit_turns_the_persistent_cache_on_unless_the_user_chose(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"

    def cache_after_a_fit(**variables):
        done = subprocess.run(
            [sys.executable, "-c", _FIT_AND_SHOW_THE_CACHE],
            env=_child_environment(DLVR_JAX_CACHE_DIR=str(ours), **variables),
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip().splitlines()[-1]

    assert cache_after_a_fit() == str(ours)
    assert any(ours.iterdir())  # the training loop, written for the next process
    # The user's own folder is kept (and ours not touched); the opt-out leaves it off.
    shutil.rmtree(ours)
    assert cache_after_a_fit(JAX_COMPILATION_CACHE_DIR=str(theirs)) == str(theirs)
    assert not ours.exists()
    assert cache_after_a_fit(DLVR_JAX_NO_CACHE="1") == "None"
    assert not ours.exists()


# ----------------------------------------------------------------------------
# The same training as the library, bit for bit.


def test_classifier_is_train_fit_bit_for_bit(moons):
    # Every hyperparameter wired through: minibatches of 48 (shuffled, the last one
    # padded), tanh, dropout, both penalties. The regressor's test is full batch.
    x, y = moons
    options = {"epochs": 30, "batch_size": 48, "l1": 1e-4, "l2": 1e-3}
    clf = small_mlp(activation="tanh", dropout=0.2, random_state=3, **options).fit(x, y)
    model = models.MLP(hidden=(8,), n_outputs=2, activation="tanh", dropout=0.2)
    state, history = train.fit(
        jax.random.key(3),
        model,
        optim.optimizer("adam", 0.02),
        data.Dataset(x.astype(np.float32), y.astype(np.int32)),
        **options,
    )
    assert_bit_identical(clf.params_, state.params)
    np.testing.assert_array_equal(clf.loss_curve_, np.asarray(history.train_loss))
    assert_bit_identical(clf.history_, history)
    np.testing.assert_array_equal(clf.predict(x), np.asarray(train.predict(model, state.params, x)))
    np.testing.assert_array_equal(
        clf.predict_proba(x), np.asarray(train.probabilities(model, state.params, x))
    )


def test_regressor_is_train_fit_bit_for_bit(moons):
    x, _ = moons
    target = np.sin(x[:, 0]) + x[:, 1]
    reg = estimators.MLPRegressor(
        hidden=(8,), optimizer="momentum", learning_rate=0.02, epochs=30, random_state=1
    )
    reg.fit(x, target)
    state, _ = train.fit(
        jax.random.key(1),
        models.MLP(hidden=(8,), n_outputs=1),
        optim.optimizer("momentum", 0.02),
        data.Dataset(x.astype(np.float32), target.astype(np.float32)),
        epochs=30,
        batch_size=120,
        loss="mse",
    )
    assert_bit_identical(reg.params_, state.params)
    assert reg.predict(x).shape == (120,)


def test_same_random_state_same_bits_another_differs(moons):
    x, y = moons
    # Two epochs: the program of test_partial_fit_continues_exactly, compiled once.
    first = small_mlp(epochs=2, random_state=5).fit(x, y)
    second = small_mlp(epochs=2, random_state=5).fit(x, y)
    assert_bit_identical(first.params_, second.params_)
    other = small_mlp(epochs=2, random_state=6).fit(x, y)
    assert not np.array_equal(first.predict_proba(x), other.predict_proba(x))


@settings(max_examples=3)
@given(first=st.integers(1, 2), more=st.integers(1, 2), seed=st.integers(0, 2**31 - 1))
def test_partial_fit_continues_exactly(moons, first, more, seed):
    # Minibatches of 48 (the last one padded): each epoch reshuffles from the key.
    x, y = moons
    resumed = small_mlp(epochs=first, random_state=seed).fit(x, y)
    for _ in range(more):
        resumed.partial_fit(x, y)
    whole = small_mlp(epochs=first + more, random_state=seed).fit(x, y)
    assert_bit_identical((resumed.params_, resumed.opt_state_), (whole.params_, whole.opt_state_))
    np.testing.assert_array_equal(resumed.loss_curve_, whole.loss_curve_)
    assert resumed.n_iter_ == whole.n_iter_ == first + more


def test_warm_start_continues_exactly_and_fit_restarts(moons):
    x, y = moons
    warm = small_mlp(epochs=2, warm_start=True).fit(x, y).fit(x, y)
    whole = small_mlp(epochs=4).fit(x, y)
    assert_bit_identical(warm.params_, whole.params_)
    assert len(warm.loss_curve_) == 4
    cold = small_mlp(epochs=2).fit(x, y).fit(x, y)
    assert cold.n_iter_ == 2
    assert_bit_identical(cold.params_, small_mlp(epochs=2).fit(x, y).params_)


def test_partial_fit_from_scratch_takes_the_classes(moons):
    x, y = moons
    labels = np.array(["a", "b", "c"])[y]
    clf = small_mlp().partial_fit(x, labels, classes=["a", "b", "c"])
    assert clf.classes_.tolist() == ["a", "b", "c"]
    assert clf.n_iter_ == 1
    assert clf.predict_proba(x).shape == (120, 3)
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(x, np.array(["a", "d"] * 60))
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(x, labels, classes=["a", "b"])


def test_sample_weight_equals_repetition_in_float32():
    rng = np.random.RandomState(42)
    x = rng.rand(15, 2)
    y = rng.randint(0, 3, size=15)
    weights = rng.randint(0, 5, size=15)
    for estimator, target in [
        (small_mlp(batch_size=None), y),
        (estimators.MLPRegressor(hidden=(8,), learning_rate=0.02, epochs=30, random_state=0),
         y + x[:, 0]),
    ]:  # fmt: skip
        weighted = clone(estimator).fit(x, target, sample_weight=weights)
        repeated = clone(estimator).fit(x.repeat(weights, axis=0), target.repeat(weights))
        method = "predict_proba" if hasattr(estimator, "predict_proba") else "predict"
        np.testing.assert_allclose(
            getattr(weighted, method)(x), getattr(repeated, method)(x), rtol=1e-5, atol=1e-6
        )
    # The weights matter: with equal weights the model differs.
    ones = clone(estimator).fit(x, target, sample_weight=np.ones(15))
    assert not np.allclose(weighted.predict(x), ones.predict(x))


def test_multi_target_regression(moons):
    x, _ = moons
    targets = np.stack([x[:, 0] + x[:, 1], x[:, 0] - 2 * x[:, 1]], axis=1)
    reg = estimators.MLPRegressor(hidden=(8,), learning_rate=0.02, epochs=150, random_state=0)
    reg.fit(x, targets)
    assert reg.predict(x).shape == (120, 2)
    assert reg.score(x, targets) > 0.9
    assert reg.loss_curve_[-1] < reg.loss_curve_[0] / 10


# ----------------------------------------------------------------------------
# scikit-learn's tools on the three datasets.


def test_grid_search_compiles_the_training_loop_once(caplog):
    # A number of rows used nowhere else in this file: 93.
    x, y = make_blobs(93, centers=2, random_state=0)
    search = GridSearchCV(
        small_mlp(epochs=20),
        {"learning_rate": [1e-3, 1e-2, 1e-1], "l2": [0.0, 1e-3]},
        cv=KFold(5),
    )
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        search.fit(x, y)
    runs = [r for r in caplog.records if "Compiling jit(run_epochs)" in r.getMessage()]
    # 30 fits on folds of 74 and 75 rows, then the refit on 93: each is two batches
    # of 48, padded to 96 rows, and one program serves them all.
    assert len(runs) == 1, [r.getMessage()[:120] for r in runs]
    assert search.best_score_ > 0.9


def test_pipeline_grid_search_and_cross_validation_on_breast_cancer(breast_cancer):
    x, y = breast_cancer
    pipeline = make_pipeline(StandardScaler(), small_mlp(epochs=40, batch_size=None))
    search = GridSearchCV(
        pipeline, {"mlpclassifier__learning_rate": [3e-3, 3e-2]}, cv=3, refit=False
    )
    search.fit(x, y)
    assert search.best_params_["mlpclassifier__learning_rate"] == 3e-2
    assert search.best_score_ > 0.95
    scores = cross_val_score(pipeline.set_params(mlpclassifier__learning_rate=3e-2), x, y, cv=3)
    assert scores.mean() == search.best_score_  # the same folds, the same bits


def test_moons_and_string_labelled_blobs(moons):
    x, y = moons
    pipeline = make_pipeline(
        StandardScaler(), small_mlp(learning_rate=0.05, epochs=150, batch_size=None)
    )
    assert cross_val_score(pipeline, x, y, cv=3).mean() > 0.85
    points, blob_labels = make_blobs(150, centers=4, cluster_std=0.6, random_state=1)
    names = np.array(["cat", "dog", "emu", "fox"])[blob_labels]
    clf = make_pipeline(
        StandardScaler(), small_mlp(learning_rate=0.05, epochs=100, batch_size=None)
    )
    result = cross_validate(clf, points, names, cv=3, return_estimator=True)
    assert result["test_score"].mean() > 0.9
    for fitted in result["estimator"]:
        assert fitted[-1].classes_.tolist() == ["cat", "dog", "emu", "fox"]
        assert set(fitted.predict(points)) <= set(names)
        np.testing.assert_allclose(fitted.predict_proba(points).sum(axis=1), 1.0, rtol=1e-6)


def test_perceptron_and_pocket():
    x, y = make_blobs(60, centers=[[-2, -2], [2, 2]], cluster_std=0.5, random_state=0)
    labels = np.where(y == 1, "yes", "no")
    clf = estimators.PerceptronClassifier().fit(x, labels)
    assert clf.converged_
    assert clf.score(x, labels) == 1.0
    assert clf.coef_.shape == (1, 2)
    assert clf.intercept_.shape == (1,)
    noisy = labels.copy()
    noisy[:6] = np.where(noisy[:6] == "yes", "no", "yes")
    last = estimators.PerceptronClassifier(epochs=20).fit(x, noisy)
    pocket = estimators.PerceptronClassifier(epochs=20, pocket=True).fit(x, noisy)
    assert not pocket.converged_
    assert pocket.score(x, noisy) >= last.score(x, noisy)


# ----------------------------------------------------------------------------
# Pickling and cloning.


def test_pickle_and_clone_fitted_or_not(moons):
    x, y = moons
    unfitted = small_mlp(epochs=2)
    assert pickle.loads(pickle.dumps(unfitted)).get_params() == unfitted.get_params()
    fitted = small_mlp(epochs=2).fit(x, y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(x), fitted.predict_proba(x))
    # The restored state continues exactly, like the original.
    assert_bit_identical(restored.partial_fit(x, y).params_, fitted.partial_fit(x, y).params_)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(x)
    perceptron = pickle.loads(pickle.dumps(estimators.PerceptronClassifier().fit(x, y)))
    assert perceptron.score(x, y) > 0.7


# ----------------------------------------------------------------------------
# Bad input: scikit-learn's own exceptions and messages.


def test_bad_input_gets_scikit_learns_errors(moons):
    x, y = moons
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        small_mlp().fit(bad, y)
    clf = small_mlp(epochs=2).fit(x, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 2"):
        clf.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        small_mlp().fit(x, np.zeros(120, int))
    with pytest.raises(ValueError, match="Unknown label type"):
        small_mlp().fit(x, x[:, 0])
    with pytest.raises(NotFittedError):
        estimators.MLPRegressor().predict(x)
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        estimators.PerceptronClassifier().fit(x, np.arange(120) % 3)
    with pytest.raises(ValueError, match="at least one non-zero"):
        small_mlp().fit(x, y, sample_weight=np.zeros(120))
    # Finite in float64, but not as float32 weights or their float32 sum: one error
    # naming the caller's value (not its float32 infinity), and no overflow warning.
    for huge, shown in ((1e39, "1e\\+39"), (3e38, "3e\\+38")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=f"finite float32.*largest weight of {shown}"):
                small_mlp().fit(x, y, sample_weight=np.full(120, huge))


def test_bad_hyperparameters_are_named(moons):
    x, y = moons
    with pytest.raises(TypeError, match="random_state must be an int or None"):
        small_mlp(random_state=np.random.RandomState(0)).fit(x, y)
    with pytest.raises(ValueError, match="learning_rate"):
        small_mlp(learning_rate=0.0).fit(x, y)
    with pytest.raises(ValueError, match="optimizer"):
        small_mlp(optimizer="lbfgs").fit(x, y)
    with pytest.raises(ValueError, match="cannot continue training"):
        small_mlp(epochs=2).fit(x, y).set_params(hidden=(4,)).partial_fit(x, y)
