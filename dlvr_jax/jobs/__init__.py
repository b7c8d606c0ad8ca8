"""Jobs: one workflow per command, from a typed, frozen configuration to a typed result.

The contract::

    jobs.mlp(MlpConfig(...), out=DIR, resume=PATH, checkpoint=PATH)   -> MlpResult
    jobs.compare_activations(CompareConfig(...), out=DIR)              -> CompareResult
    jobs.perceptron(PerceptronConfig(...), out=DIR)                    -> PerceptronResult
    jobs.sweep(SweepConfig(...), out=DIR)                              -> SweepResult
    jobs.optimize(OptimizeConfig(...), out=DIR)                        -> OptimizeResult

    session = MlpSession.start(MlpConfig(...))    # data, model, optimizer; resume=PATH
    session.advance(100)                          # train 100 more epochs (chunks resume
    session.advance(100)                          #   bit for bit: same as advance(200))
    session.result(out=DIR)                       # -> MlpResult; figures with out=

Each job holds the whole workflow of a command: the data (a generator, or the
user's CSV through :func:`dlvr_jax.data.load_csv`), resuming, training, the
figures, the checkpoint and ``metrics.json`` (written once, by
:func:`write_json`, atomically). The command line (:mod:`dlvr_jax.cli`) only
parses arguments into a config, calls the job and prints ``result.metrics``;
a Python program or a server can drive the same jobs, and
:class:`MlpSession` runs an MLP job in chunks that resume bit for bit.

A job does not raise when training diverges: the result's ``diverged``
names the epoch and what became non-finite, and the files hold the run up
to the last good epoch. Bad configurations raise ``ValueError`` (or
``TypeError``) at the door; a refused resume raises :class:`ConfigMismatch`.

Examples:
    >>> from dlvr_jax import jobs
    >>> config = jobs.MlpConfig(n=100, hidden=(4,), epochs=30, learning_rate=1e-2)
    >>> session = jobs.MlpSession.start(config)
    >>> session.advance(10), session.advance(20), session.epoch
    (10, 20, 30)
    >>> result = session.result()
    >>> result.metrics["epochs"], result.diverged is None
    (30, True)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import jax
import numpy as np

import dlvr_jax
from dlvr_jax import _io, checkpoint, data, descent, engine, models, optim, train
from dlvr_jax import _validate as check
from dlvr_jax import perceptron as pla
from dlvr_jax.jobs.problem import Problem, ProblemConfig, prepare_problem, read_csv, signed_mse

__all__ = [
    "CompareConfig",
    "CompareResult",
    "ConfigMismatch",
    "Divergence",
    "MlpConfig",
    "MlpResult",
    "MlpSession",
    "OptimizeConfig",
    "OptimizeResult",
    "PerceptronConfig",
    "PerceptronResult",
    "Problem",
    "ProblemConfig",
    "SweepConfig",
    "SweepResult",
    "compare_activations",
    "compilation_cache",
    "mlp",
    "optimize",
    "perceptron",
    "prepare_problem",
    "read_csv",
    "signed_mse",
    "sweep",
    "write_json",
]

MLP_FILES = (
    "decision_boundary.png",
    "loss_curve.png",
    "gradient_heatmap.png",
    "neuron_maps.png",
    "metrics.json",
)
"""The files :func:`mlp` writes into ``out`` (the figures need 2-D inputs)."""

SWEEP_COLUMNS = (
    "model",
    "batch_size",
    "learning_rate",
    "l1",
    "l2",
    "seed",
    "epochs",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "diverged_epoch",
    "compile_seconds",
    "run_seconds",
)
"""The columns of ``sweep.csv``."""

TASKS = ("classification", "regression")

Progress = Callable[[int, int, train.History], None]


# ----------------------------------------------------------------------------
# Files and environment.


def write_json(path: str | os.PathLike[str], document: Mapping[str, Any]) -> None:
    """Writes ``document`` as indented JSON to ``path`` atomically (the one metrics writer)."""
    text = json.dumps(document, indent=2) + "\n"
    _io.write_atomic(path, lambda stream: stream.write(text.encode()))


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


def _cache_in_use() -> str | None:
    folder = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    return str(folder) if folder else None


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _last(values: Any) -> float | None:
    """The last entry of a per-epoch array, read on the host (no device program)."""
    if values is None:
        return None
    host = np.asarray(values)
    return None if host.size == 0 else _finite_or_none(host[-1])


# ----------------------------------------------------------------------------
# Data: a generator, or the user's CSV.


class _Data(NamedTuple):
    train: data.Dataset
    test: data.Dataset
    keys: tuple[jax.Array, ...]  # the keys left over for the job (e.g. the training key)
    task: str
    n_outputs: int
    loss: str
    description: dict[str, Any]  # what a checkpoint records about the dataset


def _prepare_data(
    *,
    dataset: str,
    n: int,
    noise: float,
    data_path: str | None,
    task: str | None,
    test_fraction: float,
    seed: int,
    parts: int,
    hidden: tuple[int, ...] = (),
    activation: str = "relu",
) -> _Data:
    """Train and test sets, the task and the keys, from a generator or from ``data_path``."""
    problem = prepare_problem(
        ProblemConfig(
            dataset=dataset,
            n=n,
            noise=noise,
            data_path=data_path,
            task=task,
            test_fraction=test_fraction,
            seed=seed,
            hidden=hidden,
            activation=activation,
        ),
        training_key=parts == 3,
    )
    keys = () if problem.key is None else (problem.key,)
    return _Data(
        problem.train, problem.test, keys, problem.task, problem.n_outputs,
        str(problem.loss), problem.description,
    )  # fmt: skip


def _check_data_options(
    dataset: str, n: Any, noise: Any, data_path: Any, task: Any, test_fraction: Any
) -> None:
    check.choice("dataset", dataset, data.names())
    check.positive_int("n", n)
    check.real("noise", noise, low=0.0)
    check.real("test_fraction", test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    if data_path is not None and not isinstance(data_path, str):
        raise TypeError(f"data_path must be a path string or None, got {check.show(data_path)}")
    if task is not None:
        check.choice("task", task, TASKS)
        if data_path is None:
            raise ValueError(
                f"task applies only to data_path (a CSV); generator {dataset!r} is "
                f"{data.task(dataset)}, got task={task!r}"
            )


def _check_seed(name: str, seed: Any) -> int:
    seed = check.positive_int(name, seed, minimum=0)
    if seed >= 2**32:
        raise ValueError(f"{name} must be an integer in [0, 2**32), got {check.show(seed)}")
    return seed


def _check_hidden(hidden: Any) -> tuple[int, ...]:
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise TypeError(f"hidden must be a sequence of widths, got {check.show(hidden)}")
    return tuple(check.positive_int("hidden width", w) for w in hidden)


def _dataset_label(config: Any) -> str:
    return config.data_path if config.data_path is not None else config.dataset


# ----------------------------------------------------------------------------
# The MLP job.


@dataclasses.dataclass(frozen=True)
class MlpConfig:
    """What ``dlvr-jax mlp`` trains; the defaults are the chapter's program.

    Attributes:
        dataset: a generator name (:func:`dlvr_jax.data.names`); ignored with ``data_path``.
        n: number of generated points.
        noise: the generator's noise.
        data_path: a CSV of the user's own data (features..., target last;
            a header line is optional), read by :func:`dlvr_jax.data.load_csv`.
        task: ``"classification"`` or ``"regression"`` for ``data_path``; None
            infers it from the target column (integers are class labels).
        test_fraction: share of the points held out.
        hidden: hidden layer widths.
        activation: a name from :data:`dlvr_jax.models.activations`.
        optimizer: a name from :func:`dlvr_jax.optim.names`.
        learning_rate: the optimizer's step size.
        clip_norm: clip gradients to this global norm (None: no clipping).
        epochs: total epochs (a resumed run trains up to this many in total).
        batch_size: examples per step; None for full batch.
        l1: L1 penalty on the weights.
        l2: L2 penalty on the weights.
        seed: seeds the data, the split and the initialisation.
    """

    dataset: str = "circle"
    n: int = 1000
    noise: float = 0.0
    data_path: str | None = None
    task: str | None = None
    test_fraction: float = 0.2
    hidden: tuple[int, ...] = (8, 8, 8, 8, 8)
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    clip_norm: float | None = None
    epochs: int = 2000
    batch_size: int | None = None
    l1: float = 0.0
    l2: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_data_options(
            self.dataset, self.n, self.noise, self.data_path, self.task, self.test_fraction
        )
        object.__setattr__(self, "hidden", _check_hidden(self.hidden))
        check.choice("activation", self.activation, tuple(sorted(models.activations)))
        check.choice("optimizer", self.optimizer, optim.names())
        check.real("learning_rate", self.learning_rate, low=0.0, low_open=True)
        if self.clip_norm is not None:
            check.real("clip_norm", self.clip_norm, low=0.0, low_open=True)
        check.positive_int("epochs", self.epochs)
        if self.batch_size is not None:
            check.positive_int("batch_size", self.batch_size)
        check.real("l1", self.l1, low=0.0)
        check.real("l2", self.l2, low=0.0)
        _check_seed("seed", self.seed)


class Divergence(NamedTuple):
    """Training stopped because values became non-finite.

    Attributes:
        epoch: the 1-based epoch at which it happened; the state and history
            kept are those of the epoch before.
        cause: what became non-finite, e.g. ``"loss became inf"`` or
            ``"parameters became nan"``.
    """

    epoch: int
    cause: str


class ConfigMismatch(ValueError):
    """A checkpoint was trained with another configuration than the one given.

    Attributes:
        field: the dotted name of the first differing entry, e.g. ``"model.activation"``.
        saved: its value in the checkpoint.
        given: its value now.
    """

    def __init__(self, path: str, field: str, saved: Any, given: Any) -> None:
        super().__init__(
            f"checkpoint {path!r} was trained with {field}={saved!r}, not {given!r}; "
            "pass force=True to resume anyway"
        )
        self.field = field
        self.saved = saved
        self.given = given


class MlpResult(NamedTuple):
    """What :func:`mlp` (or :meth:`MlpSession.result`) returns.

    Attributes:
        config: the configuration trained.
        model: the :class:`~dlvr_jax.models.MLP`.
        state: the final :class:`~dlvr_jax.train.TrainState` (the last good one
            after a divergence); None when nothing was trained.
        history: the :class:`~dlvr_jax.train.History` of all epochs so far.
        metrics: the JSON document written to ``metrics.json`` and printed by the CLI.
        files: the files written.
        diverged: a :class:`Divergence`, or None.
        nothing_to_train: a resume whose checkpoint already holds ``config.epochs``.
    """

    config: MlpConfig
    model: models.MLP
    state: train.TrainState | None
    history: train.History | None
    metrics: dict[str, Any]
    files: tuple[str, ...]
    diverged: Divergence | None
    nothing_to_train: bool


def _record(config: MlpConfig, prepared: _Data) -> dict[str, Any]:
    """The configuration a checkpoint records (what a resume must match)."""
    return {
        "dataset": prepared.description,
        "model": {
            "hidden": list(config.hidden),
            "activation": config.activation,
            "n_outputs": prepared.n_outputs,
            "n_features": int(prepared.train.x.shape[1]),
        },
        "optimizer": {
            "name": config.optimizer,
            "learning_rate": config.learning_rate,
            "clip_norm": config.clip_norm,
        },
        "loss": prepared.loss,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "l1": config.l1,
        "l2": config.l2,
    }


def _first_difference(saved: Any, given: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first dotted field where two recorded configurations differ (a CSV's path aside)."""
    if isinstance(saved, Mapping) and isinstance(given, Mapping):
        if ("sha256" in saved) != ("sha256" in given):  # a generator against a CSV
            return prefix.rstrip("."), dict(saved), dict(given)
        for name in given:
            if name == "path":
                continue  # the same bytes (sha256) moved elsewhere are the same data
            found = _first_difference(saved.get(name), given[name], f"{prefix}{name}.")
            if found is not None:
                return found
        return None
    if isinstance(saved, (list, tuple)) and isinstance(given, (list, tuple)):
        same = len(saved) == len(given) and all(a == b for a, b in zip(saved, given, strict=False))
        return None if same else (prefix.rstrip("."), list(saved), list(given))
    return None if saved == given else (prefix.rstrip("."), saved, given)


