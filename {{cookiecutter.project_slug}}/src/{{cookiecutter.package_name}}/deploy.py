"""Deploy CLI: ``python -m <package>.deploy <command>`` (run from the project root).

Commands: ``build``, ``push``, ``deploy-infra``, ``update-endpoint``, ``start-execution``.
``--endpoint-url`` and ``--region`` go to every boto3 client (``AWS_ENDPOINT_URL`` works too), so
the same code runs against moto in tests and in the offline harness, which also calls the pieces
(``package_lambda``, ``upload_artifacts``, ``deploy_stack``) directly.
Credentials come from the usual boto3 chain; in GitLab CI that is ``AWS_ROLE_ARN`` +
``AWS_WEB_IDENTITY_TOKEN_FILE`` (OIDC), never static keys.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from . import polling, settings
from .definition import DefinitionError, placeholders, render_definition, render_model_tokens

LAMBDA_DIR = Path("lambdas/check_endpoint")
ASL_FILE = Path("pipeline/state_machine.asl.json")
TEMPLATE_FILE = Path("infra/template.yaml")
DOCKERFILE = Path("container/Dockerfile")
# CloudFormation's limit for an inline TemplateBody; a larger template goes to the artifacts bucket
# and is passed as TemplateURL (limit 1 MB), "CloudFormation quotas".
MAX_TEMPLATE_BODY = 51_200
ENDPOINT_BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack"}
STACK_FAILED = {
    "CREATE_FAILED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_FAILED",
    "ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_FAILED",
    "DELETE_COMPLETE",
    "DELETE_FAILED",
}

Progress = Callable[[str], None]


class DeployError(Exception):
    """A failure with a message for the person or CI job running the command."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Aws:
    """Where every boto3 client of a command points (moto in tests, AWS otherwise)."""

    region: str | None = None
    endpoint_url: str | None = None

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    def account(self) -> str:
        """The caller's account id: the ExpectedBucketOwner of every artifacts-bucket call."""
        return self.client("sts").get_caller_identity()["Account"]


# ------------------------------------------------------------------ requests (the CLI builds them)


@dataclass(frozen=True)
class InfraRequest:
    """``deploy-infra``: upload the Lambda zip and the ASL, then create or update the stack."""

    project_root: Path
    image_uri: str | None = None  # default: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:latest
    artifact_bucket: str = settings.ARTIFACT_BUCKET
    stack_name: str = settings.STACK_NAME
    cfn_role_arn: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    poll_seconds: float = 5


@dataclass(frozen=True)
class EndpointUpdateRequest:
    """``update-endpoint``: serve the production model's artifact with a new image."""

    image_uri: str
    endpoint_name: str = settings.ENDPOINT_NAME
    alarm_names: Sequence[str] = ()
    poll_seconds: float = 30


@dataclass(frozen=True)
class ExecutionInput:
    """The state machine's execution input (docs/architecture.md, "Execution input"); None = default."""

    tune: bool | None = None
    max_jobs: int | None = None
    max_parallel_jobs: int | None = None
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    data_prefix: str | None = None  # P -> {"train": s3://<bucket>/P/train/, "holdout": .../P/holdout/}
    training_instance_type: str | None = None
    training_instance_count: int | None = None
    dry_run: bool | None = None

    def to_json(self, bucket: str = settings.S3_BUCKET) -> dict[str, Any]:
        """Only the fields given, so the state machine's Init state applies its own defaults."""
        found: dict[str, Any] = {
            name: value
            for name, value in (
                ("tune", self.tune),
                ("max_jobs", self.max_jobs),
                ("max_parallel_jobs", self.max_parallel_jobs),
                ("training_instance_type", self.training_instance_type),
                ("training_instance_count", self.training_instance_count),
                ("dry_run", self.dry_run),
            )
            if value is not None
        }
        if self.hyperparameters:
            found["hyperparameters"] = dict(self.hyperparameters)
        if self.data_prefix is not None:
            prefix = self.data_prefix.strip("/")
            if not prefix:
                raise DeployError("--data-prefix must not be empty")
            found["data"] = {
                "train": f"s3://{bucket}/{prefix}/train/",
                "holdout": f"s3://{bucket}/{prefix}/holdout/",
            }
        return found


