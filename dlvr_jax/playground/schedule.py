"""The scheduling of compiles and work: which chunk programs exist, and how long a chunk is.

The contract::

    scheduler = Scheduler()                         # one per session
    scheduler.reset(program, run, steps_per_epoch)  # a new configuration: keys, runner
    size = scheduler.chunk_size(state)              # epochs of the next chunk (compiled)
    scheduler.warm(state)                           # compile ahead, in a background thread
    scheduler.prepare(state)                        # the same, in this thread (a rehearsal)
    background(owner, jobs, cancel)                 # low-priority compiles of likely shapes
    training(session, True)                         # background compiles wait meanwhile
    busy()                                          # whether any compile runs now
    scheduler.ran(epochs, seconds)                  # the measured speed, for the next size
    pieces(epochs, scheduler.ready_sizes())         # epochs as compiled chunks (recovery)
    sweep_chunk(models, epochs, seconds_per_epoch)  # epochs per chunk of a sweep

A chunk runs ``k`` epochs with ``k`` from :data:`LADDER` (few sizes, so few
programs per shape), the largest whose chunk takes about
:data:`CHUNK_SECONDS`. Which programs are compiled is the package's one
compile-cache registry's to say (:mod:`dlvr_jax._compiled`: the engine notes
each program key it compiles, and the registry's bound clears them all); this
module only keeps the compilations in progress, so that a program is compiled
once (another thread that needs it waits) and a size not yet compiled is
compiled in the background while training goes on with the nearest compiled one.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from dlvr_jax import _compiled

__all__ = [
    "BACKGROUND_PENDING",
    "CHUNK_SECONDS",
    "FRAME_SECONDS",
    "LADDER",
    "OFF_CHUNKS",
    "PLAY_LOAD",
    "STEP_SECONDS_GUESS",
    "SWEEP_CHUNK_SECONDS",
    "TOLERANCE",
    "Pace",
    "Patience",
    "Scheduler",
    "background",
    "busy",
    "compile_once",
    "pending",
    "pieces",
    "stopping",
    "sweep_chunk",
    "training",
    "wait_until_idle",
]

CHUNK_SECONDS = 0.016
"""The wall time one training chunk aims at (the snapshot rate follows: about one per frame)."""

FRAME_SECONDS = 1 / 60
"""One animation frame of the page: a paced session trains about ``speed / 60`` epochs a chunk."""

BACKGROUND_PENDING = 8
"""The most background compiles waiting at once (the oldest are dropped past it)."""

LADDER = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
"""The chunk sizes (epochs) a session uses: few, so that few programs are compiled per shape."""

TOLERANCE = (4, 2)
"""How far a compiled chunk size may be from the desired one and still be used, rather
than compile the desired: up to 4 times shorter (more chunks, each a dispatch) or twice
as long (a snapshot every two frames)."""

OFF_CHUNKS = 16
"""Chunks in a row with no compiled size within :data:`TOLERANCE` before another size
is compiled (a passing slowdown does not start a compile)."""

PLAY_LOAD = 2.0
"""How much longer an epoch takes in Play than alone (the page's drawing and the
snapshots share the cores): the first programs of a configuration are compiled for
that speed, so that Play runs on them rather than compile another size meanwhile."""

STEP_SECONDS_GUESS = 20e-6
"""A first guess of one optimizer step's time, to pick the first chunk before it is measured."""

SWEEP_CHUNK_SECONDS = 0.2
"""The wall time one chunk of a sweep aims at: a closed tab's sweep stops within it."""

Runner = Callable[[Any, int], Any]
"""``run(state, epochs)``: one compiled chunk, returning what the engine's epoch program does."""

Program = Callable[[int], Hashable]
"""``program(epochs)``: the registry's key of the chunk program of ``epochs`` epochs."""

# The chunk programs being compiled, by program key, with an event set when done.
_WARMING: dict[Hashable, threading.Event] = {}
_LOCK = threading.Lock()


def compile_once(key: Hashable, compile_it: Callable[[], None]) -> None:
    """Runs ``compile_it`` unless program ``key`` is compiled; waits if another thread is.

    Compiled means noted in the registry (:func:`dlvr_jax._compiled.noted`)
    and not being compiled now.
    """
    with _LOCK:
        event = _WARMING.get(key)
        if event is None and _compiled.noted(key):
            return
        owner = event is None
        if event is None:
            event = _WARMING[key] = threading.Event()
    if not owner:
        event.wait(timeout=120)
        return
    try:
        compile_it()
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


