"""The Playground's wire protocol (v1): message validation and the binary snapshot encoding.

This module is the authoritative implementation of ``PROTOCOL.md`` (beside it):

- :func:`parse_message` checks one text frame from the page (JSON, an object
  with a known ``"type"``, only that type's fields, each of the right type and
  in range) and returns it normalised, or raises :class:`ProtocolError` whose
  message names the field, the value and what is expected (and whose
  ``field`` attribute names the field);
- :func:`check_config` does the same for a ``config`` message's fields; the
  constraints are declared once, as tables (:data:`CONFIG_RULES`,
  :data:`MESSAGE_RULES`), checked by ``_validate.check_params``;
- :func:`encode_snapshot` / :func:`decode_snapshot` write and read a snapshot
  frame: ``uint32 H`` (little-endian) | ``H`` bytes of UTF-8 JSON header |
  zero padding to a multiple of 4 | float32 data (C order), each array placed
  at ``header["arrays"][name]["offset"]`` bytes from the start of the data
  section with its ``shape``.

Nothing here runs training or touches the network; the server and the session
call it.

Examples:
    >>> import numpy as np
    >>> from dlvr_jax.playground import protocol
    >>> frame = protocol.encode_snapshot({"type": "snapshot", "epoch": 3},
    ...                                  {"w": np.ones((2, 3), np.float32)})
    >>> header, arrays = protocol.decode_snapshot(frame)
    >>> header["epoch"], arrays["w"].shape
    (3, (2, 3))
    >>> protocol.parse_message('{"type": "play"}')
    {'type': 'play'}
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from dlvr_jax import _validate as check
from dlvr_jax import data, models, optim

__all__ = [
    "CONFIG_RULES",
    "DATASETS",
    "DEFAULT_CONFIG",
    "LIMITS",
    "LOSSES",
    "MAX_CSV_BYTES",
    "MAX_CSV_ROWS",
    "MAX_FRAME_BYTES",
    "MESSAGE_FIELDS",
    "MESSAGE_RULES",
    "VERSION",
    "ProtocolError",
    "check_config",
    "decode_snapshot",
    "encode_snapshot",
    "options",
    "parse_message",
]

VERSION = 1
"""The protocol's version."""

DATASETS: tuple[str, ...] = (
    "circle",
    "xor",
    "gaussian",
    "spiral",
    "linear",
    "moons",
    "plane",
    "multi_gaussian",
    "upload",
)
"""The ``dataset`` names: the generators of :mod:`dlvr_jax.data`, and ``upload`` (a CSV)."""

LOSSES: dict[str, tuple[str, ...]] = {
    "classification": ("cross_entropy", "mse"),
    "regression": ("mse",),
}
"""The losses each problem type may use (the first is its default)."""

MAX_FRAME_BYTES = 12 * 1024 * 1024
"""The largest text frame the server reads (uploads included)."""

MAX_CSV_BYTES = 10 * 1024 * 1024
"""The largest CSV an ``upload`` may carry (UTF-8 bytes)."""

MAX_CSV_ROWS = 100_000
"""The most data rows an ``upload`` may carry."""

DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": "circle",
    "noise": 0,
    "trainRatio": 50,
    "batchSize": 10,
    "points": 500,
    "seed": 0,
    "features": ["x1", "x2"],
    "hidden": [4, 2],
    "activation": "tanh",
    "learningRate": 0.03,
    "optimizer": "sgd",
    "regularization": "none",
    "regularizationRate": 0.0,
    "problem": "classification",
    "loss": "cross_entropy",
    "dropout": 0.0,
    "residual": False,
    "resolution": 50,
    "speed": 60,
    "patience": 0,
}
"""A new session's configuration: the TensorFlow Playground's defaults.

Two fields pace the lesson and never change the run's numbers: ``speed`` (the
epochs per second training aims at: 60 is one epoch per animation frame, as
the TensorFlow Playground trains; 0 is as fast as it goes) and ``patience``
(stop when the test loss has not improved for that many epochs; 0 never stops).
"""

LIMITS: dict[str, Any] = {
    "noise": [0, 50],
    "trainRatio": [10, 90],
    "batchSize": [1, 500],
    "points": [50, 5000],
    "seed": [0, 2**31 - 1],
    "hiddenLayers": [0, 16],
    "hiddenWidth": [1, 256],
    "learningRate": [0.0, 10.0],
    "regularizationRate": [0.0, 10.0],
    "dropout": [0.0, 1.0],
    "resolution": [10, 200],
    "speed": [0, 100000],
    "patience": [0, 100000],
    "sweepLearningRates": [1, 16],
    "sweepSeeds": [1, 8],
    "sweepEpochs": [1, 2000],
    "frameBytes": MAX_FRAME_BYTES,
    "csvBytes": MAX_CSV_BYTES,
    "csvRows": MAX_CSV_ROWS,
}
"""The ranges of the numbers a message may carry (sent in ``hello``). ``learningRate``
is in ``(0, 10]``, ``dropout`` in ``[0, 1)``; the others are closed."""


