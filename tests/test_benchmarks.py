"""Smoke test of the benchmark suite: ``python -m benchmarks --quick``, on tiny sizes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

# The benchmark suite end to end, against its peers: tox -e e2e.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
PEERS = {"torch": "PyTorch", "sklearn": "scikit-learn"}


@pytest.fixture
def suite(monkeypatch):
    """``benchmarks.__main__`` with every --quick size made tiny."""
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import __main__ as suite
    from benchmarks import gridsearch, matmul, mlp, perceptron, sweep, wait

    monkeypatch.setattr(mlp, "QUICK_STEPS", 10)
    monkeypatch.setattr(mlp, "HIDDEN", (4,))  # A and B: a one-layer MLP compiles faster
    for name, value in [("QUICK_SEEDS", 2), ("QUICK_RATES", 1), ("QUICK_EPOCHS", 5)]:
        monkeypatch.setattr(sweep, name, value)
    monkeypatch.setattr(sweep, "QUICK_TORCH_MODELS", 1)
    monkeypatch.setattr(perceptron, "QUICK_LARGE", 2000)
    monkeypatch.setattr(perceptron, "QUICK_DATASETS", 8)
    monkeypatch.setattr(perceptron, "QUICK_STRAGGLER_EVERY", 4)
    monkeypatch.setattr(perceptron, "QUICK_MAX_EPOCHS", 20)
    monkeypatch.setattr(matmul, "SUITE_QUICK_SIZES", (32,))
    monkeypatch.setattr(matmul, "SUITE_QUICK_BATCHED", ((2, 32),))
    monkeypatch.setattr(matmul, "SUITE_QUICK_TIMING", (0.001, 0.0))
    monkeypatch.setattr(wait, "QUICK_EPOCHS", 5)
    for name, value in [("QUICK_EPOCHS", 2), ("HIDDEN", (4,)), ("RATES", (1e-2,)), ("FOLDS", 2)]:
        monkeypatch.setattr(gridsearch, name, value)
    return suite


def test_quick_suite_writes_both_tables_with_every_workload(suite, tmp_path, capsys):
    # E (the user's wait) starts several fresh processes: tox -e bench runs it.
    status = suite.main(["A", "B", "C", "D", "--quick", "--repeats", "1", "--out", str(tmp_path)])
    assert status == 0
    table = (tmp_path / "results.md").read_text()
    document = json.loads((tmp_path / "results.json").read_text())
    assert capsys.readouterr().out.strip() == table.strip()
    keys = [w["key"] for w in document["workloads"]]
    assert keys == ["A", "B", "C", "D"]
    for heading in ("## Targets", "## A: seed MLP", "## B: 256-model sweep", "## C: perceptron",
                    "## D: matrix multiplication"):  # fmt: skip
        assert heading in table
    assert document["meta"]["quick"] is True
    rows = [row for w in document["workloads"] for row in w["rows"]]
    assert not [row for row in rows if row["status"] == "failed"]
    for method in ("dlvr_jax train.fit", "dlvr_jax fit", "dlvr_jax fit_batched (auto)"):
        mine = [row for row in rows if row["method"] == method]
        assert mine, method
        for row in mine:
            assert row["status"] == "ok"
            assert row["first_call_seconds"] > 0
            assert row["run_seconds"] > 0
            assert len(row["samples"]) == 1
    sweep_row = next(row for row in rows if row["method"] == "dlvr_jax parallel.sweep")
    assert sweep_row["status"] in ("ok", "not available")
    # A peer is measured when importable and reported as skipped, with the reason, otherwise.
    for module, label in PEERS.items():
        theirs = [row for row in rows if row["method"].startswith(label)]
        assert theirs, label
        if importlib.util.find_spec(module) is None:
            assert all(row["status"] == "skipped" for row in theirs)
            assert all("not importable" in row["reason"] for row in theirs)
        else:
            assert all(row["status"] == "ok" and row["run_seconds"] > 0 for row in theirs)
    perceptron_rows = [row for row in rows if row["workload"] == "C" and "equals fit" in str(row)]
    assert all(row["details"]["equals fit per dataset"] for row in perceptron_rows)


def test_grid_search_workload_times_both_libraries(suite, tmp_path):
    # Not in the run above: its "compile included" row compiles on every call.
    pytest.importorskip("sklearn")
    assert suite.main(["gridsearch", "--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    (workload,) = json.loads((tmp_path / "results.json").read_text())["workloads"]
    assert workload["key"] == "F"
    methods = [row["method"] for row in workload["rows"]]
    assert methods == [
        "dlvr_jax estimators.MLPClassifier (compile included)",
        "dlvr_jax estimators.MLPClassifier (compiled)",
        "scikit-learn MLPClassifier",
    ]
    for row in workload["rows"]:
        assert row["status"] == "ok"
        assert row["run_seconds"] > 0
        assert 0.5 < row["details"]["best mean CV accuracy"] <= 1.0
    assert workload["targets"][0]["met"] is None  # --quick measures no target


def test_a_missing_peer_is_skipped_with_its_reason(suite, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    assert suite.main(["A", "--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "results.json").read_text())
    (workload,) = document["workloads"]
    torch_rows = [row for row in workload["rows"] if row["method"].startswith("PyTorch")]
    assert [row["status"] for row in torch_rows] == ["skipped"]
    assert "torch is not importable" in torch_rows[0]["reason"]
    assert "skipped: torch is not importable" in (tmp_path / "results.md").read_text()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--repeats", "2"], "--repeats must be >= 5"),
        (["--quick", "--repeats", "0"], "--repeats must be >= 5"),
        (["Z"], "unknown workload 'Z'"),
    ],
)
def test_bad_arguments_exit_2(suite, arguments, message, capsys):
    assert suite.main(arguments) == 2
    assert message in capsys.readouterr().err
