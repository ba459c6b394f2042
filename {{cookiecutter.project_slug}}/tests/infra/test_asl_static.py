"""The state machine definition: graph, substitutions, names, and the contract with the other pieces."""

from __future__ import annotations

import copy
import json
import re

import pytest

from {{ cookiecutter.package_name }} import metrics, settings
from {{ cookiecutter.package_name }}_deploy import asl_check
from {{ cookiecutter.package_name }}_deploy.asl_check import CLOSE, OPEN
from {{ cookiecutter.package_name }}_deploy.definition import (
    DefinitionError,
    embedded_json,
    placeholders,
    render_definition,
    render_model_tokens,
)

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
    broken.write_text(asl.read_text().replace('"Next": "ReadValidation"', '"Next": "ReadValidaton"', 1))
    assert asl_check.main([str(broken), str(template)]) == 1
    assert "'ReadValidaton' is not a state" in capsys.readouterr().out


def test_moto_interpreter_parses_the_rendered_definition(asl_text):
    parser = pytest.importorskip("moto.stepfunctions.parser.asl.parse.asl_parser")
    text = render_model_tokens(asl_text)
    rendered = render_definition(text, dict.fromkeys(placeholders(text), "1"))
    parser.AmazonStateLanguageParser.parse(rendered)


def rendered_machine(asl_text: str) -> dict:
    """The definition as deployed: model tokens from this project's model spec, CloudFormation's
    tokens with stand-ins."""
    text = render_model_tokens(asl_text)
    stand_ins = {"DataBucket": "bucket", "TrainingInstanceType": "ml.m5.large"}
    return json.loads(render_definition(text, {t: stand_ins.get(t, "1") for t in placeholders(text)}))


def expression(value: str) -> str:
    assert value.startswith(OPEN) and value.endswith(CLOSE), value
    return value[2:-2].strip()


def test_one_jsonata_machine_with_variables(machine):
    assert machine["QueryLanguage"] == "JSONata"
    jsonpath_fields = {"Parameters", "ResultPath", "ResultSelector", "InputPath", "OutputPath"}
    for name, state in machine["States"].items():
        assert not jsonpath_fields & set(state), name
        assert "QueryLanguage" not in state, name  # one language for the whole file


