"""The ``dlvr-jax`` command line: argument parsing, printing and files; no logic of its own.

Run ``dlvr-jax --help`` or ``dlvr-jax <command> --help``. A bad argument
exits with status 2 and one line on stderr.

The commands that compile training programs (``mlp``, ``compare-activations``)
use JAX's persistent compilation cache in ``$XDG_CACHE_HOME/dlvr_jax/jax``
(``~/.cache/dlvr_jax/jax`` by default; ``DLVR_JAX_CACHE_DIR`` overrides it), so
a second run of the same command skips compilation. ``--no-cache`` or
``DLVR_JAX_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import jax
import jax.numpy as jnp
import numpy as np

import dlvr_jax
from dlvr_jax import _io, checkpoint, data, models, optim, perceptron, train


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


def _widths(text: str) -> tuple[int, ...]:
    """``8,8,8`` -> (8, 8, 8); an empty string or ``none`` gives no hidden layer."""
    if text.strip().lower() in ("", "none"):
        return ()
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
        unknown = [name for name in chosen if name not in options]
        if unknown or not chosen:
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


def _learning_rates(text: str) -> list[float]:
    """``1e-4:1e-1:16`` (16 log-spaced values, ends included) or ``1e-3,1e-2``."""
    if ":" in text:
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
    return _floats(text)


_floats = _list_of(float, lambda v: math.isfinite(v) and v > 0, "numbers > 0", "1e-3,1e-2")
_ints = _list_of(int, lambda v: v >= 1, "integers >= 1", "1,10,100")
_point = _list_of(float, math.isfinite, "finite coordinates", "-1.2,1")


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
            "accuracy of the pocket algorithm (the most accurate weights the PLA visited)."
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
    pla.set_defaults(run=_perceptron, report=_report)

    mlp = commands.add_parser(
        "mlp",
        help="train the chapter's MLP (circle data, 5x8 ReLU, Adam) and draw its figures",
        description=(
            "Train a multi-layer perceptron with Optax, all epochs compiled, and write "
            "decision_boundary.png, loss_curve.png, gradient_heatmap.png, neuron_maps.png and "
            "metrics.json. The defaults are the chapter's program: circle data, 1000 points, "
            "five hidden layers of 8 ReLU units, Adam at 1e-3, 2000 full-batch epochs. "
            "Regression datasets (plane, multi_gaussian) train one output with MSE."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _mlp_arguments(mlp)
    mlp.add_argument(
        "--activation", default="relu", choices=sorted(models.activations), help="hidden activation"
    )
    mlp.add_argument(
        "--checkpoint", metavar="PATH", help="save the final state and history to this msgpack file"
    )
    mlp.add_argument(
        "--resume", metavar="PATH", help="continue from a checkpoint up to --epochs epochs in total"
    )
    mlp.set_defaults(run=_mlp, report=_report_mlp)

    compare = commands.add_parser(
        "compare-activations",
        help="train one MLP per activation on the same data and key (Exercise 1.1)",
        description=(
            "Train the same MLP with each activation (same data, same key) and write their "
            "loss curves and decision boundaries side by side (activation_comparison.png) "
            "and metrics.json."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _mlp_arguments(compare)
    compare.add_argument(
        "--activations",
        type=_names(sorted(models.activations)),
        default=["relu", "sigmoid", "tanh"],
        metavar="A,B,...",
        help="activations to compare",
    )
    compare.set_defaults(run=_compare, report=_report_compare)
    _optimize_arguments(commands)
    _sweep_arguments(commands)
    bench = commands.add_parser(
        "bench",
        help="run the benchmark suite against PyTorch and scikit-learn (from a checkout)",
        description=(
            "Run benchmarks/ (python -m benchmarks) from the repository checkout: the same "
            "arguments, e.g. 'dlvr-jax bench --quick'. The peers come from the bench extra."
        ),
        add_help=False,
    )
    bench.add_argument("arguments", nargs=argparse.REMAINDER, help="passed to benchmarks")
    bench.set_defaults(run=None)
    return parser


def _sweep_arguments(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="train many MLPs in one vmap per shape: learning rate x batch size x seed",
        description=(
            "Train one MLP per (learning rate, seed) in one compiled vmap for each batch size "
            "(Exercise 1.1's sensitivity study) and write sweep_heatmap.png (final test "
            "accuracy and loss: mean and spread over seeds), sweep.csv and sweep.json. "
            "A batch size above the training set size means full batch."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sweep.add_argument(
        "--learning-rates",
        type=_learning_rates,
        default=_learning_rates("1e-4:1e-1:16"),
        metavar="LOW:HIGH:COUNT|A,B,...",
        help="log-spaced range (ends included) or a list",
    )
    sweep.add_argument(
        "--batch-sizes",
        type=_ints,
        default=[32, 128, 1000],
        metavar="B,B,...",
        help="batch sizes (one compiled program each)",
    )
    sweep.add_argument(
        "--seeds", type=_positive_int, default=8, help="replicates per configuration (seeds 0..S-1)"
    )
    sweep.add_argument("--epochs", type=_positive_int, default=100, help="passes over the data")
    sweep.add_argument(
        "--dataset", default="circle", choices=data.names(), help="the dataset generator"
    )
    sweep.add_argument("--n", type=_positive_int, default=1000, help="number of points")
    sweep.add_argument("--noise", type=_non_negative, default=0.0, help="the generator's noise")
    sweep.add_argument(
        "--test-fraction", type=_fraction, default=0.2, help="share of the points held out"
    )
    sweep.add_argument(
        "--hidden", type=_widths, default=(8, 8, 8, 8, 8), metavar="W,W,...", help="hidden widths"
    )
    sweep.add_argument(
        "--activation", default="relu", choices=sorted(models.activations), help="activation"
    )
    sweep.add_argument(
        "--optimizer", default="adam", choices=optim.names(), help="the Optax optimizer"
    )
    sweep.add_argument("--l2", type=_non_negative, default=0.0, help="L2 penalty on weights")
    sweep.add_argument("--data-seed", type=_seed, default=0, help="PRNG seed of data and split")
    sweep.add_argument("--out", default=".", metavar="DIR", help="folder for the outputs")
    sweep.add_argument("--json", action="store_true", help="print the summary as JSON")
    sweep.add_argument(
        "--no-cache", action="store_true", help="do not use JAX's persistent compilation cache"
    )
    sweep.set_defaults(run=_sweep, report=_report_sweep)


_SWEEP_COLUMNS = (
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


def _sweep(args: argparse.Namespace) -> dict[str, Any]:
    from dlvr_jax import parallel, viz

    if data.task(args.dataset) != "classification":
        raise ValueError(f"sweep trains classifiers; --dataset {args.dataset} is a regression set")
    cache = _enable_compilation_cache(args)
    data_key, split_key = jax.random.split(jax.random.key(args.data_seed))
    full = data.make(args.dataset, data_key, args.n, noise=args.noise)
    train_set, test_set = data.train_test_split(split_key, full, test_fraction=args.test_fraction)
    n_train = len(train_set.y)
    batch_sizes = sorted({min(b, n_train) for b in args.batch_sizes})
    model = models.MLP(hidden=args.hidden, activation=args.activation)
    started = time.perf_counter()
    rows = parallel.sweep_table(
        list(range(args.seeds)),
        {"mlp": model},
        train_set,
        learning_rates=args.learning_rates,
        batch_sizes=[None if b == n_train else b for b in batch_sizes],
        epochs=args.epochs,
        optimizer=args.optimizer,
        l2=args.l2,
        test=test_set,
        progress=None if args.json else lambda line: print(line, file=sys.stderr),
    )
    seconds = time.perf_counter() - started
    os.makedirs(args.out, exist_ok=True)
    figure_path = os.path.join(args.out, "sweep_heatmap.png")
    csv_path = os.path.join(args.out, "sweep.csv")
    json_path = os.path.join(args.out, "sweep.json")
    viz.save(
        viz.plot_sweep_heatmap(
            rows,
            title=f"{args.dataset}: final test accuracy and loss after {args.epochs} epochs "
            f"({args.optimizer}, {args.seeds} seeds)",
        ),
        figure_path,
    )
    with _io.atomic_open(csv_path, "w") as stream:
        stream.write(",".join(_SWEEP_COLUMNS) + "\n")  # type: ignore[call-overload]
        for row in rows:
            cells = ["" if row[c] is None else str(row[c]) for c in _SWEEP_COLUMNS]
            stream.write(",".join(cells) + "\n")  # type: ignore[call-overload]
    xs, ys, mean, std, _ = viz.sweep_summary(rows, "test_accuracy")
    best = np.unravel_index(np.nanargmax(mean), mean.shape) if np.isfinite(mean).any() else None
    compiled = {r["batch_size"]: r["compile_seconds"] for r in rows}
    ran = {r["batch_size"]: r["run_seconds"] for r in rows}
    metrics: dict[str, Any] = {
        "command": "sweep",
        "version": dlvr_jax.__version__,
        "dataset": args.dataset,
        "n_train": n_train,
        "epochs": args.epochs,
        "optimizer": args.optimizer,
        "learning_rates": args.learning_rates,
        "batch_sizes": batch_sizes,
        "seeds": args.seeds,
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
        "compilation_cache": cache,
        "files": [figure_path, csv_path, json_path],
    }
    _write_metrics(json_path, {**metrics, "rows": rows})
    return metrics


def _report_sweep(metrics: dict[str, Any]) -> str:
    lines = [
        f"{metrics['models']} models ({len(metrics['learning_rates'])} learning rates x "
        f"batch sizes {metrics['batch_sizes']} x {metrics['seeds']} seeds), "
        f"{metrics['epochs']} epochs each, in {metrics['seconds']:.1f} s "
        f"({metrics['run_seconds']:.1f} s training, {metrics['compile_seconds']:.1f} s compiling)",
        f"diverged: {metrics['diverged']}",
    ]
    best = metrics["best"]
    if best is not None:
        lines.append(
            f"best mean test accuracy: {100 * best['test_accuracy_mean']:.1f}% "
            f"(± {100 * best['test_accuracy_std']:.1f}) at learning rate "
            f"{best['learning_rate']:.3g}, batch size {best['batch_size']}"
        )
    lines.append("wrote " + ", ".join(metrics["files"]))
    return "\n".join(lines)


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


_METHODS = ("gd", *optim.names())


def _optimize_arguments(commands: Any) -> None:
    descent = commands.add_parser(
        "optimize",
        help="gradient descent and Optax optimizers on a toy function; paths and convergence",
        description=(
            "Exercise 1.3. On a toy function (--function rosenbrock, beale, ...) run each "
            "of --optimizers from --start and write optimization_paths.png (contour map), "
            "optimization_surface.png (3-D surface; two-variable functions), convergence.png "
            "(f - f* against the step) and metrics.json. With --function least_squares, fit "
            "the coefficients of x^2 + 4x + 4 from --n noisy samples by mini-batch gradient "
            "descent over every --learning-rate x --batch-sizes pair and write convergence.png "
            "(one panel per batch size) and metrics.json. 'gd' is x <- x - lr grad f(x); the "
            "other names are Optax optimizers (on a deterministic function 'sgd' is the same "
            "as 'gd': there is nothing to sample)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    descent.add_argument(
        "--function",
        default="rosenbrock",
        choices=[*optim.OBJECTIVES, "least_squares"],
        help="the objective",
    )
    descent.add_argument(
        "--optimizers",
        type=_names(_METHODS),
        default=["gd", "momentum", "rmsprop", "adam"],
        metavar="A,B,...",
        help=f"methods to compare, from {', '.join(_METHODS)} (toy functions)",
    )
    descent.add_argument(
        "--learning-rate",
        type=_floats,
        default=None,
        metavar="LR[,LR...]",
        help="toy functions: one step size for all or one per optimizer (default 1e-3); "
        "least_squares: the step sizes of the grid (default 0.01,0.05,0.2)",
    )
    descent.add_argument(
        "--steps", type=_positive_int, default=2000, help="most updates per run (toy functions)"
    )
    descent.add_argument(
        "--tol",
        type=_non_negative,
        default=1e-6,
        help="stop when the gradient norm or the step is below this (toy functions)",
    )
    descent.add_argument(
        "--start",
        type=_point,
        default=None,
        metavar="X[,Y]",
        help="the starting point (default: the function's suggested start); write "
        "--start=-1.2,1 when the first coordinate is negative",
    )
    descent.add_argument(
        "--batch-sizes",
        type=_ints,
        default=[1, 10, 100],
        metavar="B,B,...",
        help="mini-batch sizes (least_squares; at most --n)",
    )
    descent.add_argument(
        "--epochs", type=_positive_int, default=30, help="passes over the data (least_squares)"
    )
    descent.add_argument(
        "--n", type=_positive_int, default=100, help="number of samples (least_squares)"
    )
    descent.add_argument(
        "--noise", type=_non_negative, default=0.5, help="noise std of the samples (least_squares)"
    )
    descent.add_argument("--seed", type=_seed, default=0, help="PRNG seed (least_squares)")
    descent.add_argument("--out", default=".", metavar="DIR", help="folder for the outputs")
    descent.add_argument(
        "--json", action="store_true", help="print the metrics as JSON instead of text"
    )
    descent.set_defaults(run=_optimize, report=_report_optimize)


def _mlp_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--dataset", default="circle", choices=data.names(), help="the dataset generator"
    )
    command.add_argument("--n", type=_positive_int, default=1000, help="number of points")
    command.add_argument(
        "--noise", type=_non_negative, default=0.0, help="the generator's noise (see dlvr_jax.data)"
    )
    command.add_argument(
        "--test-fraction",
        type=_fraction,
        default=0.2,
        help="share of the points held out for testing",
    )
    command.add_argument(
        "--hidden",
        type=_widths,
        default=(8, 8, 8, 8, 8),
        metavar="W,W,...",
        help="hidden layer widths ('none' for a linear model)",
    )
    command.add_argument(
        "--optimizer", default="adam", choices=optim.names(), help="the Optax optimizer"
    )
    command.add_argument(
        "--learning-rate", type=_positive_float, default=1e-3, help="the optimizer's learning rate"
    )
    command.add_argument("--epochs", type=_positive_int, default=2000, help="passes over the data")
    command.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="examples per step (default: the whole training set)",
    )
    command.add_argument("--l1", type=_non_negative, default=0.0, help="L1 penalty on weights")
    command.add_argument("--l2", type=_non_negative, default=0.0, help="L2 penalty on weights")
    command.add_argument("--seed", type=_seed, default=0, help="PRNG seed (data, split, init)")
    command.add_argument("--out", default=".", metavar="DIR", help="folder for the outputs")
    command.add_argument(
        "--json", action="store_true", help="print the metrics as JSON instead of text"
    )
    command.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is shown only on a terminal anyway)",
    )
    command.add_argument(
        "--no-cache", action="store_true", help="do not use JAX's persistent compilation cache"
    )


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
        kept = perceptron.pocket(
            x, y, learning_rate=args.learning_rate, max_epochs=args.max_epochs, every_update=True
        )
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


def _cache_directory() -> str:
    explicit = os.environ.get("DLVR_JAX_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dlvr_jax", "jax")


def _enable_compilation_cache(args: argparse.Namespace) -> str | None:
    """Points JAX's persistent compilation cache at the user cache folder (unless opted out)."""
    if args.no_cache or os.environ.get("DLVR_JAX_NO_CACHE", "") not in ("", "0"):
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


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn after each compiled chunk of epochs."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int, history: train.History) -> None:
        width = 30
        filled = round(width * done / total)
        loss = float(history.train_loss[-1])
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


