"""Workload E: the user's wait — ``dlvr-jax mlp`` as a command, not only its training loop.

Every case runs in a fresh Python process, as a user meets it:

- **cold**: ``python -m dlvr_jax mlp --no-cache`` (no persistent compilation
  cache: every program is compiled);
- **warm**: the same command with the compilation cache in a folder of this
  run (``DLVR_JAX_CACHE_DIR``), after one untimed run filled it;
- **baseline**: ``python -c`` that imports JAX and runs one jitted function,
  the wait every JAX program starts with; the targets are ratios to it;
- **import**: ``import dlvr_jax.cli`` plus ``jax`` (what ``--help`` waits for);
- **first fit**: ``train.fit``'s first call on the seed task (the ``mlp``
  command's data, model and optimizer, 2000 full-batch epochs, a test set of
  200), and a second call of the same: their difference is the compile time.

The command's ``--json`` document carries the seconds of each phase
(``timings``: data, init, train, figures, files, as the jobs layer measures
them); the rows show them beside the wall time, so where a target is missed
the table shows where the time goes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks import _harness as h

KEY = "E"
TITLE = "the user's wait: dlvr-jax mlp end to end (fresh processes)"
EPOCHS = 2000
QUICK_EPOCHS = 20
TARGET_COLD = 2.5
TARGET_WARM = 1.5
TARGET_FIRST_FIT = 0.7
"""The targets are ratios to the baseline measured in the same run (issue 19): a fresh
Python that imports JAX and runs one jitted function, what any JAX program waits for."""

_BASELINE = """
import jax, jax.numpy as jnp
jax.jit(lambda x: x * 2 + 1)(jnp.ones(3)).block_until_ready()
"""

_FIRST_FIT = """
import json, time
start = time.perf_counter()
import jax
from dlvr_jax import data, models, optim, train
imported = time.perf_counter()
key = jax.random.key(0)
data_key, split_key, train_key = jax.random.split(key, 3)
full = data.make("circle", data_key, 1000)
training, test = data.train_test_split(split_key, full, test_fraction=0.2)
model, tx = models.MLP(), optim.optimizer("adam", 1e-3)
ready = time.perf_counter()
def fit():
    state, history = train.fit(train_key, model, tx, training, epochs={epochs}, test=test)
    jax.block_until_ready(state.params)
    return state
first_start = time.perf_counter(); fit(); first = time.perf_counter() - first_start
second_start = time.perf_counter(); fit(); second = time.perf_counter() - second_start
print(json.dumps({{"import": imported - start, "setup": ready - imported,
                  "first": first, "second": second}}))