def test_flow_follows_the_architecture(machine):
    states = machine["States"]
    nxt = {name: state.get("Next") for name, state in states.items()}
    assert machine["StartAt"] == "Init"
    chain = ["Init", "CheckOtherRuns", "OnlyRun"]
    assert [nxt[a] for a in chain[:-1]] == chain[1:]
    assert states["OnlyRun"]["Choices"][0]["Next"] == "FindProduction"
    assert states["OnlyRun"]["Default"] == "AnotherRunInProgress"
    assert nxt["FindProduction"] == "ValidateData" and nxt["ValidateData"] == "ReadValidation"
    assert states["FindProduction"]["Resource"] == "arn:aws:states:::lambda:invoke"
    validate = states["ValidateData"]["Arguments"]
    assert validate["AppSpecification"]["ContainerEntrypoint"] == ["validate"]
    assert states["ReadValidation"]["Resource"] == "arn:aws:states:::aws-sdk:s3:getObject"
    assert states["ReadValidation"]["Assign"] == {
        "validation": OPEN + " $parse($states.result.Body) " + CLOSE
    }
    drift = states["DriftGate"]
    assert [c["Next"] for c in drift["Choices"]] == ["TrainOrTune", "NotifyBlocked"]
    assert drift["Default"] == "NotifyFailure" and "failure" in drift["Assign"]
    assert states["TrainOrTune"]["Choices"][0] == {"Condition": OPEN + " $run.tune " + CLOSE, "Next": "Tune"}
    assert states["TrainOrTune"]["Default"] == "Train"
    assert nxt["Train"] == "Evaluate" and nxt["Tune"] == "DescribeBestTrainingJob"
    assert nxt["DescribeBestTrainingJob"] == "Evaluate"
    assert states["Evaluate"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"] == ["evaluate"]
    assert nxt["Evaluate"] == "ReadEvaluation" and nxt["ReadEvaluation"] == "ModelGate"
    gate = states["ModelGate"]
    assert [c["Next"] for c in gate["Choices"]] == ["PromoteCandidate", "NotifyFailure"]
    assert gate["Default"] == "NotifyBlocked"
    chain = [
        "PromoteCandidate",
        "VerifyArtifact",
        "CreateModel",
        "CreateEndpointConfig",
        "DryRun",
    ]
    assert [nxt[a] for a in chain[:-1]] == chain[1:]
    assert states["DryRun"]["Choices"][0]["Next"] == "NotifyDryRun"
    assert states["DryRun"]["Default"] == "CheckOtherRunsBeforeDeploy"
    assert nxt["CheckOtherRunsBeforeDeploy"] == "StillOnlyRun"
    assert states["StillOnlyRun"]["Choices"][0]["Next"] == "CheckProduction"
    assert nxt["CheckProduction"] == "ProductionUnchanged"
    unchanged = states["ProductionUnchanged"]
    assert [c["Next"] for c in unchanged["Choices"]] == ["ProductionChanged", "UpdateEndpoint"]
    assert unchanged["Default"] == "CreateEndpoint"
    assert nxt["UpdateEndpoint"] == nxt["CreateEndpoint"] == "WaitForEndpoint"
    ready = states["EndpointReady"]
    assert [c["Next"] for c in ready["Choices"]] == ["NotifySuccess", "EndpointRolledBack", "EndpointFailed"]
    assert nxt["NotifySuccess"] == "Deployed" and states["Deployed"]["Type"] == "Succeed"
    assert nxt["NotifyBlocked"] == "Blocked" and states["Blocked"]["Type"] == "Succeed"
    assert nxt["NotifyDryRun"] == "DryRunDone" and states["DryRunDone"]["Type"] == "Succeed"


def test_update_endpoint_is_blue_green_with_alarm_rollback(machine):
    config = machine["States"]["UpdateEndpoint"]["Arguments"]["DeploymentConfig"]
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
        catch = [c for c in state["Catch"] if "States.ALL" in c["ErrorEquals"]]
        # A promotion whose key exists goes on to verify it (PromotedBefore); every other error fails.
        expected = {"NotifyFailure": "Failed", "PromoteCandidate": "PromotedBefore"}.get(
            name, "NotifyFailure"
        )
        assert [c["Next"] for c in catch] == [expected], name
        if name != "NotifyFailure":
            assert set(catch[0]["Assign"]["failure"]) == {"Error", "Cause", "state"}, name
    message = machine["States"]["NotifyFailure"]["Arguments"]["Message"]
    assert all(part in message for part in ("Execution.Name", "$failure.Error", "$failure.Cause"))
    failed = machine["States"]["Failed"]
    assert (
        failed["Type"] == "Fail"
        and "$failure.Error" in failed["Error"]
        and "$failure.Cause" in failed["Cause"]
    )


def test_names_fit_sagemaker_limits(machine):
    states = machine["States"]
    assert states["Init"]["Assign"]["id"] == OPEN + " $hash($states.context.Execution.Name, 'MD5') " + CLOSE
    names = {
        ("ValidateData", "ProcessingJobName"): "validate",
        ("Evaluate", "ProcessingJobName"): "evaluate",
        ("Train", "TrainingJobName"): "train",
        ("CreateModel", "ModelName"): "model",
        ("CreateEndpointConfig", "EndpointConfigName"): "config",
    }
    for (state, field), kind in names.items():
        assert expression(states[state]["Arguments"][field]) == f"'{kind}-' & $id", state
        assert len(kind) + 1 + HASH_LENGTH <= SAGEMAKER_NAME_LIMIT
    assert expression(states["Tune"]["Arguments"]["HyperParameterTuningJobName"]) == "$id"
    assert HASH_LENGTH <= TUNING_NAME_LIMIT


def test_model_spec_reaches_training_and_tuning(asl_text):
    """Metric definitions, ranges and the objective come from the model spec, never from the ASL."""
    from {{ cookiecutter.package_name }}_emulator import jsonata

    assert "roc_auc" not in asl_text and 'ContinuousParameterRanges": [' not in asl_text
    states = rendered_machine(asl_text)["States"]
    train, tune = states["Train"]["Arguments"], states["Tune"]["Arguments"]
    definitions = jsonata.evaluate(expression(train["AlgorithmSpecification"]["MetricDefinitions"]), {})
    assert definitions == metrics.metric_definitions()
    objective = tune["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert jsonata.evaluate(expression(objective), {}) == metrics.tuning_objective()
    line = metrics.format_for_logs(dict.fromkeys(metrics.METRICS[settings.PROBLEM_TYPE], 0.5), "train")
    found = {d["Name"] for d in definitions if re.search(d["Regex"], line)}
    assert found == {f"train:{name}" for name in metrics.METRICS[settings.PROBLEM_TYPE]}


def test_network_isolation_everywhere(machine):
    states = machine["States"]
    assert states["Train"]["Arguments"]["EnableNetworkIsolation"] is True
    assert states["Tune"]["Arguments"]["TrainingJobDefinition"]["EnableNetworkIsolation"] is True
    assert states["CreateModel"]["Arguments"]["EnableNetworkIsolation"] is True
    for job in ("ValidateData", "Evaluate"):
        assert states[job]["Arguments"]["NetworkConfig"] == {"EnableNetworkIsolation": True}, job
        # The production model reaches the isolated job as a channel, not over the network.
        assert "'InputName': 'production'" in states[job]["Arguments"]["ProcessingInputs"], job


def job_settings(arguments: dict) -> dict:
    """A job request's volume, time limit and (training only) input modes, as written in the ASL."""
    found = {"time": arguments["StoppingCondition"]["MaxRuntimeInSeconds"]}
    if "ResourceConfig" in arguments:  # a training job or a tuning job's definition
        found["volume"] = arguments["ResourceConfig"]["VolumeSizeInGB"]
        found["mode"] = arguments["AlgorithmSpecification"]["TrainingInputMode"]
        found["channels"] = arguments["InputDataConfig"]
    else:
        found["volume"] = arguments["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"]
        found["inputs"] = arguments["ProcessingInputs"]
    return found


def test_every_job_takes_the_run_volume_time_limit_and_input_mode(machine):
    """Init's checked values, never a number fixed in the ASL (the execution input's sizes)."""
    states = machine["States"]
    jobs = {
        "Train": states["Train"]["Arguments"],
        "Tune": states["Tune"]["Arguments"]["TrainingJobDefinition"],
        "ValidateData": states["ValidateData"]["Arguments"],
        "Evaluate": states["Evaluate"]["Arguments"],
    }
    for name, arguments in jobs.items():
        found = job_settings(arguments)
        assert found["volume"] == f"{OPEN} $run.volume_size_gb {CLOSE}", name
        assert found["time"] == f"{OPEN} $run.max_runtime_seconds {CLOSE}", name
        if "mode" in found:
            assert found["mode"] == f"{OPEN} $run.training_input_mode {CLOSE}", name
            # A channel's InputMode overrides the job's: each must follow the run's too.
            assert found["channels"].count("'InputMode': $run.training_input_mode") == 2, name
            assert "'InputMode': 'File'" not in found["channels"], name
        else:  # S3InputMode has File and Pipe only: processing inputs stay File
            assert "'S3InputMode': 'File'" in found["inputs"] and "FastFile" not in found["inputs"], name


def test_roles_are_split_per_job_kind(machine):
    states = machine["States"]
    assert states["Train"]["Arguments"]["RoleArn"] == "${TrainingRoleArn}"
    assert states["Tune"]["Arguments"]["TrainingJobDefinition"]["RoleArn"] == "${TrainingRoleArn}"
    # Validate and evaluate each have a role: only evaluate's may write the decision (issue 22).
    assert states["ValidateData"]["Arguments"]["RoleArn"] == "${ValidateRoleArn}"
    assert states["Evaluate"]["Arguments"]["RoleArn"] == "${EvaluateRoleArn}"
    assert states["CreateModel"]["Arguments"]["ExecutionRoleArn"] == "${HostingRoleArn}"
    assert "SageMakerRoleArn" not in json.dumps(machine)


def test_the_deployed_model_is_the_verified_copy(machine):
    states = machine["States"]
    gate_rule = states["ModelGate"]["Choices"][0]
    assert "candidate_sha256" in gate_rule["Condition"]
    assert (
        gate_rule["Assign"]["model_key"]
        == OPEN + " 'models/' & $evaluation.candidate_sha256 & '/model.tar.gz' " + CLOSE
    )
    assert states["PromoteCandidate"]["Resource"] == "arn:aws:states:::aws-sdk:s3:copyObject"
    assert expression(states["PromoteCandidate"]["Arguments"]["Key"]) == "$model_key"
    verify = states["VerifyArtifact"]["Arguments"]
    assert verify["FunctionName"] == "${VerifyArtifactFunctionArn}"
    assert expression(verify["Payload"]["ExpectedSha256"]) == "$evaluation.candidate_sha256"
    data_url = states["CreateModel"]["Arguments"]["PrimaryContainer"]["ModelDataUrl"]
    assert expression(data_url) == "'s3://${DataBucket}/' & $model_key"


def assigned(state: dict) -> set[str]:
    """The variables a state assigns: its own Assign, its Choice rules' and its Catchers'."""
    names = set(state.get("Assign", {}))
    for branch in [*state.get("Choices", []), *state.get("Catch", [])]:
        names |= set(branch.get("Assign", {}))
    return names


def test_the_gated_files_digest_goes_from_the_decision_to_the_serving_container(machine):
    """Issue 22: a promoting decision needs a 64-hex model_files_sha256; the verify Lambda checks the
    archive unpacks to those files, and CreateModel hands the digest, from the execution's own read
    of the decision, to the serving launcher (which refuses other files)."""
    states = machine["States"]
    assert (
        "$contains($evaluation.model_files_sha256, /^[0-9a-f]{64}$/)"
        in states["ModelGate"]["Choices"][0]["Condition"]
    )
    invalid = states["ModelGate"]["Choices"][1]["Assign"]["failure"]
    assert invalid["Error"] == "InvalidDecision" and "model_files_sha256" in invalid["Cause"]
    payload = states["VerifyArtifact"]["Arguments"]["Payload"]
    assert expression(payload["ExpectedFilesSha256"]) == "$evaluation.model_files_sha256"
    environment = states["CreateModel"]["Arguments"]["PrimaryContainer"]["Environment"]
    assert expression(environment["MODEL_FILES_SHA256"]) == "$evaluation.model_files_sha256"
    # ReadEvaluation is the only writer of $evaluation: the digest is the one this execution read.
    assert [name for name, state in states.items() if "evaluation" in assigned(state)] == ["ReadEvaluation"]
    for end in ("Deployed", "DryRunDone"):
        assert expression(states[end]["Output"]["model_files_sha256"]) == "$evaluation.model_files_sha256", (
            end
        )
    for notify in ("NotifySuccess", "NotifyDryRun"):
        assert "$evaluation.model_files_sha256" in states[notify]["Arguments"]["Message"], notify


def test_the_promotion_writes_once_and_pins_the_version_it_verified(machine):
    """Issue 22: a digest key is written once (If-None-Match: * on the copy), the verify Lambda reads
    the version the copy wrote and names it, and the model and the run record that version."""
    states = machine["States"]
    promote = states["PromoteCandidate"]
    assert promote["Arguments"]["IfNoneMatch"] == "*"
    # S3 sends no version id for an unversioned bucket's object: its version is "null".
    assert expression(promote["Assign"]["model_version"]) == (
        "$exists($states.result.VersionId) ? $states.result.VersionId : 'null'"
    )
    assert expression(states["VerifyArtifact"]["Arguments"]["Payload"]["VersionId"]) == "$model_version"
    assert (
        expression(states["VerifyArtifact"]["Assign"]["model_version"]) == "$states.result.Payload.version_id"
    )
    tags = {t["Key"]: t["Value"] for t in states["CreateModel"]["Arguments"]["Tags"]}
    assert expression(tags["model-version-id"]) == "$model_version"
    for end in ("Deployed", "DryRunDone"):
        assert expression(states[end]["Output"]["model_version_id"]) == "$model_version", end


@pytest.mark.parametrize(
    ("cause", "verify_existing"),
    [
        # What S3 answers a copy whose If-None-Match fails (HTTP 412, code PreconditionFailed).
        ("At least one of the pre-conditions you specified did not hold (Service: S3, Status Code: 412, "
         "Request ID: X)", True),
        ("PreconditionFailed: At least one of the pre-conditions you specified did not hold", True),
        ("Access Denied (Service: S3, Status Code: 403, Request ID: X)", False),
        ("The specified key does not exist. (Service: S3, Status Code: 404)", False),
        (None, False),
    ],
)  # fmt: skip
def test_only_an_existing_key_sends_a_failed_copy_on_to_verification(machine, cause, verify_existing):
    from {{ cookiecutter.package_name }}_emulator import jsonata

    choice = machine["States"]["PromotedBefore"]
    assert choice["Default"] == "NotifyFailure"
    (rule,) = choice["Choices"]
    assert rule["Next"] == "VerifyArtifact" and rule["Assign"] == {"model_version": None}
    failure = {"Error": "S3.S3Exception", "Cause": cause, "state": "PromoteCandidate"}
    assert jsonata.evaluate(expression(rule["Condition"]), {"failure": failure}) is verify_existing


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


def test_model_tokens_survive_json_and_jsonata_quoting():
    from {{ cookiecutter.package_name }}_emulator import jsonata

    value = {"name": 'it\'s "quoted" \\ back', "values": ["a'b", 1.5, None]}
    text = '{"x": "' + OPEN + " $parse('${RunDefaults}') " + CLOSE + '"}'
    rendered = json.loads(render_model_tokens(text, {"RunDefaults": embedded_json(value)}))
    assert jsonata.evaluate(expression(rendered["x"]), {}) == value


def test_render_model_tokens_leaves_cloudformation_tokens():
    text = '{"a": "${RunDefaults}", "b": "${DataBucket}"}'
    assert json.loads(render_model_tokens(text, {"RunDefaults": "x"})) == {"a": "x", "b": "${DataBucket}"}
    with pytest.raises(DefinitionError, match="no model value for: RunDefaults"):
        render_model_tokens(text, {})


{% raw -%}
# ------------------------------------------------------------------ JSONata states and variables
@pytest.fixture
def jsonata_good() -> dict:
    catch = [
        {"ErrorEquals": ["States.ALL"], "Assign": {"why": "{% $states.errorOutput %}"}, "Next": "Failed"}
    ]
    retry = [{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 2}]
    return {
        "QueryLanguage": "JSONata",
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Pass",
                "Assign": {"name": "{% $states.context.Execution.Name %}"},
                "Next": "Pick",
            },
            "Pick": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $name = 'a' %}", "Assign": {"picked": 1}, "Next": "Work"}],
                "Default": "Work",
                "Assign": {"picked": 2},
            },
            "Work": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Arguments": {"TopicArn": "${Topic}", "Message": "{% $name & $string($picked) %}"},
                "Retry": retry,
                "Catch": catch,
                "Next": "Done",
            },
            "Done": {
                "Type": "Succeed",
                "Output": "{% ($local := 1; [1, 2] ~> $map(function($v) { $v + $local })) %}",
            },
            "Failed": {"Type": "Fail", "Cause": "{% $string($why) %}"},
        },
    }