@dataclass(frozen=True)
class ExecutionRequest:
    """``start-execution``: start the pipeline with ``execution_input``, optionally wait for the end."""

    execution_input: Mapping[str, Any] = field(default_factory=dict)
    state_machine_arn: str | None = None  # default: the stack's StateMachineArn output
    stack_name: str = settings.STACK_NAME
    name_prefix: str = "manual"
    wait: bool = False
    poll_seconds: float = 10


# ------------------------------------------------------------------ artifacts


def package_lambda(project_root: Path) -> bytes:
    """The check-endpoint Lambda as a zip, byte-identical for identical sources (stable hash key)."""
    source = Path(project_root) / LAMBDA_DIR
    files = sorted(p for p in source.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise DeployError(f"no Python files in {source}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            # Fixed timestamp and mode: the zip's hash changes only when the code does.
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def content_key(prefix: str, stem: str, data: bytes, suffix: str) -> str:
    """``prefix/stem-<sha256>suffix``: a new key per content, so CloudFormation sees every change."""
    return f"{prefix}/{stem}-{hashlib.sha256(data).hexdigest()}{suffix}"


def _owner(expected_owner: str | None) -> dict[str, str]:
    return {"ExpectedBucketOwner": expected_owner} if expected_owner else {}


def tls_only_policy(bucket: str) -> dict[str, Any]:
    """Deny every request that does not use TLS, as the stack's own buckets do (AWS's
    "Enforce encryption of data in transit" S3 example, condition aws:SecureTransport)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def ensure_artifact_bucket(
    s3: Any, bucket: str, region: str | None, expected_owner: str | None = None
) -> None:
    """Create the artifacts bucket (TLS-only policy, encrypted, versioned, public access blocked)
    unless it exists, and refuse one owned by another account (a squatted name): every call passes
    ``ExpectedBucketOwner``, which S3 answers with 403 for someone else's bucket (issue 15)."""
    owner = _owner(expected_owner)
    try:
        s3.head_bucket(Bucket=bucket, **owner)
        return
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in {"403", "AccessDenied", "Forbidden"}:
            raise DeployError(
                f"artifacts bucket {bucket} exists but is not owned by account {expected_owner or '?'}: "
                "choose another name with --artifact-bucket"
            ) from error
        if code not in {"404", "NoSuchBucket", "NotFound"}:
            raise DeployError(f"artifacts bucket {bucket} is not usable: {error}") from error
    kwargs: dict[str, Any] = {"Bucket": bucket}
    # us-east-1 is the one region that refuses an explicit LocationConstraint.
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)  # CreateBucket has no ExpectedBucketOwner: the calls below check it
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
        **owner,
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
        **owner,
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}, **owner)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only_policy(bucket)), **owner)


def upload_artifacts(
    s3: Any, bucket: str, project_root: Path, expected_owner: str | None = None
) -> dict[str, str]:
    """Upload the Lambda zip and the ASL file under content-hash keys; returns the stack parameters."""
    root = Path(project_root)
    code = package_lambda(root)
    # The model spec's tokens (tuning ranges, metric definitions, the Init state's checks) are
    # filled here from model.py; CloudFormation fills the rest (definition.render_model_tokens).
    definition = render_model_tokens((root / ASL_FILE).read_text()).encode()
    keys = {
        "LambdaCodeKey": content_key("lambda", "check_endpoint", code, ".zip"),
        "DefinitionKey": content_key("pipeline", "state_machine", definition, ".asl.json"),
    }
    for key, body in ((keys["LambdaCodeKey"], code), (keys["DefinitionKey"], definition)):
        s3.put_object(Bucket=bucket, Key=key, Body=body, **_owner(expected_owner))
    return keys


# ------------------------------------------------------------------ stack


