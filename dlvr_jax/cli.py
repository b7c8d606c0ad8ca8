"""The ``dlvr-jax`` command line: argument parsing, printing and files; no logic of its own.

Run ``dlvr-jax --help`` or ``dlvr-jax perceptron --help``. A bad argument
exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import jax
import jax.numpy as jnp

import dlvr_jax
from dlvr_jax import _io, data, perceptron


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


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dlvr-jax",
        description="The introductory deep-learning chapter of DLVR, in JAX.",
    )
    parser.add_argument("--version", action="version", version=f"dlvr-jax {dlvr_jax.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    pla = commands.add_parser(
        "perceptron",
        help="train Rosenblatt's perceptron on a 2-D dataset and plot its line",
        description=(
            "Train the perceptron learning algorithm (the chapter's first program) on a "
            "2-D dataset, print the learned weights, epochs, updates and accuracy, and "
            "write perceptron.png (points and decision line) and metrics.json. When the "
            "data are not separable (e.g. --dataset xor) it says so and reports the "
            "accuracy of Gallant's pocket algorithm."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    pla.add_argument(
        "--dataset",
        default="linear",
        choices=data.names("classification"),
        help="the dataset generator",
    )
    pla.add_argument("--n", type=_positive_int, default=200, help="number of points")
    pla.add_argument("--seed", type=_seed, default=0, help="PRNG seed for the data")
    pla.add_argument(
        "--noise",
        type=_non_negative,
        default=0.0,
        help="std of Gaussian jitter added to the points after labelling",
    )
    pla.add_argument(
        "--margin",
        type=_margin,
        default=0.0,
        help="minimum distance of points to the true line (linear dataset only)",
    )
    pla.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=0.1,
        help="step size of the update w += lr * (y - y_hat) * x",
    )
    pla.add_argument(
        "--max-epochs", type=_positive_int, default=1000, help="most passes over the data"
    )
    pla.add_argument(
        "--pocket", action="store_true", help="also run the pocket algorithm and plot its weights"
    )
    pla.add_argument(
        "--out", default=".", metavar="DIR", help="folder for perceptron.png and metrics.json"
    )
    pla.add_argument(
        "--json", action="store_true", help="print the metrics as JSON instead of text"
    )
    pla.set_defaults(run=_perceptron)
    return parser


def _params_dict(params: perceptron.Params) -> dict[str, Any]:
    return {"weights": [float(v) for v in params.w], "bias": float(params.b)}


def _perceptron(args: argparse.Namespace) -> dict[str, Any]:
    from dlvr_jax import viz  # matplotlib is loaded only when a figure is made

    options: dict[str, Any] = {"noise": args.noise}
    if args.margin:
        if args.dataset != "linear":
            raise ValueError("--margin applies only to --dataset linear")
        options["margin"] = args.margin
    train = data.make(args.dataset, jax.random.key(args.seed), args.n, **options)
    x, y = train.x, data.signed(train.y)
    result = perceptron.fit(x, y, learning_rate=args.learning_rate, max_epochs=args.max_epochs)
    converged = bool(result.converged)
    metrics: dict[str, Any] = {
        "command": "perceptron",
        "version": dlvr_jax.__version__,
        "dataset": args.dataset,
        "n": args.n,
        "seed": args.seed,
        "noise": args.noise,
        "margin": args.margin,
        "learning_rate": args.learning_rate,
        "max_epochs": args.max_epochs,
        **_params_dict(result.params),
        "epochs": int(result.epochs),
        "updates": int(result.updates),
        "converged": converged,
        "accuracy": float(perceptron.accuracy(result.params, x, y)),
        "mistakes_per_epoch": [int(m) for m in result.mistakes_per_epoch[: int(result.epochs)]],
        "novikoff_bound": None,
        "pocket": None,
    }
    if args.dataset == "linear" and args.noise == 0:
        bound = float(perceptron.mistake_bound(x, y, jnp.array([1.0, 1.0])))
        metrics["novikoff_bound"] = bound if math.isfinite(bound) else None
    shown, label = result.params, "PLA"
    if args.pocket or not converged:
        kept = perceptron.pocket(x, y, learning_rate=args.learning_rate, max_epochs=args.max_epochs)
        metrics["pocket"] = {"accuracy": float(kept.accuracy), **_params_dict(kept.params)}
        shown, label = kept.params, "pocket"

    figure = viz.plot_decision_boundary(
        lambda grid: perceptron.predict(shown, grid),
        train,
        line=shown,
        title=f"Perceptron Learning Algorithm ({args.dataset}, {label})",
    )
    figure.set_size_inches(8, 8)
    os.makedirs(args.out, exist_ok=True)
    figure_path = os.path.join(args.out, "perceptron.png")
    metrics_path = os.path.join(args.out, "metrics.json")
    viz.save(figure, figure_path)
    metrics["files"] = [figure_path, metrics_path]
    with _io.atomic_open(metrics_path, "w") as stream:
        json.dump(metrics, stream, indent=2)  # type: ignore[arg-type]
        stream.write("\n")  # type: ignore[call-overload]
    return metrics


def _report(metrics: dict[str, Any]) -> str:
    lines = [
        f"dataset: {metrics['dataset']} (n={metrics['n']}, seed={metrics['seed']}, "
        f"noise={metrics['noise']})",
        f"learned weights: w = [{', '.join(f'{v:.6g}' for v in metrics['weights'])}], "
        f"b = {metrics['bias']:.6g}",
    ]
    if metrics["converged"]:
        lines.append(f"converged after {metrics['epochs']} epochs ({metrics['updates']} updates)")
    else:
        lines.append(
            f"did NOT converge within {metrics['max_epochs']} epochs ({metrics['updates']} "
            "updates): the data are not linearly separable, or need more epochs"
        )
    lines.append(f"training accuracy: {100 * metrics['accuracy']:.1f}%")
    if metrics["novikoff_bound"] is not None:
        lines.append(
            f"Novikoff bound for w* = (1, 1), b* = 0: {metrics['novikoff_bound']:.6g} updates "
            f"(used {metrics['updates']})"
        )
    if metrics["pocket"] is not None:
        pocket = metrics["pocket"]
        lines.append(
            f"pocket accuracy: {100 * pocket['accuracy']:.1f}% with w = "
            f"[{', '.join(f'{v:.6g}' for v in pocket['weights'])}], b = {pocket['bias']:.6g}"
        )
    lines.append("wrote " + ", ".join(metrics["files"]))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dlvr-jax`` and ``python -m dlvr_jax``; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        metrics = args.run(args)
    except ValueError as error:
        print(f"dlvr-jax {args.command}: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2) if args.json else _report(metrics))
    return 0
