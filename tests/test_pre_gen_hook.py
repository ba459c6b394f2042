"""The pre-generation hook refuses every bad answer with one clear line, and writes nothing."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import CHOICES, DEFAULTS, INVALID_ANSWERS, TEMPLATE
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

spec = importlib.util.spec_from_file_location("pre_gen_project", TEMPLATE / "hooks" / "pre_gen_project.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)


def rendered_defaults() -> dict:
    """The default answers as cookiecutter renders them (derived fields filled in)."""
    answers = {k: (v[0] if isinstance(v, list) else v) for k, v in DEFAULTS.items() if not k.startswith("_")}
    answers["project_slug"] = "ml-pipeline-demo"
    answers["package_name"] = "ml_pipeline_demo"
    answers["s3_bucket"] = "ml-pipeline-demo-eu-west-1-ml"
    answers["ecr_repository"] = "ml-pipeline-demo"
    answers["gitlab_project_path"] = "my-group/ml-pipeline-demo"
    return answers


def test_defaults_pass() -> None:
    hook.validate(rendered_defaults())


@pytest.mark.parametrize(
    "value",
    [
        "rate(1 day)",
        "rate(15 minutes)",
        "cron(0 3 ? * MON *)",
        "cron(0/15 * * * ? *)",
        "cron(0 12 1 * ? 2027)",
    ],
)
def test_valid_schedules(value: str) -> None:
    hook.check_schedule(value)


@pytest.mark.parametrize("value", ["my-bucket", "my.bucket.name", "a1b", "x" * 53])
def test_valid_buckets(value: str) -> None:
    hook.check_bucket(value)


@pytest.mark.parametrize(("field", "value", "message"), INVALID_ANSWERS, ids=lambda v: str(v)[:30])
def test_validate_refuses(field: str, value: str, message: str) -> None:
    answers = rendered_defaults() | {field: value}
    with pytest.raises(hook.AnswerError) as error:
        hook.validate(answers)
    assert str(error.value).startswith(f"{field}={value!r}: ")
    assert message in str(error.value)


@pytest.mark.parametrize(("field", "value", "message"), INVALID_ANSWERS, ids=lambda v: str(v)[:30])
def test_bake_with_bad_answer_fails_cleanly(tmp_path, capfd, field: str, value: str, message: str) -> None:
    # A fixed slug keeps the output folder name valid whatever the bad answer derives from.
    context = ({} if field == "project_slug" else {"project_slug": "bad-answer"}) | {field: value}
    if field in CHOICES:
        # cookiecutter itself refuses a value outside a choice list, before any hook runs.
        with pytest.raises(ValueError, match=f"choice variable {field}"):
            cookiecutter(str(TEMPLATE), no_input=True, extra_context=context, output_dir=str(tmp_path))
        assert list(tmp_path.iterdir()) == []
        return
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=context, output_dir=str(tmp_path))
    err = capfd.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("ERROR: ")]
    assert error_lines, err
    assert error_lines[0].startswith(f"ERROR: {field}=") and message in error_lines[0]
    # cookiecutter removes the half-made folder when the pre-gen hook fails: nothing is left.
    assert list(tmp_path.iterdir()) == []
