"""The jobs as commands: each config field a command line offers, how its text reads, its help.

The contract::

    COMMANDS[name] -> Command(config, description, options)   # "mlp", "sweep", ...
    Option(field, help, kind, ...)                             # one flag of a config field

A command's flag is its config field's (``learning_rate`` -> ``--learning-rate``,
``data_path`` -> ``--data``); its default is the field's default unless the
option says otherwise, so each default is declared once, in the config. The
``kind`` says how the text reads (``int``, ``float``, ``ints``, ``floats``,
``words``, ``point``, ``widths``, ``rates``, ``text``, ``choice``,
``switch``); the config checks the value (one check per rule). No argparse
here: :mod:`dlvr_jax.cli` builds its parser from these declarations.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from dlvr_jax import data, descent, models, optim
from dlvr_jax.jobs.compare_job import CompareConfig
from dlvr_jax.jobs.mlp_job import MlpConfig
from dlvr_jax.jobs.optimize_job import DESCENT_METHODS, OptimizeConfig
from dlvr_jax.jobs.perceptron_job import PerceptronConfig
from dlvr_jax.jobs.sweep_job import SweepConfig

__all__ = ["COMMANDS", "READERS", "Command", "Option"]

FIELD_DEFAULT: Any = object()
"""An option's default when it is its config field's."""


class Option(NamedTuple):
    """One flag of a command: a config field, how its text reads, and its help.

    Attributes:
        field: the config field (the flag is :func:`flag` of it).
        help: the flag's help.
        kind: how the text reads (see the module's docstring).
        choices: for ``kind="choice"``, the names offered.
        metavar: the value's name in the help.
        default: the default, when it is not the field's.
        source: ``True`` for the two exclusive sources of data (``--dataset``, ``--data``).
        name: the flag's name when it is not the field's (``--data`` for ``data_path``).
    """

    field: str
    help: str
    kind: str = "float"
    choices: Callable[[], Sequence[str]] | None = None
    metavar: str | None = None
    default: Any = FIELD_DEFAULT
    source: bool = False
    name: str | None = None

    def flag(self) -> str:
        """The flag: ``--`` and the field's name with dashes (``--learning-rate``)."""
        return "--" + (self.name or self.field.replace("_", "-"))


class Command(NamedTuple):
    """A job as a command: its config, what ``--help`` says of it, and its options."""

    config: type
    description: str
    options: tuple[Option, ...]


def default(command: Command, option: Option) -> Any:
    """An option's default: its own, or its config field's."""
    if option.default is not FIELD_DEFAULT:
        return option.default
    fields = {f.name: f for f in dataclasses.fields(command.config)}
    return fields[option.field].default


def _activations() -> tuple[str, ...]:
    return tuple(sorted(models.activations))


CSV_HELP = (
    "train on your own CSV instead of a generator: one row per example, the feature "
    "columns first and the target in the LAST column; an optional header line. "
    "Integer targets are class labels 0..k-1 (other integers and names are mapped to "
    "0..k-1), other numbers regression targets (see --task)"
)


def _data(task: str | None) -> tuple[Option, ...]:
    """``--dataset`` or ``--data``, and ``--task`` for commands that train either task."""

    def names() -> Sequence[str]:
        return data.names(task)  # type: ignore[arg-type]

    options = [
        Option("dataset", "the dataset generator", "choice", names, source=True),
        Option("data_path", CSV_HELP, "text", metavar="PATH.csv", source=True, name="data"),
    ]
    if task is None:
        text = "with --data: the task, instead of inferring it from the target column"
        options.append(Option("task", text, "choice", lambda: ("classification", "regression")))
    return tuple(options)


MODEL = (
    Option("n", "number of points", "int"),
    Option("noise", "the generator's noise (see dlvr_jax.data)"),
    Option("test_fraction", "share of the points held out"),
    Option("hidden", "hidden widths ('none': no hidden layer)", "widths", metavar="W,..."),
    Option("optimizer", "the Optax optimizer", "choice", optim.names),
)
"""The options that mlp, compare-activations and sweep share."""

TRAINING = (
    Option("seed", "PRNG seed (data, split, init)", "int"),
    Option("learning_rate", "the optimizer's learning rate"),
    Option("clip_norm", "clip gradients to this global norm"),
    Option("epochs", "passes over the data", "int"),
    Option("batch_size", "examples per step (default: all)", "int"),
    Option("l1", "L1 penalty on weights"),
    Option("l2", "L2 penalty on weights"),
)
"""The training options of mlp and compare-activations."""

ACTIVATION = Option("activation", "hidden activation", "choice", _activations)

OPTIMIZE_RATES = (
    "toy functions: one step size for all or one per optimizer (default 1e-3); "
    "least_squares: the step sizes of the grid (default 0.01,0.05,0.2)"
)
START = (
    "the starting point (default: the function's own); write --start=-1.2,1 when the first "
    "coordinate is negative"
)

COMMANDS: dict[str, Command] = {
    "perceptron": Command(
        PerceptronConfig,
        "Train the perceptron learning algorithm (the chapter's first program) on a dataset "
        "(or --data PATH.csv with two classes), print the learned weights, epochs, updates and "
        "accuracy, and write perceptron.png (points and decision line, for 2 features) and "
        "metrics.json. When the data are not separable (e.g. --dataset xor) it says so and "
        "reports the accuracy of the pocket algorithm (the most accurate weights the PLA visited).",
        (
            *_data("classification"),
            Option("n", "number of points", "int"),
            Option("seed", "PRNG seed for the data", "int"),
            Option("noise", "std of jitter added after labelling"),
            Option("margin", "least distance to the true line (linear only)"),
            Option("learning_rate", "step of w += lr * (y - y_hat) * x"),
            Option("max_epochs", "most passes over the data", "int"),
            Option("pocket", "also run the pocket algorithm and plot its weights", "switch"),
        ),
    ),
    "mlp": Command(
        MlpConfig,
        "Train a multi-layer perceptron with Optax, all epochs compiled, and write "
        "decision_boundary.png, loss_curve.png, gradient_heatmap.png, neuron_maps.png and "
        "metrics.json. The defaults are the chapter's program: circle data, 1000 points, five "
        "hidden layers of 8 ReLU units, Adam at 1e-3, 2000 full-batch epochs. Regression data "
        "(plane, multi_gaussian, or a CSV of float targets) train one output with MSE; class "
        "labels train one output per class with cross-entropy. Exit status 1 when training "
        "diverges (the files up to the last good epoch are still written).",
        (*_data(None), *MODEL, *TRAINING, ACTIVATION),
    ),
    "compare-activations": Command(
        CompareConfig,
        "Train the same MLP with each activation (same data, same key) and write their loss "
        "curves and decision boundaries side by side (activation_comparison.png) and "
        "metrics.json.",
        (
            *_data(None),
            *MODEL,
            *TRAINING,
            Option("activations", "activations to compare", "words", metavar="A,B,..."),
        ),
    ),
    "optimize": Command(
        OptimizeConfig,
        "Exercise 1.3. On a toy function (--function rosenbrock, beale, ...) run each of "
        "--optimizers from --start and write optimization_paths.png (contour map), "
        "optimization_surface.png (3-D surface; two-variable functions), convergence.png "
        "(f - f* against the step) and metrics.json. With --function least_squares, fit the "
        "coefficients of x^2 + 4x + 4 from --n noisy samples by mini-batch gradient descent "
        "over every --learning-rate x --batch-sizes pair and write convergence.png (one panel "
        "per batch size) and metrics.json. 'gd' is x <- x - lr grad f(x); the other names are "
        "Optax optimizers (on a deterministic function 'sgd' is the same as 'gd').",
        (
            Option(
                "function", "objective", "choice", lambda: (*descent.OBJECTIVES, "least_squares")
            ),
            Option(
                "optimizers",
                f"methods to compare, from {', '.join(DESCENT_METHODS)}",
                "words",
                metavar="A,B,...",
            ),
            Option(
                "learning_rates",
                OPTIMIZE_RATES,
                "floats",
                metavar="LR[,LR...]",
                name="learning-rate",
            ),
            Option("steps", "most updates per run (toy functions)", "int"),
            Option("tol", "stop below this gradient norm or step (toys)"),
            Option("start", START, "point", metavar="X[,Y]"),
            Option(
                "batch_sizes", "mini-batch sizes (least_squares; <= --n)", "ints", metavar="B,B,..."
            ),
            Option("epochs", "passes over the data (least_squares)", "int"),
            Option("n", "number of samples (least_squares)", "int"),
            Option("noise", "noise std of the samples (least_squares)"),
            Option("seed", "PRNG seed (least_squares)", "int"),
        ),
    ),
    "sweep": Command(
        SweepConfig,
        "Train one MLP per (learning rate, seed) in one compiled vmap for each batch size "
        "(Exercise 1.1's sensitivity study) and write sweep_heatmap.png (final test accuracy "
        "and loss: mean and spread over seeds), sweep.csv and sweep.json. A batch size above "
        "the training set size means full batch.",
        (
            Option(
                "learning_rates",
                "log-spaced range (ends included) or a list",
                "rates",
                metavar="LOW:HIGH:COUNT|A,B,...",
                default="1e-4:1e-1:16",
            ),
            Option("batch_sizes", "batch sizes (a program each)", "ints", metavar="B,B,..."),
            Option("seeds", "replicates per configuration (seeds 0..S-1)", "int"),
            Option("epochs", "passes over the data", "int"),
            *_data(None),
            *MODEL,
            Option("data_seed", "PRNG seed of data and split", "int"),
            Option("activation", "activation", "choice", _activations),
            Option("l2", "L2 penalty on weights"),
        ),
    ),
}
"""Every job's command: its config, description and options, in ``--help``'s order."""


def _number(
    kind: Callable[[str], Any], expected: str, test: Callable[[Any], bool] = lambda _: True
) -> Callable[[str], Any]:
    """A parser of one number (``kind``); the configs check their rules (one check per rule)."""

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


_int = _number(int, "an integer")
_float = _number(float, "a number")
_port = _number(int, "a port in [0, 65535] (0: a free one)", lambda v: 0 <= v <= 65535)
_sessions = _number(int, "an integer >= 1", lambda v: v >= 1)


def _list(kind: Callable[[str], Any], what: str, example: str) -> Callable[[str], list[Any]]:
    """A parser of comma-separated values such as ``1e-3,1e-2`` (the config checks each)."""

    def parse(text: str) -> list[Any]:
        try:
            return [kind(part.strip()) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what} such as {example}, got {text!r}"
            ) from None

    return parse


