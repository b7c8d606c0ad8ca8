"""The scheduling of compiles and work: which chunk programs exist, and how long a chunk is.

The contract::

    scheduler = Scheduler()                         # one per session
    scheduler.reset(shape, run, steps_per_epoch)    # a new configuration (shape, runner)
    size = scheduler.chunk_size(state)              # epochs of the next chunk (compiled)
    scheduler.warm(state)                           # compile ahead, in a background thread
    scheduler.ran(epochs, seconds, cached)          # the measured speed, for the next size
    pieces(epochs, scheduler.ready_sizes())         # epochs as compiled chunks (recovery)

A chunk runs ``k`` epochs with ``k`` from :data:`LADDER` (few sizes, so few
programs per shape), the largest whose chunk takes about
:data:`CHUNK_SECONDS`. The programs compiled so far are kept in one registry,
by (shape, ``k``), shared by all sessions of a process: a program is compiled
once (another thread that needs it waits), and a size not yet compiled is
compiled in the background while training goes on with the nearest compiled
one. :func:`bound_programs` bounds what a long-running server keeps.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import jax

__all__ = [
    "CHUNK_SECONDS",
    "LADDER",
    "MAX_SHAPES",
    "STEP_SECONDS_GUESS",
    "Scheduler",
    "bound_programs",
    "compile_once",
    "pieces",
]

CHUNK_SECONDS = 0.035
"""The wall time one training chunk aims at (the snapshot rate follows)."""

LADDER = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
"""The chunk sizes (epochs) a session uses: few, so that few programs are compiled per shape."""

STEP_SECONDS_GUESS = 20e-6
"""A first guess of one optimizer step's time, to pick the first chunk before it is measured."""

MAX_SHAPES = 48
"""Configurations of distinct shapes whose compiled programs are kept; one more clears them all."""

Runner = Callable[[Any, int], Any]
"""``run(state, epochs)``: one compiled chunk, returning what :func:`dlvr_jax.engine.run` does."""

# The chunk programs compiled so far, by (shape key, epochs), shared by all sessions; and
# those being compiled, with an event set when done (one compilation per program).
_READY: set[tuple[Any, int]] = set()
_WARMING: dict[tuple[Any, int], threading.Event] = {}
_LOCK = threading.Lock()
_SHAPES: set[Any] = set()

_clear_caches: Callable[[], None] = jax.clear_caches  # typed: mypy sees it as untyped


def bound_programs(shape: Hashable) -> None:
    """Clears JAX's compiled programs when a new shape would pass :data:`MAX_SHAPES`.

    Each XLA:CPU program holds memory maps; a long-running server whose users
    try many configurations would otherwise reach the kernel's limit. Sessions
    of the kept shapes recompile once, at their next chunk.
    """
    with _LOCK:
        if shape in _SHAPES:
            return
        if len(_SHAPES) >= MAX_SHAPES and not _WARMING:
            _SHAPES.clear()
            _READY.clear()
            _clear_caches()
        _SHAPES.add(shape)


def compile_once(key: tuple[Any, int], compile_it: Callable[[], None]) -> None:
    """Runs ``compile_it`` unless ``key`` is compiled; waits if another thread compiles it."""
    with _LOCK:
        if key in _READY:
            return
        event = _WARMING.get(key)
        owner = event is None
        if event is None:
            event = _WARMING[key] = threading.Event()
    if not owner:
        event.wait(timeout=120)
        return
    try:
        compile_it()
        with _LOCK:
            _READY.add(key)
    finally:
        with _LOCK:
            _WARMING.pop(key, None)
        event.set()


def pieces(epochs: int, sizes: tuple[int, ...]) -> list[int]:
    """``epochs`` as a sum of ``sizes`` (compiled programs) and ones, largest first.

    Examples:
        >>> pieces(13, (8, 2))
        [8, 2, 2, 1]
    """
    parts = []
    for size in (*sorted(sizes, reverse=True), 1):
        count, epochs = divmod(epochs, size)
        parts += [size] * count
    return parts


def _block(result: Any) -> None:
    int(result[3])  # waits for the run (its first-bad-epoch flag)


