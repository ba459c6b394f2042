"""The hooks of ``local.integrations``: SageMaker tasks and Lambda code run against moto as on AWS.

SageMaker jobs here are moto's own records (no data plane attached): the tests drive a job's
status from the test to check that ``.sync`` waits, and reports failures the way AWS does.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time

import pytest
from botocore.exceptions import ClientError
from moto.sagemaker import models as sagemaker_models

from {{ cookiecutter.package_name }}_emulator.control_plane import ControlPlane
from {{ cookiecutter.package_name }}_emulator.lambda_runner import run_zip, zip_sources

ROLE = "arn:aws:iam::123456789012:role/local-emulator"
_names = itertools.count()


def run(cp: ControlPlane, states: dict, payload=None) -> dict:
    definition = {"StartAt": next(iter(states)), "States": states}
    return cp.run_definition(definition, payload, name=f"int-{next(_names)}")


def output(described: dict):
    assert described["status"] == "SUCCEEDED", f"{described.get('error')}: {described.get('cause')}"
    return json.loads(described["output"])


def caught(resource: str, parameters: dict) -> dict:
    """A task whose error (if any) is caught into $.error, so the test can read Error and Cause."""
    return {
        "T": {
            "Type": "Task",
            "Resource": resource,
            "Parameters": parameters,
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    }


def training_job(name: str) -> dict:
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "local-image:latest", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/runs/x/training"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def processing_job(name: str) -> dict:
    return {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": "local-image:latest", "ContainerEntrypoint": ["validate"]},
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
    }


# -- SageMaker optimised integration -------------------------------------------------------
def test_request_response_actions_create_state_in_moto(cp: ControlPlane) -> None:
    states = {
        "Model": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sagemaker:createModel",
            "Parameters": {
                "ModelName": "m1",
                "ExecutionRoleArn": ROLE,
                "PrimaryContainer": {
                    "Image": "img:latest",
                    "ModelDataUrl": "s3://b/model.tar.gz",
                    "Environment": {},
                },
            },
            "ResultPath": "$.model",
            "Next": "Config",
        },
        "Config": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sagemaker:createEndpointConfig",
            "Parameters": {
                "EndpointConfigName": "c1",
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": "m1",
                        "InstanceType": "ml.m5.large",
                        "InitialInstanceCount": 1,
                    }
                ],
            },
            "ResultPath": "$.config",
            "Next": "Endpoint",
        },
        "Endpoint": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sagemaker:createEndpoint",
            "Parameters": {"EndpointName": "e1", "EndpointConfigName": "c1"},
            "ResultPath": "$.endpoint",
            "End": True,
        },
    }
    result = output(run(cp, states))
    assert result["model"]["ModelArn"].endswith(":model/m1")
    assert result["config"]["EndpointConfigArn"].endswith(":endpoint-config/c1")
    assert result["endpoint"]["EndpointArn"].endswith(":endpoint/e1")
    sagemaker = cp.client("sagemaker")
    assert (
        sagemaker.describe_model(ModelName="m1")["PrimaryContainer"]["ModelDataUrl"] == "s3://b/model.tar.gz"
    )
    assert sagemaker.describe_endpoint(EndpointName="e1")["EndpointConfigName"] == "c1"


@pytest.mark.parametrize(
    ("action", "request_for", "status_field"),
    [
        ("createTrainingJob", training_job, "TrainingJobStatus"),
        ("createProcessingJob", processing_job, "ProcessingJobStatus"),
    ],
)
def test_sync_returns_the_final_description(cp: ControlPlane, action, request_for, status_field) -> None:
    name = f"sync-{next(_names)}"
    result = output(run(cp, caught(f"arn:aws:states:::sagemaker:{action}.sync", request_for(name))))
    assert "error" not in result
    assert result[status_field] == "Completed"
    assert name in json.dumps(result)
    # Timestamps as Step Functions shows them for SageMaker: epoch milliseconds.
    assert isinstance(result["CreationTime"], int) and result["CreationTime"] > 1_600_000_000_000


@pytest.fixture
def jobs_start_in_progress(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch):
    """moto completes jobs at once; start them InProgress and return a function that ends them."""
    for cls, field in (
        (sagemaker_models.FakeTrainingJob, "training_job_status"),
        (sagemaker_models.FakeProcessingJob, "processing_job_status"),
    ):
        original = cls.__init__

        def __init__(self, *args, _original=original, _field=field, **kwargs):
            _original(self, *args, **kwargs)
            setattr(self, _field, "InProgress")

        monkeypatch.setattr(cls, "__init__", __init__)
    backend = sagemaker_models.sagemaker_backends["123456789012"][cp.region]

    def finish_later(
        kind: str, name: str, status: str, reason: str = "", after_s: float = 1.0
    ) -> threading.Thread:
        def finish() -> None:
            table = backend.training_jobs if kind == "training" else backend.processing_jobs
            deadline = time.monotonic() + 30
            while name not in table and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(after_s)
            job = table[name]
            setattr(job, f"{kind}_job_status", status)
            if reason:
                job.failure_reason = reason

        thread = threading.Thread(target=finish, daemon=True)
        thread.start()
        return thread

    return finish_later


def test_sync_waits_while_the_job_runs(cp: ControlPlane, jobs_start_in_progress) -> None:
    name = f"slow-{next(_names)}"
    jobs_start_in_progress("training", name, "Completed", after_s=1.5)
    described = run(cp, caught("arn:aws:states:::sagemaker:createTrainingJob.sync", training_job(name)))
    assert output(described)["TrainingJobStatus"] == "Completed"
    assert (described["stopDate"] - described["startDate"]).total_seconds() >= 1.5


@pytest.mark.parametrize(
    ("kind", "action", "status"),
    [
        ("training", "createTrainingJob", "Failed"),
        ("processing", "createProcessingJob", "Failed"),
        ("training", "createTrainingJob", "Stopped"),
    ],
)
def test_sync_failure_is_task_failed_with_the_description_as_cause(
    cp: ControlPlane, jobs_start_in_progress, kind, action, status
) -> None:
    # AWS fails a .sync task whose job ends Failed/Stopped with States.TaskFailed and the job's
    # Describe* output as Cause, so a Catch can read FailureReason from it.
    name = f"fail-{next(_names)}"
    jobs_start_in_progress(kind, name, status, reason="AlgorithmError: boom")
    request = training_job(name) if kind == "training" else processing_job(name)
    states = caught(f"arn:aws:states:::sagemaker:{action}.sync", request)
    states["Caught"] = {
        "Type": "Pass",
        "Parameters": {"error.$": "$.error.Error", "described.$": "States.StringToJson($.error.Cause)"},
        "End": True,
    }
    result = output(run(cp, states))
    assert result["error"] == "States.TaskFailed"
    assert result["described"][f"{kind.capitalize()}JobStatus"] == status
    assert result["described"]["FailureReason"] == "AlgorithmError: boom"


def test_api_errors_are_amazon_sagemaker_exception(cp: ControlPlane) -> None:
    result = output(
        run(
            cp,
            caught(
                "arn:aws:states:::sagemaker:createEndpoint",
                {"EndpointName": "e-missing", "EndpointConfigName": "no-such-config"},
            ),
        )
    )
    assert result["error"]["Error"] == "SageMaker.AmazonSageMakerException"
    assert "no-such-config" in result["error"]["Cause"]
    assert "Error Code: ValidationException" in result["error"]["Cause"]


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:states:::sagemaker:createModel.sync",
        "arn:aws:states:::sagemaker:createTrainingJob.waitForTaskToken",
        "arn:aws:states:::sagemaker:createFlowDefinition",
    ],
)
def test_unsupported_sagemaker_resources_are_refused_at_creation(cp: ControlPlane, resource) -> None:
    sfn = cp.client("stepfunctions")
    definition = {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": resource, "Parameters": {}, "End": True}},
    }
    # moto answers InvalidDefinition with an empty error code: match the message.
    with pytest.raises(ClientError, match=r"not supported|not recognized"):
        sfn.create_state_machine(name=f"bad-{next(_names)}", definition=json.dumps(definition), roleArn=ROLE)


def test_tuning_job_sync(cp: ControlPlane) -> None:
    definition = training_job("unused")
    del definition["TrainingJobName"]
    request = {
        "HyperParameterTuningJobName": f"tune-{next(_names)}",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": definition,
    }
    result = output(run(cp, caught("arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync", request)))
    assert result["HyperParameterTuningJobStatus"] == "Completed"


# -- aws-sdk integrations the pipeline uses ------------------------------------------------
def test_aws_sdk_errors_use_the_aws_service_names(cp: ControlPlane) -> None:
    cp.client("s3").create_bucket(
        Bucket="sdk-errors", CreateBucketConfiguration={"LocationConstraint": cp.region}
    )
    missing_key = output(
        run(cp, caught("arn:aws:states:::aws-sdk:s3:getObject", {"Bucket": "sdk-errors", "Key": "nope.json"}))
    )
    assert missing_key["error"]["Error"] == "S3.NoSuchKeyException"
    missing_endpoint = output(
        run(cp, caught("arn:aws:states:::aws-sdk:sagemaker:describeEndpoint", {"EndpointName": "nope"}))
    )
    assert missing_endpoint["error"]["Error"] == "SageMaker.SageMakerException"
    assert "Could not find endpoint" in missing_endpoint["error"]["Cause"]


def test_s3_get_object_body_feeds_string_to_json(cp: ControlPlane) -> None:
    # ReadValidation/ReadEvaluation: getObject Body is text; StringToJson makes it a document.
    s3 = cp.client("s3")
    s3.create_bucket(Bucket="decisions", CreateBucketConfiguration={"LocationConstraint": cp.region})
    s3.put_object(
        Bucket="decisions",
        Key="decision.json",
        Body=json.dumps({"decision": "proceed", "share_drifted": 0.1}).encode(),
    )
    states = {
        "T": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
            "Parameters": {"Bucket": "decisions", "Key": "decision.json"},
            "ResultSelector": {"result.$": "States.StringToJson($.Body)"},
            "End": True,
        }
    }
    assert output(run(cp, states)) == {"result": {"decision": "proceed", "share_drifted": 0.1}}


# -- Lambda: the deployed zip in a subprocess ----------------------------------------------
def call(source: str, event=None, **kwargs):
    defaults = {
        "endpoint_url": "http://127.0.0.1:9",
        "region": "eu-west-1",
        "function_name": "f",
        "timeout_s": 20,
    }
    return run_zip(zip_sources({"handler.py": source}), "handler.handler", event or {}, **(defaults | kwargs))


def test_run_zip_returns_the_json_result_and_logs() -> None:
    result = call(
        "def handler(event, context):\n    print('hi from', context.function_name)\n    return {'got': event}\n",
        {"a": 1},
        function_name="fn",
    )
    assert (json.loads(result.payload), result.errored) == ({"got": {"a": 1}}, False)
    assert "hi from fn" in result.logs


@pytest.mark.parametrize(
    ("source", "handler", "error_type"),
    [
        ("def handler(e, c):\n    raise KeyError('x')\n", "handler.handler", "KeyError"),
        ("import no_such_module\n", "handler.handler", "Runtime.ImportModuleError"),
        ("def other(e, c):\n    return 1\n", "handler.handler", "Runtime.HandlerNotFound"),
        ("def handler(e, c):\n    return object()\n", "handler.handler", "Runtime.MarshalError"),
        ("import os\ndef handler(e, c):\n    os._exit(3)\n", "handler.handler", "Runtime.ExitError"),
    ],
    ids=["exception", "import", "handler", "marshal", "exit"],
)
def test_run_zip_reports_errors_like_the_python_runtime(source, handler, error_type) -> None:
    result = run_zip(
        zip_sources({"handler.py": source}),
        handler,
        {},
        endpoint_url="http://127.0.0.1:9",
        region="eu-west-1",
        function_name="f",
    )
    assert result.errored
    assert json.loads(result.payload)["errorType"] == error_type


def test_run_zip_times_out_like_lambda() -> None:
    result = call("import time\ndef handler(e, c):\n    time.sleep(30)\n", timeout_s=1)
    assert result.errored
    assert json.loads(result.payload)["errorType"] == "Sandbox.Timedout"


def test_run_zip_environment_is_the_functions_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_ONLY_SETTING", "leak")
    source = (
        "import importlib.util, os\n"
        "def handler(e, c):\n"
        "    return {k: os.environ.get(k) for k in ('AWS_ENDPOINT_URL', 'AWS_REGION', 'MY_SETTING', 'HOST_ONLY_SETTING')} | "
        "{'project_importable': importlib.util.find_spec('{{ cookiecutter.package_name }}') is not None}\n"
    )
    result = call(source, endpoint_url="http://127.0.0.1:1234", environment={"MY_SETTING": "on"})
    assert json.loads(result.payload) == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1234",
        "AWS_REGION": "eu-west-1",
        "MY_SETTING": "on",
        "HOST_ONLY_SETTING": None,  # the host's environment does not leak in
        # Only the zip and the runtime's packages: the project is not on the function's path.
        "project_importable": False,
    }


def test_lambda_invoke_through_moto_runs_the_zip_against_moto(cp: ControlPlane) -> None:
    cp.client("s3").create_bucket(
        Bucket="seen-by-lambda", CreateBucketConfiguration={"LocationConstraint": cp.region}
    )
    source = (
        "import boto3\n"
        "def handler(event, context):\n"
        "    print('listing buckets')\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('asked to fail')\n"
        "    return sorted(b['Name'] for b in boto3.client('s3').list_buckets()['Buckets'])\n"
    )
    client = cp.client("lambda")
    client.create_function(
        FunctionName="lister",
        Runtime="python3.11",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": zip_sources({"handler.py": source})},
        Environment={"Variables": {"UNUSED": "1"}},
    )
    ok = client.invoke(FunctionName="lister", Payload=b"{}", LogType="Tail")
    assert "seen-by-lambda" in json.loads(ok["Payload"].read())
    assert "FunctionError" not in ok
    assert "listing buckets" in base64.b64decode(ok["LogResult"]).decode()

    failed = client.invoke(FunctionName="lister", Payload=json.dumps({"fail": True}).encode())
    assert "FunctionError" in failed
    body = json.loads(failed["Payload"].read())
    assert (body["errorType"], body["errorMessage"]) == ("ValueError", "asked to fail")


# -- install() -------------------------------------------------------------------------------
def test_install_is_idempotent(cp: ControlPlane) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    from {{ cookiecutter.package_name }}_emulator import integrations

    wrapper = state_task_factory.state_task_service_for
    integrations.install()
    integrations.install()
    assert state_task_factory.state_task_service_for is wrapper, "a second install() must not wrap again"
    assert wrapper.__wrapped__.__module__.endswith("state_task_service_factory")


def test_a_missing_moto_internal_names_itself_and_the_pin() -> None:
    from {{ cookiecutter.package_name }}_emulator import patches

    expected = r"moto\.stepfunctions\.nope\.thing is missing.*moto==5\.2\.5"
    with pytest.raises(patches.MotoInternalsChanged, match=expected):
        patches.private("moto.stepfunctions.nope", "thing")
