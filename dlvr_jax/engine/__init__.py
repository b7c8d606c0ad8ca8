"""The package's internal training engine: the one compiled loop under ``train`` and ``parallel``.

The contract::

    state = init_state(key, model, tx, x1, loss_fn=f, task=t, l1=a, l2=b)  # one jitted program
    state, metrics = train_step(state, batch, axis_name=None)              # pure; jit it
    plan = prepare(key, model, tx, data, epochs=E, state=None, ...)        # FitPlan, checked
    state, records, grads, first_bad = run(state, data, test, E, batch_size)   # compiled
    state, history = loop(state, run_chunk, epochs=E, chunk=C, on_nan=..., progress=...)
    history = concatenate(h1, h2) | truncate(h, k) | history_from(records, grads)
    history = map_epochs(f, *histories)                                    # every field, once

Internal to the package: its names have no underscore so that :mod:`dlvr_jax.train`
(which re-exports :class:`TrainState`, :class:`History`, :func:`train_step` and
the other public pieces under the same names) and :mod:`dlvr_jax.parallel` may
use them; users should call ``train.fit``, ``parallel.fit_pmap``,
``parallel.fit_sharded`` and ``parallel.sweep``, the thin front doors over it.

- :func:`run_epochs` is the compiled core: ``epochs`` epochs in one
  ``lax.scan``, each epoch's minibatches in an inner ``lax.scan``, noting the
  first epoch whose loss or parameters became NaN/inf with ``jnp.where``.
  ``parallel`` maps it (``vmap``, ``pmap``) and shards it (a :class:`Sharding`).
- :func:`loop` is the host loop around a compiled chunk: chunks, progress,
  and recovery from NaN by running the chunk again for fewer epochs.
- :func:`init_shapes` and :func:`precompile`: the state's shapes, traced, and
  the compiled core built from them ahead of time, so that :func:`prepare`
  compiles the training program in a thread while the initialisation compiles.
- :func:`prepare` validates a fit's arguments on the host, before anything is
  traced, and returns a :class:`FitPlan` whose state is fresh or resumed.

Two modules, one concept: :mod:`dlvr_jax.engine.core` (the state, the step
and the compiled epoch loop) and :mod:`dlvr_jax.engine.fitting` (the options,
their checks and the host loop); every name is re-exported here, and callers
use ``engine.<name>``.

Seams for tests: :func:`run` (the compiled core) and :func:`init_state` are
looked up on this package at call time, so a test may patch them to prove that
bad arguments are rejected before anything is traced.

Examples:
    >>> import jax
    >>> from dlvr_jax import data, engine, models, optim
    >>> circle = data.circle(jax.random.key(0), 100)
    >>> plan = engine.prepare(jax.random.key(1), models.MLP(hidden=(4,)),
    ...                       optim.optimizer("adam", 1e-2), circle, epochs=5)
    >>> plan.epochs, plan.batch_size, plan.chunk, int(plan.state.epoch)
    (5, 100, 5, 0)
    >>> state, history = engine.loop(
    ...     plan.state, lambda s, k: engine.run(s, plan.data, None, k, plan.batch_size),
    ...     epochs=plan.epochs, chunk=plan.chunk, on_nan="raise", progress=None)
    >>> history.train_loss.shape, int(state.epoch)
    ((5,), 5)
"""

from __future__ import annotations

from dlvr_jax.engine.core import (
    Batch,
    Cancel,
    Cancelled,
    EpochRecord,
    Evaluation,
    History,
    ModuleApply,
    Progress,
    Sharding,
    StepMetrics,
    TrainingDiverged,
    TrainState,
    compiled_run,
    concatenate,
    evaluate_state,
    history_from,
    init_shapes,
    init_state,
    layer_norms,
    map_epochs,
    metric,
    pad_to_batches,
    precompile,
    program_key,
    run,
    run_epochs,
    train_step,
    truncate,
)
from dlvr_jax.engine.fitting import (
    LOOP_ON_NAN,
    ON_NAN,
    OPTIONS,
    Chunk,
    FitArgs,
    FitOptions,
    FitPlan,
    StateOptions,
    SweepOptions,
    check_dataset,
    check_fit,
    check_model,
    check_options,
    check_sample_weight,
    loop,
    prepare,
)

__all__ = [
    "LOOP_ON_NAN",
    "ON_NAN",
    "OPTIONS",
    "Batch",
    "Cancel",
    "Cancelled",
    "Chunk",
    "EpochRecord",
    "Evaluation",
    "FitArgs",
    "FitOptions",
    "FitPlan",
    "History",
    "ModuleApply",
    "Progress",
    "Sharding",
    "StateOptions",
    "StepMetrics",
    "SweepOptions",
    "TrainState",
    "TrainingDiverged",
    "check_dataset",
    "check_fit",
    "check_model",
    "check_options",
    "check_sample_weight",
    "compiled_run",
    "concatenate",
    "evaluate_state",
    "history_from",
    "init_shapes",
    "init_state",
    "layer_norms",
    "loop",
    "map_epochs",
    "metric",
    "pad_to_batches",
    "precompile",
    "prepare",
    "program_key",
    "run",
    "run_epochs",
    "train_step",
    "truncate",
]

# One name for each object: the engine's (``dlvr_jax.engine.TrainState``), as the
# docs, tracebacks and ``train``'s re-exports show it; where it is written is ours.
for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith(f"{__name__}."):
        _value.__module__ = __name__
del _name, _value
