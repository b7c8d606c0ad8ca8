"""XLA compiler options shared by the modules that compile their own programs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

# YNNPACK fusion hands small dots and their neighbours to a library on the CPU.
# Off, the training loop ran about 10% faster here (0.255 s against 0.283 s for
# the seed MLP's 2000 steps) and compiled faster, and the from-scratch matmul
# kernels of dlvr_jax.tensor stay loops that XLA generates itself.
NO_YNN_FUSION = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.cache
def cpu_options(platform: str) -> tuple[tuple[str, str], ...]:
    """:data:`NO_YNN_FUSION` on the CPU if this jaxlib knows the flag, else nothing."""
    if platform != "cpu":
        return ()
    try:
        jax.jit(jnp.negative, compiler_options=NO_YNN_FUSION).lower(jnp.zeros(1)).compile()
    except Exception:  # an older jaxlib without YNNPACK: nothing to switch off
        return ()
    return tuple(NO_YNN_FUSION.items())