def sweep_chunk(models: int, epochs: int, seconds_per_epoch: float) -> int:
    """Epochs per chunk of a sweep of ``models`` models, so that a chunk takes about
    :data:`SWEEP_CHUNK_SECONDS` (``seconds_per_epoch``: one model's epoch).

    The models are counted as if trained one after another (a ``vmap`` is
    faster: the bound is safe). The size is one of :data:`LADDER`, so that
    sweeps reuse their programs whatever the measured speed: the largest that
    divides ``epochs`` (no shorter last chunk, whose program would be one
    more), unless it is under a quarter of the largest that fits (too many
    chunks cost more than a compile); a sweep that fits in one chunk is one.

    Examples:
        >>> sweep_chunk(models=4, epochs=2000, seconds_per_epoch=1e-3)  # 50 fit; 16 divides
        16
        >>> sweep_chunk(models=4, epochs=1998, seconds_per_epoch=1e-3)  # 2 divides: 32 + a last
        32
        >>> sweep_chunk(models=4, epochs=30, seconds_per_epoch=1e-3)
        30
        >>> sweep_chunk(models=128, epochs=100, seconds_per_epoch=0.01)  # one epoch > 0.2 s
        1
    """
    fitting = max(1, int(SWEEP_CHUNK_SECONDS / (models * seconds_per_epoch)))
    if fitting >= epochs:
        return epochs
    sizes = [size for size in LADDER if size <= fitting]
    divisor = max(size for size in sizes if epochs % size == 0)
    return divisor if 4 * divisor >= fitting else max(sizes)


class Pace:
    """When the next chunk of a paced session is due: ``speed`` epochs per second on average.

    A slow chunk is not made up later (the debt is at most one frame); 0 is no pace.
    """

    def __init__(self) -> None:
        self.speed = 0
        self.due = 0.0

    def set(self, speed: int) -> int:
        """A new speed (from now); returns the most epochs a chunk may train (one frame's)."""
        self.speed, self.due = speed, 0.0
        return max(1, int(speed * FRAME_SECONDS)) if speed else LADDER[-1]

    def wait(self) -> float:
        """Seconds until the next chunk is due (<= 0: now)."""
        return self.due - time.perf_counter() if self.speed else 0.0

    def ran(self, began: float, epochs: int) -> None:
        """A chunk of ``epochs`` epochs began at ``began`` (``time.perf_counter()``)."""
        if self.speed:
            self.due = max(self.due, began - FRAME_SECONDS) + epochs / self.speed


class Patience:
    """The early stop's memory: the best test loss so far and the epoch it was reached.

    Attributes:
        best: the lowest test loss seen (inf before any).
        epoch: the epoch it was reached at (or the epoch Play counts again from).
    """

    def __init__(self) -> None:
        self.best = math.inf
        self.epoch = 0

    def note(self, first: int, losses: Any) -> None:
        """A chunk's per-epoch test losses; its epochs are ``first + 1, first + 2, ...``."""
        for i, loss in enumerate(losses.tolist()):
            if loss < self.best:
                self.best, self.epoch = float(loss), first + i + 1

    def expired(self, epoch: int, patience: int) -> bool:
        """Whether ``patience`` epochs (> 0) passed since the best, at ``epoch``."""
        return patience > 0 and epoch - self.epoch >= patience

    def report(self) -> dict[str, Any]:
        """The ``status`` frame's ``stopped``."""
        return {"reason": "patience", "bestEpoch": self.epoch, "bestTestLoss": self.best}


def _block(result: Any) -> None:
    int(result[3])  # waits for the run (its first-bad-epoch flag)


