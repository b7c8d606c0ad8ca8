"""The ``sweep`` command: learning rate x batch size x seed, one compiled vmap per batch size.

The contract::

    sweep(SweepConfig(...), out=DIR, progress=LINE -> None) -> SweepResult

Writes ``sweep_heatmap.png`` (final test accuracy and loss), ``sweep.csv``
(a row per model, :data:`SWEEP_COLUMNS`) and ``sweep.json``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import numpy as np

import dlvr_jax
from dlvr_jax import _io, data, optim
from dlvr_jax import _validate as check
from dlvr_jax.jobs import results
from dlvr_jax.jobs.cache import cache_in_use
from dlvr_jax.jobs.problem import (
    SEED,
    ProblemConfig,
    apply_constraints,
    check_task_with_data,
    job_problem,
    prepare_problem,
)

__all__ = ["SWEEP_COLUMNS", "SweepConfig", "SweepResult", "sweep"]

SWEEP_COLUMNS = (
    "model",
    "batch_size",
    "learning_rate",
    "l1",
    "l2",
    "seed",
    "epochs",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "diverged_epoch",
    "compile_seconds",
    "run_seconds",
)
"""The columns of ``sweep.csv``."""


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Learning rate x batch size x seed, one compiled vmap per batch size (Exercise 1.1)."""

    learning_rates: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    batch_sizes: tuple[int, ...] = (32, 128, 1000)
    seeds: int = 8
    epochs: int = 100
    dataset: str = "circle"
    n: int = 1000
    noise: float = 0.0
    data_path: str | None = None
    task: str | None = None
    test_fraction: float = 0.2
    hidden: tuple[int, ...] = (8, 8, 8, 8, 8)
    activation: str = "relu"
    optimizer: str = "adam"
    l2: float = 0.0
    data_seed: int = 0

    def __post_init__(self) -> None:
        apply_constraints(self, SWEEP_CONSTRAINTS, "SweepConfig")
        check_task_with_data(self)
        if self.task == "regression":
            raise check.InvalidArgument(
                "sweep trains classifiers; --task regression is not supported", field="task"
            )
        problem = job_problem(self, seed=self.data_seed)  # checks data and model
        if self.data_path is None and data.task(self.dataset) != "classification":
            raise check.InvalidArgument(
                f"sweep trains classifiers; --dataset {self.dataset} is a regression set",
                field="dataset",
            )
        object.__setattr__(self, "_problem", problem)

    def problem(self) -> ProblemConfig:
        """The :class:`~dlvr_jax.jobs.ProblemConfig` every model of the sweep trains on."""
        return cast(ProblemConfig, getattr(self, "_problem"))  # noqa: B009


SWEEP_CONSTRAINTS: dict[str, check.Rules] = {
    "learning_rates": check.ListOf(
        check.Interval(float, 0, None, closed="neither"), min_len=1, noun="learning rates"
    ),
    "batch_sizes": check.ListOf(
        check.Interval(int, 1, None, closed="left"), min_len=1, noun="batch sizes"
    ),
    "seeds": check.Interval(int, 1, None, closed="left"),
    "epochs": check.Interval(int, 1, None, closed="left"),
    "optimizer": check.Options(source=optim.names),
    "l2": check.Interval(float, 0, None, closed="left"),
    "data_seed": SEED,
}
"""The constraints of :class:`SweepConfig`'s own fields; the data and model are
:class:`~dlvr_jax.jobs.ProblemConfig`'s."""


class SweepResult(NamedTuple):
    """The sweep's table (a row per model), its summary (``metrics``) and files."""

    config: SweepConfig
    rows: list[dict[str, Any]]
    metrics: dict[str, Any]
    files: tuple[str, ...]

    def summary(self) -> str:
        """The sweep in a few lines for a person: models, time, divergences, the best."""
        m = self.metrics
        lines = [
            f"{m['models']} models ({len(m['learning_rates'])} learning rates x batch sizes "
            f"{m['batch_sizes']} x {m['seeds']} seeds), {m['epochs']} epochs each, in "
            f"{m['seconds']:.1f} s ({m['run_seconds']:.1f} s training, "
            f"{m['compile_seconds']:.1f} s compiling)",
            f"diverged: {m['diverged']}",
        ]
        best = m["best"]
        if best is not None:
            lines.append(
                f"best mean test accuracy: {100 * best['test_accuracy_mean']:.1f}% "
                f"(± {100 * best['test_accuracy_std']:.1f}) at learning rate "
                f"{best['learning_rate']:.3g}, batch size {best['batch_size']}"
            )
        return "\n".join([*lines, "wrote " + ", ".join(m["files"])])