def _prepare(args: argparse.Namespace) -> tuple[Any, ...]:
    """Data, split, model and optimizer for the MLP commands, all from ``--seed``."""
    data_key, split_key, train_key = jax.random.split(jax.random.key(args.seed), 3)
    full = data.make(args.dataset, data_key, args.n, noise=args.noise)
    train_set, test_set = data.train_test_split(split_key, full, test_fraction=args.test_fraction)
    regression = data.task(args.dataset) == "regression"
    if args.batch_size is not None and args.batch_size > len(train_set.y):
        raise ValueError(
            f"--batch-size must be at most the training set size ({len(train_set.y)}), "
            f"got {args.batch_size}"
        )
    optimizer = optim.optimizer(args.optimizer, args.learning_rate)
    return train_key, train_set, test_set, regression, optimizer


def _summary(state: train.TrainState, history: train.History, regression: bool) -> dict[str, Any]:
    def last(values: Any) -> float | None:
        if values is None or len(values) == 0:
            return None
        value = float(values[-1])
        return None if math.isnan(value) else value

    return {
        "epochs": int(state.epoch),
        "steps": int(state.step),
        "train_loss": last(history.train_loss),
        "test_loss": last(history.test_loss),
        "train_accuracy": None if regression else last(history.train_accuracy),
        "test_accuracy": None if regression else last(history.test_accuracy),
    }