class ProtocolError(check.InvalidArgument):
    """A message the protocol refuses; ``code`` is the error frame's code.

    Attributes:
        code: ``"bad_message"`` (or ``"bad_upload"``, ``"too_many_sessions"``...).
        field: the message's field concerned (``"learningRate"``), or None.
    """

    def __init__(self, message: str, code: str = "bad_message", *, field: str | None = None):
        super().__init__(message, field=field)
        self.code = code


def _show(value: Any) -> str:
    """A value as the error message shows it: JSON, cut to 60 characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _activations() -> tuple[str, ...]:
    return tuple(sorted(models.activations))


def _between(kind: type, name: str, closed: check.Closed = "both") -> check.Interval:
    low, high = LIMITS[name]
    return check.Interval(kind, low, high, closed=closed)


CONFIG_RULES: dict[str, check.Rules] = {
    "dataset": check.Options(*DATASETS),
    "noise": _between(int, "noise"),
    "trainRatio": _between(int, "trainRatio"),
    "batchSize": _between(int, "batchSize"),
    "points": _between(int, "points"),
    "seed": _between(int, "seed"),
    "features": check.ListOf(
        check.Options(*data.FEATURES), min_len=1, distinct=True, into=list, noun="names"
    ),
    "hidden": check.ListOf(
        _between(int, "hiddenWidth"),
        max_len=LIMITS["hiddenLayers"][1],
        into=list,
        noun="layer widths",
    ),
    "activation": check.Options(source=_activations),
    "learningRate": _between(float, "learningRate", "right"),
    "optimizer": check.Options(source=optim.names),
    "regularization": check.Options("none", "l1", "l2"),
    "regularizationRate": _between(float, "regularizationRate"),
    "problem": check.Options("classification", "regression"),
    "loss": check.Options("cross_entropy", "mse"),
    "dropout": _between(float, "dropout", "left"),
    "residual": check.Boolean(),
    "resolution": _between(int, "resolution"),
    "speed": _between(int, "speed"),
    "patience": _between(int, "patience"),
}
"""The constraints of a ``config`` message's fields, one table (checked by ``check_params``)."""

MESSAGE_RULES: dict[str, dict[str, check.Rules]] = {
    "config": {"config": None},  # checked by check_config against CONFIG_RULES
    "play": {},
    "pause": {},
    "step": {},
    "reset": {},
    "regenerate": {},
    "ack": {"epoch": check.Interval(int, 0, 2**53)},
    "upload": {
        "name": check.Text(1, 255, text="a file name of 1 to 255 characters"),
        "csv": check.Text(text="the file's text (a string)"),
    },
    "export": {},
    "sweep": {
        "learningRates": check.ListOf(
            _between(float, "learningRate", "right"),
            min_len=LIMITS["sweepLearningRates"][0],
            max_len=LIMITS["sweepLearningRates"][1],
            into=list,
            noun="learning rates",
        ),
        "seeds": _between(int, "sweepSeeds"),
        "epochs": _between(int, "sweepEpochs"),
    },
}
"""The constraints of each message type's fields besides ``type`` (all required)."""

MESSAGE_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(rules) for kind, rules in MESSAGE_RULES.items()
}
"""Each message type the page may send, and its fields besides ``type`` (all required)."""


def _checked(table: dict[str, check.Rules], values: dict[str, Any]) -> dict[str, Any]:
    """``check_params``, its errors as :class:`ProtocolError` (the field kept)."""
    try:
        return check.check_params(table, values)
    except (check.InvalidArgument, check.InvalidType) as error:
        raise ProtocolError(str(error), field=check.field_of(error)) from None


def check_config(config: Any) -> dict[str, Any]:
    """A ``config`` message's ``config`` object (any subset of the fields), checked.

    Cross-field rules (a problem against a dataset, a loss against a problem)
    are the session's: see :func:`dlvr_jax.playground.session.consistent`.

    Raises:
        ProtocolError: naming the field, the value and what is expected.
    """
    if not isinstance(config, dict):
        raise ProtocolError(f"config must be an object of fields, got {_show(config)}")
    for name in config:
        if name not in DEFAULT_CONFIG:
            raise ProtocolError(
                f"config.{_show(name)} is not a configuration field; expected one of "
                f"{sorted(DEFAULT_CONFIG)}",
                field="config",
            )
    checked = _checked(CONFIG_RULES, config)
    if "features" in checked:  # the Playground's order
        checked["features"] = [name for name in data.FEATURES if name in checked["features"]]
    return checked


