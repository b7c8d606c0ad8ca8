"""``python -m benchmarks [WORKLOAD ...] [--quick] [--repeats N] [--out DIR]``: the suite.

Workloads (default: all eight, in this order):

- ``A`` / ``mlp``: the seed MLP, dlvr_jax ``train.fit`` vs PyTorch eager vs scikit-learn;
- ``B`` / ``sweep``: 256 models, dlvr_jax ``parallel.sweep`` vs sequential PyTorch;
- ``C`` / ``perceptron``: the PLA at n = 200, n = 100 000 and over 1000 datasets,
  dlvr_jax vs pure Python, NumPy and scikit-learn;
- ``D``: matrix multiplication throughput;
- ``E`` / ``wait``: the user's wait, ``dlvr-jax mlp`` end to end in fresh
  processes (cold, warm compilation cache, import, ``train.fit``'s first call);
- ``F`` / ``gridsearch``: ``GridSearchCV`` over 3 learning rates × 5 folds on breast
  cancer, dlvr_jax ``estimators.MLPClassifier`` (compile included) vs scikit-learn's;
- ``G`` / ``playground``: the Playground live, its page driven in headless
  Chromium (snapshots/s, epochs/s, first snapshot after Play).
- ``H`` / ``estimators``: the estimators' waits in fresh processes (import vs the
  JAX baseline; 5-fold ``cross_val_score`` with ``n_jobs=1`` and ``2``, warm and
  without the compilation cache, vs scikit-learn's).

It writes ``DIR/results.md`` and ``DIR/results.json`` (atomically, after each
workload, so an interrupted run keeps what it measured) and prints the
Markdown. ``--quick`` runs small sizes for a smoke test (fewer than 5 repeats
are allowed only then). Peers (PyTorch, scikit-learn) come from the ``bench``
extra; a missing one is reported as skipped, with the reason.

``python -m benchmarks matmul [options]`` (``matmul`` first) still runs the
standalone matrix multiplication benchmark with its own options (``--sizes``,
``--batched``, ``--no-plot``) and its scaling figure.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import _harness as h
from benchmarks import estimators_wait, gridsearch, matmul, mlp, perceptron, sweep, wait
from benchmarks import playground as playground_workload

# key -> (title, run, aliases)
WORKLOADS: dict[str, tuple[str, Callable[[h.Config], h.Workload], tuple[str, ...]]] = {
    "A": (mlp.TITLE, mlp.run, ("mlp",)),
    "B": (sweep.TITLE, sweep.run, ("sweep",)),
    "C": (perceptron.TITLE, perceptron.run, ("perceptron",)),
    "D": (matmul.TITLE, matmul.workload, ()),
    "E": (wait.TITLE, wait.run, ("wait",)),
    "F": (gridsearch.TITLE, gridsearch.run, ("gridsearch",)),
    "G": (playground_workload.TITLE, playground_workload.run, ("playground",)),
    "H": (estimators_wait.TITLE, estimators_wait.run, ("estimators",)),
}
# Kept for the old entry point: python -m benchmarks matmul [options].
BENCHMARKS: dict[str, Callable[[Sequence[str] | None], int]] = {"matmul": matmul.main}
DEFAULT_OUT = Path("benchmark-results")
QUICK_REPEATS = 3


def _workload(name: str) -> str:
    for key, (_, _, aliases) in WORKLOADS.items():
        if name.upper() == key or name.lower() in aliases:
            return key
    choices = ", ".join(f"{k} ({'/'.join(a)})" if a else k for k, (_, _, a) in WORKLOADS.items())
    raise argparse.ArgumentTypeError(f"unknown workload {name!r}; choose from {choices}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "workloads",
        nargs="*",
        type=_workload,
        metavar="WORKLOAD",
        help=(
            "A, B, C, D, E, F, G, H (or mlp, sweep, perceptron, wait, gridsearch, playground, "
            "estimators); default: all"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed repeats per method (default {h.MIN_REPEATS}; {QUICK_REPEATS} with --quick)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the suite; returns 0, or 1 if a workload failed (2 for bad arguments)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "matmul":
        return BENCHMARKS["matmul"](args[1:])
    parser = _parser()
    try:
        options = parser.parse_args(args)
        repeats = options.repeats
        if repeats is None:
            repeats = QUICK_REPEATS if options.quick else h.MIN_REPEATS
        if repeats < 1 or (repeats < h.MIN_REPEATS and not options.quick):
            parser.error(
                f"--repeats must be >= {h.MIN_REPEATS} (medians of at least {h.MIN_REPEATS} "
                f"repeats; fewer only with --quick), got {repeats}"
            )
    except SystemExit as stop:  # --help, or a bad argument (argparse prints why)
        return stop.code if isinstance(stop.code, int) else 2
    keys = list(dict.fromkeys(options.workloads)) or list(WORKLOADS)
    config = h.Config(quick=options.quick, repeats=repeats, threads=h.threads())
    meta = h.environment(config)
    done: list[h.Workload] = []
    failed = False
    for key in keys:
        title, run, _ = WORKLOADS[key]
        print(f"[{key}] {title} ...", file=sys.stderr, flush=True)
        before, start = h.load(), time.perf_counter()
        try:
            result = run(config)
        except Exception as error:  # report it and go on with the other workloads
            result = h.Workload(key, title, [_failure(key, error)])
        result.seconds = time.perf_counter() - start
        after = h.load()
        if before is not None and after is not None:
            result.load_average = (before, after)
        failed |= any(row.status == "failed" for row in result.rows)
        done.append(result)
        paths = h.write(options.out, meta, done)
        print(f"[{key}] done in {result.seconds:.1f} s", file=sys.stderr, flush=True)
    print(h.markdown(meta, done))
    print(f"wrote {paths[0]} and {paths[1]}", file=sys.stderr)
    return 1 if failed else 0


def _failure(key: str, error: Exception) -> h.Row:
    row = h.Row(key, "–", "–", status="failed", reason=f"{type(error).__name__}: {error}")
    row.details["traceback"] = traceback.format_exc(limit=5)
    return row


if __name__ == "__main__":
    sys.exit(main())
