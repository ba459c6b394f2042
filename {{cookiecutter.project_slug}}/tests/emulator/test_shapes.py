"""Every answer the offline control plane gives, judged by botocore's own service models.

One moto and one data plane (a fake runtime: jobs end at once, endpoints serve nothing) for the
module. The fixture makes each call the project makes against AWS (the pipeline's task
integrations, the Lambda, the deploy CLI, the emulator's readers, the SageMaker SDK helpers), with
clients whose raw answers ``botocore_shapes.Recorder`` walks against the output shapes; a small
state machine runs the ASL's integrations so the task outputs the JSONata expressions read are
checked too. A mismatch table is printed (``-s``) and must be empty.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore_shapes import Mismatch, Recorder, mismatches, operation_name, output_shape, service_model

from {{ cookiecutter.package_name }}_emulator.control_plane import ControlPlane
from {{ cookiecutter.package_name }}_emulator.data_plane import DataPlane
from {{ cookiecutter.package_name }}_emulator.lambda_runner import zip_sources
from {{ cookiecutter.package_name }}_emulator.runtimes import Endpoint, JobResult, Runtime

{% raw -%}
# The ASL below uses JSONata's own delimiters: Jinja leaves the rest of this file alone.
ROLE = "arn:aws:iam::123456789012:role/local-emulator"
BUCKET = "shapes-bucket"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shapes:latest"
METRIC = {"Name": "validation:auc", "Regex": "validation:auc=([0-9.]+);"}
_names = itertools.count()
# The SageMaker Python SDK's helpers a user runs against the offline endpoint, and the API calls
# they make (Estimator.attach, HyperparameterTuner.attach, Session.logs_for_job).
SDK_HELPER_OPERATIONS = {
    "sagemaker.DescribeTrainingJob",
    "sagemaker.DescribeHyperParameterTuningJob",
    "sagemaker.ListTrainingJobsForHyperParameterTuningJob",
    "logs.DescribeLogStreams",
    "logs.GetLogEvents",
}
# Calls the static scan finds that are not AWS operations on moto, or are the emulator's own set-up.
NOT_CHECKED = {
    "s3.UploadFile": "boto3 transfer helper: PutObject/CreateMultipartUpload underneath",
    "s3.DownloadFile": "boto3 transfer helper: GetObject underneath",
    "ecr.GetAuthorizationToken": "docker login for a push; the emulator never pushes",
    "sagemaker.ListArtifacts": "Emulator.list_artifacts, the emulator's own method of the same name",
}


class InstantRuntime(Runtime):
    """Jobs succeed at once with a metric in their logs; endpoints are records, nothing serves."""

    name = "instant"

    def run_training(self, request: dict[str, Any]) -> JobResult:
        output = request["OutputDataConfig"]["S3OutputPath"]
        return JobResult(
            True,
            logs="epoch 1\nvalidation:auc=0.9;\n",
            model_artifacts=f"{output}/{request['TrainingJobName']}/output/model.tar.gz",
        )

    def run_processing(self, request: dict[str, Any]) -> JobResult:
        return JobResult(True, logs="validated\n")

    def start_endpoint(self, name: str, container: dict[str, Any], instance_count: int = 1) -> Endpoint:
        return Endpoint(name, "http://127.0.0.1:9", container["ModelDataUrl"])

    def stop_endpoint(self, endpoint: Endpoint) -> None:
        pass


def training_job(name: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [METRIC],
        },
        "RoleArn": ROLE,
        "HyperParameters": {"C": "1.0"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/train/"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/runs/shapes/training"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "EnableNetworkIsolation": True,
    }


def wait_until(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# -- the calls -------------------------------------------------------------------------------------
def sagemaker_calls(recorder: Recorder, cp: ControlPlane) -> dict[str, str]:
    sm = recorder.client(cp, "sagemaker")
    sm.create_training_job(**training_job("shapes-train"))
    wait_until(
        lambda: sm.describe_training_job(TrainingJobName="shapes-train")["TrainingJobStatus"] == "Completed"
    )
    sm.create_processing_job(
        ProcessingJobName="shapes-validate",
        RoleArn=ROLE,
        AppSpecification={"ImageUri": IMAGE, "ContainerEntrypoint": ["validate"]},
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        Environment={"OUTCOME": "ok"},
    )
    wait_until(
        lambda: (
            sm.describe_processing_job(ProcessingJobName="shapes-validate")["ProcessingJobStatus"]
            == "Completed"
        )
    )
    definition = {
        k: v for k, v in training_job("x").items() if k not in ("TrainingJobName", "HyperParameters")
    }
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="shapes-tune",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": METRIC["Name"]},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "C", "MinValue": "0.1", "MaxValue": "1"}]
            },
        },
        TrainingJobDefinition={**definition, "StaticHyperParameters": {"kernel": "rbf"}},
    )
    wait_until(
        lambda: (
            sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="shapes-tune")[
                "HyperParameterTuningJobStatus"
            ]
            == "Completed"
        )
    )
    with contextlib.suppress(ClientError):  # an HTTP 500 is recorded as a mismatch
        sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="shapes-tune")
    trial = sm.list_training_jobs(NameContains="shapes-tune-")["TrainingJobSummaries"][0]["TrainingJobName"]
    sm.describe_training_job(TrainingJobName=trial)
    for page in sm.get_paginator("list_training_jobs").paginate(
        SortBy="CreationTime", SortOrder="Descending"
    ):
        assert page["TrainingJobSummaries"]
    sm.list_processing_jobs(StatusEquals="Failed")
    sm.list_hyper_parameter_tuning_jobs(StatusEquals="Failed")
    with contextlib.suppress(ClientError):
        sm.list_contexts()

    container = {
        "Image": IMAGE,
        "ModelDataUrl": f"s3://{BUCKET}/models/x/model.tar.gz",
        "Environment": {"A": "1"},
    }
    sm.create_model(
        ModelName="shapes-model",
        PrimaryContainer=container,
        ExecutionRoleArn=ROLE,
        EnableNetworkIsolation=True,
    )
    sm.describe_model(ModelName="shapes-model")
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "shapes-model",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    for config in ("shapes-config-1", "shapes-config-2"):
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    sm.describe_endpoint_config(EndpointConfigName="shapes-config-1")
    sm.list_endpoint_configs(MaxResults=100)
    sm.create_endpoint(EndpointName="shapes-endpoint", EndpointConfigName="shapes-config-1")
    wait_until(lambda: sm.describe_endpoint(EndpointName="shapes-endpoint")["EndpointStatus"] == "InService")
    sm.update_endpoint(EndpointName="shapes-endpoint", EndpointConfigName="shapes-config-2")
    sm.describe_endpoint(EndpointName="shapes-endpoint")
    return {"trial": trial}


def deploy_calls(recorder: Recorder, cp: ControlPlane) -> None:
    """What the deploy CLI (artifacts, stack, image, executions) and the Lambda call."""
    s3 = recorder.client(cp, "s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": cp.region})
    s3.head_bucket(Bucket=BUCKET)
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration={
            k: True
            for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        },
    )
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
    s3.put_object(Bucket=BUCKET, Key="data/train/train.csv", Body=b"a,b\n1,2\n")
    s3.get_object(Bucket=BUCKET, Key="data/train/train.csv")
    s3.head_object(Bucket=BUCKET, Key="data/train/train.csv")
    s3.copy_object(
        Bucket=BUCKET, Key="data/copy.csv", CopySource={"Bucket": BUCKET, "Key": "data/train/train.csv"}
    )
    s3.list_objects_v2(Bucket=BUCKET, Prefix="data/")
    s3.delete_object(Bucket=BUCKET, Key="data/copy.csv")

    recorder.client(cp, "sts").get_caller_identity()
    ecr = recorder.client(cp, "ecr")
    ecr.create_repository(repositoryName="shapes")
    ecr.describe_repositories(repositoryNames=["shapes"])
    iam = recorder.client(cp, "iam")
    iam.get_role(RoleName="local-emulator")
    cfn = recorder.client(cp, "cloudformation")
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cfn.create_stack(StackName="shapes-stack", TemplateBody=json.dumps(template))
    template["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue"}
    cfn.update_stack(StackName="shapes-stack", TemplateBody=json.dumps(template))
    cfn.describe_stacks(StackName="shapes-stack")
    cfn.describe_stack_events(StackName="shapes-stack")
    cfn.list_stack_resources(StackName="shapes-stack")


ECHO = "def handler(event, context):\n    return event\n"


def asl_calls(recorder: Recorder, cp: ControlPlane) -> dict[str, Any]:
    """The pipeline's integrations in one JSONata execution; returns the task outputs it saw."""
    lam = recorder.client(cp, "lambda")
    function = lam.create_function(
        FunctionName="shapes-echo",
        Runtime="python3.11",
        Role=ROLE,
        Handler="handler.handler",
        Code={"ZipFile": zip_sources({"handler.py": ECHO})},
    )["FunctionArn"]
    lam.get_function_configuration(FunctionName="shapes-echo")
    sns = recorder.client(cp, "sns")
    topic = sns.create_topic(Name="shapes-topic")["TopicArn"]
    sqs = recorder.client(cp, "sqs")
    queue = sqs.create_queue(QueueName="shapes-queue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    steps = [  # (variable, resource, arguments): one Task each, in this order
        ("invoke", "lambda:invoke", {"FunctionName": function, "Payload": {"ok": True}}),
        ("train", "sagemaker:createTrainingJob.sync", training_job("shapes-asl-train")),
        ("describe", "aws-sdk:sagemaker:describeTrainingJob", {"TrainingJobName": "shapes-asl-train"}),
        (
            "copy",
            "aws-sdk:s3:copyObject",
            {"Bucket": BUCKET, "Key": "data/again.csv", "CopySource": f"{BUCKET}/data/train/train.csv"},
        ),
        ("get", "aws-sdk:s3:getObject", {"Bucket": BUCKET, "Key": "data/again.csv"}),
        (
            "executions",
            "aws-sdk:sfn:listExecutions",
            {"StateMachineArn": "{% $states.context.StateMachine.Id %}"},
        ),
        ("publish", "sns:publish", {"TopicArn": topic, "Message": "done"}),
    ]
    order = [name for name, _, _ in steps] + ["Seen"]
    states: dict[str, Any] = {
        name: {
            "Type": "Task",
            "Resource": f"arn:aws:states:::{resource}",
            "Arguments": arguments,
            "Assign": {name: "{% $states.result %}"},
            "Next": following,
        }
        for (name, resource, arguments), following in zip(steps, order[1:], strict=False)
    }
    states["Seen"] = {
        "Type": "Pass",
        "Output": "{% {" + ", ".join(f"'{name}': ${name}" for name, _, _ in steps) + "} %}",
        "End": True,
    }
    sfn = recorder.client(cp, "stepfunctions")
    definition = {"QueryLanguage": "JSONata", "StartAt": steps[0][0], "States": states}
    machine = sfn.create_state_machine(name="shapes-asl", definition=json.dumps(definition), roleArn=ROLE)
    started = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    described = wait_until(
        lambda: (
            (d := sfn.describe_execution(executionArn=started["executionArn"]))["status"] != "RUNNING" and d
        ),
        timeout=120,
    )
    assert described["status"] == "SUCCEEDED", described
    sfn.list_executions(stateMachineArn=machine["stateMachineArn"])
    sfn.get_execution_history(executionArn=described["executionArn"])
    # The same calls the tasks made, answered to a client (the tasks' own answers are above).
    lam.invoke(FunctionName=function, Payload=b"{}")
    sns.publish(TopicArn=topic, Message="direct")
    waiting = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}
    idle = sfn.create_state_machine(name="shapes-wait", definition=json.dumps(waiting), roleArn=ROLE)
    running = sfn.start_execution(stateMachineArn=idle["stateMachineArn"])
    sfn.stop_execution(executionArn=running["executionArn"], cause="shapes test")
    message = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    for item in message:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=item["ReceiptHandle"])
    return json.loads(described["output"])


