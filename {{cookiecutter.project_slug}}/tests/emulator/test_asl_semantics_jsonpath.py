"""The offline interpreter against the AWS Step Functions documentation.

Each case is an example from the Step Functions developer guide (input, definition, documented
output), run through the moto server of the emulator with its hooks installed. They pin the
semantics the pipeline's state machine relies on, including the places where plain moto deviates
from AWS and ``local.integrations`` corrects it. No Docker: Pass/Choice/Fail states and Lambda
tasks whose tiny zips run in a subprocess.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import re
import uuid

import pytest

from {{ cookiecutter.package_name }}_emulator.control_plane import ControlPlane
from {{ cookiecutter.package_name }}_emulator.lambda_runner import zip_sources

ROLE = "arn:aws:iam::123456789012:role/local-emulator"
_names = itertools.count()


def lambda_arn(cp: ControlPlane, name: str, source: str) -> str:
    """Deploy ``source`` as handler.py of function ``name`` (once per module) and return its ARN."""
    client = cp.client("lambda")
    try:
        return client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    except client.exceptions.ResourceNotFoundException:
        pass
    created = client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": zip_sources({"handler.py": source})},
        Timeout=30,
    )
    return created["FunctionArn"]


def run(cp: ControlPlane, states: dict, payload=None, start: str | None = None) -> dict:
    definition = {"StartAt": start or next(iter(states)), "States": states}
    return cp.run_definition(definition, payload, name=f"asl-{next(_names)}")


def output(described: dict):
    assert described["status"] == "SUCCEEDED", f"{described.get('error')}: {described.get('cause')}"
    return json.loads(described["output"])


def events(cp: ControlPlane, described: dict, kind: str) -> list[dict]:
    return [e for e in cp.history(described["executionArn"]) if e["type"] == kind]


HELLO = """
def handler(event, context):
    return "Hello, " + event["who"] + "!"
"""
# "Handling a failure using Catch": a Python function raising a custom error.
CUSTOM_ERROR = """
class CustomError(Exception):
    pass

def handler(event, context):
    raise CustomError("This is a custom error!")
"""
EMR_LIKE = """
def handler(event, context):
    return {"resourceType": "elasticmapreduce", "resource": "createCluster.sync",
            "output": {"SdkHttpMetadata": {"HttpStatusCode": 200}, "ClusterId": "j-EXAMPLE1CLUSTER"}}
