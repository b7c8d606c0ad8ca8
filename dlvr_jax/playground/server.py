"""The Playground's web server: Starlette routes, the WebSocket loop, and uvicorn.

The contract::

    application = app(token="...", host="127.0.0.1", max_sessions=8)   # an ASGI app
    serve(host="127.0.0.1", port=0, open_browser=True)                  # runs until Ctrl-C

Safety (``PROTOCOL.md``): every HTTP and WebSocket request needs the token (in
the query, or the cookie that ``GET /?token=T`` sets); WebSockets need an
``Origin`` of the served host and port; responses carry ``no-store``, a
strict CSP and ``nosniff``. Each WebSocket is one :class:`~.session.Session`;
at most ``max_sessions`` run at once. Training runs in worker threads, never
on the event loop; a closed socket stops its session.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import functools
import gc
import json
import logging
import os
import pathlib
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from dlvr_jax import _compiled
from dlvr_jax.playground import budget, protocol
from dlvr_jax.playground.session import Session

__all__ = [
    "COMPILE_BOUND",
    "COOKIE",
    "DRAINING_PER_SESSION",
    "IDLE_SECONDS",
    "MAX_QUEUED",
    "MAX_QUEUED_BYTES",
    "MAX_UNSENT",
    "MAX_UNSENT_BYTES",
    "MAX_UNSENT_SNAPSHOTS",
    "PLACE_WAIT_SECONDS",
    "SHUTDOWN_SECONDS",
    "STATIC",
    "WORKERS",
    "Playground",
    "Slots",
    "app",
    "check_budget",
    "free_port",
    "serve",
    "session_shape",
]

COOKIE = "dlvr_jax_playground"
"""The cookie that carries the token after ``GET /?token=T``."""

STATIC = pathlib.Path(__file__).resolve().parent / "static"
"""The page's files (``index.html``, ``app.js``, ``style.css``)."""

WORKERS = max(2, min(8, os.cpu_count() or 1))
"""The places of long work (training chunks and sweeps) shared by all sessions: one per
core, from 2 to 8 (sweeps take at most one fewer, so that training always has one)."""

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

COMPILE_BOUND = 128
"""The compile-cache registry's bound in a server (:func:`dlvr_jax._compiled.set_bound`):
fewer programs than a script keeps, for a bounded memory over a long run."""

IDLE_SECONDS = 10.0
"""After this long with no session, the server drops its compiled programs and gives the
memory back (a new tab compiles the ones it needs again)."""

PLACE_WAIT_SECONDS = 1.0
"""How long a new tab waits for a place (a reloaded page's old socket closing) before
it is refused with ``too_many_sessions``."""

DRAINING_PER_SESSION = 4
"""Answers of closed sessions still running (a compile), per place of ``max_sessions``, past
which new sessions are refused: tabs opened and closed in a loop cannot pile up compiles."""

SHUTDOWN_SECONDS = 1.0
"""How long a stopping server waits for its connections before it cancels them."""

_PARSE_ON_LOOP = 64 * 1024  # larger frames are parsed in a thread, not on the event loop

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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


