"""The pre-generation hook refuses every bad answer with one clear line, and writes nothing."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import CHOICE_LISTS, INVALID_ANSWERS, INVALID_PAIRS, TEMPLATE
from cookiecutter.exceptions import FailedHookException
from cookiecutter.generate import generate_context
from cookiecutter.main import cookiecutter
from cookiecutter.prompt import prompt_for_config

spec = importlib.util.spec_from_file_location("pre_gen_project", TEMPLATE / "hooks" / "pre_gen_project.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)


def rendered_defaults(**answers: str) -> dict:
    """The answers as cookiecutter renders them with no input (derived fields filled in)."""
    context = generate_context(TEMPLATE / "cookiecutter.json", extra_context=answers)
    return dict(prompt_for_config(context, no_input=True))


def refused_bake_errors(tmp_path, capfd, context: dict) -> list[str]:
    """The ERROR lines of a bake the hook refuses (and it wrote nothing)."""
    with pytest.raises(FailedHookException):
        cookiecutter(str(TEMPLATE), no_input=True, extra_context=context, output_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    return [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR: ")]


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
    if field in CHOICE_LISTS:
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


@pytest.mark.parametrize(
    ("problem_type", "metric", "bound"),
    [
        ("binary", "roc_auc", "0.8"),
        ("multiclass", "macro_f1", "0.8"),
        ("regression", "r2", "0.2"),
        ("ranking", "ndcg_at_10", "0.7"),
    ],
)
def test_default_gate_follows_the_problem_type(problem_type: str, metric: str, bound: str) -> None:
    answers = rendered_defaults(problem_type=problem_type)
    assert (answers["gate_metric"], answers["gate_minimum"]) == (metric, bound)
    # The default column roles of a ranking bake name its group column; blank for the others.
    assert answers["column_roles"] == ("query_id:group" if problem_type == "ranking" else "")
    hook.validate(answers)


def test_ranking_is_the_last_problem_type_and_binary_stays_the_default() -> None:
    choices = json.loads((TEMPLATE / "cookiecutter.json").read_text())["problem_type"]
    assert choices[0] == "binary" and choices[-1] == "ranking"
    assert tuple(hook.METRICS) == ("binary", "multiclass", "regression", "ranking")


def test_a_ranking_bake_without_a_group_column_fails_in_one_line(tmp_path, capfd) -> None:
    context = {"project_slug": "bad-answer", "problem_type": "ranking", "column_roles": "query_id:id"}
    assert refused_bake_errors(tmp_path, capfd, context) == [
        "ERROR: column_roles='query_id:id': problem_type ranking needs the query column named as "
        "name:group (e.g. query_id:group)"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("pair", "field", "message"), INVALID_PAIRS, ids=lambda v: str(v)[:40])
def test_validate_refuses_invalid_pairs(pair: dict, field: str, message: str) -> None:
    with pytest.raises(hook.AnswerError) as error:
        hook.validate(rendered_defaults(**pair))
    assert str(error.value).startswith(f"{field}={pair[field]!r}: ") and message in str(error.value)


def test_bake_with_a_metric_of_another_problem_type_fails_in_one_line(tmp_path, capfd) -> None:
    context = {"project_slug": "bad-answer", "problem_type": "regression", "gate_metric": "r2x"}
    assert refused_bake_errors(tmp_path, capfd, context) == [
        "ERROR: gate_metric='r2x': must be one of rmse, mae, r2, mape for problem_type regression"
    ]
    assert list(tmp_path.iterdir()) == []


def test_column_roles_render_into_settings(tmp_path) -> None:
    import ast

    project = cookiecutter(
        str(TEMPLATE),
        no_input=True,
        output_dir=str(tmp_path),
        extra_context={"column_roles": "listing_id:id,  listed at : timestamp, notes:text,"},
    )
    settings = (tmp_path / project / "src" / "ml_pipeline_demo" / "settings.py").read_text()
    rendered = settings.split("COLUMN_ROLES: dict[str, str] = ", 1)[1].split("\n\n", 1)[0]
    assert ast.literal_eval(rendered) == {"listing_id": "id", "listed at": "timestamp", "notes": "text"}