"""


# -- Input and output processing ("Processing input and output in Step Functions") ------------
def test_parameters_select_and_add_static_values(cp: ControlPlane) -> None:
    # Doc example "Parameters": a selection of the input plus a static value.
    payload = {
        "comment": "Example for Parameters.",
        "product": {
            "details": {"color": "blue", "size": "small", "material": "cotton"},
            "availability": "in stock",
            "sku": "2317",
            "cost": "$23",
        },
    }
    state = {
        "Type": "Pass",
        "Parameters": {
            "comment": "Selecting what I care about.",
            "MyDetails": {
                "size.$": "$.product.details.size",
                "exists.$": "$.product.availability",
                "StaticValue": "foo",
            },
        },
        "End": True,
    }
    assert output(run(cp, {"A": state}, payload)) == {
        "comment": "Selecting what I care about.",
        "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"},
    }


def test_input_result_and_output_paths_on_a_lambda_task(cp: ControlPlane) -> None:
    # Doc example "Manipulating state data with paths": InputPath feeds the Lambda, ResultPath
    # inserts the result into the *raw* input, OutputPath keeps a sub-tree of that.
    arn = lambda_arn(cp, "hello", HELLO)
    payload = {
        "comment": "An input comment.",
        "data": {"val1": 23, "val2": 17},
        "extra": "foo",
        "lambda": {"who": "AWS Step Functions"},
    }
    state = {
        "Type": "Task",
        "Resource": arn,
        "InputPath": "$.lambda",
        "ResultPath": "$.data.lambdaresult",
        "OutputPath": "$.data",
        "End": True,
    }
    assert output(run(cp, {"A": state}, payload)) == {
        "val1": 23,
        "val2": 17,
        "lambdaresult": "Hello, AWS Step Functions!",
    }


@pytest.mark.parametrize(
    ("result_path", "expected"),
    [
        # Doc "ResultPath": $ replaces the input with the result, null discards the result,
        # a path adds it next to the input.
        ("$", "Hello, AWS Step Functions!"),
        (None, {"who": "AWS Step Functions", "details": "Default example"}),
        (
            "$.taskresult",
            {
                "who": "AWS Step Functions",
                "details": "Default example",
                "taskresult": "Hello, AWS Step Functions!",
            },
        ),
    ],
    ids=["dollar", "null", "path"],
)
def test_result_path(cp: ControlPlane, result_path, expected) -> None:
    arn = lambda_arn(cp, "hello", HELLO)
    state = {"Type": "Task", "Resource": arn, "ResultPath": result_path, "End": True}
    assert (
        output(run(cp, {"A": state}, {"who": "AWS Step Functions", "details": "Default example"})) == expected
    )


def test_result_selector_then_result_path(cp: ControlPlane) -> None:
    # Doc example "ResultSelector": pick fields of the task result before ResultPath merges it.
    arn = lambda_arn(cp, "emr-like", EMR_LIKE)
    state = {
        "Type": "Task",
        "Resource": arn,
        "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
        "ResultPath": "$.EMROutput",
        "End": True,
    }
    assert output(run(cp, {"A": state}, {"comment": "input"})) == {
        "comment": "input",
        "EMROutput": {"ClusterId": "j-EXAMPLE1CLUSTER", "ResourceType": "elasticmapreduce"},
    }


def test_lambda_invoke_integration_wraps_the_payload(cp: ControlPlane) -> None:
    # arn:aws:states:::lambda:invoke returns the Invoke response; the function result is Payload.
    arn = lambda_arn(cp, "hello", HELLO)
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": arn, "Payload": {"who.$": "$.name"}},
        "ResultSelector": {"greeting.$": "$.Payload", "status.$": "$.StatusCode"},
        "End": True,
    }
    assert output(run(cp, {"A": state}, {"name": "moto"})) == {"greeting": "Hello, moto!", "status": 200}


def test_definite_path_with_index_yields_the_value(cp: ControlPlane) -> None:
    # "Paths": a path without wildcards/slices/filters names one node, here a string, not a list.
    state = {
        "Type": "Pass",
        "Parameters": {"name.$": "$.items[0].name", "all.$": "$.items[*].name"},
        "End": True,
    }
    assert output(run(cp, {"A": state}, {"items": [{"name": "x"}, {"name": "y"}]})) == {
        "name": "x",
        "all": ["x", "y"],
    }


def test_string_output_is_json_text(cp: ControlPlane) -> None:
    # DescribeExecution output is JSON: a string result is quoted.
    described = run(cp, {"A": {"Type": "Pass", "Result": "hello", "End": True}})
    assert described["output"] == '"hello"'


# -- Choice --------------------------------------------------------------------------------
CHOICE_STATES = {
    # The "Choice state" example of the developer guide, with Pass states naming the branch taken.
    "ChoiceStateX": {
        "Type": "Choice",
        "Choices": [
            {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
            {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
            {
                "And": [
                    {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                    {"Variable": "$.value", "NumericLessThan": 30},
                ],
                "Next": "ValueInTwenties",
            },
        ],
        "Default": "DefaultState",
    },
    **{
        name: {"Type": "Pass", "Result": name, "End": True}
        for name in ("Public", "ValueIsZero", "ValueInTwenties", "DefaultState")
    },
}


@pytest.mark.parametrize(
    ("payload", "branch"),
    [
        ({"type": "Public", "value": 5}, "Public"),
        ({"type": "Private", "value": 0}, "ValueIsZero"),
        ({"type": "Private", "value": 25}, "ValueInTwenties"),
        ({"type": "Private", "value": 35}, "DefaultState"),
    ],
)
def test_choice_rules(cp: ControlPlane, payload, branch) -> None:
    assert output(run(cp, CHOICE_STATES, payload)) == branch


def test_choice_on_an_indexed_path(cp: ControlPlane) -> None:
    states = {
        "C": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.variants[0].status", "StringEquals": "InService", "Next": "Yes"}],
            "Default": "No",
        },
        "Yes": {"Type": "Pass", "Result": "yes", "End": True},
        "No": {"Type": "Pass", "Result": "no", "End": True},
    }
    assert output(run(cp, states, {"variants": [{"status": "InService"}]})) == "yes"


def test_choice_on_a_missing_variable_fails_unless_is_present(cp: ControlPlane) -> None:
    # AWS fails the execution (States.Runtime) when a rule's Variable is not in the input; only
    # IsPresent tests for absence. moto alone would take the Default branch.
    states = {
        "C": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.decision", "StringEquals": "proceed", "Next": "Go"}],
            "Default": "Stop",
        },
        "Go": {"Type": "Pass", "End": True},
        "Stop": {"Type": "Pass", "Result": "stopped", "End": True},
    }
    described = run(cp, states, {"other": 1})
    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert "Invalid path '$.decision'" in described["cause"]

    states["C"]["Choices"].insert(0, {"Variable": "$.decision", "IsPresent": False, "Next": "Stop"})
    assert output(run(cp, states, {"other": 1})) == "stopped"


def test_no_choice_matched_without_default(cp: ControlPlane) -> None:
    states = {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.v", "StringEquals": "a", "Next": "A"}]},
        "A": {"Type": "Succeed"},
    }
    described = run(cp, states, {"v": "b"})
    assert (described["status"], described["error"]) == ("FAILED", "States.NoChoiceMatched")


def test_string_equals_path(cp: ControlPlane) -> None:
    # The pipeline's VerifyEndpointConfig compares two fields of the input.
    states = {
        "C": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.a", "StringEqualsPath": "$.b", "Next": "Same"}],
            "Default": "Different",
        },
        "Same": {"Type": "Pass", "Result": "same", "End": True},
        "Different": {"Type": "Pass", "Result": "different", "End": True},
    }
    assert output(run(cp, states, {"a": "cfg-1", "b": "cfg-1"})) == "same"
    assert output(run(cp, states, {"a": "cfg-0", "b": "cfg-1"})) == "different"


@pytest.mark.parametrize(
    ("value", "branch"),
    [("log-2024.txt", "star"), ("log-*.txt", "literal"), ("log-?.txt", "star"), ("log.txt", "none")],
)
def test_string_matches(cp: ControlPlane, value: str, branch: str) -> None:
    # "Choice workflow state": * matches any run of characters; \\* is a literal star (the JSON of
    # "log-\*.txt"); nothing else (?, [ ]) is a wildcard.
    states = {
        "C": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.file", "StringMatches": "log-\\*.txt", "Next": "Literal"},
                {"Variable": "$.file", "StringMatches": "log-*.txt", "Next": "Star"},
            ],
            "Default": "None",
        },
        **{
            name: {"Type": "Pass", "Result": name.lower(), "End": True}
            for name in ("Literal", "Star", "None")
        },
    }
    assert output(run(cp, states, {"file": value})) == branch


@pytest.mark.parametrize(
    ("payload", "status"),
    [({"input_value": 42}, "CORRECT"), ({"input_value": 0}, "INCORRECT"), ({}, "UNKNOWN")],
)
def test_choice_rule_assign_and_state_assign(cp: ControlPlane, payload: dict, status: str) -> None:
    # "Passing data between states with variables": a matching rule's own Assign applies; the
    # state's top-level Assign only with Default. moto dropped a JSONPath rule's Assign.
    states = {
        "CheckInputState": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.input_value",
                    "IsPresent": False,
                    "Assign": {"status": "UNKNOWN"},
                    "Next": "Final",
                },
                {
                    "Variable": "$.input_value",
                    "NumericEquals": 42,
                    "Assign": {"status": "CORRECT"},
                    "Next": "Final",
                },
            ],
            "Assign": {"status": "INCORRECT", "guess.$": "$.input_value"},
            "Default": "Final",
        },
        "Final": {"Type": "Pass", "Parameters": {"result.$": "$status"}, "End": True},
    }
    assert output(run(cp, states, payload)) == {"result": status}


# -- Errors: Retry, Catch, Fail ------------------------------------------------------------
def test_custom_lambda_error_is_caught_by_name(cp: ControlPlane) -> None:
    # Doc "Handling a failure using Catch": the Python exception class is the error name and
    # the runtime's error document is the Cause.
    arn = lambda_arn(cp, "custom-error", CUSTOM_ERROR)
    states = {
        "A": {
            "Type": "Task",
            "Resource": arn,
            "Catch": [{"ErrorEquals": ["CustomError"], "ResultPath": "$.error", "Next": "Handled"}],
            "End": True,
        },
        "Handled": {"Type": "Pass", "End": True},
    }
    result = output(run(cp, states, {"in": 1}))
    assert result["in"] == 1
    assert result["error"]["Error"] == "CustomError"
    cause = json.loads(result["error"]["Cause"])
    assert (cause["errorType"], cause["errorMessage"]) == ("CustomError", "This is a custom error!")
    assert cause["stackTrace"], "the runtime reports the stack trace"


def test_first_matching_retrier_applies_then_catch(cp: ControlPlane) -> None:
    # Retriers are tried in order and the first whose ErrorEquals matches applies; once its
    # MaxAttempts are used up the Catch takes the error ("Handling errors": Retry, Catch).
    arn = lambda_arn(cp, "custom-error", CUSTOM_ERROR)
    states = {
        "A": {
            "Type": "Task",
            "Resource": arn,
            "Retry": [
                {"ErrorEquals": ["States.Timeout"], "MaxAttempts": 5, "IntervalSeconds": 1},
                {"ErrorEquals": ["CustomError"], "MaxAttempts": 2, "IntervalSeconds": 1, "BackoffRate": 1},
                {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5, "IntervalSeconds": 1},
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    }
    described = run(cp, states)
    result = output(described)
    assert set(result) == {"Error", "Cause"}, "Catch without ResultPath replaces the input with the error"
    assert result["Error"] == "CustomError"
    assert len(events(cp, described, "LambdaFunctionScheduled")) == 3, "1 attempt + MaxAttempts 2"


def test_max_attempts_zero_never_retries_and_backoff_grows(cp: ControlPlane) -> None:
    arn = lambda_arn(cp, "custom-error", CUSTOM_ERROR)
    no_retry = {
        "A": {
            "Type": "Task",
            "Resource": arn,
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}],
            "End": True,
        }
    }
    described = run(cp, no_retry)
    assert (described["status"], described["error"]) == ("FAILED", "CustomError")
    assert len(events(cp, described, "LambdaFunctionScheduled")) == 1

    # IntervalSeconds 1, BackoffRate 2: the waits are 1 s then 2 s.
    backoff = {
        "A": {
            "Type": "Task",
            "Resource": arn,
            "Retry": [
                {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2}
            ],
            "End": True,
        }
    }
    described = run(cp, backoff)
    starts = [e["timestamp"] for e in events(cp, described, "LambdaFunctionScheduled")]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 2
    assert 0.9 <= gaps[0] < 1.9 and 1.9 <= gaps[1] < 3.5, gaps


@pytest.mark.parametrize("error", ["EndpointFailed", "States.TaskFailed"])
def test_fail_state_takes_error_and_cause_from_paths(cp: ControlPlane, error: str) -> None:
    # The pipeline's final Fail state: ErrorPath/CausePath re-throw the caught error, a States.*
    # one included ("Fail workflow state").
    states = {"F": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}}
    described = run(cp, states, {"error": {"Error": error, "Cause": "status Failed"}})
    assert (described["status"], described["error"], described["cause"]) == ("FAILED", error, "status Failed")


# -- Intrinsic functions ("Intrinsic functions" page examples) ------------------------------
INTRINSICS = [
    ("States.Format('Hello, my name is {}.', $.name)", {"name": "Arnav"}, "Hello, my name is Arnav."),
    ("States.StringToJson($.someString)", {"someString": '{"number": 20}'}, {"number": 20}),
    (
        "States.JsonToString($.someJson)",
        {"someJson": {"name": "Foo", "year": 2020}},
        '{"name":"Foo","year":2020}',
    ),
    ("States.Array('Foo', 2020, $.someJson)", {"someJson": {"a": 1}}, ["Foo", 2020, {"a": 1}]),
    # null is a value like any other (moto's lexer dropped it).
    ("States.Array('Foo', null, $.someJson)", {"someJson": {"a": 1}}, ["Foo", None, {"a": 1}]),
    (
        "States.ArrayGetItem($.inputArray, $.index)",
        {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5},
        6,
    ),
    (
        "States.ArrayPartition($.inputArray, 4)",
        {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]},
        [[1, 2, 3, 4], [5, 6, 7, 8], [9]],
    ),
    ("States.ArrayContains($.inputArray, $.lookingFor)", {"inputArray": [1, 2, 3], "lookingFor": 2}, True),
    ("States.ArrayRange(1, 9, 2)", {}, [1, 3, 5, 7, 9]),
    ("States.ArrayLength($.inputArray)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, 9),
    ("States.ArrayUnique($.inputArray)", {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}, [1, 2, 3, 4]),
    (
        "States.Hash($.Data, $.Algorithm)",
        {"Data": "input data", "Algorithm": "SHA-1"},
        "aaff4a450a104cd177d28d18d74485e8cae074b7",  # pragma: allowlist secret (documented SHA-1)
    ),
    ("States.Base64Encode($.input)", {"input": "Data to encode"}, "RGF0YSB0byBlbmNvZGU="),
    ("States.Base64Decode($.base64)", {"base64": "RGF0YSB0byBlbmNvZGU="}, "Data to encode"),
    ("States.MathAdd($.value1, $.step)", {"value1": 111, "step": -1}, 110),
    (
        "States.StringSplit($.inputString, $.splitter)",
        {"inputString": "1,2,3,4,5", "splitter": ","},
        ["1", "2", "3", "4", "5"],
    ),
    ("States.StringToJson('30')", {}, 30),
    # The pipeline's resource names: nested intrinsics, literal text with ':', '/', '(' and ';'.
    (
        "States.Format('s3://bucket/runs/{} (run; {})', $.a, States.JsonToString($.b))",
        {"a": "x", "b": [1]},
        "s3://bucket/runs/x (run; [1])",
    ),
]


@pytest.mark.parametrize(
    ("expression", "payload", "expected"),
    INTRINSICS,
    ids=[e.split("(")[0] + str(i) for i, (e, _, _) in enumerate(INTRINSICS)],
)
def test_intrinsic_functions(cp: ControlPlane, expression, payload, expected) -> None:
    state = {"Type": "Pass", "Parameters": {"value.$": expression}, "End": True}
    assert output(run(cp, {"A": state}, payload)) == {"value": expected}


def test_uuid_and_hash_of_execution_name(cp: ControlPlane) -> None:
    state = {
        "Type": "Pass",
        "Parameters": {
            "uuid.$": "States.UUID()",
            "name.$": "$$.Execution.Name",
            "id.$": "States.Format('train-{}', States.Hash($$.Execution.Name, 'MD5'))",
        },
        "End": True,
    }
    result = output(run(cp, {"A": state}))
    assert uuid.UUID(result["uuid"]).version == 4
    assert result["id"] == "train-" + hashlib.md5(result["name"].encode()).hexdigest()


def test_intrinsic_escapes(cp: ControlPlane) -> None:
    # "Intrinsic functions", Reserved characters: \' is ', \{ and \} are braces that are not a
    # placeholder, \\ is a backslash. moto's lexer knows none of them.
    expression = (
        "States.Format('It\\'s \\" + "{" + "{}\\}, C:\\\\temp', $.x)"
    )  # split: "{" twice would be Jinja
    state = {"Type": "Pass", "Parameters": {"value.$": expression}, "End": True}
    assert output(run(cp, {"A": state}, {"x": "here"})) == {"value": "It's {here}, C:\\temp"}


# -- Context object ------------------------------------------------------------------------
def test_context_object(cp: ControlPlane) -> None:
    state = {
        "Type": "Pass",
        "Parameters": {
            "name.$": "$$.Execution.Name",
            "machine.$": "$$.StateMachine.Name",
            "started.$": "$$.Execution.StartTime",
            "state.$": "$$.State.Name",
            "entered.$": "$$.State.EnteredTime",
        },
        "End": True,
    }
    described = run(cp, {"Start": state})
    result = output(described)
    assert result["name"] == described["name"] == result["machine"]
    assert result["state"] == "Start"
    # ISO 8601 with milliseconds and Z, e.g. "2019-03-26T20:14:13.192Z".
    for moment in (result["started"], result["entered"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", moment), moment
    started = datetime.datetime.fromisoformat(result["started"].replace("Z", "+00:00"))
    assert abs((started - described["startDate"]).total_seconds()) < 2


# -- Flow ----------------------------------------------------------------------------------
def test_parallel_and_map(cp: ControlPlane) -> None:
    states = {
        "P": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "B1",
                    "States": {"B1": {"Type": "Pass", "Parameters": {"b.$": "$.x"}, "End": True}},
                },
                {"StartAt": "B2", "States": {"B2": {"Type": "Pass", "Result": 2, "End": True}}},
            ],
            "ResultPath": "$.parallel",
            "Next": "M",
        },
        "M": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {
                "StartAt": "I",
                "States": {
                    "I": {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($.n, 1)"}, "End": True}
                },
            },
            "ResultPath": "$.mapped",
            "End": True,
        },
    }
    result = output(run(cp, states, {"x": "one", "items": [{"n": 1}, {"n": 2}]}))
    assert result["parallel"] == [{"b": "one"}, 2]
    assert result["mapped"] == [{"v": 2}, {"v": 3}]


def test_wait_seconds_path(cp: ControlPlane) -> None:
    states = {
        "W": {"Type": "Wait", "SecondsPath": "$.seconds", "Next": "Done"},
        "Done": {"Type": "Pass", "End": True},
    }
    described = run(cp, states, {"seconds": 1})
    assert output(described) == {"seconds": 1}
    assert (described["stopDate"] - described["startDate"]).total_seconds() >= 1
