"""No principal GitLab CI can become escapes the permissions boundary (tests/support/iam_rules.py evaluates).

Run on the template before the boundary (commit e70ac88) the same analysis gave 915 findings (73
distinct principal/kind pairs) over 12 reachable principals, among them the CI role rewriting its
own policy through CloudFormation, unbounded role creation and deleting the OIDC provider
(docs/decisions.md, "Security"). The mutation tests below
re-open each hole and check that it is named.
"""

from __future__ import annotations

import copy
from pathlib import Path

import iam_rules
import pytest

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import cfn

SAGEMAKER, STATES, LAMBDA, EVENTS, CFN = (
    f"{name}.amazonaws.com" for name in ("sagemaker", "states", "lambda", "events", "cloudformation")
)
# Each role -> the only services it may ever be passed to (by anyone).
ALLOWED_PASSES = {
    "TrainingRole": {SAGEMAKER},
    "ProcessingRole": {SAGEMAKER},
    "HostingRole": {SAGEMAKER},
    "StateMachineRole": {STATES},
    "CheckEndpointRole": {LAMBDA},
    "VerifyArtifactRole": {LAMBDA},
    "ScheduleRole": {EVENTS},
    "CloudFormationRole": {CFN},
}


@pytest.fixture(scope="module")
def template(project_root: Path) -> dict:
    return cfn.loads((project_root / "infra" / "template.yaml").read_text())


def analyse(template: dict) -> list[iam_rules.Finding]:
    return iam_rules.analyse(iam_rules.Stack(template, settings.STACK_NAME), allowed_passes=ALLOWED_PASSES)


def test_nothing_reachable_from_ci_escapes_the_boundary(template):
    findings = analyse(template)
    assert not findings, "\n".join(map(str, findings))


def test_ci_reaches_the_roles_it_deploys_and_no_further(template):
    stack = iam_rules.Stack(template, settings.STACK_NAME)
    roles = iam_rules.principals(stack)
    reached = set(iam_rules.reachable(stack, roles, "CiRole"))
    # Through CloudFormation CI can become every workload role (within the boundary), never rewrite
    # the CI or CloudFormation roles.
    assert {"CloudFormationRole", "TrainingRole", "HostingRole", "StateMachineRole"} <= reached
    assert "CiRole(rewritten)" not in reached and "CloudFormationRole(rewritten)" not in reached


# ---------------------------------------------------------------- the analysis can fail
# Each mutation re-opens one hole the review found; the analysis must name it.


def _role(template: dict, name: str) -> dict:
    return template["Resources"][name]["Properties"]


def _statements(template: dict, name: str) -> list[dict]:
    resource = template["Resources"][name]["Properties"]
    if "PolicyDocument" in resource:
        return resource["PolicyDocument"]["Statement"]
    return resource["Policies"][0]["PolicyDocument"]["Statement"]


def _drop(statements: list[dict], predicate) -> None:
    statements[:] = [s for s in statements if not predicate(s)]


def _actions(statement: dict) -> list[str]:
    action = statement.get("Action", [])
    return action if isinstance(action, list) else [action]


def test_the_reported_escalation_is_found(template):
    """The original CloudFormation role: role/<stack>-* writes, PassRole without a service, no boundary."""
    broken = copy.deepcopy(template)
    cfn = _role(broken, "CloudFormationRole")
    del cfn["PermissionsBoundary"]
    cfn["Policies"][0]["PolicyDocument"]["Statement"] = [
        {
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:PassRole",
            ],
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-*"},
        },
        {
            "Effect": "Allow",
            "Action": ["iam:*OpenIDConnectProvider*"],
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:oidc-provider/gitlab.com"},
        },
    ]
    kinds = {f.kind for f in analyse(broken)}
    assert {
        "no permissions boundary",
        "creates a role without the boundary",
        "changes its own or a protected role",
        "passes a role to an unexpected service",
        "deletes the account's GitLab OIDC provider",
    } <= kinds


def test_a_role_write_without_the_boundary_condition_is_found(template):
    broken = copy.deepcopy(template)
    for name in ("CloudFormationRole", "PermissionsBoundary"):
        for statement in _statements(broken, name):
            if "iam:CreateRole" in _actions(statement):
                statement["Condition"].pop("StringEquals")
    findings = analyse(broken)
    assert any(f.kind == "creates a role without the boundary" for f in findings)


