"""The deploy CLI against moto: artifacts, stack, endpoint update (incl. silent rollback), executions."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import zipfile

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import artifacts, cli, clients, executions, image, inputs, stack
from {{ cookiecutter.package_name }}_deploy.definition import render_model_tokens
from {{ cookiecutter.package_name }}_emulator import integrations

REGION = settings.AWS_REGION
ENDPOINT = settings.ENDPOINT_NAME
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/sagemaker"
OLD_IMAGE = "111.dkr.ecr.eu-west-1.amazonaws.com/repo:old"
NEW_IMAGE = "111.dkr.ecr.eu-west-1.amazonaws.com/repo:new"
GATED_FILES_SHA256 = "5" * 64


@pytest.fixture
def aws(monkeypatch):
    # mock_aws supplies fake credentials itself.
    monkeypatch.setenv("AWS_REGION", REGION)
    # moto ignores bucket-policy conditions, so the TLS-only policy would deny every call: the
    # emulator's correction (<package>_emulator/integrations.py) makes it behave as AWS does for TLS requests.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), integrations.s3_corrections():
        yield clients.Aws(region=REGION)


@pytest.fixture
def endpoint(aws):
    """A production endpoint as the pipeline leaves it."""
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model(
        ModelName="model-old",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": OLD_IMAGE,
            "ModelDataUrl": "s3://b/model.tar.gz",
            # As CreateModel sets it: the serving launcher checks the files against this digest.
            "Environment": {"PIPELINE_EXECUTION": "run-1", "MODEL_FILES_SHA256": GATED_FILES_SHA256},
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="config-old",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "model-old",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 2,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="config-old")
    return sagemaker


def stub_update_endpoint(monkeypatch, *, rolls_back: bool) -> list[dict]:
    """moto has no UpdateEndpoint: emulate it on the backend (switch config, or silently keep the old one)."""
    calls: list[dict] = []
    real_client = clients.Aws.client

    def client(self, service):
        made = real_client(self, service)
        if service == "sagemaker":

            def update_endpoint(**kwargs):
                calls.append(kwargs)
                if not rolls_back:
                    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
                    backend.endpoints[kwargs["EndpointName"]].endpoint_config_name = kwargs[
                        "EndpointConfigName"
                    ]
                return {"EndpointArn": "arn"}

            made.update_endpoint = update_endpoint
        return made

    monkeypatch.setattr(clients.Aws, "client", client)
    return calls


# ------------------------------------------------------------------ artifacts


def test_lambda_zip_is_reproducible_and_holds_the_handler(project_root):
    first, second = artifacts.package_lambda(project_root), artifacts.package_lambda(project_root)
    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "handler.py" in names and not [n for n in names if "__pycache__" in n]


def test_upload_uses_content_hash_keys(aws, project_root, tmp_path):
    s3 = aws.client("s3")
    artifacts.ensure_artifact_bucket(s3, "artifacts", REGION)
    keys = artifacts.upload_artifacts(s3, "artifacts", project_root)
    assert keys["LambdaCodeKey"].startswith("lambda/check_endpoint-") and keys["LambdaCodeKey"].endswith(
        ".zip"
    )
    assert keys["DefinitionKey"].startswith("pipeline/state_machine-") and keys["DefinitionKey"].endswith(
        ".asl.json"
    )
    stored = s3.get_object(Bucket="artifacts", Key=keys["DefinitionKey"])["Body"].read()
    # The model spec's tokens are filled before upload; CloudFormation's are left for the stack.
    assert stored == render_model_tokens((project_root / artifacts.ASL_FILE).read_text()).encode()
    assert b"${HyperparameterSpec}" not in stored and b"${DataBucket}" in stored
    # Same sources, same keys: CloudFormation sees no change.
    assert artifacts.upload_artifacts(s3, "artifacts", project_root) == keys


def test_artifact_bucket_is_private_and_encrypted(aws):
    s3 = aws.client("s3")
    artifacts.ensure_artifact_bucket(s3, "artifacts", REGION)
    artifacts.ensure_artifact_bucket(s3, "artifacts", REGION)  # idempotent
    assert set(s3.get_public_access_block(Bucket="artifacts")["PublicAccessBlockConfiguration"].values()) == {
        True
    }
    rules = s3.get_bucket_encryption(Bucket="artifacts")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


class CallRecorder:
    """Every S3 API call a client makes, with its parameters (botocore's before-call event)."""

    def __init__(self, client) -> None:
        self.calls: list[tuple[str, dict]] = []
        client.meta.events.register("provide-client-params.s3.*", self._record)

    def _record(self, params, model, **_kwargs) -> None:
        self.calls.append((model.name, dict(params)))


def test_artifact_bucket_is_tls_only_versioned_and_owner_checked(aws, project_root):
    s3 = aws.client("s3")
    recorder = CallRecorder(s3)
    owner = aws.account()
    artifacts.ensure_artifact_bucket(s3, "artifacts", REGION, owner)
    artifacts.upload_artifacts(s3, "artifacts", project_root, owner)
    calls = list(recorder.calls)
    policy = json.loads(s3.get_bucket_policy(Bucket="artifacts")["Policy"])
    assert policy["Statement"] == [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::artifacts", "arn:aws:s3:::artifacts/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    assert s3.get_bucket_versioning(Bucket="artifacts")["Status"] == "Enabled"
    assert [name for name, _ in calls] == [
        "HeadBucket",
        "CreateBucket",
        "PutPublicAccessBlock",
        "PutBucketEncryption",
        "PutBucketVersioning",
        "PutBucketPolicy",
        "PutObject",
        "PutObject",
    ]
    # CreateBucket has no ExpectedBucketOwner parameter; every other call carries it.
    assert all(p.get("ExpectedBucketOwner") == owner for name, p in calls if name != "CreateBucket")


def test_deploy_infra_passes_the_callers_account_as_expected_owner(aws, project_root, monkeypatch):
    recorders: list[CallRecorder] = []
    real_client = clients.Aws.client

    def client(self, service):
        made = real_client(self, service)
        if service == "s3":
            recorders.append(CallRecorder(made))
        return made

    monkeypatch.setattr(clients.Aws, "client", client)
    monkeypatch.setattr(stack, "deploy_stack", lambda *a, **k: {"StateMachineArn": "arn"})
    request = inputs.InfraRequest(project_root, image_uri="img:1", artifact_bucket="fresh")
    assert stack.deploy_infra(aws, request) == {"StateMachineArn": "arn"}
    calls = [call for recorder in recorders for call in recorder.calls]
    # The Lambda zip, the ASL, and the template itself when it is over the inline limit (TemplateURL).
    large = len((project_root / stack.TEMPLATE_FILE).read_bytes()) > stack.MAX_TEMPLATE_BODY
    assert [name for name, _ in calls].count("PutObject") == (3 if large else 2)
    assert all(p.get("ExpectedBucketOwner") == DEFAULT_ACCOUNT_ID for n, p in calls if n != "CreateBucket")


def test_a_bucket_of_another_account_is_refused(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="squatted", CreateBucketConfiguration={"LocationConstraint": REGION})
    # moto does not model other accounts' buckets: S3's answer to a wrong ExpectedBucketOwner is 403.
    from botocore.exceptions import ClientError

    def forbidden(**_kwargs):
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadBucket")

    s3.head_bucket = forbidden
    with pytest.raises(clients.DeployError, match="squatted exists but is not owned by account 999"):
        artifacts.ensure_artifact_bucket(s3, "squatted", REGION, "999")


# ------------------------------------------------------------------ stack


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
def test_deploy_infra_creates_then_updates_the_stack(aws, project_root, capsys):
    argv = [
        "--project-root",
        str(project_root),
        "deploy-infra",
        "--image-uri",
        "img:1",
        "--poll-seconds",
        "0.01",
    ]
    assert cli.main(argv) == 0
    outputs = json.loads(capsys.readouterr().out)
    assert outputs["StateMachineArn"].endswith(f":stateMachine:{settings.STACK_NAME}-pipeline")
    assert cli.main(argv) == 0
    assert "updating stack" in capsys.readouterr().err
    parameters = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in aws.client("cloudformation").describe_stacks(StackName=settings.STACK_NAME)["Stacks"][0][
            "Parameters"
        ]
    }
    assert parameters["ImageUri"] == "img:1"
    assert parameters["DefinitionKey"].startswith("pipeline/state_machine-")


def test_default_image_uri_is_the_ecr_latest_tag(aws):
    assert (
        stack.default_image_uri(aws)
        == f"{DEFAULT_ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/{settings.ECR_REPOSITORY}:latest"
    )


class FailedStack:
    """A CloudFormation client whose stack creation rolled back."""

    def describe_stacks(self, StackName):
        return {"Stacks": [{"StackName": StackName, "StackStatus": "ROLLBACK_COMPLETE"}]}

    def get_paginator(self, operation):
        """describe_stack_events, newest first, two events a page; the third page is an older
        operation whose failure must not be reported."""
        assert operation == "describe_stack_events"
        events = [
            {"LogicalResourceId": "demo", "ResourceStatus": "ROLLBACK_IN_PROGRESS"},
            {"LogicalResourceId": "DataBucket", "ResourceType": "AWS::S3::Bucket", "ResourceStatus": "CREATE_FAILED",
             "ResourceStatusReason": "demo-bucket already exists"},
            {"LogicalResourceId": "DataBucket", "ResourceStatus": "CREATE_IN_PROGRESS"},
            {"LogicalResourceId": "demo", "ResourceStatus": "CREATE_IN_PROGRESS"},
            {"LogicalResourceId": "Old", "ResourceType": "AWS::SNS::Topic", "ResourceStatus": "UPDATE_FAILED",
             "ResourceStatusReason": "an earlier operation"},
        ]  # fmt: skip
        pages = [{"StackEvents": events[i : i + 2]} for i in range(0, len(events), 2)]
        return type("Paginator", (), {"paginate": lambda _, StackName: iter(pages)})()


def test_stack_failure_names_the_failing_resource():
    with pytest.raises(
        clients.DeployError,
        match=r"ROLLBACK_COMPLETE: DataBucket \(AWS::S3::Bucket\): demo-bucket already exists$",
    ):
        stack.wait_for_stack(FailedStack(), "demo", progress=lambda _: None)
    with pytest.raises(clients.DeployError, match="delete it"):
        stack.deploy_stack(FailedStack(), "{}", {}, stack_name="demo", progress=lambda _: None)


# ------------------------------------------------------------------ endpoint


def test_update_endpoint_swaps_image_keeps_model_and_verifies(endpoint, monkeypatch, capsys):
    calls = stub_update_endpoint(monkeypatch, rolls_back=False)
    assert cli.main(["update-endpoint", "--image-uri", NEW_IMAGE, "--poll-seconds", "0"]) == 0
    new_config = capsys.readouterr().out.strip()
    (call,) = calls
    assert call["EndpointConfigName"] == new_config
    assert call["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": f"{settings.STACK_NAME}-endpoint-5xx"},
        {"AlarmName": f"{settings.STACK_NAME}-endpoint-latency"},
    ]
    assert "BlueGreenUpdatePolicy" in call["DeploymentConfig"]
    variant = endpoint.describe_endpoint_config(EndpointConfigName=new_config)["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 2)
    model = endpoint.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["Image"] == NEW_IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://b/model.tar.gz"
    # The new image serves the same gated files, still checked against the gate's digest (issue 22).
    assert model["PrimaryContainer"]["Environment"] == {
        "PIPELINE_EXECUTION": "run-1",
        "MODEL_FILES_SHA256": GATED_FILES_SHA256,
    }
    assert model["ExecutionRoleArn"] == ROLE
    assert endpoint.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == new_config


def test_silent_rollback_fails_with_the_reason(endpoint, monkeypatch, capsys):
    stub_update_endpoint(monkeypatch, rolls_back=True)
    assert cli.main(["update-endpoint", "--image-uri", NEW_IMAGE, "--poll-seconds", "0"]) == 1
    error = capsys.readouterr().err
    assert f"endpoint {ENDPOINT} rolled back: it still runs config-old" in error


def test_update_endpoint_by_tag_resolves_the_repository(endpoint, aws, monkeypatch):
    aws.client("ecr").create_repository(repositoryName=settings.ECR_REPOSITORY)
    calls = stub_update_endpoint(monkeypatch, rolls_back=False)
    assert cli.main(["update-endpoint", "--image-tag", "abc123", "--poll-seconds", "0"]) == 0
    model = endpoint.describe_model(
        ModelName=f"model-{calls[0]['EndpointConfigName'].removeprefix('config-')}"
    )
    assert model["PrimaryContainer"]["Image"].endswith(f"/{settings.ECR_REPOSITORY}:abc123")


def test_update_without_endpoint_explains(aws, capsys):
    assert cli.main(["update-endpoint", "--image-uri", NEW_IMAGE]) == 1
    assert "does not exist: the pipeline creates it" in capsys.readouterr().err


# ------------------------------------------------------------------ executions


def state_machine(aws, states: dict) -> str:
    role = aws.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = json.dumps({"StartAt": next(iter(states)), "States": states})
    return aws.client("stepfunctions").create_state_machine(name="m", definition=definition, roleArn=role)[
        "stateMachineArn"
    ]


def test_start_execution_waits_for_success(aws, capsys):
    arn = state_machine(aws, {"Done": {"Type": "Succeed"}})
    assert (
        cli.main(
            [
                "start-execution",
                "--state-machine-arn",
                arn,
                "--name-prefix",
                "ci",
                "--wait",
                "--poll-seconds",
                "0.05",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    name = out.strip().rsplit(":", 1)[-1]
    assert name.startswith("ci-") and len(name) <= 80
    assert "SUCCEEDED" in err


def test_start_execution_exits_non_zero_on_failure(aws, capsys):
    arn = state_machine(
        aws, {"Boom": {"Type": "Fail", "Error": "EndpointRolledBack", "Cause": "kept config-old"}}
    )
    assert cli.main(["start-execution", "--state-machine-arn", arn, "--wait", "--poll-seconds", "0.05"]) == 1
    assert "execution FAILED: EndpointRolledBack: kept config-old" in capsys.readouterr().err


def test_start_execution_flags_build_the_execution_input(aws, capsys):
    arn = state_machine(aws, {"Done": {"Type": "Succeed"}})
    argv = ["start-execution", "--state-machine-arn", arn, "--input", '{"tune": false, "extra": 1}']
    argv += ["--tune", "--max-jobs", "4", "--max-parallel-jobs", "2", "--hyperparameter", "C=0.5"]
    argv += ["--hyperparameter", "max_iter=300", "--data-prefix", "/datasets/v2/", "--dry-run"]
    argv += ["--training-instance-type", "ml.m5.xlarge", "--training-instance-count", "2"]
    argv += ["--volume-size-gb", "50", "--max-runtime-seconds", "7200", "--training-input-mode", "FastFile"]
    assert cli.main(argv) == 0
    execution_arn = capsys.readouterr().out.strip()
    given = json.loads(aws.client("stepfunctions").describe_execution(executionArn=execution_arn)["input"])
    assert given == {
        "tune": True,
        "extra": 1,
        "max_jobs": 4,
        "max_parallel_jobs": 2,
        "hyperparameters": {"C": "0.5", "max_iter": "300"},
        "data": {
            "train": f"s3://{settings.S3_BUCKET}/datasets/v2/train/",
            "holdout": f"s3://{settings.S3_BUCKET}/datasets/v2/holdout/",
        },
        "training_instance_type": "ml.m5.xlarge",
        "training_instance_count": 2,
        "volume_size_gb": 50,
        "max_runtime_seconds": 7200,
        "training_input_mode": "FastFile",
        "dry_run": True,
    }


def test_training_input_mode_flag_takes_only_the_modes_the_container_reads(capsys):
    # Pipe would hand the container FIFOs that read_csv cannot read; argparse refuses it (exit 2).
    with pytest.raises(SystemExit) as refused:
        cli.main(["start-execution", "--state-machine-arn", "arn:x", "--training-input-mode", "Pipe"])
    assert refused.value.code == 2
    assert "invalid choice: 'Pipe'" in capsys.readouterr().err


def test_execution_input_without_flags_is_empty_so_the_defaults_apply():
    assert inputs.ExecutionInput().to_json() == {}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hyperparameter", "C"], "--hyperparameter takes Key=Value, got 'C'"),
        (["--data-prefix", "/"], "--data-prefix must not be empty"),
        (["--input", "[1]"], "--input must be a JSON object"),
    ],
)
def test_bad_execution_flags_are_refused_in_one_line(aws, capsys, argv, message):
    assert cli.main(["start-execution", "--state-machine-arn", "arn:x", *argv]) == 1
    assert f"ERROR: {message}" in capsys.readouterr().err


def test_execution_names_are_unique():
    assert len({executions.execution_name("manual") for _ in range(50)}) == 50


# ------------------------------------------------------------------ image


class Recorder:
    def __init__(self):
        self.commands: list[list[str]] = []
        self.inputs: list[str | None] = []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        self.inputs.append(kwargs.get("input"))
        return subprocess.CompletedProcess(command, 0)


def test_push_logs_in_with_an_ecr_token_and_pushes_both_tags(aws):
    uri = aws.client("ecr").create_repository(repositoryName="repo")["repository"]["repositoryUri"]
    recorder = Recorder()
    pushed = image.push_image(aws, "local:1", "repo", ["abc123", "latest"], runner=recorder)
    assert pushed == [f"{uri}:abc123", f"{uri}:latest"]
    login = recorder.commands[0]
    assert login[:5] == ["docker", "login", "--username", "AWS", "--password-stdin"]
    token = aws.client("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert recorder.inputs[0] == base64.b64decode(token).decode().partition(":")[2]
    assert ["docker", "push", f"{uri}:latest"] in recorder.commands


def test_push_before_the_stack_explains(aws):
    with pytest.raises(clients.DeployError, match="run `deploy-infra` first"):
        image.push_image(aws, "local:1", "missing", ["latest"], runner=Recorder())


def test_build_runs_docker_build_in_the_project(project_root):
    recorder = Recorder()
    image.build_image(project_root, "img:1", ["BASE_IMAGE=base:1"], runner=recorder)
    assert recorder.commands == [
        [
            "docker",
            "build",
            "-f",
            "container/Dockerfile",
            "-t",
            "img:1",
            "--build-arg",
            "BASE_IMAGE=base:1",
            ".",
        ]
    ]


def test_missing_credentials_message(monkeypatch, tmp_path, capsys):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # boto3's default session keeps the credentials an earlier test resolved: start from none.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    # Nothing listens here: the call must fail on credentials before any traffic.
    assert (
        cli.main(
            [
                "--endpoint-url",
                "http://127.0.0.1:9",
                "start-execution",
                "--state-machine-arn",
                "arn:aws:states:eu-west-1:1:stateMachine:m",
            ]
        )
        == 1
    )
    assert "no AWS credentials" in capsys.readouterr().err
