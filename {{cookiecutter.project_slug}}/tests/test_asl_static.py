"""The state machine definition: graph, substitutions, names, and the contract with the other pieces."""

from __future__ import annotations

import copy
import json
import re

import pytest

from {{ cookiecutter.package_name }} import asl_check, metrics, settings
from {{ cookiecutter.package_name }}.definition import DefinitionError, placeholders, render_definition

SAGEMAKER_NAME_LIMIT = 63
TUNING_NAME_LIMIT = 32
# MD5 hex digest length: the Init state appends it to every kind of name.
HASH_LENGTH = 32


@pytest.fixture(scope="module")
def asl_text(project_root) -> str:
    return (project_root / "pipeline" / "state_machine.asl.json").read_text()


@pytest.fixture(scope="module")
def template_text(project_root) -> str:
    return (project_root / "infra" / "template.yaml").read_text()


@pytest.fixture(scope="module")
def machine(asl_text) -> dict:
    return json.loads(asl_text)


@pytest.fixture
def good() -> dict:
    """A minimal valid machine the broken fixtures start from."""
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}]
    retry = [{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 2}]
    return {
        "StartAt": "Start",
        "States": {
            "Start": {"Type": "Pass", "Parameters": {"name.$": "$$.Execution.Name"}, "Next": "Work"},
            "Work": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": "${Topic}", "Message.$": "States.Format('{}', $.name)"},
                "Retry": retry,
                "Catch": catch,
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
            "Failed": {"Type": "Fail"},
        },
    }


def problems_of(machine: dict, substitutions: set[str] | None = None) -> list[str]:
    text = json.dumps(machine)
    found = asl_check.check_graph(machine)
    if substitutions is not None:
        found += asl_check.check_substitutions(text, substitutions)
    return found


# ------------------------------------------------------------------ the shipped definition


def test_shipped_definition_passes_the_checker(asl_text, template_text):
    assert asl_check.check(asl_text, template_text) == []


def test_checker_cli_exit_codes(project_root, tmp_path, capsys):
    asl = project_root / "pipeline" / "state_machine.asl.json"
    template = project_root / "infra" / "template.yaml"
    assert asl_check.main([str(asl), str(template)]) == 0
    broken = tmp_path / "broken.asl.json"
    broken.write_text(asl.read_text().replace('"Next": "ReadValidation"', '"Next": "ReadValidaton"'))
    assert asl_check.main([str(broken), str(template)]) == 1
    assert "'ReadValidaton' is not a state" in capsys.readouterr().out


def test_moto_interpreter_parses_the_rendered_definition(asl_text):
    parser = pytest.importorskip("moto.stepfunctions.parser.asl.parse.asl_parser")
    rendered = render_definition(asl_text, dict.fromkeys(placeholders(asl_text), "1"))
    parser.AmazonStateLanguageParser.parse(rendered)


def test_flow_follows_the_architecture(machine):
    states = machine["States"]
    assert machine["StartAt"] == "Init"
    assert states["Init"]["Next"] == "FindProduction"
    assert states["FindProduction"]["Resource"] == "arn:aws:states:::lambda:invoke"
    validate = states["ValidateData"]
    assert validate["Resource"] == "arn:aws:states:::sagemaker:createProcessingJob.sync"
    assert validate["Parameters"]["AppSpecification"]["ContainerEntrypoint"] == ["validate"]
    arguments = validate["Parameters"]["AppSpecification"]["ContainerArguments.$"]
    assert all(
        flag in arguments
        for flag in ("'--data'", "'--reference-model'", "$.production.model_data_url", "'--output'")
    )
    assert (
        validate["Parameters"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] == "s3://${DataBucket}/data/train/"
    )
    assert states["ReadValidation"]["Resource"] == "arn:aws:states:::aws-sdk:s3:getObject"
    assert states["ReadValidation"]["ResultSelector"] == {"result.$": "States.StringToJson($.Body)"}
    train = "Tune" if settings.ENABLE_HPO else "Train"
    assert {c["StringEquals"]: c["Next"] for c in states["DriftGate"]["Choices"]} == {
        "proceed": train,
        "block": "DriftBlocked",
    }
    evaluate = states["Evaluate"]["Parameters"]
    assert evaluate["AppSpecification"]["ContainerEntrypoint"] == ["evaluate"]
    assert {i["InputName"] for i in evaluate["ProcessingInputs"]} == {"model", "holdout"}
    assert states["ModelGate"]["Choices"][0] == {
        "Variable": "$.evaluation.result.promote",
        "BooleanEquals": True,
        "Next": "CreateModel",
    }
    assert states["ModelGate"]["Default"] == "GateBlocked"
    chain = ["CreateModel", "CreateEndpointConfig", "CheckEndpoint", "EndpointExists"]
    assert [states[a]["Next"] for a in chain[:-1]] == chain[1:]
    assert states["EndpointExists"]["Choices"][0]["Next"] == "UpdateEndpoint"
    assert states["EndpointExists"]["Default"] == "CreateEndpoint"
    assert states["VerifyEndpointConfig"]["Choices"][0]["StringEqualsPath"] == "$.run.endpoint_config"
    assert states["VerifyEndpointConfig"]["Default"] == "EndpointRolledBack"
    assert states["NotifyBlocked"]["Next"] == "Blocked" and states["Blocked"]["Type"] == "Succeed"
    assert states["NotifySuccess"]["Parameters"]["TopicArn"] == "${NotificationTopicArn}"


