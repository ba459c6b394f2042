"""The generated project passes its own checks, the way a user runs them: make install, lint, test.

This is the slow, honest test: a fresh virtualenv from the project's pyproject.toml, then the
project's own Makefile targets in a subprocess. Under CI=true the project's Docker-marked tests
run too (its conftest fails them when no daemon answers).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import TEMPLATE

pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    from cookiecutter.main import cookiecutter

    out = tmp_path_factory.mktemp("generated")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out)))
    result = run(["make", "install"], project, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project


def test_make_lint(installed: Path) -> None:
    result = run(["make", "lint"], installed, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_make_test(installed: Path) -> None:
    result = run(["make", "test"], installed, timeout=3600)
    print(result.stdout[-6000:])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
