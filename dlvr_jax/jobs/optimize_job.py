"""The ``optimize`` command (Exercise 1.3): descent paths on a toy function, or SGD least squares.

The contract::

    optimize(OptimizeConfig(function="rosenbrock", ...), out=DIR) -> OptimizeResult
    optimize(OptimizeConfig(function="least_squares", ...), out=DIR) -> OptimizeResult

A toy function gives one :class:`~dlvr_jax.descent.Path` per optimizer
(``paths[name]``) and the paths' figures; least squares gives one path per
(learning rate, batch size) (``paths[(rate, batch)]``) and a convergence figure.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, NamedTuple

import jax
import numpy as np

import dlvr_jax
from dlvr_jax import _validate as check
from dlvr_jax import descent, optim
from dlvr_jax.jobs import results
from dlvr_jax.jobs.problem import SEED

__all__ = ["OptimizeConfig", "OptimizeResult", "optimize"]

DESCENT_METHODS = ("gd", *optim.names())
"""The methods ``optimize`` compares: plain gradient descent and every optimizer."""


@dataclasses.dataclass(frozen=True)
class OptimizeConfig:
    """``dlvr-jax optimize``: descent paths on a toy function, or least squares by SGD."""

    function: str = "rosenbrock"
    optimizers: tuple[str, ...] = ("gd", "momentum", "rmsprop", "adam")
    learning_rates: tuple[float, ...] | None = None
    steps: int = 2000
    tol: float = 1e-6
    start: tuple[float, ...] | None = None
    batch_sizes: tuple[int, ...] = (1, 10, 100)
    epochs: int = 30
    n: int = 100
    noise: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        check.check_fields(self, OPTIMIZE_CONSTRAINTS)
        if self.function == "least_squares":
            if max(self.batch_sizes) > self.n:
                raise check.InvalidArgument(
                    f"--batch-sizes must be at most --n ({self.n}), got {max(self.batch_sizes)}",
                    field="batch_sizes",
                )
            return
        toy = descent.objective(self.function)
        start = toy.start if self.start is None else tuple(self.start)
        if len(start) != len(toy.start):
            raise check.InvalidArgument(
                f"--start must have {len(toy.start)} coordinate(s) for {self.function}, "
                f"got {','.join(f'{v:g}' for v in start)}",
                field="start",
            )
        rates = self.learning_rates or (1e-3,)
        if len(rates) not in (1, len(self.optimizers)):
            raise check.InvalidArgument(
                f"--learning-rate must give one value or one per optimizer "
                f"({len(self.optimizers)}), got {len(rates)}",
                field="learning_rates",
            )


OPTIMIZE_CONSTRAINTS: dict[str, check.Rules] = {
    "function": check.Options(*descent.OBJECTIVES, "least_squares"),
    "optimizers": check.ListOf(check.Options(*DESCENT_METHODS), min_len=1, noun="methods"),
    "learning_rates": (
        check.ListOf(check.Interval(float, 0, None, closed="neither"), min_len=1),
        None,
    ),
    "steps": check.Interval(int, 1, None, closed="left"),
    "tol": check.Interval(float, 0, None, closed="left"),
    "start": (check.ListOf(check.Interval(float, None, None, closed="neither"), min_len=1), None),
    "batch_sizes": check.ListOf(
        check.Interval(int, 1, None, closed="left"), min_len=1, noun="batch sizes"
    ),
    "epochs": check.Interval(int, 1, None, closed="left"),
    "n": check.Interval(int, 1, None, closed="left"),
    "noise": check.Interval(float, 0, None, closed="left"),
    "seed": SEED,
}
"""The constraints of :class:`OptimizeConfig`'s fields."""


class OptimizeResult(NamedTuple):
    """The descent paths (``{name: Path}`` or ``{(rate, batch): Path}``), metrics and files."""

    config: OptimizeConfig
    paths: dict[Any, Any]
    metrics: dict[str, Any]
    files: tuple[str, ...]

    def summary(self) -> str:
        """The paths in a few lines for a person: each run's steps, status and end point."""
        m = self.metrics
        lines = (
            [_least_squares_line(m)]
            if m["function"] == "least_squares"
            else [f"{m['function']} from {m['start']}, minima {m['minima']}"]
        )
        for key, run in _runs(m):
            end = ", ".join(f"{v:.4f}" if key is None else f"{v:.5g}" for v in run["final_x"])
            if key is None:
                status = (
                    "diverged"
                    if run["diverged"]
                    else (f"f - f* = {run['final_value'] - m['f_star']:.3g}")
                )
                lines.append(
                    f"  lr {run['learning_rate']:<8g} batch {run['batch_size']:<5d} "
                    f"{run['steps']:>6d} steps  {status}  w = [{end}]"
                )
            else:
                status = (
                    "converged"
                    if run["converged"]
                    else ("diverged" if run["diverged"] else "max steps")
                )
                lines.append(
                    f"  {key:>9} (lr {m['learning_rates'][key]:g}): {run['steps']:>6d} steps, "
                    f"{status}, f = {run['final_value']:.4g} at [{end}]"
                )
        return "\n".join([*lines, "wrote " + ", ".join(m["files"])])


def _least_squares_line(m: dict[str, Any]) -> str:
    fit = ", ".join(f"{v:.4f}" for v in m["least_squares_coefficients"])
    return (
        f"least squares: x^2 + 4x + 4 from {m['n']} samples (noise {m['noise']:g}); "
        f"exact fit [{fit}], f* = {m['f_star']:.6g}"
    )