def _divergence_cause(state: train.TrainState, train_set: data.Dataset, batch_size: int) -> str:
    """Replays the diverging epoch: what became non-finite first.

    First with the engine's own compiled epoch (a shorter run of the same loop
    gives the same bits, which is how the engine recovers the last good state),
    then step by step, which names the loss or the parameters when the epoch's
    record alone cannot.
    """
    after, records, _, _ = engine.run(state, train_set, None, 1, batch_size)
    epoch_loss = float(records.train_loss[0])
    if not math.isfinite(epoch_loss):
        return f"loss became {'nan' if math.isnan(epoch_loss) else 'inf'}"
    final = [np.asarray(leaf) for leaf in jax.tree.leaves(after.params)]
    if any(np.isnan(leaf).any() for leaf in final):
        return "parameters became nan"
    if any(np.isinf(leaf).any() for leaf in final):
        return "parameters became inf"
    step = jax.jit(train.train_step)
    n = int(train_set.x.shape[0])
    if batch_size >= n:
        batches = [train.Batch(train_set.x, train_set.y)]
    else:
        index, mask = (
            np.asarray(a) for a in train.minibatches(state.key, state.epoch, n, batch_size)
        )
        padded = index.size > n
        batches = [
            train.Batch(train_set.x[rows], train_set.y[rows], weights if padded else None)
            for rows, weights in zip(index, mask, strict=True)
        ]
    for batch in batches:
        state, metrics = step(state, batch)
        loss = float(metrics.loss)
        if not math.isfinite(loss):
            return f"loss became {'nan' if math.isnan(loss) else 'inf'}"
        leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(state.params)]
        if any(np.isnan(leaf).any() for leaf in leaves):
            return "parameters became nan"
        if any(np.isinf(leaf).any() for leaf in leaves):
            return "parameters became inf"
    return "loss or parameters became nan/inf"


