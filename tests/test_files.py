"""Tests of the files dlvr_jax writes: their mode, their temporaries, and refusing a lie.

The mode is the umask's, as ``open()`` gives (0644 under umask 022); a save
removes the stale temporaries of its own file, never a live writer's; a
corrupted checkpoint is refused by ``--resume`` in one line (exit 2); an old
checkpoint resumes with a note; a CSV value past float32 is one error line,
no NumPy warning. The command-line tests are ``e2e`` (fresh processes, the
CLI end to end): ``pytest -m e2e tests/test_files.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import jax
import pytest

from dlvr_jax import _io, checkpoint, cli, models, optim, train

ROOT = Path(__file__).resolve().parent.parent


def child_env():
    """The environment of a child process that imports this checkout's dlvr_jax."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), DLVR_JAX_NO_CACHE="1")
    env.pop("DLVR_JAX_DEBUG", None)
    return env


@contextlib.contextmanager
def umask(mask):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def small_state():
    x = jax.numpy.zeros((4, 2))
    return train.create_train_state(
        jax.random.key(0), models.MLP(hidden=(3,)), optim.optimizer("sgd", 0.1), x
    )


def temporaries(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


# ---- the mode the umask gives ----------------------------------------------


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o027, 0o640)])
def test_atomic_writes_get_the_mode_the_umask_gives(tmp_path, mask, expected):
    with umask(mask):
        _io.write_atomic(tmp_path / "a.bin", lambda stream: stream.write(b"1"))
        with _io.atomic_open(tmp_path / "b.txt", "w") as stream:
            stream.write("1")
        checkpoint.save(tmp_path / "c.ckpt", small_state())
        with open(tmp_path / "plain", "w") as stream:  # what open() gives, for reference
            stream.write("1")
        # Replacing an existing file: the new file gets the umask's mode too.
        os.chmod(tmp_path / "a.bin", 0o600)
        _io.write_atomic(tmp_path / "a.bin", lambda stream: stream.write(b"2"))
    assert mode(tmp_path / "plain") == expected
    for name in ("a.bin", "b.txt", "c.ckpt"):
        assert mode(tmp_path / name) == expected, name
    assert (tmp_path / "a.bin").read_bytes() == b"2"
    assert temporaries(tmp_path) == []


# ---- stale temporaries -------------------------------------------------------

WRITER = """
import sys
from dlvr_jax import _io
with _io.atomic_open(sys.argv[1], "wb") as stream:
    stream.write(b"half a checkpoint")
    stream.flush()
    print("writing", flush=True)
    sys.stdin.read()  # until the test kills this process or closes stdin
"""


@contextlib.contextmanager
def writer_in_the_middle_of_a_save(path):
    """A child process that has opened ``path``'s temporary, written to it, and waits."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "writing\n"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)


def dead_pid():
    """The id of a process that has exited (reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def test_a_save_killed_with_sigkill_leaves_a_temporary_the_next_save_removes(tmp_path):
    path = tmp_path / "run.ckpt"
    state = small_state()
    checkpoint.save(path, state)
    before = path.read_bytes()
    with writer_in_the_middle_of_a_save(path) as child:
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    left = temporaries(tmp_path)
    assert len(left) == 1
    assert re.fullmatch(r"\.run\.ckpt\.[0-9a-f]{6}-\d+-\d+-[a-z0-9]{8}\.tmp", left[0])
    assert (tmp_path / left[0]).read_bytes() == b"half a checkpoint"
    assert path.read_bytes() == before  # the old checkpoint stays whole and loadable
    assert _io.stale_temporaries(path) == [str(tmp_path / left[0])]
    checkpoint.save(path, state)
    assert temporaries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]
    checkpoint.load(path, state)


def test_a_live_writers_temporary_is_never_removed(tmp_path):
    """Two writers of one file: a save leaves the other's temporary; the last rename wins."""
    path = tmp_path / "shared.ckpt"
    state = small_state()
    with writer_in_the_middle_of_a_save(path) as child:
        (busy,) = temporaries(tmp_path)
        assert _io.stale_temporaries(path) == []
        checkpoint.save(path, state)
        assert temporaries(tmp_path) == [busy]  # still writing: kept
        assert child.stdin is not None
        child.stdin.close()  # the other writer finishes: its rename wins
        assert child.wait(timeout=30) == 0
    assert path.read_bytes() == b"half a checkpoint"
    assert temporaries(tmp_path) == []


