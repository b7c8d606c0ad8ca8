"""The one problem preparation: data -> features -> split -> task and classes -> model and loss.

The contract::

    problem = prepare_problem(ProblemConfig(...), training_key=True) -> Problem
    problem.train, problem.test          # what the model sees (features applied)
    problem.train_raw, problem.test_raw  # before the feature map (what figures plot)
    problem.key                          # the init / training key (keys[2])
    problem.model, problem.loss          # MLP(hidden, n_outputs, ...) and its loss
    problem.classes, problem.label_note  # class names (index = label); "labels ... mapped"

Every door prepares its problem here: the CLI's jobs, the Playground's
session and the script the Playground exports, so that one configuration
gives the same data, split, classes, model and initial key, bit for bit,
whichever door asks. The keys are ``jax.random.split(jax.random.key(seed),
3)``: ``keys[0]`` makes the points, ``keys[1]`` splits them, ``keys[2]`` is
left for training (with ``training_key=False``, two keys: what ``jobs.sweep``
has always drawn). A generator's points and split run as one compiled
program; a CSV's (or an upload's) split as one too.

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
import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dlvr_jax import _validate as check
from dlvr_jax import data, losses, models

__all__ = ["TASKS", "Problem", "ProblemConfig", "prepare_problem", "read_csv", "signed_mse"]

TASKS = ("classification", "regression")
"""The tasks a problem may be."""

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
        upload: an already-parsed data set (the Playground's upload).
        class_names: the names of ``upload``'s labels (index = label), when
            they were strings; None names them by their values.
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
    upload: data.Dataset | None = None
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
        apply_constraints(self, PROBLEM_CONSTRAINTS, "ProblemConfig")
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
    "n": check.Interval(int, 1, None),
    "noise": check.Interval(float, 0, None, closed="left"),
    "data_path": (check.Text(min_len=1), None),
    "task": (check.Options(*TASKS), None),
    "test_fraction": check.Interval(float, 0, 1, closed="neither"),
}
"""The data's fields, shared by the jobs' configurations (one declaration of each rule)."""

MODEL_CONSTRAINTS: dict[str, check.Rules] = {
    "hidden": check.ListOf(check.Interval(int, 1, None), noun="widths"),
    "activation": check.Options(source=_activations),
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


def apply_constraints(config: Any, table: dict[str, check.Rules], owner: str) -> None:
    """Checks a frozen dataclass's fields against ``table`` once; stores the normalised values.

    Raises:
        check.InvalidArgument, check.InvalidType: naming the field (``.field``).
    """
    values = {name: getattr(config, name) for name in table}
    for name, value in check.check_params(table, values, owner=owner).items():
        object.__setattr__(config, name, value)


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


def read_csv(path: str, task: str | None) -> data.Dataset:
    """:func:`dlvr_jax.data.load_csv`, with every error naming the file.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a folder, a binary file, a malformed value (``path:line: ...``)
            or fewer than 2 data rows.
    """
    try:
        loaded = data.load_csv(path, task=task)  # type: ignore[arg-type]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not a CSV file") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a text file ({error.reason})") from None
    except ValueError as error:
        message = str(error)
        if not message.startswith(path):  # a check of the values: find the row
            message = _bad_row(path, task) or f"{path}: {message}"
        raise ValueError(message) from None
    if len(loaded.y) < 2:
        raise ValueError(
            f"{path}: needs at least 2 data rows to hold some out, got {len(loaded.y)}"
        )
    return loaded


def _bad_row(path: str, task: str | None) -> str | None:
    """``path:line: problem`` for the first row with a non-finite value or a bad class label."""
    import csv

    with open(path, newline="") as stream:
        rows = [
            (number, row)
            for number, row in enumerate(csv.reader(stream), start=1)
            if row and any(cell.strip() for cell in row)
        ]
    if rows and not _is_float(rows[0][1][0]):
        rows = rows[1:]  # the header
    targets = [row[-1].strip() for _, row in rows]
    classes = task == "classification" or (task is None and all(map(_is_integer, targets)))
    for number, row in rows:
        for column, cell in enumerate(row, start=1):
            if _is_float(cell) and not math.isfinite(float(cell)):
                return f"{path}:{number}: column {column} is not a finite number: {cell.strip()!r}"
        target = row[-1].strip()
        if classes and (not _is_integer(target) or int(float(target)) < 0):
            return (
                f"{path}:{number}: the target {target!r} is not a class label (an integer >= 0); "
                "pass --task regression for numeric targets"
            )
    return None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_integer(text: str) -> bool:
    return _is_float(text) and math.isfinite(float(text)) and float(text) == int(float(text))


def _user_data(config: ProblemConfig) -> tuple[data.Dataset, str, dict[str, Any]]:
    """A CSV's or an upload's data set, its task and what a checkpoint records of it."""
    if config.data_path is not None:
        loaded = read_csv(config.data_path, config.task)
        kind = "classification" if jnp.issubdtype(loaded.y.dtype, jnp.integer) else "regression"
        description: dict[str, Any] = {
            "path": os.path.abspath(config.data_path),
            "sha256": sha256(config.data_path),
            "task": kind,
            "test_fraction": config.test_fraction,
        }
        return loaded, kind, description
    assert config.upload is not None
    full: data.Dataset = config.upload
    if len(full.y) < 2:
        raise ValueError(f"upload needs at least 2 data rows to hold some out, got {len(full.y)}")
    inferred = "classification" if jnp.issubdtype(full.y.dtype, jnp.integer) else "regression"
    kind = config.task or inferred
    if kind != inferred:
        full = data.from_arrays(full.x, full.y, task=kind)  # type: ignore[arg-type]
    description = {"upload": len(full.y), "task": kind, "test_fraction": config.test_fraction}
    return full, kind, description


def _split_data(
    config: ProblemConfig, parts: int
) -> tuple[data.Dataset, data.Dataset, tuple[jax.Array, ...], str, dict[str, Any]]:
    """Train and test sets, the spare keys, the task and the data's description."""
    seed = np.uint32(config.seed)
    if config.data_path is None and config.upload is None:
        train_set, test_set, keys = _generate(
            seed,
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
        return train_set, test_set, keys, data.task(config.dataset), description
    full, kind, description = _user_data(config)
    train_set, test_set, keys = _split(seed, full, test_fraction=config.test_fraction, parts=parts)
    return train_set, test_set, keys, kind, description


# ----------------------------------------------------------------------------
# The classes.


def _shown_labels(labels: np.ndarray) -> str:
    values = labels.tolist()
    if len(values) > 10:
        return f"[{', '.join(map(str, values[:5]))}, ..., {', '.join(map(str, values[-2:]))}]"
    return str(values)


def _classes(
    config: ProblemConfig, train_set: data.Dataset, test_set: data.Dataset
) -> tuple[data.Dataset, data.Dataset, tuple[str, ...], str | None]:
    """The class policy: at least 2 classes, labels mapped to ``0..k-1``, their names kept."""
    train_y, test_y = np.asarray(train_set.y), np.asarray(test_set.y)
    labels = np.unique(np.concatenate([train_y, test_y]))
    names = config.class_names
    shown = [names[i] if names and i < len(names) else str(i) for i in labels.tolist()]
    if labels.size < 2:
        source = config.data_path or ("upload" if config.upload is not None else config.dataset)
        raise ValueError(
            f"{source}: the target has one class ({shown[0]}); a classifier needs at least 2 "
            "classes (for numeric targets, ask for a regression)"
        )
    if np.array_equal(labels, np.arange(labels.size)):
        return train_set, test_set, tuple(shown), None
    note = None if names else f"class labels {_shown_labels(labels)} mapped to 0..{labels.size - 1}"
    mapped = []
    for dataset, y in ((train_set, train_y), (test_set, test_y)):
        codes = np.searchsorted(labels, y).astype(np.int32)
        mapped.append(data.Dataset(dataset.x, check.to_device(codes)))
    return mapped[0], mapped[1], tuple(shown), note


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
    train_raw, test_raw, keys, task, description = _split_data(config, parts)
    classes: tuple[str, ...] | None = None
    note = None
    if task == "classification":
        train_raw, test_raw, classes, note = _classes(config, train_raw, test_raw)
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
        classes, note, features, model, loss, loss_name, description,
    )  # fmt: skip