class MlpSession:
    """An MLP job that trains in chunks: ``start``, ``advance`` as often as wanted, ``result``.

    Chunks resume through ``train.fit(..., state=...)``, so ``advance(a)``
    then ``advance(b)`` gives the same bits as ``advance(a + b)`` and as
    :func:`mlp` with ``epochs = a + b``. Built for a server that trains a
    little, reports, and trains on.
    """

    def __init__(
        self,
        config: MlpConfig,
        prepared: _Data,
        model: models.MLP,
        optimizer: Any,
        state: train.TrainState | None,
        history: train.History | None,
        resumed_from: str | None,
    ) -> None:
        self.config = config
        self.model = model
        self.optimizer = optimizer
        self.state = state
        self.history = history
        self.resumed_from = resumed_from
        self.diverged: Divergence | None = None
        self.seconds = 0.0
        self.timings: dict[str, float] = {}
        self._data = prepared

    @classmethod
    def start(
        cls, config: MlpConfig, *, resume: str | None = None, force: bool = False
    ) -> MlpSession:
        """Prepares the data, model and optimizer; with ``resume``, loads that checkpoint.

        Raises:
            ValueError: a bad CSV or batch size; :class:`ConfigMismatch` when the
                checkpoint's recorded configuration differs (unless ``force``).
            FileNotFoundError: no file at ``data_path`` or ``resume``.
        """
        if not isinstance(config, MlpConfig):
            raise TypeError(f"config must be an MlpConfig, got {type(config).__name__}")
        started = time.perf_counter()
        prepared = _prepare_data(
            dataset=config.dataset,
            n=config.n,
            noise=config.noise,
            data_path=config.data_path,
            task=config.task,
            test_fraction=config.test_fraction,
            seed=config.seed,
            parts=3,
        )
        n_train = int(prepared.train.x.shape[0])
        if config.batch_size is not None and config.batch_size > n_train:
            raise ValueError(
                f"batch_size must be at most the training set size ({n_train}), "
                f"got {config.batch_size}"
            )
        model = models.MLP(
            hidden=config.hidden, n_outputs=prepared.n_outputs, activation=config.activation
        )
        optimizer = optim.optimizer(
            config.optimizer, config.learning_rate, clip_norm=config.clip_norm
        )
        session = cls(config, prepared, model, optimizer, None, None, resume)
        session.timings["data"] = time.perf_counter() - started
        if resume is not None:
            info = checkpoint.info(resume)
            if info.config is not None and not force:
                found = _first_difference(info.config, _record(config, prepared))
                if found is not None:
                    raise ConfigMismatch(resume, *found)
            like = train.create_train_state(
                prepared.keys[0], model, optimizer, prepared.train.x, loss=prepared.loss
            )
            session.state, session.history = checkpoint.load(resume, like)
        return session

    @property
    def train_set(self) -> data.Dataset:
        """The training set (from the generator or the CSV, after the split)."""
        return self._data.train

    @property
    def test_set(self) -> data.Dataset:
        """The held-out set, evaluated after every epoch."""
        return self._data.test

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return self._data.task

    @property
    def epoch(self) -> int:
        """Epochs trained so far (a resumed checkpoint's included)."""
        return 0 if self.state is None else int(self.state.epoch)

    @property
    def record(self) -> dict[str, Any]:
        """The configuration a checkpoint of this session records."""
        return _record(self.config, self._data)

    def advance(
        self, epochs: int, *, progress: Progress | None = None, chunk_epochs: int | None = None
    ) -> int:
        """Trains ``epochs`` more epochs; returns how many were trained.

        Fewer than ``epochs`` when training diverges: then :attr:`diverged` is
        set, the session keeps the last good state and history, and further
        calls train nothing.
        """
        epochs = check.positive_int("epochs", epochs)
        if self.diverged is not None:
            return 0
        before = self.epoch
        if self.state is None:  # the state train.fit would create, timed apart
            started = time.perf_counter()
            self.state = train.create_train_state(
                self._data.keys[0],
                self.model,
                self.optimizer,
                self._data.train.x,
                loss=self._data.loss,
                l1=self.config.l1,
                l2=self.config.l2,
            )
            self.timings["init"] = time.perf_counter() - started
        started = time.perf_counter()
        try:
            state, new = train.fit(
                self._data.keys[0],
                self.model,
                self.optimizer,
                self._data.train,
                epochs=epochs,
                batch_size=self.config.batch_size,
                loss=self._data.loss,
                l1=self.config.l1,
                l2=self.config.l2,
                test=self._data.test,
                state=self.state,
                progress=progress,
                chunk_epochs=chunk_epochs,
            )
        except train.TrainingDiverged as error:
            state, new = error.state, error.history
            n = int(self._data.train.x.shape[0])
            cause = _divergence_cause(state, self._data.train, self.config.batch_size or n)
            # The kept state is the one before the bad epoch, whatever the numbering of fit's.
            self.diverged = Divergence(int(state.epoch) + 1, cause)
        self.seconds += time.perf_counter() - started
        self.timings["train"] = self.seconds
        self.state = state
        self.history = new if self.history is None else train.concatenate(self.history, new)
        return self.epoch - before

    def result(self, *, out: str | None = None, checkpoint_path: str | None = None) -> MlpResult:
        """The result so far; with ``out``, writes the figures and ``metrics.json`` there.

        ``checkpoint_path`` saves the state, the history and :attr:`record`.
        """
        files: list[str] = []
        notes: list[str] = []
        started = time.perf_counter()
        if out is not None and self.state is not None and self.history is not None:
            os.makedirs(out, exist_ok=True)
            files, notes = _mlp_figures(self, out)
        self.timings["figures"] = time.perf_counter() - started
        started = time.perf_counter()
        if checkpoint_path is not None and self.state is not None:
            checkpoint.save(checkpoint_path, self.state, self.history, config=self.record)
        metrics = self._metrics(files, notes, checkpoint_path)
        self.timings["files"] = time.perf_counter() - started  # the checkpoint and the metrics
        metrics["timings"] = {name: round(value, 3) for name, value in self.timings.items()}
        if out is not None:
            path = os.path.join(out, "metrics.json")
            files.append(path)
            metrics["files"] = list(files)
            write_json(path, metrics)
        return MlpResult(
            self.config,
            self.model,
            self.state,
            self.history,
            metrics,
            tuple(files),
            self.diverged,
            False,
        )

    def _metrics(
        self, files: list[str], notes: list[str], checkpoint_path: str | None
    ) -> dict[str, Any]:
        config, prepared = self.config, self._data
        history, state = self.history, self.state
        classification = prepared.task == "classification"
        return {
            "command": "mlp",
            "version": dlvr_jax.__version__,
            "dataset": _dataset_label(config),
            "data": prepared.description,
            "task": prepared.task,
            "n": int(prepared.train.x.shape[0] + prepared.test.x.shape[0]),
            "noise": config.noise,
            "seed": config.seed,
            "hidden": list(config.hidden),
            "activation": config.activation,
            "n_outputs": prepared.n_outputs,
            "optimizer": config.optimizer,
            "learning_rate": config.learning_rate,
            "clip_norm": config.clip_norm,
            "batch_size": config.batch_size,
            "l1": config.l1,
            "l2": config.l2,
            "loss": prepared.loss,
            "parameters": None if state is None else models.count_params(state.params),
            "epochs": self.epoch,
            "steps": 0 if state is None else int(state.step),
            "train_loss": None if history is None else _last(history.train_loss),
            "test_loss": None if history is None else _last(history.test_loss),
            "train_accuracy": _last(history.train_accuracy) if classification and history else None,
            "test_accuracy": _last(history.test_accuracy) if classification and history else None,
            "train_seconds": round(self.seconds, 3),
            "compilation_cache": _cache_in_use(),
            "checkpoint": checkpoint_path,
            "resumed_from": self.resumed_from,
            "diverged": None if self.diverged is None else self.diverged._asdict(),
            "nothing_to_train": False,
            "notes": notes,
            "files": list(files),
        }