def _stack_status(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def _failure_reasons(cfn: Any, stack_name: str) -> list[str]:
    events = cfn.describe_stack_events(StackName=stack_name).get("StackEvents", [])
    return [
        f"{event['LogicalResourceId']} ({event.get('ResourceType', '?')}): {event.get('ResourceStatusReason', '')}"
        for event in events
        if event.get("ResourceStatus", "").endswith("_FAILED") and event["LogicalResourceId"] != stack_name
    ]


def wait_for_stack(
    cfn: Any, stack_name: str, progress: Progress = _say, poll_seconds: float = 5, timeout: float = 3600
) -> dict[str, Any]:
    start, last = time.monotonic(), [""]

    def describe() -> tuple[dict[str, Any] | None, str]:
        stack = _stack_status(cfn, stack_name)
        return stack, stack["StackStatus"] if stack else "DELETE_COMPLETE"

    def report(described: tuple[dict[str, Any] | None, str]) -> None:
        if described[1] != last[0]:
            progress(f"stack {stack_name}: {described[1]} ({time.monotonic() - start:.0f} s)")
            last[0] = described[1]

    try:
        stack, status = polling.wait_until(
            describe, lambda d: not d[1].endswith("_IN_PROGRESS"), timeout, poll_seconds, on_poll=report
        )
    except polling.WaitTimeout as error:
        raise DeployError(f"stack {stack_name} still {error.last[1]} after {timeout:.0f} s") from None
    if status in STACK_FAILED or stack is None:
        reasons = _failure_reasons(cfn, stack_name) if stack else []
        detail = "; ".join(reasons) or (stack or {}).get("StackStatusReason", "no reason given")
        raise DeployError(f"stack {stack_name} ended {status}: {detail}")
    return stack


def deploy_stack(
    cfn: Any,
    template_body: str,
    parameters: Mapping[str, str],
    stack_name: str = settings.STACK_NAME,
    role_arn: str | None = None,
    progress: Progress = _say,
    poll_seconds: float = 5,
    template_url: str | None = None,
) -> dict[str, str]:
    """Create or update the stack, wait for the end, return its outputs (OutputKey -> OutputValue).

    ``template_url`` (an uploaded copy of the template) replaces the inline body, which
    CloudFormation limits to MAX_TEMPLATE_BODY bytes."""
    if template_url is None and len(template_body.encode()) > MAX_TEMPLATE_BODY:
        raise DeployError(f"template is over {MAX_TEMPLATE_BODY} bytes: upload it and use TemplateURL")
    source = {"TemplateURL": template_url} if template_url else {"TemplateBody": template_body}
    kwargs: dict[str, Any] = {
        "StackName": stack_name,
        **source,
        "Parameters": [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in sorted(parameters.items())],
        # NAMED_IAM: every role of the template has a RoleName (the boundary and policies name them).
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
    }
    if role_arn:
        kwargs["RoleARN"] = role_arn
    existing = _stack_status(cfn, stack_name)
    if existing and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        # A stack whose creation failed cannot be updated, only deleted.
        raise DeployError(
            f"stack {stack_name} is ROLLBACK_COMPLETE from a failed creation: delete it "
            f"(aws cloudformation delete-stack --stack-name {stack_name}) and deploy again"
        )
    try:
        if existing:
            progress(f"updating stack {stack_name}")
            cfn.update_stack(**kwargs)
        else:
            progress(f"creating stack {stack_name}")
            cfn.create_stack(**kwargs)
    except ClientError as error:
        if "No updates are to be performed" not in str(error):
            raise
        progress(f"stack {stack_name}: no changes")
    stack = wait_for_stack(cfn, stack_name, progress, poll_seconds)
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    stack = _stack_status(cfn, stack_name)
    if stack is None:
        raise DeployError(f"stack {stack_name} does not exist: run `deploy-infra` first")
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def default_image_uri(
    aws: Aws, repository: str = settings.ECR_REPOSITORY, tag: str = settings.IMAGE_TAG
) -> str:
    """``<account>.dkr.ecr.<region>.<suffix>/<repository>:<tag>``, computable before the repository exists."""
    account = aws.client("sts").get_caller_identity()["Account"]
    region = aws.region or boto3.session.Session().region_name or settings.AWS_REGION
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}/{repository}:{tag}"


