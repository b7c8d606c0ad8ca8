"""The ``perceptron`` command: Rosenblatt's PLA (and the pocket) on a generator's points or a CSV.

The contract::

    perceptron(PerceptronConfig(...), out=DIR) -> PerceptronResult

The pocket runs when asked, or when the PLA does not converge; for
``linear`` data without noise, the metrics carry Novikoff's mistake bound.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, NamedTuple

import jax
import numpy as np

import dlvr_jax
from dlvr_jax import _validate as check
from dlvr_jax import data
from dlvr_jax import perceptron as pla
from dlvr_jax.jobs import results
from dlvr_jax.jobs.problem import (
    DATA_CONSTRAINTS,
    SEED,
    apply_constraints,
    label_note,
    read_csv,
)

__all__ = ["PerceptronConfig", "PerceptronResult", "perceptron"]


@dataclasses.dataclass(frozen=True)
class PerceptronConfig:
    """What ``dlvr-jax perceptron`` runs: the PLA on a generator's points or a CSV."""

    dataset: str = "linear"
    n: int = 200
    seed: int = 0
    noise: float = 0.0
    margin: float = 0.0
    data_path: str | None = None
    learning_rate: float = 0.1
    max_epochs: int = 1000
    pocket: bool = False

    def __post_init__(self) -> None:
        apply_constraints(self, PERCEPTRON_CONSTRAINTS, "PerceptronConfig")
        if self.data_path is None and data.task(self.dataset) != "classification":
            raise check.InvalidArgument(
                f"the perceptron classifies; dataset {self.dataset!r} is a regression set",
                field="dataset",
            )
        if self.margin and (self.dataset != "linear" or self.data_path is not None):
            raise check.InvalidArgument("--margin applies only to --dataset linear", field="margin")


PERCEPTRON_CONSTRAINTS: dict[str, check.Rules] = {
    **{name: DATA_CONSTRAINTS[name] for name in ("dataset", "n", "noise", "data_path")},
    "seed": SEED,
    "margin": check.Interval(float, 0, 1),
    "learning_rate": check.Interval(float, 0, None, closed="neither"),
    "max_epochs": check.Interval(int, 1, None, closed="left"),
    "pocket": check.Boolean(),
}
"""The constraints of :class:`PerceptronConfig`'s fields (the data's are the jobs' shared ones)."""


class PerceptronResult(NamedTuple):
    """The perceptron's fit (and the pocket's, when run), its metrics and files."""

    config: PerceptronConfig
    fit: pla.FitResult
    pocket: Any
    metrics: dict[str, Any]
    files: tuple[str, ...]

    def summary(self) -> str:
        """The run in a few lines for a person: weights, convergence, accuracy, files."""
        m = self.metrics
        weights = ", ".join(f"{v:.6g}" for v in m["weights"])
        lines = [
            f"dataset: {m['dataset']} (n={m['n']}, seed={m['seed']}, noise={m['noise']})",
            f"learned weights: w = [{weights}], b = {m['bias']:.6g}",
            f"converged after {m['epochs']} epochs ({m['updates']} updates)"
            if m["converged"]
            else f"did NOT converge within {m['max_epochs']} epochs ({m['updates']} updates): "
            "the data are not linearly separable, or need more epochs",
            f"training accuracy: {100 * m['accuracy']:.1f}%",
        ]
        if m["novikoff_bound"] is not None:
            lines.append(
                f"Novikoff bound for w* = (1, 1), b* = 0: {m['novikoff_bound']:.6g} updates "
                f"(used {m['updates']})"
            )
        if m["pocket"] is not None:
            kept = m["pocket"]
            lines.append(
                f"pocket accuracy: {100 * kept['accuracy']:.1f}% with w = "
                f"[{', '.join(f'{v:.6g}' for v in kept['weights'])}], b = {kept['bias']:.6g}"
            )
        return "\n".join(lines + results.closing(m))


def _params_dict(params: pla.Params) -> dict[str, Any]:
    return {"weights": [float(v) for v in np.asarray(params.w)], "bias": float(params.b)}


