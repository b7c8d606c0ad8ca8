"""XLA compiler options shared by the modules that compile their own programs."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

# YNNPACK fusion hands small dots and their neighbours to a library on the CPU.
# Off, the training loop ran about 10% faster here (0.255 s against 0.283 s for
# the seed MLP's 2000 steps) and compiled faster, and the from-scratch matmul
# kernels of dlvr_jax.tensor stay loops that XLA generates itself.
NO_YNN_FUSION = {"xla_cpu_experimental_ynn_fusion_type": ""}

# A program that runs once per fit (the initialisation) is compiled for compile
# time: XLA's older CPU fusion emitters compiled the grid-search MLP's init (its
# random bits are long integer hashes) in 0.34 s instead of 0.44 s, with the same
# bits (tests/test_engine.py checks them against eager init); the training loop
# keeps the newer emitters, under which it ran about 15% faster.
RUN_ONCE = {"xla_cpu_use_fusion_emitters": False}


@functools.cache
def _accepted(options: tuple[tuple[str, Any], ...]) -> bool:
    """Whether this jaxlib knows ``options`` (a tiny program compiled with them)."""
    try:
        jax.jit(jnp.negative, compiler_options=dict(options)).lower(jnp.zeros(1)).compile()
    except Exception:  # an older or newer jaxlib without the flag: nothing to set
        return False
    return True


def _on_cpu(platform: str, options: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    items = tuple(options.items())
    return items if platform == "cpu" and _accepted(items) else ()


def cpu_options(platform: str) -> tuple[tuple[str, Any], ...]:
    """:data:`NO_YNN_FUSION` on the CPU if this jaxlib knows the flag, else nothing."""
    return _on_cpu(platform, NO_YNN_FUSION)


def run_once_options(platform: str) -> tuple[tuple[str, Any], ...]:
    """:data:`RUN_ONCE` on the CPU if this jaxlib knows the flag, else nothing."""
    return _on_cpu(platform, RUN_ONCE)