"""

_IMPORT = """
import time
start = time.perf_counter()
import jax, dlvr_jax.cli
print(time.perf_counter() - start)
"""


def _environment(cache: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DLVR_JAX_NO_CACHE", None)
    env["MPLBACKEND"] = "Agg"
    if cache is not None:
        env["DLVR_JAX_CACHE_DIR"] = cache
    return env


def _command(epochs: int, out: str, *, cache: bool) -> list[str]:
    command = [sys.executable, "-m", "dlvr_jax", "mlp", "--epochs", str(epochs)]
    command += ["--out", out, "--no-progress", "--json"]
    return command if cache else [*command, "--no-cache"]


def _run(command: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one fresh process, and the JSON it printed."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[1:])} exited {done.returncode}: {done.stderr[-500:]}"
        )
    return seconds, json.loads(done.stdout)


def _phases(documents: list[dict[str, Any]]) -> dict[str, float]:
    """The median seconds of each phase the command reported (``timings``)."""
    names = sorted({name for doc in documents for name in doc.get("timings", {})})
    return {
        f"{name} s": h.median(
            [doc["timings"][name] for doc in documents if name in doc.get("timings", {})]
        )
        for name in names
    }


def run(config: h.Config) -> h.Workload:
    epochs = QUICK_EPOCHS if config.quick else EPOCHS
    repeats = config.repeats
    case = f"circle, 1000 points, {epochs} epochs"
    rows: list[h.Row] = []
    with tempfile.TemporaryDirectory(prefix="dlvr-wait-") as folder:
        out, cache = os.path.join(folder, "out"), os.path.join(folder, "cache")
        cold_env, warm_env = _environment(None), _environment(cache)
        _run(_command(epochs, out, cache=True), warm_env)  # fills the cache (untimed)
        samples: dict[str, list[float]] = {"cold": [], "warm": [], "import": [], "base": []}
        documents: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
        for _ in range(repeats):  # the cases take turns, as in every workload
            for name, command, env in (
                ("cold", _command(epochs, out, cache=False), cold_env),
                ("warm", _command(epochs, out, cache=True), warm_env),
            ):
                seconds, document = _run(command, env)
                samples[name].append(seconds)
                documents[name].append(document)
            for name, script in (("import", _IMPORT), ("base", _BASELINE)):
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-c", script], env=cold_env, check=True, capture_output=True
                )
                samples[name].append(time.perf_counter() - start)
        for name, label in (
            ("cold", "dlvr-jax mlp --no-cache (cold)"),
            ("warm", "dlvr-jax mlp (warm cache)"),
        ):
            times = samples[name]
            rows.append(
                h.Row(
                    KEY,
                    case,
                    label,
                    first_call_seconds=times[0],
                    run_seconds=h.median(times),
                    samples=times,
                    details=_phases(documents[name]),
                )
            )
        rows.append(
            h.Row(
                KEY,
                "process start",
                "baseline: python -c 'import jax; one jitted function'",
                run_seconds=h.median(samples["base"]),
                samples=samples["base"],
            )
        )
        rows.append(
            h.Row(
                KEY,
                "process start",
                "python -c 'import jax, dlvr_jax.cli'",
                run_seconds=h.median(samples["import"]),
                samples=samples["import"],
            )
        )
        fits = []
        for _ in range(repeats):
            done = subprocess.run(
                [sys.executable, "-c", _FIRST_FIT.format(epochs=epochs)],
                env=cold_env,
                capture_output=True,
                text=True,
                check=True,
            )
            fits.append(json.loads(done.stdout.strip().splitlines()[-1]))
        first = [f["first"] for f in fits]
        second = [f["second"] for f in fits]
        rows.append(
            h.Row(
                KEY,
                f"seed task, {epochs} epochs",
                "train.fit first call (fresh process, no cache)",
                first_call_seconds=h.median(first),
                compile_seconds=max(h.median(first) - h.median(second), 0.0),
                compile_source="first call − second call",
                run_seconds=h.median(second),
                samples=first,
                details={"import s": h.median([f["import"] for f in fits])},
            )
        )
    base = h.median(samples["base"])
    cold, warm, fit = (
        h.median(values) / base for values in (samples["cold"], samples["warm"], first)
    )
    for row in rows:  # each wait beside the baseline of this run
        seconds = row.first_call_seconds if "first call" in row.method else row.run_seconds
        if seconds is not None:
            row.details["× baseline"] = seconds / base
    full = not config.quick
    targets = [
        h.Target(KEY, f"cold dlvr-jax mlp ≤ {TARGET_COLD}× the baseline", f"{cold:.2f}×",
                 cold <= TARGET_COLD if full else None),
        h.Target(KEY, f"warm-cache dlvr-jax mlp ≤ {TARGET_WARM}× the baseline", f"{warm:.2f}×",
                 warm <= TARGET_WARM if full else None),
        h.Target(KEY, f"train.fit first call ≤ {TARGET_FIRST_FIT}× the baseline", f"{fit:.2f}×",
                 fit <= TARGET_FIRST_FIT if full else None),
    ]  # fmt: skip
    notes = [
        "Wall seconds of whole processes (interpreter start included); the notes column gives "
        "the median seconds of each phase the command reports in its --json `timings`. "
        f"Targets are ratios to the baseline row ({base:.2f} s here), measured in turn "
        "with the other processes of this run."
    ]
    return h.Workload(KEY, TITLE, rows, targets, notes)
