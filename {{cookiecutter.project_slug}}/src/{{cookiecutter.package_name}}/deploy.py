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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from . import settings
from .definition import DefinitionError, placeholders, render_definition

LAMBDA_DIR = Path("lambdas/check_endpoint")
ASL_FILE = Path("pipeline/state_machine.asl.json")
TEMPLATE_FILE = Path("infra/template.yaml")
DOCKERFILE = Path("container/Dockerfile")
# CloudFormation's limit for an inline TemplateBody; larger templates would need TemplateURL.
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


def ensure_artifact_bucket(s3: Any, bucket: str, region: str | None) -> None:
    """Create the artifacts bucket (encrypted, versioned, public access blocked) unless it exists."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise DeployError(f"artifacts bucket {bucket} is not usable: {error}") from error
    kwargs: dict[str, Any] = {"Bucket": bucket}
    # us-east-1 is the one region that refuses an explicit LocationConstraint.
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def upload_artifacts(s3: Any, bucket: str, project_root: Path) -> dict[str, str]:
    """Upload the Lambda zip and the ASL file under content-hash keys; returns the stack parameters."""
    root = Path(project_root)
    code = package_lambda(root)
    definition = (root / ASL_FILE).read_bytes()
    keys = {
        "LambdaCodeKey": content_key("lambda", "check_endpoint", code, ".zip"),
        "DefinitionKey": content_key("pipeline", "state_machine", definition, ".asl.json"),
    }
    for key, body in ((keys["LambdaCodeKey"], code), (keys["DefinitionKey"], definition)):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
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
    start = time.monotonic()
    last = ""
    while True:
        stack = _stack_status(cfn, stack_name)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if status != last:
            progress(f"stack {stack_name}: {status} ({time.monotonic() - start:.0f} s)")
            last = status
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() - start > timeout:
            raise DeployError(f"stack {stack_name} still {status} after {timeout:.0f} s")
        time.sleep(poll_seconds)
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
) -> dict[str, str]:
    """Create or update the stack, wait for the end, return its outputs (OutputKey -> OutputValue)."""
    if len(template_body.encode()) > MAX_TEMPLATE_BODY:
        raise DeployError(f"template is over {MAX_TEMPLATE_BODY} bytes: upload it and use TemplateURL")
    kwargs: dict[str, Any] = {
        "StackName": stack_name,
        "TemplateBody": template_body,
        "Parameters": [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in sorted(parameters.items())],
        "Capabilities": ["CAPABILITY_IAM"],
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


def deploy_infra(
    aws: Aws, project_root: Path, args: argparse.Namespace, progress: Progress = _say
) -> dict[str, str]:
    root = Path(project_root)
    s3 = aws.client("s3")
    bucket = args.artifact_bucket
    ensure_artifact_bucket(s3, bucket, aws.region)
    keys = upload_artifacts(s3, bucket, root)
    progress(f"uploaded s3://{bucket}/{keys['LambdaCodeKey']} and s3://{bucket}/{keys['DefinitionKey']}")
    parameters = {
        "ImageUri": args.image_uri or default_image_uri(aws),
        "ArtifactBucketName": bucket,
        **keys,
        **dict(_key_value(item) for item in args.parameter),
    }
    template = (root / TEMPLATE_FILE).read_text()
    return deploy_stack(
        aws.client("cloudformation"),
        template,
        parameters,
        stack_name=args.stack_name,
        role_arn=args.cfn_role_arn,
        progress=progress,
        poll_seconds=args.poll_seconds,
    )


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise DeployError(f"--parameter takes Key=Value, got {item!r}")
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
    while True:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
        status = endpoint["EndpointStatus"]
        progress(f"endpoint {endpoint_name}: {status} ({time.monotonic() - start:.0f} s)")
        if status not in ENDPOINT_BUSY:
            return endpoint
        if time.monotonic() - start > timeout:
            raise DeployError(f"endpoint {endpoint_name} still {status} after {timeout:.0f} s")
        time.sleep(poll_seconds)


def update_endpoint(
    sagemaker: Any,
    endpoint_name: str,
    image_uri: str,
    alarm_names: Sequence[str],
    progress: Progress = _say,
    poll_seconds: float = 30,
) -> str:
    """Serve the production model's artifact with a new image; returns the new endpoint config name.

    SageMaker rolls a failed blue/green update back silently (the endpoint is InService again, with
    the old config), so success is checked on the config name, not only on the status.
    """
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
        DeploymentConfig=blue_green_config(alarm_names),
    )
    final = wait_for_endpoint(sagemaker, endpoint_name, progress, poll_seconds)
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


def wait_for_execution(
    sfn: Any, execution_arn: str, progress: Progress = _say, poll_seconds: float = 10, timeout: float = 86_400
) -> dict[str, Any]:
    start = time.monotonic()
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        status = execution["status"]
        progress(f"execution {execution_arn.rsplit(':', 1)[-1]}: {status} ({time.monotonic() - start:.0f} s)")
        if status != "RUNNING":
            return execution
        if time.monotonic() - start > timeout:
            raise DeployError(f"execution still RUNNING after {timeout:.0f} s")
        time.sleep(poll_seconds)


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
    run.add_argument("--input", default="{}", help="execution input JSON")
    run.add_argument("--wait", action="store_true")
    run.add_argument("--poll-seconds", type=float, default=10)
    return parser


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
        outputs = deploy_infra(aws, root, args)
        print(json.dumps(outputs, indent=2, sort_keys=True))
    elif args.command == "update-endpoint":
        alarms = args.alarm if args.alarm is not None else default_alarm_names(args.stack_name)
        image_uri = args.image_uri or f"{repository_uri(aws.client('ecr'), args.repository)}:{args.image_tag}"
        print(
            update_endpoint(
                aws.client("sagemaker"), args.endpoint_name, image_uri, alarms, poll_seconds=args.poll_seconds
            )
        )
    elif args.command == "start-execution":
        try:
            json.loads(args.input)
        except json.JSONDecodeError as error:
            raise DeployError(f"--input is not JSON: {error}") from error
        sfn = aws.client("stepfunctions")
        arn = (
            args.state_machine_arn
            or stack_outputs(aws.client("cloudformation"), args.stack_name)["StateMachineArn"]
        )
        execution_arn = start_execution(sfn, arn, execution_name(args.name_prefix), args.input)
        print(execution_arn, flush=True)
        if args.wait:
            execution = wait_for_execution(sfn, execution_arn, poll_seconds=args.poll_seconds)
            if execution["status"] != "SUCCEEDED":
                raise DeployError(
                    f"execution {execution['status']}: {execution.get('error', '?')}: {execution.get('cause', '')}"
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
