"""Tables of data: the package's one label policy and its one CSV parser (internal).

:func:`encode_labels` codes class labels ``0..k-1`` (names in sorted order,
integers in numeric order, one class refused); :func:`parse` reads a CSV's
text (features..., target last) into NumPy arrays, reporting every problem as
a :class:`CsvError` at ``source:line:column``. :mod:`dlvr_jax.data` builds its
``Dataset``/``Table`` from them and re-exports the public names
(``data.encode_labels``, ``data.Labels``, ``data.CsvError``). Host-only NumPy:
nothing here is traced.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import re
from typing import Any, Literal, NamedTuple

import numpy as np

from dlvr_jax import _validate as check

__all__ = ["CsvError", "Labels", "Parsed", "encode_labels", "parse", "read_text"]

Task = Literal["classification", "regression"]


class Labels(NamedTuple):
    """Class labels coded ``0..k-1`` (see :func:`encode_labels`).

    Attributes:
        codes: ``int32[n]``, the code of each label (a NumPy array).
        names: the ``k`` class names, ``names[code]`` (``str`` of each label).
        mapped: whether the codes differ from the labels as given (class
            names, or integers that are not exactly ``0..k-1``).
    """

    codes: np.ndarray
    names: tuple[str, ...]
    mapped: bool


def _integral_names(uniques: np.ndarray) -> tuple[str, ...]:
    return tuple(
        str(value) if isinstance(value, bool) else str(int(value)) for value in uniques.tolist()
    )


def _python_labels(items: list[Any], field: str) -> tuple[list[Any], np.ndarray] | np.ndarray:
    """Sorted distinct labels and codes of an object array, or a numeric array to code."""
    if all(isinstance(item, str) for item in items):
        kinds: list[Any] = sorted(set(items))
    elif all(check.is_int(item) for item in items):
        kinds = sorted(set(int(item) for item in items))
    elif all(isinstance(item, (numbers.Real, np.bool_)) for item in items):
        return np.asarray(
            items, dtype=bool if all(isinstance(i, (bool, np.bool_)) for i in items) else np.float64
        )
    else:
        odd = [item for item in items if not isinstance(item, (str, numbers.Real, np.bool_))]
        if odd:
            raise check.InvalidType(
                f"{field} must hold class labels (names or integers), got {check.show(odd[0])}",
                field=field,
            )
        raise check.InvalidType(
            f"{field} must hold class labels of one kind (all names or all numbers), got "
            f"{check.show(items)}",
            field=field,
        )
    index = {kind: code for code, kind in enumerate(kinds)}
    return kinds, np.fromiter((index[item] for item in items), np.int32, len(items))


def encode_labels(values: Any, *, field: str = "y", min_classes: int = 2) -> Labels:
    """The package's one label policy: class labels as codes ``0..k-1``, names kept.

    String labels become codes in sorted order; integer (or boolean, or
    integral float) labels in numeric order, so that labels already
    ``0..k-1`` keep their values (``mapped=False``) and any others (``1..3``,
    ``{-1, 1}``) are mapped (``mapped=True``). Codes preserve the labels' order.

    Args:
        values: ``[n]`` labels (a sequence or an array).
        field: the argument the labels came from, for messages.
        min_classes: fewest classes accepted; a classifier needs 2 (a loader may pass 1).

    Raises:
        InvalidArgument: for fewer than ``min_classes`` classes (a classifier
            needs at least two), non-finite or non-integral numbers, no labels
            or a rank other than 1; ``field`` set.
        InvalidType: for labels mixing names and numbers, or of no label kind.

    Examples:
        >>> from dlvr_jax import data
        >>> data.encode_labels(["setosa", "virginica", "setosa"])
        Labels(codes=array([0, 1, 0], dtype=int32), names=('setosa', 'virginica'), mapped=True)
        >>> data.encode_labels([3, 1, 2]).codes.tolist(), data.encode_labels([0, 1]).mapped
        ([2, 0, 1], False)
    """
    if check.is_tracer(values):
        raise check.InvalidType(
            f"{field} must be concrete labels, got a {check.show(values)}", field=field
        )
    if isinstance(values, (list, tuple)):  # NumPy would turn ["a", 1] into two strings
        host = np.fromiter(values, dtype=object, count=len(values))
    else:
        host = np.asarray(values)
    if host.ndim != 1:
        raise check.InvalidArgument(
            f"{field} must have rank 1, got shape {host.shape}", field=field
        )
    if host.size == 0:
        raise check.InvalidArgument(f"{field} must hold at least one label, got none", field=field)
    names: tuple[str, ...]
    if host.dtype.kind == "O":
        coded = _python_labels(host.tolist(), field)
        if isinstance(coded, np.ndarray):
            return encode_labels(coded, field=field, min_classes=min_classes)
        kinds, codes = coded
        names = tuple(str(kind) for kind in kinds)
        mapped = not all(check.is_int(kind) and kind == i for i, kind in enumerate(kinds))
    elif host.dtype.kind in "Ubiuf":
        if host.dtype.kind == "f":
            _check_integral(host, field)
        uniques, inverse = np.unique(host, return_inverse=True)
        codes = inverse.reshape(-1).astype(np.int32)
        if host.dtype.kind == "U":
            names, mapped = tuple(str(u) for u in uniques.tolist()), True
        else:
            names = _integral_names(uniques)
            mapped = not np.array_equal(uniques, np.arange(len(uniques)))
    else:
        raise check.InvalidType(
            f"{field} must hold class labels (names or integers), got dtype {host.dtype}",
            field=field,
        )
    if len(names) < min_classes:
        raise check.InvalidArgument(
            f"{field} holds one class ({names[0]!r}); a classifier needs at least two classes",
            field=field,
        )
    return Labels(codes, names, mapped)


def _check_integral(host: np.ndarray, field: str) -> None:
    bad = ~np.isfinite(host)
    if bad.any():
        index = int(np.argmax(bad))
        raise check.InvalidArgument(
            f"{field} must hold class labels, got {host[index]} at index [{index}]", field=field
        )
    bad = host != np.round(host)
    if bad.any():
        index = int(np.argmax(bad))
        raise check.InvalidArgument(
            f"{field} must hold class labels (integers or names), got {host[index]} at index "
            f"[{index}]; continuous targets are regression",
            field=field,
        )


class CsvError(check.InvalidArgument):
    """A problem in a CSV, at ``path:line:column`` (its message begins so).

    Attributes:
        path: the file's path (or :func:`parse_csv`'s ``source``).
        line: 1-based line of the file, the header line counted.
        column: 1-based column (CSV cell) of the problem.
        problem: the message without its location (``column 2 is not a number: 'oops'``).
        field: ``"path"`` (:func:`read_csv`, :func:`load_csv`) or ``"text"`` (:func:`parse_csv`).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int = 1,
        column: int = 1,
        problem: str = "",
        field: str | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.path, self.line, self.column, self.problem = path, line, column, problem