def jsonata_problems(machine: dict) -> list[str]:
    return asl_check.check(json.dumps(machine))


def test_jsonata_good_fixture_passes(jsonata_good):
    assert jsonata_problems(jsonata_good) == []


def test_catches_a_variable_no_state_assigns(jsonata_good):
    jsonata_good["States"]["Work"]["Arguments"]["Message"] = "{% $nmae %}"
    assert jsonata_problems(jsonata_good) == [
        "Work.Arguments.Message: $nmae is never assigned (no Assign sets it)"
    ]


def test_catches_a_variable_missing_on_one_path(jsonata_good):
    del jsonata_good["States"]["Pick"]["Assign"]  # the Default path no longer sets $picked
    assert jsonata_problems(jsonata_good) == [
        "Work.Arguments.Message: $picked is not assigned on every path from StartAt to here"
    ]


def test_a_state_reads_its_own_assign_only_from_the_next_state_on(jsonata_good):
    # Assign and Output of one state see the values from before it (workflow variables guide).
    jsonata_good["States"]["Start"]["Output"] = "{% $name %}"
    assert jsonata_problems(jsonata_good) == [
        "Start.Output: $name is not assigned on every path from StartAt to here"
    ]


def test_a_catch_carries_only_its_own_assign(jsonata_good):
    jsonata_good["States"]["Failed"]["Cause"] = "{% $missing_after_failure %}"
    jsonata_good["States"]["Work"]["Assign"] = {"missing_after_failure": 1}
    assert jsonata_problems(jsonata_good) == [
        "Failed.Cause: $missing_after_failure is not assigned on every path from StartAt to here"
    ]