def _surface(model: models.MLP, params: Any, task: str, n_outputs: int) -> Callable[..., Any]:
    """What the decision-boundary figure shades: the output, P(class 1), or the class."""
    if task == "regression":
        return lambda grid: cast(jax.Array, model.apply(params, grid))[:, 0]
    if n_outputs == 2:
        return lambda grid: train.probabilities(model, params, grid)[:, 1]
    return lambda grid: jax.numpy.argmax(train.probabilities(model, params, grid), axis=-1)


def _mlp_figures(session: MlpSession, out: str) -> tuple[list[str], list[str]]:
    from dlvr_jax import viz  # matplotlib is loaded only when a figure is made

    files: list[str] = []
    notes: list[str] = []
    with np.errstate(all="ignore"):  # a run near divergence has huge logits
        _draw_mlp_figures(session, out, viz, files, notes)
    return files, notes


def _draw_mlp_figures(
    session: MlpSession, out: str, viz: Any, files: list[str], notes: list[str]
) -> None:
    assert session.state is not None
    assert session.history is not None
    prepared, params, history = session._data, session.state.params, session.history
    two_d = int(prepared.train.x.shape[1]) == 2
    if two_d:
        surface = _surface(session.model, params, prepared.task, prepared.n_outputs)
        figure = viz.plot_decision_boundary(
            surface,
            prepared.test,
            title=f"MLP Classification and Predictions ({_dataset_label(session.config)})",
        )
        figure.set_size_inches(8, 8)
        files.append(os.path.join(out, "decision_boundary.png"))
        viz.save(figure, files[-1])
    else:
        notes.append(
            f"no decision_boundary.png or neuron_maps.png: they draw 2 inputs, the data has "
            f"{int(prepared.train.x.shape[1])}"
        )
    if int(np.shape(history.train_loss)[0]) > 0:
        figure = viz.plot_loss_curve(history)
        figure.set_size_inches(8, 6)
        files.append(os.path.join(out, "loss_curve.png"))
        viz.save(figure, files[-1])
        figure = viz.plot_gradient_heatmap(history.final_grads)
        figure.set_size_inches(8, 6)
        files.append(os.path.join(out, "gradient_heatmap.png"))
        viz.save(figure, files[-1])
    else:
        notes.append("no loss_curve.png or gradient_heatmap.png: no epoch finished")
    if two_d:
        files.append(os.path.join(out, "neuron_maps.png"))
        viz.save(viz.plot_neuron_maps(session.model, params, prepared.test), files[-1])


