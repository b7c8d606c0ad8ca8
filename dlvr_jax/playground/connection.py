"""One WebSocket's life in the Playground's server: its messages, its frames, its jobs.

The contract::

    await Connection(websocket, host, session).run()   # until the socket closes
    # (the server sent the session's hello itself, before building the session)
    slots = Slots(4); await slots.acquire(); slots.release()   # places of long work
    check_budget(session, message)                     # OverBudget past the budget
    error_frame(code, message, field)                  # an ``error`` frame

A :class:`Connection` answers one socket's messages in order, each in a
daemon thread (never on the event loop), trains while the session plays, and
sends what the threads produce through a bounded outbox (backpressure:
:data:`MAX_UNSENT`, :data:`MAX_UNSENT_BYTES`, snapshots and statuses
coalescing). Training chunks and sweeps hold places of long work
(:class:`Slots`, the server's). Closing the socket closes the session, whose
work stops at its next chunk; the connection does not wait for a job that
cannot be interrupted (a compile). What it needs of the server is
:class:`Host` (:class:`~.server.Playground` is one).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from dlvr_jax.playground import budget, protocol
from dlvr_jax.playground import session as sessions
from dlvr_jax.playground.session import Session

__all__ = [
    "ABANDONED_NICE",
    "LONG_WORK_NICE",
    "MAX_QUEUED",
    "MAX_QUEUED_BYTES",
    "MAX_UNSENT",
    "MAX_UNSENT_BYTES",
    "MAX_UNSENT_SNAPSHOTS",
    "Connection",
    "Host",
    "Slots",
    "check_budget",
    "error_frame",
    "in_thread",
    "session_shape",
]

MAX_UNSENT = 8
"""The most frames a session holds unsent before it stops answering messages."""

MAX_UNSENT_SNAPSHOTS = 2
"""The most snapshots a session holds unsent; a newer one replaces the oldest."""

MAX_UNSENT_BYTES = 8 * 1024 * 1024
"""The most bytes of frames a session holds unsent before it stops answering messages
(one answer may pass it: a snapshot is at most ``budget.MAX_SNAPSHOT_BYTES``)."""

MAX_QUEUED = 64
"""The most messages waiting for an answer (repeated ``step``, ``ack``, ``play`` and
``pause`` coalesce); one more closes the socket (code 1008)."""

MAX_QUEUED_BYTES = 2 * protocol.MAX_FRAME_BYTES
"""The most bytes of messages waiting for an answer (uploads), before the socket is closed."""

LONG_WORK_NICE = 5
"""The niceness of long work's threads (training chunks, sweeps): the threads that
answer messages (a new tab's ``hello``) come first on a busy machine."""

ABANDONED_NICE = 15
"""The niceness of a closed tab's job that goes on (a compile): last of all."""

_PARSE_ON_LOOP = 64 * 1024  # larger frames are parsed in a thread, not on the event loop


class Slots:
    """A bounded count of places for long work, usable from any thread and event loop.

    ``await slots.acquire()`` waits for a place (first come, first served);
    :meth:`release` gives it back from any thread.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0
        self._lock = threading.Lock()
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]
        self._waiters = collections.deque()

    async def acquire(self) -> None:
        """Takes a place, waiting for one if all are taken."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.taken < self.size and not self._waiters:
                self.taken += 1
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                if (loop, future) in self._waiters:  # not granted: just leave the line
                    self._waiters.remove((loop, future))
            raise  # granted meanwhile: _grant sees the cancelled future and passes it on

    def release(self) -> None:
        """Gives a place back (to the first waiter, if any)."""
        with self._lock:
            if self._waiters:
                loop, future = self._waiters.popleft()
            else:
                self.taken -= 1
                return
        try:
            loop.call_soon_threadsafe(self._grant, future)
        except RuntimeError:  # that loop is closed: the place goes to the next one
            self.release()

    def _grant(self, future: asyncio.Future[None]) -> None:
        if future.done():
            self.release()
        else:
            future.set_result(None)


class Host(Protocol):
    """What a connection needs of its server (:class:`~.server.Playground`).

    Attributes:
        work: the places of long work (training chunks, sweeps).
        sweeps: the places of sweeps.
    """

    work: Slots
    sweeps: Slots

    def start(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Runs ``target`` in a daemon thread (counted while it runs)."""
        ...

    def drained(self, count: int) -> None:
        """Counts ``count`` more (or fewer) answers of closed sessions still running."""
        ...

    def release(self, session: Session) -> None:
        """Stops ``session`` and forgets it."""
        ...


def error_frame(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """An ``error`` frame (``PROTOCOL.md``): its code, message and field."""
    return {"type": "error", "code": code, "message": message, "field": field}


class _Outbox:
    """The frames a session has ready for its socket and not yet sent: a few at most.

    Each frame is kept encoded (``str`` JSON or ``bytes`` snapshot). Snapshots
    coalesce: with :data:`MAX_UNSENT_SNAPSHOTS` waiting, a new one replaces
    the oldest (the newest wins); a new ``status`` replaces the waiting one.
    Other frames wait in order; the session takes its next message only
    while :meth:`full` is false (:data:`MAX_UNSENT`, :data:`MAX_UNSENT_BYTES`).
    """

    def __init__(self) -> None:
        self.frames: collections.deque[tuple[str, str | bytes]] = collections.deque()
        self.bytes = 0
        self.ready = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    def put(self, frames: list[tuple[str, str | bytes]]) -> None:
        """Queues encoded frames, ``(kind, payload)``: ``snapshot``, ``status`` or ``other``."""
        for kind, payload in frames:
            if kind == "snapshot":
                waiting = [i for i, (k, _) in enumerate(self.frames) if k == "snapshot"]
                if len(waiting) >= MAX_UNSENT_SNAPSHOTS:
                    self._drop(waiting[0])
            elif kind == "status":
                waiting = [i for i, (k, _) in enumerate(self.frames) if k == "status"]
                for index in reversed(waiting):
                    self._drop(index)
            self.frames.append((kind, payload))
            self.bytes += len(payload)
        self.ready.set()
        self._room()

    def take(self) -> str | bytes:
        """The next frame to send (the outbox is not empty)."""
        _, payload = self.frames.popleft()
        self.bytes -= len(payload)
        if not self.frames:
            self.ready.clear()
        self._room()
        return payload

    def full(self) -> bool:
        """Whether the frames waiting reach :data:`MAX_UNSENT` or :data:`MAX_UNSENT_BYTES`."""
        return len(self.frames) >= MAX_UNSENT or self.bytes >= MAX_UNSENT_BYTES

    def _drop(self, index: int) -> None:
        _, payload = self.frames[index]
        del self.frames[index]
        self.bytes -= len(payload)

    def _room(self) -> None:
        if self.full():
            self.room.clear()
        else:
            self.room.set()


def _encode(frames: list[Any]) -> list[tuple[str, str | bytes]]:
    """Frames as the outbox keeps them: ``(kind, payload)``, encoded (in a worker thread)."""
    encoded: list[tuple[str, str | bytes]] = []
    for frame in frames:
        if frame is None:
            continue
        if isinstance(frame, bytes):
            encoded.append(("snapshot", frame))
        else:
            kind = "status" if frame.get("type") == "status" else "other"
            encoded.append((kind, json.dumps(frame, allow_nan=False)))
    return encoded


class _Inbox:
    """The messages received and not yet answered: a few, and repeated ones coalesce.

    An item is ``[message, count]``: consecutive ``step`` messages are one item
    counted (each is still trained, one epoch each); consecutive ``ack`` keep
    the largest epoch; consecutive ``play``/``pause`` keep the last. A message
    is a checked ``dict``, a :class:`~.protocol.ProtocolError` to answer, or a
    large frame's text, checked by the handler's thread (not on the event loop).
    """

    def __init__(self) -> None:
        self.items: collections.deque[list[Any]] = collections.deque()
        self.bytes = 0
        self.ready = asyncio.Event()

    def put(self, message: Any, size: int) -> bool:
        """Queues ``message`` (``size``: its frame's length); False when the inbox is full."""
        last: Any = self.items[-1][0] if self.items else None
        kind = message.get("type") if isinstance(message, dict) else None
        last_kind = last.get("type") if isinstance(last, dict) else None
        if kind == "step" and last_kind == "step":
            self.items[-1][1] += 1
        elif kind == "ack" and last_kind == "ack":
            last["epoch"] = max(last["epoch"], message["epoch"])
        elif kind in ("play", "pause") and last_kind in ("play", "pause"):
            self.items[-1] = [message, 1]
        else:
            if len(self.items) >= MAX_QUEUED or self.bytes + size > MAX_QUEUED_BYTES:
                return False
            self.items.append([message, 1, size])
            self.bytes += size
        self.ready.set()
        return True

    async def get(self) -> list[Any]:
        """The next item, ``[message, count, ...]``, waiting for one."""
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        item = self.items.popleft()
        if len(item) > 2:
            self.bytes -= item[2]
        return item


class Connection:
    """One WebSocket's life: its session, the frames it sends, and training while it plays.

    Four tasks share the socket: the receiver reads frames (so that a closed
    socket is seen at once, even during a sweep or a compile), the handler
    answers them in order in daemon threads, the trainer runs one chunk at a
    time while playing, and the sender sends the frames the threads queue in
    the :class:`_Outbox`. Closing the socket closes the session, which cancels
    its work at the next chunk; the tasks do not wait for a job that cannot be
    interrupted (a compile): its thread finishes on its own, and the session's
    place is free at once (long work keeps its work place until it ends).
    """

    def __init__(self, websocket: WebSocket, playground: Host, session: Session) -> None:
        self.websocket = websocket
        self.playground = playground
        self.session = session
        self.loop = asyncio.get_running_loop()
        self.outbox = _Outbox()
        self.inbox = _Inbox()
        self.wake = asyncio.Event()
        self.closing = asyncio.Event()
        self.running: set[asyncio.Future[bool]] = set()

    def post(self, frames: list[Any]) -> None:
        """From a worker thread: queue frames in order (FIFO through the loop)."""
        encoded = _encode(frames)
        if encoded:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to send to
                self.loop.call_soon_threadsafe(self.outbox.put, encoded)

    def work(self, call: Callable[[], list[Any]]) -> Callable[[], None]:
        """``call`` as a worker thread's job: its frames, or its error as a frame, are posted."""

        def job() -> None:
            try:
                self.post(call())
            except protocol.ProtocolError as error:
                self.post([error_frame(error.code, str(error), error.field)])
            except Exception as error:  # a session bug must not kill the server
                self.post([error_frame("internal", f"{type(error).__name__}: {error}")])

        return job

    async def run_job(self, job: Callable[[], None], *places: Slots) -> None:
        """Runs ``job`` in a daemon thread, holding ``places`` (long work) until it ends.

        Returns when the job ends, or at once when the socket closes. A job
        that goes on after its socket closed (a compile cannot be interrupted)
        keeps its places until it ends, so that long work never runs on more
        than :data:`~.server.WORKERS` threads; one without places (a message's answer)
        is counted as draining until it ends.
        """
        taken: list[Slots] = []
        try:
            for place in places:
                if await self._acquire(place):
                    taken.append(place)
        except BaseException:
            for place in taken:
                place.release()
            raise
        if self.closing.is_set() or len(taken) < len(places):
            for place in taken:
                place.release()
            return
        done: asyncio.Future[bool] = self.loop.create_future()
        ended = threading.Event()
        self.running.add(done)

        thread_id: list[int] = []

        def target() -> None:
            thread_id.append(threading.get_native_id())
            if taken:  # long work yields the cores to the answers (a new tab's hello)
                _lower_priority(thread_id[0], LONG_WORK_NICE)
            try:
                job()
            finally:
                for place in taken:
                    place.release()
                ended.set()
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(_settle, done, True)

        self.playground.start(target, "playground-job")
        try:
            finished = await done
        finally:
            self.running.discard(done)
        if not finished and not ended.is_set() and thread_id:
            _lower_priority(thread_id[0], ABANDONED_NICE)  # nobody waits for it any more
        if not finished and not ended.is_set() and not taken:
            self.playground.drained(1)
            self.playground.start(
                functools.partial(_drain, ended, self.playground), "playground-drain"
            )

    async def _acquire(self, place: Slots) -> bool:
        """Takes ``place``, or gives up when the socket closes first (False)."""
        acquiring = asyncio.ensure_future(place.acquire())
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            await asyncio.wait({acquiring, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not acquiring.done():
                acquiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquiring
        return not acquiring.cancelled()

    async def sender(self) -> None:
        while True:
            await self.outbox.ready.wait()
            while self.outbox.frames:
                frame = self.outbox.take()
                if isinstance(frame, bytes):
                    await self.websocket.send_bytes(frame)
                else:
                    await self.websocket.send_text(frame)

    async def trainer(self) -> None:
        session = self.session
        while not self.closing.is_set():
            if not session.playing:
                self.wake.clear()
                await self.wake.wait()
                continue
            await self.outbox.room.wait()
            pause = sessions.pause_seconds(session)  # a paced session waits without a place
            if pause > 0:
                await asyncio.sleep(pause)
            await self.run_job(self.work(session.train_chunk), self.playground.work)

    async def handler(self) -> None:
        """Answers the received messages in order, until the session closes."""
        session = self.session  # greeted by the server: the data and the snapshot follow
        await self.run_job(self.work(lambda: session.hello()[1:]))
        while not self.closing.is_set():
            await self.outbox.room.wait()  # a page that reads nothing gets no more answers
            message, count, *_ = await self.inbox.get()
            if message is None or self.closing.is_set():
                return
            if isinstance(message, protocol.ProtocolError):
                self.post([error_frame(message.code, str(message), message.field)])
                continue
            if isinstance(message, str):  # a large frame (an upload): checked off the loop
                try:
                    message = await in_thread(
                        self.playground, functools.partial(protocol.parse_message, message)
                    )
                except protocol.ProtocolError as error:
                    self.post([error_frame(error.code, str(error), error.field)])
                    continue
            job = self.work(functools.partial(_answer, session, message, count, self.post))
            if message["type"] == "sweep":
                await self.run_job(job, self.playground.sweeps, self.playground.work)
            else:
                await self.run_job(job)
            if session.playing:
                self.wake.set()

    async def receiver(self) -> None:
        """Reads frames until the socket closes; each goes to the handler, checked."""
        while True:
            try:
                received = await self.websocket.receive()
            except WebSocketDisconnect:
                return
            if received["type"] == "websocket.disconnect":
                return
            frame = received.get("text")
            if frame is None:
                frame = received.get("bytes", b"")
            size = len(frame)
            message: Any = frame
            if size <= _PARSE_ON_LOOP:  # larger ones are parsed in the handler's thread
                try:
                    message = protocol.parse_message(frame)
                except protocol.ProtocolError as error:
                    message = error
            if not self.inbox.put(message, size):
                reason = f"over {MAX_QUEUED} messages wait for an answer; read the replies"
                await self.websocket.close(code=1008, reason=reason)
                return

    def close(self) -> None:
        """The socket closed: stop the session, and stop waiting for its jobs."""
        self.session.close()
        self.closing.set()
        self.wake.set()
        self.inbox.put(None, 0)
        self.outbox.room.set()
        for done in list(self.running):
            _settle(done, False)

    async def run(self) -> None:
        """Serves the socket until it closes; then stops the session and forgets it at once."""
        sending = asyncio.create_task(self.sender())
        working = asyncio.gather(self.trainer(), self.handler())
        try:
            receiving = asyncio.create_task(self.receiver())
            await asyncio.wait({receiving, sending}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.close()
            self.playground.release(self.session)
            for task in (locals().get("receiving"), sending):
                if task is not None:
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await working
            for task in (locals().get("receiving"), sending):
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task


def _lower_priority(thread_id: int, nice: int) -> None:
    """Runs thread ``thread_id`` at niceness ``nice`` (Linux: per thread), where allowed."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        os.setpriority(os.PRIO_PROCESS, thread_id, nice)


def _settle(done: asyncio.Future[bool], finished: bool) -> None:
    if not done.done():
        done.set_result(finished)


def _drain(ended: threading.Event, playground: Host) -> None:
    """Waits for a closed session's job to end, then counts it as drained."""
    ended.wait()
    playground.drained(-1)


def _answer(
    session: Session, message: Any, count: int, post: Callable[[list[Any]], None]
) -> list[Any]:
    """The frames answering ``message`` (``count`` times: coalesced steps), the budget first."""
    check_budget(session, message)
    for _ in range(count - 1):  # the steps before the last: their frames go as they come
        if session.closed:
            return []
        post(session.handle(message))
    return [] if session.closed else session.handle(message)


def session_shape(session: Session, config: dict[str, Any]) -> budget.Shape:
    """The budget's :class:`~.budget.Shape` of ``config`` over ``session``'s data."""
    table = session.upload
    if config["dataset"] == "upload" and table is not None:
        rows, columns = (int(n) for n in table.dataset.x.shape)
        grid = columns == 2
        inputs = len(config["features"]) if grid else columns
        classes = 0 if table.classes is None else len(table.classes)
        outputs = classes if classes > 2 else 1
    else:
        rows, inputs, outputs, grid = int(config["points"]), len(config["features"]), 1, True
    return budget.Shape(inputs, outputs, max(1, rows * int(config["trainRatio"]) // 100), grid)


def _upload_shape(config: dict[str, Any], text: str) -> budget.Shape:
    """An upload's shape, estimated from its text before it is parsed (lines and commas)."""
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    first = text.split("\n", 1)[0]
    columns = max(1, first.count(","))
    grid = columns == 2
    inputs = len(config["features"]) if grid else columns
    rows = max(1, lines * int(config["trainRatio"]) // 100)
    return budget.Shape(inputs, 1, rows, grid)


def check_budget(session: Session, message: dict[str, Any]) -> None:
    """Refuses a ``config``, ``upload`` or ``sweep`` message past the session's budget.

    Raises:
        OverBudget: naming the limit (:mod:`.budget`); the session is unchanged.
    """
    kind = message["type"]
    if kind == "config":
        config = {**session.config, **message["config"]}
        budget.check_config(config, session_shape(session, config))
    elif kind == "upload":
        config = dict(session.config)
        budget.check_config(config, _upload_shape(config, message["csv"]))
    elif kind == "sweep":
        config = dict(session.config)
        models = len(message["learningRates"]) * int(message["seeds"])
        budget.check_sweep(
            config, session_shape(session, config), models=models, epochs=int(message["epochs"])
        )


async def in_thread(playground: Host, call: Callable[[], Any]) -> Any:
    """``call()`` in a daemon thread (a shutdown never waits for it); its result or error."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def target() -> None:
        try:
            result = call()
        except BaseException as error:  # handed to the awaiting task
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_fail, done, error)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_succeed, done, result)

    playground.start(target, "playground-session")
    return await done


def _succeed(done: asyncio.Future[Any], result: Any) -> None:
    if not done.done():
        done.set_result(result)


def _fail(done: asyncio.Future[Any], error: BaseException) -> None:
    if not done.done():
        done.set_exception(error)