class Scheduler:
    """One session's chunk sizes and compiles, for its current configuration.

    Attributes:
        seconds_per_epoch: the measured time of one epoch (None until measured).
    """

    def __init__(self) -> None:
        self.seconds_per_epoch: float | None = None
        self.most = LADDER[-1]
        self._program: Program = _no_program
        self._run: Runner = _no_runner
        self._steps = 1
        self._off = 0  # chunks in a row with no compiled size within TOLERANCE

    def reset(self, program: Program, run: Runner, steps_per_epoch: int) -> None:
        """A new configuration: its program keys, its chunk runner and steps per epoch."""
        self._program, self._run, self._steps = program, run, steps_per_epoch
        self.seconds_per_epoch = None
        self._off = 0

    def run(self, state: Any, epochs: int) -> Any:
        """One compiled chunk of ``epochs`` epochs from ``state`` (an ``engine.loop`` chunk)."""
        return self._run(state, epochs)

    def is_ready(self, epochs: int) -> bool:
        """Whether the program of ``epochs`` epochs is compiled (and not being compiled)."""
        key = self._program(epochs)
        with _LOCK:
            return key not in _WARMING and _compiled.noted(key)

    def ready_sizes(self) -> tuple[int, ...]:
        """The ladder's sizes compiled for this configuration."""
        return tuple(size for size in LADDER if self.is_ready(size))

    def ran(self, epochs: int, seconds: float) -> None:
        """Notes a compiled chunk's time (an average with the previous measure)."""
        per_epoch = seconds / epochs
        previous = self.seconds_per_epoch
        self.seconds_per_epoch = per_epoch if previous is None else 0.5 * previous + 0.5 * per_epoch

    def epoch_seconds(self) -> float:
        """One epoch's time: measured, or guessed from the steps per epoch."""
        if self.seconds_per_epoch is not None:
            return self.seconds_per_epoch
        return self._steps * STEP_SECONDS_GUESS

    def desired_size(self, load: float = 1.0) -> int:
        """The ladder's largest size whose chunk fits in :data:`CHUNK_SECONDS` and in
        :attr:`most` epochs (a paced session's epochs per frame); at least 1.

        ``load``: a factor on the epoch's time (:data:`PLAY_LOAD` for a size chosen
        before Play, from a speed measured or guessed alone)."""
        per_epoch = self.epoch_seconds() * load
        fitting = [
            size for size in LADDER if size * per_epoch <= CHUNK_SECONDS and size <= self.most
        ]
        return max(fitting, default=LADDER[0])

    def compiling(self) -> bool:
        """Whether a chunk program of this configuration is being compiled now."""
        program = self._program
        with _LOCK:
            return any(program(size) in _WARMING for size in LADDER)

    def chunk_size(self, state: Any) -> int:
        """The desired size if its program is compiled, else the nearest compiled one.

        A compiled size within :data:`TOLERANCE` of the desired one is used as
        it is: the measured speed wanders from chunk to chunk (the snapshots
        and the page share the cores), and a compile in the middle of Play
        costs seconds of a core, far more than a chunk a few times too short
        or twice too long. Further off for :data:`OFF_CHUNKS` chunks in a row
        (or at once when every compiled size is longer than the pace allows),
        and with no compile running (it slows every chunk: its measures are not
        the session's speed), the desired size is compiled in the background
        meanwhile, so training never stalls for a compilation once it runs;
        with nothing compiled yet, the desired size is compiled now (from
        ``state``).
        """
        desired = self.desired_size()
        ready = self.ready_sizes()
        if desired in ready:
            return desired
        if not ready:  # nothing to train with meanwhile: compile it now (or wait for it)
            run = self._run
            compile_once(self._program(desired), lambda: _block(run(state, desired)))
            return desired
        usable = self._usable(ready, desired)
        if usable is not None:
            self._off = 0
            return usable
        self._off += 1
        paced = min(ready) > self.most  # every compiled size outruns the pace: not noise
        if (paced or self._off >= OFF_CHUNKS) and not busy():
            self.warm(state, desired)
        return min(ready, key=lambda size: abs(math.log(size / desired)))

    def _usable(self, ready: tuple[int, ...], desired: int) -> int | None:
        """The compiled size to use for ``desired`` epochs, if one is within
        :data:`TOLERANCE`: the longest that fits, else the shortest too long."""
        shorter, longer = TOLERANCE
        usable = [size for size in ready if desired / shorter <= size <= desired * longer]
        usable = [size for size in usable if size <= self.most] or usable
        fitting = [size for size in usable if size <= desired]
        return max(fitting) if fitting else min(usable, default=None)

    def warm(self, state: Any, size: int | None = None) -> None:
        """Compiles the chunk program of ``size`` epochs in a background thread.

        Without ``size`` (a new configuration): the first chunk's program, from
        a guess of the speed; then one timed run measures the speed, and the
        program of the size that fits :data:`CHUNK_SECONDS` is compiled too
        (unless the first is within :data:`TOLERANCE` of it), so that Play
        trains at full speed from the start.
        """
        first = size is None
        size = self.desired_size() if size is None else size
        program, run = self._program, self._run
        key = program(size)
        with _LOCK:  # one compilation at a time per configuration: they share the cores
            if any(program(ladder) in _WARMING for ladder in LADDER):
                return
        if not first and self.is_ready(size):
            return

        def compile_it() -> None:
            with contextlib.suppress(Exception):  # the real run reports any error
                if first:
                    self._prepare(state, program, run)
                else:
                    compile_once(key, lambda: _block(run(state, size)))

        threading.Thread(target=compile_it, name="playground-warm").start()

    def prepare(self, state: Any) -> None:
        """A new configuration's programs, compiled in this thread: the first chunk's (from
        a guess of the speed), then, after one timed run, the one of the size that fits
        unless the first is within :data:`TOLERANCE` of it."""
        self._prepare(state, self._program, self._run)

    def _prepare(self, state: Any, program: Program, run: Runner) -> None:
        size = self.desired_size(PLAY_LOAD)
        compile_once(program(size), lambda: _block(run(state, size)))
        if self.seconds_per_epoch is not None or program is not self._program or stopping():
            return
        began = time.perf_counter()
        _block(run(state, size))
        self.seconds_per_epoch = (time.perf_counter() - began) / size
        desired = self.desired_size(PLAY_LOAD)
        # The guess was too far off (unless another compile slowed the timed run).
        if self._usable((size,), desired) is None and not busy():
            compile_once(program(desired), lambda: _block(run(state, desired)))


