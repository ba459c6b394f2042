"""IAM identity policies of the stack's roles, enforced on every request those roles sign offline.

After the stack is deployed, ``enforce(role_arns)`` turns this on for the stack's roles. Each request
to the moto server is attributed (``principals``); one signed as an enforced role is mapped to the
authorizations AWS makes (``iam_actions``) and decided as IAM does for a role in its own account
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html): an
explicit Deny in an identity policy or the permissions boundary wins; else an identity policy must
Allow and, when the role has a boundary, the boundary must Allow too. The policies are read from
moto's IAM backend at each request (inline and attached managed ones, the boundary), so they are the
deployed ones, patched or not. A refusal is the service's own error with IAM's wording
(https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).

``EXEMPT`` lists the callers that are not checked. An operation of an enforced role that
``iam_actions`` does not map is refused ("not mapped offline") and kept in ``LEDGER.unmapped``.
``LEDGER`` records which statements allowed each request (``least_privilege`` reports it).
"""

from __future__ import annotations

import ast
import json
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import iam_actions, policies, principals
from .iam_actions import Call, Check
from .patches import MOTO_PINS, Patches, private

PATCHES = Patches("identity-policies", pins=MOTO_PINS)
EXEMPT = (
    "callers that are none of the stack's roles: the emulator itself, tests, the AWS CLI with dummy "
    "keys and endpoints (one principal, {unattributed}), and moto-issued keys of other principals",
    "the moto server's own API (/moto-api/) and services the stack's roles do not sign offline "
    "(CloudFormation, IAM and STS calls come from the deploy CLI and the emulator)",
)


@dataclass(frozen=True)
class StatementRef:
    """One statement of a role's policy: ``role/policy#index`` (plus its Sid when it has one)."""

    role: str
    policy: str
    index: int
    sid: str = ""

    def __str__(self) -> str:
        return f"{self.role}/{self.policy}#{self.index}" + (f" ({self.sid})" if self.sid else "")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    allowers: tuple[StatementRef, ...] = ()
    reason: str = ""  # IAM's "because ..." / "with an explicit deny in ..." ending when refused


