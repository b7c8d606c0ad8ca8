"""The one problem preparation: data -> features -> split -> task and classes -> model and loss.

The contract::

    problem = prepare_problem(ProblemConfig(...), training_key=True) -> Problem
    problem.train, problem.test          # what the model sees (features applied)
    problem.train_raw, problem.test_raw  # before the feature map (what figures plot)
    problem.key                          # the init / training key (keys[2])
    problem.model, problem.loss          # MLP(hidden, n_outputs, ...) and its loss
    problem.classes, problem.label_note  # class names (index = label); "labels ... mapped"

    PROBLEM_CONSTRAINTS                  # the one table of the data's and model's rules;
    job_problem(config) -> ProblemConfig # a job's config checks them through it, once

Every door prepares its problem here: the CLI's jobs, the Playground's
session and the script the Playground exports, so that one configuration
gives the same data, split, classes, model and initial key, bit for bit,
whichever door asks. The keys are ``jax.random.split(jax.random.key(seed),
3)``: ``keys[0]`` makes the points, ``keys[1]`` splits them, ``keys[2]`` is
left for training (with ``training_key=False``, two keys: what ``jobs.sweep``
has always drawn). A generator's points and split run as one compiled
program; a CSV's (or an upload's) split as one too (both noted in the package's
compile-cache registry, :mod:`dlvr_jax._compiled`, so that they count toward its bound).

The class policy, one for every door: the classes are the distinct targets
of the whole data set; fewer than two are refused; labels that are not
``0..k-1`` (``1..3``, or the codes of string labels) are mapped to ``0..k-1``
and their names kept (:attr:`Problem.classes`), with a note saying so
(:attr:`Problem.label_note`); labels already ``0..k-1`` are left as they are.

Examples:
    >>> from dlvr_jax import jobs
    >>> problem = jobs.prepare_problem(jobs.ProblemConfig(dataset="xor", n=40, hidden=(3,)))
    >>> problem.task, problem.classes, problem.model.n_outputs, problem.loss
    ('classification', ('0', '1'), 2, 'cross_entropy')
    >>> problem.train.x.shape, problem.test.x.shape
    ((32, 2), (8, 2))
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dlvr_jax import _compiled, data, losses, models
from dlvr_jax import _validate as check

__all__ = ["TASKS", "Problem", "ProblemConfig", "prepare_problem", "read_csv", "signed_mse"]

TASKS = losses.TASKS
"""The tasks a problem may be (:data:`dlvr_jax.losses.TASKS`, their one home)."""

LOSSES = ("cross_entropy", "mse")
"""The loss names a problem may ask for (``mse`` of a classification is :func:`signed_mse`)."""


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


@dataclasses.dataclass(frozen=True, eq=False)
class ProblemConfig:
    """What :func:`prepare_problem` builds (compared by identity: it may hold an upload).

    Attributes:
        dataset: a generator name (:func:`dlvr_jax.data.names`); ignored with
            ``data_path`` or ``upload``.
        n: number of generated points.
        noise: the generator's noise.
        data_path: a CSV of the user's own data (features..., target last;
            a header line is optional), read by :func:`dlvr_jax.data.load_csv`.
        upload: an already-parsed data set: a :class:`~dlvr_jax.data.Table`
            (:func:`dlvr_jax.data.parse_csv` of the Playground's upload: its
            task and class names) or a :class:`~dlvr_jax.data.Dataset`.
        class_names: the names of a ``Dataset`` upload's labels (index =
            label); None names them by their values.
        task: ``"classification"`` or ``"regression"``; None infers it (a
            generator's own task; for a CSV or an upload, integer targets are
            class labels). For a generator it must be the generator's task.
        features: names from :data:`dlvr_jax.data.FEATURES`, the Playground's
            feature map, applied when the data have 2 inputs (other data keep
            their columns, as the Playground does); None: the raw inputs.
        test_fraction: share of the points held out, in ``(0, 1)``.
        seed: in ``[0, 2**32)``; seeds the data, the split and the training key.
        hidden: hidden layer widths; ``()`` is a model without hidden layers.
        activation: a name from :data:`dlvr_jax.models.activations`.
        dropout: the dropout rate after each hidden activation, in ``[0, 1)``.
        residual: add each hidden layer's input to its output when the widths match.
        loss: ``"cross_entropy"`` or ``"mse"``; None: cross entropy for a
            classification, mse for a regression. ``"mse"`` for a
            classification is :func:`signed_mse` on one output (2 classes only).
    """

    dataset: str = "circle"
    n: int = 1000
    noise: float = 0.0
    data_path: str | None = None
    upload: data.Table | data.Dataset | None = None
    class_names: tuple[str, ...] | None = None
    task: str | None = None
    features: tuple[str, ...] | None = None
    test_fraction: float = 0.2
    seed: int = 0
    hidden: tuple[int, ...] = (8, 8, 8, 8, 8)
    activation: str = "relu"
    dropout: float = 0.0
    residual: bool = False
    loss: str | None = None

    def __post_init__(self) -> None:
        check.check_fields(self, PROBLEM_CONSTRAINTS)
        if self.upload is not None:
            if not isinstance(self.upload, (data.Dataset, data.Table)):
                raise check.InvalidType(
                    f"upload must be a data.Table or a data.Dataset, got "
                    f"{type(self.upload).__name__}",
                    field="upload",
                )
            if self.data_path is not None:
                raise check.InvalidArgument("pass data_path or upload, not both", field="upload")
        if self.class_names is not None and not isinstance(self.upload, data.Dataset):
            raise check.InvalidArgument(
                "class_names names the labels of an upload given as a data.Dataset",
                field="class_names",
            )
        generated = self.data_path is None and self.upload is None
        if self.task is not None and generated and self.task != data.task(self.dataset):
            raise check.InvalidArgument(
                f"task {self.task!r} does not fit dataset {self.dataset!r}, which is "
                f"{data.task(self.dataset)}",
                field="task",
            )


def _activations() -> tuple[str, ...]:
    return tuple(sorted(models.activations))


DATA_CONSTRAINTS: dict[str, check.Rules] = {
    "dataset": check.Options(source=data.names),
    "n": check.Interval(int, 1, None, closed="left"),
    "noise": check.Interval(float, 0, None, closed="left"),
    "data_path": (check.Text(min_len=1), None),
    "task": (check.Options(*TASKS), None),
    "test_fraction": check.Interval(float, 0, 1, closed="neither"),
}
"""The data's fields, shared by the jobs' configurations (one declaration of each rule)."""

ACTIVATION = check.Options(source=_activations)
"""An activation's name (:data:`dlvr_jax.models.activations`)."""