class Parsed(NamedTuple):
    """A CSV's contents as NumPy arrays (see :func:`parse`).

    Attributes:
        x: ``float64[n, d]`` features, each finite and within float32's range.
        y: ``int64[n]`` class labels as written (``encode=False``),
            ``int32[n]`` codes (``encode=True``) or ``float64[n]`` targets.
        task: ``"classification"`` or ``"regression"``.
        classes: the class names (``classes[code]``), or None.
        mapped: whether the class labels were re-coded.
        columns: the header's names, or ``x1..xd, y``.
    """

    x: np.ndarray
    y: np.ndarray
    task: Task
    classes: tuple[str, ...] | None
    mapped: bool
    columns: tuple[str, ...]


_FLOAT32_OVERFLOW = 2.0**128 - 2.0**103
"""The smallest magnitude that float32 rounds to infinity (float32's max + half an ulp)."""

_SURROGATES = re.compile("[\ud800-\udfff]")


class _Where(NamedTuple):
    source: str
    field: str


def _fail(where: _Where, line: int, column: int, problem: str) -> CsvError:
    return CsvError(
        f"{where.source}:{line}:{column}: {problem}",
        path=where.source,
        line=line,
        column=column,
        problem=problem,
        field=where.field,
    )


def _number(cell: str, column: int) -> float | str:
    """The cell's value, or the problem with it (one that float32 can hold, finite)."""
    text = cell.strip()
    if not text:
        return f"column {column} is empty"
    try:
        value = float(text)
    except ValueError:
        return f"column {column} is not a number: {check.show(cell)}"
    if not math.isfinite(value):
        return f"column {column} is not a finite number: {check.show(text)}"
    if abs(value) >= _FLOAT32_OVERFLOW:
        return f"column {column} is {check.show(text)}, past float32's range (about ±3.4e38)"
    return value


