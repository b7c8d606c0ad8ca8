"""Atomic file writes: a temporary file in the same folder, then a rename.

The contract::

    with atomic_open(path, "w" | "wb") as stream: ...   # commit on success, else discard
    write_atomic(path, writer)                           # writer(stream) on a binary stream
    stale_temporaries(path) -> list[str]                 # what the next save of path removes

A reader never sees a half-written file: either the old content or the new.

**Mode.** A file is created with the mode the umask gives, as ``open()`` would
(``0o666 & ~umask``: 0644 under umask 022, 0600 under 077): the temporary file
is opened with ``O_CREAT | O_EXCL`` and mode 0666, and the kernel applies the
umask. The umask is never read or changed (changing it is not thread-safe).

**Temporaries.** The temporary file of ``folder/X`` is ``folder/.X.<tag>.tmp``,
its tag naming the writer: ``<host>-<pid>-<start>-<random>`` (a 6-hex hash of
the host name, the process id, the process's start time in clock ticks since
boot from ``/proc``, 0 where there is none, and 8 random characters). A writer
killed mid-save (``kill -9``, power loss) leaves its temporary behind; the
next successful save of ``X`` removes ``X``'s own stale temporaries, and only
those. A temporary is stale when:

- it was written on this host by a process that no longer runs (no process
  with that id, or one with another start time: a reused id), or
- it cannot be attributed (another host's, or a ``mkstemp`` name
  ``.X.<8 characters>.tmp`` of dlvr_jax before 0.x) and was last modified more
  than :data:`STALE_SECONDS` ago.

So a concurrent writer of the same file, in this process or another, alive on
this host, never loses its temporary; the last rename wins, as before.
Removal is best effort: a temporary that cannot be removed is left.

Internal to dlvr_jax: the package's modules write every output file here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import string
import time
from collections.abc import Callable, Iterator
from typing import IO

STALE_SECONDS = 3600.0
"""How old (by modification time) an unattributable temporary must be to be stale."""

_RANDOM = string.ascii_lowercase + string.digits
_TAG = r"(?P<host>[0-9a-f]{6})-(?P<pid>[0-9]+)-(?P<start>[0-9]+)-[a-z0-9]{8}"
_LEGACY = r"[a-z0-9_]{8}"  # tempfile.mkstemp's names, before the tag


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def _start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot); 0 without /proc; None: none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            stat = stream.read()
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else 0
    except OSError:
        return 0
    try:  # the command name may hold spaces and parentheses: fields follow the last ')'
        return int(stat[stat.rindex(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return 0


def _alive(pid: int, start: int) -> bool:
    """Whether the process that wrote a temporary on this host still runs."""
    now = _start_time(pid)
    if now is None:
        return False
    if now and start:
        return now == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True


def stale_temporaries(path: str | os.PathLike[str]) -> list[str]:
    """The stale temporary files of ``path`` (see the module's rule), as paths."""
    target = os.path.abspath(os.fspath(path))
    folder, base = os.path.split(target)
    own = re.compile(rf"\.{re.escape(base)}\.(?:{_TAG}|{_LEGACY})\.tmp")
    here, now = _host(), time.time()
    stale = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        match = own.fullmatch(name)
        if match is None:
            continue
        full = os.path.join(folder, name)
        if match["pid"] is not None and match["host"] == here:
            if not _alive(int(match["pid"]), int(match["start"])):
                stale.append(full)
            continue
        with contextlib.suppress(OSError):
            if now - os.stat(full).st_mtime > STALE_SECONDS:
                stale.append(full)
    return sorted(stale)


def _create_temporary(target: str) -> tuple[int, str]:
    folder, base = os.path.split(target)
    pid = os.getpid()
    tag = f"{_host()}-{pid}-{_start_time(pid) or 0}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        random = "".join(secrets.choice(_RANDOM) for _ in range(8))
        temporary = os.path.join(folder, f".{base}.{tag}-{random}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary  # the kernel applies the umask
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name beside {target!r}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[str] | IO[bytes]]:
    """Opens a temporary file beside ``path`` and renames it over ``path`` on success.

    The file gets the mode the umask gives. On any error the temporary file is
    removed and ``path`` is left untouched; after a success, the stale
    temporaries of earlier, interrupted saves of ``path`` are removed.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    target = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    handle, temporary = _create_temporary(target)
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    for stale in stale_temporaries(target):
        with contextlib.suppress(OSError):
            os.unlink(stale)


def write_atomic(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], object]) -> None:
    """Calls ``writer`` on a binary stream and commits the result to ``path`` atomically."""
    with atomic_open(path, "wb") as stream:
        writer(stream)  # type: ignore[arg-type]
