"""IAM identity policies offline: the stack's roles get what their deployed policies allow, no more.

One emulator (process runtime) runs the shipped pipeline once with an extra, unneeded statement in
the state machine role; each fault test then patches one deployed policy, runs one execution and
restores the policy. Unit tests of the request mapping and of IAM's decision come first.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_emulator import iam_actions, identity_policies, least_privilege, principals
from {{ cookiecutter.package_name }}_emulator.iam_actions import Call, Check
from {{ cookiecutter.package_name }}_emulator.run import Emulator

ACCOUNT, REGION = "123456789012", settings.AWS_REGION
EXTRA = {"Effect": "Allow", "Action": "sagemaker:DeleteModel", "Resource": "*"}  # nothing calls it


# ------------------------------------------------------------------ mapping and decision (no moto)
def test_create_training_job_needs_the_action_tags_and_passrole_to_sagemaker() -> None:
    body = {"TrainingJobName": "Train-1", "RoleArn": "arn:aws:iam::1:role/r", "Tags": [{"Key": "k"}]}
    found = iam_actions.checks("sagemaker", "CreateTrainingJob", Call(REGION, ACCOUNT, body=json.dumps(body)))
    job = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/train-1"
    assert found == [
        Check("sagemaker:CreateTrainingJob", job),
        Check("sagemaker:AddTags", job),
        Check("iam:PassRole", "arn:aws:iam::1:role/r", {"iam:PassedToService": "sagemaker.amazonaws.com"}),
    ]


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "expected"),
    [
        ("GET", "/b/k", {}, {}, [Check("s3:GetObject", "arn:aws:s3:::b/k")]),
        ("GET", "/b/k", {"versionId": ["1"]}, {}, [Check("s3:GetObjectVersion", "arn:aws:s3:::b/k")]),
        (
            "GET",
            "/b",
            {"list-type": ["2"], "prefix": ["data/"]},
            {},
            [Check("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "data/"})],
        ),
        (
            "PUT",
            "/b/t",
            {},
            {"x-amz-copy-source": "b/s"},
            [Check("s3:PutObject", "arn:aws:s3:::b/t"), Check("s3:GetObject", "arn:aws:s3:::b/s")],
        ),
        ("DELETE", "/b/k", {"versionId": ["1"]}, {}, [Check("s3:DeleteObjectVersion", "arn:aws:s3:::b/k")]),
        ("PUT", "/b/k", {"tagging": [""]}, {}, None),  # not mapped: refused and reported
    ],
)
def test_s3_requests_map_to_the_actions_s3_authorizes(
    method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], expected: list[Check] | None
) -> None:
    call = Call(REGION, ACCOUNT, method=method, path=path, query=query, headers=headers)
    assert iam_actions.checks("s3", "", call) == expected


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ROLE = f"arn:aws:iam::{ACCOUNT}:role/r"
ALLOW_S3 = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}


@pytest.mark.parametrize(
    ("identity", "boundary", "allowed", "reason"),
    [
        ([ALLOW_S3], None, True, ""),
        ([], None, False, "because no identity-based policy allows the s3:GetObject action"),
        (
            [ALLOW_S3, {**ALLOW_S3, "Effect": "Deny"}],
            None,
            False,
            "with an explicit deny in an identity-based policy",
        ),
        (
            [ALLOW_S3],
            [{**ALLOW_S3, "Action": "sns:*"}],
            False,
            "because no permissions boundary allows the s3:GetObject action",
        ),
        (
            [ALLOW_S3],
            [ALLOW_S3, {**ALLOW_S3, "Effect": "Deny"}],
            False,
            "with an explicit deny in a permissions boundary",
        ),
    ],
)
def test_iam_decides_deny_first_then_allow_in_both_identity_and_boundary(
    identity: list[dict[str, Any]], boundary: list[dict[str, Any]] | None, allowed: bool, reason: str
) -> None:
    decision = identity_policies.decide(
        ROLE,
        [("p", _policy(*identity))],
        None if boundary is None else [("b", _policy(*boundary))],
        Check("s3:GetObject", "arn:aws:s3:::b/k"),
    )
    assert (decision.allowed, decision.reason) == (allowed, reason)


# ------------------------------------------------------------------ the pipeline with enforcement on
class Stack:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator, self.iam = emulator, emulator.cp.client("iam")
        self.name = emulator.stack.name

    def role(self, suffix: str) -> str:
        return f"{self.name}-{suffix}"

    def arn(self, suffix: str) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{self.role(suffix)}"

    def inline(self, suffix: str, policy: str) -> dict[str, Any]:
        document = self.iam.get_role_policy(RoleName=self.role(suffix), PolicyName=policy)["PolicyDocument"]
        return identity_policies.document(document)

    def put(self, suffix: str, policy: str, document: dict[str, Any]) -> None:
        self.iam.put_role_policy(
            RoleName=self.role(suffix), PolicyName=policy, PolicyDocument=json.dumps(document)
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    emulator = Emulator("process", tmp_path_factory.mktemp("iam"), Console(file=io.StringIO(), width=160))
    try:
        emulator.start()
        deployed = Stack(emulator)
        deployed.put("state-machine", "extra", {"Version": "2012-10-17", "Statement": [EXTRA]})
        deployed.first = emulator.execute("iam-create")  # type: ignore[attr-defined]
        yield deployed
    finally:
        emulator.close()


def failed_task(outcome: Any) -> tuple[str, str, str]:
    """(state, error, cause) of the first failed task."""
    row = next(row for row in outcome.states if row["status"] == "failed")
    event = next(e for e in outcome.history if e["type"] == "TaskFailed")
    details = event["taskFailedEventDetails"]
    return row["name"], details["error"], details.get("cause", "")


def test_the_shipped_pipeline_passes_with_every_role_checked(stack: Stack) -> None:
    assert stack.first.status == "SUCCEEDED", stack.first.error  # type: ignore[attr-defined]
    signers = {principal for principal, *_ in identity_policies.LEDGER.allowed}
    # The state machine, a job role and a Lambda's role were all checked (and allowed).
    assert {stack.arn("state-machine"), stack.arn("training"), stack.arn("verify-artifact")} <= signers
    assert not identity_policies.LEDGER.denied and not identity_policies.LEDGER.unmapped


def test_the_report_flags_an_added_unneeded_statement(stack: Stack, tmp_path: Path) -> None:
    result = least_privilege.report(identity_policies.LEDGER, identity_policies.enforced())
    unneeded = {str(row.statement) for row in result.unneeded()}
    assert f"{stack.role('state-machine')}/extra#0" in unneeded
    necessary = {(r.statement.role, r.example.split(" ")[0]) for r in result.necessary()}
    assert (stack.role("state-machine"), "iam:PassRole") in necessary
    assert (stack.role("training"), "s3:GetObject") in necessary
    assert stack.arn("ci") in result.silent_roles  # never signs offline: not judged
    table = least_privilege.write_table(result, tmp_path / "lp.md").read_text()
    assert f"| {stack.role('state-machine')}/extra#0 | unneeded | 0 | 0 |" in table


def _without(document: dict[str, Any], action: str) -> dict[str, Any]:
    """``document`` with ``action`` removed from every statement (statements left empty dropped)."""
    kept = []
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        rest = [a for a in actions if a != action]
        if rest:
            kept.append({**statement, "Action": rest})
    return {**document, "Statement": kept}


def _without_passing(document: dict[str, Any], role_arn: str) -> dict[str, Any]:
    """``document`` whose iam:PassRole statements no longer name ``role_arn``."""
    kept = []
    for statement in document["Statement"]:
        if statement["Action"] == "iam:PassRole":
            statement = {**statement, "Resource": [r for r in statement["Resource"] if r != role_arn]}
        kept.append(statement)
    return {**document, "Statement": kept}


def test_without_passrole_on_the_training_role_the_train_step_fails_with_the_aws_error(stack: Stack) -> None:
    original = stack.inline("state-machine", "pipeline")
    stack.put("state-machine", "pipeline", _without_passing(original, stack.arn("training")))
    try:
        outcome = stack.emulator.execute("iam-no-passrole")
    finally:
        stack.put("state-machine", "pipeline", original)
    state, error, cause = failed_task(outcome)
    # As on AWS: the optimised integration's error, the IAM message and code in its cause.
    assert (outcome.status, state, error) == ("FAILED", "Train", "SageMaker.AmazonSageMakerException")
    assert (
        f"User: {stack.arn('state-machine')} is not authorized to perform: iam:PassRole on resource: "
        f"{stack.arn('training')} because no identity-based policy allows the iam:PassRole action"
    ) in cause
    assert "Error Code: AccessDeniedException" in cause


def test_a_training_role_without_getobject_on_data_fails_the_train_job(stack: Stack) -> None:
    original = stack.inline("training", "train")
    stack.put("training", "train", _without(original, "s3:GetObject"))
    try:
        outcome = stack.emulator.execute("iam-no-getobject")
    finally:
        stack.put("training", "train", original)
    state, error, cause = failed_task(outcome)
    assert (outcome.status, state, error) == ("FAILED", "Train", "States.TaskFailed")
    # The runtime's first read is a HeadObject: S3 answers a bodiless 403, as AWS does (no error code).
    assert "(403) when calling the HeadObject operation: Forbidden" in cause
    data = f"arn:aws:s3:::{settings.S3_BUCKET}/data/train/train.csv"
    assert identity_policies.LEDGER.denied[(stack.arn("training"), "s3:GetObject", data)] >= 1


def test_a_boundary_that_denies_invoking_the_lambda_fails_find_production(stack: Stack) -> None:
    iam = stack.iam
    arn = f"arn:aws:iam::{ACCOUNT}:policy/{stack.name}-permissions-boundary"
    default = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = identity_policies.document(
        iam.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]["Document"]
    )
    deny = {"Effect": "Deny", "Action": "lambda:InvokeFunction", "Resource": "*"}
    document["Statement"] = [*document["Statement"], deny]
    version = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(document), SetAsDefault=True)
    try:
        outcome = stack.emulator.execute("iam-boundary")
    finally:
        iam.set_default_policy_version(PolicyArn=arn, VersionId=default)
        iam.delete_policy_version(PolicyArn=arn, VersionId=version["PolicyVersion"]["VersionId"])
    state, error, cause = failed_task(outcome)
    assert (outcome.status, state) == ("FAILED", "FindProduction")
    assert error.startswith("Lambda.") and "with an explicit deny in a permissions boundary" in cause


def test_the_emulators_own_calls_pass_and_a_role_gets_the_services_error(stack: Stack) -> None:
    cp = stack.emulator.cp
    # The emulator's (unattributed) key: not one of the stack's roles, so not checked.
    cp.client("sns").list_topics()
    machine = boto3.client(
        "sagemaker",
        endpoint_url=cp.endpoint_url,
        region_name=REGION,
        aws_access_key_id=principals.INTERPRETER_KEY,  # signs as the state machine role
        aws_secret_access_key="x",  # pragma: allowlist secret (moto dummy)
    )
    with pytest.raises(ClientError) as denied:
        machine.describe_endpoint_config(EndpointConfigName="config-x")  # not in its policy
    error = denied.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDeniedException",
        400,
    )
    assert error["Error"]["Message"] == (
        f"User: {stack.arn('state-machine')} is not authorized to perform: sagemaker:DescribeEndpointConfig on "
        f"resource: arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/config-x because no identity-based "
        "policy allows the sagemaker:DescribeEndpointConfig action"
    )
    with pytest.raises(ClientError, match="not mapped offline"):
        machine.list_models()