def _summary(
    config: SweepConfig, rows: list[dict[str, Any]], n_train: int, batch_sizes: list[int]
) -> dict[str, Any]:
    """The sweep's metrics (without ``seconds``, ``compilation_cache`` and ``files``)."""
    from dlvr_jax import parallel

    xs, ys, mean, std, _ = parallel.sweep_summary(rows, "test_accuracy")
    best = np.unravel_index(np.nanargmax(mean), mean.shape) if np.isfinite(mean).any() else None
    compiled = {r["batch_size"]: r["compile_seconds"] for r in rows}
    ran = {r["batch_size"]: r["run_seconds"] for r in rows}
    return {
        "command": "sweep",
        "version": dlvr_jax.__version__,
        "dataset": results.dataset_label(config),
        "n_train": n_train,
        "epochs": config.epochs,
        "optimizer": config.optimizer,
        "learning_rates": list(config.learning_rates),
        "batch_sizes": batch_sizes,
        "seeds": config.seeds,
        "models": len(rows),
        "diverged": sum(1 for r in rows if r["diverged_epoch"]),
        "best": None
        if best is None
        else {
            "learning_rate": xs[best[1]],
            "batch_size": ys[best[0]],
            "test_accuracy_mean": float(mean[best]),
            "test_accuracy_std": float(std[best]),
        },
        "compile_seconds": sum(compiled.values()),
        "run_seconds": sum(ran.values()),
    }


def _write(
    config: SweepConfig, rows: list[dict[str, Any]], metrics: dict[str, Any], files: list[str]
) -> None:
    """Writes the heatmap, ``sweep.csv`` and ``sweep.json`` (``files``, in that order)."""
    from dlvr_jax import viz

    os.makedirs(os.path.dirname(files[0]) or ".", exist_ok=True)
    label = results.dataset_label(config)
    viz.save(
        viz.plot_sweep_heatmap(
            rows,
            title=f"{label}: final test accuracy and loss after {config.epochs} epochs "
            f"({config.optimizer}, {config.seeds} seeds)",
        ),
        files[0],
    )
    lines = [",".join(SWEEP_COLUMNS)]
    lines += [
        ",".join("" if row[c] is None else str(row[c]) for c in SWEEP_COLUMNS) for row in rows
    ]
    table = "\n".join(lines) + "\n"
    _io.write_atomic(files[1], lambda stream: stream.write(table.encode()))
    results.write_json(files[2], {**metrics, "rows": rows})


def sweep(
    config: SweepConfig, *, out: str | None = ".", progress: Callable[[str], None] | None = None
) -> SweepResult:
    """Trains every (learning rate, batch size, seed); writes the heatmap, CSV and JSON."""
    from dlvr_jax import parallel

    if not isinstance(config, SweepConfig):
        raise TypeError(f"config must be a SweepConfig, got {type(config).__name__}")
    problem = prepare_problem(config.problem(), training_key=False)
    if problem.task != "classification":
        raise ValueError(
            f"{config.data_path}: sweep trains classifiers; its targets are not labels"
        )
    n_train = int(problem.train.x.shape[0])
    batch_sizes = sorted({min(b, n_train) for b in config.batch_sizes})
    started = time.perf_counter()
    rows = parallel.sweep_table(
        list(range(config.seeds)),
        {"mlp": problem.model},
        problem.train,
        learning_rates=list(config.learning_rates),
        batch_sizes=[None if b == n_train else b for b in batch_sizes],
        epochs=config.epochs,
        optimizer=config.optimizer,
        l2=config.l2,
        test=problem.test,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    files: list[str] = []
    if out is not None:
        files = [
            os.path.join(out, name) for name in ("sweep_heatmap.png", "sweep.csv", "sweep.json")
        ]
    metrics = {
        **_summary(config, rows, n_train, batch_sizes),
        "seconds": seconds,
        "compilation_cache": cache_in_use(),
        "files": files,
        **problem.class_entries(),
    }
    if out is not None:
        _write(config, rows, metrics, files)
    return SweepResult(config, rows, metrics, tuple(files))
