"""Export: a short Python script that reproduces a Playground run with dlvr_jax's public API.

The script prepares the same problem with the package's public API
(:func:`dlvr_jax.jobs.prepare_problem` on the run's
:class:`~dlvr_jax.jobs.ProblemConfig`, written out literally; an upload's CSV
text travels in the script and is parsed by :func:`dlvr_jax.data.parse_csv`),
creates the state with ``train.create_train_state`` and replays the run's stretches of epochs
(:attr:`dlvr_jax.playground.session.Session.segments`) with ``train.fit(...,
state=state)``, setting each stretch's learning rate with
:func:`dlvr_jax.optim.with_learning_rate`. Same seed and epochs give the same
parameters, bit for bit; it saves them with :func:`dlvr_jax.checkpoint.save`.

The contract::

    frame(session) -> {"type": "export", "script": ..., "checkpoint": base64, ...}
    script(session) -> str             # the Python source
    metadata(session) -> dict          # what the checkpoint records of the run
"""

from __future__ import annotations

import base64
import dataclasses
import os
import tempfile
from typing import Any, Protocol

import dlvr_jax
from dlvr_jax import checkpoint, jobs, train
from dlvr_jax.playground.problem import Prepared

__all__ = ["Run", "frame", "metadata", "script"]


class Run(Protocol):
    """What an export reads of a run (a :class:`~dlvr_jax.playground.session.Session`)."""

    config: dict[str, Any]
    prepared: Prepared
    state: train.TrainState
    segments: list[list[Any]]
    upload_text: str | None
    upload_name: str | None

    @property
    def epoch(self) -> int:
        """Epochs trained since the last reset."""
        ...


def frame(session: Run) -> dict[str, Any]:
    """The ``export`` frame: the reproducing script and the checkpoint (base64)."""
    handle, path = tempfile.mkstemp(suffix=".ckpt", prefix="playground-")
    os.close(handle)
    try:
        checkpoint.save(path, session.state, metadata=metadata(session))
        with open(path, "rb") as stream:
            blob = stream.read()
    finally:
        os.unlink(path)
    return {
        "type": "export",
        "script": script(session),
        "scriptName": "playground_run.py",
        "checkpoint": base64.b64encode(blob).decode("ascii"),
        "checkpointName": "playground.ckpt",
        "epoch": session.epoch,
    }


def _problem_fields(config: jobs.ProblemConfig) -> list[tuple[str, str]]:
    """The fields of ``config`` as source text (an upload: parsed again from ``CSV``)."""
    fields = []
    uploaded = config.upload is not None
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "upload" and uploaded:
            fields.append((field.name, "data.parse_csv(CSV)"))
        elif value is not None and not (field.name in ("dataset", "n", "noise") and uploaded):
            fields.append((field.name, repr(value)))
    return fields


def metadata(session: Run) -> dict[str, Any]:
    """What the exported checkpoint records: the configuration, the epochs and the stretches."""
    return {
        "playground": {
            "config": dict(session.config),
            "epoch": session.epoch,
            "segments": [list(segment) for segment in session.segments],
            "upload": session.upload_name,
            "version": dlvr_jax.__version__,
        }
    }


def script(session: Run) -> str:
    """The Python source that reproduces ``session``'s run up to its current epoch."""
    config = session.config
    problem = session.prepared.problem
    lines = [
        '"""Reproduces a dlvr_jax Playground run and saves its parameters (checkpoint.save).',
        "",
        f"Exported at epoch {session.epoch} by dlvr_jax {dlvr_jax.__version__}. Run:",
        "    python playground_run.py [OUT.ckpt]",
        '"""',
        "",
        "import sys",
        "",
        "from dlvr_jax import checkpoint, data, jobs, optim, train"
        if problem.config.upload is not None
        else "from dlvr_jax import checkpoint, jobs, optim, train",
        "",
        f"CONFIG = {dict(sorted(config.items()))!r}  # the page's configuration",
        "# [epochs, learning rate, l1, l2] for each stretch of the run",
        f"SEGMENTS = {session.segments!r}",
    ]
    if problem.config.upload is not None:
        lines.append(f"CSV = {session.upload_text!r}")
    lines += [
        "",
        "# The problem as the page prepared it: data, split, features, classes, model, loss.",
        "problem = jobs.prepare_problem(",
        "    jobs.ProblemConfig(",
        *[f"        {name}={value}," for name, value in _problem_fields(problem.config)],
        "    )",
        ")",
        f"batch_size = min(CONFIG['batchSize'], {int(problem.train.x.shape[0])})",
        "tx = optim.injected(CONFIG['optimizer'])  # the learning rate lives in the state",
        "state = train.create_train_state(",
        "    problem.key, problem.model, tx, problem.train.x, loss=problem.loss, task=problem.task",
        ")",
        "for epochs, learning_rate, l1, l2 in SEGMENTS:",
        "    state = state.replace(",
        "        opt_state=optim.with_learning_rate(state.opt_state, learning_rate)",
        "    )",
        "    state, history = train.fit(",
        "        problem.key, problem.model, tx, problem.train, epochs=epochs,",
        "        batch_size=batch_size, loss=problem.loss, task=problem.task, l1=l1, l2=l2,",
        "        test=problem.test, state=state,",
        "    )",
        "    print(f'epoch {int(state.epoch)}: test loss {float(history.test_loss[-1]):.4f}')",
        "",
        "out = sys.argv[1] if len(sys.argv) > 1 else 'playground_run.ckpt'",
        "checkpoint.save(out, state)",
        "print(f'saved the parameters of epoch {int(state.epoch)} to {out}')",
        "",
    ]
    return "\n".join(lines)
