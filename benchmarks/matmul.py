"""Matrix multiplication from scratch against its peers: GFLOP/s and memory.

``python -m benchmarks matmul [--quick] [--out DIR]`` times, side by side in one
run, on the default JAX device (CPU, or a GPU when there is one):

- ``matmul_blocked``: :func:`dlvr_jax.tensor.matmul_blocked`'s jitted kernel;
- ``jnp.matmul``: XLA's dot (the peer, default precision);
- ``numpy``: ``np.matmul`` in float32 on the host (its BLAS, e.g. OpenBLAS);
- ``matmul_naive``: the teaching triple loop, on the small sizes only;

for square float32 matrices, n = 64 … 2048 (``--quick``: up to 256), and for
batches of them through ``batched_matmul``'s ``vmap``.

How it measures:

- **Time**: each repeat makes one untimed call, then times ``number``
  back-to-back calls (enough for ~0.1 s) and waits for the result
  (``block_until_ready``); the methods take turns
  within each repeat (with a 0.2 s pause between them: NumPy's BLAS threads
  keep spinning after a call and would slow whichever method comes next), so a
  busy machine slows them alike. The table shows the
  median of ``--repeats`` (≥ 5) repeats. GFLOP/s = 2·batch·n³ / time.
- **Compile time** is ``lower(...).compile()`` of the jitted kernel, apart.
- **Memory**: for the JAX methods, XLA's ``memory_analysis()`` of the compiled
  program: output + temporary buffers (the arguments, the same for everyone,
  excluded). For NumPy, ``tracemalloc``'s peak during one call, which sees
  NumPy's output array but not the BLAS library's internal workspace.
- **Error**: max |c − c₆₄| / max |c₆₄| against a float64 NumPy product.

It writes ``results.md`` (tables), ``results.json`` (every number) and, unless
``--no-plot``, ``matmul_scaling.png`` (:func:`dlvr_jax.viz.plot_matmul_scaling`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dlvr_jax import tensor

SIZES = (64, 128, 256, 512, 1024, 2048)
QUICK_SIZES = (64, 128, 256)
BATCHED = ((256, 64), (64, 128), (16, 256), (4, 512))
QUICK_BATCHED = ((16, 64), (4, 128))
# The naive loop does ~0.5 GFLOP/s: keep it to at most 2^24 multiply-adds per call.
NAIVE_MAX = 2**24
BLOCK = tensor.DEFAULT_BLOCK
PANEL = tensor.DEFAULT_PANEL
TARGET_SECONDS = 0.1  # per timed repeat
# OpenBLAS threads spin for a while after a NumPy call and slow the next method: let them sleep.
PAUSE_SECONDS = 0.2

Runner = Callable[[], Any]


def _sizes(text: str) -> tuple[int, ...]:
    sizes = tuple(int(part) for part in text.split(","))
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive integers, got {text!r}")
    return sizes


def _batches(text: str) -> tuple[tuple[int, int], ...]:
    pairs = []
    for part in text.split(","):
        batch, _, n = part.partition("x")
        if not (batch.isdigit() and n.isdigit()) or int(batch) < 1 or int(n) < 1:
            raise argparse.ArgumentTypeError(f"batched sizes are BATCHxN,..., got {text!r}")
        pairs.append((int(batch), int(n)))
    return tuple(pairs)


def _jax_method(
    method: str, a: jax.Array, b: jax.Array, batched: bool
) -> tuple[Runner, float, int]:
    """The compiled kernel as a runner, its compile time and its output + temp bytes."""
    static = {"block": BLOCK, "panel": PANEL} if method == "blocked" else {}
    start = time.perf_counter()
    kernel: Any = tensor.kernel(method, batched=batched)
    compiled = kernel.lower(a, b, **static).compile()
    compile_seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    peak = int(memory.output_size_in_bytes + memory.temp_size_in_bytes) if memory else -1
    return (lambda: compiled(a, b)), compile_seconds, peak


def _numpy_method(a: np.ndarray, b: np.ndarray) -> tuple[Runner, float, int]:
    tracemalloc.start()
    np.matmul(a, b)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (lambda: np.matmul(a, b)), 0.0, int(peak)


def _wait(result: Any) -> Any:
    return result.block_until_ready() if isinstance(result, jax.Array) else result


def _time(
    runners: dict[str, Runner],
    repeats: int,
    target_seconds: float = TARGET_SECONDS,
    pause_seconds: float = PAUSE_SECONDS,
) -> dict[str, float]:
    """Median seconds per call of each runner, the runners taking turns in each repeat."""
    numbers = {}
    for name, run in runners.items():
        _wait(run())  # warm up
        start = time.perf_counter()
        _wait(run())
        once = time.perf_counter() - start
        numbers[name] = max(1, min(1000, math.ceil(target_seconds / max(once, 1e-7))))
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            _wait(run())  # untimed: wakes the thread pool and the caches after the pause
            start = time.perf_counter()
            for _ in range(numbers[name]):
                result = run()
            _wait(result)
            samples[name].append((time.perf_counter() - start) / numbers[name])
            time.sleep(pause_seconds)
    return {name: statistics.median(times) for name, times in samples.items()}


def measure(
    batch: int | None,
    n: int,
    repeats: int,
    key: jax.Array,
    target_seconds: float = TARGET_SECONDS,
    pause_seconds: float = PAUSE_SECONDS,
) -> list[dict[str, Any]]:
    """One row per method for ``[batch,] n × n`` float32 operands."""
    shape = (n, n) if batch is None else (batch, n, n)
    key_a, key_b = jax.random.split(key)
    a = jax.random.normal(key_a, shape, jnp.float32)
    b = jax.random.normal(key_b, shape, jnp.float32)
    a_host, b_host = np.asarray(a), np.asarray(b)
    batched = batch is not None
    methods: dict[str, tuple[Runner, float, int]] = {
        "matmul_blocked": _jax_method("blocked", a, b, batched),
        "jnp.matmul": _jax_method("jnp", a, b, batched),
        "numpy": _numpy_method(a_host, b_host),
    }
    if (batch or 1) * n**3 <= NAIVE_MAX:
        methods["matmul_naive"] = _jax_method("naive", a, b, batched)
    runners = {name: run for name, (run, _, _) in methods.items()}
    seconds = _time(runners, repeats, target_seconds, pause_seconds)
    expected = np.matmul(a_host.astype(np.float64), b_host.astype(np.float64))
    scale = float(np.max(np.abs(expected)))
    flops = 2.0 * (batch or 1) * n**3
    rows = []
    for name, (run, compile_seconds, peak) in methods.items():
        error = float(np.max(np.abs(np.asarray(run(), np.float64) - expected))) / scale
        rows.append(
            {
                "method": name,
                "batch": batch,
                "n": n,
                "seconds": seconds[name],
                "gflops": flops / seconds[name] / 1e9,
                "ratio_to_jnp": seconds["jnp.matmul"] / seconds[name],
                "compile_seconds": compile_seconds if name != "numpy" else None,
                "peak_bytes": peak,
                "memory_source": "tracemalloc peak" if name == "numpy" else "XLA output+temp",
                "max_relative_error": error,
            }
        )
    return rows


def _table(rows: list[dict[str, Any]], batched: bool) -> list[str]:
    head = "| batch | n |" if batched else "| n |"
    lines = [
        f"{head} method | run (ms) | GFLOP/s | × jnp.matmul | compile (s) | peak memory (MiB) "
        "| rel. error |",
        "|" + "---|" * (8 + batched),
    ]
    for row in rows:
        lead = f"| {row['batch']} | {row['n']} |" if batched else f"| {row['n']} |"
        compile_text = "–" if row["compile_seconds"] is None else f"{row['compile_seconds']:.2f}"
        lines.append(
            f"{lead} {row['method']} | {row['seconds'] * 1e3:.3f} | {row['gflops']:.1f} "
            f"| {row['ratio_to_jnp']:.2f} | {compile_text} | {row['peak_bytes'] / 2**20:.2f} "
            f"| {row['max_relative_error']:.1e} |"
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Matrix multiplication benchmark ({results['platform']}: {results['device']})",
        "",
        f"float32; medians of {results['repeats']} repeats, methods interleaved; "
        f"matmul_blocked(block={results['block']}, panel={results['panel']}); "
        f"jax {results['jax_version']}, numpy {results['numpy_version']}, "
        f"{results['cpu_count']} CPU cores.",
        "Peak memory: XLA memory_analysis() output + temp bytes for the JAX methods; "
        "tracemalloc peak for NumPy (BLAS workspace not seen).",
        "",
        "## Square matrices",
        "",
        *_table(results["square"], batched=False),
    ]
    if results["batched"]:
        lines += ["", "## Batched (vmap)", "", *_table(results["batched"], batched=True)]
    return "\n".join(lines) + "\n"


def run(
    sizes: Sequence[int],
    batches: Sequence[tuple[int, int]],
    repeats: int,
    target_seconds: float = TARGET_SECONDS,
    pause_seconds: float = PAUSE_SECONDS,
) -> dict[str, Any]:
    device = jax.devices()[0]
    key = jax.random.key(0)
    results: dict[str, Any] = {
        "platform": device.platform,
        "device": str(getattr(device, "device_kind", device)),
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "repeats": repeats,
        "block": BLOCK,
        "panel": PANEL,
        "square": [],
        "batched": [],
    }
    timing = (target_seconds, pause_seconds)
    for n in sizes:
        results["square"] += measure(None, n, repeats, jax.random.fold_in(key, n), *timing)
        print(f"n = {n} done", file=sys.stderr, flush=True)
    for batch, n in batches:
        folded = jax.random.fold_in(key, batch * n)
        results["batched"] += measure(batch, n, repeats, folded, *timing)
        print(f"batch {batch} x n = {n} done", file=sys.stderr, flush=True)
    return results


# ----------------------------------------------------------------------------
# As workload D of the suite (python -m benchmarks D).

KEY = "D"
TITLE = "matrix multiplication throughput (float32)"
SUITE_QUICK_SIZES = (64, 128)
SUITE_QUICK_BATCHED = ((16, 64),)
SUITE_QUICK_TIMING = (0.02, 0.05)  # target seconds per timed repeat, pause between methods


def workload(config: Any) -> Any:
    """The suite's workload D: the rows of :func:`run` as :class:`benchmarks._harness.Row`."""
    from benchmarks import _harness as h

    if config.quick:
        results = run(SUITE_QUICK_SIZES, SUITE_QUICK_BATCHED, config.repeats, *SUITE_QUICK_TIMING)
    else:
        results = run(SIZES, BATCHED, config.repeats)
    rows = []
    for row in results["square"] + results["batched"]:
        shape = f"{row['n']}×{row['n']}"
        case = shape if row["batch"] is None else f"{row['batch']} × {shape}"
        rows.append(
            h.Row(
                KEY,
                case,
                row["method"],
                compile_seconds=row["compile_seconds"],
                compile_source=None if row["compile_seconds"] is None else "lower().compile()",
                run_seconds=row["seconds"],
                throughput=row["gflops"],
                unit="GFLOP/s",
                speedup=row["ratio_to_jnp"],
                reference="jnp.matmul",
                details={
                    "peak MiB": row["peak_bytes"] / 2**20,
                    "rel. error": row["max_relative_error"],
                },
            )
        )
    notes = [
        "× ref: run time of jnp.matmul (XLA's dot) / run time of the method. Each repeat "
        "times back-to-back calls for ~0.1 s; peak memory is XLA's output + temp bytes "
        "(tracemalloc's peak for NumPy). Full tables and the scaling figure: "
        "python -m benchmarks matmul.",
    ]
    return h.Workload(KEY, TITLE, rows, [], notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks matmul", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="sizes up to 256")
    parser.add_argument("--sizes", type=_sizes, help="square sizes, e.g. 64,128")
    parser.add_argument("--batched", type=_batches, help="batched sizes, e.g. 16x64,4x128")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--out", type=Path, default=Path("benchmark-results/matmul"))
    parser.add_argument("--no-plot", action="store_true", help="skip matmul_scaling.png")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    batches = args.batched or (QUICK_BATCHED if args.quick else BATCHED)
    results = run(sizes, batches, args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if not args.no_plot:
        from dlvr_jax import viz

        viz.save(viz.plot_matmul_scaling(results), args.out / "matmul_scaling.png")
    print(table)
    print(f"wrote {args.out}/results.md and results.json", file=sys.stderr)
    return 0
