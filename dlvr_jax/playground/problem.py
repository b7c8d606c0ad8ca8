"""A Playground configuration's problem: :func:`dlvr_jax.jobs.prepare_problem`, and the page's view.

The contract::

    prepared = prepare(config, upload)   # a checked configuration (and the uploaded data.Table)
    prepared.problem                     # the jobs.Problem: data, split, classes, model, loss
    prepared.train, prepared.test        # what the model sees (features applied)
    prepared.domain, prepared.grid       # the heatmaps' square, and whether there are heatmaps

The one problem preparation of the package (:func:`dlvr_jax.jobs.prepare_problem`)
does the work, as for the CLI's jobs; :func:`problem_config` writes the
protocol's configuration as its :class:`~dlvr_jax.jobs.ProblemConfig`, and the
exported script (:mod:`.export`) builds the same one, so that its data and
initial state have the same bits. What is the page's own: the square the
heatmaps cover, and the protocol's field names in errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from dlvr_jax import _validate as check
from dlvr_jax import data, jobs, models
from dlvr_jax.playground import protocol

__all__ = ["FIELDS", "Prepared", "prepare", "problem_config", "signed_mse"]

signed_mse = jobs.signed_mse
"""The Playground's classification loss with one output (:func:`dlvr_jax.jobs.signed_mse`)."""

FIELDS: dict[str, str] = {
    "dataset": "dataset",
    "upload": "dataset",
    "n": "points",
    "noise": "noise",
    "test_fraction": "trainRatio",
    "seed": "seed",
    "task": "problem",
    "features": "features",
    "hidden": "hidden",
    "activation": "activation",
    "dropout": "dropout",
    "residual": "residual",
    "loss": "loss",
}
"""Each :class:`~dlvr_jax.jobs.ProblemConfig` field's name in the protocol (for errors)."""


class Prepared(NamedTuple):
    """A configuration's problem and what the page draws of it.

    Attributes:
        problem: the :class:`~dlvr_jax.jobs.Problem` (data, split, classes, model, loss).
        domain: ``[xmin, xmax, ymin, ymax]`` of the heatmaps.
        grid: whether the inputs are 2-D (so the snapshot has heatmaps).
    """

    problem: jobs.Problem
    domain: list[float]
    grid: bool

    @property
    def train_raw(self) -> data.Dataset:
        """The training points before the feature map (what the page plots)."""
        return self.problem.train_raw

    @property
    def test_raw(self) -> data.Dataset:
        """The test points likewise."""
        return self.problem.test_raw

    @property
    def train(self) -> data.Dataset:
        """The training set the model sees (features applied)."""
        return self.problem.train

    @property
    def test(self) -> data.Dataset:
        """The test set likewise."""
        return self.problem.test

    @property
    def init_key(self) -> jax.Array:
        """The key of ``train.create_train_state``."""
        assert self.problem.key is not None
        return self.problem.key

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return self.problem.task

    @property
    def classes(self) -> int | None:
        """The number of classes, or None for a regression."""
        return self.problem.n_classes

    @property
    def model(self) -> models.MLP:
        """The :class:`~dlvr_jax.models.MLP`."""
        return self.problem.model

    @property
    def loss(self) -> str | Callable[..., jax.Array]:
        """The loss: a name, or :func:`signed_mse`."""
        return self.problem.loss

    @property
    def loss_name(self) -> str:
        """The loss's name in the protocol (``cross_entropy`` or ``mse``)."""
        return self.problem.loss_name


def _domain(x: np.ndarray) -> list[float]:
    """A square around the points, symmetric about 0, a little larger than they reach."""
    reach = float(np.max(np.abs(x))) if x.size else 1.0
    half = max(math.ceil(reach * 1.1 * 10) / 10, 0.1)
    return [-half, half, -half, half]


def problem_config(config: dict[str, Any], upload: data.Table | None) -> jobs.ProblemConfig:
    """The :class:`~dlvr_jax.jobs.ProblemConfig` of a (checked, consistent) configuration.

    Raises:
        ProtocolError: for a dataset ``upload`` without an upload, or a field
            the problem refuses (named by its protocol name).
    """
    uploaded = config["dataset"] == "upload"
    if uploaded and upload is None:
        raise protocol.ProtocolError(
            "dataset 'upload' needs an uploaded CSV first; send an upload message",
            field="dataset",
        )
    try:
        return jobs.ProblemConfig(
            dataset="circle" if uploaded else config["dataset"],
            upload=upload if uploaded else None,
            n=config["points"],
            noise=config["noise"] / 100,
            test_fraction=(100 - config["trainRatio"]) / 100,
            seed=config["seed"],
            task=config["problem"],
            features=tuple(config["features"]),
            hidden=tuple(config["hidden"]),
            activation=config["activation"],
            dropout=config["dropout"],
            residual=config["residual"],
            loss=config["loss"],
        )
    except (ValueError, TypeError) as error:
        raise _refused(error) from None


def _refused(error: Exception) -> protocol.ProtocolError:
    field = check.field_of(error)
    return protocol.ProtocolError(str(error), field=FIELDS.get(field or "", field))


def prepare(config: dict[str, Any], upload: data.Table | None) -> Prepared:
    """The problem of a (checked, consistent) configuration, by :func:`jobs.prepare_problem`.

    Raises:
        ProtocolError: for a configuration the problem refuses (a loss that
            does not fit the classes, an upload not sent).
    """
    try:
        problem = jobs.prepare_problem(problem_config(config, upload))
    except protocol.ProtocolError:
        raise
    except (ValueError, TypeError) as error:
        raise _refused(error) from None
    grid = int(problem.train_raw.x.shape[1]) == 2
    full = np.concatenate([np.asarray(problem.train_raw.x), np.asarray(problem.test_raw.x)])
    domain = _domain(full) if grid else [-1.0, 1.0, -1.0, 1.0]
    return Prepared(problem, domain, grid)
