"""Workload C: the perceptron (PLA), dlvr_jax against pure Python, NumPy and scikit-learn.

Cases (learning rate 0.1, zero initial weights, samples in data order):

- **n = 200**: ``data.linear(key(0), 200, margin=0.05)`` (separable).
- **n = 100 000**: ``data.linear(key(0), 100_000)`` (separable, no margin: ~93 epochs).
- **1000 datasets of 200 points**: ``data.linear(key_i, 200, margin=0.01)``, except
  every 250th, ``data.linear(key_i, 200, noise=0.3)``, which is not separable
  and runs to ``max_epochs = 1000``: 4 stragglers, as in the issue.

The unit is **ns per sample update** (run time / (epochs × n): one online step
on one sample, whether or not it is a mistake) for one dataset, and
**datasets/s** for many.

Methods:

- ``dlvr_jax fit``: the public call, argument checks included.
- ``dlvr_jax fit_batched``: ``method="auto"`` (``"sequential"`` on a CPU) and
  ``method="lanes"`` (vmapped lanes in chunks, finished datasets dropped
  between chunks; meant for accelerators); ``jax.jit(jax.vmap(fit))``; and
  1000 sequential calls of ``jax.jit(fit)`` (the issue's baseline).
- ``pure Python``: the chapter's loop on Python floats (float64), 2-D.
- ``NumPy``: the same loop on float32 arrays; for many datasets, NumPy
  steps all running datasets together (one vectorised update per sample
  index) and drops those that converged after each epoch.
- ``scikit-learn Perceptron(penalty=None, eta0=2·η, shuffle=False,
  tol=None)``: its update on a mistake is ``w += eta0 · y · x``, which equals
  the PLA's ``η (y − ŷ) x`` with ``eta0 = 2η``; it counts a score of exactly 0
  as a mistake for both classes (the PLA predicts −1 there), computes in
  float64 and has no "stop after an epoch without mistakes" rule: with
  ``tol=None`` it runs ``max_iter`` epochs, so ``max_iter`` is set to the
  epochs dlvr_jax needed on that dataset, and both make the same passes.

The pure-Python and NumPy loops cost ~0.3–3 µs per sample; at n = 100 000
they run 2 epochs (not to convergence), which is enough to measure their
cost per sample update.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness as h
from dlvr_jax import data, perceptron

KEY = "C"
TITLE = "perceptron (PLA)"
LEARNING_RATE = 0.1
MAX_EPOCHS = 1000
SMALL, LARGE, DATASETS, POINTS, STRAGGLER_EVERY = 200, 100_000, 1000, 200, 250
QUICK_LARGE, QUICK_DATASETS, QUICK_STRAGGLER_EVERY, QUICK_MAX_EPOCHS = 20_000, 64, 16, 200
PEER_EPOCHS_LARGE = 2
TARGET_NS = 10.0
TARGET_DATASETS = 12_000.0


# ----------------------------------------------------------------------------
# The peers.


def pla_python(
    x: list[tuple[float, float]], y: list[int], learning_rate: float, max_epochs: int
) -> tuple[list[float], int, int]:
    """The chapter's PLA on Python floats, for 2-D points: ``([w1, w2, b], epochs, updates)``."""
    w1 = w2 = b = 0.0
    epochs = updates = 0
    for _ in range(max_epochs):
        epochs += 1
        mistakes = 0
        for (x1, x2), target in zip(x, y, strict=True):
            prediction = 1 if w1 * x1 + w2 * x2 + b > 0 else -1
            if prediction != target:
                delta = learning_rate * (target - prediction)
                w1 += delta * x1
                w2 += delta * x2
                b += delta
                mistakes += 1
        updates += mistakes
        if mistakes == 0:
            break
    return [w1, w2, b], epochs, updates


def pla_numpy(
    x: np.ndarray, y: np.ndarray, learning_rate: float, max_epochs: int
) -> tuple[np.ndarray, int, int]:
    """The same loop on float32 NumPy arrays: ``(w with b last, epochs, updates)``."""
    w = np.zeros(x.shape[1], np.float32)
    b = np.float32(0)
    eta = np.float32(learning_rate)
    epochs = updates = 0
    for _ in range(max_epochs):
        epochs += 1
        mistakes = 0
        for i in range(x.shape[0]):
            prediction = 1 if x[i] @ w + b > 0 else -1
            if prediction != y[i]:
                delta = eta * np.float32(y[i] - prediction)
                w += delta * x[i]
                b += delta
                mistakes += 1
        updates += mistakes
        if mistakes == 0:
            break
    return np.append(w, b), epochs, updates