def test_update_endpoint_is_blue_green_with_alarm_rollback(machine):
    config = machine["States"]["UpdateEndpoint"]["Parameters"]["DeploymentConfig"]
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert config["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "${ErrorsAlarmName}"},
        {"AlarmName": "${LatencyAlarmName}"},
    ]


def test_every_task_retries_and_reports_failure(machine):
    for name, state in machine["States"].items():
        if state["Type"] != "Task":
            continue
        assert state["Retry"] and all(r["BackoffRate"] >= 2 for r in state["Retry"]), name
        # A .sync job that ran and failed is not retried: it would fail again on the same data.
        assert all(
            "States.TaskFailed" not in r["ErrorEquals"] and "States.ALL" not in r["ErrorEquals"]
            for r in state["Retry"]
        ), name
        catch_targets = {c["Next"] for c in state["Catch"] if "States.ALL" in c["ErrorEquals"]}
        assert catch_targets == ({"Failed"} if name == "NotifyFailure" else {"NotifyFailure"}), name
    message = machine["States"]["NotifyFailure"]["Parameters"]["Message.$"]
    assert "$$.Execution.Name" in message and "$.error.Error" in message and "$.error.Cause" in message
    # The execution fails as PipelineFailed with "<original error>: <cause>" (ErrorPath may not
    # carry a States.* name such as States.TaskFailed).
    assert machine["States"]["Failed"] == {
        "Type": "Fail",
        "Error": "PipelineFailed",
        "CausePath": "States.Format('{}: {}', $.error.Error, $.error.Cause)",
    }


def test_names_fit_sagemaker_limits(machine):
    init = machine["States"]["Init"]["Parameters"]
    for key in ("validate", "train", "evaluate", "model", "endpoint_config"):
        kind = re.fullmatch(
            r"States\.Format\('([a-z]+)-\{\}', States\.Hash\(\$\$\.Execution\.Name, 'MD5'\)\)",
            init[f"{key}.$"],
        )
        assert kind, init[f"{key}.$"]
        assert len(kind.group(1)) + 1 + HASH_LENGTH <= SAGEMAKER_NAME_LIMIT
    if settings.ENABLE_HPO:
        assert init["tuning.$"] == "States.Hash($$.Execution.Name, 'MD5')"
        assert HASH_LENGTH <= TUNING_NAME_LIMIT
        assert machine["States"]["Tune"]["Parameters"]["HyperParameterTuningJobName.$"] == "$.run.tuning"
    jobs = {
        "ValidateData": "ProcessingJobName.$",
        "Evaluate": "ProcessingJobName.$",
        "CreateModel": "ModelName.$",
    }
    for state, field in jobs.items():
        assert machine["States"][state]["Parameters"][field].startswith("$.run."), state


