"""The ``gpu`` tox environment: install JAX's CUDA extra and run the suite on the GPU.

Where no NVIDIA GPU is present (no ``nvidia-smi``, or it lists no GPU) it
prints why and exits 0 without installing anything, so ``tox`` stays green
on CPU-only machines. ``DLVR_JAX_CUDA`` picks the extra (``cuda12`` by
default, ``cuda13`` for recent drivers). Extra arguments go to pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def _gpus() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in listed.stdout.splitlines() if line.startswith("GPU ")]


def main() -> int:
    gpus = _gpus()
    if not gpus:
        print(
            "gpu: SKIPPED: no NVIDIA GPU found (nvidia-smi missing or lists no GPU); "
            "nothing installed, no test run"
        )
        return 0
    print("gpu: found " + "; ".join(gpus))
    extra = os.environ.get("DLVR_JAX_CUDA", "cuda12")
    jax_version = subprocess.run(
        [sys.executable, "-c", "import jax; print(jax.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", f"jax[{extra}]=={jax_version}"], check=True
    )
    environment = dict(os.environ, JAX_PLATFORMS="cuda")
    check = (
        "import jax; d = jax.devices(); print('gpu: JAX devices', d); assert d[0].platform == 'gpu'"
    )
    subprocess.run([sys.executable, "-c", check], env=environment, check=True)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", *sys.argv[1:]], env=environment
    ).returncode


if __name__ == "__main__":
    raise SystemExit(main())
