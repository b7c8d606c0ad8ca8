"""Tests of the dlvr-jax command line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import image

from dlvr_jax import cli

# The command line end to end (files, exit codes, fresh processes): tox -e e2e.
pytestmark = pytest.mark.e2e


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
        # The text's syntax is the command line's; each value's rule is its config's table.
        (["perceptron", "--n", "-5"], "--n must be an int in [1, inf), got -5"),
        (["perceptron", "--n", "ten"], "argument --n: expected an integer, got 'ten'"),
        (["perceptron", "--learning-rate", "0"], "--learning-rate must be a float in (0, inf)"),
        (["perceptron", "--max-epochs", "0"], "--max-epochs must be an int in [1, inf), got 0"),
        (["perceptron", "--dataset", "ring"], "argument --dataset: invalid choice: 'ring'"),
        (["perceptron", "--dataset", "plane"], "argument --dataset: invalid choice: 'plane'"),
        (["perceptron", "--noise", "-1"], "--noise must be a float in [0, inf), got -1.0"),
        (["perceptron", "--seed", "-1"], "--seed must be an int in [0, 4294967295], got -1"),
        (["perceptron", "--bogus"], "unrecognized arguments: --bogus"),
        (["mlp", "--hidden", "8,x"], "argument --hidden: expected comma-separated widths"),
        (["mlp", "--hidden", "8,0"], "--hidden[1] must be an int in [1, inf), got 0"),
        (["mlp", "--hidden", ""], "argument --hidden: expected comma-separated widths such as"),
        (["mlp", "--activation", "relu6"], "argument --activation: invalid choice: 'relu6'"),
        (["mlp", "--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
        (["mlp", "--test-fraction", "1"], "--test-fraction must be a float in (0, 1), got 1.0"),
        (["mlp", "--epochs", "0"], "--epochs must be an int in [1, inf), got 0"),
        (["compare-activations", "--activations", "relu,nope"], "--activations[1] must be one of"),
        (["fly"], "argument COMMAND: invalid choice: 'fly'"),
        (["sweep", "--learning-rates", "1e-4:1e-1"], "expected LOW:HIGH:COUNT"),
        (["sweep", "--learning-rates", "1e-1:1e-4:4"], "expected 0 < LOW <= HIGH"),
        (
            ["sweep", "--learning-rates", "0,1e-2"],
            "--learning-rates[0] must be a float in (0, inf)",
        ),
        (["sweep", "--learning-rates", ""], "argument --learning-rates: expected comma-separated"),
        (["sweep", "--batch-sizes", "32,0"], "--batch-sizes[1] must be an int in [1, inf), got 0"),
        (["sweep", "--seeds", "0"], "--seeds must be an int in [1, inf), got 0"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path, argv, message):
    try:
        status = cli.main([*argv, "--out", str(tmp_path)] if argv[0] != "fly" else argv)
    except SystemExit as stop:  # argparse: the text does not read
        status = stop.code
    assert status == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1, err
    assert message in err
    assert not any(tmp_path.iterdir())  # refused before anything ran


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


# ---------------------------------------------------------------------------
# dlvr-jax mlp and compare-activations.

MLP_FILES = (
    "decision_boundary.png",
    "loss_curve.png",
    "gradient_heatmap.png",
    "neuron_maps.png",
    "metrics.json",
)


@pytest.fixture(autouse=True)
def _no_user_cache(monkeypatch):
    """Keep in-process CLI runs from writing to the user's compilation cache."""
    monkeypatch.setenv("DLVR_JAX_NO_CACHE", "1")


def test_mlp_defaults_are_the_chapter_program(tmp_path, capsys):
    status, out, err = run(capsys, "mlp", "--out", str(tmp_path))
    assert status == 0, err
    for name in MLP_FILES:
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["dataset"] == "circle"
    assert metrics["n"] == 1000
    assert metrics["hidden"] == [8, 8, 8, 8, 8]
    assert metrics["activation"] == "relu"
    assert metrics["optimizer"] == "adam"
    assert metrics["learning_rate"] == 1e-3
    assert metrics["epochs"] == 2000
    assert metrics["steps"] == 2000
    assert metrics["parameters"] == 330
    assert metrics["test_accuracy"] >= 0.97
    assert "test accuracy:" in out
    assert "train accuracy:" in out
    assert image.imread(tmp_path / "decision_boundary.png").shape[:2] == (800, 800)
    assert image.imread(tmp_path / "loss_curve.png").shape[:2] == (600, 800)