def _check_upload_size(text: str) -> None:
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_CSV_BYTES:
        raise ProtocolError(
            f"csv is {size / 1e6:.1f} MB; uploads are limited to "
            f"{MAX_CSV_BYTES // (1024 * 1024)} MB",
            code="bad_upload",
            field="csv",
        )


def parse_message(frame: Any) -> dict[str, Any]:
    """One frame from the page, parsed and checked; returns the message (normalised).

    Args:
        frame: the frame's payload: ``str`` for a text frame, ``bytes`` for a
            binary one (always refused: the page sends JSON text only).

    Raises:
        ProtocolError: naming the field, the value and what is expected.
    """
    if not isinstance(frame, str):
        raise ProtocolError(
            "binary frames are not accepted; send JSON text frames (an object with a 'type')"
        )
    if len(frame) > MAX_FRAME_BYTES:
        raise ProtocolError(
            f"the frame has {len(frame)} characters; at most {MAX_FRAME_BYTES} are accepted"
        )
    try:
        message = json.loads(frame)
    except (json.JSONDecodeError, RecursionError):
        raise ProtocolError(
            f"the frame is not valid JSON: {_show(frame)}; expected an object with a 'type'"
        ) from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a JSON object with a 'type', got {_show(message)}")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in MESSAGE_FIELDS:
        raise ProtocolError(f"type must be one of {sorted(MESSAGE_FIELDS)}, got {_show(kind)}")
    fields = MESSAGE_FIELDS[kind]
    unknown = sorted(set(message) - {"type", *fields})
    if unknown:
        raise ProtocolError(
            f"{kind} message has unknown field {_show(unknown[0])}; expected only "
            f"{['type', *fields]}"
        )
    missing = [field for field in fields if field not in message]
    if missing:
        raise ProtocolError(f"{kind} message needs the field {_show(missing[0])}", field=missing[0])
    if kind == "config":
        message["config"] = check_config(message["config"])
        return message
    message.update(_checked(MESSAGE_RULES[kind], {f: message[f] for f in fields}))
    if kind == "upload":
        _check_upload_size(message["csv"])
    return message


def options() -> dict[str, Any]:
    """The choices the page offers (``hello``'s ``options``)."""
    return {
        "datasets": list(DATASETS),
        "activations": list(_activations()),
        "optimizers": list(optim.names()),
        "features": list(data.FEATURES),
        "losses": {problem: list(names) for problem, names in LOSSES.items()},
        "regressionDatasets": list(data.names("regression")),
    }


# ----------------------------------------------------------------------------
# Snapshots.


def encode_snapshot(header: Mapping[str, Any], arrays: Mapping[str, Any]) -> bytes:
    """A binary snapshot frame: the JSON ``header`` (with ``arrays`` filled in) and float32 data.

    Args:
        header: the header's fields; its ``"arrays"`` entry is written here.
        arrays: name -> array (converted to float32, C order).

    Returns:
        ``uint32 H | header (H bytes UTF-8) | padding to 4 | data``.
    """
    index: dict[str, Any] = {}
    blocks = []
    offset = 0
    for name, value in arrays.items():
        block = np.array(value, dtype="<f4", order="C")  # a copy; keeps 0-d arrays 0-d
        index[name] = {"offset": offset, "shape": list(block.shape)}
        blocks.append(block.tobytes())
        offset += block.nbytes
    document = dict(header)
    document["arrays"] = index
    text = json.dumps(document, allow_nan=False, separators=(",", ":")).encode("utf-8")
    padding = -(4 + len(text)) % 4
    return b"".join([struct.pack("<I", len(text)), text, b"\0" * padding, *blocks])


def decode_snapshot(frame: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of a frame written by :func:`encode_snapshot`.

    Raises:
        ProtocolError: for a frame too short for its header or arrays.
    """
    if len(frame) < 4:
        raise ProtocolError(f"a snapshot frame needs at least 4 bytes, got {len(frame)}")
    (size,) = struct.unpack_from("<I", frame)
    if 4 + size > len(frame):
        raise ProtocolError(f"the header says {size} bytes but the frame has {len(frame) - 4}")
    header = json.loads(frame[4 : 4 + size].decode("utf-8"))
    start = 4 + size + (-(4 + size) % 4)
    arrays = {}
    for name, entry in header["arrays"].items():
        shape = tuple(entry["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        begin = start + entry["offset"]
        if begin + 4 * count > len(frame):
            raise ProtocolError(f"array {name!r} runs past the end of the frame")
        arrays[name] = np.frombuffer(frame, "<f4", count, begin).reshape(shape)
    return header, arrays
