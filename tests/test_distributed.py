"""Two processes on 127.0.0.1 train data-parallel and match one process with 4 devices.

Each process has 2 CPU devices and runs ``tests/distributed_worker.py`` after
:func:`dlvr_jax.parallel.initialize` (JAX's distributed runtime, gloo CPU
collectives); the reference is the same script in one process with 4 devices.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlvr_jax import parallel

# Several processes started and joined: tox -e e2e.
pytestmark = pytest.mark.e2e

WORKER = Path(__file__).with_name("distributed_worker.py")
TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(devices: int, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DLVR_JAX_") and k not in ("XLA_FLAGS", "JAX_ENABLE_X64")
    }
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env.update(extra)
    return env


def _check(process: subprocess.Popen[str], output: str) -> None:
    assert process.returncode == 0, f"worker failed (status {process.returncode}):\n{output}"


def test_two_processes_equal_one_process_with_four_devices(tmp_path):
    port = _free_port()
    two = tmp_path / "two.npz"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(two)],
            env=_environment(
                2,
                **{
                    parallel.ENV_COORDINATOR: f"127.0.0.1:{port}",
                    parallel.ENV_NUM_PROCESSES: "2",
                    parallel.ENV_PROCESS_ID: str(i),
                },
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [worker.communicate(timeout=TIMEOUT)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs, strict=True):
        _check(worker, output)
    one = tmp_path / "one.npz"
    reference = subprocess.run(
        [sys.executable, str(WORKER), str(one)],
        env=_environment(4),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert reference.returncode == 0, reference.stdout + reference.stderr

    with np.load(two, allow_pickle=False) as a, np.load(one, allow_pickle=False) as b:
        assert int(a["processes"]) == 2
        assert int(b["processes"]) == 1
        assert int(a["devices"]) == int(b["devices"]) == 4
        names = [k for k in a.files if k.startswith("params/")]
        assert sorted(names) == sorted(k for k in b.files if k.startswith("params/"))
        assert len(names) == 6
        for name in [*names, "train_loss"]:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)
        assert a["train_loss"][-1] < a["train_loss"][0]


@pytest.mark.parametrize("missing", [parallel.ENV_NUM_PROCESSES, parallel.ENV_COORDINATOR])
def test_a_worker_without_its_coordinator_settings_fails_clearly(tmp_path, missing):
    env = {
        parallel.ENV_COORDINATOR: f"127.0.0.1:{_free_port()}",
        parallel.ENV_NUM_PROCESSES: "2",
        parallel.ENV_PROCESS_ID: "0",
    }
    env[missing] = ""
    script = "from dlvr_jax import parallel; parallel.initialize()"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=_environment(2, **env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode != 0
    assert "ValueError" in result.stderr
    assert "missing" in result.stderr or "needs the coordinator" in result.stderr