class Scheduler:
    """One session's chunk sizes and compiles, for its current shape.

    Attributes:
        shape: the key of the compiled programs (model, data shapes, batch size,
            loss, optimizer); None before :meth:`reset`.
        seconds_per_epoch: the measured time of one epoch (None until measured).
    """

    def __init__(self) -> None:
        self.shape: Hashable | None = None
        self.seconds_per_epoch: float | None = None
        self._run: Runner = _no_runner
        self._steps = 1

    def reset(self, shape: Hashable, run: Runner, steps_per_epoch: int) -> None:
        """A new configuration: its shape key, its chunk runner and optimizer steps per epoch."""
        bound_programs(shape)
        self.shape, self._run, self._steps = shape, run, steps_per_epoch
        self.seconds_per_epoch = None

    def run(self, state: Any, epochs: int) -> Any:
        """One compiled chunk of ``epochs`` epochs from ``state`` (noted as compiled)."""
        result = self._run(state, epochs)
        with _LOCK:
            _READY.add((self.shape, epochs))
        return result

    def is_ready(self, epochs: int) -> bool:
        """Whether the program of ``epochs`` epochs of this shape is compiled."""
        with _LOCK:
            return (self.shape, epochs) in _READY

    def ready_sizes(self) -> tuple[int, ...]:
        """The ladder's sizes compiled for this shape."""
        with _LOCK:
            return tuple(size for size in LADDER if (self.shape, size) in _READY)

    def ran(self, epochs: int, seconds: float) -> None:
        """Notes a compiled chunk's time (an average with the previous measure)."""
        per_epoch = seconds / epochs
        previous = self.seconds_per_epoch
        self.seconds_per_epoch = per_epoch if previous is None else 0.5 * previous + 0.5 * per_epoch

    def desired_size(self) -> int:
        """The ladder's largest size whose chunk fits in :data:`CHUNK_SECONDS` (at least 1)."""
        per_epoch = self.seconds_per_epoch
        if per_epoch is None:
            per_epoch = self._steps * STEP_SECONDS_GUESS
        fitting = [size for size in LADDER if size * per_epoch <= CHUNK_SECONDS]
        return max(fitting, default=LADDER[0])

    def chunk_size(self, state: Any) -> int:
        """The desired size if its program is compiled, else the nearest compiled one.

        A size not yet compiled is compiled in the background meanwhile, so
        training never stalls for a compilation once it runs; with nothing
        compiled yet, the desired size is compiled now (from ``state``).
        """
        desired = self.desired_size()
        ready = self.ready_sizes()
        if desired in ready:
            return desired
        if not ready:  # nothing to train with meanwhile: compile it now (or wait for it)
            run = self._run
            compile_once((self.shape, desired), lambda: _block(run(state, desired)))
            return desired
        nearest = min(ready, key=lambda size: abs(math.log(size / desired)))
        if desired / 2 <= nearest <= desired:  # fits, if not fully: no new program
            return nearest
        self.warm(state, desired)
        return nearest

    def warm(self, state: Any, size: int | None = None) -> None:
        """Compiles the chunk program of ``size`` epochs in a background thread.

        Without ``size`` (a new configuration): the first chunk's program, from
        a guess of the speed; then one timed run measures the speed, and the
        program of the size that fits :data:`CHUNK_SECONDS` is compiled too, so
        that Play trains at full speed from the start.
        """
        first = size is None
        size = self.desired_size() if size is None else size
        shape, run = self.shape, self._run
        key = (shape, size)
        with _LOCK:  # one compilation at a time per shape: they share the cores
            if any(warming[0] == shape for warming in _WARMING):
                return
            if key in _READY and not first:
                return

        def compile_it() -> None:
            with contextlib.suppress(Exception):  # the real run reports any error
                compile_once(key, lambda: _block(run(state, size)))
                if not first or self.seconds_per_epoch is not None or shape != self.shape:
                    return
                began = time.perf_counter()
                _block(run(state, size))
                self.seconds_per_epoch = (time.perf_counter() - began) / size
                desired = self.desired_size()
                if desired != size:
                    compile_once((shape, desired), lambda: _block(run(state, desired)))

        threading.Thread(target=compile_it, name="playground-warm", daemon=False).start()


def _no_runner(state: Any, epochs: int) -> Any:
    raise RuntimeError("Scheduler.reset was not called: no chunk runner")
