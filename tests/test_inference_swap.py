"""The service layer is inference.py alone: the README's "The service layer" as a test.

A multiclass bake (the example's richest form: ids echoed back, one record without a wrapper, a
decision from settings and the top three classes) gets the README's example pasted between the
fences of its inference.py, and nothing else changes. Then the file is ruff-clean and the bake's
own fast serving and endpoint-check tests pass against it: the suite follows what the user wrote
(the fuzz runs through the new functions, the commented defaults' test steps aside).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import TEMPLATE, lock_venv, summary_counts

pytestmark = pytest.mark.slow

FENCE_OPEN, FENCE_CLOSE = "# ---- REPLACE THIS WITH YOUR OWN CODE ----", "# ----"
MARKER = "<!-- inference.py example -->"
TESTS = [
    "tests/runtime/test_serving.py",
    "tests/runtime/test_serving_fuzz.py",
    "tests/runtime/test_serving_csv_fast_path.py",
    "tests/runtime/test_serving_answer_text.py",
    "tests/runtime/test_inference.py",
    "tests/runtime/test_inference_example.py",
    "tests/emulator/test_endpoint_check.py",
]
# What the endpoint-check tests need besides the image's lock: moto (the control plane) and the
# fuzz's hypothesis; not the SageMaker SDK or Docker.
NOT_NEEDED = ("sagemaker", "docker", "waitress")


def readme_example(readme: str) -> str:
    block = re.search(r"```python\n(.*?)```", readme[readme.index(MARKER) :], re.DOTALL)
    assert block, f"no ```python block after {MARKER} in the README"
    return block.group(1)


def paste(inference: str, code: str) -> str:
    lines = inference.splitlines()
    start = lines.index(FENCE_OPEN)
    end = lines.index(FENCE_CLOSE, start + 1)
    return "\n".join([*lines[: start + 1], *code.rstrip("\n").splitlines(), "", "", *lines[end:]]) + "\n"


def extra_dependencies(project: Path) -> list[str]:
    extras = tomllib.loads((project / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    local = [d for d in extras["local"] if not d.startswith(NOT_NEEDED)]
    return [*local, *(d for d in extras["dev"] if d.startswith("hypothesis"))]


@pytest.fixture(scope="module")
def customised(tmp_path_factory) -> tuple[Path, Path]:
    from cookiecutter.main import cookiecutter

    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path_factory.mktemp("service")),
            extra_context={"problem_type": "multiclass", "model_library": "scikit-learn"},
        )
    )
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    inference = project / "src" / project.name.replace("-", "_") / "inference.py"
    inference.write_text(paste(inference.read_text(), readme_example((project / "README.md").read_text())))
    changed = [p for p in project.rglob("*") if p.is_file() and before.get(p) != p.read_bytes()]
    assert changed == [inference]
    venv = lock_venv(project, tmp_path_factory.mktemp("venv"))
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", *extra_dependencies(project)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return project, venv


def test_the_pasted_inference_py_is_clean(customised) -> None:
    project, _ = customised
    for args in (["check"], ["format", "--check"]):
        ruff = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--no-cache", "src"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_the_fast_serving_and_endpoint_check_tests_pass_against_it(customised) -> None:
    project, venv = customised
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "-m", "not docker and not slow", *TESTS],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    counts = summary_counts(result.stdout)
    assert counts.get("passed", 0) >= 130 and not counts.get("failed") and not counts.get("error"), counts
    # The suite followed the edit: the commented defaults are gone, and the fuzz ran the new functions.
    assert "the commented defaults are gone" in result.stdout
    assert counts.get("skipped") == 1, result.stdout[-3000:]
