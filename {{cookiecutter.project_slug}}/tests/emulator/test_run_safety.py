"""Run safety in the state machine, end to end in the process runtime (docs/decisions.md).

- Two executions at once: only the oldest running one goes on; the other ends "skipped" with a
  notification, before it trains, and never touches the endpoint.
- The deployed model is the gated one: a candidate archive replaced after Evaluate fails the
  promotion check (sha256 against the decision's candidate_sha256); production is unchanged.
- Production must still be the model the gate compared against when the endpoint changes.
- The files an endpoint serves are the files the gate scored (issue 22): a model created by hand
  with the gated model's MODEL_FILES_SHA256 but other files never serves (its instances refuse to
  start, the update rolls back); a decision forged about the files fails the run before any model.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from {{ cookiecutter.package_name }} import model_digest, settings, tarballs
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


def s3_as(emulator: Emulator, role_output: str) -> Any:
    """An S3 client that signs as one of the stack's roles (by its output name)."""
    return boto3.client(
        "s3",
        endpoint_url=emulator.cp.endpoint_url,
        region_name=emulator.cp.region,
        aws_access_key_id=principals.key_for(emulator.cp.stack.outputs[role_output]),
        aws_secret_access_key="testing",  # pragma: allowlist secret (moto dummy)
    )


def swap_a_model_file(archive: bytes) -> bytes:
    """The archive with its served file changed (model.onnx when training compiled one, else the
    native file) and metadata.json recording the new file's digest: a folder the loaders' own
    checks would accept, but not the folder the gate scored."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    metadata = json.loads(files["metadata.json"])
    target = (
        metadata["compiled"]["file"]
        if metadata.get("compiled")
        else next(name for name in sorted(files) if name.startswith("model.") and name != "metadata.json")
    )
    changed = bytearray(files[target])
    changed[len(changed) // 2] ^= 0xFF
    files[target] = bytes(changed)
    if metadata.get("compiled"):
        metadata["compiled"]["sha256"] = hashlib.sha256(changed).hexdigest()
        files["metadata.json"] = json.dumps(metadata).encode()
    swapped = io.BytesIO()
    with tarfile.open(fileobj=swapped, mode="w:gz") as tar:
        for name, content in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    return swapped.getvalue()


def unpacked_manifest(archive: bytes, scratch: Path) -> str:
    """The manifest digest of the folder the archive extracts to, as serving computes it."""
    scratch.mkdir(parents=True)
    (scratch / "model.tar.gz").write_bytes(archive)
    return model_digest.folder_manifest(tarballs.extract(scratch / "model.tar.gz", scratch / "model"))[1]


def deploy_by_hand(sm: Any, image: str, model_data_url: str, environment: dict[str, str], name: str) -> None:
    """What someone with SageMaker rights does outside the pipeline: model ``<name>-model``, config
    ``<name>-config`` on one instance, and an update of the project's endpoint to it."""
    sm.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/manual",
        PrimaryContainer={"Image": image, "ModelDataUrl": model_data_url, "Environment": environment},
    )
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-model",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.update_endpoint(EndpointName=settings.ENDPOINT_NAME, EndpointConfigName=f"{name}-config")


def wait_in_service(emulator: Emulator) -> dict[str, Any]:
    sm = emulator.cp.client("sagemaker")
    return polling.wait_until(
        lambda: sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME),
        lambda d: d["EndpointStatus"] == "InService",
        300,
        0.5,
        what="the endpoint update",
    )


