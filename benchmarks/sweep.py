"""Workload B: 256 seed-MLP models (16 learning rates × 16 seeds), dlvr_jax sweep vs PyTorch.

- **dlvr_jax**: ``parallel.sweep(seeds, models.MLP(), data,
  learning_rates=..., epochs=2000)``, all 256 models in one call, called
  ``--repeats`` times. *first call* is the first call's wall time
  (compilation included); *compile* and *run* are the times the returned
  :class:`dlvr_jax.parallel.Sweep` reports (``compile_seconds`` of the first
  call; the median of ``run_seconds``, which never includes compilation,
  over all calls). models/s = 256 / run.
- **PyTorch eager, sequential**: the models one after another, each as in
  workload A (Adam, full batch, 2000 steps, dlvr_jax's initial weights for
  that seed). Training all 256 would take many minutes, so a subset of 8
  models spread over the grid is timed, one model per sample; models/s =
  1 / the median time per model. PyTorch gets whichever thread count, JAX's or 1, was
  faster on a short probe.

The same work: for the PyTorch subset, the final train accuracy of each model
is compared with that of the same (seed, learning rate) model in the sweep.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import jax
import numpy as np

from benchmarks import _harness as h
from benchmarks import mlp
from dlvr_jax import models, optim, train

KEY = "B"
TITLE = "256-model sweep (seed MLP, learning rate × seed)"
SEEDS = 16
RATES = 16
EPOCHS = 2000
TORCH_MODELS = 8
QUICK_SEEDS, QUICK_RATES, QUICK_EPOCHS, QUICK_TORCH_MODELS = 4, 2, 50, 2
TARGET_MODELS_PER_SECOND = 10.0
PROBE_STEPS = 50


def grid(quick: bool) -> tuple[list[int], list[float], int, int]:
    seeds = QUICK_SEEDS if quick else SEEDS
    rates = QUICK_RATES if quick else RATES
    epochs = QUICK_EPOCHS if quick else EPOCHS
    torch_models = QUICK_TORCH_MODELS if quick else TORCH_MODELS
    learning_rates = [float(v) for v in np.geomspace(1e-4, 1e-1, rates)]
    return list(range(seeds)), learning_rates, epochs, torch_models


def run(config: h.Config) -> h.Workload:
    seeds, rates, epochs, torch_models = grid(config.quick)
    count = len(seeds) * len(rates)
    case = f"{count} models, {epochs} epochs"
    _, full, model, _ = mlp.seed_problem()
    x, y = np.asarray(full.x), np.asarray(full.y)
    rows: list[h.Row] = []
    notes: list[str] = []
    # The PyTorch subset: spread over the grid (k = rate index * seeds + seed index).
    subset = [int(k) for k in np.linspace(0, count - 1, torch_models).round()]
    accuracy: dict[int, float] = {}

    jax_row = _sweep_row(config, case, seeds, rates, epochs, model, full, subset, accuracy)
    rows.append(jax_row)
    if jax_row.status == "not available":
        notes.append(
            "The dlvr_jax side needs dlvr_jax.parallel.sweep, which this checkout does not have."
        )

    torch, why = h.peer("torch")
    if torch is None:
        rows.append(h.skipped(KEY, case, "PyTorch eager, sequential", str(why)))
    else:
        rows.append(
            _torch_row(torch, config, case, seeds, rates, epochs, model, full, x, y, subset,
                       accuracy)
        )  # fmt: skip
    ok = [r for r in rows if r.status == "ok" and r.throughput]
    torch_rows = [r for r in ok if r.method.startswith("PyTorch")]
    if torch_rows:
        for row in ok:
            row.speedup = row.throughput / torch_rows[0].throughput  # type: ignore[operator]
            row.reference = torch_rows[0].method
    measured = jax_row.throughput if jax_row.status == "ok" else None
    targets = [
        h.Target(
            KEY,
            f"≥ {TARGET_MODELS_PER_SECOND:g} models/s for 256 models",
            "–" if measured is None else f"{measured:.1f} models/s",
            None if measured is None or config.quick else measured >= TARGET_MODELS_PER_SECOND,
        )
    ]
    notes.append(
        f"Learning rates {rates[0]:g} … {rates[-1]:g} (geometric), seeds 0 … {len(seeds) - 1}; "
        "models/s uses run time only (compilation apart). × ref compares models/s."
    )
    return h.Workload(KEY, TITLE, rows, targets, notes)


def _sweep_row(
    config: h.Config,
    case: str,
    seeds: list[int],
    rates: list[float],
    epochs: int,
    model: models.MLP,
    full: Any,
    subset: list[int],
    accuracy: dict[int, float],
) -> h.Row:
    method = "dlvr_jax parallel.sweep"
    try:
        from dlvr_jax import parallel
    except ImportError as error:
        return h.skipped(KEY, case, method, f"dlvr_jax.parallel: {error}", "not available")
    sweep = getattr(parallel, "sweep", None)
    if sweep is None:
        return h.skipped(
            KEY, case, method, "dlvr_jax.parallel.sweep does not exist", "not available"
        )

    def call() -> Any:
        return sweep(seeds, model, full, learning_rates=rates, epochs=epochs)

    try:
        # The sweep times its compilation and its run apart, so every call, the first
        # included, gives a run sample: `repeats` calls in all.
        first, result = h.first_call(call)
        walls = [first]
        runs = [float(getattr(result, "run_seconds", first))]
        for _ in range(config.repeats - 1):
            wall, again = h.first_call(call)
            walls.append(wall)
            runs.append(float(getattr(again, "run_seconds", wall)))
        for k in subset:
            state, _ = result.select(k)
            predicted = np.asarray(train.predict(model, state.params, full.x))
            accuracy[k] = float(np.mean(predicted == np.asarray(full.y)))
    except Exception as error:
        return h.Row(
            KEY, case, method, status="failed",
            reason=f"{type(error).__name__}: {error}".splitlines()[0],
            details={"traceback": traceback.format_exc(limit=3)},
        )  # fmt: skip
    run = h.median(runs)
    count = len(seeds) * len(rates)
    compile_seconds = getattr(result, "compile_seconds", None)
    return h.Row(
        KEY,
        case,
        method,
        first_call_seconds=first,
        compile_seconds=None if compile_seconds is None else float(compile_seconds),
        compile_source="Sweep.compile_seconds of the first call",
        run_seconds=run,
        samples=runs,
        throughput=count / run,
        unit="models/s",
        details={
            "median wall per call (s)": h.median(walls),
            "mean train accuracy (subset)": float(np.mean(list(accuracy.values()))),
        },
    )


def _torch_row(
    torch: Any,
    config: h.Config,
    case: str,
    seeds: list[int],
    rates: list[float],
    epochs: int,
    model: models.MLP,
    full: Any,
    x: np.ndarray,
    y: np.ndarray,
    subset: list[int],
    accuracy: dict[int, float],
) -> h.Row:
    x_t, y_t = torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))
    templates = {}
    for k in subset:
        seed, rate = seeds[k % len(seeds)], rates[k // len(seeds)]
        state = train.create_train_state(
            jax.random.key(seed), model, optim.optimizer("adam", rate), full.x
        )
        templates[k] = (mlp.torch_model(torch, mlp.numpy_layers(state.params)), rate)

    def train_one(k: int, steps: int) -> Any:
        template, rate = templates[k]
        return mlp.train_torch(torch, template, x_t, y_t, steps, rate)

    probe = {}
    for count in mlp.torch_threads(config):
        torch.set_num_threads(count)
        train_one(subset[0], 5)  # warm up this thread count
        start = time.perf_counter()
        train_one(subset[0], PROBE_STEPS)
        probe[count] = time.perf_counter() - start
    threads = min(probe, key=lambda c: probe[c])
    torch.set_num_threads(threads)
    times, differences = [], []
    for k in subset:
        start = time.perf_counter()
        trained = train_one(k, epochs)
        times.append(time.perf_counter() - start)
        with torch.no_grad():
            mine = float((trained(x_t).argmax(1) == y_t).float().mean())
        if k in accuracy:
            differences.append(abs(mine - accuracy[k]))
    per_model = h.median(times)
    details: dict[str, Any] = {
        "models timed": len(subset),
        "threads": threads,
        **{f"probe {c} thread(s) (s)": t for c, t in probe.items()},
    }
    if differences:
        details["max |Δ accuracy| vs sweep"] = max(differences)
    return h.Row(
        KEY,
        case,
        f"PyTorch eager, sequential ({threads} thread{'s' if threads > 1 else ''})",
        first_call_seconds=times[0],
        run_seconds=per_model,
        samples=times,
        throughput=1.0 / per_model,
        unit="models/s",
        details=details,
    )
