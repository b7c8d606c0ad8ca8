"""Export: a short Python script that reproduces a Playground run with dlvr_jax's public API.

The script regenerates the data (or reads the uploaded CSV it carries), builds
the same :class:`~dlvr_jax.models.MLP`, creates the state with
``train.create_train_state`` and replays the run's stretches of epochs
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
import os
import tempfile
from typing import Any, Protocol

import dlvr_jax
from dlvr_jax import checkpoint, train
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
    p = session.prepared
    upload = config["dataset"] == "upload"
    lines = [
        '"""Reproduces a dlvr_jax Playground run and saves its parameters (checkpoint.save).',
        "",
        f"Exported at epoch {session.epoch} by dlvr_jax {dlvr_jax.__version__}. Run:",
        "    python playground_run.py [OUT.ckpt]",
        '"""',
        "",
        "import sys",
        "",
        "import jax",
        "",
        "from dlvr_jax import checkpoint, data, models, optim, train",
    ]
    if p.loss_name == "mse" and p.task == "classification":
        lines.append("from dlvr_jax.playground.session import signed_mse")
    lines += [
        "",
        f"CONFIG = {dict(sorted(config.items()))!r}",
        "# [epochs, learning rate, l1, l2] for each stretch of the run",
        f"SEGMENTS = {session.segments!r}",
    ]
    if upload:
        lines.append(f"CSV = {session.upload_text!r}")
    lines += [
        "",
        "keys = jax.random.split(jax.random.key(CONFIG['seed']), 3)",
    ]
    if upload:
        lines.append("full = data.parse_csv(CSV).dataset  # labels coded 0..k-1, as the page did")
    else:
        lines.append(
            "full = data.make(CONFIG['dataset'], keys[0], CONFIG['points'], "
            "noise=CONFIG['noise'] / 100)"
        )
    lines += [
        "fraction = (100 - CONFIG['trainRatio']) / 100",
        "train_raw, test_raw = data.train_test_split(keys[1], full, test_fraction=fraction)",
    ]
    if p.grid:
        lines += [
            "train_set = data.Dataset(data.features(train_raw.x, CONFIG['features']), train_raw.y)",
            "test_set = data.Dataset(data.features(test_raw.x, CONFIG['features']), test_raw.y)",
        ]
    else:
        lines.append("train_set, test_set = train_raw, test_raw")
    loss = "signed_mse" if p.loss_name == "mse" and p.task == "classification" else repr(p.loss)
    lines += [
        "model = models.MLP(",
        "    hidden=tuple(CONFIG['hidden']),",
        f"    n_outputs={p.model.n_outputs},",
        "    activation=CONFIG['activation'],",
        "    residual=CONFIG['residual'],",
        "    dropout=CONFIG['dropout'],",
        ")",
        f"loss, task = {loss}, {p.task!r}",
        f"batch_size = min(CONFIG['batchSize'], {int(p.train.x.shape[0])})",
        "tx = optim.injected(CONFIG['optimizer'])  # the learning rate lives in the state",
        "state = train.create_train_state(keys[2], model, tx, train_set.x, loss=loss, task=task)",
        "for epochs, learning_rate, l1, l2 in SEGMENTS:",
        "    state = state.replace(",
        "        opt_state=optim.with_learning_rate(state.opt_state, learning_rate)",
        "    )",
        "    state, history = train.fit(",
        "        keys[2], model, tx, train_set, epochs=epochs, batch_size=batch_size,",
        "        loss=loss, task=task, l1=l1, l2=l2, test=test_set, state=state,",
        "    )",
        "    print(f'epoch {int(state.epoch)}: test loss {float(history.test_loss[-1]):.4f}')",
        "",
        "out = sys.argv[1] if len(sys.argv) > 1 else 'playground_run.ckpt'",
        "checkpoint.save(out, state)",
        "print(f'saved the parameters of epoch {int(state.epoch)} to {out}')",
        "",
    ]
    return "\n".join(lines)