MODEL_CONSTRAINTS: dict[str, check.Rules] = {
    "hidden": check.ListOf(check.Interval(int, 1, None, closed="left"), noun="widths"),
    "activation": ACTIVATION,
}
"""The model's fields that the jobs' configurations share."""

SEED = check.Interval(int, 0, 2**32 - 1)
"""A seed: what ``jax.random.key`` takes."""

PROBLEM_CONSTRAINTS: dict[str, check.Rules] = {
    **DATA_CONSTRAINTS,
    "class_names": (check.ListOf(check.Text(), min_len=2, noun="names"), None),
    "features": (
        check.ListOf(check.Options(*data.FEATURES), min_len=1, distinct=True, noun="feature names"),
        None,
    ),
    "seed": SEED,
    **MODEL_CONSTRAINTS,
    "dropout": check.Interval(float, 0, 1, closed="left"),
    "residual": check.Boolean(),
    "loss": (check.Options(*LOSSES), None),
}
"""The constraints of :class:`ProblemConfig`'s fields (``upload`` is checked by its type)."""


def check_task_with_data(config: Any) -> None:
    """A job's ``task`` applies only to its CSV (a generator has its own task)."""
    if config.task is not None and config.data_path is None:
        raise check.InvalidArgument(
            f"task applies only to data_path (a CSV), not to generator {config.dataset!r}; "
            f"got task={config.task!r}",
            field="task",
        )


