"""The IAM actions, resource ARNs and condition keys AWS authorizes for one request to the moto server.

``checks(service, operation, request)`` answers for the operations the stack's roles call offline,
from the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html):

- SageMaker: ``sagemaker:<Operation>`` on the job, model, config or endpoint the request names; a
  Create* that passes a role also needs ``iam:PassRole`` on it with ``iam:PassedToService``
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html), and one that
  carries Tags needs ``sagemaker:AddTags`` (aws-cdk issue 32294 shows AWS asking for it);
- Lambda ``Invoke`` is ``lambda:InvokeFunction`` on the function (qualified when asked);
- SNS ``Publish`` on the topic; Step Functions on the state machine or execution;
- S3 from method, path and query: GetObject/HeadObject (``GetObjectVersion`` with a versionId),
  PutObject (also multipart parts), CopyObject (``PutObject`` on the target and ``GetObject`` on the
  source), DeleteObject(Version), ListObjects(V2)/HeadBucket as ``s3:ListBucket`` with ``s3:prefix``.

``None`` means the operation is not mapped: the caller denies it and says so, so a gap shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes for a request: ``action`` on ``resource`` with ``context`` keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """What the mapping reads from a request (the moto response object gives it)."""

    region: str
    account: str
    method: str = "POST"
    path: str = "/"
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""

    def json(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.body or "{}"))
        except (ValueError, TypeError):
            return {}

    def param(self, name: str) -> str:
        values = self.query.get(name) or [""]
        return values[0]

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


# SageMaker: the request member that names the resource -> its ARN's resource type.
_SAGEMAKER_NAMES = {
    "TrainingJobName": "training-job",
    "ProcessingJobName": "processing-job",
    "HyperParameterTuningJobName": "hyper-parameter-tuning-job",
    "ModelName": "model",
    "EndpointConfigName": "endpoint-config",
    "EndpointName": "endpoint",
}
_SAGEMAKER_VERBS = ("Create", "Describe", "Stop", "Update", "Delete", "List", "Add")
# Where a Create* request passes a role (PassRole at that call).
_PASSED_ROLES = ("RoleArn", "ExecutionRoleArn")


def _sagemaker(operation: str, call: Call) -> list[Check] | None:
    if not operation.startswith(_SAGEMAKER_VERBS):
        return None
    body = call.json()
    if operation == "AddTags":
        return [Check("sagemaker:AddTags", str(body.get("ResourceArn", "")))]
    # ListTrainingJobsForHyperParameterTuningJob names the tuning job; Update/Describe/... the resource.
    named = [(member, kind) for member, kind in _SAGEMAKER_NAMES.items() if member in body]
    if not named:
        return None
    member, kind = named[0]
    if operation == "CreateEndpoint" or operation == "UpdateEndpoint":
        member, kind = "EndpointName", "endpoint"
    resource = call.arn("sagemaker", f"{kind}/{str(body[member]).lower()}")  # SageMaker ARNs are lower case
    checks = [Check(f"sagemaker:{operation}", resource)]
    if operation == "CreateEndpoint" or operation == "UpdateEndpoint":  # the config it deploys, too
        config = call.arn("sagemaker", f"endpoint-config/{str(body.get('EndpointConfigName', '')).lower()}")
        checks.append(Check(f"sagemaker:{operation}", config))
    if operation.startswith("Create"):
        if body.get("Tags"):
            checks.append(Check("sagemaker:AddTags", resource))
        for role in sorted(_passed_roles(body)):
            checks.append(Check("iam:PassRole", role, {"iam:PassedToService": SAGEMAKER_SERVICE}))
    return checks


def _passed_roles(node: Any) -> set[str]:
    """Every role ARN a request passes (tuning jobs nest it in their training definitions)."""
    if isinstance(node, dict):
        found = {str(v) for k, v in node.items() if k in _PASSED_ROLES and isinstance(v, str)}
        return found.union(*(_passed_roles(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_passed_roles(v) for v in node))
    return set()


_FUNCTION = re.compile(r"/functions/(?P<name>[^/]+)/invocations")


def _lambda(operation: str, call: Call) -> list[Check] | None:
    match = _FUNCTION.search(call.path)
    if operation != "Invoke" or not match:
        return None
    name = unquote(match.group("name"))
    arn = name if name.startswith("arn:") else call.arn("lambda", f"function:{name}")
    qualifier = call.param("Qualifier")
    return [Check("lambda:InvokeFunction", f"{arn}:{qualifier}" if qualifier else arn)]


def _sns(operation: str, call: Call) -> list[Check] | None:
    topic = call.param("TopicArn")
    return [Check(f"sns:{operation}", topic)] if operation == "Publish" and topic else None


_STATES_RESOURCE = {
    "StartExecution": "stateMachineArn",
    "ListExecutions": "stateMachineArn",
    "DescribeStateMachine": "stateMachineArn",
    "DescribeExecution": "executionArn",
    "StopExecution": "executionArn",
    "GetExecutionHistory": "executionArn",
}


def _states(operation: str, call: Call) -> list[Check] | None:
    member = _STATES_RESOURCE.get(operation)
    body = call.json()
    return [Check(f"states:{operation}", str(body[member]))] if member and member in body else None


# ListObjects(V2) parameters: a GET of the bucket with only these is s3:ListBucket.
_LISTING = {"list-type", "prefix", "delimiter", "continuation-token", "start-after", "max-keys"}
_LISTING |= {"encoding-type", "fetch-owner", "marker"}


def _s3(_operation: str, call: Call) -> list[Check] | None:
    bucket, _, key = unquote(call.path.lstrip("/")).partition("/")
    method, query = call.method.upper(), call.query
    if not bucket:
        return [Check("s3:ListAllMyBuckets", "*")] if method == "GET" else None
    if not key:
        if method == "HEAD" or (method == "GET" and not set(query) - _LISTING):
            context = {"s3:prefix": call.param("prefix")} if "prefix" in query else {}
            return [Check("s3:ListBucket", f"arn:aws:s3:::{bucket}", context)]
        if method == "GET" and "location" in query:
            return [Check("s3:GetBucketLocation", f"arn:aws:s3:::{bucket}")]
        return None
    arn = f"arn:aws:s3:::{bucket}/{key}"
    versioned = "versionId" in query
    if method in ("GET", "HEAD") and not set(query) - {"versionId", "partNumber", "response-content-type"}:
        return [Check("s3:GetObjectVersion" if versioned else "s3:GetObject", arn)]
    if method == "DELETE" and "uploadId" in query:
        return [Check("s3:AbortMultipartUpload", arn)]
    if method == "DELETE" and not set(query) - {"versionId"}:
        return [Check("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", arn)]
    if method in ("PUT", "POST") and not set(query) - {"uploads", "uploadId", "partNumber"}:
        checks = [Check("s3:PutObject", arn)]
        source = call.headers.get("x-amz-copy-source") or call.headers.get("X-Amz-Copy-Source")
        if source:  # CopyObject / UploadPartCopy: read the source too
            path, _, version = unquote(source).lstrip("/").partition("?versionId=")
            checks.append(Check("s3:GetObjectVersion" if version else "s3:GetObject", f"arn:aws:s3:::{path}"))
        return checks
    return None


_SERVICES: dict[str, Callable[[str, Call], list[Check] | None]] = {
    "sagemaker": _sagemaker,
    "lambda": _lambda,
    "sns": _sns,
    "states": _states,
    "s3": _s3,
}


def checks(service: str, operation: str, call: Call) -> list[Check] | None:
    """The authorizations AWS makes for ``operation`` of ``service`` (None: not mapped offline)."""
    mapper = _SERVICES.get(service)
    return mapper(operation, call) if mapper else None
