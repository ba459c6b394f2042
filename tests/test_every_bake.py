"""Every bake is green on the first try: non-default bakes pass their own fast test suite (slow).

test_generated_project.py runs the default bake's whole `make test`; the option matrix checks
every bake statically and runs two in-process test files per combination. This runs a non-default
bake's own tests that depend on its problem type or library (``SUITES``), the ones that assumed
the sample's columns, labels, binary output or scikit-learn's hyperparameters: one multiclass and one regression bake, on the two libraries
other than the default, and one ranking bake on LightGBM, so each problem type and each library
is covered by some full suite.

To keep the CI cost to one install: both bakes share one virtualenv (`make install` in the first,
plus the second's pinned library). pytest puts each bake's own src/ first on sys.path
(pyproject's `pythonpath`), and PYTHONPATH does the same for the subprocesses the tests start.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import TEMPLATE, summary_counts

pytestmark = pytest.mark.slow

BAKES = {
    "multiclass-xgboost": {"problem_type": "multiclass", "model_library": "xgboost"},
    "regression-lightgbm": {"problem_type": "regression", "model_library": "lightgbm"},
    # The one ranking bake: LGBMRanker, the group column, NDCG@10's gate (issue 23).
    "ranking-lightgbm": {"problem_type": "ranking", "model_library": "lightgbm"},
}
# Which of a bake's tests run (CI time: the template's CI must stay under 45 minutes; it took 49 on
# 2026-12-07). The tests that depend on the problem type or the library: the runtime package (model,
# metrics, serving, drift, the gate), the emulator's data preparation, pipeline runs, endpoint
# checks and runtimes, the rendered definition and the deploy CLI's hyperparameters. The rest of the
# emulator (moto's corrections, shapes, IAM, blue/green), infra and CI tests read nothing of either
# and run in the default bake's `make test`. The ranking bake runs the runtime package and its data
# preparation; the ranking helper ran its whole suite green when ranking landed (1,029 passed).
PROBLEM_AND_LIBRARY_TESTS = [
    "tests/runtime",
    "tests/test_layout.py",
    "tests/emulator/test_run_data.py",
    "tests/emulator/test_pipeline.py",
    "tests/emulator/test_endpoint_check.py",
    "tests/emulator/test_inference_e2e.py",
    "tests/emulator/test_own_data.py",
    "tests/emulator/test_runtimes.py",
    "tests/emulator/test_control_plane.py",
    "tests/infra/test_asl_static.py",
    "tests/deploy/test_deploy.py",
]
SUITES = {
    "multiclass-xgboost": PROBLEM_AND_LIBRARY_TESTS,
    "regression-lightgbm": PROBLEM_AND_LIBRARY_TESTS,
    "ranking-lightgbm": ["tests/runtime", "tests/test_layout.py", "tests/emulator/test_run_data.py"],
}
LIBRARY_PIN = {"xgboost": "xgboost-cpu==", "lightgbm": "lightgbm==", "scikit-learn": "skops=="}


def run(args: list[str], cwd: Path, timeout: int, **env: str) -> subprocess.CompletedProcess:
    # A user's shell: no outer virtualenv, and no outer make (its MAKEFLAGS would change the output).
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    clean = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        args, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=timeout
    )


def library_pin(project: Path, library: str) -> str:
    """The exact pin of the model library in a bake's image lock, e.g. 'lightgbm==4.6.0'."""
    lock = (project / "container" / "requirements.txt").read_text().splitlines()
    return next(line.split()[0] for line in lock if line.startswith(LIBRARY_PIN[library]))


@pytest.fixture(scope="module")
def bakes(tmp_path_factory) -> dict[str, Path]:
    """The bakes and one shared virtualenv (the first bake's `make install`, plus the others' library)."""
    from cookiecutter.main import cookiecutter

    projects = {
        name: Path(
            cookiecutter(
                str(TEMPLATE),
                no_input=True,
                extra_context=answers,
                output_dir=str(tmp_path_factory.mktemp(name)),
            )
        )
        for name, answers in BAKES.items()
    }
    first = next(iter(projects.values()))
    result = run(["make", "install"], first, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    extra = [library_pin(projects[name], BAKES[name]["model_library"]) for name in list(projects)[1:]]
    pip = run([str(first / ".venv" / "bin" / "pip"), "install", "--quiet", *extra], first, timeout=1800)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return projects


@pytest.mark.parametrize("name", list(BAKES))
def test_fast_suite_passes(bakes: dict[str, Path], name: str) -> None:
    project = bakes[name]
    python = str(next(iter(bakes.values())) / ".venv" / "bin" / "python")
    path = str(project / "src")
    # The shared venv imports this bake's package, not the first bake's editable install.
    which = run(
        [python, "-c", f"from {project.name.replace('-', '_')} import settings as s; print(s.__file__)"],
        project,
        timeout=60,
        PYTHONPATH=path,
    )
    assert which.stdout.strip().startswith(path), which.stdout + which.stderr
    result = run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not docker and not slow",
            *SUITES.get(name, []),
        ],
        project,
        timeout=3600,
        PYTHONPATH=path,
    )
    output = result.stdout[-8000:] + result.stderr[-2000:]
    counts = summary_counts(result.stdout)
    assert counts.get("passed", 0) >= 500 and not counts.get("failed") and not counts.get("error"), output
    assert result.returncode == 0, output
