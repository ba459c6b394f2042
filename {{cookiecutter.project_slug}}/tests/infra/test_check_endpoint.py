"""The check-endpoint Lambda against moto's SageMaker."""

from __future__ import annotations

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
def _put(body: bytes) -> tuple[object, str]:
    import hashlib

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="data", Key="models/x/model.tar.gz", Body=body)
    return s3, hashlib.sha256(body).hexdigest()


def test_verify_artifact_accepts_the_gated_archive(aws):
    from lambdas.check_endpoint import verify_artifact

    _, sha = _put(b"model archive" * 1000)
    event = {"Bucket": "data", "Key": "models/x/model.tar.gz", "ExpectedSha256": sha}
    assert verify_artifact.handler(event, None) == {"sha256": sha, "bytes": 13000}


def test_verify_artifact_refuses_and_deletes_a_swapped_archive(aws):
    from lambdas.check_endpoint import verify_artifact

    s3, sha = _put(b"the drifted model")
    expected = "0" * 64
    with pytest.raises(verify_artifact.ArtifactMismatch, match=f"has sha256 {sha}, not {expected}"):
        verify_artifact.handler(
            {"Bucket": "data", "Key": "models/x/model.tar.gz", "ExpectedSha256": expected}, None
        )
    assert s3.list_objects_v2(Bucket="data", Prefix="models/").get("KeyCount") == 0


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"Key": "k", "ExpectedSha256": "0" * 64}, "Bucket"),
        ({"Bucket": "b", "Key": "", "ExpectedSha256": "0" * 64}, "Key"),
        ({"Bucket": "b", "Key": "k", "ExpectedSha256": "ABC"}, "ExpectedSha256"),
        ("not an object", "Bucket, Key, ExpectedSha256"),
    ],
)
def test_verify_artifact_names_the_bad_field(aws, event, field):
    from lambdas.check_endpoint import verify_artifact

    with pytest.raises(verify_artifact.InvalidEvent, match=field):
        verify_artifact.handler(event, None)
