"""A Playground configuration's problem: its data, features, split, task, classes, model and loss.

The contract::

    prepared = prepare(config, upload)   # a checked configuration (and the uploaded Dataset)
    prepared.train, prepared.test        # what the model sees (features applied)
    prepared.model, prepared.loss        # an MLP and its loss (a name, or signed_mse)

The steps are those the exported script runs, call for call
(:mod:`.export`), so that its data and initial state have the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dlvr_jax import data, engine, losses, models
from dlvr_jax.playground import protocol

__all__ = ["Prepared", "prepare", "signed_mse"]


def signed_mse(
    outputs: jax.Array, labels: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    """The Playground's classification loss: squared error of one output against labels ±1.

    Labels 0/1 become -1/+1 (as the TensorFlow Playground labels its points);
    the accuracy counts an output > 0 as class 1.
    """
    return losses.mean_squared_error(
        outputs, 2.0 * jnp.asarray(labels, outputs.dtype) - 1.0, weights
    )


class Prepared(NamedTuple):
    """A configuration's data, model and loss.

    Attributes:
        train_raw: the training points before the feature map (what the page plots).
        test_raw: the test points likewise.
        train: the training set the model sees (features, float32 / int32).
        test: the test set likewise.
        init_key: the key of ``train.create_train_state``.
        task: ``"classification"`` or ``"regression"``.
        classes: the number of classes, or None for regression.
        domain: ``[xmin, xmax, ymin, ymax]`` of the heatmaps.
        model: the :class:`~dlvr_jax.models.MLP`.
        loss: the loss, a name or :func:`signed_mse`.
        loss_name: the loss's name in the protocol (``cross_entropy`` or ``mse``).
        grid: whether the inputs are 2-D (so the snapshot has heatmaps).
    """

    train_raw: data.Dataset
    test_raw: data.Dataset
    train: data.Dataset
    test: data.Dataset
    init_key: jax.Array
    task: str
    classes: int | None
    domain: list[float]
    model: models.MLP
    loss: str | Callable[..., jax.Array]
    loss_name: str
    grid: bool


def _domain(x: np.ndarray) -> list[float]:
    """A square around the points, symmetric about 0, a little larger than they reach."""
    reach = float(np.max(np.abs(x))) if x.size else 1.0
    half = max(math.ceil(reach * 1.1 * 10) / 10, 0.1)
    return [-half, half, -half, half]


def prepare(config: dict[str, Any], upload: data.Dataset | None) -> Prepared:
    """The data, model and loss of a (checked, consistent) configuration.

    The steps are those the exported script runs, call for call, so that its
    data and initial state have the same bits: keys from
    ``jax.random.split(jax.random.key(seed), 3)``, the points from
    ``data.make`` (or the uploaded CSV), ``data.train_test_split``, then
    ``data.features`` for 2-D inputs.
    """
    keys = jax.random.split(jax.random.key(config["seed"]), 3)
    if config["dataset"] == "upload":
        if upload is None:
            raise protocol.ProtocolError(
                "dataset 'upload' needs an uploaded CSV first; send an upload message"
            )
        full = upload
    else:
        full = data.make(config["dataset"], keys[0], config["points"], noise=config["noise"] / 100)
    fraction = (100 - config["trainRatio"]) / 100
    train_raw, test_raw = data.train_test_split(keys[1], full, test_fraction=fraction)
    grid = int(full.x.shape[1]) == 2
    if grid:
        names = config["features"]
        train_set = data.Dataset(data.features(train_raw.x, names), train_raw.y)
        test_set = data.Dataset(data.features(test_raw.x, names), test_raw.y)
        domain = _domain(np.asarray(full.x))
    else:
        train_set, test_set = train_raw, test_raw
        domain = [-1.0, 1.0, -1.0, 1.0]
    task = config["problem"]
    loss: str | Callable[..., jax.Array]
    if task == "regression":
        classes, n_outputs, loss, loss_name = None, 1, "mse", "mse"
    else:
        labels = np.concatenate([np.asarray(train_raw.y), np.asarray(test_raw.y)])
        classes = max(2, int(labels.max()) + 1)
        if config["loss"] == "mse":
            n_outputs, loss, loss_name = 1, signed_mse, "mse"
        else:
            n_outputs, loss, loss_name = classes, "cross_entropy", "cross_entropy"
    model = models.MLP(
        hidden=tuple(config["hidden"]),
        n_outputs=n_outputs,
        activation=config["activation"],
        residual=config["residual"],
        dropout=config["dropout"],
    )
    kind = "regression" if task == "regression" else "classification"
    train_set = engine.check_dataset("train", train_set, losses.get_loss(loss), model, kind)
    test_set = engine.check_dataset("test", test_set, losses.get_loss(loss), model, kind)
    return Prepared(
        train_raw, test_raw, train_set, test_set, keys[2], kind, classes, domain, model, loss,
        loss_name, grid,
    )  # fmt: skip
