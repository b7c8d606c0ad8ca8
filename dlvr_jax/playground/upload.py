"""Uploads: the CSV a page sends, read into a :class:`~dlvr_jax.data.Dataset` or refused by row.

The contract::

    dataset = load_upload(text)     # raises UploadError("row 17: ...") for a file it refuses

Rows are the file's lines, the header included (the numbering of the CLI's
``file:line:``). The limits are the protocol's (:data:`~.protocol.MAX_CSV_BYTES`,
:data:`~.protocol.MAX_CSV_ROWS`) and this module's (:data:`MAX_INPUTS`,
:data:`MAX_CLASSES`).
"""

from __future__ import annotations

import math
import os
import tempfile

import jax.numpy as jnp
import numpy as np

from dlvr_jax import data
from dlvr_jax.playground import protocol

__all__ = ["MAX_CLASSES", "MAX_INPUTS", "UploadError", "load_upload"]

MAX_CLASSES = 32
"""The most classes an uploaded CSV may have."""

MAX_INPUTS = 64
"""The most input columns an uploaded CSV may have."""


class UploadError(ValueError):
    """A CSV the Playground refuses; the message names the row (``row 17: ...``)."""


def load_upload(text: str) -> data.Dataset:
    """The :class:`~dlvr_jax.data.Dataset` of an uploaded CSV (via :func:`dlvr_jax.data.load_csv`).

    Raises:
        UploadError: naming the row of the first problem (``row 17: ...``; rows
            are the file's lines, the header included), or the limit passed.
    """
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > protocol.MAX_CSV_BYTES:
        raise UploadError(
            f"the file is {size / 1e6:.1f} MB; uploads are limited to "
            f"{protocol.MAX_CSV_BYTES // (1024 * 1024)} MB"
        )
    lines = text.splitlines()
    rows = sum(1 for line in lines if line.strip())
    if rows > protocol.MAX_CSV_ROWS + 1:  # + a header
        raise UploadError(
            f"the file has {rows} rows; uploads are limited to {protocol.MAX_CSV_ROWS:,} rows"
        )
    _scan_rows(lines)
    handle, path = tempfile.mkstemp(suffix=".csv", prefix="playground-upload-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        try:
            loaded = data.load_csv(path)
        except ValueError as error:
            raise UploadError(_row_message(str(error), path)) from None
    finally:
        os.unlink(path)
    d = int(loaded.x.shape[1])
    if d > MAX_INPUTS:
        raise UploadError(f"the file has {d} input columns; at most {MAX_INPUTS} are supported")
    if int(loaded.x.shape[0]) < 4:
        raise UploadError(f"the file has {int(loaded.x.shape[0])} data rows; at least 4 are needed")
    if jnp.issubdtype(loaded.y.dtype, jnp.integer):
        classes = int(np.asarray(loaded.y).max()) + 1
        if classes > MAX_CLASSES:
            raise UploadError(
                f"the target column has class labels up to {classes - 1}; at most "
                f"{MAX_CLASSES} classes (labels 0..{MAX_CLASSES - 1}) are supported"
            )
    return loaded


def _row_message(message: str, path: str) -> str:
    """``PATH:17: problem`` (from :func:`dlvr_jax.data.load_csv`) as ``row 17: problem``."""
    if message.startswith(f"{path}:"):
        rest = message[len(path) + 1 :]
        number, _, problem = rest.partition(":")
        if number.isdigit():
            return f"row {number}: {problem.strip()}"
        return rest.strip()
    return message.replace(path, "the file")


def _scan_rows(lines: list[str]) -> None:
    """Rows that ``load_csv`` would accept but the Playground cannot use: named by row."""
    for number, line in enumerate(lines, start=1):
        cells = [cell.strip() for cell in line.split(",")]
        if not line.strip():
            continue
        for column, cell in enumerate(cells, start=1):
            try:
                value = float(cell)
            except ValueError:
                break  # a header, or a bad cell that load_csv names
            if not math.isfinite(value):
                raise UploadError(f"row {number}: column {column} is not a finite number: {cell!r}")
        target = cells[-1]
        try:
            label = int(target)
        except ValueError:
            continue
        if label < 0:
            raise UploadError(
                f"row {number}: the target {target!r} is not a class label (an integer >= 0); "
                "write regression targets with a decimal point"
            )
