"""The ``mlp`` command: train the chapter's MLP (or one on the user's CSV), in resumable chunks.

The contract::

    mlp(MlpConfig(...), out=DIR, checkpoint_path=PATH, resume=PATH)  -> MlpResult
    session = MlpSession.start(MlpConfig(...), resume=PATH)         # data, model, optimizer
    session.advance(100)                                            # 100 more epochs
    session.result(out=DIR, checkpoint_path=PATH)                   # -> MlpResult

The problem (data, split, classes, model, loss) is prepared once by
:func:`dlvr_jax.jobs.prepare_problem`; training is :func:`dlvr_jax.train.fit`,
whose chunks resume bit for bit (``advance(a)`` then ``advance(b)`` is
``advance(a + b)``). A divergence keeps the last good state and is reported
in the result (:class:`~dlvr_jax.jobs.divergence.Divergence`), not raised.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import dlvr_jax
from dlvr_jax import _validate as check
from dlvr_jax import checkpoint, data, engine, models, optim, train
from dlvr_jax.jobs import figures, results
from dlvr_jax.jobs.cache import cache_in_use
from dlvr_jax.jobs.divergence import Divergence, divergence_cause
from dlvr_jax.jobs.problem import (
    Problem,
    ProblemConfig,
    check_task_with_data,
    job_problem,
    prepare_problem,
)
from dlvr_jax.jobs.resume import ConfigMismatch, first_difference, record

__all__ = ["MLP_FILES", "MlpConfig", "MlpResult", "MlpSession", "mlp"]

MLP_FILES = (
    "decision_boundary.png",
    "loss_curve.png",
    "gradient_heatmap.png",
    "neuron_maps.png",
    "metrics.json",
)
"""The files :func:`mlp` writes into ``out`` (the figures need 2-D inputs)."""

Progress = Callable[[int, int, train.History], None]
"""``progress(epochs_done, epochs, history)``, as :func:`dlvr_jax.train.fit` calls it."""


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
        hidden: hidden layer widths (``()``: no hidden layer).
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
        check.check_fields(self, MLP_CONSTRAINTS)
        check_task_with_data(self)
        object.__setattr__(self, "_problem", job_problem(self))  # checks data and model

    def problem(self) -> ProblemConfig:
        """The :class:`~dlvr_jax.jobs.ProblemConfig` of this run (data, model, loss)."""
        return cast(ProblemConfig, getattr(self, "_problem"))  # noqa: B009


MLP_CONSTRAINTS: dict[str, check.Rules] = {
    "optimizer": check.Options(source=optim.names),
    "learning_rate": check.Interval(float, 0, None, closed="neither"),
    "clip_norm": (check.Interval(float, 0, None, closed="neither"), None),
    "epochs": check.Interval(int, 1, None, closed="left"),
    "batch_size": (check.Interval(int, 1, None, closed="left"), None),
    "l1": check.Interval(float, 0, None, closed="left"),
    "l2": check.Interval(float, 0, None, closed="left"),
}
"""The constraints of :class:`MlpConfig`'s own fields; the data, model and seed are
:class:`~dlvr_jax.jobs.ProblemConfig`'s (:data:`dlvr_jax.jobs.problem.PROBLEM_CONSTRAINTS`)."""


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
        diverged: a :class:`~dlvr_jax.jobs.Divergence`, or None.
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

    def summary(self) -> str:
        """The run in a few lines for a person: data, model, training, losses, files."""
        m = self.metrics
        data_text = f"noise={m['noise']}" if self.config.data_path is None else m["task"]
        lines = [
            f"dataset: {m['dataset']} (n={m['n']}, seed={m['seed']}, {data_text})",
            f"model: MLP hidden={m['hidden']} activation={m['activation']} "
            f"({m['parameters']} parameters), {m['optimizer']} at {m['learning_rate']:g}",
            f"trained {_count(m['epochs'], 'epoch')} ({_count(m['steps'], 'step')}) "
            f"in {m['train_seconds']:.2f}s",
        ]
        if m["train_loss"] is not None:
            test = "" if m["test_loss"] is None else f", test {results.loss_text(m['test_loss'])}"
            lines.append(f"final loss: train {results.loss_text(m['train_loss'])}{test}")
        if m["train_accuracy"] is not None:
            lines.append(f"train accuracy: {results.percent(m['train_accuracy'])}")
            lines.append(f"test accuracy: {results.percent(m['test_accuracy'])}")
        if m["checkpoint"]:
            lines.append(f"checkpoint: {m['checkpoint']}")
        lines += [f"note: {note}" for note in m["notes"]]
        if self.diverged is not None:
            epoch, cause = self.diverged
            lines.append(
                f"training diverged at epoch {epoch} ({cause}): the files hold the run up to "
                f"epoch {epoch - 1}, the last good one"
            )
        return "\n".join([*lines, "wrote " + ", ".join(m["files"])])


