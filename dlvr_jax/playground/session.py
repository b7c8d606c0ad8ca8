"""One Playground session: a configuration, its data and model, and training in compiled chunks.

The contract::

    session = Session()                       # the defaults: circle, [4, 2] tanh, SGD 0.03
    frames = session.handle(message)          # a checked message -> the frames to send back
    frames = session.train_chunk()            # while playing: one compiled chunk, maybe a snapshot

A frame is a ``dict`` (sent as JSON text) or ``bytes`` (a binary snapshot,
:func:`dlvr_jax.playground.protocol.encode_snapshot`). The server calls these
from a worker thread, never on its event loop; :attr:`Session.lock` makes
each call atomic.

How it trains: through the engine's compiled loop (:func:`dlvr_jax.engine.run`),
``k`` epochs at a time with ``k`` a power of two chosen so that one chunk
takes about :data:`CHUNK_SECONDS`; one compiled program per (shapes, ``k``),
reused by every chunk and every session of that shape. The learning rate
lives in the optimizer's state (:func:`dlvr_jax.optim.injected`) and the L1/L2
weights in the :class:`~dlvr_jax.train.TrainState`, so changing them never
recompiles. A run that goes to NaN/inf is stopped at the last good state,
found by running the good epochs of the chunk again (bit-identical, as the
engine's own loop does).

Reproducibility: the run is ``train.create_train_state`` then one
``train.fit(..., state=state)`` per stretch of epochs at one learning rate and
regularisation (:attr:`Session.segments`); :func:`dlvr_jax.playground.export.script`
writes exactly that, with dlvr_jax's public API, and gives the same bits.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import math
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

from dlvr_jax import checkpoint, data, engine, losses, models, optim, parallel, train
from dlvr_jax.playground import protocol

__all__ = [
    "CHUNK_SECONDS",
    "LADDER",
    "MAX_CLASSES",
    "MAX_INPUTS",
    "MAX_SHAPES",
    "Prepared",
    "Session",
    "UploadError",
    "load_upload",
    "prepare",
    "signed_mse",
]

CHUNK_SECONDS = 0.035
"""The wall time one training chunk aims at (the snapshot rate follows)."""

LADDER = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
"""The chunk sizes (epochs) a session uses: few, so that few programs are compiled per shape."""

STEP_SECONDS_GUESS = 20e-6
"""A first guess of one optimizer step's time, to pick the first chunk before it is measured."""

# The chunk programs compiled so far, by (shape key, epochs), shared by all sessions; and
# those being compiled, with an event set when done (one compilation per program).
_READY: set[tuple[Any, int]] = set()
_WARMING: dict[tuple[Any, int], threading.Event] = {}
_READY_LOCK = threading.Lock()


_clear_caches: Callable[[], None] = jax.clear_caches  # typed: mypy sees it as untyped

MAX_SHAPES = 48
"""Configurations of distinct shapes whose compiled programs are kept; one more clears them all."""

_SHAPES: set[Any] = set()


def _bound_programs(shape: Any) -> None:
    """Clears JAX's compiled programs when a new shape would pass :data:`MAX_SHAPES`.

    Each XLA:CPU program holds memory maps; a long-running server whose users
    try many configurations would otherwise reach the kernel's limit. Sessions
    of the kept shapes recompile once, at their next chunk.
    """
    with _READY_LOCK:
        if shape in _SHAPES:
            return
        if len(_SHAPES) >= MAX_SHAPES and not _WARMING:
            _SHAPES.clear()
            _READY.clear()
            _clear_caches()
        _SHAPES.add(shape)


def _compile_once(key: tuple[Any, int], compile_it: Callable[[], None]) -> None:
    """Runs ``compile_it`` unless ``key`` is compiled; waits if another thread compiles it."""
    with _READY_LOCK:
        if key in _READY:
            return
        event = _WARMING.get(key)
        owner = event is None
        if event is None:
            event = _WARMING[key] = threading.Event()
    if not owner:
        event.wait(timeout=120)
        return
    try:
        compile_it()
        with _READY_LOCK:
            _READY.add(key)
    finally:
        with _READY_LOCK:
            _WARMING.pop(key, None)
        event.set()


MAX_CLASSES = 32
"""The most classes an uploaded CSV may have."""

MAX_INPUTS = 64
"""The most input columns an uploaded CSV may have."""

MAX_IN_FLIGHT = 2
"""Snapshots sent and not yet acknowledged, at most."""

_RESUMABLE = ("learningRate", "regularization", "regularizationRate")
"""Fields whose change keeps training from the current state."""

