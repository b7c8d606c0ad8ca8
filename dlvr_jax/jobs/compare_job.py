"""The ``compare-activations`` command (Exercise 1.1): one MLP per activation, same data and key.

The contract::

    compare_activations(CompareConfig(...), out=DIR, progress=NAME -> CALLBACK) -> CompareResult

Each activation's run is an :class:`~dlvr_jax.jobs.MlpSession` of
:meth:`CompareConfig.mlp`; the comparison draws their loss curves (and
decision boundaries for 2-D data) in ``activation_comparison.png``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import dlvr_jax
from dlvr_jax import _validate as check
from dlvr_jax.jobs import figures, results
from dlvr_jax.jobs.cache import cache_in_use
from dlvr_jax.jobs.mlp_job import MlpConfig, MlpResult, MlpSession, Progress
from dlvr_jax.jobs.problem import ACTIVATION, apply_constraints

__all__ = ["CompareConfig", "CompareResult", "compare_activations"]


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Exercise 1.1: one MLP per activation, same data and key (fields as ``MlpConfig``'s)."""

    activations: tuple[str, ...] = ("relu", "sigmoid", "tanh")
    dataset: str = "circle"
    n: int = 1000
    noise: float = 0.0
    data_path: str | None = None
    task: str | None = None
    test_fraction: float = 0.2
    hidden: tuple[int, ...] = (8, 8, 8, 8, 8)
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    clip_norm: float | None = None
    epochs: int = 2000
    batch_size: int | None = None
    l1: float = 0.0
    l2: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        apply_constraints(self, COMPARE_CONSTRAINTS, "CompareConfig")
        first = self.mlp(self.activations[0])  # checks the shared fields (MlpConfig's)
        for name in dataclasses.fields(MlpConfig):
            if name.name != "activation":  # the normalised values (e.g. hidden as a tuple)
                object.__setattr__(self, name.name, getattr(first, name.name))

    def mlp(self, activation: str) -> MlpConfig:
        """The :class:`~dlvr_jax.jobs.MlpConfig` of one activation's run."""
        shared = [f.name for f in dataclasses.fields(MlpConfig) if f.name != "activation"]
        return MlpConfig(**{name: getattr(self, name) for name in shared}, activation=activation)


COMPARE_CONSTRAINTS: dict[str, check.Rules] = {
    "activations": check.ListOf(ACTIVATION, min_len=1, distinct=True, noun="activations"),
}
"""The constraints of :class:`CompareConfig`'s own field; the others are
:class:`~dlvr_jax.jobs.MlpConfig`'s."""


class CompareResult(NamedTuple):
    """One :class:`~dlvr_jax.jobs.MlpResult` (without files) per activation, and the files."""

    config: CompareConfig
    runs: dict[str, MlpResult]
    metrics: dict[str, Any]
    files: tuple[str, ...]

    def summary(self) -> str:
        """The comparison in a few lines for a person: each activation's loss and accuracy."""
        m = self.metrics
        lines = [
            f"dataset: {m['dataset']} (n={m['n']}, seed={m['seed']}), {m['epochs']} epochs each"
        ]
        for name, run in m["results"].items():
            lines.append(
                f"{name:>12}: train loss {results.loss_text(run['train_loss'])}, "
                f"test accuracy {results.percent(run['test_accuracy'])}"
            )
        return "\n".join(lines + results.closing(m))

    def diverged(self) -> list[str]:
        """``"tanh at epoch 7 (loss became nan)"`` for each run that diverged."""
        return [
            f"{name} at epoch {run.diverged.epoch} ({run.diverged.cause})"
            for name, run in self.runs.items()
            if run.diverged is not None
        ]


def _comparison_figure(sessions: dict[str, MlpSession], out: str) -> tuple[list[str], list[str]]:
    """Draws ``activation_comparison.png``; returns the files written and notes."""
    from dlvr_jax import viz

    files: list[str] = []
    notes: list[str] = []
    histories = {
        name: s.history
        for name, s in sessions.items()
        if s.history is not None and int(np.shape(s.history.train_loss)[0]) > 0
    }
    boundaries = None
    first = next(iter(sessions.values())).problem
    if int(first.train.x.shape[1]) == 2:
        boundaries = {
            name: (
                figures.surface(s.model, s.state.params, first.task, first.n_outputs),
                first.test,
            )
            for name, s in sessions.items()
            if s.state is not None
        }
    else:
        notes.append("no decision boundaries: they draw 2 inputs")
    if histories:
        files.append(os.path.join(out, "activation_comparison.png"))
        viz.save(viz.plot_activation_comparison(histories, boundaries=boundaries), files[-1])
    return files, notes


def compare_activations(
    config: CompareConfig,
    *,
    out: str | None = ".",
    progress: Callable[[str], Progress | None] | None = None,
) -> CompareResult:
    """Trains ``config.hidden`` once per activation; writes ``activation_comparison.png``.

    ``progress(name)`` gives the progress callback of one activation's run.
    """
    if not isinstance(config, CompareConfig):
        raise TypeError(f"config must be a CompareConfig, got {type(config).__name__}")
    runs: dict[str, MlpResult] = {}
    sessions: dict[str, MlpSession] = {}
    for name in config.activations:
        session = MlpSession.start(config.mlp(name))
        callback = None if progress is None else progress(name)
        session.advance(
            config.epochs,
            progress=callback,
            chunk_epochs=None if callback is None else max(1, config.epochs // 50),
        )
        sessions[name] = session
        runs[name] = session.result()
    files: list[str] = []
    notes: list[str] = []
    if out is not None:
        os.makedirs(out, exist_ok=True)
        files, notes = _comparison_figure(sessions, out)
        files.append(os.path.join(out, "metrics.json"))
    keep = ("epochs", "steps", "train_loss", "test_loss", "train_accuracy", "test_accuracy")
    metrics: dict[str, Any] = {
        "command": "compare-activations",
        "version": dlvr_jax.__version__,
        "dataset": results.dataset_label(config),
        "n": runs[config.activations[0]].metrics["n"],
        "seed": config.seed,
        "hidden": list(config.hidden),
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "clip_norm": config.clip_norm,
        "epochs": config.epochs,
        "results": {
            name: {**{k: run.metrics[k] for k in keep}, "diverged": run.metrics["diverged"]}
            for name, run in runs.items()
        },
        "compilation_cache": cache_in_use(),
        "notes": notes,
        "files": files,
        **next(iter(sessions.values())).problem.class_entries(),
    }
    if out is not None:
        results.write_json(files[-1], metrics)
    return CompareResult(config, runs, metrics, tuple(files))