def _mlp(args: argparse.Namespace) -> dict[str, Any]:
    from dlvr_jax import viz  # matplotlib is loaded only when a figure is made

    cache = _enable_compilation_cache(args)
    train_key, train_set, test_set, regression, optimizer = _prepare(args)
    model = models.MLP(
        hidden=args.hidden, n_outputs=1 if regression else 2, activation=args.activation
    )
    loss = "mse" if regression else "cross_entropy"
    history: train.History | None = None
    state: train.TrainState | None = None
    if args.resume:
        like = train.create_train_state(train_key, model, optimizer, train_set.x, loss=loss)
        state, history = checkpoint.load(args.resume, like)
    remaining = args.epochs - (0 if state is None else int(state.epoch))
    started = time.perf_counter()
    if remaining > 0:
        state, new = train.fit(
            train_key,
            model,
            optimizer,
            train_set,
            epochs=remaining,
            batch_size=args.batch_size,
            loss=loss,
            l1=args.l1,
            l2=args.l2,
            test=test_set,
            state=state,
            **_progress(args, "training", remaining),
        )
        history = new if history is None else train.concatenate(history, new)
    seconds = time.perf_counter() - started
    assert state is not None
    assert history is not None

    os.makedirs(args.out, exist_ok=True)
    files = {
        name: os.path.join(args.out, name)
        for name in (
            "decision_boundary.png",
            "loss_curve.png",
            "gradient_heatmap.png",
            "neuron_maps.png",
            "metrics.json",
        )
    }
    params = state.params
    if regression:

        def surface(grid: jax.Array) -> jax.Array:
            return train.predict(model, params, grid)
    else:

        def surface(grid: jax.Array) -> jax.Array:
            return train.probabilities(model, params, grid)[:, 1]

    figure = viz.plot_decision_boundary(
        surface, test_set, title=f"MLP Classification and Predictions ({args.dataset})"
    )
    figure.set_size_inches(8, 8)
    viz.save(figure, files["decision_boundary.png"])
    figure = viz.plot_loss_curve(history)
    figure.set_size_inches(8, 6)
    viz.save(figure, files["loss_curve.png"])
    figure = viz.plot_gradient_heatmap(history.final_grads)
    figure.set_size_inches(8, 6)
    viz.save(figure, files["gradient_heatmap.png"])
    viz.save(viz.plot_neuron_maps(model, params, test_set), files["neuron_maps.png"])
    if args.checkpoint:
        checkpoint.save(args.checkpoint, state, history, metadata={"argv": sys.argv[1:]})

    metrics: dict[str, Any] = {
        "command": "mlp",
        "version": dlvr_jax.__version__,
        "dataset": args.dataset,
        "n": args.n,
        "noise": args.noise,
        "seed": args.seed,
        "hidden": list(args.hidden),
        "activation": args.activation,
        "optimizer": args.optimizer,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "l1": args.l1,
        "l2": args.l2,
        "loss": loss,
        "parameters": models.count_params(params),
        **_summary(state, history, regression),
        "train_seconds": round(seconds, 3),
        "compilation_cache": cache,
        "checkpoint": args.checkpoint,
        "resumed_from": args.resume,
        "files": list(files.values()),
    }
    with _io.atomic_open(files["metrics.json"], "w") as stream:
        json.dump(metrics, stream, indent=2)  # type: ignore[arg-type]
        stream.write("\n")  # type: ignore[call-overload]
    return metrics


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _report_mlp(metrics: dict[str, Any]) -> str:
    lines = [
        f"dataset: {metrics['dataset']} (n={metrics['n']}, seed={metrics['seed']}, "
        f"noise={metrics['noise']})",
        f"model: MLP hidden={metrics['hidden']} activation={metrics['activation']} "
        f"({metrics['parameters']} parameters), {metrics['optimizer']} at "
        f"{metrics['learning_rate']:g}",
        f"trained {metrics['epochs']} epochs ({metrics['steps']} steps) in "
        f"{metrics['train_seconds']:.2f}s",
        f"final loss: train {metrics['train_loss']:.4f}"
        + ("" if metrics["test_loss"] is None else f", test {metrics['test_loss']:.4f}"),
    ]
    if metrics["train_accuracy"] is not None:
        lines.append(f"train accuracy: {_percent(metrics['train_accuracy'])}")
        lines.append(f"test accuracy: {_percent(metrics['test_accuracy'])}")
    if metrics["checkpoint"]:
        lines.append(f"checkpoint: {metrics['checkpoint']}")
    lines.append("wrote " + ", ".join(metrics["files"]))
    return "\n".join(lines)


