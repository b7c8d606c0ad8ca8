"""What every workload of the suite shares: timing, peers, rows and the two tables.

How it measures (docs/design.md, Conventions, rule 11):

- **Side by side, in one run.** The methods of a case run in the same
  process, and their timed repeats take turns (method A, B, C, then A, B, C
  again, ...), so a machine that gets busier slows them alike.
- **First call apart.** Each method is called once before the timed repeats;
  that call's wall time is reported as *first call*. For JAX it includes
  tracing and compilation; *compile* is the first call minus the median run
  (or the compile time the library itself reports, where it does). Peers
  (PyTorch eager, scikit-learn, NumPy) have no compilation, so their compile
  column is empty.
- **Medians.** *run* is the median of ``--repeats`` timed calls (at least 5;
  fewer only under ``--quick``); every sample is kept in the JSON.
- **Results are waited for** (``jax.block_until_ready``) inside the timed region.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from dlvr_jax import _io

MIN_REPEATS = 5


@dataclasses.dataclass
class Config:
    """Options shared by the workloads."""

    quick: bool
    repeats: int
    threads: int


@dataclasses.dataclass
class Row:
    """One method on one case of a workload."""

    workload: str
    case: str
    method: str
    status: str = "ok"  # "ok", "skipped", "not available" or "failed"
    reason: str | None = None
    first_call_seconds: float | None = None
    compile_seconds: float | None = None
    compile_source: str | None = None
    run_seconds: float | None = None  # median of the samples
    samples: list[float] = dataclasses.field(default_factory=list)
    throughput: float | None = None
    unit: str | None = None
    speedup: float | None = None  # reference run time / this run time
    reference: str | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Target:
    """A target of the issue, and whether this run met it."""

    workload: str
    target: str
    measured: str
    met: bool | None  # None: could not be measured in this run


@dataclasses.dataclass
class Workload:
    """The outcome of one workload: its rows, targets and notes."""

    key: str
    title: str
    rows: list[Row]
    targets: list[Target] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    load_average: tuple[float, float] | None = None  # 1-minute load before and after


def threads() -> int:
    """The CPU cores this process may use (what XLA's CPU thread pool sizes itself by)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


_block: Callable[[Any], Any] = jax.block_until_ready


def wait(result: Any) -> Any:
    """Blocks until every JAX array in ``result`` is computed."""
    return _block(result)


def peer(name: str) -> tuple[Any, str | None]:
    """Imports a peer package: ``(module, None)``, or ``(None, why it is unavailable)``."""
    try:
        return importlib.import_module(name), None
    except Exception as error:  # ImportError, or a broken install
        return None, f"{name} is not importable ({type(error).__name__}: {error}); " + (
            "install the bench extra: pip install -e '.[bench]'"
        )


def first_call(run: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call, waited for, and its result."""
    start = time.perf_counter()
    result = wait(run())
    return time.perf_counter() - start, result


def interleaved(runners: Mapping[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """``repeats`` timed calls of each runner, the runners taking turns in each round."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            wait(run())
            samples[name].append(time.perf_counter() - start)
    return samples


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples))


def timed(
    workload: str,
    case: str,
    method: str,
    *,
    first: float,
    times: list[float],
    compiled: bool,
    throughput: float,
    unit: str,
    details: dict[str, Any],
) -> Row:
    """A measured row: the median run; for a compiled method, compile time = first call − median."""
    run = median(times)
    return Row(
        workload,
        case,
        method,
        first_call_seconds=first,
        compile_seconds=max(first - run, 0.0) if compiled else None,
        compile_source="first call − median run" if compiled else None,
        run_seconds=run,
        samples=times,
        throughput=throughput,
        unit=unit,
        details=details,
    )


def skipped(workload: str, case: str, method: str, reason: str, status: str = "skipped") -> Row:
    return Row(workload, case, method, status=status, reason=reason)


def set_speedups(rows: list[Row], reference: str) -> None:
    """Fills ``speedup`` (reference run time / run time) for the rows of each case."""
    times = {
        row.case: row.run_seconds
        for row in rows
        if row.method == reference and row.status == "ok" and row.run_seconds
    }
    for row in rows:
        if row.status == "ok" and row.run_seconds and row.case in times:
            row.speedup = times[row.case] / row.run_seconds
            row.reference = reference


