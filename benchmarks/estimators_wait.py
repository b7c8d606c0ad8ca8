"""Workload H: the estimators' waits, in fresh processes, beside their anchors in the same run.

Every case is a whole fresh Python process, as a user meets it; the rows give
its wall seconds (median of the repeats, the cases taking turns):

- **baseline**: a fresh Python that imports JAX and runs one jitted function
  (the issue's baseline for every wait);
- **import**: ``import dlvr_jax.estimators`` (target: at most 0.6× the
  baseline; JAX loads at the first fit);
- **cross-validation**: a 5-fold ``cross_val_score`` on breast cancer of
  ``make_pipeline(StandardScaler(), MLPClassifier(hidden=(16,), epochs=200,
  batch_size=200, random_state=0))``, compile included, with ``n_jobs=1`` and
  ``n_jobs=2``: dlvr_jax with its persistent compilation cache warm (a folder
  of this run, filled by one untimed run, as a user's second run finds it) and
  cold (``DLVR_JAX_NO_CACHE=1``: every program compiled), beside scikit-learn's
  ``MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, batch_size=200)``.

Targets: the import at most 0.6× the baseline; the ``n_jobs=1``
cross-validation no slower than scikit-learn's; ``n_jobs=2`` faster than
``n_jobs=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks import _harness as h

KEY = "H"
TITLE = "the estimators' waits: import, 5-fold cross_val_score (fresh processes)"
TARGET_IMPORT = 0.6
EPOCHS = 200
QUICK_EPOCHS = 5

_BASELINE = "import jax; jax.jit(lambda x: x + 1)(1.0).block_until_ready()"
_IMPORT = "import dlvr_jax.estimators"
_CROSS_VALIDATION = """
import sys, warnings
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
which, n_jobs, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x, y = load_breast_cancer(return_X_y=True)
if which == "dlvr_jax":
    from dlvr_jax.estimators import MLPClassifier
    classifier = MLPClassifier(hidden=(16,), epochs=epochs, batch_size=200, random_state=0)
else:
    from sklearn.neural_network import MLPClassifier
    warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the point
    classifier = MLPClassifier(
        hidden_layer_sizes=(16,), max_iter=epochs, batch_size=200, random_state=0
    )
scores = cross_val_score(make_pipeline(StandardScaler(), classifier), x, y, cv=5, n_jobs=n_jobs)
print(scores.mean())
"""


def _environment(cache: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if cache is None:
        env["DLVR_JAX_NO_CACHE"] = "1"
    else:
        env.pop("DLVR_JAX_NO_CACHE", None)
        env["DLVR_JAX_CACHE_DIR"] = cache
    return env


def _seconds(arguments: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one fresh ``python`` process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *arguments], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{arguments[:2]} exited {done.returncode}: {done.stderr[-500:]}")
    return seconds


def run(config: h.Config) -> h.Workload:
    epochs = QUICK_EPOCHS if config.quick else EPOCHS
    sklearn, why = h.peer("sklearn")
    if sklearn is None:
        row = h.skipped(KEY, "breast cancer", "dlvr_jax estimators", str(why))
        return h.Workload(KEY, TITLE, [row])
    with tempfile.TemporaryDirectory(prefix="dlvr-estimators-wait-") as folder:
        warm, cold = _environment(folder), _environment(None)
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "baseline: python -c 'import jax; one jitted function'": (["-c", _BASELINE], cold),
            "import dlvr_jax.estimators": (["-c", _IMPORT], cold),
        }
        for jobs in (1, 2):
            cv = ["-c", _CROSS_VALIDATION]
            cases[f"dlvr_jax, n_jobs={jobs}, warm cache"] = (
                [*cv, "dlvr_jax", str(jobs), str(epochs)],
                warm,
            )
            cases[f"dlvr_jax, n_jobs={jobs}, no cache"] = (
                [*cv, "dlvr_jax", str(jobs), str(epochs)],
                cold,
            )
            cases[f"scikit-learn MLPClassifier, n_jobs={jobs}"] = (
                [*cv, "sklearn", str(jobs), str(epochs)],
                cold,
            )
        _seconds(cases["dlvr_jax, n_jobs=1, warm cache"][0], warm)  # fills the cache (untimed)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(config.repeats):  # the cases take turns
            for name, (arguments, env) in cases.items():
                samples[name].append(_seconds(arguments, env))
    medians = {name: h.median(times) for name, times in samples.items()}
    baseline_name = next(iter(cases))
    baseline = medians[baseline_name]
    rows = []
    for name, times in samples.items():
        case = "process start" if name in list(cases)[:2] else f"5-fold CV, {epochs} epochs"
        rows.append(
            h.Row(
                KEY,
                case,
                name,
                first_call_seconds=times[0],
                run_seconds=medians[name],
                samples=times,
                details={"× baseline": round(medians[name] / baseline, 2)},
            )
        )
    full = not config.quick
    imported = medians["import dlvr_jax.estimators"] / baseline
    ours1, ours2 = (
        medians["dlvr_jax, n_jobs=1, warm cache"],
        medians["dlvr_jax, n_jobs=2, warm cache"],
    )
    theirs1 = medians["scikit-learn MLPClassifier, n_jobs=1"]
    targets = [
        h.Target(
            KEY,
            f"import dlvr_jax.estimators ≤ {TARGET_IMPORT}× the baseline",
            f"{imported:.2f}× ({medians['import dlvr_jax.estimators']:.2f} s / {baseline:.2f} s)",
            imported <= TARGET_IMPORT if full else None,
        ),
        h.Target(
            KEY,
            "cross_val_score n_jobs=1 (warm cache) no slower than scikit-learn's",
            f"{ours1:.2f} s vs {theirs1:.2f} s",
            ours1 <= theirs1 if full else None,
        ),
        h.Target(
            KEY,
            "cross_val_score n_jobs=2 faster than n_jobs=1 (warm cache)",
            f"{ours2:.2f} s vs {ours1:.2f} s",
            ours2 < ours1 if full else None,
        ),
    ]
    notes = [
        "Wall seconds of whole fresh processes (interpreter start included). *warm cache*: "
        "the estimators' persistent compilation cache (on by default, in DLVR_JAX_CACHE_DIR, "
        "here a folder of this run filled by one untimed run); *no cache*: "
        "DLVR_JAX_NO_CACHE=1, every program compiled.",
    ]
    return h.Workload(KEY, TITLE, rows, targets, notes)


if __name__ == "__main__":  # python -m benchmarks.estimators_wait [repeats]
    started = time.perf_counter()
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    config = h.Config(quick=False, repeats=repeats, threads=h.threads())
    load_before = h.load()
    result = run(config)
    print(h.markdown(h.environment(config), [result]))
    print(f"{time.perf_counter() - started:.1f} s, load {load_before} -> {h.load()}")