def deploy_infra(aws: Aws, request: InfraRequest, progress: Progress = _say) -> dict[str, str]:
    """Upload the artifacts (bucket checked and created as ``ensure_artifact_bucket`` says) and
    create or update the stack; returns its outputs."""
    root = Path(request.project_root)
    s3 = aws.client("s3")
    bucket, owner = request.artifact_bucket, aws.account()
    ensure_artifact_bucket(s3, bucket, aws.region, owner)
    keys = upload_artifacts(s3, bucket, root, owner)
    progress(f"uploaded s3://{bucket}/{keys['LambdaCodeKey']} and s3://{bucket}/{keys['DefinitionKey']}")
    parameters = {
        "ImageUri": request.image_uri or default_image_uri(aws),
        "ArtifactBucketName": bucket,
        **keys,
        **request.parameters,
    }
    template = (root / TEMPLATE_FILE).read_text()
    template_url = None
    if len(template.encode()) > MAX_TEMPLATE_BODY:
        key = content_key("infra", "template", template.encode(), ".yaml")
        s3.put_object(Bucket=bucket, Key=key, Body=template.encode(), **_owner(owner))
        template_url = template_https_url(bucket, key, aws.region)
    return deploy_stack(
        aws.client("cloudformation"),
        template,
        parameters,
        stack_name=request.stack_name,
        role_arn=request.cfn_role_arn,
        progress=progress,
        poll_seconds=request.poll_seconds,
        template_url=template_url,
    )


def template_https_url(bucket: str, key: str, region: str | None) -> str:
    """The virtual-hosted S3 URL CloudFormation reads a TemplateURL from."""
    region = region or settings.AWS_REGION
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}/{key}"


def _key_value(item: str, flag: str = "--parameter") -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise DeployError(f"{flag} takes Key=Value, got {item!r}")
    return key, value


# ------------------------------------------------------------------ image


Runner = Callable[..., subprocess.CompletedProcess]


def _run(command: Sequence[str], runner: Runner = subprocess.run, **kwargs: Any) -> None:
    _say("+ " + " ".join(command))
    result = runner(list(command), **kwargs)
    if result.returncode != 0:
        raise DeployError(f"{command[0]} {command[1]} failed with exit code {result.returncode}")


def build_image(
    project_root: Path, image: str, build_args: Sequence[str], runner: Runner = subprocess.run
) -> None:
    command = ["docker", "build", "-f", str(DOCKERFILE), "-t", image]
    for item in build_args:
        command += ["--build-arg", item]
    _run([*command, "."], runner, cwd=project_root)


def commit_tag() -> str:
    """The commit SHA tag: CI's variable, else git, else refuse (a moving tag alone is not traceable)."""
    sha = os.environ.get("CI_COMMIT_SHA")
    if sha:
        return sha
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if result.returncode == 0 and result.stdout.strip():
        return result.stdout.strip()
    raise DeployError("no commit SHA: set CI_COMMIT_SHA or pass --tag")


def repository_uri(ecr: Any, repository: str) -> str:
    try:
        return ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
    except ecr.exceptions.RepositoryNotFoundException as error:
        raise DeployError(f"ECR repository {repository} does not exist: run `deploy-infra` first") from error


def push_image(
    aws: Aws, image: str, repository: str, tags: Sequence[str], runner: Runner = subprocess.run
) -> list[str]:
    """Log docker in to ECR with a token from the API, tag the local image, push every tag."""
    ecr = aws.client("ecr")
    uri = repository_uri(ecr, repository)
    auth = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    _run(
        ["docker", "login", "--username", user, "--password-stdin", auth["proxyEndpoint"]],
        runner,
        input=password,
        text=True,
    )
    pushed = []
    for tag in tags:
        target = f"{uri}:{tag}"
        _run(["docker", "tag", image, target], runner)
        _run(["docker", "push", target], runner)
        pushed.append(target)
    return pushed


# ------------------------------------------------------------------ endpoint


