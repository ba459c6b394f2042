"""Is the promoted model the one the gate approved? The state machine asks before CreateModel.

Event ``{"Bucket", "Key", "ExpectedSha256", "VersionId"}``: the copy under ``models/<sha256>/``, the
``candidate_sha256`` that Evaluate recorded for the archive it read, and the version PromoteCandidate
wrote (``null`` when the key existed already: its conditional copy wrote nothing, so the key's
current version is checked) -> ``{"sha256", "bytes", "version_id"}``.

- The key must name the expected digest (``models/<ExpectedSha256>/...``): this function can only
  ever delete a version whose bytes are not what its key says.
- A different digest raises ArtifactMismatch (the task fails, the state machine notifies, no model
  is created) and deletes exactly that version (DeleteObject with its VersionId: no delete marker,
  no other version touched), so ``models/<sha256>/`` only ever holds what its name says.
- The verified version must be the key's current one: SageMaker's CreateModel takes an S3 URI, not
  a version, and downloads the current version whenever an instance starts. The bucket policy keeps
  it current (writes need If-None-Match, only this function deletes), and the state machine records
  ``version_id`` with the model (tag ``model-version-id``) and in its output (issue 22).
- An object of an unversioned bucket has S3's ``null`` version. The template versions the data
  bucket and no role CI reaches may change that; moto's CloudFormation ignores
  VersioningConfiguration, so the offline emulator's bucket is unversioned and its version is ``null``.

Shipped in the same zip as the check-endpoint handler (one Lambda package, two functions).
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

import boto3

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class InvalidEvent(ValueError):
    """The event lacks the bucket, the key or a hex sha256, or the key does not name that sha256."""


class ArtifactMismatch(RuntimeError):
    """The copied artifact is not the one Evaluate gated, or not the version SageMaker would serve."""


def _text(event: dict[str, Any], field: str) -> str:
    value = event.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{field}: expected a non-empty string, got {value!r}")
    return value


def _event(event: Any) -> tuple[str, str, str, str | None]:
    if not isinstance(event, dict):
        raise InvalidEvent(f"expected an object with Bucket, Key, ExpectedSha256, VersionId, got {event!r}")
    bucket, key = _text(event, "Bucket"), _text(event, "Key")
    expected, version = event.get("ExpectedSha256"), event.get("VersionId")
    if not isinstance(expected, str) or not SHA256.match(expected):
        raise InvalidEvent(f"ExpectedSha256: expected 64 lowercase hex characters, got {expected!r}")
    if not key.startswith(f"models/{expected}/"):
        raise InvalidEvent(f"Key: {key!r} is not under models/{expected}/, the digest it is checked against")
    if version is not None and (not isinstance(version, str) or not version):
        raise InvalidEvent(f"VersionId: expected a non-empty string or null, got {version!r}")
    return bucket, key, expected, version


def _version(response: dict[str, Any]) -> str:
    """The response's version id; S3 sends none for the ``null`` version of an unversioned bucket."""
    return str(response.get("VersionId") or "null")


def digest(s3: Any, bucket: str, key: str, version: str | None = None) -> tuple[str, int, str]:
    """SHA-256, size and version id of one version of the object (the current one when ``version``
    is None), streamed: a model archive may not fit in memory."""
    response = s3.get_object(Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))
    read = _version(response)
    sha, size = hashlib.sha256(), 0
    for chunk in iter(lambda: response["Body"].read(CHUNK), b""):
        sha.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), size, read


def verify(s3: Any, bucket: str, key: str, expected: str, version: str | None = None) -> dict[str, Any]:
    actual, size, version = digest(s3, bucket, key, version)
    if actual != expected:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
        raise ArtifactMismatch(
            f"s3://{bucket}/{key} (version {version}) has sha256 {actual}, not {expected}, the candidate "
            "Evaluate gated: the artifact changed after the gate; that version was deleted and no model was created"
        )
    current = _version(s3.head_object(Bucket=bucket, Key=key))
    if current != version:
        raise ArtifactMismatch(
            f"s3://{bucket}/{key}: the verified version {version} is not the current version {current}, "
            "which SageMaker would download; no model was created"
        )
    return {"sha256": actual, "bytes": size, "version_id": version}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    bucket, key, expected, version = _event(event)
    # Created per call (not at import) so moto's mock intercepts it in tests; Lambda sets AWS_REGION.
    s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION"))
    return verify(s3, bucket, key, expected, version)