def environment(config: Config) -> dict[str, Any]:
    """Versions and machine, for the header of both tables."""
    versions: dict[str, str | None] = {"jax": jax.__version__, "numpy": np.__version__}
    for name in ("jaxlib", "flax", "optax", "torch", "sklearn"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except Exception:
            versions[name] = None
    device = jax.devices()[0]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "threads": config.threads,
        "jax_backend": jax.default_backend(),
        "jax_device": str(getattr(device, "device_kind", device)),
        "compilation_cache_dir": getattr(jax.config, "jax_compilation_cache_dir", None),
        "versions": versions,
        "quick": config.quick,
        "repeats": config.repeats,
    }


# ----------------------------------------------------------------------------
# The two tables.


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _details(row: Row) -> str:
    shown = []
    for name, value in row.details.items():
        if isinstance(value, float):
            shown.append(f"{name} {_number(value, 4)}")
        elif isinstance(value, (int, str, bool)):
            shown.append(f"{name} {value}")
    return "; ".join(shown)


def markdown(meta: Mapping[str, Any], workloads: Sequence[Workload]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    lines = [
        "# dlvr_jax benchmarks",
        "",
        f"{meta['platform']}; {meta['cpu_count']} CPU cores, {meta['threads']} threads for "
        f"JAX and PyTorch; JAX backend {meta['jax_backend']} ({meta['jax_device']}); {versions}.",
        f"Medians of {meta['repeats']} timed repeats, methods taking turns; first call and "
        "compile time apart from run time"
        + (" (**--quick**: small sizes, not the issue's workloads)." if meta["quick"] else "."),
        "",
    ]
    if any(w.load_average and max(w.load_average) > 0.5 for w in workloads):
        lines += [
            "**Measured under load**: the 1-minute load average (below, per workload) shows "
            "other processes were running; timings are noisy.",
            "",
        ]
    targets = [t for w in workloads for t in w.targets]
    if targets:
        lines += ["## Targets", "", "| workload | target | measured | met |", "|---|---|---|---|"]
        for t in targets:
            met = "–" if t.met is None else ("yes" if t.met else "**no**")
            lines.append(f"| {t.workload} | {t.target} | {t.measured} | {met} |")
        lines.append("")
    for w in workloads:
        lines += [f"## {w.key}: {w.title}", ""]
        if w.load_average:
            before, after = w.load_average
            lines += [
                f"Load average {before:.2f} before, {after:.2f} after; {w.seconds:.0f} s.",
                "",
            ]
        lines += [
            "| case | method | first call (s) | compile (s) | run (s) | throughput | × ref "
            "| notes |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in w.rows:
            if row.status != "ok":
                reason = (row.reason or "").splitlines()[0] if row.reason else ""
                lines.append(
                    f"| {row.case} | {row.method} | – | – | – | – | – | "
                    f"{row.status}: {reason.replace('|', '/')} |"
                )
                continue
            throughput = (
                f"{_number(row.throughput)} {row.unit}" if row.throughput is not None else "–"
            )
            ratio = f"{_number(row.speedup)}×" if row.speedup is not None else "–"
            lines.append(
                f"| {row.case} | {row.method} | {_number(row.first_call_seconds)} "
                f"| {_number(row.compile_seconds)} | {_number(row.run_seconds)} | {throughput} "
                f"| {ratio} | {_details(row)} |"
            )
        references = sorted({row.reference for row in w.rows if row.reference})
        if references and not any(note.startswith("× ref") for note in w.notes):
            lines += ["", f"× ref: run time of {', '.join(references)} / run time of the method."]
        for note in w.notes:
            lines += ["", note]
        lines.append("")
    return "\n".join(lines)


def to_json(meta: Mapping[str, Any], workloads: Sequence[Workload]) -> str:
    document = {"meta": dict(meta), "workloads": [dataclasses.asdict(w) for w in workloads]}
    return json.dumps(document, indent=2, default=_json_default) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write(out: Path, meta: Mapping[str, Any], workloads: Sequence[Workload]) -> tuple[Path, Path]:
    """Writes ``results.md`` and ``results.json`` to ``out``, each atomically."""
    paths = (out / "results.md", out / "results.json")
    for path, text in zip(
        paths, (markdown(meta, workloads), to_json(meta, workloads)), strict=True
    ):
        with _io.atomic_open(path, "w") as stream:
            stream.write(text)  # type: ignore[call-overload]
    return paths