@dataclass
class Ledger:
    """Which statements allowed each authorized request, per principal (thread-safe)."""

    allowed: Counter[tuple[str, str, str, tuple[StatementRef, ...]]] = field(default_factory=Counter)
    denied: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    unmapped: Counter[tuple[str, str]] = field(default_factory=Counter)
    # role ARN -> each statement of its identity policies and its effect
    statements: dict[str, list[tuple[StatementRef, str]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        with self._lock:
            self.allowed.clear()
            self.denied.clear()
            self.unmapped.clear()
            self.statements.clear()


LEDGER = Ledger()
_enforced: set[str] = set()  # role ARNs


def enforce(role_arns: Iterable[str]) -> None:
    """Enforce the identity policies of ``role_arns`` from now on (``patches.install`` this module first)."""
    _enforced.clear()
    _enforced.update(role_arns)
    LEDGER.reset()


def enforced() -> set[str]:
    return set(_enforced)


# -- policies as deployed ---------------------------------------------------------------------
def document(text: Any) -> dict[str, Any]:
    """A policy document as IAM returns it (URL-encoded JSON, or a dict) or as moto 5.2.5's
    CloudFormation stores an inline one (a Python repr)."""
    if not isinstance(text, str):
        return dict(text)
    text = unquote(text)
    try:
        return dict(json.loads(text))
    except json.JSONDecodeError:
        return dict(ast.literal_eval(text))


@lru_cache(maxsize=256)
def _parsed(text: str) -> tuple[tuple[dict[str, Any], policies.Statement], ...]:
    statements = document(text).get("Statement") or []
    statements = statements if isinstance(statements, list) else [statements]
    return tuple((raw, policies.Statement.parse(raw)) for raw in statements)


PolicySet = list[tuple[str, str]]  # (policy name, document text)


def role_policies(role_arn: str, account: str) -> tuple[PolicySet, PolicySet | None]:
    """The role's identity policies (inline, then attached managed) and its boundary (None: none),
    read from moto's IAM backend as they are now."""
    backend = private("moto.iam.models", "iam_backends")[account]["aws"]
    role = backend.get_role_by_arn(role_arn)
    identity = [(name, str(text)) for name, text in role.policies.items()]
    identity += [(p.name, _default_version(p)) for p in role.managed_policies.values()]
    boundary_arn = role.permissions_boundary_arn
    boundary = None
    if boundary_arn:
        boundary = [(boundary_arn.rsplit("/", 1)[-1], _default_version(backend.get_policy(boundary_arn)))]
    return identity, boundary


def _default_version(policy: Any) -> str:
    document_ = next(v.document for v in policy.versions if v.is_default)
    return document_ if isinstance(document_, str) else json.dumps(document_)


def decide(role: str, identity: PolicySet, boundary: PolicySet | None, check: Check) -> Decision:
    """IAM's decision for one ``check`` of a role in its own account (no resource policy counted)."""
    context = {**check.context, "aws:PrincipalArn": role, "aws:SecureTransport": "true"}
    role_name = role.rsplit("/", 1)[-1]
    allowers, action = [], check.action
    for name, text in identity:
        for index, (raw, statement) in enumerate(_parsed(text)):
            if statement.matches(action, check.resource, context):
                if statement.effect == "Deny":
                    return Decision(False, reason="with an explicit deny in an identity-based policy")
                allowers.append(StatementRef(role_name, name, index, raw.get("Sid", "")))
    bounded = None
    if boundary is not None:
        for _, text in boundary:
            for _, statement in _parsed(text):
                if statement.matches(action, check.resource, context):
                    if statement.effect == "Deny":
                        return Decision(False, reason="with an explicit deny in a permissions boundary")
                    bounded = True
    if not allowers:
        return Decision(False, reason=f"because no identity-based policy allows the {action} action")
    if boundary is not None and not bounded:
        return Decision(False, reason=f"because no permissions boundary allows the {action} action")
    return Decision(True, tuple(allowers))


def denial_message(principal: str, check: Check, reason: str) -> str:
    return f"User: {principal} is not authorized to perform: {check.action} on resource: {check.resource} {reason}"


def statements_of(role: str, identity: PolicySet) -> list[tuple[StatementRef, str]]:
    name = role.rsplit("/", 1)[-1]
    return [
        (StatementRef(name, policy, index, raw.get("Sid", "")), raw["Effect"])
        for policy, text in identity
        for index, (raw, _) in enumerate(_parsed(text))
    ]


# -- the hook in the moto server --------------------------------------------------------------
def _service_of(response: Any) -> str:
    """The signing service of the request's credential scope (``.../<region>/<service>/aws4_request``)."""
    authorization = response.headers.get("Authorization") or ""
    scope = authorization.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    if len(scope) >= 5:
        return scope[3]
    credential = (response.querystring.get("X-Amz-Credential") or [""])[0]
    parts = credential.split("/")
    return parts[3] if len(parts) >= 5 else str(getattr(response, "service_name", ""))


def _call(response: Any, service: str) -> Call:
    body = "" if service == "s3" else response.body  # S3 is mapped from method, path and headers
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    # moto's S3 querystring also carries headers and its own "Action": read the URL's query.
    query = parse_qs(urlsplit(response.uri).query, keep_blank_values=True)
    return Call(
        region=response.region,
        account=response.current_account,
        method=response.method,
        path=response.path,
        query=query if service == "s3" else response.querystring,
        headers=response.headers,
        body=body or "",
    )


def authorize(response: Any) -> None:
    """Raise the service's AccessDenied error when the request's signer may not make it."""
    if not _enforced or response.path.startswith("/moto-api"):
        return
    account = response.current_account
    key = principals.access_key_of(response.headers, response.querystring)
    principal = principals.principal_of(key, account)
    if principal not in _enforced:
        return
    service = _service_of(response)
    operation = "" if service == "s3" else response._get_action()
    found = iam_actions.checks(service, operation, _call(response, service))
    if found is None:
        with LEDGER._lock:
            LEDGER.unmapped[
                (principal, f"{service}:{operation or response.method + ' ' + response.path}")
            ] += 1
        _refuse(
            service,
            f"User: {principal} is not authorized to perform: {service}:{operation} (not mapped "
            f"offline: {__name__.rsplit('.', 1)[0]}.iam_actions has no rule for it, so it is refused)",
        )
    identity, boundary = role_policies(principal, account)
    for check in found:
        decision = decide(principal, identity, boundary, check)
        with LEDGER._lock:
            LEDGER.statements[principal] = statements_of(principal, identity)  # as deployed now
            if decision.allowed:
                LEDGER.allowed[(principal, check.action, check.resource, decision.allowers)] += 1
            else:
                LEDGER.denied[(principal, check.action, check.resource)] += 1
        if not decision.allowed:
            _refuse(service, denial_message(principal, check, decision.reason))


def _refuse(service: str, message: str) -> None:
    if service == "s3":
        error = private("moto.s3.exceptions", "S3ClientError")("AccessDenied", message)
        error.http_status_code = 403  # S3's AccessDenied is a 403
        raise error
    if service == "sns":  # SNS (query protocol) answers AuthorizationError, HTTP 403
        raise private("moto.core.exceptions", "RESTError")("AuthorizationError", message, code=403)
    error_class = private("moto.core.exceptions", "JsonRESTError")
    status = 403 if service == "lambda" else 400  # Lambda's AccessDeniedException is a 403
    raise error_class("AccessDeniedException", message, code=status)


def install() -> None:
    mixin = private("moto.core.authorization", "ActionAuthenticatorMixin")
    original = mixin._authenticate_and_authorize_action

    def checked(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        authorize(self)
        original(self, iam_request_cls, resource)  # moto's own IAM mode, off unless configured

    PATCHES.replace(mixin, "_authenticate_and_authorize_action", checked)


def uninstall() -> None:
    PATCHES.undo()
    _enforced.clear()
