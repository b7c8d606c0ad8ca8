"""The MLP jobs' figures: what a trained MLP's pictures shade, and the files ``jobs.mlp`` draws.

The contract::

    load_in_background()                                      # matplotlib, while compiling
    surface(model, params, task, n_outputs) -> grid -> values  # output, P(class 1) or class
    mlp_figures(problem, model, state, history, out, label) -> (files, notes)

matplotlib is loaded (through :mod:`dlvr_jax.viz`) only when a figure is
drawn. Internal to :mod:`dlvr_jax.jobs`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, cast

import jax
import numpy as np

from dlvr_jax import models, train
from dlvr_jax.jobs.problem import Problem

__all__ = []


def load_in_background() -> None:
    """Starts importing :mod:`dlvr_jax.viz` (matplotlib, about 1 s) in a daemon thread.

    A job that will draw calls it before it compiles: the import runs while XLA
    compiles (and trains) without the GIL, and :func:`mlp_figures`' own import
    then finds the module loaded, or waits for the import lock. Once per process.
    """
    if "dlvr_jax.viz" not in sys.modules and not _LOADING:
        _LOADING.append(threading.Thread(target=_load, name="dlvr-jax-viz-import", daemon=True))
        _LOADING[0].start()


_LOADING: list[threading.Thread] = []


def _load() -> None:
    with contextlib.suppress(Exception):  # mlp_figures imports it again and reports the error
        importlib.import_module("dlvr_jax.viz")


def surface(model: models.MLP, params: Any, task: str, n_outputs: int) -> Callable[..., Any]:
    """What the decision-boundary figure shades: the output, P(class 1), or the class."""
    if task == "regression":
        return lambda grid: cast(jax.Array, model.apply(params, grid))[:, 0]
    if n_outputs == 2:
        return lambda grid: train.probabilities(model, params, grid)[:, 1]
    return lambda grid: jax.numpy.argmax(train.probabilities(model, params, grid), axis=-1)


def mlp_figures(
    problem: Problem,
    model: models.MLP,
    state: train.TrainState,
    history: train.History,
    out: str,
    label: str,
) -> tuple[list[str], list[str]]:
    """Draws ``jobs.mlp``'s figures into ``out``; returns the files written and notes."""
    from dlvr_jax import viz  # matplotlib is loaded only when a figure is made

    files: list[str] = []
    notes: list[str] = []
    with np.errstate(all="ignore"):  # a run near divergence has huge logits
        _draw(problem, model, state.params, history, out, label, viz, files, notes)
    return files, notes


def _draw(
    problem: Problem,
    model: models.MLP,
    params: Any,
    history: train.History,
    out: str,
    label: str,
    viz: Any,
    files: list[str],
    notes: list[str],
) -> None:
    two_d = int(problem.train.x.shape[1]) == 2
    if two_d:
        figure = viz.plot_decision_boundary(
            surface(model, params, problem.task, problem.n_outputs),
            problem.test,
            title=f"MLP Classification and Predictions ({label})",
            # Named (or mapped) classes by their names; 0..k-1 as "class i".
            class_names=problem.classes if problem.label_note else None,
        )
        figure.set_size_inches(8, 8)
        files.append(os.path.join(out, "decision_boundary.png"))
        viz.save(figure, files[-1])
    else:
        notes.append(
            f"no decision_boundary.png or neuron_maps.png: they draw 2 inputs, the data has "
            f"{int(problem.train.x.shape[1])}"
        )
    if int(np.shape(history.train_loss)[0]) > 0:
        figure = viz.plot_loss_curve(history)
        figure.set_size_inches(8, 6)
        files.append(os.path.join(out, "loss_curve.png"))
        viz.save(figure, files[-1])
        figure = viz.plot_gradient_heatmap(history.final_grads)
        figure.set_size_inches(8, 6)
        files.append(os.path.join(out, "gradient_heatmap.png"))
        viz.save(figure, files[-1])
    else:
        notes.append("no loss_curve.png or gradient_heatmap.png: no epoch finished")
    if two_d:
        files.append(os.path.join(out, "neuron_maps.png"))
        viz.save(viz.plot_neuron_maps(model, params, problem.test), files[-1])
