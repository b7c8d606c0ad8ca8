"""The compilation-cache helper of the jobs: JAX's persistent cache in the user's cache folder.

The contract::

    compilation_cache(enabled=True) -> folder | None   # points JAX at the folder
    cache_in_use() -> folder | None                    # what metrics.json records

Internal to :mod:`dlvr_jax.jobs` (its names have no underscore so that the
jobs' modules may share them); :func:`compilation_cache` is public as
``jobs.compilation_cache``.
"""

from __future__ import annotations

import os

import jax

__all__ = ["compilation_cache"]


def _cache_directory() -> str:
    explicit = os.environ.get("DLVR_JAX_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dlvr_jax", "jax")


def compilation_cache(enabled: bool = True) -> str | None:
    """Points JAX's persistent compilation cache at the user's cache folder; returns it.

    The folder is ``$DLVR_JAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/dlvr_jax/jax``
    (``~/.cache/dlvr_jax/jax``). Returns None, and changes nothing, when
    ``enabled`` is false, ``DLVR_JAX_NO_CACHE`` is set (not ``0``) or the folder
    cannot be created.
    """
    if not enabled or os.environ.get("DLVR_JAX_NO_CACHE", "") not in ("", "0"):
        return None
    folder = _cache_directory()
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None  # read-only home: run without the cache
    jax.config.update("jax_compilation_cache_dir", folder)  # type: ignore[no-untyped-call]
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # type: ignore[no-untyped-call]
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)  # type: ignore[no-untyped-call]
    return folder


def cache_in_use() -> str | None:
    """The folder of JAX's persistent compilation cache, or None when it is off."""
    folder = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    return str(folder) if folder else None
