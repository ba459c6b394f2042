"""End to end: the real state machine on moto, jobs and endpoint on a local runtime.

One emulator per module (deploying and two executions take most of the time); the negative paths
then run against the endpoint the first executions left, and restore the training data they change.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from rich.console import Console

from {{ cookiecutter.package_name }} import model, settings
from {{ cookiecutter.package_name }}_emulator import endpoint_check, scenarios, terminal
from {{ cookiecutter.package_name }}_emulator.observe import PipelineResult
from {{ cookiecutter.package_name }}_emulator.run import Emulator, parse_args, run_pipeline
from {{ cookiecutter.package_name }}_emulator.run_data import one_class_copy

IMAGE = f"{settings.PROJECT_SLUG}:latest"


def quiet_console() -> Console:
    return Console(file=io.StringIO(), width=160)


@pytest.fixture(
    scope="module",
    params=["process", pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.slow])],
)
def pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, project_root: Path
) -> Iterator[tuple[Emulator, PipelineResult]]:
    """Both executions on one runtime; every end-to-end test below runs on each runtime in turn."""
    runtime = request.param
    if runtime == "docker":  # built once per session when absent (conftest's local_image)
        request.getfixturevalue("local_image")
    emulator = Emulator(runtime, tmp_path_factory.mktemp(f"local-pipeline-{runtime}"), quiet_console(), IMAGE)
    try:
        yield emulator, run_pipeline(emulator, stamp=f"e2e-{runtime}")
    finally:
        emulator.close()
    if runtime == "docker":
        label = f"label={settings.PROJECT_SLUG}.local-run"
        leftover = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True)
        assert leftover.stdout.strip() == "", "containers left behind after close()"


def state_names(outcome: Any) -> list[str]:
    return [row["name"] for row in outcome.states]


@pytest.mark.slow
def test_create_then_update_path(pipeline: tuple[Emulator, PipelineResult]) -> None:
    _, result = pipeline
    assert result.ok, result.problems
    create, update = result.executions
    assert (create.status, update.status) == ("SUCCEEDED", "SUCCEEDED")
    assert "CreateEndpoint" in state_names(create) and "UpdateEndpoint" not in state_names(create)
    assert "UpdateEndpoint" in state_names(update) and "CreateEndpoint" not in state_names(update)
    first, second = result.invocations
    assert first.matches and second.matches and first.rows == second.rows == 20
    assert first.endpoint_config != second.endpoint_config
    # Each endpoint serves the promoted copy of its own run's gated candidate: models/<sha256>/.
    for outcome, check in ((create, first), (update, second)):
        sha256 = outcome.evaluation["candidate_sha256"]
        assert check.model_data_url.endswith(f"/models/{sha256}/model.tar.gz")
    assert {n["Subject"] for n in result.notifications} == {"ML pipeline: new model deployed"}


@pytest.mark.slow
def test_history_is_saved_as_get_execution_history_events(pipeline: tuple[Emulator, PipelineResult]) -> None:
    emulator, result = pipeline
    for outcome in result.executions:
        events = json.loads((emulator.run_dir / f"{outcome.name}-history.json").read_text())["events"]
        assert events[0]["type"] == "ExecutionStarted" and events[-1]["type"] == "ExecutionSucceeded"
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        assert any(
            e["type"] == "TaskSucceeded"
            and e["taskSucceededEventDetails"]["resource"] == "createTrainingJob.sync"
            for e in events
        )


@pytest.mark.slow
def test_bucket_holds_models_profile_decisions_and_reports(pipeline: tuple[Emulator, PipelineResult]) -> None:
    emulator, result = pipeline
    keys = {key for key, _ in result.artifacts}
    for outcome in result.executions:
        for part in (
            "validation/decision.json",
            "validation/report.html",
            "evaluation/decision.json",
            "evaluation/report.html",
        ):
            assert f"runs/{outcome.name}/{part}" in keys
            assert (emulator.run_dir / outcome.name / part).is_file()  # downloaded for the reader
        assert any(
            k.startswith(f"runs/{outcome.name}/training/") and k.endswith("/output/model.tar.gz")
            for k in keys
        )
    key = result.invocations[-1].model_data_url.split("/", 3)[3]
    body = emulator.cp.client("s3").get_object(Bucket=settings.S3_BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert {model.MODEL_FILE, "metadata.json", "profile.json"} <= set(tar.getnames())
    second = result.executions[1]
    # The update run compared the new data and candidate against production, which reaches the
    # (network-isolated) processing job as its `production` input channel, not as an S3 URI.
    assert second.validation["reference"].endswith("/processing/input/production")
    assert second.evaluation["production"] is not None


def sdk_client(emulator: Emulator, **codecs: Any) -> Any:
    """The SageMaker SDK's Predictor (v2) on the offline endpoint, through moto's sagemaker-runtime."""
    import boto3
    from sagemaker.predictor import Predictor
    from sagemaker.session import Session

    boto_session = boto3.Session(
        region_name=emulator.cp.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # pragma: allowlist secret (moto dummy)
    )
    session = Session(
        boto_session=boto_session,
        sagemaker_client=emulator.cp.client("sagemaker"),
        sagemaker_runtime_client=emulator.runtime_client(),
    )
    return Predictor(settings.ENDPOINT_NAME, sagemaker_session=session, **codecs)


@pytest.mark.slow
def test_the_sagemaker_sdk_clients_of_the_readme_get_what_inference_py_answers(
    pipeline: tuple[Emulator, PipelineResult],
) -> None:
    from sagemaker.deserializers import JSONDeserializer, JSONLinesDeserializer
    from sagemaker.serializers import CSVSerializer, JSONLinesSerializer, JSONSerializer

    from {{ cookiecutter.package_name }} import data
    from {{ cookiecutter.package_name }}_emulator import observe

    emulator, _ = pipeline
    state = emulator.endpoint_state()
    assert state is not None
    service = endpoint_check.local_service(observe.model_dir(emulator.cp, state[1], emulator.run_dir))
    holdout = data.read_csv(emulator.dataset.holdout).take(slice(0, 3))
    names = [c for c in holdout.columns if c != settings.LABEL_COLUMN]
    rows = [[float(holdout.data[n][i]) for n in names] for i in range(holdout.n_rows)]
    records = [dict(zip(names, row, strict=True)) for row in rows]
    clients = [
        (CSVSerializer(), JSONDeserializer(), rows),
        (JSONSerializer(), JSONDeserializer(), {"instances": records}),
        (JSONLinesSerializer(), JSONLinesDeserializer(), records),
    ]
    for serializer, deserializer, payload in clients:
        got = sdk_client(emulator, serializer=serializer, deserializer=deserializer).predict(payload)
        body = serializer.serialize(payload)
        body = body.encode() if isinstance(body, str) else body
        accept = deserializer.ACCEPT[0]
        want = endpoint_check.local_answer(
            service, endpoint_check.Request("sdk", body, serializer.CONTENT_TYPE, accept, 3)
        )
        text = (
            b"".join(json.dumps(r).encode() + b"\n" for r in got)
            if isinstance(got, list)
            else json.dumps(got).encode()
        )
        assert endpoint_check.difference(endpoint_check.Answer(200, accept, text), want) == "", serializer
    # The SDK's default Predictor sends application/octet-stream: refused, as the README says.
    with pytest.raises(ClientError) as refused:
        sdk_client(emulator).predict(b"1,2")
    assert refused.value.response["OriginalStatusCode"] == 415


def wait_settled(sm: Any, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME)
        if described["EndpointStatus"] not in ("Creating", "Updating"):
            return described
        time.sleep(0.2)
    raise AssertionError("endpoint still changing")


@pytest.mark.slow
def test_failed_update_keeps_the_previous_model_serving(pipeline: tuple[Emulator, PipelineResult]) -> None:
    emulator, _ = pipeline
    sm, s3 = emulator.cp.client("sagemaker"), emulator.cp.client("s3")
    before = emulator.endpoint_state()
    s3.put_object(Bucket=settings.S3_BUCKET, Key="broken/model.tar.gz", Body=b"not a tarball")
    sm.create_model(
        ModelName="broken",
        ExecutionRoleArn=emulator.stack.outputs["HostingRoleArn"],
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{settings.S3_BUCKET}/broken/model.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="broken-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "broken",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.update_endpoint(EndpointName=settings.ENDPOINT_NAME, EndpointConfigName="broken-config")
    described = wait_settled(sm)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == before[0]
    assert "broken-config" in described["FailureReason"]
    check = emulator.check_endpoint("failed update")
    assert check is not None and check.matches and check.model_data_url == before[1]


@pytest.mark.slow
def test_drift_is_reported_and_production_follows_the_policy(
    pipeline: tuple[Emulator, PipelineResult],
) -> None:
    emulator, _ = pipeline
    data = emulator.run_dir / "data"
    before, configs = emulator.endpoint_state(), emulator.endpoint_configs()
    emulator.notifications()
    emulator.upload_training_file(data / "drifted" / "train.csv")
    try:
        outcome = emulator.execute("drift-e2e")
    finally:
        emulator.upload_training_file(data / "train" / "train.csv")
    assert outcome.status == "SUCCEEDED"  # a blocked run is a correct outcome, not a failure
    assert outcome.validation["drift_detected"] is True
    # drift_injection shifts the first numeric features (a third of them): the first is among the drifted.
    assert emulator.dataset.train.read_text().split(",", 1)[0] in outcome.validation["drifted_features"]
    notes = emulator.notifications()
    after = emulator.endpoint_state()
    if settings.DRIFT_POLICY == "block":
        assert outcome.validation["decision"] == "block" and outcome.evaluation is None
    else:  # retrain: training goes on and the gate blocks the concept-drifted candidate
        assert outcome.validation["decision"] == "proceed"
        assert outcome.evaluation["promote"] is False
        assert any("worse than production" in r or "below" in r for r in outcome.evaluation["reasons"])
    assert "NotifyBlocked" in state_names(outcome) and "CreateModel" not in state_names(outcome)
    assert emulator.endpoint_configs() == configs and after == before
    assert [n["Subject"] for n in notes] == ["ML pipeline: run blocked, production unchanged"]
    observed = scenarios.Observation(
        outcome.name,
        outcome.status,
        validation=outcome.validation,
        evaluation=outcome.evaluation,
        before=before,
        after=after,
        new_configs=emulator.endpoint_configs() - configs,
        notifications=notes,
        answers_match=True,
    )
    assert scenarios.run_checks(scenarios.SCENARIOS["inject-drift"].steps[1], observed) == []


@pytest.mark.slow
def test_training_failure_fails_the_execution_and_notifies(pipeline: tuple[Emulator, PipelineResult]) -> None:
    emulator, _ = pipeline
    data = emulator.run_dir / "data"
    before = emulator.endpoint_state()
    emulator.notifications()
    emulator.upload_training_file(
        one_class_copy(data / "train" / "train.csv", data / "one-class" / "train.csv")
    )
    try:
        outcome = emulator.execute("fail-e2e")
    finally:
        emulator.upload_training_file(data / "train" / "train.csv")
    assert outcome.status == "FAILED"
    train = next(row for row in outcome.states if row["name"] == "Train")
    assert train["status"] == "failed"
    notes = emulator.notifications()
    assert [n["Subject"] for n in notes] == ["ML pipeline: run failed"]
    # The container's failure file reaches the notification through DescribeTrainingJob's FailureReason.
    assert '"TrainingJobStatus":"Failed"' in notes[0]["Message"]
    # One class (classification) or one value (regression): the training entrypoint's own refusal.
    refusal = "one value" if settings.PROBLEM_TYPE == "regression" else "class"
    assert '"FailureReason":"AlgorithmError: ' in notes[0]["Message"] and refusal in notes[0]["Message"]
    assert emulator.endpoint_state() == before


def training_request(name: str, hyperparameters: dict[str, str]) -> dict[str, Any]:
    """A CreateTrainingJob request like the state machine's, with chosen hyperparameters."""
    return {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker-execution",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{settings.S3_BUCKET}/data/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{settings.S3_BUCKET}/faults"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def wait_for_job(emulator: Emulator, name: str, timeout: float = 600) -> dict[str, Any]:
    sm, deadline = emulator.cp.client("sagemaker"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in {"Completed", "Failed", "Stopped"}:
            return job
        time.sleep(0.5)
    raise AssertionError(f"training job {name} did not end within {timeout} s")


def bad_hyperparameters() -> list[Any]:
    """(case, hyperparameters, name the reason must carry), from this bake's model.HYPERPARAMETERS
    (C and max_iter for scikit-learn, n_estimators and learning_rate for the boosters, ...)."""
    first = {p.kind: p for p in reversed(model.HYPERPARAMETERS)}
    real, whole = first["float"], first["int"]
    bounded = next(p for p in model.HYPERPARAMETERS if p.kind != "categorical" and p.low is not None)
    cases = [
        ("out-of-range", {bounded.name: repr(bounded.low - 1)}, bounded.name),
        ("not-a-number", {whole.name: "many"}, whole.name),
        ("missing-value", {real.name: ""}, real.name),
        ("unknown", {"no_such_parameter": "0.1"}, "no_such_parameter"),
    ]
    choice = first.get("categorical")
    if choice is not None and choice.values:
        cases.append(("bad-choice", {choice.name: "heavy"}, choice.name))
    return [pytest.param(*case, id=case[0]) for case in cases]


@pytest.mark.slow
@pytest.mark.parametrize(("case", "hyperparameters", "reason"), bad_hyperparameters())
def test_bad_hyperparameters_fail_the_job_with_the_reason(
    pipeline: tuple[Emulator, PipelineResult], case: str, hyperparameters: dict[str, str], reason: str
) -> None:
    emulator, _ = pipeline
    before = emulator.endpoint_state()
    name = f"fault-{case}-{int(time.time())}"
    emulator.cp.client("sagemaker").create_training_job(**training_request(name, hyperparameters))
    job = wait_for_job(emulator, name)
    assert job["TrainingJobStatus"] == "Failed"
    # The container's /opt/ml/output/failure becomes the job's FailureReason, as in SageMaker.
    assert job["FailureReason"].startswith("AlgorithmError: ") and reason in job["FailureReason"]
    assert emulator.endpoint_state() == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("corrupt-file", b"\x89PNG\r\n\x1a\n\x00\x00binary garbage, not CSV\xff\xfe"),
        ("ragged-rows", b"mean_radius,target\n1.0,1\n2.0\n"),
        ("empty-file", b""),
    ],
)
def test_corrupt_training_data_fails_the_run_notifies_and_keeps_production(
    pipeline: tuple[Emulator, PipelineResult], case: str, body: bytes
) -> None:
    emulator, _ = pipeline
    data = emulator.run_dir / "data"
    before = emulator.endpoint_state()
    emulator.notifications()
    emulator.cp.client("s3").put_object(Bucket=settings.S3_BUCKET, Key="data/train/train.csv", Body=body)
    try:
        outcome = emulator.execute(f"corrupt-{case}")
    finally:
        emulator.upload_training_file(data / "train" / "train.csv")
    assert outcome.status == "FAILED"
    # The first job that reads the data (validation) refuses it; training never starts.
    assert "Train" not in state_names(outcome)
    notes = emulator.notifications()
    assert [n["Subject"] for n in notes] == ["ML pipeline: run failed"]
    assert '"FailureReason":"AlgorithmError: ' in notes[0]["Message"]
    assert emulator.endpoint_state() == before


