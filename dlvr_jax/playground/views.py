"""The views: what the page draws, rendered from a session's state.

The contract::

    records = Records()                       # per-epoch numbers since the last snapshot
    records.add(epoch_records)                # after each compiled chunk
    frame = snapshot(state, prepared, config, records, diverged=None)   # bytes (binary frame)
    data_frame(prepared)                      # the "data" frame: the points
    sweep_frame(result, learning_rates, seeds, epochs)                  # the "sweep" frame

:func:`render` is one compiled program per shape: the output, features and
every neuron on the heatmap grid, the test set's confusion matrix, and the
losses and accuracies of the current parameters. Its programs count toward
the package's one compile-cache bound (:mod:`dlvr_jax._compiled`). The frames' fields are
``PROTOCOL.md``'s.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from dlvr_jax import _compiled, data, engine, models, parallel, train
from dlvr_jax.playground import protocol
from dlvr_jax.playground.problem import Prepared

__all__ = [
    "Records",
    "data_frame",
    "diverged_frame",
    "finite",
    "output_mode",
    "render",
    "snapshot",
    "sweep_frame",
]


def finite(value: Any) -> float | None:
    """A number for JSON: None for NaN/inf or None.

    Examples:
        >>> finite(1.5), finite(float("nan")), finite(None)
        (1.5, None, None)
    """
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def output_mode(prepared: Prepared) -> str:
    """How the output heatmap reads the model: ``value``, ``signed``, ``binary`` or ``multi``."""
    if prepared.task == "regression":
        return "value"
    if prepared.loss_name == "mse":
        return "signed"
    return "binary" if prepared.classes == 2 else "multi"


@functools.partial(jax.jit, static_argnames=("names", "mode", "classes", "resolution"))
def render(
    state: train.TrainState,
    domain: jax.Array,
    train_set: data.Dataset,
    test_set: data.Dataset,
    *,
    names: tuple[str, ...] | None,
    mode: str,
    classes: int,
    resolution: int,
) -> dict[str, jax.Array]:
    """The snapshot's pictures and numbers in one program (compiled once per shape).

    Output, features and neurons on the grid, the confusion matrix of the test
    set, and the losses and accuracies of the current parameters.
    """
    model = cast(models.MLP, cast(engine.ModuleApply, state.apply_fn).module)
    params = state.params
    out: dict[str, jax.Array] = {}
    for prefix, dataset in (("train", train_set), ("test", test_set)):
        evaluation = engine.evaluate_state(state, dataset)
        out[f"{prefix}Loss"] = evaluation.loss
        out[f"{prefix}Accuracy"] = evaluation.accuracy
        if mode == "value":
            out.update(_fit(model, params, dataset, prefix))
    if names is not None:
        out.update(_grid(model, params, domain, names, mode, resolution))
    if mode != "value":
        logits: jax.Array = cast(jax.Array, model.apply(params, test_set.x))
        if logits.shape[-1] == 1:
            predicted = (logits[:, 0] > 0).astype(jnp.int32)
        else:
            predicted = jnp.argmax(logits, axis=-1)
        out["confusion"] = (
            jnp.zeros((classes, classes), jnp.float32).at[test_set.y, predicted].add(1.0)
        )
    return out


def _fit(model: models.MLP, params: Any, dataset: data.Dataset, prefix: str) -> dict[str, Any]:
    """A regression's RMSE and R² on ``dataset`` (traced inside :func:`render`).

    R² is ``1 - SSE / SST`` (SST about the set's own mean): 1 is a perfect
    fit, 0 predicts no better than the mean, below 0 worse.
    """
    predicted = cast(jax.Array, model.apply(params, dataset.x))[:, 0]
    target = jnp.reshape(dataset.y, (-1,)).astype(jnp.float32)
    squared = jnp.sum((predicted - target) ** 2)
    spread = jnp.sum((target - jnp.mean(target)) ** 2)
    return {
        f"{prefix}Rmse": jnp.sqrt(squared / target.shape[0]),
        f"{prefix}R2": 1.0 - squared / jnp.maximum(spread, 1e-30),
    }


def _grid(
    model: models.MLP, params: Any, domain: jax.Array, names: tuple[str, ...], mode: str, r: int
) -> dict[str, jax.Array]:
    """The heatmaps (traced inside :func:`render`): output, confidence, features, neurons."""
    out: dict[str, jax.Array] = {}
    x1 = jnp.linspace(domain[0], domain[1], r)
    x2 = jnp.linspace(domain[3], domain[2], r)  # row 0 is the top
    g1, g2 = jnp.meshgrid(x1, x2)
    points = jnp.stack([g1.ravel(), g2.ravel()], axis=1)
    inputs = data.features(points, names)
    outputs: jax.Array = cast(jax.Array, model.apply(params, inputs))
    if mode == "binary":
        value = 2.0 * jax.nn.softmax(outputs, axis=-1)[:, 1] - 1.0
    elif mode == "multi":
        value = jnp.argmax(outputs, axis=-1).astype(jnp.float32)
        out["confidence"] = jnp.max(jax.nn.softmax(outputs, axis=-1), axis=-1).reshape(r, r)
    elif mode == "signed":
        value = jnp.clip(outputs[:, 0], -1.0, 1.0)
    else:
        value = outputs[:, 0]
    out["output"] = value.reshape(r, r)
    out["features"] = inputs.T.reshape(-1, r, r)
    hidden = models.hidden_activations(model, params, inputs)
    if hidden:
        out["neurons"] = jnp.concatenate(hidden, axis=1).T.reshape(-1, r, r)
    return out


class Records:
    """The per-epoch numbers trained since the last snapshot, and the epochs per second.

    Attributes:
        epochs: epochs recorded since the last :meth:`take`.
    """

    def __init__(self) -> None:
        self._parts: list[engine.History] = []
        self.epochs = 0
        self._since = time.perf_counter()

    def add(self, records: engine.History) -> None:
        """One chunk's history (host-readable arrays, one entry per epoch)."""
        self._parts.append(records)
        self.epochs += int(np.asarray(records.train_loss).shape[0])

    def take(self) -> tuple[dict[str, np.ndarray] | None, float]:
        """The records since the last call (None if no epoch) and their epochs per second."""
        now = time.perf_counter()
        seconds = now - self._since
        rate = self.epochs / seconds if seconds > 0 else 0.0
        parts, self._parts, self.epochs, self._since = self._parts, [], 0, now
        if not parts:
            return None, rate

        def joined(field: str) -> np.ndarray:
            return np.concatenate([np.asarray(getattr(p, field), np.float32) for p in parts])

        names = models.layer_names(parts[0].grad_norms)
        norms = np.concatenate(
            [np.stack([np.asarray(p.grad_norms[n], np.float32) for n in names], 1) for p in parts]
        )
        fields = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
        return {**{field: joined(field) for field in fields}, "grad_norms": norms}, rate


def snapshot(
    state: train.TrainState,
    prepared: Prepared,
    config: dict[str, Any],
    records: Records,
    *,
    diverged: int | None,
    seconds_per_epoch: float | None = None,
) -> bytes:
    """The binary snapshot frame of ``state`` (``PROTOCOL.md``); takes ``records``' numbers.

    ``seconds_per_epoch``: the measured time of one epoch of this network
    (compiled chunks only), sent as ``secondsPerEpoch`` (None until measured).
    """
    p = prepared
    recorded, rate = records.take()
    static = {
        "names": tuple(config["features"]) if p.grid else None,
        "mode": output_mode(p),
        "classes": p.classes or 0,
        "resolution": config["resolution"],
    }
    # render's programs live in JAX's jit cache: counted toward the registry's one bound.
    shapes = engine.program_key(state, p.train, p.test, 0, 0)
    _compiled.note(("playground.views.render", shapes, *static.values()))
    views = render(state, jnp.asarray(p.domain, jnp.float32), p.train, p.test, **static)
    if recorded is not None:  # the last epoch's record (train loss: before each step)
        train_losses, test_losses = recorded["train_loss"], recorded["test_loss"]
        grad_norms = recorded["grad_norms"]
        last = [recorded[f][-1] for f in ("train_loss", "test_loss", "train_accuracy",
                                           "test_accuracy")]  # fmt: skip
    else:  # no epoch since the last snapshot (epoch 0, a new resolution): evaluate
        train_losses = test_losses = np.zeros((0,), np.float32)
        grad_norms = np.zeros((0, len(p.model.hidden) + 1), np.float32)
        last = [views[name] for name in ("trainLoss", "testLoss", "trainAccuracy", "testAccuracy")]
    classification = p.task == "classification"
    numbers = {
        "trainLoss": finite(last[0]),
        "testLoss": finite(last[1]),
        "trainAccuracy": finite(last[2]) if classification else None,
        "testAccuracy": finite(last[3]) if classification else None,
    }
    for name in ("trainRmse", "testRmse", "trainR2", "testR2"):  # a regression's, of now
        numbers[name] = None if classification else finite(views[name])
    arrays: dict[str, Any] = {}
    for name in ("output", "confidence", "features", "neurons"):
        if name in views:
            arrays[name] = views[name]
    for i, layer in enumerate(models.dense_layers(state.params)):
        arrays[f"kernel_{i}"] = layer.kernel
        arrays[f"bias_{i}"] = layer.bias
    arrays["trainLosses"] = train_losses
    arrays["testLosses"] = test_losses
    arrays["gradNorms"] = grad_norms
    if "confusion" in views:
        arrays["confusion"] = views["confusion"]
    arrays = {name: np.asarray(value, np.float32) for name, value in arrays.items()}
    header = {
        "type": "snapshot",
        "epoch": int(state.epoch),
        "step": int(state.step),
        **numbers,
        "epochsPerSecond": round(rate, 1),
        "secondsPerEpoch": None if seconds_per_epoch is None else finite(seconds_per_epoch),
        "task": p.task,
        "classes": p.classes,
        "grid": p.grid,
        "resolution": config["resolution"],
        "domain": p.domain,
        "layers": [int(p.train.x.shape[1]), *p.model.hidden, p.model.n_outputs],
        "diverged": diverged,
    }
    return protocol.encode_snapshot(header, arrays)


def diverged_frame(epoch: int, last_good: int, learning_rate: float) -> dict[str, Any]:
    """The ``diverged`` frame: the 1-based epoch that went to NaN/inf, and what to do."""
    message = (
        f"training diverged at epoch {epoch}: the loss or the weights became NaN/inf. "
        f"Training stopped at the last good state (epoch {last_good}). Lower the learning "
        f"rate (now {learning_rate:g}) or clip the gradients (clip_norm)."
    )
    return {"type": "diverged", "epoch": epoch, "lastGoodEpoch": last_good, "message": message}


def data_frame(prepared: Prepared) -> dict[str, Any]:
    """The ``data`` frame: the raw points of the train and test sets."""
    p = prepared

    def points(dataset: data.Dataset) -> dict[str, Any]:
        shown: dict[str, Any] = {"y": np.asarray(dataset.y).tolist()}
        if p.grid:
            shown["x"] = np.asarray(dataset.x, np.float64).round(5).tolist()
        return shown

    return {
        "type": "data",
        "task": p.task,
        "classes": p.classes,
        "inputs": int(p.train_raw.x.shape[1]),
        "domain": p.domain,
        "train": points(p.train_raw),
        "test": points(p.test_raw),
    }


def sweep_frame(
    result: parallel.Sweep, learning_rates: list[float], seeds: int, epochs: int
) -> dict[str, Any]:
    """The ``sweep`` frame: each model's final test loss, and its mean and spread per rate.

    The statistic is :func:`dlvr_jax.parallel.sweep_summary`'s (diverged
    models left out), over the rates in the order the page sent them.
    """
    assert result.history.test_loss is not None
    final = np.asarray(result.history.test_loss)[:, -1].reshape(len(learning_rates), seeds)
    diverged = (np.asarray(result.diverged_epoch) > 0).reshape(len(learning_rates), seeds)
    losses = [
        [None if diverged[i, j] else finite(final[i, j]) for j in range(seeds)]
        for i in range(len(learning_rates))
    ]
    rows = [
        {"rate": i, "batch": 0, "seed": j, "testLoss": losses[i][j]}
        for i in range(len(learning_rates))
        for j in range(seeds)
    ]  # rates by index: the page's order, repeated rates kept apart
    summary = parallel.sweep_summary(rows, "testLoss", x="rate", y="batch")
    return {
        "type": "sweep",
        "learningRates": list(learning_rates),
        "seeds": seeds,
        "epochs": epochs,
        "testLoss": losses,
        "mean": [finite(v) for v in summary.mean[0].tolist()],
        "std": [finite(v) for v in summary.std[0].tolist()],
        "diverged": diverged.tolist(),
    }