def _not_text(cell: str, column: int) -> str | None:
    found = _SURROGATES.search(cell)
    if found is None:
        return None
    code = ord(found.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as surrogateescape keeps it
        return f"column {column} is not UTF-8 text (byte 0x{code - 0xDC00:02x})"
    return f"column {column} holds a lone surrogate (\\u{code:04x}), not text"


class _Rows(NamedTuple):
    header: list[str] | None
    x: list[list[float]]
    targets: list[str]
    lines: list[int]
    width: int
    end: int
    failure: CsvError | None


def _scan(text: str, where: _Where) -> _Rows:
    """Every row's features (numbers) and target cell, and the first problem with the rest.

    Blank lines (and rows of empty cells) are skipped; the first other row is
    a header when its first cell is not a number.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    check_text = _SURROGATES.search(text) is not None
    header: list[str] | None = None
    x: list[list[float]] = []
    targets: list[str] = []
    lines: list[int] = []
    width, line, seen = 0, 0, False
    failure: CsvError | None = None
    try:
        for row in reader:
            first_line, line = line + 1, reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            problem, column = _text_problem(row) if check_text else (None, 0)
            if problem is None and not seen and not _is_number(row[0]):
                seen, header = True, row
                continue
            seen = True
            if problem is None:
                problem, column = _shape_problem(row, width)
                width = width or len(row)
            values: list[float] = []
            for column, cell in enumerate(row[:-1] if problem is None else (), start=1):
                value = _number(cell, column)
                if isinstance(value, str):
                    problem = value
                    break
                values.append(value)
            if problem is not None:
                failure = failure or _fail(where, first_line, column, problem)
                continue
            x.append(values)
            targets.append(row[-1])
            lines.append(first_line)
    except csv.Error as error:
        problem = f"not a well-formed CSV row ({error})"
        failure = failure or _fail(where, reader.line_num, 1, problem)
    return _Rows(header, x, targets, lines, width, line + 1, failure)


def _text_problem(row: list[str]) -> tuple[str | None, int]:
    for column, cell in enumerate(row, start=1):
        problem = _not_text(cell, column)
        if problem is not None:
            return problem, column
    return None, 0


def _shape_problem(row: list[str], width: int) -> tuple[str | None, int]:
    if width and len(row) != width:
        return f"expected {width} columns, got {len(row)}", min(len(row), width) + 1
    if not width and len(row) < 2:
        return "expected at least 2 columns (x..., y), got 1", 2
    return None, 0


def _integer(cell: str) -> int | None:
    try:
        return int(cell.strip())
    except ValueError:  # not an integer (or more digits than Python converts)
        return None


def _targets_as_numbers(rows: _Rows, where: _Where) -> np.ndarray:
    values = []
    for cell, line in zip(rows.targets, rows.lines, strict=True):
        value = _number(cell, rows.width)
        if isinstance(value, str):
            raise _fail(where, line, rows.width, value)
        values.append(value)
    return np.asarray(values, dtype=np.float64)


def _mixed(rows: _Rows, numeric: list[bool], where: _Where) -> CsvError:
    """Numbers and names in one target column: the first cell of the rarer kind."""
    names = numeric.count(False) <= len(numeric) / 2
    i = numeric.index(not names)
    cell, column = rows.targets[i], rows.width
    if names:
        problem = f"column {column} is not a number: {check.show(cell)}, but the other targets are"
    else:
        problem = f"column {column} is a number, {check.show(cell.strip())}, but the other targets"
    problem += " numbers" if names else " are names"
    hint = "; pass task='classification' to read every target as a class name"
    return _fail(where, rows.lines[i], column, problem + hint)


def _class_labels(rows: _Rows, where: _Where, task: Task | None) -> list[Any] | None:
    """The target column's class labels (ints, or names), or None for regression targets."""
    column = rows.width
    for cell, line in zip(rows.targets, rows.lines, strict=True):
        if not cell.strip():
            raise _fail(where, line, column, f"column {column} is empty")
    if task == "regression":
        return None
    ints = [_integer(cell) for cell in rows.targets]
    if all(value is not None for value in ints):
        return ints
    numeric = [_is_number(cell) for cell in rows.targets]
    if all(numeric):
        if task is None:
            return None
        labels = []
        for cell, line in zip(rows.targets, rows.lines, strict=True):
            value = _number(cell, column)
            if isinstance(value, str) or not value.is_integer():
                raise _fail(
                    where,
                    line,
                    column,
                    f"the target {check.show(cell.strip())} is not a class label (an integer or "
                    "a name); pass task='regression' for numeric targets",
                )
            labels.append(int(value))
        return labels
    if task is None and any(numeric):
        raise _mixed(rows, numeric, where)
    return [cell.strip() for cell in rows.targets]


def _raw_labels(rows: _Rows, where: _Where, labels: list[Any]) -> np.ndarray:
    """:func:`load_csv`'s labels: integers as written (each in ``[0, 2**31)``), names coded."""
    if not all(isinstance(label, int) for label in labels):
        return encode_labels(np.array(labels, dtype=object), min_classes=1).codes
    for label, cell, line in zip(labels, rows.targets, rows.lines, strict=True):
        if not 0 <= label < 2**31:
            raise _fail(
                where,
                line,
                rows.width,
                f"the target {check.show(cell.strip())} is not a class label (an integer in "
                "[0, 2**31)); data.read_csv maps any labels, or pass task='regression' for "
                "numeric targets",
            )
    return np.asarray(labels, dtype=np.int64)


def parse(text: str, *, source: str, field: str, task: Task | None, encode: bool) -> Parsed:
    """The one CSV parser (``data.parse_csv``, ``data.read_csv`` and ``data.load_csv`` use it).

    Args:
        text: the CSV's text (bytes that were not UTF-8 kept as surrogate escapes).
        source: what messages call the text (a path, ``"upload"``).
        field: the errors' ``field`` (the argument that carried the CSV).
        task: ``"classification"``, ``"regression"`` or None to infer.
        encode: apply :func:`encode_labels` (names, mapping, two classes at
            least); else integer labels are kept as written (each in
            ``[0, 2**31)``), names coded and one class accepted.

    Raises:
        CsvError: at ``source:line:column`` for every problem.
    """
    where = _Where(source, field)
    if task is not None:
        check.choice("task", task, ("classification", "regression"))
    rows = _scan(text[1:] if text.startswith("\ufeff") else text, where)
    targets = None
    try:
        labels = _class_labels(rows, where, task) if rows.targets else None
        if labels is None:
            targets = _targets_as_numbers(rows, where)
    except CsvError as error:
        first = rows.failure
        if first is None or (error.line, error.column) < (first.line, first.column):
            raise
        raise first from None
    if rows.failure is not None:
        raise rows.failure
    if not rows.x:
        raise _fail(where, rows.end, 1, "no data rows (rows of numbers: features..., target last)")
    d = rows.width - 1
    header = rows.header
    columns = (
        tuple(name.strip() for name in header)
        if header is not None and len(header) == rows.width
        else (*(f"x{i + 1}" for i in range(d)), "y")
    )
    x = np.asarray(rows.x, dtype=np.float64).reshape(len(rows.x), d)
    if labels is None:
        return Parsed(x, np.asarray(targets), "regression", None, False, columns)
    if not encode:
        return Parsed(x, _raw_labels(rows, where, labels), "classification", None, False, columns)
    coded = encode_labels(np.array(labels, dtype=object), field=columns[-1], min_classes=1)
    if len(coded.names) < 2:
        problem = (
            f"column {rows.width} ({columns[-1]}) holds one class, {check.show(coded.names[0])}; "
            "a classifier needs at least two classes"
        )
        raise _fail(where, rows.lines[0], rows.width, problem)
    return Parsed(x, coded.codes, "classification", coded.names, coded.mapped, columns)


def read_text(path: str | os.PathLike[str]) -> str:
    """A file's text as UTF-8, any byte that is not kept as a surrogate escape (found by parse)."""
    with open(path, "rb") as stream:
        raw = stream.read()
    return raw.decode("utf-8", errors="surrogateescape")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
