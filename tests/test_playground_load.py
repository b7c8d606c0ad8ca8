"""The Playground's server under a long mixed load: 8 tabs for :data:`SECONDS` seconds.

The command ``dlvr-jax playground`` runs in a subprocess; eight client
threads play the tabs, each a role in a loop until the time is up, opening a
new tab (a new WebSocket) again and again:

- two train: a configuration, Play, snapshots read and acknowledged, Pause;
- two sweep (4 learning rates x 2 seeds x 300 epochs) and read the result;
- one uploads CSV files, good and bad;
- one reads nothing: it sends 500 steps and Play, and reads no frame;
- two close their tab mid-sweep (a sweep of one of three shapes, closed after
  0 to 1.5 s: often during its compile), and open another 0.5 to 2 s later.

Checked: every new tab gets its ``hello`` within :data:`HELLO_SECONDS` (the issue's
bound); no reply is an ``internal`` error; the server's resident memory stays under
:data:`PEAK_MB` and, once the tabs are closed (and the server idle for its
``IDLE_SECONDS``), returns to within :data:`AFTER_CLOSE_MB` of its level after
the first tab. The figures (hello
latency, peak and after-close memory) are printed and written as JSON to
``$DLVR_JAX_LOAD_REPORT`` (or ``load.json`` in the test's folder).
``DLVR_JAX_LOAD_SECONDS`` shortens the run while iterating; the default is
the issue's 5 minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parent.parent

SECONDS = float(os.environ.get("DLVR_JAX_LOAD_SECONDS", 300))
"""How long the eight tabs load the server (the issue's 5 minutes)."""

HELLO_SECONDS = 2.0
"""The issue's bound on every new tab's wait for its ``hello`` (before issue 20: 30-90 s, or
refused); the report also counts the tabs past it (``hellos_over_limit``)."""

PEAK_MB = 2500
"""The most resident memory the server may reach (MB)."""

AFTER_CLOSE_MB = 400
"""How far above its level after the first tab the server's memory may stay once all close."""


def _rss(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Load:
    """What the tabs saw: hello latencies, internal errors, other failures."""

    def __init__(self, url, origin, deadline):
        self.url, self.origin, self.deadline = url, origin, deadline
        self.hellos = []
        self.internal = []
        self.failures = []
        self.counts = {}
        self.lock = threading.Lock()

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    @contextlib.contextmanager
    def tab(self, max_queue=16):
        """A new tab: the socket, once its ``hello`` came (its latency recorded)."""
        from websockets.sync.client import connect

        began = time.monotonic()
        with connect(self.url, origin=self.origin, max_size=None, max_queue=max_queue) as socket:
            frame = json.loads(socket.recv(timeout=60))
            seconds = time.monotonic() - began
            with self.lock:
                self.hellos.append(seconds)
            if frame["type"] != "hello":
                raise AssertionError(f"a new tab got {frame} instead of hello")
            yield socket

    def read(self, socket, until=None, seconds=60.0, ack=True):
        """Frames until one of type ``until`` (or ``seconds``); checks errors; acks snapshots."""
        from dlvr_jax.playground import protocol

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                frame = socket.recv(timeout=max(0.01, end - time.monotonic()))
            except TimeoutError:
                return None
            if isinstance(frame, bytes):
                header, _ = protocol.decode_snapshot(frame)
                if ack:
                    socket.send(json.dumps({"type": "ack", "epoch": header["epoch"]}))
                if until == "snapshot":
                    return header
                continue
            message = json.loads(frame)
            if message["type"] == "error" and message["code"] == "internal":
                with self.lock:
                    self.internal.append(message)
            if message["type"] == until or (message["type"] == "error" and until != "error"):
                return message
        return None

    def alive(self):
        return time.monotonic() < self.deadline


def _trainer(load, rng):
    while load.alive():
        with load.tab() as socket:
            load.read(socket, "snapshot")
            hidden = rng.choice([[4, 2], [6], [5, 3]])
            rate = rng.choice([0.01, 0.03, 0.1])
            socket.send(json.dumps({"type": "config", "config": {"hidden": hidden}}))
            socket.send(json.dumps({"type": "config", "config": {"learningRate": rate}}))
            socket.send(json.dumps({"type": "play"}))
            end = time.monotonic() + rng.uniform(3, 10)
            while time.monotonic() < end and load.alive():
                load.read(socket, "snapshot", seconds=2)
            socket.send(json.dumps({"type": "pause"}))
            load.read(socket, "status", seconds=10)
        load.count("trained")


def _sweeper(load, rng):
    sweep = {"type": "sweep", "learningRates": [0.01, 0.03, 0.1, 0.3], "seeds": 2, "epochs": 300}
    while load.alive():
        with load.tab() as socket:
            load.read(socket, "snapshot")
            socket.send(json.dumps(sweep))
            reply = load.read(socket, "sweep", seconds=120)
            if reply is None:  # waited 2 minutes for a place (reported, not a failure)
                load.count("sweep unanswered in 120 s")
            elif reply["type"] != "sweep":
                load.failures.append(f"sweep: {reply}")
        load.count("swept")


def _uploader(load, rng):
    good = "x1,x2,label\n" + "".join(
        f"{rng.uniform(-1, 1):.3f},{rng.uniform(-1, 1):.3f},{rng.randint(0, 1)}\n"
        for _ in range(300)
    )
    bad = ["a,b,y\n0,1e39,1\n0,0,0\n1,1,1\n", "a,b,y\n0,1,\ud800\n0,0,0\n", "x\n", "a,b\n1,oops\n"]
    while load.alive():
        with load.tab() as socket:
            load.read(socket, "snapshot")
            for _ in range(3):
                socket.send(json.dumps({"type": "upload", "name": "good.csv", "csv": good}))
                reply = load.read(socket, "upload", seconds=60)
                if reply is None or reply["type"] != "upload":
                    load.failures.append(f"good upload: {reply}")
                csv = rng.choice(bad)
                socket.send(json.dumps({"type": "upload", "name": "bad.csv", "csv": csv}))
                reply = load.read(socket, "error", seconds=60)
                if reply is None or reply["code"] != "bad_upload":
                    load.failures.append(f"bad upload: {reply}")
        load.count("uploaded")


def _nonreader(load, rng):
    while load.alive():
        with load.tab(max_queue=2) as socket:
            for _ in range(500):
                socket.send(json.dumps({"type": "step"}))
            socket.send(json.dumps({"type": "play"}))
            end = time.monotonic() + 15
            while time.monotonic() < end and load.alive():
                time.sleep(0.2)  # reads nothing
        load.count("unread")


def _closer(load, rng):
    while load.alive():
        with load.tab() as socket:
            socket.send(json.dumps({"type": "config", "config": {"hidden": rng.choice(
                [[8, 8], [7, 7, 7], [9]])}}))  # fmt: skip
            socket.send(json.dumps(
                {"type": "sweep", "learningRates": [0.01] * 16, "seeds": 8, "epochs": 2000}
            ))  # fmt: skip
            time.sleep(rng.uniform(0, 1.5))
        load.count("closed mid-sweep")
        time.sleep(rng.uniform(0.5, 2))  # the learner opens the next tab


ROLES = [_trainer, _trainer, _sweeper, _sweeper, _uploader, _nonreader, _closer, _closer]


def test_eight_tabs_of_mixed_load_for_five_minutes(tmp_path):
    from websockets.sync.client import connect

    from dlvr_jax.playground import server

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "dlvr_jax", "playground", "--no-browser", "--port", "0",
         "--no-cache", "--max-sessions", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        url = process.stdout.readline().split("open ", 1)[1].split()[0]
        base, token = url.split("/?token=")
        ws = f"{base.replace('http', 'ws')}/ws?token={token}"
        with connect(ws, origin=base, max_size=None) as first:  # the seed network compiled
            assert json.loads(first.recv(timeout=120))["type"] == "hello"
        time.sleep(2)
        idle = _rss(process.pid)
        load = Load(ws, base, time.monotonic() + SECONDS)
        peak = [idle]
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                peak[0] = max(peak[0], _rss(process.pid))
                time.sleep(0.25)

        errors = []

        def role(function, seed):
            try:
                function(load, random.Random(seed))
            except Exception as error:  # recorded, the other tabs go on
                errors.append(f"{function.__name__}: {type(error).__name__}: {error}")

        threads = [threading.Thread(target=sample, daemon=True)] + [
            threading.Thread(target=role, args=(function, i), daemon=True)
            for i, function in enumerate(ROLES)
        ]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads[1:]:
            thread.join(timeout=SECONDS + 240)
        elapsed = time.monotonic() - began
        # Every tab is closed: the sessions leave, their work ends, and after
        # IDLE_SECONDS without a session the server drops its compiled programs.
        time.sleep(server.IDLE_SECONDS + 5)
        after = _rss(process.pid)
        sampling.set()
        with connect(ws, origin=base, max_size=None) as last:  # still serving
            assert json.loads(last.recv(timeout=60))["type"] == "hello"
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    report = {
        "seconds": round(elapsed, 1),
        "tabs": len(load.hellos),
        "hello_max_s": round(max(load.hellos), 3),
        "hello_median_s": round(statistics.median(load.hellos), 3),
        "hello_p95_s": round(statistics.quantiles(load.hellos, n=20)[-1], 3),
        "hellos_over_limit": sum(seconds >= HELLO_SECONDS for seconds in load.hellos),
        "rss_idle_mb": round(idle),
        "rss_peak_mb": round(peak[0]),
        "rss_after_close_mb": round(after),
        "counts": load.counts,
        "internal_errors": len(load.internal),
        "loadavg": pathlib.Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(report, indent=1))
    out = os.environ.get("DLVR_JAX_LOAD_REPORT") or str(tmp_path / "load.json")
    pathlib.Path(out).write_text(json.dumps(report, indent=1) + "\n")
    assert not errors, errors
    assert not load.failures, load.failures[:5]
    assert not load.internal, load.internal[:5]
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert report["hello_max_s"] < HELLO_SECONDS, report
    assert report["rss_peak_mb"] < PEAK_MB, report
    assert report["rss_after_close_mb"] < idle + AFTER_CLOSE_MB, report
