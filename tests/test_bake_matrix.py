"""Bake every supported option combination and check each output statically.

Checks per bake: the expected files exist, no unrendered Jinja is left,
every JSON/YAML/TOML file parses, the ASL matches the HPO answer, answers reach settings.py,
and ruff is clean. cfn-lint runs once over all baked templates.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import combinations, combo_id, lock_venv, summary_counts

# Files every generated project must have (a subset: others may be added without touching this).
EXPECTED = [
    "README.md",
    "Makefile",
    "pyproject.toml",
    ".gitignore",
    ".dockerignore",
    ".gitlab-ci.yml",
    "ci/with-aws.sh",
    "ci/requirements-ci.txt",
    "container/Dockerfile",
    "container/requirements.txt",
    "container/train",
    "container/serve",
    "container/validate",
    "container/evaluate",
    "container/offline/build_base_image.sh",
    "container/offline/build_wheelhouse.sh",
    "pipeline/state_machine.asl.json",
    "lambdas/check_endpoint/handler.py",
    "infra/template.yaml",
    "src/{pkg}/settings.py",
    "src/{pkg}/model.py",
    "src/{pkg}/inference.py",
    "src/{pkg}/steps/train.py",
    "src/{pkg}/distributed.py",
    "src/{pkg}/steps/serve.py",
    "src/{pkg}/steps/validate.py",
    "src/{pkg}/steps/evaluate.py",
    "src/{pkg}/serving/app.py",
    "src/{pkg}/serving/handlers.py",
    "src/{pkg}/serving/onnx_file.py",
    "src/{pkg}/xgboost_json.py",
    "src/{pkg}/lightgbm_text.py",
    "src/{pkg}/tree_checks.py",
    "src/{pkg}_deploy/cli.py",
    "src/{pkg}_emulator/run.py",
    "docs/architecture.md",
    "docs/decisions.md",
    "benchmarks/RESULTS.md",
    "tests/conftest.py",
    "tests/support/sandbox.py",
]
EXECUTABLE = ["container/train", "container/serve", "container/validate", "container/evaluate"]
# Unrendered Jinja: a cookiecutter variable or a Jinja block tag. Not a blanket brace check:
# CloudFormation uses ${...} and ASL JSONata uses {% %} legitimately.
LEFTOVER = re.compile(r"\{\{\s*cookiecutter\.|\{%-?\s*(if|for|endif|endfor|raw|endraw|set|include)\b")


class CfnLoader(yaml.SafeLoader):
    """YAML loader that accepts CloudFormation's short-form tags (!Ref, !Sub, ...)."""


CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)

COMBOS = combinations()
# The in-process (slow) checks below: ranking's three bakes are checked statically above only; the
# LightGBM one runs its whole fast suite in test_every_bake.py (CI time: issue 23).
IN_PROCESS_COMBOS = [c for c in COMBOS if c["problem_type"] != "ranking"]


@pytest.fixture(scope="module")
def baked(tmp_path_factory) -> dict[str, Path]:
    from conftest import TEMPLATE
    from cookiecutter.main import cookiecutter

    projects = {}
    for combo in COMBOS:
        out = tmp_path_factory.mktemp("bake")
        projects[combo_id(combo)] = Path(
            cookiecutter(str(TEMPLATE), no_input=True, extra_context=combo, output_dir=str(out))
        )
    return projects


def files(project: Path) -> list[Path]:
    return [p for p in project.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_expected_files(baked, combo) -> None:
    project = baked[combo_id(combo)]
    pkg = project.name.replace("-", "_")
    missing = [f for f in EXPECTED if not (project / f.format(pkg=pkg)).is_file()]
    assert not missing, f"missing: {missing}"
    assert not [f for f in EXECUTABLE if not (project / f).stat().st_mode & 0o111]


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_no_unrendered_jinja(baked, combo) -> None:
    leftovers = []
    for path in files(baked[combo_id(combo)]):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        leftovers += [f"{path.name}:{m.group(0)}" for m in LEFTOVER.finditer(text)]
    assert not leftovers


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_structured_files_parse(baked, combo) -> None:
    parsed = 0
    for path in files(baked[combo_id(combo)]):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix in {".yml", ".yaml"}:
            yaml.load(path.read_text(), Loader=CfnLoader)
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
        else:
            continue
        parsed += 1
    assert parsed >= 4


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_answers_reach_the_project(baked, combo) -> None:
    project = baked[combo_id(combo)]
    settings = (project / "src" / project.name.replace("-", "_") / "settings.py").read_text()
    assert f'DRIFT_POLICY = "{combo["drift_policy"]}"' in settings
    assert f'GATE_METRIC = "{combo["gate_metric"]}"' in settings
    assert f'PROBLEM_TYPE = "{combo["problem_type"]}"' in settings
    assert f'MODEL_LIBRARY = "{combo["model_library"]}"' in settings
    higher = combo["gate_metric"] not in ("rmse", "mae", "mape", "log_loss")
    assert f"GATE_HIGHER_IS_BETTER = {higher}" in settings
    model = (project / "src" / project.name.replace("-", "_") / "model.py").read_text()
    assert f'LIBRARY = "{combo["model_library"]}"' in model
    pins = (project / "container" / "requirements.txt").read_text()
    library_pin = {"scikit-learn": "skops==", "xgboost": "xgboost-cpu==", "lightgbm": "lightgbm=="}
    assert [pin for pin in library_pin.values() if pin in pins] == [library_pin[combo["model_library"]]]
    assert f"ENABLE_HPO = {combo['enable_hpo'] == 'y'}" in settings
    asl = (project / "pipeline" / "state_machine.asl.json").read_text()
    # One state machine for every option: train or tune is the execution input's choice.
    assert "createHyperParameterTuningJob" in asl and "createTrainingJob" in asl
    template = (project / "infra" / "template.yaml").read_text()
    assert (combo["notification_email"] or "NotificationEmail") in template
    # A tuning schedule is a second rule that starts the same state machine with {"tune": true}.
    rules = yaml.load(template, Loader=CfnLoader)["Resources"]
    tuning = rules.get("TuningScheduleRule")
    assert (tuning is not None) == bool(combo["tuning_schedule_expression"])
    if tuning is not None:
        assert tuning["Properties"]["ScheduleExpression"] == combo["tuning_schedule_expression"]
        assert json.loads(tuning["Properties"]["Targets"][0]["Input"]) == {"tune": True}
    assert json.loads(rules["ScheduleRule"]["Properties"]["Targets"][0]["Input"]) == {}


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_ruff_clean(baked, combo) -> None:
    project = baked[combo_id(combo)]
    for args in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=project, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("combo", COMBOS, ids=combo_id)
def test_asl_check(baked, combo) -> None:
    """The project's own static ASL check (JSONata states, variables, transitions, Catch coverage,
    DefinitionSubstitutions both ways) passes on every bake."""
    project = baked[combo_id(combo)]
    package = project.name.replace("-", "_")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            f"{package}_deploy.asl_check",
            "pipeline/state_machine.asl.json",
            "infra/template.yaml",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK (" in result.stdout


def test_cfn_lint_all_templates(baked) -> None:
    templates = [str(p / "infra" / "template.yaml") for p in baked.values()]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *templates], capture_output=True, text=True
    )
    # cfn-lint's exit code is a bit mask: 1 fatal, 2 errors, 4 warnings, 8 informational.
    assert result.returncode & 3 == 0, result.stdout + result.stderr