_VIEW_FIELDS = ("resolution",)
"""Fields whose change only redraws the snapshot."""


def signed_mse(
    outputs: jax.Array, labels: jax.Array, weights: jax.Array | None = None
) -> jax.Array:
    """The Playground's classification loss: squared error of one output against labels ±1.

    Labels 0/1 become -1/+1 (as the TensorFlow Playground labels its points);
    the accuracy counts an output > 0 as class 1.
    """
    return losses.mean_squared_error(
        outputs, 2.0 * jnp.asarray(labels, outputs.dtype) - 1.0, weights
    )


class UploadError(ValueError):
    """A CSV the Playground refuses; the message names the row (``row 17: ...``)."""


class Prepared(NamedTuple):
    """A configuration's data, model and loss.

    Attributes:
        train_raw: the training points before the feature map (what the page plots).
        test_raw: the test points likewise.
        train: the training set the model sees (features, float32 / int32).
        test: the test set likewise.
        init_key: the key of ``train.create_train_state``.
        task: ``"classification"`` or ``"regression"``.
        classes: the number of classes, or None for regression.
        domain: ``[xmin, xmax, ymin, ymax]`` of the heatmaps.
        model: the :class:`~dlvr_jax.models.MLP`.
        loss: the loss, a name or :func:`signed_mse`.
        loss_name: the loss's name in the protocol (``cross_entropy`` or ``mse``).
        grid: whether the inputs are 2-D (so the snapshot has heatmaps).
    """

    train_raw: data.Dataset
    test_raw: data.Dataset
    train: data.Dataset
    test: data.Dataset
    init_key: jax.Array
    task: str
    classes: int | None
    domain: list[float]
    model: models.MLP
    loss: str | Callable[..., jax.Array]
    loss_name: str
    grid: bool


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


def _domain(x: np.ndarray) -> list[float]:
    """A square around the points, symmetric about 0, a little larger than they reach."""
    reach = float(np.max(np.abs(x))) if x.size else 1.0
    half = max(math.ceil(reach * 1.1 * 10) / 10, 0.1)
    return [-half, half, -half, half]


def prepare(config: dict[str, Any], upload: data.Dataset | None) -> Prepared:
    """The data, model and loss of a (checked, consistent) configuration.

    The steps are those the exported script runs, call for call, so that its
    data and initial state have the same bits: keys from
    ``jax.random.split(jax.random.key(seed), 3)``, the points from
    ``data.make`` (or the uploaded CSV), ``data.train_test_split``, then
    ``data.features`` for 2-D inputs.
    """
    keys = jax.random.split(jax.random.key(config["seed"]), 3)
    if config["dataset"] == "upload":
        if upload is None:
            raise protocol.ProtocolError(
                "dataset 'upload' needs an uploaded CSV first; send an upload message"
            )
        full = upload
    else:
        full = data.make(config["dataset"], keys[0], config["points"], noise=config["noise"] / 100)
    fraction = (100 - config["trainRatio"]) / 100
    train_raw, test_raw = data.train_test_split(keys[1], full, test_fraction=fraction)
    grid = int(full.x.shape[1]) == 2
    if grid:
        names = config["features"]
        train_set = data.Dataset(data.features(train_raw.x, names), train_raw.y)
        test_set = data.Dataset(data.features(test_raw.x, names), test_raw.y)
        domain = _domain(np.asarray(full.x))
    else:
        train_set, test_set = train_raw, test_raw
        domain = [-1.0, 1.0, -1.0, 1.0]
    task = config["problem"]
    loss: str | Callable[..., jax.Array]
    if task == "regression":
        classes, n_outputs, loss, loss_name = None, 1, "mse", "mse"
    else:
        labels = np.concatenate([np.asarray(train_raw.y), np.asarray(test_raw.y)])
        classes = max(2, int(labels.max()) + 1)
        if config["loss"] == "mse":
            n_outputs, loss, loss_name = 1, signed_mse, "mse"
        else:
            n_outputs, loss, loss_name = classes, "cross_entropy", "cross_entropy"
    model = models.MLP(
        hidden=tuple(config["hidden"]),
        n_outputs=n_outputs,
        activation=config["activation"],
        residual=config["residual"],
        dropout=config["dropout"],
    )
    kind = "regression" if task == "regression" else "classification"
    train_set = engine.check_dataset("train", train_set, losses.get_loss(loss), model, kind)
    test_set = engine.check_dataset("test", test_set, losses.get_loss(loss), model, kind)
    return Prepared(
        train_raw, test_raw, train_set, test_set, keys[2], kind, classes, domain, model, loss,
        loss_name, grid,
    )  # fmt: skip


