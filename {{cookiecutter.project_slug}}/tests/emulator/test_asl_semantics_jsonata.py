"""The offline interpreter's JSONata against the AWS Step Functions documentation.

Each case is an example from "Transforming data with JSONata in Step Functions", "Passing data
between states with variables", "Choice workflow state" or "Handling errors", run through the
moto server of the emulator with ``local.jsonata`` installed (the engine and its corrections).
The JSONPath cases stay in test_local_asl_semantics.py. No Docker: Pass/Choice/Fail states and a
tiny Lambda.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re

import pytest

from {{ cookiecutter.package_name }}_emulator import jsonata, patches
from {{ cookiecutter.package_name }}_emulator.control_plane import ControlPlane
from {{ cookiecutter.package_name }}_emulator.lambda_runner import zip_sources

{% raw -%}
# The ASL examples below use JSONata's own delimiters: Jinja leaves the rest of this file alone.


ROLE = "arn:aws:iam::123456789012:role/local-emulator"
_names = itertools.count()
ECHO = """
def handler(event, context):
    return event
"""


@pytest.fixture(scope="module", autouse=True)
def engine(cp: ControlPlane) -> None:
    patches.install(jsonata)  # a no-op once the control plane installs it with the other hooks


def run(cp: ControlPlane, states: dict, payload=None, start: str | None = None) -> dict:
    definition = {"QueryLanguage": "JSONata", "StartAt": start or next(iter(states)), "States": states}
    return cp.run_definition(definition, payload, name=f"jsonata-{next(_names)}")


def output(described: dict):
    assert described["status"] == "SUCCEEDED", f"{described.get('error')}: {described.get('cause')}"
    return json.loads(described["output"])


def failed(described: dict) -> tuple[str, str]:
    assert described["status"] == "FAILED", described
    return described.get("error"), described.get("cause") or ""


def echo_arn(cp: ControlPlane) -> str:
    client = cp.client("lambda")
    try:
        return client.get_function(FunctionName="jsonata-echo")["Configuration"]["FunctionArn"]
    except client.exceptions.ResourceNotFoundException:
        pass
    return client.create_function(
        FunctionName="jsonata-echo",
        Runtime="python3.11",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": zip_sources({"handler.py": ECHO})},
        Timeout=30,
    )["FunctionArn"]


# -- "Transforming data with JSONata": the conversion example ---------------------------------
def test_arguments_conversion_example(cp: ControlPlane) -> None:
    # Input {"title": "Doctor"}, variable customerName "María": static text stays, {% %} evaluates,
    # "$customerName" without {% %} is plain text.
    states = {
        "Set": {"Type": "Pass", "Assign": {"customerName": "María"}, "Next": "Task"},
        "Task": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": echo_arn(cp),
                "Payload": {
                    "static": "Hello",
                    "title": "{% $states.input.title %}",
                    "name": "{% $customerName %}",
                    "not-evaluated": "$customerName",
                },
            },
            "Output": "{% $states.result.Payload %}",
            "End": True,
        },
    }
    assert output(run(cp, states, {"title": "Doctor"})) == {
        "static": "Hello",
        "title": "Doctor",
        "name": "María",
        "not-evaluated": "$customerName",
    }


# -- "Passing data between states with variables" ----------------------------------------------
def test_assign_and_output_see_the_values_from_before_the_state(cp: ControlPlane) -> None:
    # Evaluation of Assign and Output: all expressions of a state read the variables as they were
    # when it began; the new values are visible from the next state on (so x and y swap).
    states = {
        "Init": {"Type": "Pass", "Assign": {"x": 1, "y": 2}, "Next": "Swap"},
        "Swap": {
            "Type": "Pass",
            "Assign": {"x": "{% $y %}", "y": "{% $x %}"},
            "Output": {"x_in_output": "{% $x %}"},
            "Next": "Read",
        },
        "Read": {
            "Type": "Pass",
            "Output": {"x": "{% $x %}", "y": "{% $y %}", "before": "{% $states.input %}"},
            "End": True,
        },
    }
    assert output(run(cp, states)) == {"x": 2, "y": 1, "before": {"x_in_output": 1}}


def test_string_variables_with_quotes_and_backslashes(cp: ControlPlane) -> None:
    # Variables are JSON values: a string with quotes or backslashes is data, never expression text.
    text = 'say "hi" \\ it\'s {% not %} code'
    states = {
        "Set": {"Type": "Pass", "Assign": {"text": "{% $states.input.text %}"}, "Next": "Use"},
        "Use": {
            "Type": "Pass",
            "Output": {"same": "{% $text = $states.input.text %}", "text": "{% $text %}"},
            "End": True,
        },
    }
    assert output(run(cp, states, {"text": text})) == {"same": True, "text": text}


def test_a_variable_over_256_kib_fails_the_state(cp: ControlPlane) -> None:
    # "Variable limits": a single variable is at most 256 KiB.
    states = {"Big": {"Type": "Pass", "Assign": {"big": "{% $pad('', 270000, 'x') %}"}, "End": True}}
    error, cause = failed(run(cp, states))
    assert error == "States.QueryEvaluationError"
    assert "big" in cause and "256 KiB" in cause


def test_context_object_start_time_is_iso_text(cp: ControlPlane) -> None:
    # "Context object": Execution.StartTime is an ISO 8601 string, e.g. "2019-03-26T20:14:13.192Z".
    states = {
        "Ctx": {
            "Type": "Pass",
            "Output": {
                "start": "{% $states.context.Execution.StartTime %}",
                "name": "{% $states.context.Execution.Name %}",
                "state": "{% $states.context.State.Name %}",
            },
            "End": True,
        }
    }
    result = output(run(cp, states))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", result["start"]), result
    assert result["name"].startswith("jsonata-") and result["state"] == "Ctx"


# -- Functions Step Functions adds (and the one it removes) ------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$partition([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)", [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
        ("$partition([1, 2, 3, 4], 3)", [[1, 2, 3], [4]]),
        ("$range(0, 10, 2)", [0, 2, 4, 6, 8, 10]),
        ("$range(10, 0, -5)", [10, 5, 0]),
        ("$hash('input data', 'SHA-256')", hashlib.sha256(b"input data").hexdigest()),
        ("$hash('input data', 'MD5')", hashlib.md5(b"input data").hexdigest()),
        ("$parse('{\"key\": [1, null]}')", {"key": [1, None]}),
        ("$random(7) = $random(7)", True),
        ("$random() < 1", True),
    ],
)
def test_step_functions_functions(cp: ControlPlane, expression: str, expected) -> None:
    states = {"F": {"Type": "Pass", "Output": {"value": "{% " + expression + " %}"}, "End": True}}
    assert output(run(cp, states))["value"] == expected


def test_uuid_is_version_4(cp: ControlPlane) -> None:
    states = {"F": {"Type": "Pass", "Output": {"a": "{% $uuid() %}", "b": "{% $uuid() %}"}, "End": True}}
    result = output(run(cp, states))
    v4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch(v4, result["a"]) and result["a"] != result["b"]


def test_eval_is_not_available(cp: ControlPlane) -> None:
    states = {"F": {"Type": "Pass", "Output": "{% $eval('1 + 1') %}", "End": True}}
    error, cause = failed(run(cp, states))
    assert error == "States.QueryEvaluationError" and "$eval" in cause


# -- Errors ("Handling errors": States.QueryEvaluationError) ------------------------------------
@pytest.mark.parametrize(
    ("expression", "in_cause"),
    [
        ("{% $states.input.missing %}", "undefined"),
        ("{% 'a' + 1 %}", "must evaluate to a number"),
        ("{% $error('input field \"tune\" must be a boolean') %}", 'input field "tune" must be a boolean'),
    ],
)
def test_expression_errors_are_query_evaluation_errors(
    cp: ControlPlane, expression: str, in_cause: str
) -> None:
    states = {"F": {"Type": "Pass", "Output": {"v": expression}, "End": True}}
    error, cause = failed(run(cp, states))
    assert error == "States.QueryEvaluationError"
    assert in_cause in cause


def test_retry_and_catch_see_a_query_evaluation_error_in_task_arguments(cp: ControlPlane) -> None:
    states = {
        "Task": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {"FunctionName": echo_arn(cp), "Payload": {"n": "{% 1 + 'x' %}"}},
            # Retriers and catchers match it by name like any task error ("Handling errors").
            "Retry": [
                {"ErrorEquals": ["States.QueryEvaluationError"], "MaxAttempts": 2, "IntervalSeconds": 1}
            ],
            "Catch": [
                {
                    "ErrorEquals": ["States.QueryEvaluationError"],
                    "Output": {"caught": "{% $states.errorOutput.Error %}"},
                    "Next": "Done",
                }
            ],
            "End": True,
        },
        "Done": {"Type": "Succeed"},
    }
    described = run(cp, states)
    assert output(described) == {"caught": "States.QueryEvaluationError"}
    attempts = [e for e in cp.history(described["executionArn"]) if e["type"] == "EvaluationFailed"]
    assert len(attempts) == 3  # the first try and two retries, then the Catch


# -- "Choice workflow state" -----------------------------------------------------------------
def choice_states(default: bool) -> dict:
    choice = {
        "Type": "Choice",
        "Choices": [
            {
                "Condition": "{% $states.input.n > 10 %}",
                "Assign": {"hits": "{% $hits + 1 %}"},
                "Output": {"branch": "big", "n": "{% $states.input.n %}"},
                "Next": "Done",
            },
            {"Condition": "{% $states.input.n > 5 %}", "Output": {"branch": "medium"}, "Next": "Done"},
        ],
    }
    if default:
        choice |= {"Default": "Done", "Assign": {"hits": -1}, "Output": {"branch": "default"}}
    return {
        "Start": {"Type": "Pass", "Assign": {"hits": 0}, "Next": "Pick"},
        "Pick": choice,
        "Done": {"Type": "Pass", "Output": "{% $merge([$states.input, {'hits': $hits}]) %}", "End": True},
    }


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (20, {"branch": "big", "n": 20, "hits": 1}),  # the rule's Assign and Output, once
        (7, {"branch": "medium", "hits": 0}),
        (1, {"branch": "default", "hits": -1}),  # the state's own Assign and Output on Default
    ],
)
def test_choice_rule_and_state_assign(cp: ControlPlane, n: int, expected: dict) -> None:
    assert output(run(cp, choice_states(default=True), {"n": n})) == expected


def test_no_choice_matched_without_default(cp: ControlPlane) -> None:
    error, _ = failed(run(cp, choice_states(default=False), {"n": 1}))
    assert error == "States.NoChoiceMatched"


def test_choice_without_default_still_evaluates_each_rule_once(cp: ControlPlane) -> None:
    assert output(run(cp, choice_states(default=False), {"n": 20})) == {"branch": "big", "n": 20, "hits": 1}


# -- Creation-time validation leaves no trace --------------------------------------------------
def test_an_expression_that_does_not_parse_is_refused_at_creation(cp: ControlPlane) -> None:
    sfn = cp.client("stepfunctions")
    broken = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Output": {"v": "{% 1 + %}"}, "End": True}},
    }
    with pytest.raises(sfn.exceptions.ClientError, match="Invalid JSONata expression"):
        sfn.create_state_machine(name="jsonata-syntax", definition=json.dumps(broken), roleArn=ROLE)


def test_a_refused_definition_does_not_change_how_later_ones_parse(cp: ControlPlane) -> None:
    sfn = cp.client("stepfunctions")
    refused = {
        "QueryLanguage": "JSONata",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"a.$": "$.a"}, "End": True}},
    }
    with pytest.raises(sfn.exceptions.ClientError):
        sfn.create_state_machine(name="jsonata-refused", definition=json.dumps(refused), roleArn=ROLE)
    jsonpath = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"a.$": "$.a"}, "End": True}}}
    described = cp.run_definition(jsonpath, {"a": 5}, name=f"jsonpath-after-refusal-{next(_names)}")
    assert output(described) == {"a": 5}


# -- Map state: the item in ItemSelector ("Map workflow state", "Context object") ---------------
WHO = [{"who": "bob"}, {"who": "meg"}, {"who": "joe"}]
DOC_MAP_RESULT = [
    {"ContextIndex": 0, "ContextValue": {"who": "bob"}},
    {"ContextIndex": 1, "ContextValue": {"who": "meg"}},
    {"ContextIndex": 2, "ContextValue": {"who": "joe"}},
]


def map_state(selector, **fields) -> dict:
    processor = {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}}
    return {"Type": "Map", "ItemSelector": selector, "ItemProcessor": processor, "End": True, **fields}


def test_item_selector_reads_the_map_item_from_the_context(cp: ControlPlane) -> None:
    # The Context object page's Map example in JSONata: Index and Value of each item. Three forms
    # in one run: an object, one expression, and no Items (the state input is the array).
    by_field = {
        "ContextIndex": "{% $states.context.Map.Item.Index %}",
        "ContextValue": "{% $states.context.Map.Item.Value %}",
    }
    as_expression = "{% {'ContextIndex': $states.context.Map.Item.Index, 'ContextValue': $states.context.Map.Item.Value} %}"
    branches = [
        {"StartAt": "Fields", "States": {"Fields": map_state(by_field, Items="{% $states.input.who %}")}},
        {"StartAt": "Expr", "States": {"Expr": map_state(as_expression, Items="{% $states.input.who %}")}},
        {
            "StartAt": "Input",
            "States": {
                "Pick": {"Type": "Pass", "Output": "{% $states.input.who %}", "Next": "Whole"},
                "Whole": map_state(by_field),
            },
        },
    ]
    branches[2]["StartAt"] = "Pick"
    states = {"All": {"Type": "Parallel", "Branches": branches, "End": True}}
    assert output(run(cp, states, {"who": WHO})) == [DOC_MAP_RESULT] * 3


def test_item_batcher_groups_items_with_the_batch_input(cp: ControlPlane) -> None:
    # "ItemBatcher (Map)": each child execution gets {"Items": [...], "BatchInput": {...}}, at most
    # MaxItemsPerBatch items; ItemSelector applies to each item first. moto's parser refused the field.
    states = {
        "Batches": map_state(
            {"n": "{% $states.context.Map.Item.Value %}"},
            Items="{% $states.input.items %}",
            ItemBatcher={"MaxItemsPerBatch": 2, "BatchInput": {"factCheck": "{% $states.input.stamp %}"}},
            ItemProcessor={
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Batch",
                "States": {"Batch": {"Type": "Pass", "End": True}},
            },
        )
    }
    batch_input = {"factCheck": "TIMESTAMP"}
    assert output(run(cp, states, {"items": [1, 2, 3, 4, 5], "stamp": "TIMESTAMP"})) == [
        {"Items": [{"n": 1}, {"n": 2}], "BatchInput": batch_input},
        {"Items": [{"n": 3}, {"n": 4}], "BatchInput": batch_input},
        {"Items": [{"n": 5}], "BatchInput": batch_input},
    ]
    # MaxInputBytesPerBatch alone: as many items as fit in the child's input.
    two = {"Items": [{"n": "aaaa"}, {"n": "bbbb"}]}
    states["Batches"]["ItemBatcher"] = {"MaxInputBytesPerBatch": len(json.dumps(two, separators=(",", ":")))}
    assert output(run(cp, states, {"items": ["aaaa", "bbbb", "cccc"]})) == [
        {"Items": [{"n": "aaaa"}, {"n": "bbbb"}]},
        {"Items": [{"n": "cccc"}]},
    ]


# -- Definitions Step Functions refuses at creation ---------------------------------------------
def result_in(field: str) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {
            "FunctionName": "f",
            "Payload": {"x": "{% $states.result.x %}" if field == "Arguments" else 1},
        },
        "End": True,
    }


@pytest.mark.parametrize(
    ("states", "in_message"),
    [
        # VARIABLES: Assign names whole variables; "a.b" would assign part of one.
        ({"A": {"Type": "Pass", "Assign": {"a.b": 1}, "End": True}}, "/States/A/Assign"),
        # JSONATA, "Reserved variable": $states.result only in a Task/Map/Parallel's Output and Assign.
        ({"A": {"Type": "Pass", "Output": "{% $states.result %}", "End": True}}, "/States/A/Output"),
        ({"A": result_in("Arguments")}, "/States/A/Arguments"),
        # "ItemBatcher (Map)": only in a Distributed Map.
        ({"A": map_state({}, Items="{% [1] %}", ItemBatcher={"MaxItemsPerBatch": 2})}, "Distributed Map"),
        # "Handling errors": Retry and Catch only on Task, Parallel and Map states.
        (
            {"A": {"Type": "Pass", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}], "Next": "B"}}
            | {"B": {"Type": "Succeed"}},
            "'Catch' is not supported by state type 'Pass'",
        ),
    ],
    ids=["partial-variable", "result-in-pass", "result-in-arguments", "batcher-inline", "catch-on-pass"],
)
def test_definitions_aws_refuses_are_refused_at_creation(
    cp: ControlPlane, states: dict, in_message: str
) -> None:
    sfn = cp.client("stepfunctions")
    definition = {"QueryLanguage": "JSONata", "StartAt": "A", "States": states}
    with pytest.raises(sfn.exceptions.InvalidDefinition) as refused:
        sfn.create_state_machine(
            name=f"refused-{next(_names)}", definition=json.dumps(definition), roleArn=ROLE
        )
    assert in_message in refused.value.response["Error"]["Message"]


def test_states_result_in_a_task_output_is_accepted(cp: ControlPlane) -> None:
    task = result_in("Output") | {"Output": {"x": "{% $states.result.StatusCode %}"}}
    definition = {"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": task}}
    sfn = cp.client("stepfunctions")
    created = sfn.create_state_machine(
        name=f"accepted-{next(_names)}", definition=json.dumps(definition), roleArn=ROLE
    )
    assert created["stateMachineArn"]


# -- Seconds fields ("Wait workflow state", "Task workflow state") --------------------------------
@pytest.mark.parametrize(
    ("state", "in_cause"),
    [
        ({"Type": "Wait", "Seconds": "{% '1' %}", "End": True}, "Expected 'integer', but was 'string'"),
        ({"Type": "Wait", "Seconds": "{% -1 %}", "End": True}, "outside the allowed range 0 to 99999999"),
        ({"Type": "Wait", "Seconds": "{% 100000000 %}", "End": True}, "outside the allowed range"),
        (
            result_in("Output") | {"TimeoutSeconds": "{% 'abc' %}"},
            "'TimeoutSeconds' returned an unexpected result type",
        ),
        (result_in("Output") | {"TimeoutSeconds": "{% 0 %}"}, "outside the allowed range 1 to 99999999"),
        (
            result_in("Output") | {"HeartbeatSeconds": "{% 1.5 %}"},
            "'HeartbeatSeconds' returned an unexpected",
        ),
    ],
    ids=[
        "wait-string",
        "wait-negative",
        "wait-too-long",
        "timeout-string",
        "timeout-zero",
        "heartbeat-float",
    ],
)
def test_seconds_that_are_not_integers_in_range_fail_the_state(
    cp: ControlPlane, state: dict, in_cause: str
) -> None:
    described = run(cp, {"S": state})
    error, cause = failed(described)
    assert error == "States.QueryEvaluationError"
    assert in_cause in cause
    history = cp.history(described["executionArn"])
    entered = next(e["id"] for e in history if e["type"].endswith("StateEntered"))
    evaluation = next(e["evaluationFailedEventDetails"] for e in history if e["type"] == "EvaluationFailed")
    assert evaluation["state"] == "S"  # a required member
    assert f"executing the state 'S' (entered at the event id #{entered}). " in evaluation["cause"]
    assert f"(entered at the event id #{entered})" in cause


def test_step_functions_functions_round_non_integers_down(cp: ControlPlane) -> None:
    # JSONATA, "JSONata functions provided by Step Functions": integer arguments round down.
    values = {
        "partition": "{% $partition([1, 2, 3, 4, 5], 2.9) %}",
        "range": "{% $range(0.5, 4.7, 1.9) %}",
        "random": "{% $random(1.5) = $random(1) %}",
    }
    assert output(run(cp, {"F": {"Type": "Pass", "Output": values, "End": True}})) == {
        "partition": [[1, 2], [3, 4], [5]],
        "range": [0, 1, 2, 3, 4],
        "random": True,
    }
{%- endraw %}