def _runs(m: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """``(optimizer name, run)`` of a toy function, ``(None, run)`` of least squares."""
    if m["function"] == "least_squares":
        return [(None, run) for run in m["results"]]
    return list(m["results"].items())


def _path_summary(path: Any) -> dict[str, Any]:
    steps = int(path.steps)
    xs = np.asarray(path.xs)
    return {
        "steps": steps,
        "converged": bool(path.converged),
        "diverged": bool(path.diverged),
        "final_x": [float(v) for v in np.ravel(xs[steps])],
        "final_value": float(np.asarray(path.values)[steps]),
        "final_grad_norm": float(np.asarray(path.grad_norms)[steps]),
    }


def _toy_figures(
    config: OptimizeConfig, toy: Any, paths: Any, dimensions: int, out: str, viz: Any
) -> list[str]:
    """Draws the paths (and their surface in 2-D, and f - f* when f* is known)."""
    os.makedirs(out, exist_ok=True)
    title = f"{config.function}: optimization paths"
    files = [os.path.join(out, "optimization_paths.png")]
    viz.save(
        viz.plot_optimization_paths(
            toy.f, paths, extent=toy.extent, minima=toy.minima, title=title
        ),
        files[-1],
    )
    if dimensions == 2:
        files.append(os.path.join(out, "optimization_surface.png"))
        figure = viz.plot_optimization_paths(
            toy.f, paths, extent=toy.extent, minima=toy.minima, kind="surface", title=title
        )
        viz.save(figure, files[-1])
    if math.isfinite(toy.f_star):
        files.append(os.path.join(out, "convergence.png"))
        figure = viz.plot_convergence(
            paths, toy.f_star, title=f"{config.function}: f - f* against the step"
        )
        viz.save(figure, files[-1])
    return files


def optimize(config: OptimizeConfig, *, out: str | None = ".") -> OptimizeResult:
    """Runs Exercise 1.3; writes the paths' figures and ``metrics.json``."""
    if not isinstance(config, OptimizeConfig):
        raise TypeError(f"config must be an OptimizeConfig, got {type(config).__name__}")
    from dlvr_jax import viz

    if config.function == "least_squares":
        return _least_squares(config, out, viz)
    toy = descent.objective(config.function)
    start = toy.start if config.start is None else tuple(config.start)
    rates = list(config.learning_rates or (1e-3,))
    learning_rates = dict(zip(config.optimizers, rates * len(config.optimizers), strict=False))
    x0 = np.asarray(start[0] if len(start) == 1 else start, np.float32)
    started = time.perf_counter()
    paths = descent.compare(
        toy.f,
        x0,
        optimizers=tuple(config.optimizers),
        learning_rate=learning_rates,
        max_steps=config.steps,
        tol=config.tol,
    )
    seconds = time.perf_counter() - started
    files: list[str] = []
    if out is not None:
        files = _toy_figures(config, toy, paths, len(start), out, viz)
        files.append(os.path.join(out, "metrics.json"))
    metrics: dict[str, Any] = {
        "command": "optimize",
        "version": dlvr_jax.__version__,
        "function": config.function,
        "start": list(start),
        "minima": [list(m) for m in toy.minima],
        "f_star": toy.f_star if math.isfinite(toy.f_star) else None,
        "max_steps": config.steps,
        "tol": config.tol,
        "learning_rates": learning_rates,
        "results": {name: _path_summary(path) for name, path in paths.items()},
        "seconds": round(seconds, 3),
        "files": files,
    }
    if out is not None:
        results.write_json(files[-1], metrics)
    return OptimizeResult(config, dict(paths), metrics, tuple(files))


def _least_squares(config: OptimizeConfig, out: str | None, viz: Any) -> OptimizeResult:
    rates = list(config.learning_rates or (0.01, 0.05, 0.2))
    data_key, shuffle_key = jax.random.split(jax.random.key(config.seed))
    problem = descent.quadratic_samples(data_key, config.n, noise=config.noise)
    w_star, f_star = descent.least_squares_solution(problem)
    started = time.perf_counter()
    grid = descent.convergence_grid(
        shuffle_key,
        problem,
        np.zeros(3, np.float32),
        learning_rates=rates,
        batch_sizes=list(config.batch_sizes),
        epochs=config.epochs,
    )
    seconds = time.perf_counter() - started
    files: list[str] = []
    if out is not None:
        os.makedirs(out, exist_ok=True)
        files = [os.path.join(out, name) for name in ("convergence.png", "metrics.json")]
        title = (
            f"Mini-batch gradient descent on least squares (x^2 + 4x + 4, n={config.n}): "
            "f - f* against the step"
        )
        viz.save(viz.plot_convergence(grid, float(f_star), title=title), files[0])
    metrics: dict[str, Any] = {
        "command": "optimize",
        "version": dlvr_jax.__version__,
        "function": "least_squares",
        "n": config.n,
        "noise": config.noise,
        "seed": config.seed,
        "epochs": config.epochs,
        "true_coefficients": [1.0, 4.0, 4.0],
        "least_squares_coefficients": [float(v) for v in np.asarray(w_star)],
        "f_star": float(f_star),
        "results": [
            {"learning_rate": rate, "batch_size": batch, **_path_summary(path)}
            for (rate, batch), path in grid.items()
        ],
        "seconds": round(seconds, 3),
        "files": files,
    }
    if out is not None:
        results.write_json(files[1], metrics)
    return OptimizeResult(config, dict(grid), metrics, tuple(files))