def sdk_helper_calls(recorder: Recorder, cp: ControlPlane, trial: str) -> None:
    """The SageMaker Python SDK (v2) against the control plane: attach to jobs, read their logs."""
    import os

    import boto3

    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker.estimator import Estimator
    from sagemaker.session import Session
    from sagemaker.tuner import HyperparameterTuner

    session = Session(
        boto_session=boto3.Session(region_name=cp.region),
        sagemaker_client=recorder.client(cp, "sagemaker"),
        sagemaker_runtime_client=cp.client("sagemaker-runtime"),
        sagemaker_config={
            "SchemaVersion": "1.0",
            "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
        },
    )
    session.boto_session.client = _recording_factory(recorder, cp, session.boto_session.client)
    estimator = Estimator.attach("shapes-train", sagemaker_session=session)
    assert estimator.model_data.endswith("shapes-train/output/model.tar.gz")
    session.logs_for_job("shapes-train", wait=False)
    tuner = HyperparameterTuner.attach("shapes-tune", sagemaker_session=session)
    trials = tuner.analytics().dataframe()
    assert trial in set(trials["TrainingJobName"]) and tuner.best_training_job() in set(
        trials["TrainingJobName"]
    )


def _recording_factory(recorder: Recorder, cp: ControlPlane, original: Any) -> Any:
    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        return (
            recorder.client(cp, service)
            if service in ("logs", "sagemaker")
            else original(service, *args, **kwargs)
        )

    return client


