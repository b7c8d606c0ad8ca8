"""Uploads: the CSV a page sends, parsed by :func:`dlvr_jax.data.parse_csv` or refused by row.

The contract::

    table = load_upload(text)   # a data.Table (dataset, task, class names), or UploadError

Every problem is named by row and column (``row 17: column 2 is not a number``):
rows are the file's lines, the header included, the numbering of the CLI's
``file:line:``; :attr:`UploadError.line` and :attr:`UploadError.column` carry
them. The label policy is the package's one (:func:`dlvr_jax.data.encode_labels`):
class names and integer labels other than ``0..k-1`` are mapped to ``0..k-1``
(the names kept), one class is refused. The limits are the protocol's
(:data:`~.protocol.MAX_CSV_BYTES`, :data:`~.protocol.MAX_CSV_ROWS`) and this
module's (:data:`MAX_INPUTS`, :data:`MAX_CLASSES`).

Examples:
    >>> from dlvr_jax.playground.upload import load_upload
    >>> table = load_upload("a,b,kind\\n0,1,cat\\n1,0,dog\\n1,1,cat\\n0,0,dog\\n")
    >>> table.task, table.classes, table.dataset.y.tolist()
    ('classification', ('cat', 'dog'), [0, 1, 0, 1])
    >>> try:
    ...     load_upload("0,0,1\\n1,1,1\\n2,2,1\\n3,3,1\\n")
    ... except UploadError as error:
    ...     print(error, (error.line, error.column))  # doctest: +ELLIPSIS
    row 1: column 3 ... one class, '1'; a classifier needs at least two classes (1, 3)
"""

from __future__ import annotations

from dlvr_jax import data
from dlvr_jax.playground import protocol

__all__ = ["MAX_CLASSES", "MAX_INPUTS", "MIN_ROWS", "UploadError", "load_upload"]

MAX_CLASSES = 32
"""The most classes an uploaded CSV may have."""

MAX_INPUTS = 64
"""The most input columns an uploaded CSV may have."""

MIN_ROWS = 4
"""The fewest data rows an uploaded CSV may have (some to train, some to test)."""


class UploadError(ValueError):
    """A CSV the Playground refuses; the message names the row (``row 17: ...``).

    Attributes:
        line: the row (the file's line, 1-based, the header counted), or None
            for a limit of the whole file.
        column: the column (1-based), or None.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line, self.column = line, column


def load_upload(text: str) -> data.Table:
    """The :class:`~dlvr_jax.data.Table` of an uploaded CSV.

    Raises:
        UploadError: naming the row and column of the problem (``row 17:
            column 2 ...``), or the limit passed.
    """
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > protocol.MAX_CSV_BYTES:
        raise UploadError(
            f"the file is {size / 1e6:.1f} MB; uploads are limited to "
            f"{protocol.MAX_CSV_BYTES // (1024 * 1024)} MB"
        )
    try:
        table = data.parse_csv(text, source="upload")
    except data.CsvError as error:
        raise UploadError(f"row {error.line}: {error.problem}", error.line, error.column) from None
    rows, inputs = (int(n) for n in table.dataset.x.shape)
    if rows > protocol.MAX_CSV_ROWS:
        raise UploadError(
            f"the file has {rows:,} data rows; uploads are limited to "
            f"{protocol.MAX_CSV_ROWS:,} rows"
        )
    if inputs > MAX_INPUTS:
        raise UploadError(
            f"the file has {inputs} input columns; at most {MAX_INPUTS} are supported"
        )
    if rows < MIN_ROWS:
        raise UploadError(f"the file has {rows} data rows; at least {MIN_ROWS} are needed")
    if table.classes is not None and len(table.classes) > MAX_CLASSES:
        raise UploadError(
            f"the target column has {len(table.classes)} classes; at most {MAX_CLASSES} "
            "are supported"
        )
    return table