def test_a_model_with_other_files_under_the_gated_digest_never_serves(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Someone with SageMaker rights but no write to models/ creates a model with the gated model's
    Environment (its MODEL_FILES_SHA256) and an archive of their own: the new instances refuse to
    start, naming both digests, the blue/green update rolls back and production is unchanged."""
    sm, s3 = emulator.cp.client("sagemaker"), emulator.cp.client("s3")
    before = production(emulator)
    gated = sm.describe_model(ModelName=f"model-{run_id('safety-first')}")["PrimaryContainer"]
    expected = gated["Environment"]["MODEL_FILES_SHA256"]
    bucket, key = gated["ModelDataUrl"].removeprefix("s3://").split("/", 1)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert unpacked_manifest(original, tmp_path / "gated") == expected, "the gated model serves its own files"
    swapped = swap_a_model_file(original)
    actual = unpacked_manifest(swapped, tmp_path / "swapped")
    s3.put_object(Bucket=bucket, Key="manual/swapped/model.tar.gz", Body=swapped)
    deploy_by_hand(
        sm, gated["Image"], f"s3://{bucket}/manual/swapped/model.tar.gz", gated["Environment"], "swapped"
    )
    final = wait_in_service(emulator)
    assert final["EndpointConfigName"] == before[0] != "swapped-config"
    reason = final.get("FailureReason", "")
    assert f"have manifest sha256 {actual}, not {expected} (MODEL_FILES_SHA256" in reason, reason
    assert "refusing to serve" in reason
    assert production(emulator) == before


def test_a_decision_forged_about_the_files_fails_before_any_model(emulator: Emulator) -> None:
    """The evaluate role (the one principal the bucket policy lets write the decision) rewrites
    model_files to describe another model.onnx, with a manifest that matches that forgery, and
    promotes: VerifyArtifact finds the gated archive unpacks to other files and fails the run
    (ModelFilesMismatch) before CreateModel, so no endpoint ever serves under the forged digest.
    The forgery promotes whatever the gate said, so the test does not depend on the comparison."""
    s3, writer = emulator.cp.client("s3"), s3_as(emulator, "EvaluateRoleArn")
    before = production(emulator)
    key = "runs/safety-forged/evaluation/decision.json"
    forged: dict[str, Any] = {}

    def forge(request: dict[str, Any]) -> None:
        decision = json.loads(s3.get_object(Bucket=settings.S3_BUCKET, Key=key)["Body"].read())
        forged["real"] = decision["model_files_sha256"]
        files = dict(decision["model_files"])
        target = "model.onnx" if "model.onnx" in files else sorted(files)[0]
        files[target] = hashlib.sha256(b"another model").hexdigest()
        decision.update(
            promote=True, model_files=files, model_files_sha256=model_digest.manifest_sha256(files)
        )
        forged["sha"] = decision["model_files_sha256"]
        writer.put_object(Bucket=settings.S3_BUCKET, Key=key, Body=json.dumps(decision).encode())

    undo = after_evaluate(emulator, forge)
    try:
        run = finish(emulator, emulator.cp.start_execution("safety-forged", execution_input={}))
    finally:
        undo()
    assert run["status"] == "FAILED"
    assert run["error"] == "ModelFilesMismatch"
    assert f"manifest sha256 is {forged['real']}, not {forged['sha']}, the model_files_sha256" in run["cause"]
    assert "VerifyArtifact" in run["entered"] and "CreateModel" not in run["entered"]
    assert production(emulator) == before
    # Production's archive is intact: its bytes are still what its content-addressed key says.
    bucket, live = before[1].removeprefix("s3://").split("/", 1)
    if live.startswith("models/"):
        body = s3.get_object(Bucket=bucket, Key=live)["Body"].read()
        assert f"models/{hashlib.sha256(body).hexdigest()}/model.tar.gz" == live
    assert notified(emulator, ["safety-forged"])["safety-forged"] == ["ML pipeline: run failed"]


def test_production_changed_since_the_gate_stops_the_deploy(emulator: Emulator) -> None:
    sm, s3 = emulator.cp.client("sagemaker"), emulator.cp.client("s3")
    _, live = production(emulator)

    def someone_deploys(request: dict[str, Any]) -> None:
        # A manual deployment lands between this run's gate and its endpoint change (outside
        # models/, which the bucket policy keeps for the state machine).
        bucket, key = live.removeprefix("s3://").split("/", 1)
        s3.copy_object(Bucket=bucket, Key="manual/model.tar.gz", CopySource={"Bucket": bucket, "Key": key})
        image = sm.describe_model(ModelName=f"model-{run_id('safety-first')}")["PrimaryContainer"]["Image"]
        deploy_by_hand(sm, image, f"s3://{bucket}/manual/model.tar.gz", {}, "manual")
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