@pytest.fixture(scope="module")
def exercised(cp: ControlPlane) -> Iterator[tuple[Recorder, dict[str, Any]]]:
    recorder = Recorder()
    with DataPlane(InstantRuntime()):
        deploy_calls(recorder, cp)
        names = sagemaker_calls(recorder, cp)
        outputs = asl_calls(recorder, cp)
        try:
            sdk_helper_calls(recorder, cp, names["trial"])
        except Exception as error:  # recorded: the helpers must work offline as they do on AWS
            recorder.found.append(
                Mismatch("sagemaker-sdk", "status", "(helpers)", f"{type(error).__name__}: {error}"[:300])
            )
        yield recorder, outputs


# -- which operations the project uses ---------------------------------------------------------------
SERVICES = (
    "sagemaker",
    "stepfunctions",
    "s3",
    "cloudformation",
    "lambda",
    "iam",
    "sts",
    "ecr",
    "sns",
    "sqs",
    "logs",
)


def asl_operations(project_root: Path) -> set[str]:
    """``service.Operation`` of every Task resource in the pipeline's ASL (.sync adds its Describe*)."""
    text = (project_root / "pipeline" / "state_machine.asl.json").read_text()
    found = set()
    for resource in set(re.findall(r'"arn:aws:states:::([^"]+)"', text)):
        parts = resource.removeprefix("aws-sdk:").split(":")
        service, action = ("stepfunctions" if parts[0] == "sfn" else parts[0]), parts[1].removesuffix(".sync")
        found.add(f"{_prefix(service)}.{operation_name(service, action)}")
        if resource.endswith(".sync"):
            found.add(
                f"{_prefix(service)}.{operation_name(service, action.replace('create', 'describe', 1))}"
            )
    return found