def job_problem(config: Any, **fields: Any) -> ProblemConfig:
    """The :class:`ProblemConfig` of a job's ``config``, from the fields they share.

    The shared fields (data, model) are checked there, by
    :data:`PROBLEM_CONSTRAINTS`, once; their normalised values are stored back
    into ``config`` (a frozen dataclass). ``fields`` adds or renames some
    (e.g. ``seed=config.data_seed``).
    """
    own = {f.name for f in dataclasses.fields(config)}
    shared = {f.name for f in dataclasses.fields(ProblemConfig)} & own
    values = {name: getattr(config, name) for name in shared}
    problem = ProblemConfig(**{**values, **fields})
    for name in shared:
        object.__setattr__(config, name, getattr(problem, name))
    return problem


class Problem(NamedTuple):
    """A prepared problem: the data the model sees, the task, the classes, the model and loss.

    Attributes:
        config: the :class:`ProblemConfig` prepared.
        train_raw: the training points before the feature map.
        test_raw: the test points likewise.
        train: the training set the model sees (float32 inputs; int32 labels
            ``0..k-1`` or float32 targets).
        test: the test set likewise.
        key: the key left for training (``create_train_state`` / ``train.fit``),
            or None with ``training_key=False``.
        task: ``"classification"`` or ``"regression"``.
        classes: the class names, index = label; None for a regression.
        label_note: ``"class labels [1, 2, 3] mapped to 0..2"`` when the labels
            were mapped, else None.
        features: the feature map applied, or None (the raw inputs).
        model: the :class:`~dlvr_jax.models.MLP`.
        loss: the loss: ``"cross_entropy"``, ``"mse"`` or :func:`signed_mse`.
        loss_name: ``"cross_entropy"`` or ``"mse"``.
        description: what a checkpoint records about the data (resumes compare it).
    """

    config: ProblemConfig
    train_raw: data.Dataset
    test_raw: data.Dataset
    train: data.Dataset
    test: data.Dataset
    key: jax.Array | None
    task: str
    classes: tuple[str, ...] | None
    label_note: str | None
    features: tuple[str, ...] | None
    model: models.MLP
    loss: str | Callable[..., jax.Array]
    loss_name: str
    description: dict[str, Any]

    @property
    def n_classes(self) -> int | None:
        """The number of classes, or None for a regression."""
        return None if self.classes is None else len(self.classes)

    @property
    def n_outputs(self) -> int:
        """The model's outputs."""
        return int(self.model.n_outputs)

    def class_entries(self) -> dict[str, Any]:
        """``classes`` (their names) and ``label_note`` for a job's metrics, when mapped.

        Labels already ``0..k-1`` add nothing, so the metrics of such runs stay as they were.
        """
        if self.classes is None or self.classes == tuple(map(str, range(len(self.classes)))):
            return {}
        entries: dict[str, Any] = {"classes": list(self.classes)}
        if self.label_note is not None:
            entries["label_note"] = self.label_note
        return entries


# ----------------------------------------------------------------------------
# The data.


@functools.partial(jax.jit, static_argnames=("name", "n", "test_fraction", "parts"))
def _generate(
    seed: jax.Array, noise: jax.Array, *, name: str, n: int, test_fraction: float, parts: int
) -> tuple[data.Dataset, data.Dataset, tuple[jax.Array, ...]]:
    # One compiled program for keys, points and split (eager calls compile one each).
    keys = jax.random.split(jax.random.key(seed), parts)
    full = data.make(name, keys[0], n, noise=noise)
    train_set, test_set = data.train_test_split(keys[1], full, test_fraction=test_fraction)
    return train_set, test_set, tuple(keys[i] for i in range(2, parts))  # no eager indexing


@functools.partial(jax.jit, static_argnames=("test_fraction", "parts"))
def _split(
    seed: jax.Array, full: data.Dataset, *, test_fraction: float, parts: int
) -> tuple[data.Dataset, data.Dataset, tuple[jax.Array, ...]]:
    keys = jax.random.split(jax.random.key(seed), parts)
    train_set, test_set = data.train_test_split(keys[1], full, test_fraction=test_fraction)
    return train_set, test_set, tuple(keys[i] for i in range(2, parts))  # no eager indexing


