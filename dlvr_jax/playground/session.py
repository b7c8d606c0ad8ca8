"""One Playground session: the state machine of one browser tab's configuration and training.

The contract::

    session = Session()                       # the defaults: circle, [4, 2] tanh, SGD 0.03
    frames = session.handle(message)          # a checked message -> the frames to send back
    frames = session.train_chunk()            # while playing: one compiled chunk, maybe a snapshot
    session.close()                           # the socket closed: stop for good

A frame is a ``dict`` (sent as JSON text) or ``bytes`` (a binary snapshot,
:func:`dlvr_jax.playground.protocol.encode_snapshot`). The server calls these
from a worker thread, never on its event loop; :attr:`Session.lock` makes
each call atomic.

The rooms beside it: :mod:`.problem` prepares a configuration's data, model
and loss (through :func:`dlvr_jax.jobs.prepare_problem`, as the CLI does);
:mod:`.schedule` decides which chunk programs to compile and how many epochs
a chunk runs; :mod:`.views` renders snapshots and the other frames;
:mod:`.upload` reads a CSV; :mod:`.export` writes the reproducing script.
This module re-exports ``signed_mse`` (scripts exported by earlier versions
import it from here), ``UploadError`` and ``load_upload``.

How it trains: through the engine's one host loop (:func:`dlvr_jax.engine.loop`),
one chunk of ``k`` epochs at a time (:class:`.schedule.Scheduler` picks ``k``);
one compiled program per (shapes, ``k``), reused by every chunk and every
session of that shape, and counted toward the package's one compile-cache
bound (:mod:`dlvr_jax._compiled`). The learning rate lives in the optimizer's
state (:func:`dlvr_jax.optim.injected`) and the L1/L2 weights in the
:class:`~dlvr_jax.train.TrainState`, so changing them never recompiles. A run
that goes to NaN/inf is stopped at the last good state, which the loop finds
by running the good epochs of the chunk again in pieces already compiled
(bit-identical). :meth:`Session.close` sets :attr:`Session.cancel`: a chunk
or a sweep in progress stops at its next chunk boundary.

Reproducibility: the run is ``train.create_train_state`` then one
``train.fit(..., state=state)`` per stretch of epochs at one learning rate and
regularisation (:attr:`Session.segments`); :func:`dlvr_jax.playground.export.script`
writes exactly that, with dlvr_jax's public API, and gives the same bits.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from dlvr_jax import _compiled, data, engine, optim, parallel, train
from dlvr_jax.playground import export, protocol, schedule, views
from dlvr_jax.playground.problem import Prepared, prepare, signed_mse
from dlvr_jax.playground.upload import UploadError, load_upload

__all__ = [
    "MAX_IN_FLIGHT",
    "Session",
    "UploadError",
    "consistent",
    "hello_frame",
    "initial_config",
    "load_upload",
    "neighbours",
    "new_id",
    "pause_seconds",
    "signed_mse",
]

MAX_IN_FLIGHT = 1
"""Snapshots sent and not yet acknowledged, at most. The page acknowledges one when it
takes it (before drawing), so one in flight keeps the snapshots evenly spaced: with two,
they came in pairs within one animation frame and only one of each pair was drawn."""

_RESUMABLE = ("learningRate", "regularization", "regularizationRate")
"""Fields whose change keeps training from the current state."""

_VIEW_FIELDS = ("resolution",)
"""Fields whose change only redraws the snapshot."""

_PACE_FIELDS = ("speed", "patience")
"""Fields whose change only paces training (never its numbers)."""

_LONGEST_PAUSE = 0.1
"""The longest a paced chunk sleeps at once (a pause or a close is seen within it)."""

_DATA_FIELDS = ("dataset", "noise", "trainRatio", "points", "seed")
"""Fields whose change sends the points again."""


def _refuse(message: str) -> protocol.ProtocolError:
    return protocol.ProtocolError(message)


def consistent(
    config: dict[str, Any], changes: dict[str, Any], upload_task: str | None
) -> dict[str, Any]:
    """``changes`` to ``config`` with the cross-field rules applied (problem, dataset, loss).

    Args:
        config: the current configuration.
        changes: checked fields (:func:`~.protocol.check_config`).
        upload_task: the uploaded CSV's task, or None without an upload.

    Returns:
        The fields that change, the rules' consequences included.

    Raises:
        ProtocolError: for a combination the rules refuse (a problem against
            its dataset, a loss against a regression, an upload not sent).
    """
    merged = {**config, **changes}
    if "dataset" in changes:
        if changes["dataset"] == "upload":
            if upload_task is None:
                raise _refuse(
                    "dataset 'upload' needs an uploaded CSV first; send an upload message"
                )
            problem = upload_task
        else:
            regression = changes["dataset"] in data.names("regression")
            problem = "regression" if regression else "classification"
        if "problem" in changes and changes["problem"] != problem:
            raise _refuse(
                f"problem {changes['problem']!r} does not fit dataset "
                f"{changes['dataset']!r}, which is {problem}"
            )
        merged["problem"] = problem
    elif "problem" in changes and changes["problem"] != config["problem"]:
        if merged["dataset"] == "upload":
            raise _refuse(
                f"problem {changes['problem']!r} does not fit the uploaded CSV, which is "
                f"{upload_task}"
            )
        merged["dataset"] = "plane" if changes["problem"] == "regression" else "circle"
    if merged["problem"] == "regression":
        if changes.get("loss", "mse") != "mse":
            raise _refuse(f"loss {changes['loss']!r} does not fit a regression; expected 'mse'")
        merged["loss"] = "mse"
    elif "loss" not in changes and merged["problem"] != config["problem"]:
        merged["loss"] = "cross_entropy"
    return {name: value for name, value in merged.items() if value != config.get(name)}


def neighbours(hidden: list[int]) -> list[list[int]]:
    """The network shapes a learner most likely tries next from ``hidden``, likeliest first.

    One layer more (a copy of the last, as the page's "+" adds; 2 units after
    none) and one fewer, then one unit more or fewer in each layer, within
    :data:`protocol.LIMITS`.

    Examples:
        >>> neighbours([4, 2])
        [[4, 2, 2], [4], [5, 2], [3, 2], [4, 3], [4, 1]]
    """
    most_layers = protocol.LIMITS["hiddenLayers"][1]
    low, high = protocol.LIMITS["hiddenWidth"]
    shapes = []
    if len(hidden) < most_layers:
        shapes.append([*hidden, hidden[-1] if hidden else 2])
    if hidden:
        shapes.append(hidden[:-1])
    for i, width in enumerate(hidden):
        for changed in (width + 1, width - 1):
            if low <= changed <= high:
                shapes.append([*hidden[:i], changed, *hidden[i + 1 :]])
    return shapes


def _rehearsal_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """What decides a configuration's compiled programs (its pace aside)."""
    return tuple(
        (name, tuple(value) if isinstance(value, list) else value)
        for name, value in sorted(config.items())
        if name not in _PACE_FIELDS and name not in _RESUMABLE
    )


