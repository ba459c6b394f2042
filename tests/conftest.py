"""Option data for the template tests: the answers every bake starts from, the supported
combinations, and the invalid answers the pre-generation hook must refuse.

One table drives hook tests and bake tests (cookiecutter-django's and ccds's pattern).
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]


def _load_hook(name: str):
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_HOOK = _load_hook("pre_gen_project")
DEFAULTS: dict = json.loads((TEMPLATE / "cookiecutter.json").read_text())

# Options that interact (each library implements each problem type): every pair is baked.
CHOICES = {name: DEFAULTS[name] for name in ("problem_type", "model_library")}
# Options that are independent of those: rotated through the combinations so every value is baked
# at least once without multiplying the matrix (ccds' itertools.cycle pattern).
ROTATED = {
    "enable_hpo": DEFAULTS["enable_hpo"],
    "drift_policy": DEFAULTS["drift_policy"],
    "notification_email": ["", "ml-team@example.com"],
    "initial_instance_count": ["1", "2"],
    # Blank: one schedule (train); set: a second rule whose input is {"tune": true}.
    "tuning_schedule_expression": ["", "cron(0 4 1 * ? *)"],
}
# Choice lists cookiecutter itself enforces (a value outside them never reaches the hook).
CHOICE_LISTS = {name for name, value in DEFAULTS.items() if isinstance(value, list)}
# Gate metrics per problem type, rotated within each type (the hook refuses other pairs). The hook's
# table is the template's one list; test_gate_metrics.py ties the other copies to it.
GATE_METRICS = {problem: list(names) for problem, names in _HOOK.METRICS.items()}
# A bound that suits each metric's range and direction (lower is better: a maximum).
GATE_MINIMUMS = {"rmse": "70", "mae": "55", "mape": "0.5", "log_loss": "0.5", "r2": "0.2"}


def combinations() -> list[dict[str, str]]:
    names = list(CHOICES)
    rotations = {name: itertools.cycle(values) for name, values in ROTATED.items()}
    metrics = {problem: itertools.cycle(values) for problem, values in GATE_METRICS.items()}
    combos = []
    for values in itertools.product(*(CHOICES[n] for n in names)):
        combo = dict(zip(names, values, strict=True))
        combo.update({name: next(cycle) for name, cycle in rotations.items()})
        metric = next(metrics[combo["problem_type"]])
        combo.update(gate_metric=metric, gate_minimum=GATE_MINIMUMS.get(metric, "0.8"))
        combos.append(combo)
    return combos


def combo_id(combo: dict[str, str]) -> str:
    return "-".join(f"{k}:{v or 'blank'}" for k, v in combo.items())


# (field, bad value, a fragment the error message must contain): one case per rule.
INVALID_ANSWERS = [
    ("project_name", "", "must not be empty"),
    ("project_name", 'Evil"; rm -rf', "without quotes"),
    ("project_slug", "My Project", "lowercase letters"),
    ("project_slug", "1project", "starting with a letter"),
    ("package_name", "my-package", "Python identifier"),
    ("package_name", "class", "not a keyword"),
    ("package_name", "sagemaker", "shadow"),
    ("description", "Uses {secrets}", "braces"),
    ("author", "A\nB", "control characters"),
    ("aws_region", "europe-west", "AWS region code"),
    ("s3_bucket", "My_Bucket", "no underscores or capitals"),
    ("s3_bucket", "ab", "3-63 characters"),
    ("s3_bucket", "my..bucket", "'..'"),
    ("s3_bucket", "192.168.1.10", "IP address"),
    ("s3_bucket", "xn--bucket", "reserved"),
    ("s3_bucket", "a" * 60, "at most 53 characters"),
    ("ecr_repository", "My Repo", "ECR repository names"),
    ("ecr_repository", "repo//name", "ECR repository names"),
    ("training_instance_type", "m5.large", "SageMaker instance type"),
    ("inference_instance_type", "ml.m5", "SageMaker instance type"),
    ("initial_instance_count", "0", "whole number from 1 to 20"),
    ("initial_instance_count", "two", "whole number from 1 to 20"),
    ("schedule_expression", "0 3 * * *", "cron(six fields) or rate(N unit)"),
    ("schedule_expression", "cron(0 3 * * *)", "six fields"),
    ("schedule_expression", "cron(0 3 * * MON *)", "'?' in exactly one"),
    ("schedule_expression", "rate(1 days)", "singular unit"),
    ("schedule_expression", "rate(0 hours)", "positive number"),
    ("tuning_schedule_expression", "cron(0 3 * * *)", "six fields"),
    ("column_roles", "listing_id", "expected name:role"),
    ("column_roles", "listing_id:owner", "role must be one of"),
    ("column_roles", "a:id, a:text", "named twice"),
    ("column_roles", "a:weight, b:weight", "at most one weight column"),
    ("column_roles", "target:id", "the label"),
    ("psi_threshold", "-0.1", "(0.0, 10.0]"),
    ("psi_threshold", "abc", "(0.0, 10.0]"),
    ("ks_pvalue", "1.5", "(0.0, 1.0]"),
    ("drift_policy", "ignore", "one of retrain, block"),
    ("problem_type", "clustering", "one of binary, multiclass, regression, ranking"),
    ("model_library", "catboost", "one of scikit-learn, xgboost, lightgbm"),
    ("label_column", "a,b", "CSV header name"),
    ("label_column", "", "CSV header name"),
    ("gate_metric", "rmse", "one of roc_auc, pr_auc, accuracy, f1, log_loss for problem_type binary"),
    ("gate_minimum", "1.2", "[0.0, 1.0]"),
    ("gate_tolerance", "-1", "[0.0, 1.0]"),
    ("enable_hpo", "yes", "one of y, n"),
    ("notification_email", "not-an-email", "email address"),
    ("notification_email", "a@b.com<script>", "email address"),
    ("gitlab_project_path", "just-a-project", "GitLab project path"),
]


# One install per distinct lock file in a session: bakes of one library share it (CI time).
_LOCK_VENVS: dict[str, Path] = {}


def lock_venv(project: Path, venv: Path) -> Path:
    """A virtualenv with exactly a baked project's image lock (container/requirements.txt) and pytest:
    enough for its in-process tests, and a check that the lock installs. A bake whose lock was
    installed earlier in the session gets that virtualenv (``venv`` is then left unused)."""
    lock = project / "container" / "requirements.txt"
    key = hashlib.sha256(lock.read_bytes()).hexdigest()
    if key in _LOCK_VENVS and (_LOCK_VENVS[key] / "bin" / "python").exists():
        return _LOCK_VENVS[key]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The lock carries hashes (hash-checking mode for every requirement of the call): pytest apart.
    for requirements in (["-r", str(lock)], ["pytest>=8"]):
        result = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", *requirements],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    _LOCK_VENVS[key] = venv
    return venv


def summary_counts(output: str) -> dict[str, int]:
    """Counts from pytest's last summary line ("3 passed, 1 skipped in 2.1s")."""
    summary = re.findall(r"^(?:=+ )?((?:\d+ \w+(?:, )?)+) in [\d.]+s", output, re.MULTILINE)[-1]
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", summary)}


@pytest.fixture(scope="session")
def template() -> Path:
    return TEMPLATE


# Answers that are valid alone but not together: (answers, field, a fragment of the message).
INVALID_PAIRS = [
    ({"problem_type": "regression", "gate_metric": "roc_auc"}, "gate_metric", "one of rmse, mae, r2, mape"),
    ({"problem_type": "multiclass", "gate_metric": "f1"}, "gate_metric", "for problem_type multiclass"),
    ({"problem_type": "ranking", "gate_metric": "r2"}, "gate_metric", "one of ndcg_at_10, map_at_10, mrr"),
    # A ranking model orders rows within a group: the group column must be named.
    ({"problem_type": "ranking", "column_roles": ""}, "column_roles", "needs the query column named"),
    ({"problem_type": "ranking", "column_roles": "query_id:id"}, "column_roles", "name:group"),
    (
        {"problem_type": "regression", "gate_metric": "rmse", "gate_minimum": "0"},
        "gate_minimum",
        "positive number (the largest rmse",
    ),
    (
        {"problem_type": "regression", "gate_metric": "mae", "gate_minimum": "5", "gate_tolerance": "-1"},
        "gate_tolerance",
        "non-negative number",
    ),
]