# ---- every combination trains, gates and refuses tampered models, in process --------------------

# The generated project's own tests that need only the image's dependencies (no moto, no Docker).
IN_PROCESS_TESTS = ["tests/runtime/test_problem_types.py", "tests/runtime/test_models_security.py"]


@pytest.fixture(scope="module")
def library_venvs(baked, tmp_path_factory) -> dict[str, Path]:
    """One virtualenv per model library with exactly the image's lock (container/requirements.txt)."""
    venvs = {}
    for combo in IN_PROCESS_COMBOS:
        library = combo["model_library"]
        if library in venvs:
            continue
        venvs[library] = lock_venv(baked[combo_id(combo)], tmp_path_factory.mktemp(f"venv-{library}"))
    return venvs


@pytest.mark.slow
@pytest.mark.parametrize("combo", IN_PROCESS_COMBOS, ids=combo_id)
def test_combination_trains_gates_and_refuses_tampered_models(baked, library_venvs, combo) -> None:
    """train (the training entrypoint on an /opt/ml tree), evaluate and gate on the type's metric,
    with text labels and a categorical column; tampered artifacts refused (see those test files)."""
    project = baked[combo_id(combo)]
    python = library_venvs[combo["model_library"]] / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *IN_PROCESS_TESTS],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    counts = summary_counts(result.stdout)
    assert counts.get("passed", 0) >= 20 and not counts.get("failed") and not counts.get("error"), counts


# The template's own model.py compiles for every problem type and library: classification and
# XGBoost regression in float32, regression with scikit-learn and LightGBM in float64. On the numeric
# sample, training's ONNX export answers as the library (1e-6, same labels), so serving uses ONNX
# Runtime (issue 13).
EXPORT_CHECK = """
import tempfile
from pathlib import Path
import numpy as np
from {pkg}_emulator import sample_data
from {pkg}.predictor import Predictor
from {pkg}.serving import compiled
table = sample_data.load_table()
order = np.random.default_rng(0).permutation(table.n_rows)
cut = table.n_rows * 3 // 4
train, holdout = table.take(order[:cut]), table.take(order[cut:])
folder = Path(tempfile.mkdtemp())
predictor = Predictor.fit(train, {{}})
predictor.save(folder)
print("written" if compiled.export(predictor, holdout, folder) else "not written")
"""


@pytest.mark.slow
@pytest.mark.parametrize("combo", IN_PROCESS_COMBOS, ids=combo_id)
def test_the_default_model_is_compiled_for_every_problem_type_and_library(
    baked, library_venvs, combo
) -> None:
    project = baked[combo_id(combo)]
    python = library_venvs[combo["model_library"]] / "bin" / "python"
    script = EXPORT_CHECK.format(pkg=project.name.replace("-", "_"))
    result = subprocess.run(
        [str(python), "-c", script],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = result.stdout.strip().splitlines()[-1]
    log = result.stderr
    if combo["model_library"] == "scikit-learn":  # float64 first: float32 overflows near 1e38
        assert outcome == "written" and "model.onnx written (float64," in log, log
    elif combo["problem_type"] != "regression":  # boosted classifiers compare features: float32
        assert outcome == "written" and "model.onnx written (float32," in log, log
    elif combo["model_library"] == "lightgbm":  # float32 misses 1e-6; float64 does not
        assert outcome == "written" and "model.onnx written (float64," in log, log
    else:  # XGBoost computes in float32: its own order of summation, in float32, is exact
        assert outcome == "written" and "model.onnx written (float32, max difference 0 " in log, log