def _rehearse(config: dict[str, Any]) -> None:
    """Compiles what a session of ``config`` needs before its first trained snapshot.

    Its init, its first chunks (:meth:`.schedule.Scheduler.prepare`) and its
    snapshot, through a session that is then dropped: the programs stay in the
    registry (:mod:`dlvr_jax._compiled`, which also remembers the rehearsal).
    """

    def rehearse() -> bool:
        session = Session(config, precompile=False)  # the data and the init program
        for step in (session.snapshot, functools.partial(session.scheduler.prepare, session.state)):
            # One compile at a time, none while a session trains (its cores are taken),
            # so that neither a live session nor an exit waits long for a rehearsal.
            if not schedule.wait_until_idle():
                return False
            step()
        return True

    key = ("playground.rehearsed", _rehearsal_key(config))
    if not schedule.stopping():
        _compiled.lookup(key, rehearse)


class _Counted:
    """A cancel token (:class:`dlvr_jax.engine.Cancel`) that counts the chunks it is asked at."""

    def __init__(self, event: threading.Event, count: Callable[[], None]) -> None:
        self.event, self.count = event, count

    def is_set(self) -> bool:
        self.count()
        return self.event.is_set()


def new_id() -> str:
    """A new session's id: 12 random hexadecimal digits."""
    return uuid.uuid4().hex[:12]