def _output_mode(prepared: Prepared) -> str:
    if prepared.task == "regression":
        return "value"
    if prepared.loss_name == "mse":
        return "signed"
    return "binary" if prepared.classes == 2 else "multi"


@functools.partial(jax.jit, static_argnames=("names", "mode", "classes", "resolution"))
def _views(
    state: train.TrainState,
    domain: jax.Array,
    train_set: data.Dataset,
    test_set: data.Dataset,
    *,
    names: tuple[str, ...] | None,
    mode: str,
    classes: int,
    resolution: int,
) -> dict[str, jax.Array]:
    """The snapshot's pictures and numbers in one program (compiled once per shape).

    Output, features and neurons on the grid, the confusion matrix of the test
    set, and the losses and accuracies of the current parameters.
    """
    model = cast(models.MLP, cast(engine.ModuleApply, state.apply_fn).module)
    params = state.params
    out: dict[str, jax.Array] = {}
    for prefix, dataset in (("train", train_set), ("test", test_set)):
        evaluation = engine.evaluate_state(state, dataset)
        out[f"{prefix}Loss"] = evaluation.loss
        out[f"{prefix}Accuracy"] = evaluation.accuracy
    if names is not None:
        r = resolution
        x1 = jnp.linspace(domain[0], domain[1], r)
        x2 = jnp.linspace(domain[3], domain[2], r)  # row 0 is the top
        g1, g2 = jnp.meshgrid(x1, x2)
        points = jnp.stack([g1.ravel(), g2.ravel()], axis=1)
        inputs = data.features(points, names)
        outputs: jax.Array = cast(jax.Array, model.apply(params, inputs))
        if mode == "binary":
            value = 2.0 * jax.nn.softmax(outputs, axis=-1)[:, 1] - 1.0
        elif mode == "multi":
            value = jnp.argmax(outputs, axis=-1).astype(jnp.float32)
            out["confidence"] = jnp.max(jax.nn.softmax(outputs, axis=-1), axis=-1).reshape(r, r)
        elif mode == "signed":
            value = jnp.clip(outputs[:, 0], -1.0, 1.0)
        else:
            value = outputs[:, 0]
        out["output"] = value.reshape(r, r)
        out["features"] = inputs.T.reshape(-1, r, r)
        hidden = models.hidden_activations(model, params, inputs)
        if hidden:
            out["neurons"] = jnp.concatenate(hidden, axis=1).T.reshape(-1, r, r)
    if mode != "value":
        logits: jax.Array = cast(jax.Array, model.apply(params, test_set.x))
        if logits.shape[-1] == 1:
            predicted = (logits[:, 0] > 0).astype(jnp.int32)
        else:
            predicted = jnp.argmax(logits, axis=-1)
        out["confusion"] = (
            jnp.zeros((classes, classes), jnp.float32).at[test_set.y, predicted].add(1.0)
        )
    return out


class _Pending(NamedTuple):
    train_loss: list[np.ndarray]
    test_loss: list[np.ndarray]
    train_accuracy: list[np.ndarray]
    test_accuracy: list[np.ndarray]
    grad_norms: list[np.ndarray]


def _empty_pending() -> _Pending:
    return _Pending([], [], [], [], [])


def _pieces(epochs: int, sizes: tuple[int, ...]) -> list[int]:
    """``epochs`` as a sum of ``sizes`` (compiled programs) and ones, largest first."""
    pieces = []
    for size in (*sorted(sizes, reverse=True), 1):
        count, epochs = divmod(epochs, size)
        pieces += [size] * count
    return pieces