def test_only_the_files_own_stale_temporaries_are_removed(tmp_path):
    path = tmp_path / "a.ckpt"
    with _io.atomic_open(tmp_path / "probe", "wb"):  # this host's tag, from a real temporary
        (probe,) = temporaries(tmp_path)
    host = probe.split(".")[2][:6]
    dead = dead_pid()
    old = time.time() - 2 * _io.STALE_SECONDS
    names = {
        f".a.ckpt.{host}-{dead}-1-abcdefgh.tmp": True,  # this host, its writer gone
        ".a.ckpt.zz7_ab12.tmp": True,  # a mkstemp name of an earlier version, old
        ".a.ckpt.qwertyui.tmp": False,  # the same, fresh: it may be in use
        f".a.ckpt.{'0' if host[0] != '0' else '1'}{host[1:]}-{dead}-1-abcdefgh.tmp": False,
        f".a.ckpt.bak.{host}-{dead}-1-abcdefgh.tmp": False,  # a.ckpt.bak's
        f".b.ckpt.{host}-{dead}-1-abcdefgh.tmp": False,  # b.ckpt's
        f".a.ckpt.{host}-{os.getpid()}-1-abcdefgh.tmp": True,  # this pid, another start
        "a.ckpt.tmp": False,  # not a temporary's name
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    os.utime(tmp_path / ".a.ckpt.zz7_ab12.tmp", (old, old))
    checkpoint.save(path, small_state())
    kept = {p.name for p in tmp_path.iterdir()}
    assert kept == {"a.ckpt", "probe"} | {name for name, stale in names.items() if not stale}
    # Another host's temporary, once old, is stale too.
    other = next(name for name, stale in names.items() if not stale and "-1-abcd" in name)
    os.utime(tmp_path / other, (old, old))
    assert _io.stale_temporaries(path) == [str(tmp_path / other)]


# ---- the command line: modes, a corrupted or old checkpoint, a CSV past float32 ------

SMALL = ("mlp", "--n", "200", "--hidden", "4", "--batch-size", "50", "--no-progress")


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def _no_user_cache(monkeypatch):
    monkeypatch.setenv("DLVR_JAX_NO_CACHE", "1")


@pytest.mark.e2e
@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_a_cli_run_writes_files_with_the_umasks_mode(tmp_path, mask, expected):
    out, ckpt = tmp_path / "out", tmp_path / "state.ckpt"
    done = subprocess.run(
        [sys.executable, "-m", "dlvr_jax", *SMALL, "--epochs", "3", "--checkpoint", str(ckpt),
         "--out", str(out)],
        preexec_fn=lambda: os.umask(mask),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 2
    for path in (ckpt, out / "metrics.json", *pngs):
        assert mode(path) == expected, path
    assert temporaries(out) == temporaries(tmp_path) == []


def corrupt(path, offset):
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0x10
    path.write_bytes(bytes(blob))


@pytest.mark.e2e
@pytest.mark.usefixtures("_no_user_cache")
def test_resume_from_a_corrupted_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    ckpt = tmp_path / "state.ckpt"
    status, _, err = run(
        capsys, *SMALL, "--epochs", "3", "--checkpoint", str(ckpt), "--out", str(tmp_path / "a")
    )
    assert status == 0, err
    size = ckpt.stat().st_size
    intact = ckpt.read_bytes()
    for offset in (3, checkpoint.HEADER_SIZE + 7, size // 2, size - 1):
        corrupt(ckpt, offset)
        status, out, err = run(
            capsys, *SMALL, "--epochs", "6", "--resume", str(ckpt), "--out", str(tmp_path / "b")
        )
        assert status == 2
        assert err == f"dlvr-jax mlp: error: {ckpt} is corrupted (digest mismatch)\n", offset
        assert out == ""
        assert not (tmp_path / "b" / "metrics.json").exists()
        ckpt.write_bytes(intact)
    # In a fresh process, as a user meets it: one line, exit 2, no traceback.
    corrupt(ckpt, size // 3)
    done = subprocess.run(
        [sys.executable, "-m", "dlvr_jax", *SMALL, "--epochs", "6", "--resume", str(ckpt),
         "--out", str(tmp_path / "c")],
        env=child_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"dlvr-jax mlp: error: {ckpt} is corrupted (digest mismatch)\n"
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.e2e
@pytest.mark.usefixtures("_no_user_cache")
def test_resume_from_an_old_checkpoint_without_a_digest_works_with_a_note(tmp_path, capsys):
    from flax import serialization

    ckpt = tmp_path / "state.ckpt"
    argv = (*SMALL, "--checkpoint", str(ckpt))
    assert run(capsys, *argv, "--epochs", "3", "--out", str(tmp_path / "a"))[0] == 0
    payload = serialization.msgpack_restore(ckpt.read_bytes())
    del payload["sha256"]
    payload["version"] = 1  # as dlvr_jax wrote it before digests
    ckpt.write_bytes(serialization.msgpack_serialize(payload))
    status, _, err = run(
        capsys, *argv, "--epochs", "6", "--resume", str(ckpt), "--out", str(tmp_path / "b")
    )
    assert status == 0, err
    notes = [line for line in err.splitlines() if "digest" in line]
    assert notes == [
        f"note: {ckpt} has no digest (checkpoint format version 1): loaded without an "
        "integrity check; saving it again adds one"
    ], err
    assert "UnverifiedCheckpointWarning" not in err  # not Python's two-line warning
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["epochs"] == 6
    assert checkpoint.info(ckpt).verified  # saved again by the resumed run: version 2


@pytest.mark.e2e
@pytest.mark.usefixtures("_no_user_cache")
@pytest.mark.parametrize("cell", ["1e39", "-1e39", "3.5e38"])
def test_a_csv_value_past_float32_is_one_line_without_a_numpy_warning(tmp_path, capsys, cell):
    path = tmp_path / "big.csv"
    rows = ["x1,x2,label", "0,1,0", "1,0,1", f"0.5,{cell},0", "1,1,1"]
    path.write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, out, err = run(capsys, "mlp", "--data", str(path), "--epochs", "1",
                               "--out", str(tmp_path / "o"))  # fmt: skip
    assert (status, out) == (2, "")
    assert err == (
        f"dlvr-jax mlp: error: {path}:4:2: column 2 is '{cell}', "
        "past float32's range (about ±3.4e38)\n"
    )
    assert [str(w.message) for w in caught] == []