def code_operations(project_root: Path, package: str) -> set[str]:
    """``service.Operation`` of every boto3 call in the Lambda, the deploy CLI and the emulator's readers."""
    files = [
        *(project_root / "lambdas").rglob("*.py"),
        *(project_root / "src" / f"{package}_deploy").rglob("*.py"),
        *(
            project_root / "src" / f"{package}_emulator" / name
            for name in ("observe.py", "run.py", "endpoint_check.py")
        ),
    ]
    names = {
        node.func.attr
        for path in files
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    found = set()
    for service in SERVICES:
        model = service_model(service)
        operations = {op.lower(): op for op in model.operation_names}
        for name in names:
            op = operations.get(name.replace("_", "").lower())
            if op and "_" in name:
                found.add(f"{_prefix(service)}.{op}")
    # upload_file/download_file are not operations but boto3 helpers; listed so the exemption is visible.
    return found | (
        {"s3.UploadFile", "s3.DownloadFile"} & {f"s3.{n.title().replace('_', '')}" for n in names}
    )


def _prefix(service: str) -> str:
    return service_model(service).service_name


# -- the tests ---------------------------------------------------------------------------------------
def test_every_operation_the_project_uses_is_exercised(
    exercised: tuple[Recorder, dict[str, Any]], project_root: Path
) -> None:
    recorder, _ = exercised
    package = next(
        p.name for p in (project_root / "src").iterdir() if p.name.endswith("_deploy")
    ).removesuffix("_deploy")
    in_use = asl_operations(project_root) | code_operations(project_root, package) | SDK_HELPER_OPERATIONS
    ambiguous = {op for op in in_use if op.split(".")[1] in {"DescribeEndpoint", "PutObject", "GetObject"}}
    missing = sorted(
        in_use - recorder.called - set(NOT_CHECKED) - {o for o in ambiguous if o in recorder.called}
    )
    assert not missing, f"used by the project but not checked here: {missing}"


def test_answers_match_botocore_shapes(exercised: tuple[Recorder, dict[str, Any]]) -> None:
    recorder, _ = exercised
    print(f"\n{len(recorder.called)} operations checked; mismatches:\n{recorder.table()}")
    assert not recorder.found, recorder.table()


def _sdk_name(name: str) -> str:
    """aws-sdk task outputs: the API member name with its first letter capitalised."""
    return name[:1].upper() + name[1:]


def test_task_outputs_carry_aws_member_names(exercised: tuple[Recorder, dict[str, Any]]) -> None:
    _, outputs = exercised
    found: list[Mismatch] = []
    for key, service, operation in (
        ("describe", "sagemaker", "DescribeTrainingJob"),
        ("copy", "s3", "CopyObject"),
        ("get", "s3", "GetObject"),
        ("executions", "stepfunctions", "ListExecutions"),
    ):
        found += mismatches(
            f"aws-sdk:{service}:{operation}", output_shape(service, operation), outputs[key], rename=_sdk_name
        )
    # The optimised SageMaker .sync integration returns DescribeTrainingJob as the API names it.
    found += mismatches(
        "sagemaker:createTrainingJob.sync", output_shape("sagemaker", "DescribeTrainingJob"), outputs["train"]
    )
    print("\n" + "\n".join(f"{m.operation:40s} {m.kind:8s} {m.path} {m.detail}" for m in found))
    assert not found
    assert outputs["describe"]["ResourceConfig"]["VolumeSizeInGB"] == 10
    assert "ChecksumCRC32" in outputs["copy"]["CopyObjectResult"]


def test_lambda_invoke_output_is_the_documented_one(exercised: tuple[Recorder, dict[str, Any]]) -> None:
    # "Invoke an AWS Lambda function with Step Functions": ExecutedVersion, Payload, StatusCode and
    # the SDK's HTTP metadata (SdkHttpMetadata, SdkResponseMetadata); sns:publish carries the same metadata.
    _, outputs = exercised
    invoke = outputs["invoke"]
    assert list(invoke) == [
        "ExecutedVersion",
        "Payload",
        "SdkHttpMetadata",
        "SdkResponseMetadata",
        "StatusCode",
    ]
    assert (invoke["ExecutedVersion"], invoke["Payload"], invoke["StatusCode"]) == (
        "$LATEST",
        {"ok": True},
        200,
    )
    http = invoke["SdkHttpMetadata"]
    assert http["HttpStatusCode"] == 200 and http["HttpHeaders"]["Content-Type"] == "application/json"
    assert http["AllHttpHeaders"]["X-Amz-Executed-Version"] == ["$LATEST"]
    assert invoke["SdkResponseMetadata"]["RequestId"] == http["HttpHeaders"]["x-amzn-RequestId"]
    publish = outputs["publish"]
    assert set(publish) == {"MessageId", "SdkHttpMetadata", "SdkResponseMetadata"}


def test_described_back_as_created_and_as_aws_reports_it(cp: ControlPlane, exercised: Any) -> None:
    sm = cp.client("sagemaker")
    job = sm.describe_training_job(TrainingJobName="shapes-train")
    transitions = job["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert all(t["StatusMessage"] and t["EndTime"] >= t["StartTime"] for t in transitions)
    assert job["OutputDataConfig"]["KmsKeyId"] == "" and job["EnableNetworkIsolation"] is True
    assert "TuningJobArn" not in job
    assert sm.describe_model(ModelName="shapes-model")["EnableNetworkIsolation"] is True
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="shapes-tune")
    trials = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="shapes-tune")
    assert len(trials["TrainingJobSummaries"]) == 2
    for trial in trials["TrainingJobSummaries"]:
        described = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        assert described["TuningJobArn"] == tuning["HyperParameterTuningJobArn"]
        assert set(trial["TunedHyperParameters"]) == {"C"}
        assert trial["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(0.9)


# -- paging and order -----------------------------------------------------------------------------
def many_events(cp: ControlPlane) -> str:
    """An execution with more than 100 history events (a Map over 30 items: 4 events per item)."""
    states = {
        "Each": {
            "Type": "Map",
            "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}},
            "End": True,
        }
    }
    described = cp.run_definition(
        {"QueryLanguage": "JSONata", "StartAt": "Each", "States": states},
        list(range(30)),
        name=f"paging-{next(_names)}",
    )
    assert described["status"] == "SUCCEEDED"
    return described["executionArn"]


def test_execution_history_pages_at_100_events(cp: ControlPlane, exercised: Any) -> None:
    # GetExecutionHistory: maxResults defaults to 100 (at most 1000); nextToken continues; a client
    # that forgets nextToken sees the first page only, as on AWS.
    arn, sfn = many_events(cp), cp.client("stepfunctions")
    first = sfn.get_execution_history(executionArn=arn)
    assert len(first["events"]) == 100 and first["nextToken"]
    everything = cp.history(arn)  # the project's own reader pages
    assert len(everything) > 100 and everything[:100] == first["events"]
    assert [e["id"] for e in everything] == list(range(1, len(everything) + 1))
    newest = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=5)
    assert [e["id"] for e in newest["events"]] == list(range(len(everything), len(everything) - 5, -1))
    assert newest["events"][0]["type"] == "ExecutionSucceeded"
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.get_execution_history(executionArn=arn, nextToken="not-a-token")


def test_list_training_jobs_honours_sort_and_max_results(cp: ControlPlane, exercised: Any) -> None:
    sm = cp.client("sagemaker")
    by_name = sm.list_training_jobs(SortBy="Name", SortOrder="Ascending", MaxResults=100)[
        "TrainingJobSummaries"
    ]
    names = [s["TrainingJobName"] for s in by_name]
    assert names == sorted(names) and len(names) >= 4
    newest = sm.list_training_jobs(SortBy="CreationTime", SortOrder="Descending", MaxResults=2)
    times = [s["CreationTime"] for s in newest["TrainingJobSummaries"]]
    assert len(times) == 2 and times == sorted(times, reverse=True) and newest["NextToken"]
    assert times[0] == max(s["CreationTime"] for s in by_name)
    # The default page is 10 (SageMaker's List* APIs); the filter applies before paging.
    completed = sm.list_training_jobs(StatusEquals="Completed", MaxResults=1)
    assert completed["TrainingJobSummaries"][0]["TrainingJobStatus"] == "Completed"
{%- endraw %}
