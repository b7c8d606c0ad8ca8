"""scikit-learn's own estimator checks on the estimators as users construct them.

The defaults: one hidden layer of 100, minibatches of 200, 200 epochs. One deeper
configuration's checks are in test_estimators.py (a module of its own each, so that
the suite's two workers share the checks). The marked checks and their reasons:
:func:`helpers.estimator_expected_failures`.
"""

from __future__ import annotations

import pytest
from helpers import estimator_expected_failures
from sklearn.utils.estimator_checks import parametrize_with_checks

from dlvr_jax import estimators

# About 80 s of CPU: in tox -e slow, with the deeper configuration's checks.
pytestmark = pytest.mark.slow

DEFAULTS = [
    estimators.PerceptronClassifier(),
    estimators.MLPClassifier(),
    estimators.MLPRegressor(),
]


@parametrize_with_checks(DEFAULTS, expected_failed_checks=estimator_expected_failures)
def test_scikit_learn_estimator_checks_on_the_default_constructions(estimator, check):
    check(estimator)
