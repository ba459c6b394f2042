"""`make local-pipeline` passes for each non-default problem type with the default library (slow).

Each problem type is baked with its defaults (scikit-learn, the type's gate metric), installed with
`make install` as a user would, and the whole offline pipeline runs: the state machine on moto,
the real entrypoints, the gate on the type's metric. On the process runtime by default:
LOCAL_PIPELINE_RUNTIME=docker runs them on Docker (each image built offline first). The Docker path
of the same pipeline runs in the default bake's own Docker tests (test_generated_project's
`make test`) and in `make demo`; three cold image builds here made the template's CI 66 minutes
against a budget of 45 (2026-12-07). Binary is the default bake: test_generated_project's `make
test` runs its whole pipeline on both runtimes, so it is not run a third time here (CI time).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import TEMPLATE

pytestmark = pytest.mark.slow
PROBLEM_TYPES = ["multiclass", "regression"]


def run(args: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def runtime() -> str:
    return os.environ.get("LOCAL_PIPELINE_RUNTIME") or "process"


@pytest.mark.parametrize("problem_type", PROBLEM_TYPES)
def test_local_pipeline_passes(problem_type: str, tmp_path: Path) -> None:
    from cookiecutter.main import cookiecutter

    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"problem_type": problem_type, "project_name": f"Pipeline {problem_type}"},
        )
    )
    result = run(["make", "install"], project, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    chosen = runtime()
    if chosen == "docker":
        build = run(["make", "build-offline"], project, timeout=3600)
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    result = run(["make", "local-pipeline", f"RUNTIME={chosen}"], project, timeout=3600)
    output = result.stdout[-8000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    decisions = [json.loads(p.read_text()) for p in (project / ".local-pipeline").rglob("decision.json")]
    gates = [d for d in decisions if d.get("step") == "evaluate"]
    assert gates, f"no evaluation decision under .local-pipeline/\n{output}"
    assert all(d["problem_type"] == problem_type for d in gates)
    assert any(d["promote"] for d in gates), [d["reasons"] for d in gates]
