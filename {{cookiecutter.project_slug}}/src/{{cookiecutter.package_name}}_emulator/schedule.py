"""The stack's schedule, fired on request the way EventBridge fires it (moto never fires schedules).

For a rule of the deployed stack (``AWS::Events::Rule`` with a ``ScheduleExpression``), ``fire``
does what EventBridge does when the schedule comes due
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html,
https://docs.aws.amazon.com/step-functions/latest/dg/using-eventbridge-scheduler.html): the rule
must be ENABLED; for each Step Functions target, EventBridge assumes the target's ``RoleArn``
(its trust policy must let ``events.amazonaws.com`` assume it, conditions included), and that
role starts the execution with the target's ``Input``. The role's own policies (and permissions
boundary) must allow ``states:StartExecution`` on the target, or the invocation fails as on AWS.
The execution is started with the assumed role's credentials.

    target = scheduled_target(cp, stack_name)            # the ScheduleRule's target
    execution_arn = fire(cp, target)
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3

from . import identity_policies, policies
from .iam_actions import Check

EVENTS = "events.amazonaws.com"


class ScheduleError(RuntimeError):
    """The schedule cannot start the pipeline; the message says why, as EventBridge would."""


@dataclass(frozen=True)
class ScheduledTarget:
    logical_id: str
    rule: str  # physical name
    rule_arn: str
    schedule: str
    state: str
    target_arn: str
    role_arn: str
    input: str


def scheduled_target(cp: Any, stack_name: str, logical_id: str | None = None) -> ScheduledTarget:
    """The Step Functions target of the stack's scheduled rule ``logical_id`` (default: the only one,
    or ``ScheduleRule``)."""
    cfn, events = cp.client("cloudformation"), cp.client("events")
    rules = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::Events::Rule"
    }
    described = {k: events.describe_rule(Name=v) for k, v in rules.items()}
    scheduled = {k: d for k, d in described.items() if d.get("ScheduleExpression")}
    chosen = logical_id or ("ScheduleRule" if "ScheduleRule" in scheduled else next(iter(scheduled), None))
    if chosen not in scheduled:
        raise ScheduleError(
            f"stack {stack_name} has no scheduled rule {chosen!r} (it has: {', '.join(scheduled)})"
        )
    rule = scheduled[chosen]
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    machines = [t for t in targets if ":states:" in t["Arn"] and ":stateMachine:" in t["Arn"]]
    if len(machines) != 1:
        raise ScheduleError(f"rule {rule['Name']} has {len(machines)} state machine targets, expected 1")
    target = machines[0]
    return ScheduledTarget(
        logical_id=chosen,
        rule=rule["Name"],
        rule_arn=rule["Arn"],
        schedule=rule["ScheduleExpression"],
        state=rule.get("State", "ENABLED"),
        target_arn=target["Arn"],
        role_arn=target.get("RoleArn", ""),
        input=target.get("Input", "{}"),
    )


def fire(cp: Any, target: ScheduledTarget, account: str = "123456789012") -> str:
    """Start the target's execution as EventBridge would when the schedule comes due; its ARN."""
    if target.state != "ENABLED":
        raise ScheduleError(f"rule {target.rule} is {target.state}: EventBridge does not invoke its targets")
    if not target.role_arn:
        raise ScheduleError(f"rule {target.rule}: a Step Functions target needs a RoleArn")
    iam = cp.client("iam")
    role = iam.get_role(RoleName=target.role_arn.rsplit("/", 1)[-1])["Role"]
    context = {"aws:SourceAccount": account, "aws:SourceArn": target.rule_arn}
    if not _trusts(_document(role["AssumeRolePolicyDocument"]), EVENTS, context):
        raise ScheduleError(
            f"EventBridge cannot assume {target.role_arn}: its trust policy does not allow {EVENTS} "
            f"(sts:AssumeRole) for rule {target.rule_arn}"
        )
    denied = _start_execution_denied(iam, role, target.target_arn)
    if denied:
        raise ScheduleError(
            f"AccessDenied: {target.role_arn} is not authorized to perform states:StartExecution on "
            f"{target.target_arn} ({denied}); EventBridge counts a FailedInvocation of rule {target.rule}"
        )
    credentials = cp.client("sts").assume_role(
        RoleArn=target.role_arn, RoleSessionName=f"events-{uuid.uuid4().hex[:16]}"
    )["Credentials"]
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=cp.endpoint_url,
        region_name=cp.region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    # EventBridge names the execution itself (an id, not a name the project chose).
    return str(
        sfn.start_execution(stateMachineArn=target.target_arn, name=str(uuid.uuid4()), input=target.input)[
            "executionArn"
        ]
    )


_document = identity_policies.document  # IAM's URL-encoded JSON, or moto's repr of an inline policy


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement") or []
    return statements if isinstance(statements, list) else [statements]


def _trusts(document: dict[str, Any], service: str, context: dict[str, str]) -> bool:
    for statement in _statements(document):
        principal = statement.get("Principal") or {}
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = services if isinstance(services, list) else [services]
        body = {k: v for k, v in statement.items() if k != "Principal"}
        if service in services and policies.Statement.parse(body).matches("sts:AssumeRole", "*", context):
            return bool(statement["Effect"] != "Deny")
    return False


def _start_execution_denied(iam: Any, role: dict[str, Any], state_machine: str) -> str:
    """Why the role may not start ``state_machine`` ("" when it may): IAM's own decision
    (``identity_policies.decide``) over the role's policies and boundary as the IAM API returns them."""
    identity = [
        (
            name,
            json.dumps(
                _document(iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"])
            ),
        )
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    ]
    identity += [
        (p["PolicyName"], json.dumps(_managed(iam, p["PolicyArn"])))
        for p in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    ]
    boundary_arn = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    boundary = [(boundary_arn, json.dumps(_managed(iam, boundary_arn)))] if boundary_arn else None
    check = Check("states:StartExecution", state_machine)
    return identity_policies.decide(role["Arn"], identity, boundary, check).reason


def _managed(iam: Any, arn: str) -> dict[str, Any]:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return _document(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])
