"""The ``dlvr-jax`` command line: argument parsing, printing and exit codes; no workflow.

Run ``dlvr-jax --help`` or ``dlvr-jax <command> --help``. Each command parses
its arguments into a config of :mod:`dlvr_jax.jobs` (whose options
:mod:`dlvr_jax.jobs.commands` declares, and whose table checks the values),
runs the job and prints its result's summary, or with ``--json`` one JSON
document on stdout (and nothing else there). Exit status: 0 done (also
"nothing left to train"); 1 training diverged (the files up to the last good
epoch are written); 2 a bad argument, file or checkpoint. Every error is one
line on stderr, naming the flag of the field it carries.

To keep ``--help`` and start-up fast, only the chosen command's arguments are
built, and JAX, the jobs and matplotlib are imported when a command runs. The
training commands use JAX's persistent compilation cache in
``$XDG_CACHE_HOME/dlvr_jax/jax`` (``DLVR_JAX_CACHE_DIR`` overrides it);
``--no-cache`` or ``DLVR_JAX_NO_CACHE=1`` turns it off. On a terminal (stderr),
``mlp`` shows one line from its first 0.2 s to its last file: the phase
(loading, compiling, the epochs' bar, drawing) and the seconds; ``--no-progress``
hides it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, NoReturn

import dlvr_jax


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``prog: error: message``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


# ----------------------------------------------------------------------------
# The arguments of each command (built only for the command that runs).


def _job_arguments(sub: argparse.ArgumentParser, name: str) -> None:
    """A job's options, as :data:`dlvr_jax.jobs.commands.COMMANDS` declares them."""
    from dlvr_jax.jobs import commands

    command = commands.COMMANDS[name]
    sub.description = command.description
    source = sub.add_mutually_exclusive_group()
    for option in command.options:
        where = source if option.source else sub
        common: dict[str, Any] = {"dest": option.field, "help": option.help}
        if option.kind == "switch":
            where.add_argument(option.flag(), action="store_true", **common)
            continue
        default = commands.default(command, option)
        if option.kind == "choice":
            assert option.choices is not None
            choices = tuple(option.choices())
            where.add_argument(option.flag(), default=default, choices=choices, **common)
        else:
            kind = commands.READERS[option.kind]
            where.add_argument(
                option.flag(), default=default, type=kind, metavar=option.metavar, **common
            )
    sub.set_defaults(flags={option.field: option.flag() for option in command.options})


def _add(command: Any, flag: str, default: Any, kind: Any, text: str, **extra: Any) -> None:
    """One option of the command line's own: a parser of the text, or ``bool`` (a switch)."""
    if kind is bool:
        command.add_argument(flag, action="store_true", help=text)
    else:
        command.add_argument(flag, default=default, type=kind, help=text, **extra)


_RESUME_HELP = (
    "continue from a checkpoint up to --epochs epochs in total; it must have been trained "
    "with the same data, model, optimizer, loss and seed (or pass --force)"
)


def _outputs(command: argparse.ArgumentParser, name: str) -> None:
    """The options of the command line's own: where to write, JSON, the cache, progress."""
    _add(command, "--out", ".", str, "folder for the outputs", metavar="DIR")
    _add(command, "--json", False, bool, "print the result as one JSON document on stdout")
    if name in ("mlp", "compare-activations", "sweep"):
        _add(command, "--no-cache", False, bool, "do not use JAX's persistent compilation cache")
    if name in ("mlp", "compare-activations"):
        _add(command, "--no-progress", False, bool, "no progress line (shown only on a terminal)")
    if name == "mlp":
        _add(
            command, "--checkpoint", None, str, "save state, history and setup here", metavar="PATH"
        )
        _add(command, "--resume", None, str, _RESUME_HELP, metavar="PATH")
        _add(command, "--force", False, bool, "resume even from a checkpoint of another setup")


def _playground_arguments(command: argparse.ArgumentParser) -> None:
    from dlvr_jax.jobs import commands

    command.description = (
        "Start a local web server (127.0.0.1, a random token in the URL) whose page trains "
        "MLPs live: datasets, features, layers, activations, optimizers, regularization, "
        "your own CSV, export and sweeps. Prints the URL with its token and opens it in the "
        "default browser unless --no-browser. Ctrl-C stops it. Needs the playground extra: "
        'pip install "dlvr-jax[playground]".'
    )
    _add(command, "--host", "127.0.0.1", str, "the interface to bind (127.0.0.1: this machine)")
    _add(command, "--port", 0, commands.READERS["port"], "the port (0: a free one)")
    _add(command, "--no-browser", False, bool, "print the URL but do not open a browser")
    _add(
        command,
        "--max-sessions",
        8,
        commands.READERS["sessions"],
        "the most browser tabs training at once",
    )
    _add(command, "--json", False, bool, "on exit, print the outcome as one JSON document")
    _add(command, "--no-cache", False, bool, "do not use JAX's persistent compilation cache")


