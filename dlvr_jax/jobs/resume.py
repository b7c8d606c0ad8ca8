"""Resuming an MLP job: the configuration a checkpoint records, and the refusal of a mismatch.

The contract::

    record(config, problem) -> dict           # what checkpoint.save(config=...) stores
    first_difference(saved, given) -> (field, saved, given) | None
    ConfigMismatch(path, field, saved, given) # a ValueError with those attributes

Internal to :mod:`dlvr_jax.jobs` (``ConfigMismatch`` is public as
``jobs.ConfigMismatch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dlvr_jax.jobs.problem import Problem

__all__ = ["ConfigMismatch"]


class ConfigMismatch(ValueError):
    """A checkpoint was trained with another configuration than the one given.

    Attributes:
        path: the checkpoint.
        field: the dotted name of the first differing entry, e.g. ``"model.activation"``.
        saved: its value in the checkpoint.
        given: its value now.
    """

    def __init__(self, path: str, field: str, saved: Any, given: Any) -> None:
        super().__init__(
            f"checkpoint {path!r} was trained with {field}={saved!r}, not {given!r}; "
            "pass force=True to resume anyway"
        )
        self.path = path
        self.field = field
        self.saved = saved
        self.given = given


def record(config: Any, problem: Problem) -> dict[str, Any]:
    """The configuration a checkpoint records (what a resume must match)."""
    return {
        "dataset": problem.description,
        "model": {
            "hidden": list(config.hidden),
            "activation": config.activation,
            "n_outputs": problem.n_outputs,
            "n_features": int(problem.train.x.shape[1]),
        },
        "optimizer": {
            "name": config.optimizer,
            "learning_rate": config.learning_rate,
            "clip_norm": config.clip_norm,
        },
        "loss": problem.loss_name,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "l1": config.l1,
        "l2": config.l2,
    }


def first_difference(saved: Any, given: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted field where two recorded configurations differ (a CSV's path aside)."""
    if isinstance(saved, Mapping) and isinstance(given, Mapping):
        if ("sha256" in saved) != ("sha256" in given):  # a generator against a CSV
            return prefix.rstrip("."), dict(saved), dict(given)
        for name in given:
            if name == "path":
                continue  # the same bytes (sha256) moved elsewhere are the same data
            found = first_difference(saved.get(name), given[name], f"{prefix}{name}.")
            if found is not None:
                return found
        return None
    if isinstance(saved, (list, tuple)) and isinstance(given, (list, tuple)):
        same = len(saved) == len(given) and all(a == b for a, b in zip(saved, given, strict=False))
        return None if same else (prefix.rstrip("."), list(saved), list(given))
    return None if saved == given else (prefix.rstrip("."), saved, given)