def _compare(args: argparse.Namespace) -> dict[str, Any]:
    from dlvr_jax import viz

    cache = _enable_compilation_cache(args)
    train_key, train_set, test_set, regression, optimizer = _prepare(args)
    loss = "mse" if regression else "cross_entropy"
    histories: dict[str, train.History] = {}
    boundaries: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for name in args.activations:
        model = models.MLP(hidden=args.hidden, n_outputs=1 if regression else 2, activation=name)
        state, history = train.fit(
            train_key,
            model,
            optimizer,
            train_set,
            epochs=args.epochs,
            batch_size=args.batch_size,
            loss=loss,
            l1=args.l1,
            l2=args.l2,
            test=test_set,
            **_progress(args, f"{name:>10}", args.epochs),
        )
        histories[name] = history
        results[name] = _summary(state, history, regression)

        def surface(grid: jax.Array, model: models.MLP = model, params: Any = state.params) -> Any:
            if regression:
                return train.predict(model, params, grid)
            return train.probabilities(model, params, grid)[:, 1]

        boundaries[name] = (surface, test_set)
    os.makedirs(args.out, exist_ok=True)
    figure_path = os.path.join(args.out, "activation_comparison.png")
    metrics_path = os.path.join(args.out, "metrics.json")
    viz.save(viz.plot_activation_comparison(histories, boundaries=boundaries), figure_path)
    metrics = {
        "command": "compare-activations",
        "version": dlvr_jax.__version__,
        "dataset": args.dataset,
        "n": args.n,
        "seed": args.seed,
        "hidden": list(args.hidden),
        "optimizer": args.optimizer,
        "learning_rate": args.learning_rate,
        "epochs": args.epochs,
        "results": results,
        "compilation_cache": cache,
        "files": [figure_path, metrics_path],
    }
    with _io.atomic_open(metrics_path, "w") as stream:
        json.dump(metrics, stream, indent=2)  # type: ignore[arg-type]
        stream.write("\n")  # type: ignore[call-overload]
    return metrics


