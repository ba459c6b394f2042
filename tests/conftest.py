"""Option data for the template tests: the answers every bake starts from, the supported
combinations, and the invalid answers the pre-generation hook must refuse.

One table drives hook tests and bake tests (cookiecutter-django's and ccds's pattern).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
DEFAULTS: dict = json.loads((TEMPLATE / "cookiecutter.json").read_text())

# Options whose values change which files or code are generated: baked in every combination.
CHOICES = {name: DEFAULTS[name] for name in ("enable_hpo", "drift_policy", "gate_metric")}
# Independent free-text options: rotated through the combinations so every value is baked once.
ROTATED = {"notification_email": ["", "ml-team@example.com"], "initial_instance_count": ["1", "2"]}


def combinations() -> list[dict[str, str]]:
    names = list(CHOICES)
    rotations = {name: itertools.cycle(values) for name, values in ROTATED.items()}
    combos = []
    for values in itertools.product(*(CHOICES[n] for n in names)):
        combo = dict(zip(names, values, strict=True))
        combo.update({name: next(cycle) for name, cycle in rotations.items()})
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
    ("psi_threshold", "-0.1", "(0.0, 10.0]"),
    ("psi_threshold", "abc", "(0.0, 10.0]"),
    ("ks_pvalue", "1.5", "(0.0, 1.0]"),
    ("drift_policy", "ignore", "one of retrain, block"),
    ("gate_metric", "rmse", "one of roc_auc, accuracy, f1"),
    ("gate_minimum", "1.2", "[0.0, 1.0]"),
    ("gate_tolerance", "-1", "[0.0, 1.0]"),
    ("enable_hpo", "yes", "one of y, n"),
    ("notification_email", "not-an-email", "email address"),
    ("notification_email", "a@b.com<script>", "email address"),
    ("gitlab_project_path", "just-a-project", "GitLab project path"),
]


@pytest.fixture(scope="session")
def template() -> Path:
    return TEMPLATE
