"""The artifacts bucket (TLS only, versioned, owner-checked) and the content-addressed uploads: Lambda zip, ASL."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .clients import DeployError
from .definition import render_model_tokens

LAMBDA_DIR = Path("lambdas/check_endpoint")


ASL_FILE = Path("pipeline/state_machine.asl.json")


def package_lambda(project_root: Path) -> bytes:
    """The check-endpoint Lambda as a zip, byte-identical for identical sources (stable hash key)."""
    source = Path(project_root) / LAMBDA_DIR
    files = sorted(p for p in source.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise DeployError(f"no Python files in {source}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            # Fixed timestamp and mode: the zip's hash changes only when the code does.
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def content_key(prefix: str, stem: str, data: bytes, suffix: str) -> str:
    """``prefix/stem-<sha256>suffix``: a new key per content, so CloudFormation sees every change."""
    return f"{prefix}/{stem}-{hashlib.sha256(data).hexdigest()}{suffix}"


def owner_args(expected_owner: str | None) -> dict[str, str]:
    return {"ExpectedBucketOwner": expected_owner} if expected_owner else {}


def tls_only_policy(bucket: str) -> dict[str, Any]:
    """Deny every request that does not use TLS, as the stack's own buckets do (AWS's
    "Enforce encryption of data in transit" S3 example, condition aws:SecureTransport)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def ensure_artifact_bucket(
    s3: Any, bucket: str, region: str | None, expected_owner: str | None = None
) -> None:
    """Create the artifacts bucket (TLS-only policy, encrypted, versioned, public access blocked)
    unless it exists, and refuse one owned by another account (a squatted name): every call passes
    ``ExpectedBucketOwner``, which S3 answers with 403 for someone else's bucket (issue 15)."""
    owner = owner_args(expected_owner)
    try:
        s3.head_bucket(Bucket=bucket, **owner)
        return
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in {"403", "AccessDenied", "Forbidden"}:
            raise DeployError(
                f"artifacts bucket {bucket} exists but is not owned by account {expected_owner or '?'}: "
                "choose another name with --artifact-bucket"
            ) from error
        if code not in {"404", "NoSuchBucket", "NotFound"}:
            raise DeployError(f"artifacts bucket {bucket} is not usable: {error}") from error
    kwargs: dict[str, Any] = {"Bucket": bucket}
    # us-east-1 is the one region that refuses an explicit LocationConstraint.
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)  # CreateBucket has no ExpectedBucketOwner: the calls below check it
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
        **owner,
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
        **owner,
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}, **owner)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only_policy(bucket)), **owner)


def upload_artifacts(
    s3: Any, bucket: str, project_root: Path, expected_owner: str | None = None
) -> dict[str, str]:
    """Upload the Lambda zip and the ASL file under content-hash keys; returns the stack parameters."""
    root = Path(project_root)
    code = package_lambda(root)
    # The model spec's tokens (tuning ranges, metric definitions, the Init state's checks) are
    # filled here from model.py; CloudFormation fills the rest (definition.render_model_tokens).
    definition = render_model_tokens((root / ASL_FILE).read_text()).encode()
    keys = {
        "LambdaCodeKey": content_key("lambda", "check_endpoint", code, ".zip"),
        "DefinitionKey": content_key("pipeline", "state_machine", definition, ".asl.json"),
    }
    for key, body in ((keys["LambdaCodeKey"], code), (keys["DefinitionKey"], definition)):
        s3.put_object(Bucket=bucket, Key=key, Body=body, **owner_args(expected_owner))
    return keys
