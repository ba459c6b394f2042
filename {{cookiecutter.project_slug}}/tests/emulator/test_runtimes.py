"""The runtimes against moto's S3: inputs laid out like /opt/ml, outputs uploaded like SageMaker.

The process runtime always runs; the docker runtime needs a daemon and the built image.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import requests
from moto.server import ThreadedMotoServer

from {{ cookiecutter.package_name }} import data, metrics, settings, tarballs
from {{ cookiecutter.package_name }} import model as model_py
from {{ cookiecutter.package_name }}.model import HYPERPARAMETERS
from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.steps import train as train_step
from {{ cookiecutter.package_name }}_emulator import endpoint_check
from {{ cookiecutter.package_name }}_emulator.runtimes import aws_environment, free_port
from {{ cookiecutter.package_name }}_emulator.runtimes.process import ProcessRuntime

REGION = "eu-west-1"
BUCKET = "runtime-test"
IMAGE = "{{ cookiecutter.project_slug }}:latest"


def overrides() -> dict[str, str]:
    """A value other than the default for this bake's first float and first int hyperparameter
    (C and max_iter for scikit-learn, learning_rate and n_estimators for the boosters)."""
    first = {p.kind: p for p in reversed(HYPERPARAMETERS) if p.kind in ("float", "int")}
    real, whole = first["float"], first["int"]
    value = real.default / 2
    if real.low is not None and value < real.low:
        value = (real.default + real.high) / 2
    step = 1 if whole.high is None or whole.default < whole.high else -1
    return {real.name: repr(value), whole.name: str(whole.default + step)}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3(moto_url: str, sample_data: dict[str, Path]) -> Any:
    client = boto3.client(
        "s3", endpoint_url=moto_url, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
    )
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    client.upload_file(str(sample_data["train"]), BUCKET, "data/train/train.csv")
    client.upload_file(str(sample_data["holdout"]), BUCKET, "data/holdout/holdout.csv")
    client.put_object(Bucket=BUCKET, Key="data/corrupt/train.csv", Body=b"a,b,target\n1,2\n")
    return client


@pytest.fixture
def runtime(moto_url: str, tmp_path: Path) -> Iterator[ProcessRuntime]:
    process = ProcessRuntime(moto_url, REGION, tmp_path)
    yield process
    process.close()


def training_request(
    name: str, channel: str = "data/train/", hyperparameters: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": hyperparameters or overrides(),
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{channel}"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/runs/test/training"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


def model_from_s3(s3: Any, uri: str, dest: Path) -> Predictor:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    archive = dest.with_suffix(".tar.gz")
    archive.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(archive))
    return Predictor.load(tarballs.extract(archive, dest))


def test_aws_environment_points_every_client_at_moto() -> None:
    env = aws_environment("http://10.0.0.1:5000", REGION)
    assert env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_S3"] == "http://10.0.0.1:5000"
    assert env["AWS_REGION"] == REGION and env["AWS_EC2_METADATA_DISABLED"] == "true"


def test_training_uploads_model_tarball_where_sagemaker_does(
    runtime: ProcessRuntime, s3: Any, sample_data: dict[str, Path], tmp_path: Path
) -> None:
    chosen = overrides()
    result = runtime.run_training(training_request("train-ok", hyperparameters=chosen))
    assert result.succeeded, result.failure_reason
    assert result.model_artifacts == f"s3://{BUCKET}/runs/test/training/train-ok/output/model.tar.gz"
    model = model_from_s3(s3, result.model_artifacts, tmp_path / "model")
    assert {name: float(model.hyperparameters[name]) for name in chosen} == {
        name: float(value) for name, value in chosen.items()
    }
    sample = data.read_csv(sample_data["train"])
    not_features = (settings.LABEL_COLUMN, *settings.COLUMN_ROLES)  # ranking: its query column
    assert model.feature_names == [c for c in sample.columns if c not in not_features]
    assert f"train:{settings.GATE_METRIC}=" in result.logs
    config = json.loads(
        (tmp_path / "training" / "train-ok" / "input" / "config" / "resourceconfig.json").read_text()
    )
    assert config["current_host"] == "algo-1"


ONE_HOST_ONLY = pytest.mark.skipif(
    getattr(model_py, "DISTRIBUTED_TRAINING", False), reason="a library that trains on one host only"
)
DATA_PARALLEL = pytest.mark.skipif(
    not getattr(model_py, "DISTRIBUTED_TRAINING", False), reason="data-parallel training: the booster bakes"
)


def holdout_metric(predictor: Predictor, holdout: data.Table) -> float:
    predictions = predictor.predict(predictor.features(holdout))
    group = (predictor.columns or {}).get("group")
    return metrics.compute(
        settings.PROBLEM_TYPE,
        holdout.data[settings.LABEL_COLUMN],
        predictions,
        predictor.classes,
        predictor.positive_class,
        groups=holdout.data[group] if group else None,
    )[settings.GATE_METRIC]


@DATA_PARALLEL
def test_two_hosts_train_one_model_on_every_row(
    runtime: ProcessRuntime, s3: Any, sample_data: dict[str, Path], tmp_path: Path
) -> None:
    """Two processes join the library's collective: one model, trained on every row, as good as
    one host's; not the leader's model of its own half (what each host trained before)."""
    rounds = {"n_estimators": "30"}  # each round is a few exchanges between the hosts: keep it short
    request = training_request("two-hosts", hyperparameters=rounds)
    request["ResourceConfig"]["InstanceCount"] = 2
    result = runtime.run_training(request)
    assert result.succeeded, result.failure_reason
    single = runtime.run_training(training_request("one-host", hyperparameters=rounds))
    assert single.succeeded, single.failure_reason
    table, holdout = data.read_csv(sample_data["train"]), data.read_csv(sample_data["holdout"])
    joined = model_from_s3(s3, result.model_artifacts, tmp_path / "two")
    alone = model_from_s3(s3, single.model_artifacts, tmp_path / "one")

    seen = json.loads((tmp_path / "two" / "metadata.json").read_text())["training"]
    shares = seen["rows_per_host"]
    assert seen["rows"] == sum(shares.values()) == table.n_rows and set(shares) == {"algo-1", "algo-2"}
    assert min(shares.values()) > 0
    for host in ("algo-1", "algo-2"):  # each host's own log, each in the collective
        assert f"host {host} joined 2 hosts: {shares[host]} of {table.n_rows} rows" in result.logs
    assert abs(holdout_metric(joined, holdout) - holdout_metric(alone, holdout)) < 0.03

    leader_rows = train_step.host_rows(table, train_step.Cluster("algo-1", ["algo-1", "algo-2"]), {})[0]
    half = Predictor.fit(table, rounds, rows=leader_rows)
    X = joined.features(holdout)
    assert not np.allclose(joined.drift_scores(joined.predict(X)), half.drift_scores(half.predict(X)))


@ONE_HOST_ONLY
def test_two_hosts_are_refused_by_a_one_host_library(runtime: ProcessRuntime, s3: Any) -> None:
    request = training_request("two-hosts-refused")
    request["ResourceConfig"]["InstanceCount"] = 2
    result = runtime.run_training(request)
    assert not result.succeeded
    assert result.failure_reason == (
        f"AlgorithmError: {model_py.LIBRARY} trains on one host only (model.DISTRIBUTED_TRAINING is "
        "False): set training_instance_count to 1 (this job has 2 hosts)"
    )


def test_training_failure_reason_comes_from_the_failure_file(runtime: ProcessRuntime, s3: Any) -> None:
    result = runtime.run_training(training_request("train-bad", channel="data/corrupt/"))
    assert not result.succeeded
    assert result.failure_reason.startswith("AlgorithmError: ")
    assert "train.csv" in result.failure_reason  # the entrypoint names the file at fault
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/test/training/train-bad/output/model.tar.gz")
    assert listed["KeyCount"] == 0


def test_training_with_a_missing_channel_fails_as_client_error(runtime: ProcessRuntime, s3: Any) -> None:
    result = runtime.run_training(training_request("train-missing", channel="data/nothing-here/"))
    assert not result.succeeded
    assert result.failure_reason.startswith("ClientError: ") and "data/nothing-here/" in result.failure_reason


def test_processing_reroots_container_paths_and_uploads_outputs(
    runtime: ProcessRuntime, s3: Any, sample_data: dict[str, Path]
) -> None:
    script = (
        "import os,sys,pathlib;"
        "src=pathlib.Path(sys.argv[1]);out=pathlib.Path(sys.argv[2]);"
        "rows=len(next(src.rglob('*.csv')).read_text().splitlines());"
        "(out/'decision.json').write_text('{\"rows\": %d, \"endpoint\": \"%s\"}' % (rows, os.environ['AWS_ENDPOINT_URL_S3']))"
    )
    request = {
        "ProcessingJobName": "proc-ok",
        "AppSpecification": {
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python3", "-c", script],
            "ContainerArguments": ["/opt/ml/processing/input/data", "/opt/ml/processing/output"],
        },
        "ProcessingInputs": [
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/data/holdout/",
                    "LocalPath": "/opt/ml/processing/input/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/runs/test/validation",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    result = runtime.run_processing(request)
    assert result.succeeded, result.failure_reason
    decision = json.loads(
        s3.get_object(Bucket=BUCKET, Key="runs/test/validation/decision.json")["Body"].read()
    )
    holdout_lines = len(sample_data["holdout"].read_text().splitlines())  # header + holdout rows
    assert decision == {"rows": holdout_lines, "endpoint": runtime.endpoint_url}


def test_processing_failure_still_uploads_outputs(runtime: ProcessRuntime, s3: Any) -> None:
    script = "import pathlib,sys;r=pathlib.Path(sys.argv[1]);(r/'output'/'failure').write_text('schema: column x missing');(r/'processing'/'output'/'decision.json').write_text('{}');sys.exit(1)"
    request = {
        "ProcessingJobName": "proc-bad",
        "AppSpecification": {
            "ImageUri": IMAGE,
            "ContainerEntrypoint": ["python3", "-c", script],
            "ContainerArguments": ["/opt/ml"],
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/runs/bad/validation",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }
    result = runtime.run_processing(request)
    assert not result.succeeded
    assert result.failure_reason == "AlgorithmError: schema: column x missing"
    assert s3.get_object(Bucket=BUCKET, Key="runs/bad/validation/decision.json")["Body"].read() == b"{}"


def test_unknown_container_command_is_refused(runtime: ProcessRuntime) -> None:
    with pytest.raises(ValueError, match="not one of"):
        runtime._command(["/usr/bin/curl", "x"])


@pytest.mark.slow
def test_endpoint_serves_the_trained_model_and_stops(
    runtime: ProcessRuntime, s3: Any, sample_data: dict[str, Path], tmp_path: Path
) -> None:
    trained = runtime.run_training(training_request("train-serve"))
    assert trained.succeeded, trained.failure_reason
    endpoint = runtime.start_endpoint(
        "ep", {"Image": IMAGE, "ModelDataUrl": trained.model_artifacts, "Environment": {}}
    )
    try:
        assert requests.get(f"{endpoint.url}/ping", timeout=5).status_code == 200
        model_from_s3(s3, trained.model_artifacts, tmp_path / "expected")
        # The endpoint answers as the project's inference.py does in process on the same model.
        service = endpoint_check.local_service(tmp_path / "expected")
        for request in endpoint_check.requests_for(data.read_csv(sample_data["holdout"]), rows=5):
            reply = requests.post(
                f"{endpoint.url}/invocations",
                data=request.body,
                headers={"Content-Type": request.content_type, "Accept": request.accept},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text
            got = endpoint_check.Answer(reply.status_code, reply.headers["Content-Type"], reply.content)
            want = endpoint_check.local_answer(service, request)
            assert endpoint_check.difference(got, want) == "", (reply.text, want)
    finally:
        runtime.stop_endpoint(endpoint)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{endpoint.url}/ping", timeout=2)


def test_log_tail_drops_health_check_noise_and_keeps_the_reason() -> None:
    from {{ cookiecutter.package_name }}_emulator.runtimes import log_tail

    logs = "\n".join(
        [
            "Booting worker with pid: 15",
            "ModelFolderError: metadata.json: feature_names do not match the model",
            *[
                f'[crit] 14#14: *{i} connect() to unix:/tmp/s/gunicorn.sock failed (2: No such file) "GET /ping"'
                for i in range(20)
            ],
        ]
    )
    assert log_tail(logs, 2) == (
        "Booting worker with pid: 15 | ModelFolderError: metadata.json: feature_names do not match the model"
    )


def test_preload_leaves_out_a_module_the_serving_finder_already_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After serving ran in this process, serving/imports.py's finder raises for a module it found
    # missing (where find_spec would return None): the preload list must still just leave it out.
    import sys

    from {{ cookiecutter.package_name }}.serving import imports
    from {{ cookiecutter.package_name }}_emulator import forkserver

    missing = "a_library_this_bake_does_not_install"
    monkeypatch.setattr(forkserver, "PRELOAD", ("json", missing))
    monkeypatch.setattr(sys, "meta_path", [imports._Refuse({missing}), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError):
        __import__("importlib.util").util.find_spec(missing)
    assert forkserver.preload_for("pkg", jobs=False) == list(forkserver.LAMBDA_PRELOAD)
    assert missing not in forkserver.preload_for("{{ cookiecutter.package_name }}")
    assert "json" in forkserver.preload_for("{{ cookiecutter.package_name }}")
