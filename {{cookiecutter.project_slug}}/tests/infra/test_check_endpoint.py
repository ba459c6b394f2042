"""The check-endpoint Lambda against moto's SageMaker."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.check_endpoint import handler as check_endpoint

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
MODEL_DATA = "s3://bucket/runs/exec-1/training/train-abc/output/model.tar.gz"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_REGION", REGION)
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def deploy(sagemaker, endpoint="prod-endpoint", model="model-1", config="config-1", data=MODEL_DATA):
    sagemaker.create_model(
        ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img:1", "ModelDataUrl": data}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)


def test_no_endpoint_means_no_production_model(aws):
    assert check_endpoint.handler({"EndpointName": "prod-endpoint"}, None) == {
        "exists": False,
        "status": None,
        "endpoint_config_name": None,
        "model_name": None,
        "model_data_url": "none",
    }


def test_existing_endpoint_leads_to_the_model_artifact(aws):
    deploy(aws, model="model-old", config="config-old", data="s3://bucket/old.tar.gz")
    deploy(
        aws,
        endpoint="other-endpoint",
        model="model-other",
        config="config-other",
        data="s3://bucket/other.tar.gz",
    )
    assert check_endpoint.handler({"EndpointName": "prod-endpoint"}, None) == {
        "exists": True,
        "status": "InService",
        "endpoint_config_name": "config-old",
        "model_name": "model-old",
        "model_data_url": "s3://bucket/old.tar.gz",
    }


def test_region_comes_from_aws_region(aws, monkeypatch):
    deploy(aws)
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    # The same name in another region does not exist: the client followed AWS_REGION.
    assert check_endpoint.handler({"EndpointName": "prod-endpoint"}, None)["exists"] is False


def test_other_errors_are_raised_not_swallowed():
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_endpoint", service_error_code="AccessDeniedException", http_status_code=400
        )
        with pytest.raises(ClientError, match="AccessDeniedException"):
            check_endpoint.find_production(client, "prod-endpoint")
    with Stubber(client) as stub:
        # A ValidationException about something else is not "no endpoint" either.
        stub.add_client_error(
            "describe_endpoint",
            service_error_code="ValidationException",
            service_message="1 validation error",
        )
        with pytest.raises(ClientError, match="1 validation error"):
            check_endpoint.find_production(client, "prod-endpoint")


@pytest.mark.parametrize("event", [{}, {"EndpointName": ""}, {"EndpointName": 3}, ["prod-endpoint"]])
def test_invalid_event_is_refused_with_the_reason(event):
    with pytest.raises(check_endpoint.InvalidEvent, match="EndpointName"):
        check_endpoint.handler(event, None)


# -- verify_artifact: the promoted copy against the gated sha256 ------------------------------
def _bucket(versioned: bool = True):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": REGION})
    if versioned:
        s3.put_bucket_versioning(Bucket="data", VersioningConfiguration={"Status": "Enabled"})
    return s3


def _sha(body: bytes) -> str:
    import hashlib

    return hashlib.sha256(body).hexdigest()


def _key(sha: str) -> str:
    return f"models/{sha}/model.tar.gz"


def _versions(s3) -> tuple[list[str], list[str]]:
    listing = s3.list_object_versions(Bucket="data", Prefix="models/")
    return [v["VersionId"] for v in listing.get("Versions", [])], listing.get("DeleteMarkers", [])


MODEL_FILES = {"metadata.json": b'{"n": 1}', "model.onnx": b"onnx bytes" * 1000, "sub/profile.json": b"{}"}


def _model_archive(folder: Path, files: dict[str, bytes] = MODEL_FILES) -> tuple[bytes, str]:
    """model.tar.gz of ``files`` as training writes it (``tarballs.create``), and the manifest
    digest the runtime computes over the folder: what Evaluate records and serving checks."""
    from {{ cookiecutter.package_name }} import model_digest, tarballs

    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    archive = tarballs.create(folder, folder.parent / f"{folder.name}.tar.gz")
    return archive.read_bytes(), model_digest.folder_manifest(folder)[1]


def _event(sha: str, files_sha: str, version: str | None) -> dict:
    return {
        "Bucket": "data",
        "Key": _key(sha),
        "ExpectedSha256": sha,
        "ExpectedFilesSha256": files_sha,
        "VersionId": version,
    }


def test_verify_artifact_accepts_the_gated_archive_and_names_its_version(aws, tmp_path: Path):
    from lambdas.check_endpoint import verify_artifact

    body, files_sha = _model_archive(tmp_path / "model")
    s3, sha = _bucket(), _sha(body)
    version = s3.put_object(Bucket="data", Key=_key(sha), Body=body)["VersionId"]
    event = _event(sha, files_sha, version)
    assert verify_artifact.handler(event, None) == {
        "sha256": sha,
        "bytes": len(body),
        "version_id": version,
        "model_files_sha256": files_sha,  # the runtime's manifest of the folder, from the archive alone
    }
    # The key existed before the promotion (its conditional copy wrote nothing): the current version.
    event["VersionId"] = None
    assert verify_artifact.handler(event, None)["version_id"] == version


def test_verify_artifact_refuses_files_the_decision_does_not_describe(aws, tmp_path: Path):
    """The archive is the gated one, but the decision's model_files_sha256 is another folder's (a
    forged decision): no model, and the copy stays (its bytes are what its key says)."""
    from lambdas.check_endpoint import verify_artifact

    body, _ = _model_archive(tmp_path / "model")
    _, other = _model_archive(tmp_path / "other", {**MODEL_FILES, "model.onnx": b"other bytes"})
    s3, sha = _bucket(), _sha(body)
    version = s3.put_object(Bucket="data", Key=_key(sha), Body=body)["VersionId"]
    with pytest.raises(verify_artifact.ModelFilesMismatch) as refused:
        verify_artifact.handler(_event(sha, other, version), None)
    assert str(refused.value).startswith(
        f"s3://data/{_key(sha)} (version {version}) unpacks to files whose manifest sha256 is "
    )
    assert f"not {other}, the model_files_sha256 in Evaluate's decision" in str(refused.value)
    assert _versions(s3) == ([version], [])


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.FIFOTYPE])
def test_verify_artifact_refuses_a_link_or_special_member(aws, kind):
    from lambdas.check_endpoint import verify_artifact

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        member = tarfile.TarInfo("model.skops")
        member.type, member.linkname = kind, "/etc/passwd"
        tar.addfile(member)
    body = buffer.getvalue()
    s3, sha = _bucket(), _sha(body)
    version = s3.put_object(Bucket="data", Key=_key(sha), Body=body)["VersionId"]
    with pytest.raises(verify_artifact.ModelFilesMismatch, match=r"'model\.skops' is a link or special file"):
        verify_artifact.handler(_event(sha, "0" * 64, version), None)


def test_verify_artifact_refuses_an_archive_that_is_not_a_tar(aws):
    from lambdas.check_endpoint import verify_artifact

    body = b"model archive" * 1000
    s3, sha = _bucket(), _sha(body)
    version = s3.put_object(Bucket="data", Key=_key(sha), Body=body)["VersionId"]
    with pytest.raises(verify_artifact.ModelFilesMismatch, match="not a readable tar archive"):
        verify_artifact.handler(_event(sha, "0" * 64, version), None)


def test_verify_artifact_deletes_exactly_the_swapped_version(aws):
    """A mismatch deletes the version it read, by VersionId: no delete marker hides the key, and
    another version (here an older, correct one) stays."""
    from lambdas.check_endpoint import verify_artifact

    good = b"the gated model"
    s3, sha = _bucket(), _sha(good)
    kept = s3.put_object(Bucket="data", Key=_key(sha), Body=good)["VersionId"]
    swapped = s3.put_object(Bucket="data", Key=_key(sha), Body=b"the drifted model")["VersionId"]
    event = _event(sha, "0" * 64, swapped)
    with pytest.raises(
        verify_artifact.ArtifactMismatch,
        match=f"version {swapped}\\) has sha256 {_sha(b'the drifted model')}",
    ):
        verify_artifact.handler(event, None)
    assert _versions(s3) == ([kept], [])


def test_verify_artifact_refuses_a_version_that_is_not_the_current_one(aws):
    """SageMaker downloads the current version: a verified older one would pin nothing."""
    from lambdas.check_endpoint import verify_artifact

    good = b"the gated model"
    s3, sha = _bucket(), _sha(good)
    old = s3.put_object(Bucket="data", Key=_key(sha), Body=good)["VersionId"]
    current = s3.put_object(Bucket="data", Key=_key(sha), Body=b"written later")["VersionId"]
    event = _event(sha, "0" * 64, old)
    with pytest.raises(verify_artifact.ArtifactMismatch, match=f"not the current version {current}"):
        verify_artifact.handler(event, None)
    assert sorted(_versions(s3)[0]) == sorted([old, current])  # nothing deleted: the digest matched


def test_an_unversioned_object_is_verified_as_the_null_version(aws, tmp_path: Path):
    """S3's name for the one version of an unversioned bucket's object (the offline emulator's
    bucket: moto's CloudFormation ignores VersioningConfiguration). A mismatch still deletes it
    by that version, and a match names it."""
    from lambdas.check_endpoint import verify_artifact

    body, files_sha = _model_archive(tmp_path / "model")
    s3, sha = _bucket(versioned=False), _sha(body)
    s3.put_object(Bucket="data", Key=_key(sha), Body=body)
    event = _event(sha, files_sha, None)
    assert verify_artifact.handler(event, None)["version_id"] == "null"
    s3.put_object(Bucket="data", Key=_key(sha), Body=b"swapped")
    with pytest.raises(verify_artifact.ArtifactMismatch, match="version null"):
        verify_artifact.handler({**event, "VersionId": "null"}, None)
    assert s3.list_objects_v2(Bucket="data").get("KeyCount") == 0


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"Key": "k", "ExpectedSha256": "0" * 64, "ExpectedFilesSha256": "0" * 64}, "Bucket"),
        ({"Bucket": "b", "Key": "", "ExpectedSha256": "0" * 64, "ExpectedFilesSha256": "0" * 64}, "Key"),
        (
            {"Bucket": "b", "Key": "k", "ExpectedSha256": "ABC", "ExpectedFilesSha256": "0" * 64},
            "ExpectedSha256",
        ),
        ({"Bucket": "b", "Key": _key("0" * 64), "ExpectedSha256": "0" * 64}, "ExpectedFilesSha256"),
        # It may only ever delete a version whose bytes are not what its key names.
        (
            {
                "Bucket": "b",
                "Key": _key("1" * 64),
                "ExpectedSha256": "0" * 64,
                "ExpectedFilesSha256": "0" * 64,
            },
            "Key",
        ),
        (
            {
                "Bucket": "b",
                "Key": _key("0" * 64),
                "ExpectedSha256": "0" * 64,
                "ExpectedFilesSha256": "0" * 64,
                "VersionId": "",
            },
            "VersionId",
        ),
        ("not an object", "Bucket, Key, ExpectedSha256, ExpectedFilesSha256"),
    ],
)
def test_verify_artifact_names_the_bad_field(aws, event, field):
    from lambdas.check_endpoint import verify_artifact

    with pytest.raises(verify_artifact.InvalidEvent, match=field):
        verify_artifact.handler(event, None)