def blue_green_config(alarm_names: Sequence[str]) -> dict[str, Any]:
    """Same DeploymentConfig as the state machine's UpdateEndpoint: all at once, alarms roll back."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "TerminationWaitInSeconds": 600,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarm_names]},
    }


def default_alarm_names(stack_name: str) -> list[str]:
    # Named in infra/template.yaml as ${AWS::StackName}-endpoint-5xx / -endpoint-latency.
    return [f"{stack_name}-endpoint-5xx", f"{stack_name}-endpoint-latency"]


def wait_for_endpoint(
    sagemaker: Any,
    endpoint_name: str,
    progress: Progress = _say,
    poll_seconds: float = 30,
    timeout: float = 5400,
) -> dict[str, Any]:
    start = time.monotonic()
    try:
        return polling.wait_until(
            lambda: sagemaker.describe_endpoint(EndpointName=endpoint_name),
            lambda endpoint: endpoint["EndpointStatus"] not in ENDPOINT_BUSY,
            timeout,
            poll_seconds,
            on_poll=lambda e: progress(
                f"endpoint {endpoint_name}: {e['EndpointStatus']} ({time.monotonic() - start:.0f} s)"
            ),
        )
    except polling.WaitTimeout as error:
        status = error.last["EndpointStatus"]  # type: ignore[index]
        raise DeployError(f"endpoint {endpoint_name} still {status} after {timeout:.0f} s") from None


def update_endpoint(sagemaker: Any, request: EndpointUpdateRequest, progress: Progress = _say) -> str:
    """Serve the production model's artifact with a new image; returns the new endpoint config name.

    SageMaker rolls a failed blue/green update back silently (the endpoint is InService again, with
    the old config), so success is checked on the config name, not only on the status.
    """
    endpoint_name, image_uri = request.endpoint_name, request.image_uri
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if "Could not find endpoint" in str(error):
            raise DeployError(
                f"endpoint {endpoint_name} does not exist: the pipeline creates it on its first promoted run"
            ) from error
        raise
    if endpoint["EndpointStatus"] != "InService":
        raise DeployError(
            f"endpoint {endpoint_name} is {endpoint['EndpointStatus']}, not InService: not updating"
        )
    old_config_name = endpoint["EndpointConfigName"]
    old_config = sagemaker.describe_endpoint_config(EndpointConfigName=old_config_name)
    variant = old_config["ProductionVariants"][0]
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    container = dict(model.get("PrimaryContainer") or model["Containers"][0])
    # Unique, short and traceable: time stamp plus a hash of the image (names allow 63 characters).
    suffix = f"ci-{datetime.now(UTC):%Y%m%d%H%M%S}-{hashlib.sha256(image_uri.encode()).hexdigest()[:8]}"
    model_name, config_name = f"model-{suffix}", f"config-{suffix}"
    new_container = {"Image": image_uri, "ModelDataUrl": container["ModelDataUrl"]}
    if container.get("Environment"):
        new_container["Environment"] = container["Environment"]
    sagemaker.create_model(
        ModelName=model_name, ExecutionRoleArn=model["ExecutionRoleArn"], PrimaryContainer=new_container
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[
            {
                "VariantName": variant["VariantName"],
                "ModelName": model_name,
                "InstanceType": variant["InstanceType"],
                "InitialInstanceCount": variant["InitialInstanceCount"],
                "InitialVariantWeight": variant.get("InitialVariantWeight", 1.0),
            }
        ],
    )
    progress(f"updating endpoint {endpoint_name}: {old_config_name} -> {config_name} (image {image_uri})")
    sagemaker.update_endpoint(
        EndpointName=endpoint_name,
        EndpointConfigName=config_name,
        DeploymentConfig=blue_green_config(request.alarm_names),
    )
    final = wait_for_endpoint(sagemaker, endpoint_name, progress, request.poll_seconds)
    if final["EndpointStatus"] != "InService":
        raise DeployError(
            f"endpoint {endpoint_name} is {final['EndpointStatus']}: {final.get('FailureReason', 'no reason given')}"
        )
    if final["EndpointConfigName"] != config_name:
        raise DeployError(
            f"endpoint {endpoint_name} rolled back: it still runs {final['EndpointConfigName']}, not {config_name} "
            f"(an alarm fired or the new containers failed their health check). "
            f"{final.get('FailureReason', '')}".strip()
        )
    progress(f"endpoint {endpoint_name} now runs {config_name}")
    return config_name


# ------------------------------------------------------------------ executions


def execution_name(prefix: str) -> str:
    """``<prefix>-<UTC time>-<6 hex>``: unique, sortable, well under Step Functions' 80 characters."""
    return f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def start_execution(sfn: Any, state_machine_arn: str, name: str, payload: str = "{}") -> str:
    return sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)["executionArn"]


TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def wait_for_execution(
    sfn: Any, execution_arn: str, progress: Progress = _say, poll_seconds: float = 10, timeout: float = 86_400
) -> dict[str, Any]:
    start, name = time.monotonic(), execution_arn.rsplit(":", 1)[-1]
    try:
        return polling.wait_until(
            lambda: sfn.describe_execution(executionArn=execution_arn),
            lambda execution: execution["status"] in TERMINAL_EXECUTION,
            timeout,
            poll_seconds,
            on_poll=lambda e: progress(f"execution {name}: {e['status']} ({time.monotonic() - start:.0f} s)"),
        )
    except polling.WaitTimeout:
        raise DeployError(f"execution {name} still RUNNING after {timeout:.0f} s") from None


def run_execution(aws: Aws, request: ExecutionRequest, progress: Progress = _say) -> dict[str, Any]:
    """Start the pipeline; DescribeExecution at the end with ``wait``, else ``{"executionArn": ...}``."""
    sfn = aws.client("stepfunctions")
    arn = (
        request.state_machine_arn
        or stack_outputs(aws.client("cloudformation"), request.stack_name)["StateMachineArn"]
    )
    payload = json.dumps(dict(request.execution_input))
    execution_arn = start_execution(sfn, arn, execution_name(request.name_prefix), payload)
    print(execution_arn, flush=True)
    if not request.wait:
        return {"executionArn": execution_arn}
    execution = wait_for_execution(sfn, execution_arn, progress, request.poll_seconds)
    if execution["status"] != "SUCCEEDED":
        raise DeployError(
            f"execution {execution['status']}: {execution.get('error', '?')}: {execution.get('cause', '')}"
        )
    return execution


# ------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {settings.PACKAGE_NAME}.deploy", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--region", default=None, help="AWS region (default: AWS_REGION, then the baked answer)"
    )
    parser.add_argument("--endpoint-url", default=None, help="send every AWS call here (e.g. a moto server)")
    parser.add_argument("--stack-name", default=settings.STACK_NAME)
    parser.add_argument("--project-root", type=Path, default=Path.cwd())
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="docker build the project image")
    build.add_argument("--image", default=f"{settings.PROJECT_SLUG}:latest")
    build.add_argument("--build-arg", action="append", default=[], help="KEY=VALUE, repeatable")

    push = commands.add_parser("push", help="push a local image to ECR as <SHA> and latest")
    push.add_argument("--image", default=f"{settings.PROJECT_SLUG}:latest", help="local image to push")
    push.add_argument("--repository", default=settings.ECR_REPOSITORY)
    push.add_argument("--tag", default=None, help="commit tag (default: CI_COMMIT_SHA or git HEAD)")

    infra = commands.add_parser("deploy-infra", help="upload the Lambda and ASL, create or update the stack")
    infra.add_argument(
        "--image-uri", default=None, help=f"default: <ECR repository uri>:{settings.IMAGE_TAG}"
    )
    infra.add_argument("--artifact-bucket", default=settings.ARTIFACT_BUCKET)
    infra.add_argument("--cfn-role-arn", default=os.environ.get("CFN_ROLE_ARN") or None)
    infra.add_argument(
        "--parameter", action="append", default=[], help="Key=Value stack parameter, repeatable"
    )
    infra.add_argument("--poll-seconds", type=float, default=5)

    endpoint = commands.add_parser("update-endpoint", help="serve the production model with a new image")
    image = endpoint.add_mutually_exclusive_group(required=True)
    image.add_argument("--image-uri", help="full image URI to serve")
    image.add_argument("--image-tag", help="a tag of the project's ECR repository (e.g. the commit SHA)")
    endpoint.add_argument("--repository", default=settings.ECR_REPOSITORY)
    endpoint.add_argument("--endpoint-name", default=settings.ENDPOINT_NAME)
    endpoint.add_argument("--alarm", action="append", default=None, help="rollback alarm name, repeatable")
    endpoint.add_argument("--poll-seconds", type=float, default=30)

    run = commands.add_parser("start-execution", help="start the pipeline; --wait to follow it")
    run.add_argument("--state-machine-arn", default=None, help="default: the stack's StateMachineArn output")
    run.add_argument("--name-prefix", default="manual")
    run.add_argument(
        "--input", default=None, help="execution input JSON (merged under the flags below, which win)"
    )
    add_execution_input_flags(run)
    run.add_argument("--wait", action="store_true")
    run.add_argument("--poll-seconds", type=float, default=10)
    return parser


