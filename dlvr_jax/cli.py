"""The ``dlvr-jax`` command line: argument parsing, printing and exit codes; no workflow.

Run ``dlvr-jax --help`` or ``dlvr-jax <command> --help``. Each command parses
its arguments into a config of :mod:`dlvr_jax.jobs`, runs the job and prints
its result: a report, or with ``--json`` one JSON document on stdout (and
nothing else there). Exit status: 0 done (also "nothing left to train");
1 training diverged (the files up to the last good epoch are written); 2 a
bad argument, file or checkpoint. Every error is one line on stderr.

To keep ``--help`` and start-up fast, only the chosen command's arguments are
built, and JAX's heavy modules, the jobs and matplotlib are imported when a
command runs. The training commands use JAX's persistent compilation cache in
``$XDG_CACHE_HOME/dlvr_jax/jax`` (``~/.cache/dlvr_jax/jax``;
``DLVR_JAX_CACHE_DIR`` overrides it); ``--no-cache`` or ``DLVR_JAX_NO_CACHE=1``
turns it off.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, NoReturn

import dlvr_jax


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``prog: error: message``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(
    kind: Callable[[str], Any], test: Callable[[Any], bool], expected: str
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


_positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
_seed = _number(int, lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)")
_positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a number > 0")
_non_negative = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
_margin = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
_fraction = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")
_port = _number(int, lambda v: 0 <= v <= 65535, "a port in [0, 65535] (0: a free one)")


def _widths(text: str) -> tuple[int, ...]:
    """``8,8,8`` -> (8, 8, 8); ``none`` asks for no hidden layer (an empty text is refused)."""
    if text.strip().lower() == "none":
        return ()
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "expected comma-separated widths such as 8,8,8 (or 'none' for a model without "
            "hidden layers), got ''"
        )
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated widths such as 8,8,8, got {text!r}"
        ) from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"expected widths >= 1, got {text!r}")
    return widths


def _names(options: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        chosen = [part.strip() for part in text.split(",") if part.strip()]
        if not chosen or any(name not in options for name in chosen):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated names from {', '.join(options)}, got {text!r}"
            )
        return chosen

    return parse


def _list_of(
    kind: Callable[[str], Any], test: Callable[[Any], bool], what: str, example: str
) -> Callable[[str], list[Any]]:
    """A parser of comma-separated values such as ``1e-3,1e-2``, each passing ``test``."""

    def parse(text: str) -> list[Any]:
        try:
            values = [kind(part) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what} such as {example}, got {text!r}"
            ) from None
        if not all(test(v) for v in values):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return values

    return parse


_floats = _list_of(float, lambda v: math.isfinite(v) and v > 0, "numbers > 0", "1e-3,1e-2")
_ints = _list_of(int, lambda v: v >= 1, "integers >= 1", "1,10,100")
_point = _list_of(float, math.isfinite, "finite coordinates", "-1.2,1")


def _learning_rates(text: str) -> list[float]:
    """``1e-4:1e-1:16`` (16 log-spaced values, ends included) or ``1e-3,1e-2``."""
    if ":" not in text:
        return _floats(text)
    parts = text.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        low, high, count = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LOW:HIGH:COUNT such as 1e-4:1e-1:16, got {text!r}"
        ) from None
    if not (0 < low <= high and math.isfinite(high) and count >= 1):
        raise argparse.ArgumentTypeError(
            f"expected 0 < LOW <= HIGH and COUNT >= 1 in LOW:HIGH:COUNT, got {text!r}"
        )
    if count == 1:
        return [low]
    ratio = (high / low) ** (1 / (count - 1))
    return [low * ratio**i for i in range(count - 1)] + [high]


# ----------------------------------------------------------------------------
# The arguments of each command (built only for the command that runs).

_CSV_HELP = (
    "train on your own CSV instead of a generator: one row per example, the feature "
    "columns first and the target in the LAST column; an optional header line. "
    "Integer targets are class labels 0..k-1, other numbers regression targets "
    "(see --task)"
)


def _add(command: Any, flag: str, default: Any, kind: Any, text: str, **extra: Any) -> None:
    """One option: ``kind`` is a parser of the text, a tuple of choices, or ``bool`` (a switch)."""
    if kind is bool:
        command.add_argument(flag, action="store_true", help=text)
    elif isinstance(kind, tuple):
        command.add_argument(flag, default=default, choices=kind, help=text, **extra)
    else:
        command.add_argument(flag, default=default, type=kind, help=text, **extra)


def _data_arguments(command: argparse.ArgumentParser, first: str, task: str | None) -> None:
    from dlvr_jax import data

    names = (first, *[n for n in data.names(task) if n != first])  # type: ignore[arg-type]
    source = command.add_mutually_exclusive_group()
    _add(source, "--dataset", first, names, "the dataset generator")
    _add(source, "--data", None, str, _CSV_HELP, metavar="PATH.csv")
    if task is None:
        _add(command, "--task", None, ("classification", "regression"), _TASK_HELP)


def _outputs(command: argparse.ArgumentParser, cache: bool = False) -> None:
    _add(command, "--out", ".", str, "folder for the outputs", metavar="DIR")
    _add(command, "--json", False, bool, "print the result as one JSON document on stdout")
    if cache:
        _add(command, "--no-cache", False, bool, "do not use JAX's persistent compilation cache")


def _model_arguments(command: argparse.ArgumentParser) -> tuple[str, ...]:
    """The options that mlp, compare-activations and sweep share; returns the activations."""
    from dlvr_jax import models, optim

    _add(command, "--n", 1000, _positive_int, "number of points")
    _add(command, "--noise", 0.0, _non_negative, "the generator's noise (see dlvr_jax.data)")
    _add(command, "--test-fraction", 0.2, _fraction, "share of the points held out")
    _add(command, "--hidden", (8,) * 5, _widths, "hidden widths ('none': linear)", metavar="W,...")
    _add(command, "--optimizer", "adam", optim.names(), "the Optax optimizer")
    return tuple(sorted(models.activations))


def _mlp_arguments(command: argparse.ArgumentParser) -> tuple[str, ...]:
    _data_arguments(command, "circle", None)
    activations = _model_arguments(command)
    _add(command, "--seed", 0, _seed, "PRNG seed (data, split, init)")
    _add(command, "--learning-rate", 1e-3, _positive_float, "the optimizer's learning rate")
    _add(command, "--clip-norm", None, _positive_float, "clip gradients to this global norm")
    _add(command, "--epochs", 2000, _positive_int, "passes over the data")
    _add(command, "--batch-size", None, _positive_int, "examples per step (default: all)")
    _add(command, "--l1", 0.0, _non_negative, "L1 penalty on weights")
    _add(command, "--l2", 0.0, _non_negative, "L2 penalty on weights")
    _outputs(command, cache=True)
    _add(command, "--no-progress", False, bool, "no progress bar (shown only on a terminal)")
    return activations


def _mlp_only(command: argparse.ArgumentParser) -> None:
    activations = _mlp_arguments(command)
    _add(command, "--activation", "relu", activations, "hidden activation")
    _add(command, "--checkpoint", None, str, "save state, history and setup here", metavar="PATH")
    _add(command, "--resume", None, str, _RESUME_HELP, metavar="PATH")
    _add(command, "--force", False, bool, "resume even from a checkpoint of another setup")
    command.set_defaults(run=_mlp)


def _compare_arguments(command: argparse.ArgumentParser) -> None:
    activations = _mlp_arguments(command)
    _add(
        command,
        "--activations",
        ["relu", "sigmoid", "tanh"],
        _names(activations),
        "activations to compare",
        metavar="A,B,...",
    )
    command.set_defaults(run=_compare)


def _perceptron_arguments(command: argparse.ArgumentParser) -> None:
    _data_arguments(command, "linear", "classification")
    _add(command, "--n", 200, _positive_int, "number of points")
    _add(command, "--seed", 0, _seed, "PRNG seed for the data")
    _add(command, "--noise", 0.0, _non_negative, "std of jitter added after labelling")
    _add(command, "--margin", 0.0, _margin, "least distance to the true line (linear only)")
    _add(command, "--learning-rate", 0.1, _positive_float, "step of w += lr * (y - y_hat) * x")
    _add(command, "--max-epochs", 1000, _positive_int, "most passes over the data")
    _add(command, "--pocket", False, bool, "also run the pocket algorithm and plot its weights")
    _outputs(command)
    command.set_defaults(run=_perceptron)


def _sweep_arguments(command: argparse.ArgumentParser) -> None:
    _add(
        command,
        "--learning-rates",
        _learning_rates("1e-4:1e-1:16"),
        _learning_rates,
        "log-spaced range (ends included) or a list",
        metavar="LOW:HIGH:COUNT|A,B,...",
    )
    _add(
        command,
        "--batch-sizes",
        [32, 128, 1000],
        _ints,
        "batch sizes (a program each)",
        metavar="B,B,...",
    )
    _add(command, "--seeds", 8, _positive_int, "replicates per configuration (seeds 0..S-1)")
    _add(command, "--epochs", 100, _positive_int, "passes over the data")
    _data_arguments(command, "circle", None)
    activations = _model_arguments(command)
    _add(command, "--data-seed", 0, _seed, "PRNG seed of data and split")
    _add(command, "--activation", "relu", activations, "activation")
    _add(command, "--l2", 0.0, _non_negative, "L2 penalty on weights")
    _outputs(command, cache=True)
    command.set_defaults(run=_sweep)


def _optimize_arguments(command: argparse.ArgumentParser) -> None:
    from dlvr_jax import descent, optim

    methods = ("gd", *optim.names())
    _add(command, "--function", "rosenbrock", (*descent.OBJECTIVES, "least_squares"), "objective")
    _add(
        command,
        "--optimizers",
        ["gd", "momentum", "rmsprop", "adam"],
        _names(methods),
        f"methods to compare, from {', '.join(methods)}",
        metavar="A,B,...",
    )
    _add(command, "--learning-rate", None, _floats, _RATES_HELP, metavar="LR[,LR...]")
    _add(command, "--steps", 2000, _positive_int, "most updates per run (toy functions)")
    _add(command, "--tol", 1e-6, _non_negative, "stop below this gradient norm or step (toys)")
    _add(command, "--start", None, _point, _START_HELP, metavar="X[,Y]")
    _add(
        command,
        "--batch-sizes",
        [1, 10, 100],
        _ints,
        "mini-batch sizes (least_squares; <= --n)",
        metavar="B,B,...",
    )
    _add(command, "--epochs", 30, _positive_int, "passes over the data (least_squares)")
    _add(command, "--n", 100, _positive_int, "number of samples (least_squares)")
    _add(command, "--noise", 0.5, _non_negative, "noise std of the samples (least_squares)")
    _add(command, "--seed", 0, _seed, "PRNG seed (least_squares)")
    _outputs(command)
    command.set_defaults(run=_optimize)


_TASK_HELP = "with --data: the task, instead of inferring it from the target column"
_RESUME_HELP = (
    "continue from a checkpoint up to --epochs epochs in total; it must have been trained "
    "with the same data, model, optimizer, loss and seed (or pass --force)"
)
_RATES_HELP = (
    "toy functions: one step size for all or one per optimizer (default 1e-3); "
    "least_squares: the step sizes of the grid (default 0.01,0.05,0.2)"
)
_START_HELP = (
    "the starting point (default: the function's own); write --start=-1.2,1 when the first "
    "coordinate is negative"
)


def _playground_arguments(command: argparse.ArgumentParser) -> None:
    _add(command, "--host", "127.0.0.1", str, "the interface to bind (127.0.0.1: this machine)")
    _add(command, "--port", 0, _port, "the port (0: a free one)")
    _add(command, "--no-browser", False, bool, "print the URL but do not open a browser")
    _add(command, "--max-sessions", 8, _positive_int, "the most browser tabs training at once")
    _add(command, "--json", False, bool, "on exit, print the outcome as one JSON document")
    _add(command, "--no-cache", False, bool, "do not use JAX's persistent compilation cache")
    command.set_defaults(run=_playground)


_COMMANDS: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    "perceptron": (
        "train Rosenblatt's perceptron on a 2-D dataset and plot its line",
        "Train the perceptron learning algorithm (the chapter's first program) on a dataset "
        "(or --data PATH.csv with labels 0/1), print the learned weights, epochs, updates and "
        "accuracy, and write perceptron.png (points and decision line, for 2 features) and "
        "metrics.json. When the data are not separable (e.g. --dataset xor) it says so and "
        "reports the accuracy of the pocket algorithm (the most accurate weights the PLA visited).",
        _perceptron_arguments,
    ),
    "mlp": (
        "train the chapter's MLP (circle data, 5x8 ReLU, Adam) and draw its figures",
        "Train a multi-layer perceptron with Optax, all epochs compiled, and write "
        "decision_boundary.png, loss_curve.png, gradient_heatmap.png, neuron_maps.png and "
        "metrics.json. The defaults are the chapter's program: circle data, 1000 points, five "
        "hidden layers of 8 ReLU units, Adam at 1e-3, 2000 full-batch epochs. Regression data "
        "(plane, multi_gaussian, or a CSV of float targets) train one output with MSE; class "
        "labels train one output per class with cross-entropy. Exit status 1 when training "
        "diverges (the files up to the last good epoch are still written).",
        _mlp_only,
    ),
    "compare-activations": (
        "train one MLP per activation on the same data and key (Exercise 1.1)",
        "Train the same MLP with each activation (same data, same key) and write their loss "
        "curves and decision boundaries side by side (activation_comparison.png) and "
        "metrics.json.",
        _compare_arguments,
    ),
    "optimize": (
        "gradient descent and Optax optimizers on a toy function; paths and convergence",
        "Exercise 1.3. On a toy function (--function rosenbrock, beale, ...) run each of "
        "--optimizers from --start and write optimization_paths.png (contour map), "
        "optimization_surface.png (3-D surface; two-variable functions), convergence.png "
        "(f - f* against the step) and metrics.json. With --function least_squares, fit the "
        "coefficients of x^2 + 4x + 4 from --n noisy samples by mini-batch gradient descent "
        "over every --learning-rate x --batch-sizes pair and write convergence.png (one panel "
        "per batch size) and metrics.json. 'gd' is x <- x - lr grad f(x); the other names are "
        "Optax optimizers (on a deterministic function 'sgd' is the same as 'gd').",
        _optimize_arguments,
    ),
    "playground": (
        "the TensorFlow Playground in the browser, trained live by JAX",
        "Start a local web server (127.0.0.1, a random token in the URL) whose page trains "
        "MLPs live: datasets, features, layers, activations, optimizers, regularization, "
        "your own CSV, export and sweeps. Prints the URL with its token and opens it in the "
        "default browser unless --no-browser. Ctrl-C stops it. Needs the playground extra: "
        'pip install "dlvr-jax[playground]".',
        _playground_arguments,
    ),
    "sweep": (
        "train many MLPs in one vmap per shape: learning rate x batch size x seed",
        "Train one MLP per (learning rate, seed) in one compiled vmap for each batch size "
        "(Exercise 1.1's sensitivity study) and write sweep_heatmap.png (final test accuracy "
        "and loss: mean and spread over seeds), sweep.csv and sweep.json. A batch size above "
        "the training set size means full batch.",
        _sweep_arguments,
    ),
}


def _build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s arguments are built (the others stay empty)."""
    parser = _Parser(
        prog="dlvr-jax", description="The introductory deep-learning chapter of DLVR, in JAX."
    )
    parser.add_argument("--version", action="version", version=f"dlvr-jax {dlvr_jax.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, description, arguments) in _COMMANDS.items():
        sub = commands.add_parser(
            name,
            help=summary,
            description=description,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        if name == command:
            arguments(sub)
    commands.add_parser(
        "bench",
        help="run the benchmark suite against PyTorch and scikit-learn (from a checkout)",
        description="Run benchmarks/ (python -m benchmarks) from the repository checkout.",
        add_help=False,
    )
    return parser


# ----------------------------------------------------------------------------
# Running a command: config in, outcome out.


class _Outcome(NamedTuple):
    document: dict[str, Any]  # printed with --json
    report: str  # printed otherwise
    error: str | None = None  # one line on stderr
    status: int = 0


def _config(kind: Any, args: argparse.Namespace, **renamed: Any) -> Any:
    """``kind(...)``, a jobs config, from the options named as its fields (lists as tuples)."""
    given = {**vars(args), "data_path": getattr(args, "data", None), **renamed}
    if given.get("task") is not None and given["data_path"] is None:
        raise ValueError("--task applies only with --data PATH.csv")
    names = [field.name for field in dataclasses.fields(kind)]
    values = {n: given[n] for n in names if n in given}
    return kind(**{n: tuple(v) if isinstance(v, list) else v for n, v in values.items()})


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn after each compiled chunk of epochs."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int, history: Any) -> None:
        width = 30
        filled = round(width * done / total)
        import numpy as np  # loaded by JAX already; reading on the host compiles nothing

        loss = float(np.asarray(history.train_loss)[-1])
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} epochs "
            f"loss {loss:.4f} {elapsed:.1f}s"
        )
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _progress(args: argparse.Namespace, label: str, epochs: int) -> dict[str, Any]:
    """``fit`` keywords for a progress bar, when stderr is a terminal."""
    if args.no_progress or not sys.stderr.isatty():
        return {}
    return {"progress": _ProgressBar(label), "chunk_epochs": max(1, epochs // 50)}


def _loss(value: float | None) -> str:
    """A loss for a human: 4 decimals, or 4 significant digits when it is huge (near divergence)."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _label_note(metrics: dict[str, Any]) -> None:
    """Says on stderr that the class labels were mapped to 0..k-1 (one line)."""
    if metrics.get("label_note"):
        print(f"note: {metrics['label_note']}", file=sys.stderr)


def _diverged_line(what: str) -> str:
    return f"training diverged {what}; lower --learning-rate or set --clip-norm"


def _mlp(args: argparse.Namespace) -> _Outcome:
    from dlvr_jax import jobs

    jobs.compilation_cache(not args.no_cache)
    result = jobs.mlp(
        _config(jobs.MlpConfig, args),
        out=args.out,
        checkpoint_path=args.checkpoint,
        resume=args.resume,
        force=args.force,
        **_progress(args, "training", args.epochs),
    )
    m = result.metrics
    _label_note(m)
    if result.nothing_to_train:
        line = (
            f"nothing left to train: {args.resume} holds {m['epochs']} epochs and --epochs is "
            f"{args.epochs}; pass a larger --epochs to train on (nothing was written)"
        )
        return _Outcome(m, line)
    lines = [
        f"dataset: {m['dataset']} (n={m['n']}, seed={m['seed']}"
        + (f", noise={m['noise']})" if args.data is None else f", {m['task']})"),
        f"model: MLP hidden={m['hidden']} activation={m['activation']} "
        f"({m['parameters']} parameters), {m['optimizer']} at {m['learning_rate']:g}",
        f"trained {m['epochs']} epochs ({m['steps']} steps) in {m['train_seconds']:.2f}s",
    ]
    if m["train_loss"] is not None:
        lines.append(
            f"final loss: train {_loss(m['train_loss'])}"
            + ("" if m["test_loss"] is None else f", test {_loss(m['test_loss'])}")
        )
    if m["train_accuracy"] is not None:
        lines.append(f"train accuracy: {_percent(m['train_accuracy'])}")
        lines.append(f"test accuracy: {_percent(m['test_accuracy'])}")
    if m["checkpoint"]:
        lines.append(f"checkpoint: {m['checkpoint']}")
    lines += [f"note: {note}" for note in m["notes"]]
    error = None
    if result.diverged is not None:
        epoch, cause = result.diverged
        error = _diverged_line(f"at epoch {epoch} ({cause})")
        lines.append(
            f"training diverged at epoch {epoch} ({cause}): the files hold the run up to "
            f"epoch {epoch - 1}, the last good one"
        )
    lines.append("wrote " + ", ".join(m["files"]))
    return _Outcome(m, "\n".join(lines), error, 0 if error is None else 1)


def _compare(args: argparse.Namespace) -> _Outcome:
    from dlvr_jax import jobs

    jobs.compilation_cache(not args.no_cache)
    config = _config(jobs.CompareConfig, args)

    def progress(name: str) -> Any:
        return _progress(args, f"{name:>10}", args.epochs).get("progress")

    result = jobs.compare_activations(config, out=args.out, progress=progress)
    m = result.metrics
    _label_note(m)
    lines = [f"dataset: {m['dataset']} (n={m['n']}, seed={m['seed']}), {m['epochs']} epochs each"]
    diverged = []
    for name, run in m["results"].items():
        loss = "n/a" if run["train_loss"] is None else _loss(run["train_loss"])
        lines.append(
            f"{name:>12}: train loss {loss}, test accuracy {_percent(run['test_accuracy'])}"
        )
        if run["diverged"] is not None:
            diverged.append(
                f"{name} at epoch {run['diverged']['epoch']} ({run['diverged']['cause']})"
            )
    lines += [f"note: {note}" for note in m["notes"]]
    lines.append("wrote " + ", ".join(m["files"]))
    error = _diverged_line("for " + ", ".join(diverged)) if diverged else None
    return _Outcome(m, "\n".join(lines), error, 1 if diverged else 0)


def _perceptron(args: argparse.Namespace) -> _Outcome:
    from dlvr_jax import jobs

    config = _config(jobs.PerceptronConfig, args)
    m = jobs.perceptron(config, out=args.out).metrics
    lines = [
        f"dataset: {m['dataset']} (n={m['n']}, seed={m['seed']}, noise={m['noise']})",
        f"learned weights: w = [{', '.join(f'{v:.6g}' for v in m['weights'])}], "
        f"b = {m['bias']:.6g}",
    ]
    if m["converged"]:
        lines.append(f"converged after {m['epochs']} epochs ({m['updates']} updates)")
    else:
        lines.append(
            f"did NOT converge within {m['max_epochs']} epochs ({m['updates']} updates): the "
            "data are not linearly separable, or need more epochs"
        )
    lines.append(f"training accuracy: {100 * m['accuracy']:.1f}%")
    if m["novikoff_bound"] is not None:
        lines.append(
            f"Novikoff bound for w* = (1, 1), b* = 0: {m['novikoff_bound']:.6g} updates "
            f"(used {m['updates']})"
        )
    if m["pocket"] is not None:
        kept = m["pocket"]
        lines.append(
            f"pocket accuracy: {100 * kept['accuracy']:.1f}% with w = "
            f"[{', '.join(f'{v:.6g}' for v in kept['weights'])}], b = {kept['bias']:.6g}"
        )
    lines += [f"note: {note}" for note in m["notes"]]
    lines.append("wrote " + ", ".join(m["files"]))
    return _Outcome(m, "\n".join(lines))


def _sweep(args: argparse.Namespace) -> _Outcome:
    from dlvr_jax import jobs

    jobs.compilation_cache(not args.no_cache)
    config = _config(jobs.SweepConfig, args)

    def progress(line: str) -> None:
        print(line, file=sys.stderr)

    m = jobs.sweep(config, out=args.out, progress=None if args.json else progress).metrics
    _label_note(m)
    lines = [
        f"{m['models']} models ({len(m['learning_rates'])} learning rates x batch sizes "
        f"{m['batch_sizes']} x {m['seeds']} seeds), {m['epochs']} epochs each, in "
        f"{m['seconds']:.1f} s ({m['run_seconds']:.1f} s training, "
        f"{m['compile_seconds']:.1f} s compiling)",
        f"diverged: {m['diverged']}",
    ]
    best = m["best"]
    if best is not None:
        lines.append(
            f"best mean test accuracy: {100 * best['test_accuracy_mean']:.1f}% "
            f"(± {100 * best['test_accuracy_std']:.1f}) at learning rate "
            f"{best['learning_rate']:.3g}, batch size {best['batch_size']}"
        )
    lines.append("wrote " + ", ".join(m["files"]))
    return _Outcome(m, "\n".join(lines))


def _playground(args: argparse.Namespace) -> _Outcome:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ValueError(
            'the playground needs Starlette and uvicorn: pip install "dlvr-jax[playground]"'
        ) from None
    from dlvr_jax import jobs, playground

    jobs.compilation_cache(not args.no_cache)  # a second start loads its programs from disk

    def announce(url: str) -> None:
        print(f"dlvr-jax playground: open {url}  (Ctrl-C stops it)", flush=True)

    playground.serve(
        host=args.host,
        port=args.port,
        open_browser=not args.no_browser,
        max_sessions=args.max_sessions,
        announce=announce,
    )
    return _Outcome({"command": "playground", "stopped": True}, "dlvr-jax playground: stopped")


def _optimize(args: argparse.Namespace) -> _Outcome:
    from dlvr_jax import jobs

    config = _config(jobs.OptimizeConfig, args, learning_rates=args.learning_rate)
    m = jobs.optimize(config, out=args.out).metrics
    if m["function"] == "least_squares":
        fit = ", ".join(f"{v:.4f}" for v in m["least_squares_coefficients"])
        lines = [
            f"least squares: x^2 + 4x + 4 from {m['n']} samples (noise {m['noise']:g}); "
            f"exact fit [{fit}], f* = {m['f_star']:.6g}"
        ]
        for run in m["results"]:
            status = (
                "diverged"
                if run["diverged"]
                else f"f - f* = {run['final_value'] - m['f_star']:.3g}"
            )
            lines.append(
                f"  lr {run['learning_rate']:<8g} batch {run['batch_size']:<5d} "
                f"{run['steps']:>6d} steps  {status}  w = "
                f"[{', '.join(f'{v:.4f}' for v in run['final_x'])}]"
            )
    else:
        lines = [f"{m['function']} from {m['start']}, minima {m['minima']}"]
        for name, run in m["results"].items():
            status = (
                "converged" if run["converged"] else "diverged" if run["diverged"] else "max steps"
            )
            lines.append(
                f"  {name:>9} (lr {m['learning_rates'][name]:g}): {run['steps']:>6d} steps, "
                f"{status}, f = {run['final_value']:.4g} at "
                f"[{', '.join(f'{v:.5g}' for v in run['final_x'])}]"
            )
    lines.append("wrote " + ", ".join(m["files"]))
    return _Outcome(m, "\n".join(lines))


# ----------------------------------------------------------------------------
# Errors: one line each.

_FLAGS = {  # the fields of a checkpoint's record (ConfigMismatch.field) and of the configs
    "dataset": "--dataset",
    "dataset.name": "--dataset",
    "dataset.n": "--n",
    "dataset.noise": "--noise",
    "dataset.test_fraction": "--test-fraction",
    "dataset.task": "--task",
    "model.hidden": "--hidden",
    "model.activation": "--activation",
    "optimizer.name": "--optimizer",
    "optimizer.learning_rate": "--learning-rate",
    "optimizer.clip_norm": "--clip-norm",
    "seed": "--seed",
    "batch_size": "--batch-size",
    "l1": "--l1",
    "l2": "--l2",
    "n": "--n",
    "test_fraction": "--test-fraction",
    "learning_rate": "--learning-rate",
    "clip_norm": "--clip-norm",
    "epochs": "--epochs",
}


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict):
        return str(value.get("name") or value.get("path"))
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _mismatch_line(error: Any) -> str:
    field, saved, given = error.field, error.saved, error.given
    if field == "dataset" and isinstance(saved, dict):
        saved_flag = "--data" if "sha256" in saved else "--dataset"
        given_flag = "--data" if "sha256" in given else "--dataset"
        what = f"{saved_flag} {_shown(saved)}, not {given_flag} {_shown(given)}"
    elif field == "dataset.sha256":
        what = f"--data of sha256 {saved[:12]}…, not this file's {given[:12]}…"
    elif field in _FLAGS:
        what = f"{_FLAGS[field]} {_shown(saved)}, not {_shown(given)}"
    else:
        what = f"{field} {_shown(saved)}, not {_shown(given)}"
    return f"checkpoint was trained with {what}; pass --force to resume anyway"


def _flag(field: str | None, args: argparse.Namespace) -> str | None:
    """The flag of a config field (``learning_rate`` -> ``--learning-rate``), if it has one."""
    if field is None:
        return None
    if field == "data_path":
        return "--data"
    if field in _FLAGS:
        return _FLAGS[field]
    return "--" + field.replace("_", "-") if field in vars(args) else None


def _one_line(error: BaseException, args: argparse.Namespace) -> str:
    """The error as one line, naming the flag of the field it carries (``error.field``)."""
    from dlvr_jax import _validate as check  # on the error path only

    message = " ".join(str(error).split()) or type(error).__name__
    if (
        isinstance(error, FileNotFoundError)
        and error.filename
        and str(error.filename) not in message
    ):
        message = f"{error.filename}: {message}"
    field = check.field_of(error)
    flag = _flag(field, args)
    if (
        field
        and flag
        and message.startswith(field)
        and message[len(field) : len(field) + 1] in " ["
    ):
        message = flag + message[len(field) :]
    return message


def _bench(arguments: list[str]) -> int:
    """``dlvr-jax bench ARGS`` = ``python -m benchmarks ARGS``, from a checkout."""
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        suite = importlib.import_module("benchmarks.__main__")
    except ImportError:
        print(
            "dlvr-jax bench: error: the benchmarks/ folder of the dlvr_jax repository was "
            "not found; run this command from the repository checkout",
            file=sys.stderr,
        )
        return 2
    return int(suite.main(arguments))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dlvr-jax`` and ``python -m dlvr_jax``; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        return _bench(arguments[1:])
    command = next((a for a in arguments if not a.startswith("-")), None)
    args = _build_parser(command).parse_args(arguments)
    prefix = f"dlvr-jax {args.command}: error:"
    try:
        outcome = args.run(args)
    except KeyboardInterrupt:
        print(f"{prefix} interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line, never a traceback (DLVR_JAX_DEBUG=1 shows it)
        if os.environ.get("DLVR_JAX_DEBUG", "") not in ("", "0"):
            raise
        jobs = sys.modules.get("dlvr_jax.jobs")  # not loaded: the error cannot be a mismatch
        if jobs is not None and isinstance(error, jobs.ConfigMismatch):
            print(f"{prefix} {_mismatch_line(error)}", file=sys.stderr)
            return 2
        expected = isinstance(error, (ValueError, TypeError, OSError))
        line = _one_line(error, args)
        detail = line if expected else f"{type(error).__name__}: {line}"
        print(f"{prefix} {detail}", file=sys.stderr)
        return 2 if expected else 1
    print(json.dumps(outcome.document, indent=2) if args.json else outcome.report)
    if outcome.error is not None:
        print(f"{prefix} {outcome.error}", file=sys.stderr)
    return outcome.status
