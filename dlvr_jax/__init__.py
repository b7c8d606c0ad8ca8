"""dlvr_jax: the introductory deep-learning chapter of DLVR as a functional JAX library.

Modules are flat and public; import the ones you need::

    from dlvr_jax import data, perceptron, viz

Importing the package itself loads nothing heavy: every module, ``data`` and
``perceptron`` included, is imported when first used (``dlvr_jax.data``
works as an attribute too), so ``dlvr-jax --help`` starts without JAX, and
only ``viz`` ever loads matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The other modules (models, losses, optim, descent, engine, train, parallel,
# checkpoint, tensor, viz, jobs, cli) are imported by name:
# ``from dlvr_jax import train``.
__all__ = ["__version__", "data", "perceptron"]


def __getattr__(name: str) -> Any:
    """``dlvr_jax.data`` and ``dlvr_jax.perceptron`` are imported on first use (PEP 562)."""
    if name in ("data", "perceptron"):
        return importlib.import_module(f"dlvr_jax.{name}")
    raise AttributeError(f"module 'dlvr_jax' has no attribute {name!r}")
