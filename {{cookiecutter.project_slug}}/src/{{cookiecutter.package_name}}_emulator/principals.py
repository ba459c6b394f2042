"""Who signed a request offline: the principal AWS would see, for each caller the emulator runs.

Resource policies that name principals (the data bucket's ``models/`` statements) and the stack
roles' identity policies (``identity_policies``) have to tell the state machine from everybody else. Each
caller signs with an access key id; ``principal_of`` maps it to the ARN AWS would put in
``aws:PrincipalArn``:

- moto's ASL interpreter signs every task integration with the key ``ak``
  (``moto.stepfunctions.parser.asl.utils.boto_client``): the deployed stack's state machine role,
  registered by the control plane;
- each Lambda function signs with a key of its execution role (``key_for_function``, used by
  ``lambda_runner``);
- keys moto issued (IAM users, ``sts:AssumeRole`` sessions): that user or role;
- training and processing jobs sign with a key of their execution role (``key_for``, used by the
  runtimes), as SageMaker moves a job's data as that role;
- everything else (the emulator itself, endpoints, tests, the AWS CLI with dummy keys): one
  principal, ``unattributed(account)``, which is none of the stack's roles.
  ``identity_policies`` enforces the stack roles' identity policies; ``LIMITS`` says what is not checked.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from typing import Any

from .patches import private

INTERPRETER_KEY = "ak"  # moto's ASL interpreter: boto_client_for(...) signs with this key id
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_lock = threading.Lock()
_registered: dict[str, str] = {}  # access key id -> principal ARN

LIMITS = (
    "identity policies and permissions boundaries of the stack's roles are enforced on what the state "
    "machine, the Lambdas and the jobs sign (identity_policies); not checked: the emulator itself, "
    "tests and endpoints (one principal, {unattributed}), SCPs, session policies, resource policies "
    "other than the bucket's; a refusal names the role ARN where AWS names the assumed-role session"
)


def register(access_key: str, principal_arn: str) -> None:
    with _lock:
        _registered[access_key] = principal_arn


def reset() -> None:
    with _lock:
        _registered.clear()


def key_for(principal_arn: str) -> str:
    """A stable 20-character access key id standing for ``principal_arn`` (registered)."""
    key = "AKIA" + hashlib.sha256(principal_arn.encode()).hexdigest()[:16].upper()
    register(key, principal_arn)
    return key


def key_for_function(function_name: str, region: str, account: str) -> str | None:
    """The key a Lambda function's code signs with: its execution role's (None: function unknown)."""
    backends = private("moto.awslambda.models", "lambda_backends")
    try:
        role = backends[account][region].get_function(function_name).role
    except Exception:  # not a function moto knows: the caller keeps its default key
        return None
    return key_for(role) if role else None


def unattributed(account: str) -> str:
    return f"arn:aws:iam::{account}:user/local-emulator"


def access_key_of(headers: Mapping[str, str], query: Mapping[str, Any]) -> str | None:
    """The access key id of a SigV4 request: Authorization header or presigned ``X-Amz-Credential``."""
    match = _CREDENTIAL.search(headers.get("Authorization") or headers.get("authorization") or "")
    if match:
        return match.group(1)
    credential = query.get("X-Amz-Credential")
    if isinstance(credential, list):
        credential = credential[0] if credential else None
    return credential.split("/", 1)[0] if credential else None


def principal_of(access_key: str | None, account: str) -> str:
    """``aws:PrincipalArn`` of a request signed with ``access_key`` in ``account``."""
    if access_key:
        with _lock:
            known = _registered.get(access_key)
        if known:
            return known
        issued = _moto_issued(access_key, account)
        if issued:
            return issued
    return unattributed(account)


def _moto_issued(access_key: str, account: str) -> str | None:
    """An IAM user's key or an assumed role's session key that moto issued."""
    iam_backends = private("moto.iam.models", "iam_backends")
    backend = iam_backends[account]["aws"]
    key = backend.access_keys.get(access_key)
    if key is None:
        return None
    if key.role_arn:  # aws:PrincipalArn of a role session is the role's ARN
        return str(key.role_arn)
    return f"arn:aws:iam::{account}:user/{key.user_name}" if key.user_name else None