# ----------------------------------------------------------------------------
# Background compiles: one low-priority thread, a few jobs, the oldest dropped.

_JOBS: deque[tuple[object, threading.Event, Callable[[], None]]] = deque()
_JOBS_READY = threading.Condition()
_WORKER: list[threading.Thread] = []
_RUNNING: list[object] = []  # the owner of the job running now
_TRAINING: weakref.WeakSet[object] = weakref.WeakSet()  # the owners training now


def busy() -> bool:
    """Whether a chunk program or a background job is being compiled now, by any session."""
    with _LOCK:
        if _WARMING:
            return True
    return bool(_RUNNING)


def stopping() -> bool:
    """Whether the interpreter is exiting (its main thread ended): compiling threads stop
    between steps. They are not daemons: XLA aborts the process when a daemon thread
    returns from a compile while the interpreter is being finalized."""
    return not threading.main_thread().is_alive()


def background(owner: object, jobs: list[Callable[[], None]], cancel: threading.Event) -> None:
    """Queues ``jobs`` (compiles ahead) for one low-priority background thread.

    They replace ``owner``'s jobs still waiting (a new configuration has new
    likely neighbours); at most :data:`BACKGROUND_PENDING` wait in all (the
    oldest are dropped), and a job whose ``cancel`` is set (its session
    closed) is skipped; once the interpreter exits (:func:`stopping`), the
    waiting jobs are dropped and the thread ends after the step in progress.
    One job runs at a time, at the lowest CPU priority the system gives a
    thread, and none starts while a session trains (:func:`training`), so that
    compiles take only the time a learner spends looking.
    A job's exception is dropped: the real configuration reports it if it is used.
    """
    with _JOBS_READY:
        kept = [job for job in _JOBS if job[0] is not owner and not job[1].is_set()]
        kept += [(owner, cancel, job) for job in jobs]
        _JOBS.clear()
        _JOBS.extend(kept[-BACKGROUND_PENDING:])
        if not _WORKER or not _WORKER[0].is_alive():
            _WORKER[:] = [threading.Thread(target=_work, name="playground-ahead")]
            _WORKER[0].start()
        _JOBS_READY.notify()


def training(owner: object, on: bool) -> None:
    """Notes whether ``owner`` (a session) trains now.

    The background compiles wait while any owner trains: a compile would take
    the cores that its training and the page's drawing need (on 2 cores, compiles
    ahead beside a live session halved its snapshots drawn per second). A
    compile already running finishes.
    """
    with _JOBS_READY:
        if on:
            _TRAINING.add(owner)
        else:
            _TRAINING.discard(owner)
        _JOBS_READY.notify()


def wait_until_idle() -> bool:
    """Waits while a session trains (:func:`training`), between the compiles of a
    background job; False once the interpreter exits (:func:`stopping`)."""
    with _JOBS_READY:
        while _TRAINING:
            if stopping():
                return False
            _JOBS_READY.wait(timeout=0.1)
    return not stopping()


def pending(owner: object) -> int:
    """Background jobs of ``owner`` waiting or running."""
    with _JOBS_READY:
        return sum(1 for job in _JOBS if job[0] is owner) + _RUNNING.count(owner)


def _work() -> None:
    with contextlib.suppress(OSError, AttributeError):  # lowest priority, for this thread only
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    while True:
        with _JOBS_READY:
            while not _JOBS or _TRAINING:  # nothing to do, or a session trains: wait
                if stopping():
                    _JOBS.clear()
                    return
                _JOBS_READY.wait(timeout=0.1)
            if stopping():
                _JOBS.clear()
                return
            owner, cancel, job = _JOBS.popleft()
            if cancel.is_set():
                continue
            _RUNNING[:] = [owner]
        try:
            with contextlib.suppress(Exception):
                job()
        finally:
            with _JOBS_READY:
                _RUNNING.clear()


def _no_program(epochs: int) -> Hashable:
    return ("no configuration", epochs)


def _no_runner(state: Any, epochs: int) -> Any:
    raise RuntimeError("Scheduler.reset was not called: no chunk runner")