def test_metric_definitions_parse_the_training_log_lines(machine):
    states = machine["States"]
    algorithm = (
        states["Tune"]["Parameters"]["TrainingJobDefinition"]
        if settings.ENABLE_HPO
        else states["Train"]["Parameters"]
    )["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == "${ImageUri}" and algorithm["TrainingInputMode"] == "File"
    line = metrics.format_for_logs({"roc_auc": 0.991, "accuracy": 0.95, "f1": 0.96}, "train")
    found = {
        d["Name"]: float(m.group(1))
        for d in algorithm["MetricDefinitions"]
        if (m := re.search(d["Regex"], line))
    }
    assert found == {"train:roc_auc": 0.991, "train:accuracy": 0.95, "train:f1": 0.96}


@pytest.mark.skipif(not settings.ENABLE_HPO, reason="tuning-job variant only")
def test_tuning_job_searches_c_on_a_log_scale_against_the_holdout(machine):
    params = machine["States"]["Tune"]["Parameters"]
    config = params["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "${TuningObjectiveMetric}",
    }
    assert config["ParameterRanges"]["ContinuousParameterRanges"][0]["Name"] == "C"
    assert config["ParameterRanges"]["ContinuousParameterRanges"][0]["ScalingType"] == "Logarithmic"
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in params["TrainingJobDefinition"]["InputDataConfig"]
    }
    assert channels == {
        "train": "s3://${DataBucket}/data/train/",
        "validation": "s3://${DataBucket}/data/holdout/",
    }
    assert machine["States"]["DescribeBestTrainingJob"]["Parameters"] == {
        "TrainingJobName.$": "$.tuning.best_training_job"
    }


# ------------------------------------------------------------------ the checker catches each defect


def test_good_fixture_passes(good):
    assert problems_of(good, {"Topic"}) == []


def test_catches_bad_next(good):
    good["States"]["Start"]["Next"] = "Wrok"
    assert "Start.Next: 'Wrok' is not a state" in problems_of(good)


def test_catches_bad_catch_target(good):
    good["States"]["Work"]["Catch"][0]["Next"] = "Nowhere"
    assert "Work.Catch[0].Next: 'Nowhere' is not a state" in problems_of(good)


def test_catches_unreachable_state(good):
    good["States"]["Orphan"] = {"Type": "Succeed"}
    assert problems_of(good) == ["Orphan: unreachable from StartAt"]


def test_catches_state_that_cannot_end(good):
    good["States"]["Start"]["Next"] = "Loop"
    good["States"]["Loop"] = {"Type": "Wait", "Seconds": 1, "Next": "Loop"}
    found = problems_of(good)
    assert "Loop: no terminal state (Succeed, Fail, End) reachable from here" in found


def test_catches_undefined_and_unused_placeholders(good):
    assert problems_of(good, set()) == ["${Topic}: not defined in DefinitionSubstitutions"]
    assert problems_of(good, {"Topic", "Spare"}) == [
        "DefinitionSubstitutions.Spare: not used by the definition"
    ]


def test_catches_bad_paths_and_intrinsics(good):
    params = good["States"]["Work"]["Parameters"]
    params["Bad.$"] = "name"
    params["Unknown.$"] = "States.Substring($.name, 0, 3)"
    params["Open.$"] = "States.Format('{}', $.name"
    good["States"]["Work"]["ResultPath"] = "error"
    found = problems_of(good)
    assert "Work.Parameters.Bad.$: 'name' is not a path ($, $.field, $$.Context.field)" in found
    assert "Work.Parameters.Unknown.$: unknown intrinsic function States.Substring" in found
    assert any(p.startswith("Work.Parameters.Open.$: unbalanced") for p in found)
    assert any(p.startswith("Work.ResultPath:") for p in found)


def test_catches_task_without_retry_or_catch(good):
    work = good["States"]["Work"]
    del work["Retry"], work["Catch"]
    good["States"]["Failed"] = {"Type": "Fail"}
    found = problems_of(copy.deepcopy(good))
    assert "Work: a Task needs Retry (throttling and transient errors)" in found
    assert "Work: a Task needs a Catch on States.ALL (failure notification)" in found


def test_catches_invalid_json():
    assert asl_check.check("{not json")[0].startswith("not valid JSON")


# ------------------------------------------------------------------ render_definition


def test_render_fills_tokens_like_cloudformation():
    text = '{"A": "${Bucket}", "B": "s3://${Bucket}/x", "C": "States.StringToJson(\'${Count}\')"}'
    assert json.loads(render_definition(text, {"Bucket": "b1", "Count": 3, "Extra": "ignored"})) == {
        "A": "b1",
        "B": "s3://b1/x",
        "C": "States.StringToJson('3')",
    }


def test_render_refuses_missing_substitution_and_broken_json():
    with pytest.raises(DefinitionError, match="no DefinitionSubstitutions value for: Bucket"):
        render_definition('{"A": "${Bucket}"}', {})
    with pytest.raises(DefinitionError, match="not valid JSON"):
        render_definition('{"A": "${Bucket}"}', {"Bucket": 'has "quotes"'})