@pytest.mark.slow
def test_empty_training_channel_fails_the_run_and_keeps_production(
    pipeline: tuple[Emulator, PipelineResult],
) -> None:
    emulator, _ = pipeline
    data = emulator.run_dir / "data"
    before = emulator.endpoint_state()
    emulator.notifications()
    emulator.cp.client("s3").delete_object(Bucket=settings.S3_BUCKET, Key="data/train/train.csv")
    try:
        outcome = emulator.execute("empty-channel")
    finally:
        emulator.upload_training_file(data / "train" / "train.csv")
    assert outcome.status == "FAILED"
    assert [n["Subject"] for n in emulator.notifications()] == ["ML pipeline: run failed"]
    assert emulator.endpoint_state() == before


@pytest.mark.slow
def test_two_hosts_train_one_model_and_only_the_leader_writes(
    pipeline: tuple[Emulator, PipelineResult], tmp_path: Path
) -> None:
    """Two containers on the compose network find each other by host name and join the library's
    collective (distributed.py); a one-host library refuses in one line."""
    emulator, _ = pipeline
    if emulator.runtime_name != "docker":
        pytest.skip("two training hosts as two containers: SageMaker local mode on Docker")
    name = f"multi-host-{int(time.time())}"
    request = training_request(name, {"n_estimators": "30"} if model.DISTRIBUTED_TRAINING else {})
    request["ResourceConfig"]["InstanceCount"] = 2
    emulator.cp.client("sagemaker").create_training_job(**request)
    job = wait_for_job(emulator, name)
    if not model.DISTRIBUTED_TRAINING:
        assert job["TrainingJobStatus"] == "Failed"
        assert f"{model.LIBRARY} trains on one host only" in job["FailureReason"]
        return
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    logs = emulator.plane.job_logs[name]
    assert logs.count("joined 2 hosts") == 2, logs[-3000:]
    bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    archive = emulator.cp.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp_path, filter="data")
    assert {model.MODEL_FILE, "metadata.json", "profile.json"} <= {p.name for p in tmp_path.iterdir()}
    seen = json.loads((tmp_path / "metadata.json").read_text())["training"]
    assert len(seen["rows_per_host"]) == 2 and seen["rows"] == sum(seen["rows_per_host"].values())


