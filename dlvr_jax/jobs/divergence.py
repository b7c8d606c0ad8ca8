"""Divergence reporting: what a job says when training became non-finite.

The contract::

    Divergence(epoch, cause)                        # the result's ``diverged``
    divergence_cause(plan)    # "loss became inf", ... (plan: a one-epoch engine.FitPlan)

A job does not raise when training diverges: it keeps the last good state
and names the epoch and what became non-finite. Internal to
:mod:`dlvr_jax.jobs` (``Divergence`` is public as ``jobs.Divergence``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import numpy as np

from dlvr_jax import engine, train

__all__ = ["Divergence"]


class Divergence(NamedTuple):
    """Training stopped because values became non-finite.

    Attributes:
        epoch: the 1-based epoch at which it happened; the state and history
            kept are those of the epoch before.
        cause: what became non-finite, e.g. ``"loss became inf"`` or
            ``"parameters became nan"``.
    """

    epoch: int
    cause: str


def _non_finite(params: Any) -> str | None:
    """``"nan"`` or ``"inf"`` when some parameter is, else None."""
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(params)]
    if any(np.isnan(leaf).any() for leaf in leaves):
        return "nan"
    if any(np.isinf(leaf).any() for leaf in leaves):
        return "inf"
    return None


def _loss_cause(loss: float) -> str | None:
    if math.isfinite(loss):
        return None
    return f"loss became {'nan' if math.isnan(loss) else 'inf'}"


def divergence_cause(plan: engine.FitPlan) -> str:
    """Replays the diverging epoch of ``plan`` (a one-epoch fit from the last good state).

    First with the engine's own compiled epoch (:meth:`~dlvr_jax.engine.FitPlan.run_chunk`:
    a shorter run of the same loop gives the same bits, which is how the engine
    recovers the last good state), then step by step over the epoch's
    :func:`~dlvr_jax.train.minibatches` with :func:`~dlvr_jax.train.train_step`,
    which names the loss or the parameters when the epoch's record alone cannot.
    """
    state = plan.state
    after, records, _, _ = plan.run_chunk(state, 1)
    cause = _loss_cause(float(records.train_loss[0]))
    if cause is not None:
        return cause
    bad = _non_finite(after.params)
    if bad is not None:
        return f"parameters became {bad}"
    step = jax.jit(train.train_step)
    x, y = plan.data
    index, mask = train.minibatches(state.key, state.epoch, int(x.shape[0]), plan.batch_size)
    padded = int(index.size) > int(x.shape[0])
    for rows, weights in zip(np.asarray(index), np.asarray(mask), strict=True):
        state, metrics = step(state, train.Batch(x[rows], y[rows], weights if padded else None))
        cause = _loss_cause(float(metrics.loss))
        if cause is not None:
            return cause
        bad = _non_finite(state.params)
        if bad is not None:
            return f"parameters became {bad}"
    return "loss or parameters became nan/inf"