def sha256(path: str) -> str:
    """The hex SHA-256 of the file at ``path`` (what a checkpoint records of a CSV)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv(path: str, task: str | None = None) -> data.Table:
    """:func:`dlvr_jax.data.read_csv` (the label policy applied), every error naming the file.

    Raises:
        FileNotFoundError: no file at ``path``.
        data.CsvError: a malformed file, at ``path:line:column``.
        check.InvalidArgument: a folder, or fewer than 2 data rows (field ``data_path``).
    """
    try:
        table = data.read_csv(path, task=task)  # type: ignore[arg-type]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise check.InvalidArgument(
            f"{path}: is a folder, not a CSV file", field="data_path"
        ) from None
    rows = len(table.dataset.y)
    if rows < 2:
        raise check.InvalidArgument(
            f"{path}: needs at least 2 data rows to hold some out, got {rows}", field="data_path"
        )
    return table


def _upload_table(config: ProblemConfig) -> data.Table:
    """The upload as a :class:`~dlvr_jax.data.Table`: its task, classes (the label policy)."""
    upload = config.upload
    if isinstance(upload, data.Table):
        if config.task is not None and config.task != upload.task:
            raise check.InvalidArgument(
                f"task {config.task!r} does not fit the upload, which is {upload.task}",
                field="task",
            )
        return upload
    assert isinstance(upload, data.Dataset)
    inferred = "classification" if jnp.issubdtype(upload.y.dtype, jnp.integer) else "regression"
    kind = config.task or inferred
    full = upload if kind == inferred else data.from_arrays(upload.x, upload.y, task=kind)  # type: ignore[arg-type]
    columns = (*(f"x{i + 1}" for i in range(int(full.x.shape[1]))), "y")
    if kind == "regression":
        return data.Table(full, "regression", None, False, columns)
    labels = data.encode_labels(np.asarray(full.y), field="upload")
    names = labels.names
    if config.class_names is not None:
        names = tuple(config.class_names[int(name)] for name in names)
    y = check.to_device(labels.codes) if labels.mapped else full.y
    return data.Table(data.Dataset(full.x, y), "classification", names, labels.mapped, columns)


class _Data(NamedTuple):
    """A problem's data after the split, with what it says about its classes."""

    train: data.Dataset
    test: data.Dataset
    keys: tuple[jax.Array, ...]
    task: str
    classes: tuple[str, ...] | None
    mapped: bool
    description: dict[str, Any]


def _generated(config: ProblemConfig, parts: int) -> _Data:
    """A generator's points, split in one compiled program; the label policy applied."""
    _compiled.note(("jobs.generate", config.dataset, config.n, config.test_fraction, parts))
    train_set, test_set, keys = _generate(
        np.uint32(config.seed),
        np.float32(config.noise),
        name=config.dataset,
        n=config.n,
        test_fraction=config.test_fraction,
        parts=parts,
    )
    description: dict[str, Any] = {
        "name": config.dataset,
        "n": config.n,
        "noise": config.noise,
        "test_fraction": config.test_fraction,
    }
    task = data.task(config.dataset)
    if task == "regression":
        return _Data(train_set, test_set, keys, task, None, False, description)
    both = np.concatenate([np.asarray(train_set.y), np.asarray(test_set.y)])
    labels = data.encode_labels(both, field="dataset")
    if labels.mapped:  # a class the sample missed: codes 0..k-1 (arrays untouched otherwise)
        n_train = int(train_set.y.shape[0])
        codes = labels.codes
        train_set = data.Dataset(train_set.x, check.to_device(codes[:n_train]))
        test_set = data.Dataset(test_set.x, check.to_device(codes[n_train:]))
    return _Data(train_set, test_set, keys, task, labels.names, labels.mapped, description)


