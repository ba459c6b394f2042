"""No principal GitLab CI can become escapes the permissions boundary (tests/support/iam_rules.py evaluates).

Run on the template before the boundary (commit e70ac88) the same analysis gave 915 findings (73
distinct principal/kind pairs) over 12 reachable principals, among them the CI role rewriting its
own policy through CloudFormation, unbounded role creation and deleting the OIDC provider
(docs/decisions.md, "Security"). The mutation tests below
re-open each hole and check that it is named.

Issue 22 added who may assume a role and the buckets' own settings: run on the template before it
(commit 7122161), the analysis gave 449 findings over the principals CI reaches: 14 "sets a trust
policy" (the CloudFormation role's CreateRole/UpdateAssumeRolePolicy, conditioned only on the
boundary, which bounds what a role does, not who assumes it) and 435 "changes a bucket setting"
(lifecycle, versioning, public access block, replication... on both buckets).
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
    "ValidateRole": {SAGEMAKER},
    "EvaluateRole": {SAGEMAKER},
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
            if "iam:PutRolePolicy" in _actions(statement) and statement["Effect"] == "Allow":
                statement["Condition"].pop("StringEquals")
    findings = analyse(broken)
    assert any(f.kind == "replaces a boundary" for f in findings)


def _reopen_trust_writes(template: dict) -> dict:
    """The template as issue 22 found it: the CloudFormation role (and the boundary) allow
    CreateRole and UpdateAssumeRolePolicy on the workload roles, conditioned on the boundary only."""
    broken = copy.deepcopy(template)
    for name in ("CloudFormationRole", "PermissionsBoundary"):
        for statement in _statements(broken, name):
            actions = _actions(statement)
            if statement["Effect"] == "Deny" and actions:
                statement["Action"] = [a for a in actions if a not in iam_rules.TRUST_WRITES]
            elif "iam:PutRolePolicy" in actions:
                statement["Action"] = [*actions, *iam_rules.TRUST_WRITES]
    return broken


def test_trust_policy_writes_are_found(template):
    """The review's attack: CI deploys a template whose state-machine role (the only writer of
    models/) trusts another account. The boundary cannot stop it; the analysis must name it."""
    details = {f.detail for f in analyse(_reopen_trust_writes(template)) if f.kind == "sets a trust policy"}
    assert "iam:UpdateAssumeRolePolicy on StateMachineRole" in details
    assert any(d.startswith("iam:CreateRole on ") for d in details)


def test_a_service_linked_role_for_another_service_is_found(template):
    broken = copy.deepcopy(template)
    for statement in _statements(broken, "PermissionsBoundary"):
        if statement.get("Sid") == "ScalingServiceLinkedRole":
            statement["Resource"] = {
                "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*"
            }
            statement.pop("Condition")
    for statement in _statements(broken, "CloudFormationRole"):
        if _actions(statement) == ["iam:CreateServiceLinkedRole"]:
            statement["Resource"] = "*"
            statement.pop("Condition")
    details = {f.detail for f in analyse(broken) if f.kind == "sets a trust policy"}
    assert "iam:CreateServiceLinkedRole for ec2.amazonaws.com" in details


STACK_SERVICES = {SAGEMAKER, STATES, LAMBDA, EVENTS, CFN}


def foreign_trust(template: dict) -> list[iam_rules.Finding]:
    stack = iam_rules.Stack(template, settings.STACK_NAME)
    subject = iam_rules.gitlab_subject(settings.GITLAB_PROJECT_PATH, "main")
    return iam_rules.foreign_trust(stack, STACK_SERVICES, subject)


def _trust(template: dict, role: str) -> list[dict]:
    return _role(template, role)["AssumeRolePolicyDocument"]["Statement"]


def _add_principal(principal):
    def mutate(template: dict) -> None:
        _trust(template, "StateMachineRole").append(
            {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
        )

    return mutate


def _gitlab_condition(operator: str, subject: str):
    def mutate(template: dict) -> None:
        (statement,) = _trust(template, "CiRole")
        statement["Condition"] = {
            operator: {"gitlab.com:aud": "sts.amazonaws.com", "gitlab.com:sub": subject}
        }

    return mutate


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_add_principal({"AWS": "arn:aws:iam::999999999999:root"}), id="another-account"),
        pytest.param(_add_principal({"AWS": "*"}), id="any-aws-principal"),
        pytest.param(_add_principal("*"), id="anyone"),
        pytest.param(_add_principal({"Service": "ec2.amazonaws.com"}), id="another-service"),
        pytest.param(
            _add_principal(
                {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}
            ),
            id="another-identity-provider",
        ),
        pytest.param(_gitlab_condition("StringLike", "project_path:*"), id="any-gitlab-project"),
        pytest.param(
            _gitlab_condition(
                "StringEquals", f"project_path:{settings.GITLAB_PROJECT_PATH}:ref_type:branch:ref:feature"
            ),
            id="another-branch",
        ),
    ],
)
def test_a_trust_outside_the_stack_and_the_gitlab_project_is_found(template, mutate):
    assert foreign_trust(template) == []
    broken = copy.deepcopy(template)
    mutate(broken)
    assert [f.kind for f in foreign_trust(broken)] == ["trusts a principal outside the stack"]


def test_bucket_settings_are_found_without_the_deny(template):
    """Without the boundary's deny, a role CloudFormation rewrote to "*" (the boundary allows s3:*
    on the project's buckets) could expire, unversion or publish the data bucket."""
    broken = copy.deepcopy(template)
    _drop(_statements(broken, "PermissionsBoundary"), lambda s: s.get("Sid") == "DenyBucketSettings")
    bucket = f"arn:aws:s3:::{settings.S3_BUCKET}"
    details = {f.detail for f in analyse(broken) if f.kind == "changes a bucket setting"}
    for action in ("s3:PutLifecycleConfiguration", "s3:PutBucketVersioning", "s3:PutBucketPublicAccessBlock",
                   "s3:PutReplicationConfiguration", "s3:PutBucketOwnershipControls", "s3:PutBucketNotification",
                   "s3:PutBucketPolicy"):  # fmt: skip
        assert f"{action} on {bucket}" in details, action


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
        _drop(_statements(broken, name), lambda s: "iam:*OpenIDConnectProvider*" in _actions(s))
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
