"""Shared test configuration: hypothesis profiles and helpers.

Profiles (choose with ``HYPOTHESIS_PROFILE``):

- ``ci`` (default): derandomized, no deadline, a modest number of examples,
  so every run of the suite, in CI or locally, sees the same examples.
- ``fuzz``: random and ten times longer, for local bug hunting:
  ``HYPOTHESIS_PROFILE=fuzz pytest``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import jax
import pytest
from hypothesis import HealthCheck, settings

from dlvr_jax import _compiled

# The estimators turn on JAX's persistent compilation cache in the user's cache folder at their
# first fit unless DLVR_JAX_NO_CACHE is set: the suite never writes there (tests of the cache
# set or clear it in their own environments).
os.environ.setdefault("DLVR_JAX_NO_CACHE", "1")

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=20,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz",
    deadline=None,
    max_examples=200,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Catch accidental broadcasting in library code.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs() -> Iterator[None]:
    """Drops JAX's compiled programs after each test module.

    Every XLA:CPU executable holds memory maps; the whole suite in one process
    compiles thousands of programs, and kept alive they passed Linux's limit of
    65,530 maps per process (vm.max_map_count), where the next compilation
    crashed with a segmentation fault. Measured: 58,000 maps after 500 tests.
    """
    yield
    _compiled.clear()  # the registry's entries and JAX's compiled programs
    gc.collect()


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(0)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail fast when a run that must be multi-device (tox -e multidevice) has one device.

    Without this, the multidevice tests would all skip and the run would pass silently.
    """
    required = int(os.environ.get("DLVR_JAX_REQUIRE_DEVICES", "0") or 0)
    if required and jax.local_device_count() < required:
        pytest.exit(
            f"DLVR_JAX_REQUIRE_DEVICES={required} but JAX sees {jax.local_device_count()} "
            "device(s); set XLA_FLAGS=--xla_force_host_platform_device_count=8",
            returncode=1,
        )