def add_execution_input_flags(parser: argparse.ArgumentParser) -> None:
    """The execution input's flags (also taken by ``make local-pipeline PIPELINE_ARGS=...``)."""
    parser.add_argument("--tune", action="store_true", default=None, help="a tuning job instead of one job")
    parser.add_argument("--max-jobs", type=int, default=None, help="tuning: training jobs in total")
    parser.add_argument("--max-parallel-jobs", type=int, default=None, help="tuning: jobs at a time")
    parser.add_argument(
        "--hyperparameter", action="append", default=[], metavar="K=V", help="override, repeatable"
    )
    parser.add_argument(
        "--data-prefix", default=None, help="train on s3://<bucket>/PREFIX/train/, gate on PREFIX/holdout/"
    )
    parser.add_argument("--training-instance-type", default=None)
    parser.add_argument("--training-instance-count", type=int, default=None)
    parser.add_argument(
        "--dry-run", action="store_true", default=None, help="validate and train, never deploy"
    )


def execution_input_from(args: argparse.Namespace) -> ExecutionInput:
    return ExecutionInput(
        tune=args.tune,
        max_jobs=args.max_jobs,
        max_parallel_jobs=args.max_parallel_jobs,
        hyperparameters=dict(_key_value(item, "--hyperparameter") for item in args.hyperparameter),
        data_prefix=args.data_prefix,
        training_instance_type=args.training_instance_type,
        training_instance_count=args.training_instance_count,
        dry_run=args.dry_run,
    )


def _json_input(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise DeployError(f"--input is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise DeployError("--input must be a JSON object")
    return value


def run_command(args: argparse.Namespace) -> int:
    aws = Aws(
        region=args.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or settings.AWS_REGION,
        endpoint_url=args.endpoint_url,
    )
    root = args.project_root
    if args.command == "build":
        build_image(root, args.image, args.build_arg)
    elif args.command == "push":
        for uri in push_image(
            aws, args.image, args.repository, [args.tag or commit_tag(), settings.IMAGE_TAG]
        ):
            print(uri)
    elif args.command == "deploy-infra":
        # Fail before uploading anything if the ASL cannot be rendered at all.
        asl = (root / ASL_FILE).read_text()
        render_definition(asl, dict.fromkeys(placeholders(asl), "x"))
        request = InfraRequest(
            project_root=root,
            image_uri=args.image_uri,
            artifact_bucket=args.artifact_bucket,
            stack_name=args.stack_name,
            cfn_role_arn=args.cfn_role_arn,
            parameters=dict(_key_value(item) for item in args.parameter),
            poll_seconds=args.poll_seconds,
        )
        print(json.dumps(deploy_infra(aws, request), indent=2, sort_keys=True))
    elif args.command == "update-endpoint":
        alarms = args.alarm if args.alarm is not None else default_alarm_names(args.stack_name)
        image_uri = args.image_uri or f"{repository_uri(aws.client('ecr'), args.repository)}:{args.image_tag}"
        update = EndpointUpdateRequest(image_uri, args.endpoint_name, tuple(alarms), args.poll_seconds)
        print(update_endpoint(aws.client("sagemaker"), update))
    elif args.command == "start-execution":
        execution_input = {**_json_input(args.input), **execution_input_from(args).to_json()}
        run_execution(
            aws,
            ExecutionRequest(
                execution_input=execution_input,
                state_machine_arn=args.state_machine_arn,
                stack_name=args.stack_name,
                name_prefix=args.name_prefix,
                wait=args.wait,
                poll_seconds=args.poll_seconds,
            ),
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run_command(args)
    except (DeployError, DefinitionError) as error:
        _say(f"ERROR: {error}")
    except NoCredentialsError:
        _say(
            "ERROR: no AWS credentials. In GitLab CI set the AWS_ROLE_ARN variable (OIDC, see .gitlab-ci.yml); "
            "locally configure a profile (AWS_PROFILE) or pass --endpoint-url for moto."
        )
    except NoRegionError:
        _say("ERROR: no AWS region: pass --region or set AWS_REGION")
    except (ClientError, BotoCoreError) as error:
        _say(f"ERROR: AWS call failed: {error}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