def mlp(
    config: MlpConfig,
    *,
    out: str | None = ".",
    checkpoint_path: str | None = None,
    resume: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    chunk_epochs: int | None = None,
) -> MlpResult:
    """Trains the MLP of ``config`` (to ``config.epochs`` in total) and writes its files.

    Args:
        config: what to train.
        out: folder for the figures and ``metrics.json`` (None: write nothing).
        checkpoint_path: save the final state, history and configuration there.
        resume: continue from this checkpoint; its recorded configuration must
            match ``config`` (:class:`ConfigMismatch` otherwise) unless ``force``.
        force: resume even when the configurations differ.
        progress, chunk_epochs: as for :func:`dlvr_jax.train.fit`.

    Returns:
        An :class:`MlpResult`. When the checkpoint already holds
        ``config.epochs`` epochs, nothing is trained or written and
        ``nothing_to_train`` is True. When training diverges, ``diverged`` is
        set and the files hold the run up to the last good epoch.
    """
    session = MlpSession.start(config, resume=resume, force=force)
    remaining = config.epochs - session.epoch
    if remaining <= 0:
        metrics = {**session._metrics([], [], None), "nothing_to_train": True}
        return MlpResult(
            config, session.model, session.state, session.history, metrics, (), None, True
        )
    session.advance(remaining, progress=progress, chunk_epochs=chunk_epochs)
    return session.result(out=out, checkpoint_path=checkpoint_path)


# ----------------------------------------------------------------------------
# compare-activations.


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Exercise 1.1: one MLP per activation, same data and key (see :class:`MlpConfig`)."""

    activations: tuple[str, ...] = ("relu", "sigmoid", "tanh")
    dataset: str = "circle"
    n: int = 1000
    noise: float = 0.0
    data_path: str | None = None
    task: str | None = None
    test_fraction: float = 0.2
    hidden: tuple[int, ...] = (8, 8, 8, 8, 8)
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    clip_norm: float | None = None
    epochs: int = 2000
    batch_size: int | None = None
    l1: float = 0.0
    l2: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        activations: Any = self.activations
        if isinstance(activations, str) or not activations:
            raise ValueError(
                f"activations must be a non-empty sequence of names, got {check.show(activations)}"
            )
        for name in activations:
            check.choice("activation", name, tuple(sorted(models.activations)))
        object.__setattr__(self, "activations", tuple(activations))
        self.mlp(self.activations[0])  # checks the shared fields

    def mlp(self, activation: str) -> MlpConfig:
        """The :class:`MlpConfig` of one activation's run."""
        shared = [f.name for f in dataclasses.fields(MlpConfig) if f.name != "activation"]
        return MlpConfig(**{name: getattr(self, name) for name in shared}, activation=activation)


class CompareResult(NamedTuple):
    """One :class:`MlpResult` (without files) per activation, and the comparison's files."""

    config: CompareConfig
    runs: dict[str, MlpResult]
    metrics: dict[str, Any]
    files: tuple[str, ...]