def _points(config: PerceptronConfig) -> tuple[data.Dataset, str | None]:
    """The generator's points, or the CSV's (two classes, mapped to 0 and 1); the label note."""
    if config.data_path is None:
        options: dict[str, Any] = {"noise": config.noise}
        if config.margin:
            options["margin"] = config.margin
        return data.make(config.dataset, jax.random.key(config.seed), config.n, **options), None
    table = read_csv(config.data_path, "classification")
    classes = table.classes or ()
    if len(classes) != 2:
        raise check.InvalidArgument(
            f"{config.data_path}: the perceptron needs labels 0 and 1 (two classes), got "
            f"{len(classes)}: {list(classes[:10])}",
            field="data_path",
        )
    return table.dataset, label_note(classes, table.mapped)


def _fit_metrics(config: PerceptronConfig, x: Any, y: Any, result: pla.FitResult) -> dict[str, Any]:
    epochs = int(result.epochs)
    metrics: dict[str, Any] = {
        "command": "perceptron",
        "version": dlvr_jax.__version__,
        "dataset": results.dataset_label(config),
        "n": int(np.shape(x)[0]),
        "seed": config.seed,
        "noise": config.noise,
        "margin": config.margin,
        "learning_rate": config.learning_rate,
        "max_epochs": config.max_epochs,
        **_params_dict(result.params),
        "epochs": epochs,
        "updates": int(result.updates),
        "converged": bool(result.converged),
        "accuracy": float(pla.accuracy(result.params, x, y)),
        "mistakes_per_epoch": [int(m) for m in np.asarray(result.mistakes_per_epoch)[:epochs]],
        "novikoff_bound": None,
        "pocket": None,
    }
    if config.data_path is None and config.dataset == "linear" and config.noise == 0:
        bound = float(pla.mistake_bound(x, y, np.array([1.0, 1.0], np.float32)))
        metrics["novikoff_bound"] = bound if math.isfinite(bound) else None
    return metrics


def _figure(
    config: PerceptronConfig, points: data.Dataset, shown: pla.Params, label: str, out: str
) -> tuple[list[str], list[str]]:
    """Draws ``perceptron.png`` for 2-D data; returns the files written and notes."""
    if int(np.shape(points.x)[1]) != 2:
        return [], [f"no perceptron.png: it draws 2 inputs, the data has {np.shape(points.x)[1]}"]
    from dlvr_jax import viz

    figure = viz.plot_decision_boundary(
        lambda grid: pla.predict(shown, grid),
        points,
        line=shown,
        title=f"Perceptron Learning Algorithm ({results.dataset_label(config)}, {label})",
    )
    figure.set_size_inches(8, 8)
    path = os.path.join(out, "perceptron.png")
    viz.save(figure, path)
    return [path], []


def perceptron(config: PerceptronConfig, *, out: str | None = ".") -> PerceptronResult:
    """Runs the perceptron learning algorithm (and the pocket when it does not converge)."""
    if not isinstance(config, PerceptronConfig):
        raise TypeError(f"config must be a PerceptronConfig, got {type(config).__name__}")
    points, note = _points(config)
    x, y = points.x, data.signed(points.y)
    result = pla.fit(x, y, learning_rate=config.learning_rate, max_epochs=config.max_epochs)
    metrics = _fit_metrics(config, x, y, result)
    if note is not None:
        metrics["label_note"] = note
    shown, label, kept = result.params, "PLA", None
    if config.pocket or not bool(result.converged):
        kept = pla.pocket(
            x,
            y,
            learning_rate=config.learning_rate,
            max_epochs=config.max_epochs,
            every_update=True,
        )
        metrics["pocket"] = {"accuracy": float(kept.accuracy), **_params_dict(kept.params)}
        shown, label = kept.params, "pocket"
    files: list[str] = []
    notes: list[str] = []
    if out is not None:
        os.makedirs(out, exist_ok=True)
        files, notes = _figure(config, points, shown, label, out)
        files.append(os.path.join(out, "metrics.json"))
    metrics["notes"] = notes
    metrics["files"] = files
    if out is not None:
        results.write_json(files[-1], metrics)
    return PerceptronResult(config, result, kept, metrics, tuple(files))