class Session:
    """One browser tab's Playground: configuration, data, model, state and training.

    Attributes:
        id: the session's id (sent in ``hello``).
        config: the effective configuration (the protocol's field names).
        playing: whether the server trains between messages.
        lock: held by every public method; the server calls them from worker threads.
        segments: ``[epochs, learning_rate, l1, l2]`` stretches of this run
            (what the exported script replays).
        chunks: compiled chunks run so far (a closed session's count stops).
        diverged: the 1-based epoch at which the run diverged, or None.
        precompile: compile a new configuration's first chunk at once, in a
            background thread (so Play starts without waiting).
    """

    def __init__(self, config: dict[str, Any] | None = None, *, precompile: bool = True) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.precompile = precompile
        self.lock = threading.RLock()
        self.config: dict[str, Any] = dict(protocol.DEFAULT_CONFIG)
        self.upload: data.Dataset | None = None
        self.upload_text: str | None = None
        self.upload_name: str | None = None
        self.playing = False
        self.closed = False
        self.chunks = 0
        self.diverged: int | None = None
        self.unacknowledged: list[int] = []
        self._seconds_per_epoch: float | None = None
        self._last_snapshot_time = time.perf_counter()
        self._epochs_since_snapshot = 0
        self._pending = _empty_pending()
        if config:
            self.config.update(self._consistent(protocol.check_config(config)))
        self._build()

    # ------------------------------------------------------------------ setup

    def _consistent(self, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes`` with the cross-field rules applied (problem, dataset, loss)."""
        merged = dict(self.config)
        merged.update(changes)
        regression = set(data.names("regression"))
        if "dataset" in changes:
            if changes["dataset"] == "upload":
                upload_task = self._upload_task()
                if upload_task is None:
                    raise protocol.ProtocolError(
                        "dataset 'upload' needs an uploaded CSV first; send an upload message"
                    )
                problem = upload_task
            else:
                problem = "regression" if changes["dataset"] in regression else "classification"
            if "problem" in changes and changes["problem"] != problem:
                raise protocol.ProtocolError(
                    f"problem {changes['problem']!r} does not fit dataset "
                    f"{changes['dataset']!r}, which is {problem}"
                )
            merged["problem"] = problem
        elif "problem" in changes and changes["problem"] != self.config["problem"]:
            if merged["dataset"] == "upload":
                raise protocol.ProtocolError(
                    f"problem {changes['problem']!r} does not fit the uploaded CSV, which is "
                    f"{self._upload_task()}"
                )
            merged["dataset"] = "plane" if changes["problem"] == "regression" else "circle"
        if merged["problem"] == "regression":
            if changes.get("loss", "mse") != "mse":
                raise protocol.ProtocolError(
                    f"loss {changes['loss']!r} does not fit a regression; expected 'mse'"
                )
            merged["loss"] = "mse"
        elif "loss" not in changes and merged["problem"] != self.config["problem"]:
            merged["loss"] = "cross_entropy"
        return {name: merged[name] for name in merged if merged[name] != self.config.get(name)}

    def _upload_task(self) -> str | None:
        if self.upload is None:
            return None
        return (
            "classification" if jnp.issubdtype(self.upload.y.dtype, jnp.integer) else "regression"
        )

    def _build(self) -> None:
        """Data, model and a fresh state from :attr:`config` (epoch 0)."""
        prepared = prepare(self.config, self.upload)
        mse = prepared.task == "classification" and prepared.loss_name == "mse"
        if mse and prepared.classes != 2:
            raise protocol.ProtocolError(
                f"loss 'mse' needs two classes, the data have {prepared.classes}; use cross_entropy"
            )
        self.prepared = prepared
        _bound_programs(self._shape_key())
        self._reset_state()

    def _penalties(self) -> tuple[float, float]:
        rate = float(self.config["regularizationRate"])
        kind = self.config["regularization"]
        return (rate if kind == "l1" else 0.0, rate if kind == "l2" else 0.0)

    def _batch_size(self) -> int:
        return min(int(self.config["batchSize"]), int(self.prepared.train.x.shape[0]))

    def _reset_state(self) -> None:
        p = self.prepared
        l1, l2 = self._penalties()
        tx = optim.injected(self.config["optimizer"])
        state = train.create_train_state(
            p.init_key, p.model, tx, p.train.x, loss=p.loss, task=p.task, l1=l1, l2=l2
        )
        self.state = state.replace(
            opt_state=optim.with_learning_rate(state.opt_state, self.config["learningRate"])
        )
        self.segments: list[list[Any]] = []
        self.unacknowledged = []
        self.diverged = None
        self.step = 0
        self._pending = _empty_pending()
        self._epochs_since_snapshot = 0
        self._last_snapshot_time = time.perf_counter()
        self._seconds_per_epoch = None
        if self.precompile:
            self.warm()

    @property
    def epoch(self) -> int:
        """Epochs trained since the last reset."""
        return int(self.state.epoch)

    # --------------------------------------------------------------- messages

    def status(self) -> dict[str, Any]:
        """The ``status`` frame."""
        return {"type": "status", "playing": self.playing, "epoch": self.epoch}

    def hello(self) -> list[Any]:
        """The first frames: ``hello``, ``data`` and the epoch-0 snapshot."""
        with self.lock:
            hello = {
                "type": "hello",
                "version": protocol.VERSION,
                "session": self.id,
                "config": dict(self.config),
                "options": protocol.options(),
                "limits": dict(protocol.LIMITS),
            }
            return [hello, self.data_frame(), self.snapshot(force=True)]

    def data_frame(self) -> dict[str, Any]:
        """The ``data`` frame: the raw points of the train and test sets."""
        p = self.prepared

        def points(dataset: data.Dataset) -> dict[str, Any]:
            y = np.asarray(dataset.y)
            shown: dict[str, Any] = {"y": y.tolist()}
            if p.grid:
                shown["x"] = np.asarray(dataset.x, np.float64).round(5).tolist()
            return shown

        return {
            "type": "data",
            "task": p.task,
            "classes": p.classes,
            "inputs": int(p.train_raw.x.shape[1]),
            "domain": p.domain,
            "train": points(p.train_raw),
            "test": points(p.test_raw),
        }

    def handle(self, message: dict[str, Any]) -> list[Any]:
        """The frames answering one checked message (see :func:`protocol.parse_message`).

        Raises:
            ProtocolError: for a message that does not fit the session (e.g.
                a problem type against the dataset); the session is unchanged.
        """
        kind = message["type"]
        with self.lock:
            if kind == "config":
                return self._configure(message["config"])
            if kind == "play":
                self.playing = self.diverged is None
                return [self.status()]
            if kind == "pause":
                self.playing = False
                return [self.status()]
            if kind == "step":
                self.playing = False
                frames: list[Any] = []
                if self.diverged is None:
                    frames = self._advance(1, force_snapshot=True)
                return [*frames, self.status()]
            if kind == "reset":
                self.playing = False
                self._reset_state()
                return [self.status(), self.snapshot(force=True)]
            if kind == "regenerate":
                self.playing = False
                seed = (self.config["seed"] + 1) % (protocol.LIMITS["seed"][1] + 1)
                self.config["seed"] = seed
                self._build()
                return [
                    {"type": "config", "config": dict(self.config), "reset": True},
                    self.data_frame(),
                    self.status(),
                    self.snapshot(force=True),
                ]
            if kind == "ack":
                epoch = message["epoch"]
                self.unacknowledged = [e for e in self.unacknowledged if e > epoch]
                return []
            if kind == "upload":
                return self._upload(message["name"], message["csv"])
            if kind == "export":
                return [self.export()]
            if kind == "sweep":
                return [self.sweep(message["learningRates"], message["seeds"], message["epochs"])]
        raise protocol.ProtocolError(f"type {kind!r} is not handled")  # parse_message stops these

    def _configure(self, changes: dict[str, Any]) -> list[Any]:
        changes = self._consistent(changes)
        if not changes:
            return [{"type": "config", "config": dict(self.config), "reset": False}]
        before = dict(self.config)
        self.config.update(changes)
        if set(changes) <= set(_RESUMABLE):
            l1, l2 = self._penalties()
            self.state = self.state.replace(
                opt_state=optim.with_learning_rate(
                    self.state.opt_state, self.config["learningRate"]
                ),
                l1=jnp.float32(l1),
                l2=jnp.float32(l2),
            )
            return [{"type": "config", "config": dict(self.config), "reset": False}]
        if set(changes) <= set(_VIEW_FIELDS):
            return [
                {"type": "config", "config": dict(self.config), "reset": False},
                self.snapshot(force=True),
            ]
        try:
            self._build()
        except Exception:
            self.config = before
            raise
        self.playing = False
        data_fields = {"dataset", "noise", "trainRatio", "points", "seed"}
        frames: list[Any] = [{"type": "config", "config": dict(self.config), "reset": True}]
        if data_fields & set(changes):
            frames.append(self.data_frame())
        return [*frames, self.status(), self.snapshot(force=True)]

    def _upload(self, name: str, text: str) -> list[Any]:
        try:
            loaded = load_upload(text)
        except UploadError as error:
            raise protocol.ProtocolError(f"{name}: {error}", code="bad_upload") from None
        previous = (self.upload, self.upload_text, self.upload_name, dict(self.config))
        self.upload, self.upload_text, self.upload_name = loaded, text, name
        task = self._upload_task()
        changes: dict[str, Any] = {"dataset": "upload", "problem": task}
        if task == "regression":
            changes["loss"] = "mse"
        try:
            self.config.update(changes)
            if task == "classification":
                self.config["loss"] = "cross_entropy"
            if int(loaded.x.shape[1]) == 2:
                self.config["features"] = (
                    self.config["features"] if self.config["features"] else ["x1", "x2"]
                )
            self._build()
        except Exception:
            self.upload, self.upload_text, self.upload_name, self.config = previous
            raise
        self.playing = False
        p = self.prepared
        return [
            {
                "type": "upload",
                "ok": True,
                "rows": int(loaded.x.shape[0]),
                "task": p.task,
                "classes": p.classes,
                "inputs": int(loaded.x.shape[1]),
            },
            {"type": "config", "config": dict(self.config), "reset": True},
            self.data_frame(),
            self.status(),
            self.snapshot(force=True),
        ]

    # --------------------------------------------------------------- training

    def train_chunk(self) -> list[Any]:
        """One chunk of training if playing: the frames to send (a snapshot, maybe ``diverged``)."""
        with self.lock:
            if not self.playing or self.closed or self.diverged is not None:
                return []
            return self._advance(self._chunk_size(), force_snapshot=False)

    def _shape_key(self) -> tuple[Any, ...]:
        p = self.prepared
        return (p.model, p.train.x.shape, p.test.x.shape, self._batch_size(), p.loss,
                self.config["optimizer"])  # fmt: skip

    def _desired_size(self) -> int:
        """The ladder's largest size whose chunk fits in :data:`CHUNK_SECONDS` (at least 1)."""
        per_epoch = self._seconds_per_epoch
        if per_epoch is None:
            steps = -(-int(self.prepared.train.x.shape[0]) // self._batch_size())
            per_epoch = steps * STEP_SECONDS_GUESS
        fitting = [size for size in LADDER if size * per_epoch <= CHUNK_SECONDS]
        return max(fitting, default=LADDER[0])

    def _chunk_size(self) -> int:
        """The desired size if its program is compiled, else the nearest compiled one.

        A size not yet compiled is compiled in the background meanwhile, so
        training never stalls for a compilation once it runs.
        """
        desired = self._desired_size()
        key = self._shape_key()
        with _READY_LOCK:
            ready = [size for size in LADDER if (key, size) in _READY]
        if desired in ready:
            return desired
        if not ready:  # nothing to train with meanwhile: compile it now (or wait for it)
            state = self.state
            _compile_once((key, desired), lambda: self._block(self._run_with(state, desired)))
            return desired
        nearest = min(ready, key=lambda size: abs(math.log(size / desired)))
        if desired / 2 <= nearest <= desired:  # fits, if not fully: no new program
            return nearest
        self.warm(desired)
        return min(ready, key=lambda size: abs(math.log(size / desired)))

    @staticmethod
    def _block(result: Any) -> None:
        int(result[3])  # waits for the run

    def warm(self, size: int | None = None) -> None:
        """Compiles the chunk program of ``size`` epochs in a background thread.

        Without ``size`` (a new configuration): the first chunk's program, from
        a guess of the speed; then one timed run measures the speed, and the
        program of the size that fits :data:`CHUNK_SECONDS` is compiled too, so
        that Play trains at full speed from the start.
        """
        first = size is None
        size = self._desired_size() if size is None else size
        shape = self._shape_key()
        key = (shape, size)
        with _READY_LOCK:  # one compilation at a time per shape: they share the cores
            if any(warming[0] == shape for warming in _WARMING):
                return
            if key in _READY and not first:
                return
        state = self.state

        def compile_it() -> None:
            with contextlib.suppress(Exception):  # the real run reports any error
                _compile_once(key, lambda: self._block(self._run_with(state, size)))
                if not first or self._seconds_per_epoch is not None or shape != self._shape_key():
                    return
                began = time.perf_counter()
                self._block(self._run_with(state, size))
                self._seconds_per_epoch = (time.perf_counter() - began) / size
                desired = self._desired_size()
                if desired != size:
                    _compile_once(
                        (shape, desired), lambda: self._block(self._run_with(state, desired))
                    )

        threading.Thread(target=compile_it, name="playground-warm", daemon=False).start()

    def _run(self, state: train.TrainState, epochs: int) -> Any:
        return self._run_with(state, epochs)

    def _run_with(self, state: train.TrainState, epochs: int) -> Any:
        p = self.prepared
        return engine.run(state, p.train, p.test, epochs, self._batch_size())

    def _advance(self, epochs: int, *, force_snapshot: bool) -> list[Any]:
        """Trains ``epochs`` epochs in one compiled chunk; the frames to send."""
        start = self.state
        key = (self._shape_key(), epochs)
        with _READY_LOCK:
            cached = key in _READY
        began = time.perf_counter()
        state, records, _, first_bad = self._run(start, epochs)
        bad = int(first_bad)
        elapsed = time.perf_counter() - began
        with _READY_LOCK:
            _READY.add(key)
        self.chunks += 1
        if cached and bad < 0:
            per_epoch = elapsed / epochs
            previous = self._seconds_per_epoch
            self._seconds_per_epoch = (
                per_epoch if previous is None else 0.5 * previous + 0.5 * per_epoch
            )
        frames: list[Any] = []
        if bad >= 0:
            # The good epochs again, in compiled pieces: the state before the bad epoch.
            state, kept = start, []
            with _READY_LOCK:
                ready = tuple(size for size in LADDER if (self._shape_key(), size) in _READY)
            for piece in _pieces(bad, ready):
                state, piece_records, _, _ = self._run(state, piece)
                kept.append(piece_records)
            if kept:
                self._record(kept)
            good = bad
            self.diverged = int(start.epoch) + bad + 1
            self.playing = False
            self.state = state
            self._extend_segments(good)
            frames.append(
                {
                    "type": "diverged",
                    "epoch": self.diverged,
                    "lastGoodEpoch": self.epoch,
                    "message": (
                        f"training diverged at epoch {self.diverged}: the loss or the weights "
                        f"became NaN/inf. Training stopped at the last good state (epoch "
                        f"{self.epoch}). Lower the learning rate (now "
                        f"{self.config['learningRate']:g}) or clip the gradients (clip_norm)."
                    ),
                }
            )
            frames.append(self.snapshot(force=True))
            frames.append(self.status())
            return frames
        self.state = state
        self._record([records])
        self._extend_segments(epochs)
        snapshot = self.snapshot(force=force_snapshot)
        if snapshot is not None:
            frames.append(snapshot)
        return frames

    def _extend_segments(self, epochs: int) -> None:
        if epochs <= 0:
            return
        l1, l2 = self._penalties()
        segment = [self.config["learningRate"], l1, l2]
        if self.segments and self.segments[-1][1:] == segment:
            self.segments[-1][0] += epochs
        else:
            self.segments.append([epochs, *segment])

    def _record(self, parts: list[Any]) -> None:
        p = self.prepared
        for records in parts:
            self._pending.train_loss.append(np.asarray(records.train_loss, np.float32))
            self._pending.test_loss.append(np.asarray(records.test_loss, np.float32))
            self._pending.train_accuracy.append(np.asarray(records.train_accuracy, np.float32))
            self._pending.test_accuracy.append(np.asarray(records.test_accuracy, np.float32))
            names = models.layer_names(records.grad_norms)
            norms = np.stack([np.asarray(records.grad_norms[n], np.float32) for n in names], 1)
            self._pending.grad_norms.append(norms)
            self._epochs_since_snapshot += int(norms.shape[0])
        del p

    # -------------------------------------------------------------- snapshots

    def snapshot(self, *, force: bool = False) -> bytes | None:
        """The binary snapshot of the current state, or None when too many are in flight.

        ``force`` sends one regardless (replies to step, reset, config).
        """
        if not force and len(self.unacknowledged) >= MAX_IN_FLIGHT:
            return None
        p = self.prepared
        pending = self._pending
        now = time.perf_counter()
        seconds = now - self._last_snapshot_time
        rate = self._epochs_since_snapshot / seconds if seconds > 0 else 0.0
        views = _views(
            self.state,
            jnp.asarray(p.domain, jnp.float32),
            p.train,
            p.test,
            names=tuple(self.config["features"]) if p.grid else None,
            mode=_output_mode(p),
            classes=p.classes or 0,
            resolution=self.config["resolution"],
        )
        if pending.train_loss:  # the last epoch's record (train loss: before each step)
            train_losses = np.concatenate(pending.train_loss)
            test_losses = np.concatenate(pending.test_loss)
            grad_norms = np.concatenate(pending.grad_norms)
            last = [
                train_losses[-1],
                test_losses[-1],
                np.concatenate(pending.train_accuracy)[-1],
                np.concatenate(pending.test_accuracy)[-1],
            ]
        else:  # no epoch since the last snapshot (epoch 0, a new resolution): evaluate
            train_losses = test_losses = np.zeros((0,), np.float32)
            grad_norms = np.zeros((0, len(p.model.hidden) + 1), np.float32)
            last = [
                views[name] for name in ("trainLoss", "testLoss", "trainAccuracy", "testAccuracy")
            ]
        numbers = {
            "trainLoss": _finite(last[0]),
            "testLoss": _finite(last[1]),
            "trainAccuracy": _finite(last[2]) if p.task == "classification" else None,
            "testAccuracy": _finite(last[3]) if p.task == "classification" else None,
        }
        arrays: dict[str, Any] = {}
        for name in ("output", "confidence", "features", "neurons"):
            if name in views:
                arrays[name] = views[name]
        for i, layer in enumerate(models.dense_layers(self.state.params)):
            arrays[f"kernel_{i}"] = layer.kernel
            arrays[f"bias_{i}"] = layer.bias
        arrays["trainLosses"] = train_losses
        arrays["testLosses"] = test_losses
        arrays["gradNorms"] = grad_norms
        if "confusion" in views:
            arrays["confusion"] = views["confusion"]
        arrays = {name: np.asarray(value, np.float32) for name, value in arrays.items()}
        n_in = int(p.train.x.shape[1])
        header = {
            "type": "snapshot",
            "epoch": self.epoch,
            "step": int(self.state.step),
            **numbers,
            "epochsPerSecond": round(rate, 1),
            "task": p.task,
            "classes": p.classes,
            "grid": p.grid,
            "resolution": self.config["resolution"],
            "domain": p.domain,
            "layers": [n_in, *p.model.hidden, p.model.n_outputs],
            "diverged": self.diverged,
        }
        self._pending = _empty_pending()
        self._epochs_since_snapshot = 0
        self._last_snapshot_time = now
        if not force:  # replies (step, reset, config) are not counted against the flow
            self.unacknowledged.append(self.epoch)
        return protocol.encode_snapshot(header, arrays)

    # ----------------------------------------------------------- export, sweep

    def export(self) -> dict[str, Any]:
        """The ``export`` frame: the reproducing script and the checkpoint (base64)."""
        from dlvr_jax.playground import export  # beside this module; imports session

        with self.lock:
            script = export.script(self)
            handle, path = tempfile.mkstemp(suffix=".ckpt", prefix="playground-")
            os.close(handle)
            try:
                checkpoint.save(path, self.state, metadata=export.metadata(self))
                with open(path, "rb") as stream:
                    blob = stream.read()
            finally:
                os.unlink(path)
            return {
                "type": "export",
                "script": script,
                "scriptName": "playground_run.py",
                "checkpoint": base64.b64encode(blob).decode("ascii"),
                "checkpointName": "playground.ckpt",
                "epoch": self.epoch,
            }

    def sweep(self, learning_rates: list[float], seeds: int, epochs: int) -> dict[str, Any]:
        """The ``sweep`` frame: one :func:`dlvr_jax.parallel.sweep` over the current configuration.

        Model ``(i, j)`` trains learning rate ``i`` from seed ``config.seed + j``
        (its initialisation; the data stay the session's) for ``epochs`` epochs.
        """
        with self.lock:
            p = self.prepared
            l1, l2 = self._penalties()
            base = int(self.config["seed"])
            result = parallel.sweep(
                [(base + j) % 2**31 for j in range(seeds)],
                p.model,
                p.train,
                learning_rates=learning_rates,
                epochs=epochs,
                optimizer=self.config["optimizer"],
                l1=l1,
                l2=l2,
                batch_size=self._batch_size(),
                loss=p.loss,
                task=p.task,
                test=p.test,
            )
            assert result.history.test_loss is not None
            final = np.asarray(result.history.test_loss)[:, -1].reshape(len(learning_rates), seeds)
            diverged = (np.asarray(result.diverged_epoch) > 0).reshape(len(learning_rates), seeds)
            finite = np.where(diverged | ~np.isfinite(final), np.nan, final)
            with np.errstate(all="ignore"):
                counts = np.sum(np.isfinite(finite), axis=1)
                mean = np.where(
                    counts > 0, np.nansum(finite, axis=1) / np.maximum(counts, 1), np.nan
                )
                std = np.array(
                    [np.nanstd(row) if np.isfinite(row).any() else np.nan for row in finite]
                )
            return {
                "type": "sweep",
                "learningRates": list(learning_rates),
                "seeds": seeds,
                "epochs": epochs,
                "testLoss": [[_finite(v) for v in row] for row in finite.tolist()],
                "mean": [_finite(v) for v in mean.tolist()],
                "std": [_finite(v) for v in std.tolist()],
                "diverged": diverged.tolist(),
            }

    def close(self) -> None:
        """Stops training for good (the socket closed)."""
        self.closed = True
        self.playing = False


def _finite(value: Any) -> float | None:
    """A number for JSON: None for NaN/inf or None."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