_floats = _list(float, "numbers", "1e-3,1e-2")
_ints = _list(int, "integers", "1,10,100")
_point = _list(float, "coordinates", "-1.2,1")
_words = _list(str, "names", "relu,tanh")


def _widths(text: str) -> tuple[int, ...]:
    """``8,8,8`` -> (8, 8, 8); ``none`` asks for no hidden layer (an empty text is refused)."""
    if text.strip().lower() == "none":
        return ()
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "expected comma-separated widths such as 8,8,8 (or 'none' for a model without "
            "hidden layers), got ''"
        )
    return tuple(_list(int, "widths", "8,8,8")(text))


def _learning_rates(text: str) -> list[float]:
    """``1e-4:1e-1:16`` (16 log-spaced values, ends included) or ``1e-3,1e-2``."""
    if ":" not in text:
        return _floats(text)
    try:
        low, high, count = (
            kind(part) for kind, part in zip((float, float, int), text.split(":"), strict=True)
        )
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


READERS: dict[str, Callable[[str], Any]] = {
    "int": _int,
    "float": _float,
    "ints": _ints,
    "floats": _floats,
    "words": _words,
    "point": _point,
    "widths": _widths,
    "rates": _learning_rates,
    "text": str,
    "port": _port,
    "sessions": _sessions,
}
"""How the command line reads each kind of option's text (:attr:`Option.kind`, and the
playground's ``port`` and ``sessions``): a parser raising ``argparse.ArgumentTypeError``."""
