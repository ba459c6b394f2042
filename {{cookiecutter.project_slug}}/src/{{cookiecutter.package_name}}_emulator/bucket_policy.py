"""Bucket policies as S3 evaluates them, per principal, in the moto server the emulator runs.

moto 5.2.5 checks a bucket's policy on object requests (``FakeBucket.get_permission``) with neither
the caller nor the condition values: a Deny whose condition moto cannot read (``Bool``,
``ArnNotEquals``...) applies to every request. The project's data bucket policy denies plain-HTTP
requests and any ``models/`` write or delete not made by the state machine (or, for deletes, the
verify-artifact Lambda), so moto would either refuse the pipeline's own promotion or, with the
conditions dropped, let anybody write ``models/``.

``install()`` replaces that check: each object request's signer is mapped to the principal AWS would
see (``principals``) and the policy is evaluated with ``policies`` the way S3 does
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-auth-workflow-object-operation.html):
an explicit Deny wins, then an Allow, else the bucket owner's own access stands. A denied request gets
S3's ``AccessDenied`` error naming the principal, the action and the resource.

Request context offline: ``aws:SecureTransport`` is ``true`` for every request (moto serves plain
HTTP; on AWS the SDKs use TLS), so a TLS-only statement is evaluated but never denies offline; the
principal is as exact as ``principals`` can name it. ``LIMITS`` lists both for the run's output.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from . import policies, principals
from .patches import MOTO_PINS, Patches, private

PATCHES = Patches("bucket-policy", pins=MOTO_PINS)
# moto names object actions after the HTTP method; S3 authorizes them as these actions.
_ACTIONS = {"s3:HeadObject": "s3:GetObject", "s3:PostObject": "s3:PutObject"}
_request = threading.local()  # moto's server handles each request in its own thread

LIMITS = (
    "aws:SecureTransport is true for every offline request (moto serves HTTP, the AWS SDKs use TLS): "
    "a TLS-only bucket statement is evaluated but cannot deny offline",
)


@dataclass(frozen=True)
class Decision:
    """``effect`` is "Deny", "Allow" or None (no statement applies); ``sid`` names the deciding statement."""

    effect: str | None
    sid: str = ""


def evaluate(
    policy: dict[str, Any],
    action: str,
    resource: str,
    principal: str,
    account: str,
    *,
    secure_transport: bool = True,
    if_none_match: str | None = None,
) -> Decision:
    """How S3 decides ``action`` on ``resource`` for ``principal`` under a bucket policy.

    ``if_none_match``: the request's If-None-Match header, S3's ``s3:if-none-match`` condition key
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html).
    """
    context = {
        "aws:SecureTransport": str(secure_transport).lower(),
        "aws:PrincipalArn": principal,
        "aws:PrincipalAccount": account,
    }
    if if_none_match is not None:
        context["s3:if-none-match"] = if_none_match
    action = _ACTIONS.get(action, action)
    allowed = None
    for raw in _statements(policy):
        if "NotPrincipal" in raw:
            raise NotImplementedError("NotPrincipal in a bucket policy")
        if not policies.principal_matches(raw.get("Principal"), principal, account):
            continue
        body = {k: v for k, v in raw.items() if k != "Principal"}
        if not policies.Statement.parse(body).matches(action, resource, context):
            continue
        if raw["Effect"] == "Deny":
            return Decision("Deny", raw.get("Sid", ""))
        allowed = allowed or Decision("Allow", raw.get("Sid", ""))
    return allowed or Decision(None)


def denial_message(principal: str, action: str, resource: str) -> str:
    # S3's wording for an explicit deny in a bucket policy (same-account request).
    return (
        f"User: {principal} is not authorized to perform: {_ACTIONS.get(action, action)} "
        f'on resource: "{resource}" with an explicit deny in a resource-based policy'
    )


def install() -> None:
    """Evaluate bucket policies per principal in this process's moto (undo with ``uninstall``)."""
    response_class = private("moto.s3.responses", "S3Response")
    bucket_class = private("moto.s3.models", "FakeBucket")
    result = private("moto.iam.access_control", "PermissionResult")
    key_response, bucket_response = response_class.key_response, response_class.bucket_response

    def get_permission(bucket: Any, action: str, resource: str) -> Any:
        if bucket.policy is None:
            return result.NEUTRAL
        principal = principals.principal_of(getattr(_request, "access_key", None), bucket.account_id)
        try:
            decision = evaluate(
                json.loads(bucket.policy),
                action,
                resource,
                principal,
                bucket.account_id,
                if_none_match=getattr(_request, "if_none_match", None),
            )
        except NotImplementedError as error:  # listed in the run's limits; denying is the safe side
            _request.denial = f"the emulator cannot evaluate the bucket policy of {bucket.name} ({error})"
            return result.DENIED
        if decision.effect == "Deny":
            _request.denial = denial_message(principal, action, resource)
            return result.DENIED
        return result.PERMITTED if decision.effect == "Allow" else result.NEUTRAL

    def keyed(self: Any, request: Any, full_url: str, headers: Any) -> Any:
        _remember(request, full_url)
        try:
            status, response_headers, body = key_response(self, request, full_url, headers)
            denial = getattr(_request, "denial", None)
            if status == 403 and not body and denial:  # moto answers a policy deny with an empty 403
                return 403, {**response_headers, "Content-Type": "application/xml"}, _access_denied(denial)
            return status, response_headers, body
        finally:
            _forget()

    def bucketed(self: Any, request: Any, full_url: str, headers: Any) -> Any:
        _remember(request, full_url)  # DeleteObjects checks each key's s3:DeleteObject
        try:
            return bucket_response(self, request, full_url, headers)
        finally:
            _forget()

    PATCHES.replace(bucket_class, "get_permission", get_permission)
    PATCHES.replace(response_class, "key_response", keyed)
    PATCHES.replace(response_class, "bucket_response", bucketed)


def uninstall() -> None:
    PATCHES.undo()


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy.get("Statement") or []
    return statements if isinstance(statements, list) else [statements]


def unsupported_conditions(policy: dict[str, Any]) -> set[str]:
    return policies.unsupported_operators(_statements(policy))


def _remember(request: Any, full_url: str) -> None:
    query = parse_qs(urlsplit(full_url).query)
    _request.access_key = principals.access_key_of(request.headers, query)
    _request.if_none_match = request.headers.get("If-None-Match")
    _request.denial = None


def _forget() -> None:
    _request.access_key = _request.denial = _request.if_none_match = None


def _access_denied(message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>AccessDenied</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
