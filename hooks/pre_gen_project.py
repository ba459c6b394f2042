"""Refuse bad answers before anything is written.

Each rule mirrors the real constraint of the service that will receive the value (S3, ECR,
EventBridge, SageMaker, Python), so a project that bakes also deploys. One plain sentence per
error names the field, the value and the rule; cookiecutter removes the output folder on exit 1.

The functions are importable (tests call them directly); only the ``__main__`` block is rendered.
"""

from __future__ import annotations

import ipaddress
import json
import keyword
import math
import re
import sys

# AWS region codes: partition prefix, area, number (us-east-1, eu-central-2, us-gov-west-1, cn-north-1).
REGION = re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov|us-iso|us-isob)-[a-z]+-\d$")
SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html
ECR = re.compile(r"^(?=.{2,256}$)[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
INSTANCE = re.compile(r"^ml\.[a-z][a-z0-9-]*\.(medium|large|[0-9]*xlarge)$")
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/#L W-]+$")
EMAIL = re.compile(r"^[^@\s\"'<>\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
GITLAB_PATH = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
# Free text lands in YAML, TOML, Markdown and Python strings: refuse what could break out of them.
UNSAFE_TEXT = re.compile(r"[\"\\`$<>{}\x00-\x1f]")
# A CSV header cell that is also safe in a Python string, JSON and the shell.
LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. -]{0,62}[A-Za-z0-9_]$|^[A-Za-z0-9_]$")
# The gate metrics per problem type (the generated metrics.METRICS) and the lower-is-better ones.
METRICS = {
    "binary": ("roc_auc", "pr_auc", "accuracy", "f1", "log_loss"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "log_loss"),
    "regression": ("rmse", "mae", "r2", "mape"),
    "ranking": ("ndcg_at_10", "map_at_10", "mrr"),
}
LOWER_IS_BETTER = ("log_loss", "rmse", "mae", "mape")


class AnswerError(ValueError):
    """A cookiecutter answer that breaks a rule; the message is shown to the user as is."""


def _fail(field: str, value: object, rule: str) -> None:
    raise AnswerError(f"{field}={value!r}: {rule}")


def check_text(field: str, value: str, max_len: int = 200) -> None:
    if not value.strip():
        _fail(field, value, "must not be empty")
    if len(value) > max_len or UNSAFE_TEXT.search(value):
        _fail(
            field,
            value,
            f"must be at most {max_len} characters without quotes, backslashes, $, <, >, braces or control characters",
        )


def check_slug(value: str) -> None:
    if not SLUG.match(value) or len(value) > 40:
        _fail(
            "project_slug",
            value,
            "must be 1-40 lowercase letters, digits and single dashes, starting with a letter",
        )


def check_package(value: str) -> None:
    if not value.isidentifier() or keyword.iskeyword(value) or value != value.lower():
        _fail(
            "package_name",
            value,
            "must be a lowercase Python identifier (letters, digits, underscores; not a keyword)",
        )
    if value in {"sagemaker", "boto3", "moto", "flask", "numpy", "sklearn", "scipy", "test", "tests"}:
        _fail("package_name", value, "must not shadow a library the project imports")


def check_region(value: str) -> None:
    if not REGION.match(value):
        _fail("aws_region", value, "must be an AWS region code such as eu-west-1")


def check_bucket(value: str) -> None:
    if not BUCKET.match(value):
        _fail(
            "s3_bucket",
            value,
            "S3 bucket names are 3-63 characters of lowercase letters, digits, dots and dashes, starting and ending with a letter or digit (no underscores or capitals)",
        )
    if ".." in value or ".-" in value or "-." in value:
        _fail("s3_bucket", value, "S3 bucket names must not contain '..', '.-' or '-.'")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        _fail("s3_bucket", value, "S3 bucket names must not look like an IP address")
    if value.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or value.endswith(
        ("-s3alias", "--ol-s3", "--x-s3", ".mrap")
    ):
        _fail("s3_bucket", value, "S3 bucket names must not use a prefix or suffix reserved by AWS")
    # The stack also creates "<bucket>-artifacts" for Lambda code and the ASL file.
    if len(value) > 63 - len("-artifacts"):
        _fail("s3_bucket", value, "must be at most 53 characters (the stack adds a '-artifacts' bucket)")


def check_ecr(value: str) -> None:
    if not ECR.match(value):
        _fail(
            "ecr_repository",
            value,
            "ECR repository names are 2-256 lowercase letters and digits, separated by single '.', '_', '-' or '/'",
        )


def check_instance(field: str, value: str) -> None:
    if not INSTANCE.match(value):
        _fail(field, value, "must be a SageMaker instance type such as ml.m5.large")


def check_int(field: str, value: str, low: int, high: int) -> None:
    if not value.isdigit() or not low <= int(value) <= high:
        _fail(field, value, f"must be a whole number from {low} to {high}")


def check_float(field: str, value: str, low: float, high: float, *, open_low: bool = True) -> None:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (low < number <= high if open_low else low <= number <= high):
        bracket = "(" if open_low else "["
        _fail(field, value, f"must be a number in {bracket}{low}, {high}]")


def check_schedule(value: str, field: str = "schedule_expression") -> None:
    rate = RATE.match(value)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        if amount < 1 or (amount == 1) != (not unit.endswith("s")):
            _fail(
                field,
                value,
                "rate() takes a positive number and a singular unit for 1 (rate(1 day)) and plural otherwise (rate(7 days))",
            )
        return
    if value.startswith("cron(") and value.endswith(")"):
        fields = value[5:-1].split(" ")
        if len(fields) != 6 or not all(CRON_FIELD.match(f) for f in fields):
            _fail(
                field,
                value,
                "cron() takes six fields: minutes hours day-of-month month day-of-week year",
            )
        day_of_month, day_of_week = fields[2], fields[4]
        if (day_of_month == "?") == (day_of_week == "?"):
            _fail(
                field,
                value,
                "cron() needs '?' in exactly one of day-of-month and day-of-week",
            )
        return
    _fail(field, value, "must be cron(six fields) or rate(N unit)")


def check_email(value: str) -> None:
    if value and (not EMAIL.match(value) or len(value) > 254):
        _fail("notification_email", value, "must be an email address (name@example.com) or blank")


def check_gitlab_path(value: str) -> None:
    if not GITLAB_PATH.match(value) or len(value) > 255:
        _fail("gitlab_project_path", value, "must be a GitLab project path such as my-group/my-project")


def check_label_column(value: str) -> None:
    if not LABEL.match(value):
        _fail(
            "label_column",
            value,
            "must be 1-64 letters, digits, underscores, dots, dashes or inner spaces (a CSV header name)",
        )


COLUMN_ROLES = ("numeric", "categorical", "text", "id", "timestamp", "group", "weight")


def check_column_roles(value: str, label: str) -> None:
    """``name:role`` pairs, comma-separated: each name a CSV header name, each role known, once."""
    names: list[str] = []
    for pair in (p.strip() for p in value.split(",") if p.strip()):
        name, _, role = pair.rpartition(":")
        name, role = name.strip(), role.strip()
        if not LABEL.match(name):
            _fail("column_roles", value, f"{pair!r}: expected name:role with a CSV header name")
        if role not in COLUMN_ROLES:
            _fail("column_roles", value, f"{pair!r}: role must be one of {', '.join(COLUMN_ROLES)}")
        if name == label or name in names:
            _fail("column_roles", value, f"{name!r}: the label or a column named twice")
        names.append(name)
    for role in ("timestamp", "group", "weight"):
        if sum(p.strip().endswith(f":{role}") for p in value.split(",")) > 1:
            _fail("column_roles", value, f"at most one {role} column")


def check_ranking_group(problem_type: str, column_roles: str) -> None:
    """A ranking model orders rows within a group (a query): the group column must be named."""
    if problem_type != "ranking":
        return
    if not any(p.strip().endswith(":group") for p in column_roles.split(",")):
        _fail(
            "column_roles",
            column_roles,
            "problem_type ranking needs the query column named as name:group (e.g. query_id:group)",
        )


def check_gate(metric: str, problem_type: str, minimum: str, tolerance: str) -> None:
    """The metric must suit the problem type; bounds depend on the metric's range and direction."""
    allowed = METRICS.get(problem_type, ())
    if metric not in allowed:
        _fail("gate_metric", metric, f"must be one of {', '.join(allowed)} for problem_type {problem_type}")
    if metric in LOWER_IS_BETTER:
        # Lower is better: the "minimum" is the largest value the candidate may have.
        check_positive("gate_minimum", minimum, f"the largest {metric} a candidate may have", strict=True)
        check_positive("gate_tolerance", tolerance, f"how much higher than production's {metric} it may be")
    elif metric == "r2":
        check_float("gate_minimum", minimum, -1e6, 1.0, open_low=False)
        check_float("gate_tolerance", tolerance, 0.0, 1.0, open_low=False)
    else:
        check_float("gate_minimum", minimum, 0.0, 1.0, open_low=False)
        check_float("gate_tolerance", tolerance, 0.0, 1.0, open_low=False)


def check_positive(field: str, value: str, meaning: str, *, strict: bool = False) -> None:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (math.isfinite(number) and (number > 0 if strict else number >= 0)):
        _fail(field, value, f"must be a {'positive' if strict else 'non-negative'} number ({meaning})")


def check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        _fail(field, value, f"must be one of {', '.join(allowed)}")


def validate(answers: dict) -> None:
    """Raise AnswerError for the first answer that breaks its rule."""
    check_text("project_name", answers["project_name"], 80)
    check_slug(answers["project_slug"])
    check_package(answers["package_name"])
    check_text("description", answers["description"])
    check_text("author", answers["author"], 100)
    check_region(answers["aws_region"])
    check_bucket(answers["s3_bucket"])
    check_ecr(answers["ecr_repository"])
    check_instance("training_instance_type", answers["training_instance_type"])
    check_instance("inference_instance_type", answers["inference_instance_type"])
    check_int("initial_instance_count", answers["initial_instance_count"], 1, 20)
    check_schedule(answers["schedule_expression"])
    if answers.get("tuning_schedule_expression", ""):  # blank: no tuning schedule
        check_schedule(answers["tuning_schedule_expression"], "tuning_schedule_expression")
    check_float("psi_threshold", answers["psi_threshold"], 0.0, 10.0)
    check_float("ks_pvalue", answers["ks_pvalue"], 0.0, 1.0)
    check_choice("drift_policy", answers["drift_policy"], ("retrain", "block"))
    check_choice("problem_type", answers["problem_type"], tuple(METRICS))
    check_choice("model_library", answers["model_library"], ("scikit-learn", "xgboost", "lightgbm"))
    check_label_column(answers["label_column"])
    check_column_roles(answers.get("column_roles", ""), answers["label_column"])
    check_ranking_group(answers["problem_type"], answers.get("column_roles", ""))
    check_gate(
        answers["gate_metric"], answers["problem_type"], answers["gate_minimum"], answers["gate_tolerance"]
    )
    check_choice("enable_hpo", answers["enable_hpo"], ("y", "n"))
    check_email(answers["notification_email"])
    check_gitlab_path(answers["gitlab_project_path"])


def main(answers: dict) -> int:
    try:
        validate(answers)
    except AnswerError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # tojson makes the rendered answers a valid Python string literal, whatever they contain.
    sys.exit(main(json.loads({{cookiecutter | jsonify | tojson}})))  # noqa: F821 (Jinja)