def initial_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new session's effective configuration: the protocol's defaults, then ``config``.

    ``config``'s fields are checked (:func:`~.protocol.check_config`) and the
    cross-field rules applied (:func:`consistent`). Builds no data and no model:
    cheap enough for the event loop, so that a server can greet a new tab
    (:func:`hello_frame`) before its :class:`Session` exists.

    Raises:
        ProtocolError: for a field or a combination the protocol refuses.
    """
    effective = dict(protocol.DEFAULT_CONFIG)
    if config:
        effective.update(consistent(effective, protocol.check_config(config), None))
    return effective


def hello_frame(session_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """The ``hello`` frame of the session ``session_id`` whose configuration is ``config``."""
    return {"type": "hello", "version": protocol.VERSION, "session": session_id,
            "config": dict(config), "options": protocol.options(),
            "limits": dict(protocol.LIMITS)}  # fmt: skip


class Session:
    """One browser tab's Playground: configuration, data, model, state and training.

    Attributes:
        id: the session's id (sent in ``hello``).
        config: the effective configuration (the protocol's field names).
        prepared: the configuration's data, model and loss (:class:`~.problem.Prepared`).
        state: the current :class:`~dlvr_jax.train.TrainState`.
        closed: whether the socket closed (nothing runs any more).
        cancel: set by :meth:`close`; the work in progress (a chunk, a sweep)
            stops at its next chunk (:class:`dlvr_jax.engine.Cancelled`).
        lock: held by every public method but an ``ack``'s (which only updates
            :attr:`unacknowledged`); the server calls them from worker threads.
        segments: ``[epochs, learning_rate, l1, l2]`` stretches of this run
            (what the exported script replays).
        chunks: compiled chunks run so far (a closed session's count stops).
        work_chunks: chunks of sweeps started so far (their progress).
        diverged: the 1-based epoch at which the run diverged, or None.
        unacknowledged: the epochs of snapshots sent and not yet acknowledged.
        upload, upload_text, upload_name: the uploaded CSV (its
            :class:`~dlvr_jax.data.Table`: data, task, class names), text and file name.
        precompile: compile a new configuration's first chunk at once, in a background
            thread (so Play starts without waiting); with ``ahead``, its :func:`neighbours` too.
        compiling_since: when Play began waiting for the network's program, or None.
        stopped: why training stopped by itself (``status``'s ``stopped``), or None.
    """

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        precompile: bool = True,
        ahead: bool = True,
        session_id: str | None = None,
    ) -> None:
        self.id = new_id() if session_id is None else session_id
        self.precompile = precompile
        self.ahead = ahead
        self.lock = threading.RLock()
        self._acks = threading.Lock()  # guards unacknowledged (acks do not take the lock)
        self.config: dict[str, Any] = initial_config(config)
        self.upload: data.Table | None = None
        self.upload_text: str | None = None
        self.upload_name: str | None = None
        self.playing = False
        self.closed = False
        self.cancel = threading.Event()
        self.chunks = 0
        self.work_chunks = 0
        self.diverged: int | None = None
        self.unacknowledged: list[int] = []
        self.segments: list[list[Any]] = []
        self.compiling_since: float | None = None
        self.stopped: dict[str, Any] | None = None
        self._best = schedule.Patience()
        self._pacer = schedule.Pace()
        self.scheduler = schedule.Scheduler()
        self._records = views.Records()
        self._build()

    # ------------------------------------------------------------------ setup

    def _upload_task(self) -> str | None:
        return None if self.upload is None else self.upload.task

    def _build(self) -> None:
        """Data, model and a fresh state from :attr:`config` (epoch 0)."""
        self.prepared: Prepared = prepare(self.config, self.upload)
        self._reset_state()
        if self.precompile and self.ahead and self.config["dataset"] != "upload":
            _compile_ahead(self)

    def _penalties(self) -> tuple[float, float]:
        rate = float(self.config["regularizationRate"])
        kind = self.config["regularization"]
        return (rate if kind == "l1" else 0.0, rate if kind == "l2" else 0.0)

    def _batch_size(self) -> int:
        return min(int(self.config["batchSize"]), int(self.prepared.train.x.shape[0]))

    def _reset_state(self) -> None:
        p = self.prepared
        l1, l2 = self._penalties()
        tx = optim.injected(self.config["optimizer"])
        state = train.create_train_state(
            p.init_key, p.model, tx, p.train.x, loss=p.loss, task=p.task, l1=l1, l2=l2
        )
        self.state = state.replace(
            opt_state=optim.with_learning_rate(state.opt_state, self.config["learningRate"])
        )
        self.segments = []
        with self._acks:
            self.unacknowledged = []
        self.diverged = None
        self.stopped = None
        self._best = schedule.Patience()
        self._records = views.Records()
        batch_size = self._batch_size()
        steps = -(-int(p.train.x.shape[0]) // batch_size)
        plan = engine.FitPlan(self.state, p.train, p.test, 1, batch_size, 1, "raise", None)
        shapes = self.state  # the program keys depend on its structure and shapes only

        @functools.cache  # asked for every ladder size, several times a chunk
        def program(epochs: int) -> Any:
            return engine.program_key(shapes, p.train, p.test, epochs, batch_size)

        self.scheduler.reset(program, plan.run_chunk, steps)
        self._pace()
        if self.precompile:
            self.warm()

    @property
    def playing(self) -> bool:
        """Whether the server trains between messages (told to :func:`.schedule.training`)."""
        return self._playing

    @playing.setter
    def playing(self, value: bool) -> None:
        self._playing = value
        schedule.training(self, value)

    @property
    def epoch(self) -> int:
        """Epochs trained since the last reset."""
        return int(self.state.epoch)

    # --------------------------------------------------------------- messages

    def status(self) -> dict[str, Any]:
        """The ``status`` frame; ``compiling`` (seconds so far) while Play waits for the
        network's first program, ``stopped`` when training stopped by itself."""
        frame: dict[str, Any] = {"type": "status", "playing": self.playing, "epoch": self.epoch}
        if self.playing and self.compiling_since is not None:
            frame["compiling"] = round(time.perf_counter() - self.compiling_since, 1)
        if self.stopped is not None:
            frame["stopped"] = dict(self.stopped)
        return frame

    def _pace(self) -> None:
        """The scheduler's largest chunk: the epochs of one frame at :attr:`config`'s speed."""
        self.scheduler.most = self._pacer.set(int(self.config["speed"]))

    def hello(self) -> list[Any]:
        """The first frames: ``hello`` (:meth:`greeting`), ``data`` and the epoch-0 snapshot."""
        with self.lock:
            return [self.greeting(), self.data_frame(), self.snapshot(force=True)]

    def greeting(self) -> dict[str, Any]:
        """The ``hello`` frame alone (:func:`hello_frame`)."""
        return hello_frame(self.id, self.config)

    def data_frame(self) -> dict[str, Any]:
        """The ``data`` frame: the raw points of the train and test sets."""
        return views.data_frame(self.prepared)

    def handle(self, message: dict[str, Any]) -> list[Any]:
        """The frames answering one checked message (see :func:`protocol.parse_message`).

        Raises:
            ProtocolError: for a message that does not fit the session (e.g.
                a problem type against the dataset); the session is unchanged.
        """
        kind = message["type"]
        if kind == "ack":  # not behind a chunk in progress: the next snapshot may go at once
            epoch = message["epoch"]
            with self._acks:
                self.unacknowledged = [e for e in self.unacknowledged if e > epoch]
            return []
        with self.lock:
            if kind == "config":
                return self._configure(message["config"])
            if kind == "play":
                self.playing = self.diverged is None
                if self.stopped is not None:  # patience counts again from here
                    self.stopped = None
                    self._best.epoch = self.epoch
                self._pacer.due = 0.0
                return [self.status()]
            if kind == "pause":  # the state it stopped at (a paced run skips snapshots)
                was, self.playing = self.playing, False
                return [*([self.snapshot(force=True)] if was else []), self.status()]
            if kind == "step":
                self.playing = False
                frames: list[Any] = []
                if self.diverged is None:
                    frames = self._advance(1, force_snapshot=True)
                return [*frames, self.status()]
            if kind == "reset":
                self.playing = False
                self._reset_state()
                return [self.status(), self.snapshot(force=True)]
            if kind == "regenerate":
                return self._regenerate()
            if kind == "upload":
                return _upload(self, message["name"], message["csv"])
            if kind == "export":
                return [self.export()]
            if kind == "sweep":
                return [self.sweep(message["learningRates"], message["seeds"], message["epochs"])]
        raise protocol.ProtocolError(f"type {kind!r} is not handled")  # parse_message stops these

    def _config_frame(self, reset: bool) -> dict[str, Any]:
        return {"type": "config", "config": dict(self.config), "reset": reset}

    def _regenerate(self) -> list[Any]:
        self.playing = False
        self.config["seed"] = (self.config["seed"] + 1) % (protocol.LIMITS["seed"][1] + 1)
        self._build()
        return [
            self._config_frame(True), self.data_frame(), self.status(), self.snapshot(force=True)
        ]  # fmt: skip

    def _configure(self, changes: dict[str, Any]) -> list[Any]:
        changes = consistent(self.config, changes, self._upload_task())
        if not changes:
            return [self._config_frame(False)]
        before = dict(self.config)
        self.config.update(changes)
        if set(changes) <= set(_RESUMABLE):
            l1, l2 = self._penalties()
            self.state = self.state.replace(
                opt_state=optim.with_learning_rate(
                    self.state.opt_state, self.config["learningRate"]
                ),
                l1=jnp.float32(l1),
                l2=jnp.float32(l2),
            )
            return [self._config_frame(False)]
        if set(changes) <= set(_VIEW_FIELDS):
            return [self._config_frame(False), self.snapshot(force=True)]
        if set(changes) <= set(_PACE_FIELDS):
            self._pace()
            return [self._config_frame(False)]
        try:
            self._build()
        except Exception:
            self.config = before
            raise
        # Playing goes on from epoch 0 of the new configuration (as in the TF Playground);
        # while its program compiles, the status says so.
        self.compiling_since = None
        frames: list[Any] = [self._config_frame(True)]
        if set(_DATA_FIELDS) & set(changes):
            frames.append(self.data_frame())
        return [*frames, self.status(), self.snapshot(force=True)]

    # --------------------------------------------------------------- training

    def train_chunk(self) -> list[Any]:
        """One chunk of training if playing: the frames to send (a snapshot, maybe ``diverged``).

        Paced by ``config.speed`` (:class:`.schedule.Pace`; sleeps without the
        lock). While the network's first program compiles, the first call
        returns a ``status`` that says ``compiling``, later ones wait (without
        the lock); the first chunk after it sends the ``status`` again.
        """
        with self.lock:
            if not self._may_train():
                return []
            if not self.scheduler.ready_sizes():
                if self.compiling_since is None:
                    self.compiling_since = time.perf_counter()
                    self.scheduler.warm(self.state)  # unless it is compiling already
                    return [self.status()]
                waiting = self.scheduler.compiling()
            else:
                waiting = False
            sleep = _LONGEST_PAUSE if waiting else self._pacer.wait()
        if sleep > 0:
            time.sleep(min(sleep, _LONGEST_PAUSE))
            if waiting or sleep > _LONGEST_PAUSE:
                return []
        with self.lock:
            if not self._may_train():
                return []
            began = time.perf_counter()
            epochs = self.scheduler.chunk_size(self.state)  # compiles now if still needed
            frames = self._advance(epochs, force_snapshot=False)
            self._pacer.ran(began, epochs)
            if self.compiling_since is not None:
                self.compiling_since = None
                frames = [*frames, self.status()]
            return frames

    def _may_train(self) -> bool:
        return self.playing and not self.closed and self.diverged is None

    def warm(self, size: int | None = None) -> None:
        """Compiles the chunk program of ``size`` epochs in a background thread.

        Without ``size`` (a new configuration): the first chunk's program, then
        the one of the size that fits (:meth:`.schedule.Scheduler.warm`).
        """
        self.scheduler.warm(self.state, size)

    def _advance(self, epochs: int, *, force_snapshot: bool) -> list[Any]:
        """Trains ``epochs`` epochs in one compiled chunk (:func:`dlvr_jax.engine.loop`).

        Returns the frames to send: a snapshot (unless too many are in
        flight), or the divergence's frames; none once the session is closed.
        """
        start = self.state
        cached = self.scheduler.is_ready(epochs)
        began = time.perf_counter()
        try:
            state, history = engine.loop(
                start, self.scheduler.run, epochs=epochs, chunk=epochs, on_nan="raise",
                cancel=self.cancel, pieces=self._pieces,
            )  # fmt: skip
        except engine.Cancelled:
            return []
        except engine.TrainingDiverged as diverged:
            self.chunks += 1
            return self._diverge(start, diverged)
        self.chunks += 1
        if cached:
            self.scheduler.ran(epochs, time.perf_counter() - began)
        self.state = state
        self._records.add(history)
        self._extend_segments(epochs)
        stop = self._patience(int(start.epoch), history.test_loss)
        snapshot = self.snapshot(force=force_snapshot or stop)
        frames = [] if snapshot is None else [snapshot]
        return [*frames, self.status()] if stop else frames

    def _patience(self, first: int, test_loss: Any) -> bool:
        """Notes a chunk's test losses; whether ``config.patience`` stops (pauses) training now:
        the test loss has not gone below its best for that many epochs."""
        if test_loss is not None:
            self._best.note(first, np.asarray(test_loss, np.float64))
        if not self.playing or not self._best.expired(self.epoch, int(self.config["patience"])):
            return False
        self.playing, self.stopped = False, self._best.report()
        return True

    def _pieces(self, epochs: int) -> list[int]:
        """``epochs`` in chunks whose programs are compiled (the loop's NaN recovery)."""
        return schedule.pieces(epochs, self.scheduler.ready_sizes())

    def _diverge(self, start: train.TrainState, diverged: engine.TrainingDiverged) -> list[Any]:
        """Stops at the last good state (the loop found it); the frames that say so."""
        good = diverged.epoch - 1  # epochs of the chunk before the bad one
        if good > 0:
            self._records.add(diverged.history)
        self.diverged = int(start.epoch) + diverged.epoch
        self.playing = False
        self.state = diverged.state
        self._extend_segments(good)
        frame = views.diverged_frame(self.diverged, self.epoch, self.config["learningRate"])
        return [frame, self.snapshot(force=True), self.status()]

    def _extend_segments(self, epochs: int) -> None:
        _extend(self.segments, epochs, [self.config["learningRate"], *self._penalties()])

    # -------------------------------------------------------------- snapshots

    def snapshot(self, *, force: bool = False) -> bytes | None:
        """The binary snapshot of the current state, or None when too many are in flight.

        ``force`` sends one regardless (replies to step, reset, config).
        """
        with self._acks:
            if not force and len(self.unacknowledged) >= MAX_IN_FLIGHT:
                return None
        frame = views.snapshot(
            self.state, self.prepared, self.config, self._records, diverged=self.diverged,
            seconds_per_epoch=self.scheduler.seconds_per_epoch,
        )  # fmt: skip
        if not force:  # replies (step, reset, config) are not counted against the flow
            with self._acks:
                self.unacknowledged.append(self.epoch)
        return frame

    # ----------------------------------------------------------- export, sweep

    def export(self) -> dict[str, Any]:
        """The ``export`` frame: the reproducing script and the checkpoint (base64)."""
        with self.lock:
            return export.frame(self)

    def sweep(self, learning_rates: list[float], seeds: int, epochs: int) -> dict[str, Any] | None:
        """The ``sweep`` frame: one :func:`dlvr_jax.parallel.sweep` over the current configuration.

        Model ``(i, j)`` trains learning rate ``i`` from seed ``config.seed + j``
        (its initialisation; the data stay the session's) for ``epochs`` epochs,
        in chunks of :func:`.schedule.sweep_chunk` epochs. Returns None when
        :meth:`close` cancelled it (at the next chunk).
        """
        with self.lock:
            return _sweep(self, learning_rates, seeds, epochs)

    def close(self) -> None:
        """Stops training for good (the socket closed); the work in progress stops too.

        Does not wait for the session's lock: a running sweep sees :attr:`cancel`
        at its next chunk and returns, freeing its thread.
        """
        self.closed = True
        self.playing = False
        self.cancel.set()


def _count_chunk(session: Session) -> None:
    session.work_chunks += 1


def _upload(session: Session, name: str, text: str) -> list[Any]:
    """An ``upload``'s frames: the CSV becomes the session's data (its state unchanged if not)."""
    try:
        table = load_upload(text)
    except UploadError as error:
        raise protocol.ProtocolError(f"{name}: {error}", code="bad_upload", field="csv") from None
    loaded = table.dataset
    previous = (session.upload, session.upload_text, session.upload_name, dict(session.config))
    session.upload, session.upload_text, session.upload_name = table, text, name
    try:
        session.config.update({"dataset": "upload", "problem": table.task})
        session.config["loss"] = "mse" if table.task == "regression" else "cross_entropy"
        if int(loaded.x.shape[1]) == 2 and not session.config["features"]:
            session.config["features"] = ["x1", "x2"]
        session._build()
    except Exception:
        session.upload, session.upload_text, session.upload_name, session.config = previous
        raise
    session.playing = False
    p = session.prepared
    shown = {"rows": int(loaded.x.shape[0]), "task": p.task, "classes": p.classes}
    names = None if table.classes is None else list(table.classes)
    return [
        {
            "type": "upload",
            "ok": True,
            **shown,
            "inputs": int(loaded.x.shape[1]),
            "classNames": names,
        },
        session._config_frame(True),
        session.data_frame(),
        session.status(),
        session.snapshot(force=True),
    ]


def _sweep(
    session: Session, learning_rates: list[float], seeds: int, epochs: int
) -> dict[str, Any] | None:
    """:meth:`Session.sweep`'s work (under the session's lock)."""
    p = session.prepared
    l1, l2 = session._penalties()
    base = int(session.config["seed"])
    models = len(learning_rates) * seeds
    chunk = schedule.sweep_chunk(models, epochs, session.scheduler.epoch_seconds())
    try:
        result = parallel.sweep(
            [(base + j) % 2**31 for j in range(seeds)],
            p.model,
            p.train,
            learning_rates=learning_rates,
            epochs=epochs,
            optimizer=session.config["optimizer"],
            l1=l1,
            l2=l2,
            batch_size=session._batch_size(),
            loss=p.loss,
            task=p.task,
            test=p.test,
            chunk_epochs=chunk,
            cancel=_Counted(session.cancel, functools.partial(_count_chunk, session)),
        )
    except engine.Cancelled:
        return None
    return views.sweep_frame(result, learning_rates, seeds, epochs)


def _compile_ahead(session: Session) -> None:
    """Queues the likely next shapes' compiles (:func:`neighbours`) in the background."""
    config = session.config
    configs = [{**config, "hidden": shape} for shape in neighbours(config["hidden"])]
    jobs: list[Callable[[], None]] = [functools.partial(_rehearse, c) for c in configs]
    schedule.background(session, jobs, session.cancel)


def _extend(segments: list[list[Any]], epochs: int, segment: list[Any]) -> None:
    """``epochs`` more at ``segment`` (learning rate, l1, l2): the last stretch, or a new one."""
    if epochs <= 0:
        return
    if segments and segments[-1][1:] == segment:
        segments[-1][0] += epochs
    else:
        segments.append([epochs, *segment])


def pause_seconds(session: Session) -> float:
    """How long a trainer may wait before ``session.train_chunk()``, holding no place of work.

    Lock-free (the server calls it on its event loop, which must never wait for
    a chunk): a hint, as :meth:`Session.train_chunk` checks the pace again.
    """
    if not session.playing or session.closed or session.diverged is not None:
        return 0.0
    if session.compiling_since is not None and session.scheduler.compiling():
        return _LONGEST_PAUSE
    return max(0.0, min(session._pacer.wait(), _LONGEST_PAUSE))