def _build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s arguments are built (the others stay empty)."""
    parser = _Parser(
        prog="dlvr-jax", description="The introductory deep-learning chapter of DLVR, in JAX."
    )
    parser.add_argument("--version", action="version", version=f"dlvr-jax {dlvr_jax.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, run) in _COMMANDS.items():
        sub = commands.add_parser(
            name, help=summary, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        if name != command:
            continue
        if name == "playground":
            _playground_arguments(sub)
        else:
            _job_arguments(sub, name)
            _outputs(sub, name)
        sub.set_defaults(run=run)
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


def _config(kind: Any, args: argparse.Namespace) -> Any:
    """``kind(...)``, a jobs config, from the options named as its fields (lists as tuples)."""
    given = vars(args)
    if given.get("task") is not None and given.get("data_path") is None:
        raise ValueError("--task applies only with --data PATH.csv")
    values = {f.name: given[f.name] for f in dataclasses.fields(kind) if f.name in given}
    return kind(**{n: tuple(v) if isinstance(v, list) else v for n, v in values.items()})


class _Ticker(threading.Thread):
    """The run's phase and seconds on stderr every 0.2 s, from start to the last file written:
    loading, preparing and compiling, the training bar, drawing (a terminal's, not ``--json``)."""

    def __init__(self) -> None:
        super().__init__(name="dlvr-jax-progress", daemon=True)
        self.text, self.began, self.done = "loading", time.perf_counter(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            sys.stderr.write(f"\r{self.text} {time.perf_counter() - self.began:.1f}s\033[K")
            sys.stderr.flush()

    def stop(self) -> None:
        self.done.set()
        self.join()
        sys.stderr.write("\r\033[K")


_TICKER: list[_Ticker] = []  # the running ticker, if any


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn after each compiled chunk of epochs."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int, history: Any) -> None:
        import numpy as np  # loaded by JAX already; reading on the host compiles nothing

        filled = round(30 * done / total)
        loss = float(np.asarray(history.train_loss)[-1])
        line = (
            f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} epochs "
            f"loss {loss:.4f} {time.perf_counter() - self.start:.1f}s"
        )
        if _TICKER:  # the ticker draws it, and then the figures' phase
            _TICKER[0].text = line if done < total else f"{line}; drawing figures"
            return
        sys.stderr.write(f"\r{line}" + ("\n" if done == total else ""))
        sys.stderr.flush()


def _progress(args: argparse.Namespace, label: str, epochs: int) -> dict[str, Any]:
    """``fit`` keywords for a progress bar, when stderr is a terminal."""
    if args.no_progress or not sys.stderr.isatty():
        return {}
    return {"progress": _ProgressBar(label), "chunk_epochs": max(1, epochs // 50)}


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
    if result.nothing_to_train:
        line = (
            f"nothing left to train: {args.resume} holds {m['epochs']} epochs and --epochs is "
            f"{args.epochs}; pass a larger --epochs to train on (nothing was written)"
        )
        return _Outcome(m, line)
    if result.diverged is None:
        return _Outcome(m, result.summary())
    epoch, cause = result.diverged
    return _Outcome(m, result.summary(), _diverged_line(f"at epoch {epoch} ({cause})"), 1)


def _compare(args: argparse.Namespace) -> _Outcome:
    from dlvr_jax import jobs

    jobs.compilation_cache(not args.no_cache)
    config = _config(jobs.CompareConfig, args)

    def progress(name: str) -> Any:
        return _progress(args, f"{name:>10}", args.epochs).get("progress")

    result = jobs.compare_activations(config, out=args.out, progress=progress)
    diverged = result.diverged()
    error = _diverged_line("for " + ", ".join(diverged)) if diverged else None
    return _Outcome(result.metrics, result.summary(), error, 1 if diverged else 0)


def _perceptron(args: argparse.Namespace) -> _Outcome:
    from dlvr_jax import jobs

    result = jobs.perceptron(_config(jobs.PerceptronConfig, args), out=args.out)
    return _Outcome(result.metrics, result.summary())


def _sweep(args: argparse.Namespace) -> _Outcome:
    from dlvr_jax import jobs

    jobs.compilation_cache(not args.no_cache)
    config = _config(jobs.SweepConfig, args)

    def progress(line: str) -> None:
        print(line, file=sys.stderr)

    result = jobs.sweep(config, out=args.out, progress=None if args.json else progress)
    return _Outcome(result.metrics, result.summary())


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

    config = _config(jobs.OptimizeConfig, args)
    result = jobs.optimize(config, out=args.out)
    return _Outcome(result.metrics, result.summary())


_COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], _Outcome]]] = {
    "perceptron": ("train Rosenblatt's perceptron on a 2-D dataset and plot its line", _perceptron),
    "mlp": ("train the chapter's MLP (circle data, 5x8 ReLU, Adam) and draw its figures", _mlp),
    "compare-activations": (
        "train one MLP per activation on the same data and key (Exercise 1.1)",
        _compare,
    ),
    "optimize": (
        "gradient descent and Optax optimizers on a toy function; paths and convergence",
        _optimize,
    ),
    "playground": ("the TensorFlow Playground in the browser, trained live by JAX", _playground),
    "sweep": ("train many MLPs in one vmap per shape: learning rate x batch size x seed", _sweep),
}
"""Each command's one-line summary (``dlvr-jax --help``) and what runs it."""


