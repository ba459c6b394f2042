"""Is the promoted model the one the gate approved? The state machine asks before CreateModel.

Event ``{"Bucket", "Key", "ExpectedSha256", "ExpectedFilesSha256", "VersionId"}``: the copy under
``models/<sha256>/``, the ``candidate_sha256`` and ``model_files_sha256`` that Evaluate recorded for
the archive it read and the files it scored, and the version PromoteCandidate wrote (``null`` when
the key existed already: its conditional copy wrote nothing, so the key's current version is
checked) -> ``{"sha256", "bytes", "version_id", "model_files_sha256"}``.

- The key must name the expected digest (``models/<ExpectedSha256>/...``): this function can only
  ever delete a version whose bytes are not what its key says.
- A different digest raises ArtifactMismatch (the task fails, the state machine notifies, no model
  is created) and deletes exactly that version (DeleteObject with its VersionId: no delete marker,
  no other version touched), so ``models/<sha256>/`` only ever holds what its name says.
- The verified version must be the key's current one: SageMaker's CreateModel takes an S3 URI, not
  a version, and downloads the current version whenever an instance starts. The bucket policy keeps
  it current (writes need If-None-Match, only this function deletes), and the state machine records
  ``version_id`` with the model (tag ``model-version-id``) and in its output (issue 22).
- The files the archive unpacks to must have the manifest digest ``ExpectedFilesSha256`` (the
  format of ``<package>.model_digest``: SHA-256 over the sorted ``path\\0sha256\\n`` lines). The
  serving launcher checks the same digest (CreateModel's ``MODEL_FILES_SHA256``) over /opt/ml/model
  and refuses to start on a difference; checking it here too fails the run before any model exists,
  with ModelFilesMismatch naming both digests, when the decision does not describe the archive (a
  decision forged or written by a broken evaluate, issue 22). The copy is not deleted: its bytes are
  what its key says. The archive is read a second time for this, and only once its digest matched:
  the tar parser only ever sees bytes Evaluate already extracted under its size and member caps.
  A symbolic link or special file in it is refused, as the serving launcher refuses it.
- An object of an unversioned bucket has S3's ``null`` version. The template versions the data
  bucket and no role CI reaches may change that; moto's CloudFormation ignores
  VersioningConfiguration, so the offline emulator's bucket is unversioned and its version is ``null``.

Shipped in the same zip as the check-endpoint handler (one Lambda package, two functions).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tarfile
from typing import IO, Any

import boto3

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class InvalidEvent(ValueError):
    """The event lacks the bucket, the key or a hex sha256, or the key does not name that sha256."""


class ArtifactMismatch(RuntimeError):
    """The copied artifact is not the one Evaluate gated, or not the version SageMaker would serve."""


class ModelFilesMismatch(RuntimeError):
    """The gated archive does not unpack to the files whose manifest digest the decision records."""


def _text(event: dict[str, Any], field: str) -> str:
    value = event.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{field}: expected a non-empty string, got {value!r}")
    return value


def _digest_field(event: dict[str, Any], field: str) -> str:
    value = event.get(field)
    if not isinstance(value, str) or not SHA256.match(value):
        raise InvalidEvent(f"{field}: expected 64 lowercase hex characters, got {value!r}")
    return value


def _event(event: Any) -> tuple[str, str, str, str, str | None]:
    if not isinstance(event, dict):
        raise InvalidEvent(
            f"expected an object with Bucket, Key, ExpectedSha256, ExpectedFilesSha256, VersionId, got {event!r}"
        )
    bucket, key = _text(event, "Bucket"), _text(event, "Key")
    expected = _digest_field(event, "ExpectedSha256")
    expected_files = _digest_field(event, "ExpectedFilesSha256")
    version = event.get("VersionId")
    if not key.startswith(f"models/{expected}/"):
        raise InvalidEvent(f"Key: {key!r} is not under models/{expected}/, the digest it is checked against")
    if version is not None and (not isinstance(version, str) or not version):
        raise InvalidEvent(f"VersionId: expected a non-empty string or null, got {version!r}")
    return bucket, key, expected, expected_files, version


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


def _member_path(name: str) -> str:
    """The relative path a member extracts to (tarfile's ``data`` filter strips leading slashes):
    the path the serving launcher finds it under in /opt/ml/model."""
    return posixpath.normpath(name.lstrip("/"))


def _member_sha256(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file member always has data
    sha = hashlib.sha256()
    for chunk in iter(lambda: handle.read(CHUNK), b""):
        sha.update(chunk)
    return sha.hexdigest()


def archive_files(stream: IO[bytes], where: str) -> dict[str, str]:
    """Path -> SHA-256 of every regular file the archive extracts to, read as a stream (plain or
    gzip tar). A later member of the same path replaces an earlier one and a hard link has its
    target's bytes, as on extraction; a symbolic link or special file is refused."""
    files: dict[str, str] = {}
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            path = _member_path(member.name)
            if member.isdir():
                continue
            if member.isfile():
                files[path] = _member_sha256(tar, member)
            elif member.islnk() and _member_path(member.linkname) in files:
                files[path] = files[_member_path(member.linkname)]
            else:
                raise ModelFilesMismatch(
                    f"{where}: member {member.name!r} is a link or special file; "
                    "a model folder holds regular files only, and serving refuses anything else"
                )
    return files


def manifest_sha256(files: dict[str, str]) -> str:
    """SHA-256 over the sorted ``path\\0sha256\\n`` lines (``<package>.model_digest``'s format)."""
    sha = hashlib.sha256()
    for path in sorted(files):
        sha.update(f"{path}\0{files[path]}\n".encode("utf-8", "surrogateescape"))
    return sha.hexdigest()


def files_manifest(s3: Any, bucket: str, key: str, version: str) -> str:
    """The manifest digest of the files one version of the archive unpacks to."""
    where = f"s3://{bucket}/{key} (version {version})"
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"]
    try:
        return manifest_sha256(archive_files(body, where))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ModelFilesMismatch(f"{where}: not a readable tar archive ({error})") from None


def verify(
    s3: Any, bucket: str, key: str, expected: str, expected_files: str, version: str | None = None
) -> dict[str, Any]:
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
    files = files_manifest(s3, bucket, key, version)
    if files != expected_files:
        raise ModelFilesMismatch(
            f"s3://{bucket}/{key} (version {version}) unpacks to files whose manifest sha256 is {files}, "
            f"not {expected_files}, the model_files_sha256 in Evaluate's decision: the decision does not "
            "describe the gated archive; no model was created"
        )
    return {"sha256": actual, "bytes": size, "version_id": version, "model_files_sha256": files}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    bucket, key, expected, expected_files, version = _event(event)
    # Created per call (not at import) so moto's mock intercepts it in tests; Lambda sets AWS_REGION.
    s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION"))
    return verify(s3, bucket, key, expected, expected_files, version)
