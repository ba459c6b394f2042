"""The data bucket's policy as S3 evaluates it (``bucket_policy.evaluate``), on the template's own text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}_deploy import cfn
from {{ cookiecutter.package_name }}_emulator import bucket_policy, principals
from {{ cookiecutter.package_name }}_emulator.control_plane import resolved

ACCOUNT, STACK, BUCKET = "123456789012", "demo", "demo-data"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{STACK}"
MODELS = f"arn:aws:s3:::{BUCKET}/models/abc/model.tar.gz"


@pytest.fixture(scope="module")
def policy(project_root: Path) -> dict[str, Any]:
    template = cfn.load_template(project_root / "infra" / "template.yaml")
    resolver = cfn.Intrinsics(
        template,
        stack_name=STACK,
        resources={"DataBucket": BUCKET},
        parameters={},
        region="eu-west-1",
        account=ACCOUNT,
        client=lambda service: None,
    )
    return dict(resolved(template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"], resolver))


@pytest.mark.parametrize(
    ("principal", "action", "resource", "effect"),
    [
        (f"{ROLE}-state-machine", "s3:PutObject", MODELS, "Deny"),  # without If-None-Match: *
        (f"{ROLE}-training", "s3:PutObject", MODELS, "Deny"),
        (f"{ROLE}-ci", "s3:PutObject", MODELS, "Deny"),
        (f"arn:aws:iam::{ACCOUNT}:root", "s3:PutObject", MODELS, "Deny"),
        (f"{ROLE}-training", "s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/r/model.tar.gz", None),
        (f"{ROLE}-verify-artifact", "s3:DeleteObject", MODELS, None),
        (f"{ROLE}-verify-artifact", "s3:PutObject", MODELS, "Deny"),
        (f"{ROLE}-check-endpoint", "s3:DeleteObjectVersion", MODELS, "Deny"),
        (f"{ROLE}-training", "s3:GetObject", MODELS, None),
        (f"{ROLE}-training", "s3:PostObject", MODELS, "Deny"),  # moto's name for a multipart upload
    ],
)
def test_models_are_written_by_the_state_machine_only(
    policy: dict[str, Any], principal: str, action: str, resource: str, effect: str | None
) -> None:
    assert bucket_policy.evaluate(policy, action, resource, principal, ACCOUNT).effect == effect


def test_only_a_conditional_write_by_the_state_machine_reaches_models(policy: dict[str, Any]) -> None:
    def effect(principal: str) -> str | None:
        return bucket_policy.evaluate(
            policy, "s3:PutObject", MODELS, principal, ACCOUNT, if_none_match="*"
        ).effect

    assert effect(f"{ROLE}-state-machine") is None
    assert effect(f"{ROLE}-training") == "Deny"


def test_plain_http_is_denied_to_everyone(policy: dict[str, Any]) -> None:
    for principal in (f"{ROLE}-state-machine", f"{ROLE}-training"):
        decision = bucket_policy.evaluate(
            policy,
            "s3:GetObject",
            f"arn:aws:s3:::{BUCKET}/data/x",
            principal,
            ACCOUNT,
            secure_transport=False,
        )
        assert decision == bucket_policy.Decision("Deny", "DenyInsecureTransport")


def test_requests_are_attributed_by_their_access_key() -> None:
    principals.register("TESTKEYID00000000001", f"{ROLE}-state-machine")
    signed = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=TESTKEYID00000000001/20260101/eu-west-1/s3/aws4_request, ..."
    }
    assert principals.access_key_of(signed, {}) == "TESTKEYID00000000001"
    presigned = {"X-Amz-Credential": ["TESTKEYID00000000001/20260101/eu-west-1/s3/aws4_request"]}
    assert principals.access_key_of({}, presigned) == "TESTKEYID00000000001"
    assert principals.key_for("arn:aws:iam::1:role/x") == principals.key_for("arn:aws:iam::1:role/x")
    assert len(principals.key_for("arn:aws:iam::1:role/x")) == 20


def test_a_statement_it_cannot_read_is_reported(policy: dict[str, Any]) -> None:
    assert bucket_policy.unsupported_conditions(policy) == set()
    odd = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                          "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}  # fmt: skip
    assert bucket_policy.unsupported_conditions(odd) == {"IpAddress"}
    with pytest.raises(NotImplementedError, match="IpAddress"):
        bucket_policy.evaluate(odd, "s3:GetObject", MODELS, f"{ROLE}-training", ACCOUNT)