def running_job_target(emulator: Emulator, name: str) -> Any:
    """The container (docker) or process (process runtime) running training job ``name``, once it runs."""
    if emulator.runtime_name == "docker":
        label = f"label={settings.PROJECT_SLUG}.local-job={name}"
        found = subprocess.run(["docker", "ps", "-q", "--filter", label], capture_output=True, text=True)
        return found.stdout.split()[0] if found.stdout.strip() else None
    jobs = list(emulator.plane.runtime._jobs)  # the process runtime's running jobs, by pid
    return jobs[0] if jobs else None


@pytest.mark.slow
def test_training_killed_midway_fails_with_a_reason(pipeline: tuple[Emulator, PipelineResult]) -> None:
    """SIGTERM mid-training (StopTrainingJob, a reclaimed instance): failure file, failed job,
    production untouched."""
    import os
    import signal

    emulator, _ = pipeline
    before = emulator.endpoint_state()
    lines = (emulator.run_dir / "data" / "train" / "train.csv").read_bytes().splitlines(keepends=True)
    big = lines[0] + b"".join(lines[1:]) * 600  # ~270,000 rows: seconds of parsing to interrupt
    emulator.cp.client("s3").put_object(Bucket=settings.S3_BUCKET, Key="faults/big/train.csv", Body=big)
    name = f"fault-killed-{int(time.time())}"
    request = training_request(name, {})
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = (
        f"s3://{settings.S3_BUCKET}/faults/big/"
    )
    emulator.cp.client("sagemaker").create_training_job(**request)
    deadline, target = time.monotonic() + 300, None
    while target is None and time.monotonic() < deadline:
        target = running_job_target(emulator, name)
        time.sleep(0.2)
    assert target is not None, "the training job never started"
    time.sleep(1.0)  # inside the job now: reading and parsing the channel
    if emulator.runtime_name == "docker":
        subprocess.run(["docker", "kill", "--signal", "TERM", target], check=True, capture_output=True)
    else:
        os.kill(target, signal.SIGTERM)
    job = wait_for_job(emulator, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "stopped by SIGTERM" in job["FailureReason"], job["FailureReason"]
    assert emulator.endpoint_state() == before


def test_state_rows_follow_the_history() -> None:
    t = [datetime(2026, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(6)]
    events = [
        {"type": "ExecutionStarted", "timestamp": t[0]},
        {"type": "TaskStateEntered", "timestamp": t[0], "stateEnteredEventDetails": {"name": "Train"}},
        {"type": "TaskFailed", "timestamp": t[2], "taskFailedEventDetails": {"error": "States.TaskFailed"}},
        {
            "type": "TaskStateEntered",
            "timestamp": t[2],
            "stateEnteredEventDetails": {"name": "NotifyFailure"},
        },
        {"type": "TaskStateExited", "timestamp": t[3], "stateExitedEventDetails": {"name": "NotifyFailure"}},
        {"type": "WaitStateEntered", "timestamp": t[3], "stateEnteredEventDetails": {"name": "Wait"}},
        {"type": "WaitStateExited", "timestamp": t[4], "stateExitedEventDetails": {"name": "Wait"}},
        {"type": "WaitStateEntered", "timestamp": t[4], "stateEnteredEventDetails": {"name": "Wait"}},
        {"type": "WaitStateExited", "timestamp": t[5], "stateExitedEventDetails": {"name": "Wait"}},
    ]
    rows = terminal.state_rows(events)
    assert [(r["name"], r["status"], r["seconds"], r["error"]) for r in rows[:2]] == [
        ("Train", "failed", 2.0, "States.TaskFailed"),
        ("NotifyFailure", "ok", 1.0, ""),
    ]
    wait = terminal.grouped(rows)[-1]
    assert (wait["name"], wait["visits"], wait["seconds"]) == ("Wait", 2, 2.0)
    assert terminal.current_state(events[:2]) == "Train"


def test_one_class_copy_keeps_the_schema_and_one_label(sample_data: dict[str, Path], tmp_path: Path) -> None:
    copy = one_class_copy(sample_data["train"], tmp_path / "train.csv")
    original, changed = sample_data["train"].read_text().splitlines(), copy.read_text().splitlines()
    assert changed[0] == original[0] and len(changed) == len(original)
    label = original[0].split(",").index(settings.LABEL_COLUMN)
    assert len({row.split(",")[label] for row in changed[1:]}) == 1


def test_cli_refuses_drift_and_failure_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--inject-drift", "--fail-training"])
    assert "not allowed with argument" in capsys.readouterr().err
