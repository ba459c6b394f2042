"""The CloudFormation stack: create or update, wait, read its outputs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from {{ cookiecutter.package_name }} import settings

from . import polling
from .artifacts import content_key, ensure_artifact_bucket, owner_args, upload_artifacts
from .clients import Aws, DeployError, Progress, say
from .inputs import InfraRequest

TEMPLATE_FILE = Path("infra/template.yaml")


# CloudFormation's limit for an inline TemplateBody; a larger template goes to the artifacts bucket
# and is passed as TemplateURL (limit 1 MB), "CloudFormation quotas".
MAX_TEMPLATE_BODY = 51_200


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


def _stack_status(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def _failure_reasons(cfn: Any, stack_name: str) -> list[str]:
    """The failed resources of the stack's latest operation. Events come newest first, a page at a
    time: read pages until the event that started the operation (the stack's own IN_PROGRESS)."""
    reasons = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack_name):
        for event in page.get("StackEvents", []):
            status = event.get("ResourceStatus", "")
            if event["LogicalResourceId"] == stack_name and status.endswith("_IN_PROGRESS"):
                if status in ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"):
                    return reasons
            elif status.endswith("_FAILED") and event["LogicalResourceId"] != stack_name:
                reasons.append(
                    f"{event['LogicalResourceId']} ({event.get('ResourceType', '?')}): "
                    f"{event.get('ResourceStatusReason', '')}"
                )
    return reasons


def wait_for_stack(
    cfn: Any, stack_name: str, progress: Progress = say, poll_seconds: float = 5, timeout: float = 3600
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
    progress: Progress = say,
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


def deploy_infra(aws: Aws, request: InfraRequest, progress: Progress = say) -> dict[str, str]:
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
        s3.put_object(Bucket=bucket, Key=key, Body=template.encode(), **owner_args(owner))
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
