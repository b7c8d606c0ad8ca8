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
import concurrent.futures
import contextlib
import functools
import json
import os
import pathlib
import secrets
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from dlvr_jax.playground import protocol
from dlvr_jax.playground.session import Session

__all__ = ["COOKIE", "LONG_WORK", "STATIC", "WORKERS", "Playground", "app", "free_port", "serve"]

COOKIE = "dlvr_jax_playground"
"""The cookie that carries the token after ``GET /?token=T``."""

STATIC = pathlib.Path(__file__).resolve().parent / "static"
"""The page's files (``index.html``, ``app.js``, ``style.css``)."""

WORKERS = max(4, (os.cpu_count() or 1) + 2)
"""The threads of long work (training chunks and sweeps) shared by all sessions."""

LONG_WORK = frozenset({"sweep"})
"""Message types whose answer is long work, run on :attr:`Playground.pool`."""

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Playground:
    """The server's state: the token, the allowed host names and the live sessions.

    Attributes:
        token: the secret every request must carry.
        host: the host the server is bound to.
        max_sessions: the most sessions at once.
        sessions: the live sessions by id (a closed socket's session leaves it).
        static: the folder of the page's files.
        config: the configuration fields new sessions start from (over the defaults).
        precompile: whether sessions compile their first chunk ahead, in the background.
        pool: the worker threads of long work (training chunks, sweeps), at most
            :data:`WORKERS`; messages are answered on other threads, so that a
            busy pool never delays a new tab's ``hello``.
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
        self.pool = concurrent.futures.ThreadPoolExecutor(WORKERS, "playground-work")

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
        """Takes a place for a new session unless ``max_sessions`` are taken."""
        with self._lock:
            if len(self.sessions) + self._reserved >= self.max_sessions:
                return False
            self._reserved += 1
            return True

    def claim(self, session: Session | None) -> None:
        """Turns a reserved place into ``session``'s (None: gives the place back)."""
        with self._lock:
            self._reserved -= 1
            if session is not None:
                self.sessions[session.id] = session

    def release(self, session: Session) -> None:
        """Stops ``session`` (if it still runs) and forgets it."""
        session.close()
        with self._lock:
            self.sessions.pop(session.id, None)


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


class _Connection:
    """One WebSocket's life: its session, the frames it sends, and training while it plays.

    Four tasks share the socket: the receiver reads frames (so that a closed
    socket is seen at once, even during a sweep), the handler answers them in
    order in worker threads, the trainer runs one chunk at a time while
    playing, and the sender sends the frames that worker threads queue.
    Closing the socket closes the session, which cancels its work at the
    next chunk; the session leaves the registry when its threads are free.
    """

    def __init__(self, websocket: WebSocket, playground: Playground, session: Session) -> None:
        self.websocket = websocket
        self.playground = playground
        self.session = session
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue[list[Any] | None] = asyncio.Queue()
        self.inbox: asyncio.Queue[dict[str, Any] | protocol.ProtocolError | None] = asyncio.Queue()
        self.wake = asyncio.Event()

    def post(self, frames: list[Any]) -> None:
        """From a worker thread: queue frames in order (FIFO through the loop)."""
        if frames:
            self.loop.call_soon_threadsafe(self.outbox.put_nowait, frames)

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

    async def long_work(self, call: Callable[[], list[Any]]) -> None:
        """Runs ``call`` on the pool of long work (training chunks, sweeps)."""
        await self.loop.run_in_executor(self.playground.pool, self.work(call))

    async def sender(self) -> None:
        while True:
            frames = await self.outbox.get()
            if frames is None:
                return
            for frame in frames:
                if frame is None:
                    continue
                if isinstance(frame, bytes):
                    await self.websocket.send_bytes(frame)
                else:
                    await self.websocket.send_text(json.dumps(frame, allow_nan=False))

    async def trainer(self) -> None:
        session = self.session
        while not session.closed:
            if not session.playing:
                self.wake.clear()
                await self.wake.wait()
                continue
            await self.long_work(session.train_chunk)

    async def handler(self) -> None:
        """Answers the received messages in order, until the session closes."""
        session = self.session
        await asyncio.to_thread(self.work(session.hello))
        while not session.closed:
            message = await self.inbox.get()
            if message is None or session.closed:
                return
            if isinstance(message, protocol.ProtocolError):
                self.post([_error(message.code, str(message), message.field)])
                continue
            answer = functools.partial(session.handle, message)
            if message["type"] in LONG_WORK:
                await self.long_work(answer)
            else:
                await asyncio.to_thread(self.work(answer))
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
            try:
                self.inbox.put_nowait(protocol.parse_message(frame))
            except protocol.ProtocolError as error:
                self.inbox.put_nowait(error)

    async def run(self) -> None:
        """Serves the socket until it closes; then stops the session and forgets it."""
        sending = asyncio.create_task(self.sender())
        working = asyncio.gather(self.trainer(), self.handler())
        try:
            await self.receiver()
        finally:
            # Stop the work: the session's cancel event ends a chunk or a sweep at its
            # next chunk; only when its threads are free does the session leave the registry.
            self.session.close()
            self.wake.set()
            self.inbox.put_nowait(None)
            working.add_done_callback(lambda _: self.playground.release(self.session))
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(working)  # an ASGI server may cancel us: the callback stays
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sending


async def _socket(websocket: WebSocket) -> None:
    playground: Playground = websocket.app.state.playground
    await websocket.accept()
    if not playground.reserve():  # before building anything
        refusal = _error(
            "too_many_sessions",
            f"too many sessions: this Playground runs at most {playground.max_sessions} "
            "at once; close another tab and reload",
        )
        await websocket.send_text(json.dumps(refusal))
        await websocket.close(code=1013)
        return
    try:
        session = await asyncio.to_thread(
            functools.partial(Session, playground.config, precompile=playground.precompile)
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
        ProtocolError: for a bad ``config`` field (a ``ValueError``).
    """
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
        raise ValueError(f"max_sessions must be an integer >= 1, got {max_sessions!r}")
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        raise ValueError("token must be a string of at least 16 characters")
    playground = Playground(
        token or secrets.token_urlsafe(32),
        host,
        max_sessions,
        None if static is None else pathlib.Path(static),
        protocol.check_config(config or {}),
        precompile,
    )
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
    """Runs the Playground with uvicorn until Ctrl-C (uvicorn's signal handling).

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
    token = application.state.playground.token
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
    )
    server = uvicorn.Server(config)
    announce(url)
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn shuts down, then re-raises the Ctrl-C it caught
        pass
    finally:
        listener.close()