SMALL = ("--n", "200", "--epochs", "40", "--hidden", "8,8")


def test_mlp_checkpoint_and_resume_equal_one_run(tmp_path, capsys):
    whole, first, rest = tmp_path / "whole", tmp_path / "first", tmp_path / "rest"
    ckpt = str(tmp_path / "state.msgpack")
    assert run(capsys, "mlp", *SMALL, "--batch-size", "50", "--out", str(whole), "--json")[0] == 0
    argv = ["mlp", "--n", "200", "--hidden", "8,8", "--batch-size", "50"]
    assert run(capsys, *argv, "--epochs", "15", "--checkpoint", ckpt, "--out", str(first))[0] == 0
    assert run(capsys, *argv, "--epochs", "40", "--resume", ckpt, "--out", str(rest))[0] == 0
    a = json.loads((whole / "metrics.json").read_text())
    b = json.loads((rest / "metrics.json").read_text())
    for field in ("epochs", "steps", "train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        assert a[field] == b[field], field


def test_mlp_regression_dataset(tmp_path, capsys):
    status, out, err = run(capsys, "mlp", "--dataset", "plane", *SMALL, "--out", str(tmp_path))
    assert status == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["loss"] == "mse"
    assert metrics["train_accuracy"] is None
    assert "train accuracy" not in out


def test_compare_activations(tmp_path, capsys):
    status, out, err = run(
        capsys, "compare-activations", *SMALL, "--activations", "relu,tanh", "--out", str(tmp_path)
    )
    assert status == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert list(metrics["results"]) == ["relu", "tanh"]
    assert (tmp_path / "activation_comparison.png").stat().st_size > 0
    assert "relu: train loss" in out
    assert "tanh: train loss" in out


def test_mlp_batch_size_larger_than_the_training_set(capsys, tmp_path):
    status, _, err = run(capsys, "mlp", "--n", "100", "--batch-size", "500", "--out", str(tmp_path))
    assert status == 2
    assert err.startswith("dlvr-jax mlp: error: --batch-size must be at most the training set")


def test_second_cli_run_hits_the_persistent_compilation_cache(tmp_path):
    cache = tmp_path / "cache"
    environment = dict(os.environ, DLVR_JAX_CACHE_DIR=str(cache), DLVR_JAX_NO_CACHE="")
    command = [sys.executable, "-m", "dlvr_jax", "mlp", *SMALL, "--json", "--no-progress"]
    first = subprocess.run(
        [*command, "--out", str(tmp_path / "a")],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(first.stdout)["compilation_cache"] == str(cache)
    entries = sorted(p.name for p in cache.iterdir())
    assert entries, "the first run stored nothing in the cache"
    subprocess.run(
        [*command, "--out", str(tmp_path / "b")],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(p.name for p in cache.iterdir()) == entries  # all hits: nothing new
    opted_out = subprocess.run(
        [*command, "--no-cache", "--out", str(tmp_path / "c")],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(opted_out.stdout)["compilation_cache"] is None


def test_an_unwritable_out_folder_exits_2_with_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    status, _, err = run(capsys, "perceptron", "--n", "20", "--out", str(blocker))
    assert status == 2
    assert err.startswith("dlvr-jax perceptron: error:")
    assert err.count("\n") == 1


def test_resume_from_a_missing_checkpoint_exits_2(tmp_path, capsys):
    status, _, err = run(
        capsys, "mlp", *SMALL, "--resume", str(tmp_path / "missing.msgpack"), "--out", str(tmp_path)
    )
    assert status == 2
    assert "no checkpoint at" in err


def test_progress_bar_draws_on_a_terminal(monkeypatch, capsys):
    import argparse

    from dlvr_jax import train

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    options = cli._progress(argparse.Namespace(no_progress=False), "training", 200)
    assert options["chunk_epochs"] == 4
    bar = options["progress"]
    history = train.History(np.array([0.5, 0.25]), np.array([0.5, 0.75]), None, None, {}, None)
    bar(100, 200, history)
    bar(200, 200, history)
    err = capsys.readouterr().err
    assert "\rtraining [###############...............] 100/200 epochs loss 0.2500" in err
    assert err.endswith("\n")
    assert cli._progress(argparse.Namespace(no_progress=True), "training", 200) == {}
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert cli._progress(argparse.Namespace(no_progress=False), "training", 200) == {}


def test_sweep_writes_the_heatmap_and_the_table(tmp_path, capsys):
    status, out, err = run(
        capsys,
        "sweep",
        "--learning-rates",
        "1e-3:1e-1:3",
        "--batch-sizes",
        "50,1000",
        "--seeds",
        "2",
        "--epochs",
        "4",
        "--n",
        "200",
        "--out",
        str(tmp_path),
    )
    assert status == 0, err
    assert "12 models (3 learning rates x batch sizes [50, 160] x 2 seeds)" in out
    assert "batch size 50: 6 models" in err  # one compiled program per batch size
    lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("model,batch_size,learning_rate,l1,l2,seed,")
    assert len(lines) == 1 + 12
    table = json.loads((tmp_path / "sweep.json").read_text())
    rows = table["rows"]
    assert {r["batch_size"] for r in rows} == {50, 160}
    assert sorted({round(r["learning_rate"], 6) for r in rows}) == [1e-3, 1e-2, 1e-1]
    assert {r["seed"] for r in rows} == {0, 1}
    assert all(0 <= r["test_accuracy"] <= 1 for r in rows)
    best = table["best"]
    means = [
        np.mean(
            [
                r["test_accuracy"]
                for r in rows
                if r["learning_rate"] == best["learning_rate"]
                and r["batch_size"] == best["batch_size"]
            ]
        )
    ]
    assert best["test_accuracy_mean"] == pytest.approx(means[0])
    assert best["test_accuracy_mean"] == pytest.approx(max(
        np.mean([r["test_accuracy"] for r in rows if (r["learning_rate"], r["batch_size"]) == k])
        for k in {(r["learning_rate"], r["batch_size"]) for r in rows}
    ))  # fmt: skip
    picture = image.imread(tmp_path / "sweep_heatmap.png")
    assert picture[..., :3].std() > 0.05


def test_sweep_rejects_a_regression_dataset(tmp_path, capsys):
    status, _, err = run(capsys, "sweep", "--dataset", "plane", "--out", str(tmp_path))
    assert status == 2
    assert "regression" in err


def test_bench_outside_a_checkout_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    monkeypatch.delitem(sys.modules, "benchmarks", raising=False)
    monkeypatch.delitem(sys.modules, "benchmarks.__main__", raising=False)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if os.path.abspath(p) != repo])
    assert cli.main(["bench", "--quick"]) == 2
    assert "run this command from the repository checkout" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# The user's own data, divergence, resume checks, --json, and a light import.


def write_csv(path, rows, header="x1,x2,label"):
    lines = ([header] if header else []) + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def blobs(n=90, classes=3, seed=0):
    """``classes`` separated clusters in the plane, labels 0..classes-1."""
    rng = np.random.default_rng(seed)
    centres = np.array([[1.5, 0.0], [-1.5, 1.0], [0.0, -1.5]])[:classes]
    labels = np.arange(n) % classes
    points = centres[labels] + 0.3 * rng.normal(size=(n, 2))
    return [(f"{a:.5f}", f"{b:.5f}", int(c)) for (a, b), c in zip(points, labels, strict=True)]


def test_mlp_trains_on_a_csv_with_its_classes(tmp_path, capsys):
    path = write_csv(tmp_path / "blobs.csv", blobs())
    out = tmp_path / "out"
    status, stdout, err = run(
        capsys, "mlp", "--data", path, "--epochs", "60", "--learning-rate", "0.05",
        "--hidden", "8", "--out", str(out),
    )  # fmt: skip
    assert status == 0, err
    for name in MLP_FILES:
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == path
    assert metrics["n_outputs"] == 3  # from the labels
    assert metrics["n"] == 90
    assert metrics["task"] == "classification"
    assert metrics["test_accuracy"] >= 0.9
    assert f"dataset: {path} (n=90, seed=0, classification)" in stdout


def test_mlp_task_flag_makes_labels_regression_targets(tmp_path, capsys):
    path = write_csv(tmp_path / "blobs.csv", blobs(classes=2))
    status, stdout, err = run(
        capsys, "mlp", "--data", path, "--task", "regression", "--epochs", "5", "--json",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert status == 0, err
    metrics = json.loads(stdout)
    assert (metrics["loss"], metrics["n_outputs"], metrics["train_accuracy"]) == ("mse", 1, None)


def test_perceptron_compare_and_sweep_accept_a_csv(tmp_path, capsys):
    two = write_csv(tmp_path / "two.csv", blobs(n=40, classes=2))
    status, stdout, err = run(capsys, "perceptron", "--data", two, "--out", str(tmp_path / "p"))
    assert status == 0, err
    assert "training accuracy: 100.0%" in stdout
    assert (tmp_path / "p" / "perceptron.png").exists()
    status, stdout, err = run(
        capsys, "compare-activations", "--data", two, "--activations", "relu,tanh",
        "--epochs", "5", "--hidden", "4", "--json", "--out", str(tmp_path / "c"),
    )  # fmt: skip
    assert status == 0, err
    assert list(json.loads(stdout)["results"]) == ["relu", "tanh"]
    status, stdout, err = run(
        capsys, "sweep", "--data", two, "--learning-rates", "1e-2", "--batch-sizes", "8",
        "--seeds", "2", "--epochs", "2", "--hidden", "4", "--json", "--out", str(tmp_path / "s"),
    )  # fmt: skip
    assert status == 0, err
    assert json.loads(stdout)["models"] == 2
    assert (tmp_path / "s" / "sweep.csv").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("x1,x2,y\n0.1,0.2,1\n0.3,oops,0\n", "bad.csv:3:2: column 2 is not a number: 'oops'"),
        ("x1,x2,y\n0.1,0.2,1\n0.3,0.4\n", "bad.csv:3:3: expected 3 columns, got 2"),
        ("x1,x2,y\n", "no data rows"),
        ("x1,x2,y\n0.1,0.2,1\n0.3,0.4,1\n", "bad.csv:2:3: column 3 (y) holds one class, '1'"),
        ("x1,x2,y\n0.1,nan,1\n0.3,0.4,0\n", "bad.csv:2:2: column 2 is not a finite number: 'nan'"),
    ],
)
def test_a_bad_csv_is_one_line_naming_the_file(tmp_path, capsys, content, message):
    (tmp_path / "bad.csv").write_text(content)
    status, stdout, err = run(
        capsys, "mlp", "--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "out")
    )
    assert status == 2
    assert stdout == ""
    assert err.count("\n") == 1, err
    assert err.startswith("dlvr-jax mlp: error: ")
    assert message in err
    assert not (tmp_path / "out").exists()


def test_a_missing_csv_and_task_without_data(tmp_path, capsys):
    status, _, err = run(capsys, "perceptron", "--data", str(tmp_path / "none.csv"))
    assert status == 2
    assert err == f"dlvr-jax perceptron: error: {tmp_path / 'none.csv'}: no such file\n"
    status, _, err = run(capsys, "mlp", "--task", "regression", "--out", str(tmp_path))
    assert (status, err) == (2, "dlvr-jax mlp: error: --task applies only with --data PATH.csv\n")
    with pytest.raises(SystemExit):
        cli.main(["mlp", "--data", "a.csv", "--dataset", "xor"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_divergence_exits_1_with_one_line_and_keeps_the_good_epochs(tmp_path, capsys):
    status, stdout, err = run(
        capsys, "mlp", "--learning-rate", "1e6", "--epochs", "50", "--out", str(tmp_path)
    )
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    found = re.fullmatch(
        r"dlvr-jax mlp: error: training diverged at epoch (\d+) \((loss|parameters) became "
        r"(nan|inf)\); lower --learning-rate or set --clip-norm",
        lines[0],
    )
    assert found, lines[0]
    epoch = int(found.group(1))
    for name in MLP_FILES:
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"] == epoch - 1
    assert metrics["diverged"]["epoch"] == epoch
    assert f"the files hold the run up to epoch {epoch - 1}, the last good one" in stdout
    good = epoch - 1
    assert f"trained {good} epoch{'' if good == 1 else 's'} (" in stdout
    assert not re.search(r"\b1 (epochs|steps)\b", stdout), stdout  # was "1 epochs (1 steps)"
    assert "Traceback" not in err


def test_clip_norm_is_recorded(tmp_path, capsys):
    status, stdout, err = run(capsys, "mlp", *SMALL, "--clip-norm", "0.5", "--json", "--out",
                              str(tmp_path))  # fmt: skip
    assert status == 0, err
    assert json.loads(stdout)["clip_norm"] == 0.5


def test_resume_refuses_a_checkpoint_of_another_setup(tmp_path, capsys):
    ckpt = str(tmp_path / "c.msgpack")
    argv = ["mlp", "--n", "200", "--hidden", "8,8", "--out", str(tmp_path)]
    assert run(capsys, *argv, "--epochs", "5", "--activation", "tanh", "--checkpoint", ckpt)[0] == 0
    before = (tmp_path / "metrics.json").read_bytes()
    status, stdout, err = run(capsys, *argv, "--epochs", "10", "--resume", ckpt)
    assert status == 2
    assert stdout == ""
    assert err == (
        "dlvr-jax mlp: error: checkpoint was trained with --activation tanh, not relu; "
        "pass --force to resume anyway\n"
    )
    assert (tmp_path / "metrics.json").read_bytes() == before  # a failed run keeps what it had
    status, _, err = run(capsys, *argv, "--epochs", "10", "--resume", ckpt, "--learning-rate",
                         "0.01", "--activation", "tanh")  # fmt: skip
    assert status == 2
    assert "checkpoint was trained with --learning-rate 0.001, not 0.01;" in err
    status, _, err = run(capsys, *argv, "--epochs", "10", "--resume", ckpt, "--force")
    assert status == 0, err
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 10


def test_resume_with_nothing_left_to_train(tmp_path, capsys):
    ckpt = tmp_path / "c.msgpack"
    argv = ["mlp", *SMALL, "--out", str(tmp_path / "first")]
    assert run(capsys, *argv, "--checkpoint", str(ckpt))[0] == 0
    saved = ckpt.read_bytes()
    out = tmp_path / "second"
    for epochs in ("40", "20"):
        status, stdout, err = run(
            capsys, "mlp", "--n", "200", "--hidden", "8,8", "--epochs", epochs, "--resume",
            str(ckpt), "--checkpoint", str(ckpt), "--out", str(out),
        )  # fmt: skip
        assert status == 0, err
        assert stdout.startswith(f"nothing left to train: {ckpt} holds 40 epochs and --epochs is")
        assert "trained" not in stdout.replace("nothing left to train", "")
    assert not out.exists()
    assert ckpt.read_bytes() == saved


@pytest.mark.parametrize(
    "argv",
    [
        ["perceptron", "--n", "30"],
        ["mlp", *SMALL],
        ["compare-activations", "--n", "100", "--epochs", "3", "--activations", "relu"],
        ["sweep", "--learning-rates", "1e-2", "--batch-sizes", "50", "--seeds", "1",
         "--epochs", "2", "--n", "100"],
        ["optimize", "--steps", "50", "--optimizers", "gd,adam"],
        ["optimize", "--function", "least_squares", "--epochs", "2", "--batch-sizes", "10",
         "--learning-rate", "0.05"],
    ],
)  # fmt: skip
def test_json_prints_one_document_and_nothing_else(tmp_path, capsys, argv):
    status, stdout, err = run(capsys, *argv, "--json", "--out", str(tmp_path))
    assert status == 0, err
    document = json.loads(stdout)  # the whole of stdout is one JSON document
    assert document["command"] == argv[0]
    metrics = [p for p in document["files"] if p.endswith(("metrics.json", "sweep.json"))]
    assert metrics
    assert all(os.path.exists(p) for p in document["files"])


def test_an_unexpected_error_is_one_line_without_a_traceback(tmp_path, capsys, monkeypatch):
    from dlvr_jax import jobs

    def boom(*args, **kwargs):
        raise RuntimeError("something broke\nover two lines")

    monkeypatch.setattr(jobs, "perceptron", boom)
    status, _, err = run(capsys, "perceptron", "--out", str(tmp_path))
    assert status == 1
    assert err == "dlvr-jax perceptron: error: RuntimeError: something broke over two lines\n"


def test_a_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.msgpack").write_bytes(b"\xc1 nope")
    status, _, err = run(capsys, "mlp", *SMALL, "--resume", str(tmp_path / "bad.msgpack"),
                         "--out", str(tmp_path))  # fmt: skip
    assert status == 2
    assert err.count("\n") == 1
    assert "is not a readable checkpoint" in err


def test_help_documents_the_csv_convention(capsys):
    with pytest.raises(SystemExit):
        cli.main(["mlp", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--data PATH.csv", "target in the LAST column", "optional header", "--task",
                 "--clip-norm", "--force", "--json"):  # fmt: skip
        assert text in out, text


def test_importing_the_cli_loads_no_command_modules():
    # Measured with: python -X importtime -c "import dlvr_jax.cli"
    code = (
        "import sys, dlvr_jax.cli as c\n"
        "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ['matplotlib', 'flax', 'optax', 'dlvr_jax.viz', 'dlvr_jax.jobs',"
        " 'dlvr_jax.train', 'dlvr_jax.models', 'dlvr_jax.parallel', 'dlvr_jax.checkpoint']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_mlp_shows_its_phase_on_a_terminal_until_the_end(monkeypatch, capsys):
    # From the start until the command ends, a line on the terminal says what runs and for
    # how long, every 0.2 s: while compiling (nothing else reports then), the training bar,
    # then the figures. Here the job is a stand-in that takes its time in each phase.
    import re
    import time

    from dlvr_jax import jobs, train

    def slow_mlp(config, **options):
        time.sleep(0.7)  # preparing and compiling
        history = train.History(np.array([0.5, 0.25]), np.array([0.5, 0.75]), None, None, {}, None)
        progress = options.get("progress") or (lambda *_: None)  # none off a terminal
        progress(100, 200, history)
        time.sleep(0.5)
        progress(200, 200, history)
        time.sleep(0.5)  # drawing
        raise ValueError("stand-in done")

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(jobs, "mlp", slow_mlp)
    assert cli.main(["mlp", "--epochs", "200"]) == 2
    err = capsys.readouterr().err
    shown = re.findall(r"\r([^\r]*?) (\d+\.\d)s\x1b\[K", err)
    phases = [text for text, _ in shown]
    assert "preparing the data, compiling" in phases
    assert any(t.startswith("training [###############....") for t in phases)
    assert any(t.endswith("; drawing figures") for t in phases)
    assert float(shown[0][1]) <= 0.5  # the first line within half a second
    assert "\r\033[K" in err  # the line is cleared before the error line
    assert err.rstrip().endswith("dlvr-jax mlp: error: stand-in done")
    assert cli.main(["mlp", "--epochs", "200", "--no-progress"]) == 2
    assert capsys.readouterr().err == "dlvr-jax mlp: error: stand-in done\n"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert cli.main(["mlp", "--epochs", "200"]) == 2
    assert capsys.readouterr().err == "dlvr-jax mlp: error: stand-in done\n"
