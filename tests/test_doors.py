"""The doors agree (issue 18, item 5): one table of cases, run against every door.

The same small CSV and the same way of asking for the hidden layers go through
the command line (:func:`dlvr_jax.cli.main`, in-process), the Playground's
session (an upload, then one training step) and the scikit-learn estimator
(:class:`dlvr_jax.estimators.MLPClassifier`). Each door must give the same
answer: a one-class target is refused, string labels are accepted with their
names kept, labels that are not ``0..k-1`` are mapped (and the command line
says so on stderr), an empty hidden-layer text is refused and no hidden layer
is asked for explicitly (``--hidden none``, ``"hidden": []``, ``hidden=()``).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import numpy as np
import pytest

from dlvr_jax import cli


class Case(NamedTuple):
    """One row of the table: the data, the hidden layers asked for, and the one answer.

    Attributes:
        labels: the target column, one label per row of the CSV.
        hidden: ``"4"`` (one layer of 4), ``""`` (an empty text) or ``"none"`` (no
            hidden layer, asked for explicitly); each door spells it its own way.
        refused: a text the refusal's message contains, or None when the door trains.
        names: the class names the door reports (index = the label it trains on).
        layers: the number of hidden layers of the trained model.
        note: what the command line says on stderr about the labels (None: nothing).
    """

    labels: list[Any]
    hidden: str = "4"
    refused: str | None = None
    names: tuple[str, ...] | None = None
    layers: int | None = None
    note: str | None = None


CASES = {
    "one-class target": Case([1] * 12, refused="class"),
    "string labels": Case(
        ["setosa", "virginica"] * 6,
        names=("setosa", "virginica"),
        layers=1,
        note="note: class labels ['setosa', 'virginica'] mapped to 0..1",
    ),
    "labels 1..3": Case(
        [1, 2, 3] * 4,
        names=("1", "2", "3"),
        layers=1,
        note="note: class labels [1, 2, 3] mapped to 0..2",
    ),
    "empty hidden": Case([0, 1] * 6, hidden="", refused="hidden"),
    "no hidden layer, asked for": Case([0, 1] * 6, hidden="none", names=("0", "1"), layers=0),
}


def _csv(case: Case) -> str:
    rows = [
        f"{(i % 4) / 4:.2f},{(i * 5 % 12) / 12:.4f},{label}" for i, label in enumerate(case.labels)
    ]
    return "x1,x2,y\n" + "\n".join(rows) + "\n"


class Outcome(NamedTuple):
    """What a door answered: a refusal's message, or what it trained."""

    refused: str | None
    names: tuple[str, ...] | None = None
    layers: int | None = None
    note: str | None = None


# ----------------------------------------------------------------------------
# The three doors.


def _cli(case: Case, tmp_path: Any, capsys: Any) -> Outcome:
    path = tmp_path / "case.csv"
    path.write_text(_csv(case))
    argv = [
        "mlp", "--data", str(path), "--hidden", case.hidden, "--epochs", "2",
        "--test-fraction", "0.25", "--json", "--no-cache", "--no-progress",
        "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    try:
        status = cli.main(argv)
    except SystemExit as stop:  # argparse refuses a bad flag value
        status = int(stop.code or 0)
    out, err = capsys.readouterr()
    if status != 0:
        assert status == 2, err
        assert err.count("\n") == 1, err
        return Outcome(refused=err)
    metrics = json.loads(out)
    names = tuple(metrics.get("classes") or map(str, range(metrics["n_outputs"])))
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    return Outcome(None, names, len(metrics["hidden"]), notes[0] if notes else None)


def _playground(case: Case, tmp_path: Any, capsys: Any) -> Outcome:
    from dlvr_jax.playground import protocol
    from dlvr_jax.playground.session import Session

    hidden: Any = {"4": [4], "": "", "none": []}[case.hidden]
    session = Session({"points": 50, "hidden": [2]}, precompile=False)
    try:
        frames = session.handle({"type": "upload", "name": "case.csv", "csv": _csv(case)})
        change = {"type": "config", "config": {"hidden": hidden}}
        session.handle(protocol.parse_message(json.dumps(change)))
    except protocol.ProtocolError as error:
        return Outcome(refused=str(error))
    upload = frames[0]
    names = upload.get("classNames") or [str(i) for i in range(upload["classes"])]
    session.handle({"type": "step"})
    assert session.epoch == 1
    return Outcome(None, tuple(names), len(session.config["hidden"]))


def _estimator(case: Case, tmp_path: Any, capsys: Any) -> Outcome:
    from dlvr_jax import estimators

    rows = [line.split(",") for line in _csv(case).splitlines()[1:]]
    x = np.array([[float(a), float(b)] for a, b, _ in rows], np.float32)
    y = np.array(case.labels)
    hidden: Any = {"4": (4,), "": "", "none": ()}[case.hidden]
    try:
        model = estimators.MLPClassifier(hidden=hidden, epochs=2, random_state=0).fit(x, y)
    except (ValueError, TypeError) as error:
        return Outcome(refused=str(error))
    names = tuple(str(label) for label in model.classes_)
    return Outcome(None, names, len(model.params_["params"]) - 1)


DOORS = {"cli": _cli, "playground": _playground, "estimators": _estimator}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("door", DOORS)
def test_the_doors_agree(door, name, tmp_path, capsys):
    case = CASES[name]
    outcome = DOORS[door](case, tmp_path, capsys)
    if case.refused is not None:
        assert outcome.refused is not None, f"{door} accepted {name}: {outcome}"
        assert case.refused in outcome.refused.lower(), outcome.refused
        return
    assert outcome.refused is None, f"{door} refused {name}: {outcome.refused}"
    assert (outcome.names, outcome.layers) == (case.names, case.layers)
    if door == "cli":  # the one door that reports on stderr
        assert outcome.note == case.note
