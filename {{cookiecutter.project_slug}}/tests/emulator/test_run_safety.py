"""Run safety in the state machine, end to end in the process runtime (docs/decisions.md).

- Two executions at once: only the oldest running one goes on; the other ends "skipped" with a
  notification, before it trains, and never touches the endpoint.
- The deployed model is the gated one: a candidate archive replaced after Evaluate fails the
  promotion check (sha256 against the decision's candidate_sha256); production is unchanged.
- Production must still be the model the gate compared against when the endpoint changes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import polling
from {{ cookiecutter.package_name }}_emulator import principals
from {{ cookiecutter.package_name }}_emulator.run import Emulator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator("process", tmp_path_factory.mktemp("run-safety"), Console(file=io.StringIO()))
    try:
        emulator.start()
        first = emulator.execute("safety-first", execution_input={}, timeout=900)
        assert first.status == "SUCCEEDED", first.error  # production exists from here on
        emulator.notifications()
        yield emulator
    finally:
        emulator.close()


def run_id(execution: str) -> str:
    return hashlib.md5(execution.encode()).hexdigest()


def production(emulator: Emulator) -> tuple[str, str]:
    """(endpoint config, model artifact) the endpoint serves."""
    sm = emulator.cp.client("sagemaker")
    config = sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME)["EndpointConfigName"]
    model = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
    return config, sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"]


def finish(emulator: Emulator, arn: str) -> dict[str, Any]:
    described = emulator.cp.wait_for_execution(arn, timeout_s=900)
    described["entered"] = [
        e["stateEnteredEventDetails"]["name"]
        for e in emulator.cp.history(arn)
        if "stateEnteredEventDetails" in e
    ]
    described["result"] = json.loads(described["output"]) if described.get("output") else {}
    return described


def notified(emulator: Emulator, names: list[str]) -> dict[str, list[str]]:
    """Subjects published per execution name (waits a little for SNS -> SQS)."""
    found: dict[str, list[str]] = {name: [] for name in names}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(found.values()):
        for message in emulator.notifications():
            for name in names:
                if f"Execution {name} " in message.get("Message", ""):
                    found[name].append(message["Subject"])
        time.sleep(0.2)
    return found


def after_evaluate(emulator: Emulator, action: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
    """Run ``action(request)`` when an evaluate job has run, before SageMaker reports it Completed
    (so before the state machine reads the decision). Returns the undo."""
    runtime = emulator.plane.runtime
    original = runtime.run_processing

    def run_processing(request: dict[str, Any]) -> Any:
        result = original(request)
        if request["ProcessingJobName"].startswith("evaluate-"):
            action(request)
        return result

    runtime.run_processing = run_processing
    return lambda: vars(runtime).pop("run_processing", None)


def test_two_executions_at_once_only_one_changes_the_endpoint(emulator: Emulator) -> None:
    before_config, _ = production(emulator)
    names = ["safety-race-a", "safety-race-b"]
    arns = [emulator.cp.start_execution(name, execution_input={}) for name in names]
    runs = dict(zip(names, (finish(emulator, arn) for arn in arns), strict=True))
    assert all(run["status"] == "SUCCEEDED" for run in runs.values()), runs
    outcomes = {name: run["result"]["outcome"] for name, run in runs.items()}
    assert sorted(outcomes.values()) == ["deployed", "skipped"], outcomes
    winner = next(name for name, outcome in outcomes.items() if outcome == "deployed")
    loser = next(name for name in names if name != winner)
    # The skipped run stopped before any job and never reached the endpoint.
    assert "Train" not in runs[loser]["entered"] and "ValidateData" not in runs[loser]["entered"]
    assert not {"UpdateEndpoint", "CreateEndpoint"} & set(runs[loser]["entered"])
    assert "another run is in progress" in runs[loser]["result"]["reasons"][0]
    assert winner in runs[loser]["result"]["reasons"][0]
    config, model_data_url = production(emulator)
    assert config == f"config-{run_id(winner)}" != before_config
    assert model_data_url == runs[winner]["result"]["model_data_url"]
    subjects = notified(emulator, names)
    assert subjects[winner] == ["ML pipeline: new model deployed"]
    assert subjects[loser] == ["ML pipeline: run skipped, another run is in progress"]


def s3_as_training_role(emulator: Emulator) -> Any:
    """An S3 client that signs as the training job's role: the one principal the bucket policy
    lets write training outputs, so the strongest insider short of the state machine."""
    return boto3.client(
        "s3",
        endpoint_url=emulator.cp.endpoint_url,
        region_name=emulator.cp.region,
        aws_access_key_id=principals.key_for(emulator.cp.stack.outputs["TrainingRoleArn"]),
        aws_secret_access_key="testing",  # pragma: allowlist secret (moto dummy)
    )


def test_a_candidate_swapped_after_evaluate_is_refused(emulator: Emulator) -> None:
    before = production(emulator)
    s3 = emulator.cp.client("s3")
    writer = s3_as_training_role(emulator)
    refused: list[str] = []

    def swap(request: dict[str, Any]) -> None:
        uri = next(i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"] if i["InputName"] == "model")
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        archive = io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        swapped = io.BytesIO()
        with (
            tarfile.open(fileobj=archive, mode="r:gz") as old,
            tarfile.open(fileobj=swapped, mode="w:gz") as new,
        ):
            for member in old.getmembers():
                new.addfile(member, old.extractfile(member) if member.isfile() else None)
            extra = tarfile.TarInfo("swapped.txt")
            extra.size = 7
            new.addfile(extra, io.BytesIO(b"swapped"))
        # The bucket policy refuses anybody else (here the emulator's own principal) first ...
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=swapped.getvalue())
        except ClientError as error:
            refused.append(error.response["Error"]["Code"])
        # ... so the swap comes from the training role, and the digest check must catch it.
        writer.put_object(Bucket=bucket, Key=key, Body=swapped.getvalue())

    undo = after_evaluate(emulator, swap)
    try:
        run = finish(emulator, emulator.cp.start_execution("safety-swap", execution_input={}))
    finally:
        undo()
    assert refused == ["AccessDenied"]
    assert run["status"] == "FAILED"
    assert run["error"] == "ArtifactMismatch"
    assert "the artifact changed after the gate" in run["cause"]
    assert "VerifyArtifact" in run["entered"] and "CreateModel" not in run["entered"]
    assert production(emulator) == before
    decision = json.loads(
        s3.get_object(Bucket=settings.S3_BUCKET, Key="runs/safety-swap/evaluation/decision.json")[
            "Body"
        ].read()
    )
    # The copy named after the gated digest was deleted: models/<sha256>/ only holds what it says.
    listed = s3.list_objects_v2(Bucket=settings.S3_BUCKET, Prefix=f"models/{decision['candidate_sha256']}/")
    assert listed.get("KeyCount", 0) == 0
    assert notified(emulator, ["safety-swap"])["safety-swap"] == ["ML pipeline: run failed"]


def test_production_changed_since_the_gate_stops_the_deploy(emulator: Emulator) -> None:
    sm, s3 = emulator.cp.client("sagemaker"), emulator.cp.client("s3")
    _, live = production(emulator)

    def someone_deploys(request: dict[str, Any]) -> None:
        # A manual deployment lands between this run's gate and its endpoint change (outside
        # models/, which the bucket policy keeps for the state machine).
        bucket, key = live.removeprefix("s3://").split("/", 1)
        s3.copy_object(Bucket=bucket, Key="manual/model.tar.gz", CopySource={"Bucket": bucket, "Key": key})
        image = sm.describe_model(ModelName=f"model-{run_id('safety-first')}")["PrimaryContainer"]["Image"]
        sm.create_model(
            ModelName="manual-model",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/manual",
            PrimaryContainer={
                "Image": image,
                "ModelDataUrl": f"s3://{bucket}/manual/model.tar.gz",
                "Environment": {},
            },
        )
        sm.create_endpoint_config(
            EndpointConfigName="manual-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "manual-model",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        sm.update_endpoint(EndpointName=settings.ENDPOINT_NAME, EndpointConfigName="manual-config")
        polling.wait_until(
            lambda: sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME),
            lambda d: d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == "manual-config",
            300,
            0.5,
            what="the manual deployment",
        )

    undo = after_evaluate(emulator, someone_deploys)
    try:
        run = finish(emulator, emulator.cp.start_execution("safety-stale", execution_input={}))
    finally:
        undo()
    if run["status"] == "SUCCEEDED":  # the gate blocked this candidate: nothing to deploy, nothing to check
        assert run["result"]["outcome"] == "blocked"
        pytest.skip("the gate blocked the candidate, so the production re-check was not reached")
    assert run["status"] == "FAILED"
    assert run["error"] == "ProductionChanged"
    assert "/manual/model.tar.gz" in run["cause"] and live in run["cause"]
    assert not {"UpdateEndpoint", "CreateEndpoint"} & set(run["entered"])
    assert production(emulator) == ("manual-config", f"s3://{settings.S3_BUCKET}/manual/model.tar.gz")
