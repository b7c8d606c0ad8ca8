"""Results: the one JSON writer of the jobs and the numbers a result reports.

The contract::

    write_json(path, document)        # indented JSON, written atomically
    last(values) -> float | None      # a per-epoch array's last entry (None: NaN/inf/empty)
    finite_or_none(value) -> float | None
    dataset_label(config) -> str      # the CSV's path, or the generator's name
    loss_text(value), percent(value)  # numbers as a result's summary shows them
    closing(metrics) -> [str]         # a summary's last lines: notes and the files written

Internal to :mod:`dlvr_jax.jobs` (its names have no underscore so that the
jobs' modules may share them); :func:`write_json` is public as
``jobs.write_json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from dlvr_jax import _io

__all__ = ["write_json"]


def write_json(path: str | os.PathLike[str], document: Mapping[str, Any]) -> None:
    """Writes ``document`` as indented JSON to ``path`` atomically (the one metrics writer)."""
    text = json.dumps(document, indent=2) + "\n"
    _io.write_atomic(path, lambda stream: stream.write(text.encode()))


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or None when it is NaN or infinite (JSON has neither)."""
    value = float(value)
    return value if math.isfinite(value) else None


def last(values: Any) -> float | None:
    """The last entry of a per-epoch array, read on the host (no device program)."""
    if values is None:
        return None
    host = np.asarray(values)
    return None if host.size == 0 else finite_or_none(host[-1])


def dataset_label(config: Any) -> str:
    """How a report names a config's data: the CSV's path, or the generator's name."""
    return config.data_path if config.data_path is not None else config.dataset


def loss_text(value: float | None) -> str:
    """A loss for a person: 4 decimals, or 4 significant digits when huge (near divergence)."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal, or ``n/a``."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def closing(metrics: Mapping[str, Any]) -> list[str]:
    """A summary's last lines: its notes, then the files written."""
    return [
        *(f"note: {note}" for note in metrics.get("notes", ())),
        "wrote " + ", ".join(metrics["files"]),
    ]