def pla_numpy_many(
    x: np.ndarray, y: np.ndarray, learning_rate: float, max_epochs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Many datasets ``x[B, n, d]`` at once: one vectorised update per sample index.

    After each epoch the datasets that made no mistake are dropped. Returns
    ``(epochs[B], updates[B])``.
    """
    datasets, n, d = x.shape
    w = np.zeros((datasets, d), np.float32)
    b = np.zeros(datasets, np.float32)
    eta = np.float32(learning_rate)
    epochs = np.zeros(datasets, np.int64)
    updates = np.zeros(datasets, np.int64)
    running = np.arange(datasets)
    for _ in range(max_epochs):
        if running.size == 0:
            break
        xs, ys = x[running], y[running]
        wr, br = w[running], b[running]
        made = np.zeros(running.size, np.int64)
        for i in range(n):
            prediction = np.where(np.einsum("bd,bd->b", xs[:, i], wr) + br > 0, 1, -1)
            wrong = prediction != ys[:, i]
            delta = np.where(wrong, eta * (ys[:, i] - prediction), 0).astype(np.float32)
            wr += delta[:, None] * xs[:, i]
            br += delta
            made += wrong
        w[running], b[running] = wr, br
        epochs[running] += 1
        updates[running] += made
        running = running[made > 0]
    return epochs, updates


def sklearn_perceptron(linear_model: Any, x: np.ndarray, y: np.ndarray, epochs: int) -> Any:
    """scikit-learn's Perceptron for ``epochs`` passes in data order (see the module docstring)."""
    model = linear_model.Perceptron(
        penalty=None,
        alpha=0.0,
        fit_intercept=True,
        max_iter=epochs,
        tol=None,
        shuffle=False,
        eta0=2 * LEARNING_RATE,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on non-separable data
        return model.fit(x, y)


# ----------------------------------------------------------------------------
# The cases.


def datasets(count: int, every: int) -> tuple[jax.Array, jax.Array]:
    """``count`` datasets of 200 points; every ``every``-th one is noisy (not separable)."""
    keys = jax.random.split(jax.random.key(1), count)
    made = [
        data.linear(k, POINTS, noise=0.3) if i % every == 0 else data.linear(k, POINTS, margin=0.01)
        for i, k in enumerate(keys)
    ]
    return jnp.stack([d.x for d in made]), jnp.stack([data.signed(d.y) for d in made])


def _single_case(
    config: h.Config, linear_model: Any, why: str | None, n: int, peer_epochs: int | None
) -> list[h.Row]:
    """One dataset of ``n`` points: ns per sample update of every method."""
    case = f"n = {n:,}"
    train = data.linear(jax.random.key(0), n, margin=0.05 if n == SMALL else 0.0)
    x, y = train.x, data.signed(train.y)
    x_host, y_host = np.asarray(x), np.asarray(y)
    points = [(float(a), float(c)) for a, c in x_host]
    labels = [int(v) for v in y_host]
    fit = functools.partial(perceptron.fit, learning_rate=LEARNING_RATE, max_epochs=MAX_EPOCHS)
    first, result = h.first_call(lambda: fit(x, y))
    epochs = int(result.epochs)
    peer = epochs if peer_epochs is None else min(peer_epochs, epochs)
    runners: dict[str, Callable[[], Any]] = {
        "dlvr_jax fit": lambda: fit(x, y),
        "pure Python": lambda: pla_python(points, labels, LEARNING_RATE, peer),
        "NumPy": lambda: pla_numpy(x_host, y_host, LEARNING_RATE, peer),
    }
    rows: list[h.Row] = []
    missing: list[h.Row] = []
    if linear_model is None:
        missing.append(h.skipped(KEY, case, "scikit-learn Perceptron", str(why)))
    else:
        runners["scikit-learn Perceptron"] = lambda: sklearn_perceptron(
            linear_model, x_host, y_host, epochs
        )
    firsts = {name: h.first_call(run)[0] for name, run in runners.items() if name != "dlvr_jax fit"}
    firsts["dlvr_jax fit"] = first
    samples = h.interleaved(runners, config.repeats)
    epochs_run = {name: epochs for name in runners}
    epochs_run["pure Python"] = epochs_run["NumPy"] = peer
    for name, times in samples.items():
        median = h.median(times)
        is_jax = name.startswith("dlvr_jax")
        details: dict[str, Any] = {"epochs": epochs_run[name]}
        if is_jax:
            details["updates"] = int(result.updates)
        rows.append(
            h.timed(
                KEY,
                case,
                name,
                first=firsts[name],
                times=times,
                compiled=is_jax,
                throughput=median / (epochs_run[name] * n) * 1e9,
                unit="ns/sample update",
                details=details,
            )
        )
    return rows + missing


def _many_case(config: h.Config, linear_model: Any, why: str | None) -> tuple[list[h.Row], str]:
    count = QUICK_DATASETS if config.quick else DATASETS
    every = QUICK_STRAGGLER_EVERY if config.quick else STRAGGLER_EVERY
    max_epochs = QUICK_MAX_EPOCHS if config.quick else MAX_EPOCHS
    case = f"{count} datasets × {POINTS}"
    x, y = datasets(count, every)
    x_host, y_host = np.asarray(x), np.asarray(y)
    points = [[(float(a), float(c)) for a, c in rows] for rows in x_host]
    labels = [[int(v) for v in row] for row in y_host]
    options: dict[str, Any] = {"learning_rate": LEARNING_RATE, "max_epochs": max_epochs}
    jitted_fit = jax.jit(functools.partial(perceptron.fit, **options))
    mapped_fit = jax.jit(jax.vmap(functools.partial(perceptron.fit, **options)))
    # The datasets as separate arrays beforehand: indexing x[i] is an op of its own.
    xs, ys = list(x), list(y)

    def one_by_one() -> Any:
        return [jitted_fit(a, b) for a, b in zip(xs, ys, strict=True)]

    runners: dict[str, Callable[[], Any]] = {
        "dlvr_jax fit_batched (auto)": lambda: perceptron.fit_batched(x, y, **options),
    }
    rows: list[h.Row] = []
    if config.quick:
        for name, because in (
            ("dlvr_jax fit_batched (lanes)", "compiles one program per power-of-two batch size"),
            ("dlvr_jax jit(vmap(fit))", "the same program as fit_batched (auto) on a CPU"),
        ):
            rows.append(h.skipped(KEY, case, name, f"skipped under --quick: {because}"))
    else:
        runners["dlvr_jax fit_batched (lanes)"] = lambda: perceptron.fit_batched(
            x, y, method="lanes", **options
        )
        runners["dlvr_jax jit(vmap(fit))"] = lambda: mapped_fit(x, y)
    runners[f"dlvr_jax {count} sequential jit(fit) calls"] = one_by_one
    runners["pure Python"] = lambda: [
        pla_python(p, q, LEARNING_RATE, max_epochs) for p, q in zip(points, labels, strict=True)
    ]
    runners["NumPy (datasets vectorised)"] = lambda: pla_numpy_many(
        x_host, y_host, LEARNING_RATE, max_epochs
    )
    # First calls before anything else, so that they include compilation.
    firsts = {name: h.first_call(run)[0] for name, run in runners.items()}
    reference = perceptron.fit_batched(x, y, **options)
    epochs = np.asarray(reference.epochs)
    if linear_model is None:
        rows.append(h.skipped(KEY, case, "scikit-learn Perceptron", str(why)))
    else:
        name = "scikit-learn Perceptron"
        runners[name] = lambda: [
            sklearn_perceptron(linear_model, x_host[i], y_host[i], int(epochs[i]))
            for i in range(count)
        ]
        firsts[name] = h.first_call(runners[name])[0]
    # The dlvr_jax methods must agree with each other exactly (the tests prove it; this
    # shows it here); the peers report their epochs.
    same = {"dlvr_jax fit_batched (auto)": reference}
    if not config.quick:
        same["dlvr_jax jit(vmap(fit))"] = mapped_fit(x, y)
        same["dlvr_jax fit_batched (lanes)"] = perceptron.fit_batched(
            x, y, method="lanes", **options
        )
    singles = one_by_one()
    sequential_epochs = np.array([int(r.epochs) for r in singles])
    samples = h.interleaved(runners, config.repeats)
    numpy_epochs, _ = pla_numpy_many(x_host, y_host, LEARNING_RATE, max_epochs)
    python_epochs = [
        pla_python(p, q, LEARNING_RATE, max_epochs)[1] for p, q in zip(points, labels, strict=True)
    ]
    for name, times in samples.items():
        median = h.median(times)
        is_jax = name.startswith("dlvr_jax")
        details: dict[str, Any] = {}
        if name in same:
            result = same[name]
            equal = all(
                np.array_equal(np.asarray(a), np.asarray(b))
                for a, b in zip(jax.tree.leaves(result), jax.tree.leaves(reference), strict=True)
            )
            details["equals fit per dataset"] = bool(
                equal and np.array_equal(np.asarray(result.epochs), sequential_epochs)
            )
            details["total epochs"] = int(np.asarray(result.epochs).sum())
        elif name.startswith("NumPy"):
            details["total epochs"] = int(numpy_epochs.sum())
        elif name == "pure Python":
            details["total epochs"] = int(sum(python_epochs))
        elif name.startswith("scikit"):
            details["total epochs"] = int(epochs.sum())
        else:
            details["total epochs"] = int(sequential_epochs.sum())
        rows.append(
            h.timed(
                KEY,
                case,
                name,
                first=firsts[name],
                times=times,
                compiled=is_jax,
                throughput=count / median,
                unit="datasets/s",
                details=details,
            )
        )
    stragglers = int((epochs == max_epochs).sum())
    return rows, (
        f"{case}: {stragglers} datasets run to max_epochs = {max_epochs}; the others "
        f"converge after {epochs[epochs < max_epochs].mean():.1f} epochs on average."
    )


def run(config: h.Config) -> h.Workload:
    linear_model, why = h.peer("sklearn.linear_model")
    large = QUICK_LARGE if config.quick else LARGE
    rows = _single_case(config, linear_model, why, SMALL, None)
    rows += _single_case(config, linear_model, why, large, PEER_EPOCHS_LARGE)
    many, note = _many_case(config, linear_model, why)
    rows += many
    _set_ratios(rows)
    fit_large = next(r for r in rows if r.case == f"n = {large:,}" and r.method == "dlvr_jax fit")
    batched = next(r for r in rows if r.method == "dlvr_jax fit_batched (auto)")
    sequential = next(r for r in rows if "sequential jit(fit)" in r.method)
    assert fit_large.throughput is not None
    assert batched.throughput is not None
    assert sequential.throughput is not None
    targets = [
        h.Target(
            KEY,
            f"n = 100 000: ≤ {TARGET_NS:g} ns per sample update",
            f"{fit_large.throughput:.2f} ns (n = {large:,})",
            None if config.quick else fit_large.throughput <= TARGET_NS,
        ),
        h.Target(
            KEY,
            f"batched path ≥ {TARGET_DATASETS:,.0f} datasets/s (1000 × 200)",
            f"{batched.throughput:,.0f} datasets/s",
            None if config.quick else batched.throughput >= TARGET_DATASETS,
        ),
        h.Target(
            KEY,
            "batched path at least as fast as sequential jitted calls",
            f"{batched.throughput / sequential.throughput:.1f}×",
            batched.throughput >= sequential.throughput,
        ),
    ]
    notes = [
        note,
        "× ref: for one dataset, scikit-learn's ns per sample update / the method's; for many, "
        "the method's datasets/s / scikit-learn's (NumPy's without scikit-learn).",
        f"pure Python and NumPy run {PEER_EPOCHS_LARGE} epochs at n = {large:,} (their cost per "
        "sample update does not depend on the epoch); scikit-learn runs as many epochs as "
        "dlvr_jax needed.",
    ]
    return h.Workload(KEY, TITLE, rows, targets, notes)


def _set_ratios(rows: list[h.Row]) -> None:
    """× ref against scikit-learn (NumPy without it), per case, by the case's unit."""
    for case in dict.fromkeys(r.case for r in rows):
        members = [r for r in rows if r.case == case and r.status == "ok" and r.throughput]
        reference = next((r for r in members if r.method.startswith("scikit")), None) or next(
            (r for r in members if r.method.startswith("NumPy")), None
        )
        if reference is None or reference.throughput is None:
            continue
        for row in members:
            assert row.throughput is not None
            if row.unit == "datasets/s":
                row.speedup = row.throughput / reference.throughput
            else:
                row.speedup = reference.throughput / row.throughput
            row.reference = reference.method