def test_pass_role_without_a_service_condition_is_found(template):
    broken = copy.deepcopy(template)
    for name in ("CloudFormationRole", "PermissionsBoundary"):
        for statement in _statements(broken, name):
            if _actions(statement) == ["iam:PassRole"] and statement["Effect"] == "Allow":
                statement["Condition"].pop("StringEquals")
    details = {f.detail for f in analyse(broken) if f.kind == "passes a role to an unexpected service"}
    assert "StateMachineRole -> ec2.amazonaws.com" in details


def test_changing_the_deploy_roles_is_found_without_the_denies(template):
    broken = copy.deepcopy(template)
    for name in ("CloudFormationRole", "PermissionsBoundary"):
        _drop(_statements(broken, name), lambda s: s["Effect"] == "Deny")
        for statement in _statements(broken, name):
            resources = statement.get("Resource")
            if "iam:PutRolePolicy" in _actions(statement) and isinstance(resources, list):
                resources.append(
                    {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-ci"}
                )
    details = {f.detail for f in analyse(broken) if f.kind == "changes its own or a protected role"}
    assert "iam:PutRolePolicy on CiRole" in details


def test_a_rewritten_role_changing_itself_is_found(template):
    """Without the principal condition in the boundary, a role whose policy CloudFormation rewrote to
    "*" could change its own policy: the boundary alone then allows role writes to every role."""
    broken = copy.deepcopy(template)
    for statement in _statements(broken, "PermissionsBoundary"):
        if statement.get("Sid") == "BoundedRoleWrites":
            statement["Condition"].pop("ArnEquals")
    findings = analyse(broken)
    assert any(
        f.kind == "changes its own or a protected role" and "(rewritten)" in f.principal for f in findings
    )


def test_deleting_the_oidc_provider_is_found(template):
    broken = copy.deepcopy(template)
    for name in ("CloudFormationRole", "PermissionsBoundary"):
        _drop(_statements(broken, name), lambda s: "iam:DeleteOpenIDConnectProvider" in _actions(s))
        _statements(broken, name).append(
            {"Effect": "Allow", "Action": "iam:DeleteOpenIDConnectProvider", "Resource": "*"}
        )
    assert any(f.kind == "deletes the account's GitLab OIDC provider" for f in analyse(broken))


# ---------------------------------------------------------------- the evaluator itself


@pytest.mark.parametrize(
    ("operator", "expected", "context", "result"),
    [
        ("StringEquals", "a", {"k": "a"}, True),
        ("StringEquals", "a", {}, False),  # a missing key never equals
        ("StringNotEquals", "a", {}, True),  # ... and always "not equals"
        ("StringLike", "data/*", {"k": "data/x/y"}, True),
        ("StringEqualsIfExists", "a", {}, True),
        ("ArnEquals", "arn:aws:iam::1:role/x", {"k": "arn:aws:iam::1:role/y"}, False),
        ("ArnNotEquals", "arn:aws:iam::1:role/x", {"k": "arn:aws:iam::1:role/y"}, True),
        ("Null", "true", {}, True),
    ],
)
def test_condition_operators(operator, expected, context, result):
    assert iam_rules._condition(operator, "k", expected, context) is result


def test_unknown_constructs_are_refused():
    with pytest.raises(NotImplementedError):
        iam_rules._condition("NumericLessThan", "k", "1", {"k": "0"})
    with pytest.raises(NotImplementedError):
        iam_rules.Statement.parse({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"})


def test_action_wildcards_match_case_insensitively_resources_do_not():
    statement = iam_rules.Statement(
        "Allow", ("iam:*OpenIDConnect*",), False, ("arn:aws:s3:::b/*",), False, {}
    )
    assert statement.matches("IAM:deleteopenidconnectprovider", "arn:aws:s3:::b/k", {})
    assert not statement.matches("iam:DeleteOpenIDConnectProvider", "arn:aws:s3:::B/k", {})


def test_resource_policies_are_found_without_the_deny(template):
    broken = copy.deepcopy(template)
    _drop(
        _statements(broken, "PermissionsBoundary"),
        lambda s: s.get("Sid") == "DenyResourcePoliciesAndPublicUrls",
    )
    details = {
        f.detail.split(" on ")[0]
        for f in analyse(broken)
        if f.kind == "opens a project resource to other accounts"
    }
    assert {"lambda:AddPermission", "lambda:CreateFunctionUrlConfig"} <= details