class Playground:
    """The server's state: the token, the allowed host names and the live sessions.

    Attributes:
        token: the secret every request must carry.
        host: the host the server is bound to.
        max_sessions: the most sessions at once.
        sessions: the live sessions by id (a closed socket's session leaves it at once).
        static: the folder of the page's files.
        config: the configuration fields new sessions start from (over the defaults).
        precompile: whether sessions compile their first chunk ahead, in the background.
        work: the places of long work (training chunks, sweeps), :data:`WORKERS`;
            messages are answered on other threads, so that busy places never
            delay a new tab's ``hello``.
        sweeps: the places of sweeps, one fewer than :attr:`work`, so that
            training always has one.
        threads: the daemon threads running a job now (a closed session's
            job among them until it returns: a compile cannot be interrupted).
        draining: the answers of closed sessions still running (long work keeps
            its places instead); while there are :data:`DRAINING_PER_SESSION`
            times :attr:`max_sessions` of them, new sessions are refused.
    """

    def __init__(
        self,
        token: str,
        host: str,
        max_sessions: int,
        static: pathlib.Path | None = None,
        config: dict[str, Any] | None = None,
        precompile: bool = True,
    ) -> None:
        self.token = token
        self.config = dict(config or {})
        self.precompile = precompile
        self.host = host
        self.max_sessions = max_sessions
        self.sessions: dict[str, Session] = {}
        self.static = STATIC if static is None else pathlib.Path(static)
        self._lock = threading.Lock()
        self._reserved = 0  # places taken by sessions being built
        self.work = Slots(WORKERS)
        self.sweeps = Slots(max(1, WORKERS - 1))
        self.threads: set[threading.Thread] = set()
        self.draining = 0
        self._idle_since: float | None = None

    def hosts(self) -> set[str]:
        """The host names an Origin may use (the loopback names together)."""
        host = self.host
        if host in _LOOPBACK or host.startswith("127."):
            return {"127.0.0.1", "localhost", "[::1]", host}
        return {host}

    def origin_ok(self, origin: str | None, port: int | None, host_header: str = "") -> bool:
        """Whether ``origin`` is ``http://HOST:PORT`` of this server.

        HOST is the bound host (any loopback name for a loopback host); a
        server bound to every interface (``0.0.0.0``, ``::``) accepts the
        origin of the ``Host`` the browser asked for (a page of this server).
        """
        if not origin:
            return False
        allowed = set()
        for host in self.hosts():
            allowed.add(f"http://{host}:{port}")
            if port in (80, None):
                allowed.add(f"http://{host}")
        if self.host in ("0.0.0.0", "::", "") and host_header:
            allowed.add(f"http://{host_header}")
        return origin in allowed

    def token_ok(self, scope: Scope) -> bool:
        """Whether the request carries the token (query or cookie)."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("token", [""])[0]
        if not given:
            for name, value in scope.get("headers", []):
                if name == b"cookie":
                    for part in value.decode("latin-1").split(";"):
                        key, _, cookie = part.strip().partition("=")
                        if key == COOKIE:
                            given = cookie
        return bool(given) and secrets.compare_digest(given.encode(), self.token.encode())

    def reserve(self) -> bool:
        """Takes a place for a new session unless ``max_sessions`` are taken (or draining)."""
        with self._lock:
            if len(self.sessions) + self._reserved >= self.max_sessions:
                return False
            if self.draining >= DRAINING_PER_SESSION * self.max_sessions:
                return False
            self._reserved += 1
            self._idle_since = None
            return True

    def claim(self, session: Session | None) -> None:
        """Turns a reserved place into ``session``'s (None: gives the place back)."""
        with self._lock:
            self._reserved -= 1
            if session is not None:
                self.sessions[session.id] = session

    def release(self, session: Session) -> None:
        """Stops ``session`` (if it still runs), forgets it, and gives memory back to the system."""
        session.close()
        with self._lock:
            self.sessions.pop(session.id, None)
            self._idle_since = time.monotonic() if self._vacant() else None
            if self._idle_since is not None:
                timer = threading.Timer(IDLE_SECONDS, self._forget_programs)
                timer.daemon = True
                timer.start()
        _trim_memory()

    def _vacant(self) -> bool:
        return not self.sessions and not self._reserved

    def _forget_programs(self) -> None:
        """With no session for :data:`IDLE_SECONDS`: drops the compiled programs, trims."""
        with self._lock:
            since = self._idle_since
            if since is None or not self._vacant() or time.monotonic() - since < IDLE_SECONDS:
                return
            self._idle_since = None
        _compiled.clear()
        gc.collect()
        _trim_memory()

    def close_all(self) -> None:
        """Stops every session (the server stops): their work ends at its next chunk."""
        with self._lock:
            sessions = list(self.sessions.values())
        for session in sessions:
            session.close()

    def busy(self) -> bool:
        """Whether a job thread still runs."""
        with self._lock:
            return any(thread.is_alive() for thread in self.threads)

    def start(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Runs ``target`` in a daemon thread, counted in :attr:`threads` while it runs."""

        def run() -> None:
            try:
                target()
            finally:
                with self._lock:
                    self.threads.discard(thread)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self.threads.add(thread)
        thread.start()
        return thread

    def drained(self, count: int) -> None:
        """Counts ``count`` more (or fewer) jobs of closed sessions still running."""
        with self._lock:
            self.draining += count


def _trim_memory() -> None:
    """Returns freed heap memory to the system (glibc's ``malloc_trim``), when there is one."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_LIBC = _load_libc()


def _headers(host: str) -> list[tuple[bytes, bytes]]:
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: blob:; "
        f"connect-src 'self' ws://{host}; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )
    return [
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", csp.encode("latin-1")),
    ]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class _Guard:
    """ASGI middleware: the token on every request, the Origin on WebSockets, safe headers."""

    def __init__(self, inner: ASGIApp, playground: Playground) -> None:
        self.inner = inner
        self.playground = playground

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.inner(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = _header(scope, b"host") or ""
        extra = _headers(host)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if not self.playground.token_ok(scope):
            response = PlainTextResponse(
                "403 Forbidden: this Playground needs its token; open the URL that "
                "`dlvr-jax playground` printed (it ends in ?token=...)\n",
                status_code=403,
            )
            await response(scope, receive, send_with_headers)
            return
        await self.inner(scope, receive, send_with_headers)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or (None, None)
        host_header = _header(scope, b"host") or ""
        origin_ok = self.playground.origin_ok(_header(scope, b"origin"), server[1], host_header)
        if not (self.playground.token_ok(scope) and origin_ok):
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1008})  # a 403 at the handshake
            return
        await self.inner(scope, receive, send)


async def _index(request: Request) -> Response:
    playground: Playground = request.app.state.playground
    page = playground.static / "index.html"
    if not page.is_file():
        return PlainTextResponse(
            f"the Playground's page is missing: {page} (reinstall dlvr-jax[playground])\n",
            status_code=404,
        )
    response: Response = FileResponse(page, media_type="text/html")
    if request.query_params.get("token"):
        response.set_cookie(COOKIE, playground.token, httponly=True, samesite="strict", path="/")
    return response


def _error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
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


class _Connection:
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

    def __init__(self, websocket: WebSocket, playground: Playground, session: Session) -> None:
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
                self.post([_error(error.code, str(error), error.field)])
            except Exception as error:  # a session bug must not kill the server
                self.post([_error("internal", f"{type(error).__name__}: {error}")])

        return job

    async def run_job(self, job: Callable[[], None], *places: Slots) -> None:
        """Runs ``job`` in a daemon thread, holding ``places`` (long work) until it ends.

        Returns when the job ends, or at once when the socket closes. A job
        that goes on after its socket closed (a compile cannot be interrupted)
        keeps its places until it ends, so that long work never runs on more
        than :data:`WORKERS` threads; one without places (a message's answer)
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

        def target() -> None:
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
            await self.run_job(self.work(session.train_chunk), self.playground.work)

    async def handler(self) -> None:
        """Answers the received messages in order, until the session closes."""
        session = self.session
        await self.run_job(self.work(session.hello))
        while not self.closing.is_set():
            await self.outbox.room.wait()  # a page that reads nothing gets no more answers
            message, count, *_ = await self.inbox.get()
            if message is None or self.closing.is_set():
                return
            if isinstance(message, protocol.ProtocolError):
                self.post([_error(message.code, str(message), message.field)])
                continue
            if isinstance(message, str):  # a large frame (an upload): checked off the loop
                try:
                    message = await _in_thread(
                        self.playground, functools.partial(protocol.parse_message, message)
                    )
                except protocol.ProtocolError as error:
                    self.post([_error(error.code, str(error), error.field)])
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


def _settle(done: asyncio.Future[bool], finished: bool) -> None:
    if not done.done():
        done.set_result(finished)


def _drain(ended: threading.Event, playground: Playground) -> None:
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


async def _in_thread(playground: Playground, call: Callable[[], Any]) -> Any:
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


async def _place(playground: Playground) -> bool:
    """Reserves a place for a new session, waiting up to :data:`PLACE_WAIT_SECONDS`."""
    deadline = time.monotonic() + PLACE_WAIT_SECONDS
    while not playground.reserve():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _socket(websocket: WebSocket) -> None:
    playground: Playground = websocket.app.state.playground
    await websocket.accept()
    if not await _place(playground):  # before building anything
        refusal = _error(
            "too_many_sessions",
            f"too many sessions: this Playground runs at most {playground.max_sessions} "
            f"at once ({len(playground.sessions)} open, {playground.draining} closed ones "
            "finishing a compile); close another tab and reload",
        )
        await websocket.send_text(json.dumps(refusal))
        await websocket.close(code=1013)
        return
    try:
        session = await _in_thread(
            playground,
            functools.partial(Session, playground.config, precompile=playground.precompile),
        )
    except BaseException:
        playground.claim(None)
        raise
    playground.claim(session)
    await _Connection(websocket, playground, session).run()


def app(
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    max_sessions: int = 8,
    static: str | os.PathLike[str] | None = None,
    config: dict[str, Any] | None = None,
    precompile: bool = True,
) -> Starlette:
    """The Playground as an ASGI application (Starlette).

    Args:
        token: the secret of every request (default: ``secrets.token_urlsafe(32)``);
            read it back as ``application.state.playground.token``.
        host: the host name the page is served on (Origins must use it;
            loopback names are interchangeable).
        max_sessions: the most WebSocket sessions at once.
        static: the folder of the page's files (default: the package's ``static/``).
        config: configuration fields new sessions start from, over
            :data:`~dlvr_jax.playground.protocol.DEFAULT_CONFIG` (checked here).
        precompile: compile each new configuration's first chunk ahead, in a
            background thread, so that Play starts at once.

    Raises:
        ValueError: for ``max_sessions < 1`` or a token shorter than 16 characters.
        ProtocolError: for a bad ``config`` field (a ``ValueError``), or
            :class:`~.budget.OverBudget` for one past the budget.
    """
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
        raise ValueError(f"max_sessions must be an integer >= 1, got {max_sessions!r}")
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        raise ValueError("token must be a string of at least 16 characters")
    checked = protocol.check_config(config or {})
    whole = {**protocol.DEFAULT_CONFIG, **checked}
    rows = int(whole["points"]) * int(whole["trainRatio"]) // 100
    budget.check_config(whole, budget.Shape(len(whole["features"]), 1, rows, True))
    playground = Playground(
        token or secrets.token_urlsafe(32),
        host,
        max_sessions,
        None if static is None else pathlib.Path(static),
        checked,
        precompile,
    )
    _quiet_uvicorn()
    routes = [
        Route("/", _index),
        WebSocketRoute("/ws", _socket),
        Mount("/static", app=StaticFiles(directory=playground.static, check_dir=False)),
    ]
    application = Starlette(routes=routes)
    application.state.playground = playground
    application.add_middleware(_Guard, playground=playground)
    return application


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    max_sessions: int = 8,
    token: str | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Runs the Playground with uvicorn until Ctrl-C (SIGINT) or SIGTERM.

    Stopping takes at most about 2 s whatever runs: the sockets close, which
    stops every session's work at its next chunk; connections still open
    after :data:`SHUTDOWN_SECONDS` are cancelled. A job that cannot be
    interrupted (a compile) runs in a daemon thread; if one still runs once
    the server has stopped, the process exits at once, with status 0
    (``os._exit``, after flushing its output), instead of waiting for it.

    Args:
        host: the interface to bind (127.0.0.1: this machine only).
        port: the port; 0 picks a free one (the socket is bound before the URL is announced).
        open_browser: open the URL with :func:`webbrowser.open`.
        max_sessions: the most sessions (browser tabs) at once.
        token: the secret (default: a fresh ``secrets.token_urlsafe(32)``).
        announce: called once with the URL (token included).
    """
    import uvicorn

    application = app(token=token, host=host, max_sessions=max_sessions)
    playground: Playground = application.state.playground
    _compiled.set_bound(min(_compiled.BOUND, COMPILE_BOUND))
    token = playground.token
    # Bind and listen before printing the URL: it works the moment it is shown.
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    port = int(listener.getsockname()[1])
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/?token={token}"
    config = uvicorn.Config(
        application,
        log_level="warning",
        ws_max_size=protocol.MAX_FRAME_BYTES + 1024,
        ws_ping_interval=None,
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    announce(url)
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    # uvicorn catches SIGINT and SIGTERM while it runs, then raises the one it caught
    # again: SIGTERM too becomes a KeyboardInterrupt here (not the default: killed).
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn shut down, then raised the signal it caught
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        listener.close()
        playground.close_all()
    _exit_if_busy(playground)


def _exit_if_busy(playground: Playground, grace: float = 0.3) -> None:
    """Ends the process (status 0) if a job thread, or a compile ahead, still runs."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not playground.busy() and not _foreign_threads():
            return
        time.sleep(0.02)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


def _foreign_threads() -> list[threading.Thread]:
    """Threads that would keep the interpreter from exiting (not daemons, not this one)."""
    current = threading.current_thread()
    return [t for t in threading.enumerate() if t is not current and not t.daemon and t.is_alive()]


class _NoTraceback(logging.Filter):
    """Keeps uvicorn's one line about a client's bad frame, without a traceback.

    uvicorn logs "Invalid UTF-8 sequence received from client." with the
    ``UnicodeDecodeError``'s traceback, then closes the socket with 1007 (as it
    should): the client's error, not the server's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], UnicodeDecodeError):
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = _NoTraceback()


def _quiet_uvicorn() -> None:
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