def _report_compare(metrics: dict[str, Any]) -> str:
    lines = [
        f"dataset: {metrics['dataset']} (n={metrics['n']}, seed={metrics['seed']}), "
        f"{metrics['epochs']} epochs each"
    ]
    for name, result in metrics["results"].items():
        lines.append(
            f"{name:>12}: train loss {result['train_loss']:.4f}, test accuracy "
            f"{_percent(result['test_accuracy'])}"
        )
    lines.append("wrote " + ", ".join(metrics["files"]))
    return "\n".join(lines)


def _path_summary(path: optim.Path) -> dict[str, Any]:
    steps = int(path.steps)
    final = [float(v) for v in jnp.ravel(path.xs[steps])]
    return {
        "steps": steps,
        "converged": bool(path.converged),
        "diverged": bool(path.diverged),
        "final_x": final,
        "final_value": float(path.values[steps]),
        "final_grad_norm": float(path.grad_norms[steps]),
    }


def _write_metrics(path: str, metrics: dict[str, Any]) -> None:
    with _io.atomic_open(path, "w") as stream:
        json.dump(metrics, stream, indent=2)  # type: ignore[arg-type]
        stream.write("\n")  # type: ignore[call-overload]


def _optimize(args: argparse.Namespace) -> dict[str, Any]:
    from dlvr_jax import viz

    if args.function == "least_squares":
        return _optimize_least_squares(args, viz)
    toy = optim.objective(args.function)
    start = toy.start if args.start is None else tuple(args.start)
    if len(start) != len(toy.start):
        raise ValueError(
            f"--start must have {len(toy.start)} coordinate(s) for {args.function}, "
            f"got {','.join(f'{v:g}' for v in start)}"
        )
    rates = args.learning_rate or [1e-3]
    if len(rates) not in (1, len(args.optimizers)):
        raise ValueError(
            f"--learning-rate must give one value or one per optimizer ({len(args.optimizers)}), "
            f"got {len(rates)}"
        )
    learning_rates = dict(zip(args.optimizers, rates * len(args.optimizers), strict=False))
    x0 = jnp.asarray(start[0] if len(start) == 1 else start, jnp.float32)
    started = time.perf_counter()
    paths = optim.compare(
        toy.f,
        x0,
        optimizers=tuple(args.optimizers),
        learning_rate=learning_rates,
        max_steps=args.steps,
        tol=args.tol,
    )
    seconds = time.perf_counter() - started
    os.makedirs(args.out, exist_ok=True)
    files = [os.path.join(args.out, "optimization_paths.png")]
    title = f"{args.function}: optimization paths"
    viz.save(
        viz.plot_optimization_paths(
            toy.f, paths, extent=toy.extent, minima=toy.minima, title=title
        ),
        files[-1],
    )
    if len(start) == 2:
        files.append(os.path.join(args.out, "optimization_surface.png"))
        figure = viz.plot_optimization_paths(
            toy.f, paths, extent=toy.extent, minima=toy.minima, kind="surface", title=title
        )
        viz.save(figure, files[-1])
    if math.isfinite(toy.f_star):
        files.append(os.path.join(args.out, "convergence.png"))
        figure = viz.plot_convergence(
            paths, toy.f_star, title=f"{args.function}: f - f* against the step"
        )
        viz.save(figure, files[-1])
    files.append(os.path.join(args.out, "metrics.json"))
    metrics: dict[str, Any] = {
        "command": "optimize",
        "version": dlvr_jax.__version__,
        "function": args.function,
        "start": list(start),
        "minima": [list(m) for m in toy.minima],
        "f_star": toy.f_star if math.isfinite(toy.f_star) else None,
        "max_steps": args.steps,
        "tol": args.tol,
        "learning_rates": learning_rates,
        "results": {name: _path_summary(path) for name, path in paths.items()},
        "seconds": round(seconds, 3),
        "files": files,
    }
    _write_metrics(files[-1], metrics)
    return metrics


