"""Deploy CLI: ``python -m <package>_deploy <command>`` (run from the project root).

Commands: ``build``, ``push``, ``deploy-infra``, ``update-endpoint``, ``start-execution``.
``--endpoint-url`` and ``--region`` go to every boto3 client (``AWS_ENDPOINT_URL`` works too), so
the same code runs against moto in tests and in the offline emulator, which also calls the pieces
(``artifacts.package_lambda``, ``artifacts.upload_artifacts``, ``stack.deploy_stack``) directly.
Credentials come from the usual boto3 chain; in GitLab CI that is ``AWS_ROLE_ARN`` +
``AWS_WEB_IDENTITY_TOKEN_FILE`` (OIDC), never static keys.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from {{ cookiecutter.package_name }} import settings

from .artifacts import ASL_FILE
from .clients import Aws, DeployError, say
from .definition import DefinitionError, placeholders, render_definition
from .endpoint import default_alarm_names, update_endpoint
from .executions import run_execution
from .image import build_image, commit_tag, push_image, repository_uri
from .inputs import EndpointUpdateRequest, ExecutionInput, ExecutionRequest, InfraRequest
from .stack import deploy_infra


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {settings.PACKAGE_NAME}_deploy", description=__doc__.splitlines()[0]
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
    parser.add_argument("--volume-size-gb", type=int, default=None, help="every job's volume (1-16384)")
    parser.add_argument(
        "--max-runtime-seconds", type=int, default=None, help="every job's time limit (1-777600)"
    )
    parser.add_argument(
        "--training-input-mode",
        choices=("File", "FastFile"),
        default=None,
        help="training channels: copy (File) or stream (FastFile) the data",
    )
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
        volume_size_gb=args.volume_size_gb,
        max_runtime_seconds=args.max_runtime_seconds,
        training_input_mode=args.training_input_mode,
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
        say(f"ERROR: {error}")
    except NoCredentialsError:
        say(
            "ERROR: no AWS credentials. In GitLab CI set the AWS_ROLE_ARN variable (OIDC, see .gitlab-ci.yml); "
            "locally configure a profile (AWS_PROFILE) or pass --endpoint-url for moto."
        )
    except NoRegionError:
        say("ERROR: no AWS region: pass --region or set AWS_REGION")
    except (ClientError, BotoCoreError) as error:
        say(f"ERROR: AWS call failed: {error}")
    return 1


def _key_value(item: str, flag: str = "--parameter") -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise DeployError(f"{flag} takes Key=Value, got {item!r}")
    return key, value