# ----------------------------------------------------------------------------
# Errors: one line each.


def _flag(field: str | None, args: argparse.Namespace) -> str | None:
    """The flag of a config field or a checkpoint record's (``model.hidden`` -> ``--hidden``).

    A record's ``section.name`` is its section's flag (``optimizer.name`` ->
    ``--optimizer``); None when the command has no such flag.
    """
    if field is None:
        return None
    section, _, name = field.rpartition(".")
    name = section if name == "name" else name
    flags: dict[str, str] = getattr(args, "flags", {})
    return flags.get(name)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("path"))
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "none"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _mismatch_line(error: Any, args: argparse.Namespace) -> str:
    field, saved, given = error.field, error.saved, error.given
    if field == "dataset" and isinstance(saved, dict):
        was, now = ("--data" if "sha256" in d else "--dataset" for d in (saved, given))
        what = f"{was} {_shown(saved)}, not {now} {_shown(given)}"
    elif field == "dataset.sha256":
        what = f"--data of sha256 {saved[:12]}…, not this file's {given[:12]}…"
    else:
        what = f"{_flag(field, args) or field} {_shown(saved)}, not {_shown(given)}"
    return f"checkpoint was trained with {what}; pass --force to resume anyway"


def _one_line(error: BaseException, args: argparse.Namespace) -> str:
    """The error as one line, naming the flag of the field it carries (``error.field``)."""
    from dlvr_jax import _validate as check  # on the error path only

    message = " ".join(str(error).split()) or type(error).__name__
    missing = getattr(error, "filename", None) if isinstance(error, FileNotFoundError) else None
    if missing and str(missing) not in message:
        message = f"{missing}: {message}"
    field, flag = check.field_of(error), _flag(check.field_of(error), args)
    # "hidden must ..." or "hidden[2] must ...": the field as a word, named by its flag
    if field and flag and message.startswith(field) and message[len(field) :][:1] in (" ", "["):
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
    if (
        command == "mlp"
        and sys.stderr.isatty()
        and not {"-h", "--help", "--no-progress"} & {*arguments}
    ):
        _TICKER.append(_Ticker())
        _TICKER[0].start()
    try:
        return _main(arguments, command)
    finally:
        _stop_ticker()


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """A checkpoint without a digest is one ``note:`` line; other warnings as Python shows them."""
    for warning in caught:
        if warning.category.__name__ == "UnverifiedCheckpointWarning":
            print(f"note: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _stop_ticker() -> None:
    if _TICKER:
        _TICKER.pop().stop()


def _main(arguments: list[str], command: str | None) -> int:
    args = _build_parser(command).parse_args(arguments)
    if _TICKER:
        _TICKER[0].text = "preparing the data, compiling"
    prefix = f"dlvr-jax {args.command}: error:"
    try:
        try:
            with warnings.catch_warnings(record=True) as caught:
                outcome = args.run(args)
        finally:
            _stop_ticker()  # before anything else is printed
            _show_warnings(caught)
    except KeyboardInterrupt:
        print(f"{prefix} interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line, never a traceback (DLVR_JAX_DEBUG=1 shows it)
        if os.environ.get("DLVR_JAX_DEBUG", "") not in ("", "0"):
            raise
        jobs = sys.modules.get("dlvr_jax.jobs")  # not loaded: the error cannot be a mismatch
        if jobs is not None and isinstance(error, jobs.ConfigMismatch):
            print(f"{prefix} {_mismatch_line(error, args)}", file=sys.stderr)
            return 2
        expected = isinstance(error, (ValueError, TypeError, OSError))
        line = _one_line(error, args)
        detail = line if expected else f"{type(error).__name__}: {line}"
        print(f"{prefix} {detail}", file=sys.stderr)
        return 2 if expected else 1
    if outcome.document.get("label_note"):  # the class labels were mapped to 0..k-1
        print(f"note: {outcome.document['label_note']}", file=sys.stderr)
    print(json.dumps(outcome.document, indent=2) if args.json else outcome.report)
    if outcome.error is not None:
        print(f"{prefix} {outcome.error}", file=sys.stderr)
    return outcome.status
