"""The Playground's web server: Starlette routes, the WebSocket loop, and uvicorn.

The contract::

    application = app(token="...", host="127.0.0.1", max_sessions=8)   # an ASGI app
    serve(host="127.0.0.1", port=0, open_browser=True)                  # runs until Ctrl-C

Safety (``PROTOCOL.md``): every HTTP and WebSocket request needs the token (in
the query, or the cookie that ``GET /?token=T`` sets); WebSockets need an
``Origin`` of the served host and port; responses carry ``no-store``, a
strict CSP and ``nosniff``. Each WebSocket is one :class:`~.session.Session`;
at most ``max_sessions`` run at once. One socket's life (its messages, frames
and jobs, in daemon threads, never on the event loop) is :mod:`.connection`'s;
a closed socket stops its session. :func:`serve` stops within about 2 s on
SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
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
from starlette.websockets import WebSocket

from dlvr_jax import _compiled
from dlvr_jax.playground import budget, connection, protocol
from dlvr_jax.playground.session import Session, hello_frame, initial_config, new_id

__all__ = [
    "COMPILE_BOUND",
    "COOKIE",
    "DRAINING_PER_SESSION",
    "IDLE_SECONDS",
    "PLACE_WAIT_SECONDS",
    "SHUTDOWN_SECONDS",
    "STATIC",
    "SWEEP_WORKERS",
    "WORKERS",
    "Playground",
    "app",
    "free_port",
    "serve",
]

COOKIE = "dlvr_jax_playground"
"""The cookie that carries the token after ``GET /?token=T``."""

STATIC = pathlib.Path(__file__).resolve().parent / "static"
"""The page's files (``index.html``, ``app.js``, ``style.css``)."""

WORKERS = max(4, min(8, os.cpu_count() or 1))
"""The places of long work (training chunks and sweeps) shared by all sessions: one per
core, from 4 to 8 (sweeps take at most one fewer, so that training always has one). At
least 4: a place is held through a compile, which waits more than it computes."""

SWEEP_WORKERS = max(1, min(WORKERS - 1, (os.cpu_count() or 1) // 2))
"""The places of sweeps among them: one per two cores (1 on a 2-core machine). A sweep
traces its program in Python, holding the interpreter lock in turns with every other
thread: more of them at once starved the event loop (a new tab's hello took 2.4-3.5 s
beside four sweeps being compiled). A sweep waiting for a place whose tab closes is
cancelled before it compiles."""

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
        self.work = connection.Slots(WORKERS)
        self.sweeps = connection.Slots(SWEEP_WORKERS)
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
        if not _TRIMMING.locked():  # one at a time, off the event loop: it may take a while
            self.start(_trim_memory, "playground-trim")

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
    if _LIBC is not None and _TRIMMING.acquire(blocking=False):
        try:
            _LIBC.malloc_trim(0)
        finally:
            _TRIMMING.release()


_TRIMMING = threading.Lock()


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
        refusal = connection.error_frame(
            "too_many_sessions",
            f"too many sessions: this Playground runs at most {playground.max_sessions} "
            f"at once ({len(playground.sessions)} open, {playground.draining} closed ones "
            "finishing a compile); close another tab and reload",
        )
        await websocket.send_text(json.dumps(refusal))
        await websocket.close(code=1013)
        return
    try:
        # The hello first, from the configuration alone (cheap, on the loop): a new tab is
        # greeted at once, however long its data and model take beside the others' work.
        session_id = new_id()
        hello = hello_frame(session_id, initial_config(playground.config))
        await websocket.send_text(json.dumps(hello, allow_nan=False))
        session = await connection.in_thread(
            playground,
            functools.partial(
                Session, playground.config, precompile=playground.precompile, session_id=session_id
            ),
        )
    except asyncio.CancelledError:  # the server stops while the session is built
        playground.claim(None)  # (its thread ends on its own; nobody will use it)
        return
    except BaseException:
        playground.claim(None)
        raise
    playground.claim(session)
    # A connection still open when a stopping server's grace period ends is cancelled: it
    # closed its session on the way out (Connection.run), so it ends quietly, as the
    # build above does, instead of as uvicorn's "Exception in ASGI application".
    with contextlib.suppress(asyncio.CancelledError):
        await connection.Connection(websocket, playground, session).run()


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
        # No permessage-deflate: compressing each snapshot (about 0.4 MB) on the event loop
        # cost more than sending it over loopback, and the page inflated it again.
        ws_per_message_deflate=False,
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
    """Ends the process (status 0) if any other thread still runs after ``grace`` seconds.

    Daemon threads too: one inside XLA (a compile, a transfer) while the
    interpreter finalizes aborts the process ("terminate called after throwing
    an instance of ''", signal 6), so the server does not finalize with one alive.
    """
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not playground.busy() and not _other_threads():
            return
        time.sleep(0.02)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


def _other_threads() -> list[threading.Thread]:
    """The threads alive besides this one, daemons included."""
    current = threading.current_thread()
    return [t for t in threading.enumerate() if t is not current and t.is_alive()]


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