def _optimize_least_squares(args: argparse.Namespace, viz: Any) -> dict[str, Any]:
    if max(args.batch_sizes) > args.n:
        raise ValueError(
            f"--batch-sizes must be at most --n ({args.n}), got {max(args.batch_sizes)}"
        )
    rates = args.learning_rate or [0.01, 0.05, 0.2]
    data_key, shuffle_key = jax.random.split(jax.random.key(args.seed))
    problem = optim.quadratic_samples(data_key, args.n, noise=args.noise)
    w_star, f_star = optim.least_squares_solution(problem)
    started = time.perf_counter()
    grid = optim.convergence_grid(
        shuffle_key,
        problem,
        jnp.zeros(3, jnp.float32),
        learning_rates=rates,
        batch_sizes=args.batch_sizes,
        epochs=args.epochs,
    )
    seconds = time.perf_counter() - started
    os.makedirs(args.out, exist_ok=True)
    files = [os.path.join(args.out, name) for name in ("convergence.png", "metrics.json")]
    title = (
        f"Mini-batch gradient descent on least squares (x^2 + 4x + 4, n={args.n}): "
        "f - f* against the step"
    )
    viz.save(viz.plot_convergence(grid, float(f_star), title=title), files[0])
    metrics: dict[str, Any] = {
        "command": "optimize",
        "version": dlvr_jax.__version__,
        "function": "least_squares",
        "n": args.n,
        "noise": args.noise,
        "seed": args.seed,
        "epochs": args.epochs,
        "true_coefficients": [1.0, 4.0, 4.0],
        "least_squares_coefficients": [float(v) for v in w_star],
        "f_star": float(f_star),
        "results": [
            {"learning_rate": rate, "batch_size": batch, **_path_summary(path)}
            for (rate, batch), path in grid.items()
        ],
        "seconds": round(seconds, 3),
        "files": files,
    }
    _write_metrics(files[1], metrics)
    return metrics


