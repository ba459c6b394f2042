"""Is the promoted model the one the gate approved? The state machine asks before CreateModel.

Event ``{"Bucket", "Key", "ExpectedSha256"}`` (the copy under ``models/<sha256>/`` and the
``candidate_sha256`` that Evaluate recorded for the archive it read) -> ``{"sha256", "bytes"}``.
A different digest raises ArtifactMismatch (the task fails, the state machine notifies, no model
is created) and deletes the copy, so ``models/<sha256>/`` only ever holds what its name says.
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
    """The event lacks the bucket, the key or a hex sha256."""


class ArtifactMismatch(RuntimeError):
    """The copied artifact is not the one Evaluate gated."""


def _event(event: Any) -> tuple[str, str, str]:
    if not isinstance(event, dict):
        raise InvalidEvent(f"expected an object with Bucket, Key, ExpectedSha256, got {event!r}")
    bucket, key, expected = event.get("Bucket"), event.get("Key"), event.get("ExpectedSha256")
    for field, value in (("Bucket", bucket), ("Key", key)):
        if not isinstance(value, str) or not value:
            raise InvalidEvent(f"{field}: expected a non-empty string, got {value!r}")
    if not isinstance(expected, str) or not SHA256.match(expected):
        raise InvalidEvent(f"ExpectedSha256: expected 64 lowercase hex characters, got {expected!r}")
    return bucket, key, expected


def digest(s3: Any, bucket: str, key: str) -> tuple[str, int]:
    """SHA-256 and size of the object, streamed (a model archive may not fit in memory)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    sha, size = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(CHUNK), b""):
        sha.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), size


def verify(s3: Any, bucket: str, key: str, expected: str) -> dict[str, Any]:
    actual, size = digest(s3, bucket, key)
    if actual != expected:
        s3.delete_object(Bucket=bucket, Key=key)
        raise ArtifactMismatch(
            f"s3://{bucket}/{key} has sha256 {actual}, not {expected}, the candidate Evaluate gated: "
            "the artifact changed after the gate; the copy was deleted and no model was created"
        )
    return {"sha256": actual, "bytes": size}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    bucket, key, expected = _event(event)
    # Created per call (not at import) so moto's mock intercepts it in tests; Lambda sets AWS_REGION.
    s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION"))
    return verify(s3, bucket, key, expected)
