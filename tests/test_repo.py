"""Repository invariants: README's quick start and CI stay in step, and leave the clone clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

QUICK_START_OUTPUTS = (
    "decision_boundary.png",
    "loss_curve.png",
    "gradient_heatmap.png",
    "neuron_maps.png",
    "metrics.json",
    "perceptron.png",
)
"""What ``dlvr-jax mlp`` and ``dlvr-jax perceptron`` write into the repository root."""


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_readme_quick_start_is_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
    assert commands[0].endswith("dlvr-jax mlp")


@pytest.mark.skipif(not (ROOT / ".ci" / "run").exists(), reason="no .ci/run in this tree")
def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _quick_start_commands()[1]
    assert test_command in (ROOT / ".ci" / "run").read_text()


@pytest.mark.e2e
def test_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    check = "\nassert bool(fits.converged.all()) and float(history.test_accuracy[-1]) >= 0.97\n"
    subprocess.run(
        [sys.executable, "-c", code + check],
        cwd=tmp_path,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert (tmp_path / "loss_curve.png").exists()
    assert (tmp_path / "perceptron.png").exists()


def _check_ignore(*paths: str) -> set[str]:
    """The ``paths`` that git ignores in this checkout (``git check-ignore``)."""
    result = subprocess.run(
        ["git", "check-ignore", "--", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode in (0, 1), result.stderr  # 1: none of them is ignored
    return set(result.stdout.split())


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
def test_the_quick_start_leaves_git_status_clean_and_docs_figures_tracked():
    assert _check_ignore(*QUICK_START_OUTPUTS) == set(QUICK_START_OUTPUTS)
    # Ignored at the root only: the same names elsewhere (the docs' figures) stay tracked.
    elsewhere = [f"docs/_static/{name}" for name in QUICK_START_OUTPUTS]
    screenshots = [f"docs/_static/playground/{name}.png" for name in ("playground", "sweep")]
    assert _check_ignore(*elsewhere, *screenshots) == set()