def compare_activations(
    config: CompareConfig,
    *,
    out: str | None = ".",
    progress: Callable[[str], Progress] | None = None,
) -> CompareResult:
    """Trains ``config.hidden`` once per activation; writes ``activation_comparison.png``.

    ``progress(name)`` gives the progress callback of one activation's run.
    """
    if not isinstance(config, CompareConfig):
        raise TypeError(f"config must be a CompareConfig, got {type(config).__name__}")
    runs: dict[str, MlpResult] = {}
    sessions: dict[str, MlpSession] = {}
    for name in config.activations:
        session = MlpSession.start(config.mlp(name))
        callback = None if progress is None else progress(name)
        session.advance(
            config.epochs,
            progress=callback,
            chunk_epochs=None if callback is None else max(1, config.epochs // 50),
        )
        sessions[name] = session
        runs[name] = session.result()
    files: list[str] = []
    notes: list[str] = []
    if out is not None:
        from dlvr_jax import viz

        os.makedirs(out, exist_ok=True)
        histories = {
            name: s.history
            for name, s in sessions.items()
            if s.history is not None and int(np.shape(s.history.train_loss)[0]) > 0
        }
        boundaries = None
        first = next(iter(sessions.values()))._data
        if int(first.train.x.shape[1]) == 2:
            boundaries = {
                name: (
                    _surface(s.model, s.state.params, first.task, first.n_outputs),
                    first.test,
                )
                for name, s in sessions.items()
                if s.state is not None
            }
        else:
            notes.append("no decision boundaries: they draw 2 inputs")
        if histories:
            files.append(os.path.join(out, "activation_comparison.png"))
            viz.save(viz.plot_activation_comparison(histories, boundaries=boundaries), files[-1])
        files.append(os.path.join(out, "metrics.json"))
    keep = ("epochs", "steps", "train_loss", "test_loss", "train_accuracy", "test_accuracy")
    metrics: dict[str, Any] = {
        "command": "compare-activations",
        "version": dlvr_jax.__version__,
        "dataset": _dataset_label(config),
        "n": runs[config.activations[0]].metrics["n"],
        "seed": config.seed,
        "hidden": list(config.hidden),
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "clip_norm": config.clip_norm,
        "epochs": config.epochs,
        "results": {
            name: {
                **{k: run.metrics[k] for k in keep},
                "diverged": run.metrics["diverged"],
            }
            for name, run in runs.items()
        },
        "compilation_cache": _cache_in_use(),
        "notes": notes,
        "files": files,
    }
    if out is not None:
        write_json(files[-1], metrics)
    return CompareResult(config, runs, metrics, tuple(files))


# ----------------------------------------------------------------------------
# The perceptron.


@dataclasses.dataclass(frozen=True)
class PerceptronConfig:
    """What ``dlvr-jax perceptron`` runs: the PLA on a generator's points or a CSV."""

    dataset: str = "linear"
    n: int = 200
    seed: int = 0
    noise: float = 0.0
    margin: float = 0.0
    data_path: str | None = None
    learning_rate: float = 0.1
    max_epochs: int = 1000
    pocket: bool = False

    def __post_init__(self) -> None:
        _check_data_options(self.dataset, self.n, self.noise, self.data_path, None, 0.5)
        if self.data_path is None and data.task(self.dataset) != "classification":
            raise ValueError(
                f"the perceptron classifies; dataset {self.dataset!r} is a regression set"
            )
        check.real("margin", self.margin, low=0.0, high=1.0)
        if self.margin and (self.dataset != "linear" or self.data_path is not None):
            raise ValueError("--margin applies only to --dataset linear")
        check.real("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check.positive_int("max_epochs", self.max_epochs)
        _check_seed("seed", self.seed)


class PerceptronResult(NamedTuple):
    """The perceptron's fit (and the pocket's, when run), its metrics and files."""

    config: PerceptronConfig
    fit: pla.FitResult
    pocket: Any
    metrics: dict[str, Any]
    files: tuple[str, ...]


def _params_dict(params: pla.Params) -> dict[str, Any]:
    return {"weights": [float(v) for v in np.asarray(params.w)], "bias": float(params.b)}


def perceptron(config: PerceptronConfig, *, out: str | None = ".") -> PerceptronResult:
    """Runs the perceptron learning algorithm (and the pocket when it does not converge)."""
    if not isinstance(config, PerceptronConfig):
        raise TypeError(f"config must be a PerceptronConfig, got {type(config).__name__}")
    if config.data_path is None:
        options: dict[str, Any] = {"noise": config.noise}
        if config.margin:
            options["margin"] = config.margin
        points = data.make(config.dataset, jax.random.key(config.seed), config.n, **options)
    else:
        points = read_csv(config.data_path, "classification")
        labels = sorted({int(v) for v in np.asarray(points.y)})
        if not set(labels) <= {0, 1}:
            raise ValueError(
                f"{config.data_path}: the perceptron needs labels 0 and 1, got {labels[:10]}"
            )
    x, y = points.x, data.signed(points.y)
    result = pla.fit(x, y, learning_rate=config.learning_rate, max_epochs=config.max_epochs)
    converged = bool(result.converged)
    epochs = int(result.epochs)
    metrics: dict[str, Any] = {
        "command": "perceptron",
        "version": dlvr_jax.__version__,
        "dataset": _dataset_label(config),
        "n": int(np.shape(x)[0]),
        "seed": config.seed,
        "noise": config.noise,
        "margin": config.margin,
        "learning_rate": config.learning_rate,
        "max_epochs": config.max_epochs,
        **_params_dict(result.params),
        "epochs": epochs,
        "updates": int(result.updates),
        "converged": converged,
        "accuracy": float(pla.accuracy(result.params, x, y)),
        "mistakes_per_epoch": [int(m) for m in np.asarray(result.mistakes_per_epoch)[:epochs]],
        "novikoff_bound": None,
        "pocket": None,
    }
    if config.data_path is None and config.dataset == "linear" and config.noise == 0:
        bound = float(pla.mistake_bound(x, y, np.array([1.0, 1.0], np.float32)))
        metrics["novikoff_bound"] = bound if math.isfinite(bound) else None
    shown, label, kept = result.params, "PLA", None
    if config.pocket or not converged:
        kept = pla.pocket(
            x,
            y,
            learning_rate=config.learning_rate,
            max_epochs=config.max_epochs,
            every_update=True,
        )
        metrics["pocket"] = {"accuracy": float(kept.accuracy), **_params_dict(kept.params)}
        shown, label = kept.params, "pocket"
    files: list[str] = []
    notes: list[str] = []
    if out is not None:
        os.makedirs(out, exist_ok=True)
        if int(np.shape(x)[1]) == 2:
            from dlvr_jax import viz

            figure = viz.plot_decision_boundary(
                lambda grid: pla.predict(shown, grid),
                points,
                line=shown,
                title=f"Perceptron Learning Algorithm ({_dataset_label(config)}, {label})",
            )
            figure.set_size_inches(8, 8)
            files.append(os.path.join(out, "perceptron.png"))
            viz.save(figure, files[-1])
        else:
            notes.append(f"no perceptron.png: it draws 2 inputs, the data has {np.shape(x)[1]}")
        files.append(os.path.join(out, "metrics.json"))
    metrics["notes"] = notes
    metrics["files"] = files
    if out is not None:
        write_json(files[-1], metrics)
    return PerceptronResult(config, result, kept, metrics, tuple(files))


# ----------------------------------------------------------------------------
# The sweep.


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Learning rate x batch size x seed, one compiled vmap per batch size (Exercise 1.1)."""

    learning_rates: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    batch_sizes: tuple[int, ...] = (32, 128, 1000)
    seeds: int = 8
    epochs: int = 100
    dataset: str = "circle"
    n: int = 1000
    noise: float = 0.0
    data_path: str | None = None
    task: str | None = None
    test_fraction: float = 0.2
    hidden: tuple[int, ...] = (8, 8, 8, 8, 8)
    activation: str = "relu"
    optimizer: str = "adam"
    l2: float = 0.0
    data_seed: int = 0

    def __post_init__(self) -> None:
        _check_data_options(
            self.dataset, self.n, self.noise, self.data_path, self.task, self.test_fraction
        )
        if self.data_path is None and data.task(self.dataset) != "classification":
            raise ValueError(
                f"sweep trains classifiers; --dataset {self.dataset} is a regression set"
            )
        if self.task == "regression":
            raise ValueError("sweep trains classifiers; --task regression is not supported")
        object.__setattr__(
            self,
            "learning_rates",
            tuple(
                check.real("learning rate", r, low=0.0, low_open=True) for r in self.learning_rates
            ),
        )
        object.__setattr__(
            self,
            "batch_sizes",
            tuple(check.positive_int("batch size", b) for b in self.batch_sizes),
        )
        if not self.learning_rates or not self.batch_sizes:
            raise ValueError("learning_rates and batch_sizes must not be empty")
        object.__setattr__(self, "hidden", _check_hidden(self.hidden))
        check.positive_int("seeds", self.seeds)
        check.positive_int("epochs", self.epochs)
        check.choice("activation", self.activation, tuple(sorted(models.activations)))
        check.choice("optimizer", self.optimizer, optim.names())
        check.real("l2", self.l2, low=0.0)
        _check_seed("data_seed", self.data_seed)


class SweepResult(NamedTuple):
    """The sweep's table (a row per model), its summary (``metrics``) and files."""

    config: SweepConfig
    rows: list[dict[str, Any]]
    metrics: dict[str, Any]
    files: tuple[str, ...]


def sweep(
    config: SweepConfig, *, out: str | None = ".", progress: Callable[[str], None] | None = None
) -> SweepResult:
    """Trains every (learning rate, batch size, seed); writes the heatmap, CSV and JSON."""
    from dlvr_jax import parallel, viz

    if not isinstance(config, SweepConfig):
        raise TypeError(f"config must be a SweepConfig, got {type(config).__name__}")
    prepared = _prepare_data(
        dataset=config.dataset,
        n=config.n,
        noise=config.noise,
        data_path=config.data_path,
        task=config.task,
        test_fraction=config.test_fraction,
        seed=config.data_seed,
        parts=2,
    )
    if prepared.task != "classification":
        raise ValueError(
            f"{config.data_path}: sweep trains classifiers; its targets are not labels"
        )
    n_train = int(prepared.train.x.shape[0])
    batch_sizes = sorted({min(b, n_train) for b in config.batch_sizes})
    model = models.MLP(
        hidden=config.hidden, activation=config.activation, n_outputs=prepared.n_outputs
    )
    started = time.perf_counter()
    rows = parallel.sweep_table(
        list(range(config.seeds)),
        {"mlp": model},
        prepared.train,
        learning_rates=list(config.learning_rates),
        batch_sizes=[None if b == n_train else b for b in batch_sizes],
        epochs=config.epochs,
        optimizer=config.optimizer,
        l2=config.l2,
        test=prepared.test,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    xs, ys, mean, std, _ = parallel.sweep_summary(rows, "test_accuracy")
    best = np.unravel_index(np.nanargmax(mean), mean.shape) if np.isfinite(mean).any() else None
    compiled = {r["batch_size"]: r["compile_seconds"] for r in rows}
    ran = {r["batch_size"]: r["run_seconds"] for r in rows}
    files: list[str] = []
    if out is not None:
        files = [
            os.path.join(out, name) for name in ("sweep_heatmap.png", "sweep.csv", "sweep.json")
        ]
    metrics: dict[str, Any] = {
        "command": "sweep",
        "version": dlvr_jax.__version__,
        "dataset": _dataset_label(config),
        "n_train": n_train,
        "epochs": config.epochs,
        "optimizer": config.optimizer,
        "learning_rates": list(config.learning_rates),
        "batch_sizes": batch_sizes,
        "seeds": config.seeds,
        "models": len(rows),
        "diverged": sum(1 for r in rows if r["diverged_epoch"]),
        "best": None
        if best is None
        else {
            "learning_rate": xs[best[1]],
            "batch_size": ys[best[0]],
            "test_accuracy_mean": float(mean[best]),
            "test_accuracy_std": float(std[best]),
        },
        "compile_seconds": sum(compiled.values()),
        "run_seconds": sum(ran.values()),
        "seconds": seconds,
        "compilation_cache": _cache_in_use(),
        "files": files,
    }
    if out is not None:
        os.makedirs(out, exist_ok=True)
        label = _dataset_label(config)
        viz.save(
            viz.plot_sweep_heatmap(
                rows,
                title=f"{label}: final test accuracy and loss after {config.epochs} epochs "
                f"({config.optimizer}, {config.seeds} seeds)",
            ),
            files[0],
        )
        lines = [",".join(SWEEP_COLUMNS)]
        lines += [
            ",".join("" if row[c] is None else str(row[c]) for c in SWEEP_COLUMNS) for row in rows
        ]
        table = "\n".join(lines) + "\n"
        _io.write_atomic(files[1], lambda stream: stream.write(table.encode()))
        write_json(files[2], {**metrics, "rows": rows})
    return SweepResult(config, rows, metrics, tuple(files))


# ----------------------------------------------------------------------------
# Exercise 1.3: descent on toy functions and on least squares.

DESCENT_METHODS = ("gd", *optim.names())


@dataclasses.dataclass(frozen=True)
class OptimizeConfig:
    """``dlvr-jax optimize``: descent paths on a toy function, or least squares by SGD."""

    function: str = "rosenbrock"
    optimizers: tuple[str, ...] = ("gd", "momentum", "rmsprop", "adam")
    learning_rates: tuple[float, ...] | None = None
    steps: int = 2000
    tol: float = 1e-6
    start: tuple[float, ...] | None = None
    batch_sizes: tuple[int, ...] = (1, 10, 100)
    epochs: int = 30
    n: int = 100
    noise: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        check.choice("function", self.function, (*descent.OBJECTIVES, "least_squares"))
        for name in self.optimizers:
            check.choice("optimizer", name, DESCENT_METHODS)
        check.positive_int("steps", self.steps)
        check.real("tol", self.tol, low=0.0)
        check.positive_int("epochs", self.epochs)
        check.positive_int("n", self.n)
        check.real("noise", self.noise, low=0.0)
        _check_seed("seed", self.seed)
        if self.function == "least_squares":
            if max(self.batch_sizes) > self.n:
                raise ValueError(
                    f"--batch-sizes must be at most --n ({self.n}), got {max(self.batch_sizes)}"
                )
            return
        toy = descent.objective(self.function)
        start = toy.start if self.start is None else tuple(self.start)
        if len(start) != len(toy.start):
            raise ValueError(
                f"--start must have {len(toy.start)} coordinate(s) for {self.function}, "
                f"got {','.join(f'{v:g}' for v in start)}"
            )
        rates = self.learning_rates or (1e-3,)
        if len(rates) not in (1, len(self.optimizers)):
            raise ValueError(
                f"--learning-rate must give one value or one per optimizer "
                f"({len(self.optimizers)}), got {len(rates)}"
            )


class OptimizeResult(NamedTuple):
    """The descent paths (``{name: Path}`` or ``{(rate, batch): Path}``), metrics and files."""

    config: OptimizeConfig
    paths: dict[Any, Any]
    metrics: dict[str, Any]
    files: tuple[str, ...]


def _path_summary(path: Any) -> dict[str, Any]:
    steps = int(path.steps)
    xs = np.asarray(path.xs)
    return {
        "steps": steps,
        "converged": bool(path.converged),
        "diverged": bool(path.diverged),
        "final_x": [float(v) for v in np.ravel(xs[steps])],
        "final_value": float(np.asarray(path.values)[steps]),
        "final_grad_norm": float(np.asarray(path.grad_norms)[steps]),
    }


def optimize(config: OptimizeConfig, *, out: str | None = ".") -> OptimizeResult:
    """Runs Exercise 1.3; writes the paths' figures and ``metrics.json``."""
    if not isinstance(config, OptimizeConfig):
        raise TypeError(f"config must be an OptimizeConfig, got {type(config).__name__}")
    from dlvr_jax import viz

    if config.function == "least_squares":
        return _least_squares(config, out, viz)
    toy = descent.objective(config.function)
    start = toy.start if config.start is None else tuple(config.start)
    rates = list(config.learning_rates or (1e-3,))
    learning_rates = dict(zip(config.optimizers, rates * len(config.optimizers), strict=False))
    x0 = np.asarray(start[0] if len(start) == 1 else start, np.float32)
    started = time.perf_counter()
    paths = descent.compare(
        toy.f,
        x0,
        optimizers=tuple(config.optimizers),
        learning_rate=learning_rates,
        max_steps=config.steps,
        tol=config.tol,
    )
    seconds = time.perf_counter() - started
    files: list[str] = []
    if out is not None:
        os.makedirs(out, exist_ok=True)
        title = f"{config.function}: optimization paths"
        files.append(os.path.join(out, "optimization_paths.png"))
        viz.save(
            viz.plot_optimization_paths(
                toy.f, paths, extent=toy.extent, minima=toy.minima, title=title
            ),
            files[-1],
        )
        if len(start) == 2:
            files.append(os.path.join(out, "optimization_surface.png"))
            figure = viz.plot_optimization_paths(
                toy.f, paths, extent=toy.extent, minima=toy.minima, kind="surface", title=title
            )
            viz.save(figure, files[-1])
        if math.isfinite(toy.f_star):
            files.append(os.path.join(out, "convergence.png"))
            figure = viz.plot_convergence(
                paths, toy.f_star, title=f"{config.function}: f - f* against the step"
            )
            viz.save(figure, files[-1])
        files.append(os.path.join(out, "metrics.json"))
    metrics: dict[str, Any] = {
        "command": "optimize",
        "version": dlvr_jax.__version__,
        "function": config.function,
        "start": list(start),
        "minima": [list(m) for m in toy.minima],
        "f_star": toy.f_star if math.isfinite(toy.f_star) else None,
        "max_steps": config.steps,
        "tol": config.tol,
        "learning_rates": learning_rates,
        "results": {name: _path_summary(path) for name, path in paths.items()},
        "seconds": round(seconds, 3),
        "files": files,
    }
    if out is not None:
        write_json(files[-1], metrics)
    return OptimizeResult(config, dict(paths), metrics, tuple(files))


def _least_squares(config: OptimizeConfig, out: str | None, viz: Any) -> OptimizeResult:
    rates = list(config.learning_rates or (0.01, 0.05, 0.2))
    data_key, shuffle_key = jax.random.split(jax.random.key(config.seed))
    problem = descent.quadratic_samples(data_key, config.n, noise=config.noise)
    w_star, f_star = descent.least_squares_solution(problem)
    started = time.perf_counter()
    grid = descent.convergence_grid(
        shuffle_key,
        problem,
        np.zeros(3, np.float32),
        learning_rates=rates,
        batch_sizes=list(config.batch_sizes),
        epochs=config.epochs,
    )
    seconds = time.perf_counter() - started
    files: list[str] = []
    if out is not None:
        os.makedirs(out, exist_ok=True)
        files = [os.path.join(out, name) for name in ("convergence.png", "metrics.json")]
        title = (
            f"Mini-batch gradient descent on least squares (x^2 + 4x + 4, n={config.n}): "
            "f - f* against the step"
        )
        viz.save(viz.plot_convergence(grid, float(f_star), title=title), files[0])
    metrics: dict[str, Any] = {
        "command": "optimize",
        "version": dlvr_jax.__version__,
        "function": "least_squares",
        "n": config.n,
        "noise": config.noise,
        "seed": config.seed,
        "epochs": config.epochs,
        "true_coefficients": [1.0, 4.0, 4.0],
        "least_squares_coefficients": [float(v) for v in np.asarray(w_star)],
        "f_star": float(f_star),
        "results": [
            {"learning_rate": rate, "batch_size": batch, **_path_summary(path)}
            for (rate, batch), path in grid.items()
        ],
        "seconds": round(seconds, 3),
        "files": files,
    }
    if out is not None:
        write_json(files[1], metrics)
    return OptimizeResult(config, dict(grid), metrics, tuple(files))
