"""Repository invariants: README's quick start and CI stay in step."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
