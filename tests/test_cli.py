"""Tests of the dlvr-jax command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import image

from dlvr_jax import cli


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_perceptron_converges_on_the_chapter_data(tmp_path, capsys):
    status, out, err = run(capsys, "perceptron", "--out", str(tmp_path))
    assert status == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["dataset"] == "linear"
    assert metrics["n"] == 200
    assert metrics["converged"] is True
    assert metrics["accuracy"] == 1.0
    assert metrics["updates"] <= metrics["novikoff_bound"]
    assert sum(metrics["mistakes_per_epoch"]) == metrics["updates"]
    assert len(metrics["mistakes_per_epoch"]) == metrics["epochs"]
    assert "learned weights: w = [" in out
    assert f"converged after {metrics['epochs']} epochs ({metrics['updates']} updates)" in out
    assert "training accuracy: 100.0%" in out
    picture = image.imread(tmp_path / "perceptron.png")
    assert picture.shape[:2] == (800, 800)  # the chapter's 800 x 800 figure
    assert picture[..., :3].std() > 0.05  # not blank


def test_perceptron_figure_regions_match_the_weights(tmp_path, capsys):
    run(capsys, "perceptron", "--out", str(tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    w, b = np.array(metrics["weights"]), metrics["bias"]
    picture = image.imread(tmp_path / "perceptron.png")[..., :3]
    # Pixels near the corners (-1.4, -1.4) and (1.4, 1.4) of the plotted window
    # hold no data point: the corner where w.x + b > 0 must be red, the other blue.
    low, high = picture[740, 75], picture[40, 780]
    assert w @ np.array([1.4, 1.4]) + b > 0 > w @ np.array([-1.4, -1.4]) + b
    assert high[0] > high[2]
    assert low[2] > low[0]


def test_perceptron_on_xor_reports_no_convergence_and_the_pocket(tmp_path, capsys):
    status, out, _ = run(
        capsys, "perceptron", "--dataset", "xor", "--max-epochs", "50", "--out", str(tmp_path)
    )
    assert status == 0
    assert "did NOT converge within 50 epochs" in out
    assert "pocket accuracy:" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["converged"] is False
    assert metrics["pocket"]["accuracy"] >= metrics["accuracy"]
    assert (tmp_path / "perceptron.png").exists()


def test_json_output_is_the_metrics_file(tmp_path, capsys):
    status, out, _ = run(
        capsys,
        "perceptron",
        "--n",
        "50",
        "--seed",
        "3",
        "--pocket",
        "--json",
        "--out",
        str(tmp_path),
    )
    assert status == 0
    printed = json.loads(out)
    assert printed == json.loads((tmp_path / "metrics.json").read_text())
    assert printed["pocket"]["accuracy"] == 1.0
    assert printed["seed"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["perceptron", "--n", "-5"], "argument --n: expected an integer >= 1, got '-5'"),
        (["perceptron", "--n", "ten"], "argument --n: expected an integer >= 1, got 'ten'"),
        (["perceptron", "--learning-rate", "0"], "argument --learning-rate: expected a number > 0"),
        (["perceptron", "--max-epochs", "0"], "argument --max-epochs: expected an integer >= 1"),
        (["perceptron", "--dataset", "ring"], "argument --dataset: invalid choice: 'ring'"),
        (["perceptron", "--dataset", "plane"], "argument --dataset: invalid choice: 'plane'"),
        (["perceptron", "--noise", "-1"], "argument --noise: expected a number >= 0"),
        (["perceptron", "--seed", "-1"], "argument --seed: expected an integer in [0, 2**32)"),
        (["perceptron", "--bogus"], "unrecognized arguments: --bogus"),
        (["fly"], "argument COMMAND: invalid choice: 'fly'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1, err
    assert message in err


def test_library_errors_exit_2_with_one_line(capsys, tmp_path):
    status, _, err = run(
        capsys, "perceptron", "--dataset", "circle", "--margin", "0.2", "--out", str(tmp_path)
    )
    assert status == 2
    assert err == "dlvr-jax perceptron: error: --margin applies only to --dataset linear\n"


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["perceptron", "--help"])
    assert exit_info.value.code == 0
    out, _ = capsys.readouterr()
    for option in (
        "--dataset",
        "--n",
        "--seed",
        "--noise",
        "--margin",
        "--learning-rate",
        "--max-epochs",
        "--pocket",
        "--out",
        "--json",
    ):
        assert option in out
    for name in ("linear", "xor", "circle", "moons", "spiral", "gaussian"):
        assert name in out


def test_python_dash_m_runs_the_same_cli(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlvr_jax",
            "perceptron",
            "--n",
            "30",
            "--json",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["n"] == 30


@pytest.mark.skipif(shutil.which("dlvr-jax") is None, reason="dlvr-jax is not installed")
def test_console_script_is_installed():
    done = subprocess.run(["dlvr-jax", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("dlvr-jax ")