def _report_optimize(metrics: dict[str, Any]) -> str:
    if metrics["function"] == "least_squares":
        lines = [
            f"least squares: x^2 + 4x + 4 from {metrics['n']} samples (noise "
            f"{metrics['noise']:g}); exact fit "
            f"[{', '.join(f'{v:.4f}' for v in metrics['least_squares_coefficients'])}], "
            f"f* = {metrics['f_star']:.6g}"
        ]
        for run in metrics["results"]:
            status = (
                "diverged"
                if run["diverged"]
                else f"f - f* = {run['final_value'] - metrics['f_star']:.3g}"
            )
            lines.append(
                f"  lr {run['learning_rate']:<8g} batch {run['batch_size']:<5d} "
                f"{run['steps']:>6d} steps  {status}  w = "
                f"[{', '.join(f'{v:.4f}' for v in run['final_x'])}]"
            )
    else:
        lines = [f"{metrics['function']} from {metrics['start']}, minima {metrics['minima']}"]
        for name, run in metrics["results"].items():
            status = (
                "converged" if run["converged"] else "diverged" if run["diverged"] else "max steps"
            )
            lines.append(
                f"  {name:>9} (lr {metrics['learning_rates'][name]:g}): {run['steps']:>6d} steps, "
                f"{status}, f = {run['final_value']:.4g} at "
                f"[{', '.join(f'{v:.5g}' for v in run['final_x'])}]"
            )
    lines.append("wrote " + ", ".join(metrics["files"]))
    return "\n".join(lines)


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
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        return _bench(arguments[1:])
    args = parser.parse_args(arguments)
    try:
        metrics = args.run(args)
    except (ValueError, OSError) as error:  # bad values, unwritable --out, missing --resume
        print(f"dlvr-jax {args.command}: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=2) if args.json else args.report(metrics))
    return 0
