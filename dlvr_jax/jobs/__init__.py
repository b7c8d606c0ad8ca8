"""Jobs: one workflow per command, from a typed, frozen configuration to a typed result.

The contract::

    jobs.mlp(MlpConfig(...), out=DIR, resume=PATH, checkpoint=PATH)   -> MlpResult
    jobs.compare_activations(CompareConfig(...), out=DIR)              -> CompareResult
    jobs.perceptron(PerceptronConfig(...), out=DIR)                    -> PerceptronResult
    jobs.sweep(SweepConfig(...), out=DIR)                              -> SweepResult
    jobs.optimize(OptimizeConfig(...), out=DIR)                        -> OptimizeResult
    jobs.prepare_problem(ProblemConfig(...))                           -> Problem

    session = MlpSession.start(MlpConfig(...))    # data, model, optimizer; resume=PATH
    session.advance(100)                          # train 100 more epochs (chunks resume
    session.advance(100)                          #   bit for bit: same as advance(200))
    session.result(out=DIR)                       # -> MlpResult; figures with out=

Each job holds the whole workflow of a command: the problem (data, split,
classes, model and loss: :func:`prepare_problem`, the one preparation that
the Playground and its exported scripts share), resuming, training, the
figures, the checkpoint and ``metrics.json`` (written once, by
:func:`write_json`, atomically). The command line (:mod:`dlvr_jax.cli`) only
parses arguments into a config, calls the job and prints ``result.metrics``;
a Python program or a server can drive the same jobs, and
:class:`MlpSession` runs an MLP job in chunks that resume bit for bit.

A job does not raise when training diverges: the result's ``diverged``
names the epoch and what became non-finite, and the files hold the run up
to the last good epoch. Bad configurations raise ``ValueError`` (or
``TypeError``) at the door; a refused resume raises :class:`ConfigMismatch`.

The package, one concept per module: ``problem`` (the preparation),
``mlp_job``, ``compare_job``, ``perceptron_job``, ``sweep_job``,
``optimize_job`` (one per command), and the parts they share: ``resume``
(what a checkpoint records), ``divergence``, ``figures`` (the MLP's),
``results`` (the JSON writer), ``cache`` (JAX's compilation cache) and
``commands`` (each command's options, as the command line offers them). Each
module's ``__all__`` is what this package re-exports: its other names without
an underscore are shared between the package's modules only, not an API.

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

from dlvr_jax.jobs.cache import compilation_cache
from dlvr_jax.jobs.commands import COMMANDS, READERS, Command, Option
from dlvr_jax.jobs.compare_job import CompareConfig, CompareResult, compare_activations
from dlvr_jax.jobs.divergence import Divergence
from dlvr_jax.jobs.mlp_job import MLP_FILES, MlpConfig, MlpResult, MlpSession, mlp
from dlvr_jax.jobs.optimize_job import OptimizeConfig, OptimizeResult, optimize
from dlvr_jax.jobs.perceptron_job import PerceptronConfig, PerceptronResult, perceptron
from dlvr_jax.jobs.problem import (
    TASKS,
    Problem,
    ProblemConfig,
    prepare_problem,
    read_csv,
    signed_mse,
)
from dlvr_jax.jobs.results import write_json
from dlvr_jax.jobs.resume import ConfigMismatch
from dlvr_jax.jobs.sweep_job import SWEEP_COLUMNS, SweepConfig, SweepResult, sweep

__all__ = [
    "COMMANDS",
    "MLP_FILES",
    "READERS",
    "SWEEP_COLUMNS",
    "TASKS",
    "Command",
    "CompareConfig",
    "CompareResult",
    "ConfigMismatch",
    "Divergence",
    "MlpConfig",
    "MlpResult",
    "MlpSession",
    "OptimizeConfig",
    "OptimizeResult",
    "Option",
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