def test_catches_jsonpath_fields_eval_and_syntax_in_jsonata_states(jsonata_good):
    pytest.importorskip("jsonata")
    work = jsonata_good["States"]["Work"]
    work["ResultPath"] = "$.x"
    work["Arguments"]["Subject"] = "{% $eval('1') %}"
    work["Arguments"]["Message"] = "{% $name & %}"
    found = jsonata_problems(jsonata_good)
    assert "Work.ResultPath: not allowed in a JSONata state (use Arguments, Output, Assign)" in found
    assert "Work.Arguments.Subject: $eval is not available in Step Functions (use $parse)" in found
    assert any(p.startswith("Work.Arguments.Message: JSONata syntax error") for p in found)


@pytest.mark.parametrize("name", ["1st", "has-dash", "states", "x" * 81])
def test_catches_bad_variable_names(jsonata_good, name):
    jsonata_good["States"]["Start"]["Assign"][name] = 1
    assert any(
        p.startswith(f"Start.Assign.{name}: not a variable name") for p in jsonata_problems(jsonata_good)
    )


def test_variables_read_skips_strings_regexes_and_local_names():
    assert asl_check.variables_read("$a & '$b' & \"$c\" & $match($d, /\\$e/) & ($f := 1; $f)") == {"a", "d"}
    assert asl_check.variables_read("$map($xs, function($v, $i) { $v + $i + $k })") == {"xs", "k"}
    assert asl_check.variables_read("$states.input & $hash($x, 'MD5') & ${Token}") == {"x"}
{%- endraw %}