class MlpSession:
    """An MLP job that trains in chunks: ``start``, ``advance`` as often as wanted, ``result``.

    Chunks resume through ``train.fit(..., state=...)``, so ``advance(a)``
    then ``advance(b)`` gives the same bits as ``advance(a + b)`` and as
    :func:`mlp` with ``epochs = a + b``. Built for a server that trains a
    little, reports, and trains on.

    Attributes:
        config: the :class:`MlpConfig`.
        problem: the prepared :class:`~dlvr_jax.jobs.Problem` (data, classes, model, loss).
        model: ``problem.model``.
        optimizer: the Optax transformation.
        state, history: the training so far (None before the first epoch).
        diverged: a :class:`~dlvr_jax.jobs.Divergence` once training diverged.
    """

    def __init__(
        self, config: MlpConfig, problem: Problem, optimizer: Any, resumed_from: str | None
    ) -> None:
        self.config = config
        self.problem = problem
        self.model = problem.model
        self.optimizer = optimizer
        self.state: train.TrainState | None = None
        self.history: train.History | None = None
        self.resumed_from = resumed_from
        self.diverged: Divergence | None = None
        self.seconds = 0.0
        self.timings: dict[str, float] = {}

    @classmethod
    def start(
        cls, config: MlpConfig, *, resume: str | None = None, force: bool = False
    ) -> MlpSession:
        """Prepares the data, model and optimizer; with ``resume``, loads that checkpoint.

        Raises:
            ValueError: a bad CSV or batch size; :class:`~dlvr_jax.jobs.ConfigMismatch`
                when the checkpoint's recorded configuration differs (unless ``force``).
            FileNotFoundError: no file at ``data_path`` or ``resume``.
        """
        if not isinstance(config, MlpConfig):
            raise TypeError(f"config must be an MlpConfig, got {type(config).__name__}")
        started = time.perf_counter()
        problem = prepare_problem(config.problem())
        n_train = int(problem.train.x.shape[0])
        if config.batch_size is not None and config.batch_size > n_train:
            raise check.InvalidArgument(
                f"batch_size must be at most the training set size ({n_train}), "
                f"got {config.batch_size}",
                field="batch_size",
            )
        optimizer = optim.optimizer(
            config.optimizer, config.learning_rate, clip_norm=config.clip_norm
        )
        session = cls(config, problem, optimizer, resume)
        session.timings["data"] = time.perf_counter() - started
        if resume is not None:
            session.resume(resume, force=force)
        return session

    def resume(self, path: str, *, force: bool = False) -> None:
        """Loads the checkpoint at ``path``, refusing another configuration's unless ``force``."""
        info = checkpoint.info(path)
        if info.config is not None and not force:
            found = first_difference(info.config, self.record)
            if found is not None:
                raise ConfigMismatch(path, *found)
        p = self.problem
        like = train.create_train_state(p.key, p.model, self.optimizer, p.train.x, loss=p.loss)
        self.state, self.history = checkpoint.load(path, like)

    @property
    def train_set(self) -> data.Dataset:
        """The training set (from the generator or the CSV, after the split)."""
        return self.problem.train

    @property
    def test_set(self) -> data.Dataset:
        """The held-out set, evaluated after every epoch."""
        return self.problem.test

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return self.problem.task

    @property
    def epoch(self) -> int:
        """Epochs trained so far (a resumed checkpoint's included)."""
        return 0 if self.state is None else int(self.state.epoch)

    @property
    def record(self) -> dict[str, Any]:
        """The configuration a checkpoint of this session records."""
        return record(self.config, self.problem)

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
        p = self.problem
        options: dict[str, Any] = {
            "epochs": epochs,
            "batch_size": self.config.batch_size,
            "loss": p.loss,
            "l1": self.config.l1,
            "l2": self.config.l2,
            "test": p.test,
            "state": self.state,
            "progress": progress,
            "chunk_epochs": chunk_epochs,
        }
        if self.state is None:  # the state train.fit would create, timed apart, while
            started = time.perf_counter()  # fit's first program compiles (engine.prepare)
            plan = engine.prepare(p.key, p.model, self.optimizer, p.train, **options)
            self.state = options["state"] = plan.state
            self.timings["init"] = time.perf_counter() - started
        started = time.perf_counter()
        try:
            state, new = train.fit(p.key, p.model, self.optimizer, p.train, **options)
        except train.TrainingDiverged as error:
            state, new = error.state, error.history
            replay = {**options, "epochs": 1, "state": state, "test": None}
            replay.update(progress=None, chunk_epochs=None)
            plan = engine.prepare(p.key, p.model, self.optimizer, p.train, **replay)
            # The kept state is the one before the bad epoch, whatever the numbering of fit's.
            self.diverged = Divergence(int(state.epoch) + 1, divergence_cause(plan))
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
            label = results.dataset_label(self.config)
            files, notes = figures.mlp_figures(
                self.problem, self.model, self.state, self.history, out, label
            )
        self.timings["figures"] = time.perf_counter() - started
        started = time.perf_counter()
        if checkpoint_path is not None and self.state is not None:
            checkpoint.save(checkpoint_path, self.state, self.history, config=self.record)
        metrics = self.metrics(files, notes, checkpoint_path)
        self.timings["files"] = time.perf_counter() - started  # the checkpoint and the metrics
        metrics["timings"] = {name: round(value, 3) for name, value in self.timings.items()}
        if out is not None:
            path = os.path.join(out, "metrics.json")
            files.append(path)
            metrics["files"] = list(files)
            results.write_json(path, metrics)
        return MlpResult(
            self.config, self.model, self.state, self.history, metrics, tuple(files),
            self.diverged, False,
        )  # fmt: skip

    def metrics(
        self, files: list[str], notes: list[str], checkpoint_path: str | None
    ) -> dict[str, Any]:
        """The ``metrics.json`` document of the run so far (without ``timings``)."""
        config, p = self.config, self.problem
        history, state = self.history, self.state
        classification = p.task == "classification"

        def final(name: str) -> float | None:
            if history is None or (name.endswith("accuracy") and not classification):
                return None
            return results.last(getattr(history, name))

        document: dict[str, Any] = {
            "command": "mlp",
            "version": dlvr_jax.__version__,
            "dataset": results.dataset_label(config),
            "data": p.description,
            "task": p.task,
            "n": int(p.train.x.shape[0] + p.test.x.shape[0]),
            "noise": config.noise,
            "seed": config.seed,
            "hidden": list(config.hidden),
            "activation": config.activation,
            "n_outputs": p.n_outputs,
            "optimizer": config.optimizer,
            "learning_rate": config.learning_rate,
            "clip_norm": config.clip_norm,
            "batch_size": config.batch_size,
            "l1": config.l1,
            "l2": config.l2,
            "loss": p.loss_name,
            "parameters": None if state is None else models.count_params(state.params),
            "epochs": self.epoch,
            "steps": 0 if state is None else int(state.step),
            "train_loss": final("train_loss"),
            "test_loss": final("test_loss"),
            "train_accuracy": final("train_accuracy"),
            "test_accuracy": final("test_accuracy"),
            "train_seconds": round(self.seconds, 3),
            "compilation_cache": cache_in_use(),
            "checkpoint": checkpoint_path,
            "resumed_from": self.resumed_from,
            "diverged": None if self.diverged is None else self.diverged._asdict(),
            "nothing_to_train": False,
            "notes": notes,
            "files": list(files),
        }
        return {**document, **p.class_entries()}


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
            match ``config`` (:class:`~dlvr_jax.jobs.ConfigMismatch` otherwise)
            unless ``force``.
        force: resume even when the configurations differ.
        progress, chunk_epochs: as for :func:`dlvr_jax.train.fit`.

    Returns:
        An :class:`MlpResult`. When the checkpoint already holds
        ``config.epochs`` epochs, nothing is trained or written and
        ``nothing_to_train`` is True. When training diverges, ``diverged`` is
        set and the files hold the run up to the last good epoch.
    """
    if out is not None:  # matplotlib loads while the programs compile (XLA frees the GIL)
        figures.load_in_background()
    session = MlpSession.start(config, resume=resume, force=force)
    remaining = config.epochs - session.epoch
    if remaining <= 0:
        metrics = {**session.metrics([], [], None), "nothing_to_train": True}
        return MlpResult(
            config, session.model, session.state, session.history, metrics, (), None, True
        )
    session.advance(remaining, progress=progress, chunk_epochs=chunk_epochs)
    return session.result(out=out, checkpoint_path=checkpoint_path)


def _count(number: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``: the report's counts read as English."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