def _user_data(config: ProblemConfig, parts: int) -> _Data:
    """A CSV's or an upload's data, split in one compiled program."""
    if config.data_path is not None:
        table = read_csv(config.data_path, config.task)
        description: dict[str, Any] = {
            "path": os.path.abspath(config.data_path),
            "sha256": sha256(config.data_path),
            "task": table.task,
            "test_fraction": config.test_fraction,
        }
    else:
        table = _upload_table(config)
        rows = int(table.dataset.y.shape[0])
        if rows < 2:
            raise check.InvalidArgument(
                f"upload needs at least 2 data rows to hold some out, got {rows}", field="upload"
            )
        description = {"upload": rows, "task": table.task, "test_fraction": config.test_fraction}
    x, y = table.dataset
    _compiled.note(("jobs.split", x.shape, x.dtype, y.dtype, config.test_fraction, parts))
    train_set, test_set, keys = _split(
        np.uint32(config.seed), table.dataset, test_fraction=config.test_fraction, parts=parts
    )
    return _Data(train_set, test_set, keys, table.task, table.classes, table.mapped, description)


def label_note(classes: tuple[str, ...], mapped: bool) -> str | None:
    """``"class labels [1, 2, 3] mapped to 0..2"`` for mapped labels, else None."""
    if not mapped:
        return None
    integral = all(name.lstrip("-").isdigit() for name in classes)
    shown = [str(int(name)) if integral else repr(name) for name in classes]
    if len(shown) > 10:
        shown = [*shown[:5], "...", *shown[-2:]]
    return f"class labels [{', '.join(shown)}] mapped to 0..{len(classes) - 1}"


# ----------------------------------------------------------------------------
# The whole preparation.


def _loss(
    config: ProblemConfig, task: str, classes: tuple[str, ...] | None
) -> tuple[str | Callable[..., jax.Array], str, int]:
    """The loss, its name and the model's outputs."""
    if task == "regression":
        if config.loss not in (None, "mse"):
            raise ValueError(f"loss {config.loss!r} does not fit a regression; expected 'mse'")
        return "mse", "mse", 1
    assert classes is not None
    if config.loss == "mse":
        if len(classes) != 2:
            raise ValueError(
                f"loss 'mse' needs two classes, the data have {len(classes)}; use cross_entropy"
            )
        return signed_mse, "mse", 1
    return "cross_entropy", "cross_entropy", len(classes)


def prepare_problem(config: ProblemConfig, *, training_key: bool = True) -> Problem:
    """The data, split, features, task, classes, model and loss of ``config``.

    Args:
        config: what to prepare.
        training_key: draw a third key for training (:attr:`Problem.key`);
            False draws two, as ``jobs.sweep`` does (its seeds give the keys).

    Raises:
        FileNotFoundError: no file at ``config.data_path``.
        ValueError: a bad CSV, fewer than 2 classes, a loss that does not fit.
    """
    if not isinstance(config, ProblemConfig):
        raise TypeError(f"config must be a ProblemConfig, got {type(config).__name__}")
    parts = 3 if training_key else 2
    generated = config.data_path is None and config.upload is None
    prepared = _generated(config, parts) if generated else _user_data(config, parts)
    train_raw, test_raw, keys, task, classes = prepared[:5]
    note = None if classes is None else label_note(classes, prepared.mapped)
    loss, loss_name, n_outputs = _loss(config, task, classes)
    features = config.features if int(train_raw.x.shape[1]) == 2 else None
    train_set, test_set = train_raw, test_raw
    if features is not None:
        train_set = data.Dataset(data.features(train_raw.x, features), train_raw.y)
        test_set = data.Dataset(data.features(test_raw.x, features), test_raw.y)
    model = models.MLP(
        hidden=config.hidden,
        n_outputs=n_outputs,
        activation=config.activation,
        residual=config.residual,
        dropout=config.dropout,
    )
    return Problem(
        config, train_raw, test_raw, train_set, test_set, keys[0] if keys else None, task,
        classes, note, features, model, loss, loss_name, prepared.description,
    )  # fmt: skip
