"""The data plane attached to moto's SageMaker backend, driven through boto3 with a fake runtime."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from fake_runtime import FakeRuntime
from moto import mock_aws

from {{ cookiecutter.package_name }}_emulator import data_plane, tuning
from {{ cookiecutter.package_name }}_emulator.blue_green import EndpointClock
from {{ cookiecutter.package_name }}_emulator.data_plane import DataPlane
from {{ cookiecutter.package_name }}_emulator.tuning import parse_metrics, sample_hyperparameters

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret (moto dummy)
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


# No provisioning delay: these tests are about the data plane's plumbing (test_blue_green: timings).
INSTANT = EndpointClock(speedup=1000.0, provisioning_s=0.0)


@pytest.fixture
def plane(aws: None, runtime: FakeRuntime) -> Iterator[DataPlane]:
    with DataPlane(runtime, clock=INSTANT) as attached:
        yield attached
    runtime.release.set()


@pytest.fixture
def sm(plane: DataPlane) -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def wait_for(check: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def training_request(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "img:latest",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "validation:roc_auc", "Regex": "validation:roc_auc=([0-9.]+);"}],
        },
        "RoleArn": ROLE,
        "HyperParameters": {"C": "1.0"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/data/train/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/runs/r1/training"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        **overrides,
    }


def deploy_model(sm: Any, name: str, model_url: str) -> str:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "img:latest", "ModelDataUrl": model_url},
    )
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    return f"{name}-config"


def in_service(sm: Any, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: (
            (d := sm.describe_endpoint(EndpointName=name))["EndpointStatus"] not in ("Creating", "Updating")
            and d
        )
    )


def invoke(name: str, body: bytes = b"1,2") -> dict[str, Any]:
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    reply = client.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv")
    return json.loads(reply["Body"].read())


def test_training_job_is_in_progress_until_the_runtime_finishes(sm: Any, runtime: FakeRuntime) -> None:
    sm.create_training_job(**training_request("job-1"))
    described = sm.describe_training_job(TrainingJobName="job-1")
    assert described["TrainingJobStatus"] == "InProgress"
    assert "ModelArtifacts" not in described
    runtime.release.set()
    done = wait_for(
        lambda: (
            (d := sm.describe_training_job(TrainingJobName="job-1"))["TrainingJobStatus"] != "InProgress"
            and d
        )
    )
    assert done["TrainingJobStatus"] == "Completed"
    assert done["ModelArtifacts"]["S3ModelArtifacts"] == "s3://b/runs/r1/training/job-1/output/model.tar.gz"
    assert {m["MetricName"]: m["Value"] for m in done["FinalMetricDataList"]}[
        "validation:roc_auc"
    ] == pytest.approx(0.1)
    # The runtime saw the request as sent, MetricDefinitions included (moto replaces them).
    assert (
        runtime.training_requests[0]["AlgorithmSpecification"]["MetricDefinitions"][0]["Name"]
        == "validation:roc_auc"
    )


def test_failed_training_reports_failure_reason(sm: Any, runtime: FakeRuntime) -> None:
    runtime.fail_training = True
    runtime.release.set()
    sm.create_training_job(**training_request("job-bad"))
    done = wait_for(
        lambda: (
            (d := sm.describe_training_job(TrainingJobName="job-bad"))["TrainingJobStatus"] != "InProgress"
            and d
        )
    )
    assert done["TrainingJobStatus"] == "Failed"
    assert done["FailureReason"] == "AlgorithmError: bad hyperparameter C"
    assert "ModelArtifacts" not in done


def test_processing_job_status_and_environment(sm: Any, runtime: FakeRuntime) -> None:
    runtime.release.set()
    for name, outcome in (("validate-ok", "ok"), ("validate-bad", "fail")):
        sm.create_processing_job(
            ProcessingJobName=name,
            RoleArn=ROLE,
            AppSpecification={"ImageUri": "img:latest", "ContainerEntrypoint": ["validate"]},
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}
            },
            Environment={"OUTCOME": outcome},
        )
    ok = wait_for(
        lambda: (
            (d := sm.describe_processing_job(ProcessingJobName="validate-ok"))["ProcessingJobStatus"]
            != "InProgress"
            and d
        )
    )
    bad = wait_for(
        lambda: (
            (d := sm.describe_processing_job(ProcessingJobName="validate-bad"))["ProcessingJobStatus"]
            != "InProgress"
            and d
        )
    )
    assert (ok["ProcessingJobStatus"], bad["ProcessingJobStatus"]) == ("Completed", "Failed")
    assert bad["FailureReason"] == "AlgorithmError: schema violation"
    assert ok["Environment"] == {"OUTCOME": "ok"}


def test_endpoint_create_invoke_update_delete(sm: Any, runtime: FakeRuntime) -> None:
    sm.create_endpoint(EndpointName="ep", EndpointConfigName=deploy_model(sm, "m1", "s3://b/m1.tar.gz"))
    assert in_service(sm, "ep")["EndpointStatus"] == "InService"
    assert invoke("ep") == {"model": "s3://b/m1.tar.gz", "echo": "1,2"}

    arn = sm.update_endpoint(
        EndpointName="ep", EndpointConfigName=deploy_model(sm, "m2", "s3://b/m2.tar.gz")
    )["EndpointArn"]
    assert arn.endswith(":endpoint/ep")
    described = in_service(sm, "ep")
    assert described["EndpointConfigName"] == "m2-config"
    assert "FailureReason" not in described
    assert invoke("ep")["model"] == "s3://b/m2.tar.gz"
    assert runtime.stopped == ["s3://b/m1.tar.gz"]  # the old fleet stops after the switch

    sm.delete_endpoint(EndpointName="ep")
    assert runtime.stopped == ["s3://b/m1.tar.gz", "s3://b/m2.tar.gz"]
    with pytest.raises(ClientError, match="not found"):
        invoke("ep")


def test_failed_update_keeps_the_previous_model_serving(sm: Any, runtime: FakeRuntime) -> None:
    sm.create_endpoint(EndpointName="ep", EndpointConfigName=deploy_model(sm, "m1", "s3://b/m1.tar.gz"))
    in_service(sm, "ep")
    runtime.fail_models.add("s3://b/broken.tar.gz")
    sm.update_endpoint(
        EndpointName="ep", EndpointConfigName=deploy_model(sm, "broken", "s3://b/broken.tar.gz")
    )
    described = in_service(sm, "ep")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "m1-config"
    assert "broken-config" in described["FailureReason"]
    assert invoke("ep")["model"] == "s3://b/m1.tar.gz"


def test_endpoint_errors_match_aws(sm: Any, runtime: FakeRuntime) -> None:
    with pytest.raises(ClientError) as missing:
        sm.update_endpoint(EndpointName="nope", EndpointConfigName="x")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    config = deploy_model(sm, "m1", "s3://b/m1.tar.gz")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName=config)
    in_service(sm, "ep")
    with pytest.raises(ClientError, match="already existing"):
        sm.create_endpoint(EndpointName="ep", EndpointConfigName=config)
    with pytest.raises(ClientError) as model_error:
        invoke("ep", b"bad")
    assert model_error.value.response["Error"]["Code"] == "ModelError"
    assert model_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_endpoint_that_never_gets_healthy_is_failed(sm: Any, runtime: FakeRuntime) -> None:
    runtime.fail_models.add("s3://b/broken.tar.gz")
    sm.create_endpoint(
        EndpointName="ep", EndpointConfigName=deploy_model(sm, "broken", "s3://b/broken.tar.gz")
    )
    described = in_service(sm, "ep")
    assert described["EndpointStatus"] == "Failed"
    assert "/ping" in described["FailureReason"]


def test_tuning_runs_training_jobs_and_picks_the_best(sm: Any, runtime: FakeRuntime) -> None:
    runtime.release.set()
    base = training_request("unused")
    definition = {
        k: base[k]
        for k in (
            "AlgorithmSpecification",
            "RoleArn",
            "InputDataConfig",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
        )
    }
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="hpo-1",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:roc_auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "C", "MinValue": "0.01", "MaxValue": "10", "ScalingType": "Logarithmic"}
                ]
            },
        },
        TrainingJobDefinition={**definition, "StaticHyperParameters": {"max_iter": "100"}},
    )
    done = wait_for(
        lambda: (
            (d := sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="hpo-1"))[
                "HyperParameterTuningJobStatus"
            ]
            != "InProgress"
            and d
        )
    )
    assert done["HyperParameterTuningJobStatus"] == "Completed"
    assert done["TrainingJobStatusCounters"]["Completed"] == 4
    tried = {r["TrainingJobName"]: float(r["HyperParameters"]["C"]) for r in runtime.training_requests}
    assert len(tried) == 4 and all(
        r["HyperParameters"]["max_iter"] == "100" for r in runtime.training_requests
    )
    best = done["BestTrainingJob"]
    assert best["TrainingJobName"] == max(tried, key=tried.get)
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
        min(max(tried.values()), 10) / 10, abs=1e-6
    )
    child = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert child["TrainingJobStatus"] == "Completed"
    assert child["ModelArtifacts"]["S3ModelArtifacts"].endswith(
        f"/{best['TrainingJobName']}/output/model.tar.gz"
    )


def test_detach_restores_moto(aws: None) -> None:
    runtime = FakeRuntime()
    runtime.release.set()
    with DataPlane(runtime):
        pass
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_training_job(**training_request("after"))
    assert (
        sm.describe_training_job(TrainingJobName="after")["TrainingJobStatus"] == "Completed"
    )  # moto's own behaviour
    assert runtime.training_requests == []


def test_parse_metrics_uses_definitions_and_keeps_the_last_value() -> None:
    logs = "validation:roc_auc=0.5;\nvalidation:roc_auc=0.75; train:f1=1e-1;\nauc is 0.8\n"
    assert parse_metrics(logs) == {"validation:roc_auc": 0.75, "train:f1": 0.1}
    assert parse_metrics(logs, [{"Name": "auc", "Regex": r"auc is ([0-9.]+)"}])["auc"] == 0.8


def test_sample_hyperparameters_stays_in_range_and_is_reproducible() -> None:
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "C", "MinValue": "0.001", "MaxValue": "100", "ScalingType": "Logarithmic"}
        ],
        "IntegerParameterRanges": [{"Name": "max_iter", "MinValue": "10", "MaxValue": "20"}],
        "CategoricalParameterRanges": [{"Name": "class_weight", "Values": ["none", "balanced"]}],
    }
    sets = sample_hyperparameters(ranges, 20)
    assert sets == sample_hyperparameters(ranges, 20)
    assert all(0.001 <= float(s["C"]) <= 100 and 10 <= int(s["max_iter"]) <= 20 for s in sets)
    assert {s["class_weight"] for s in sets} == {"none", "balanced"}
    assert sample_hyperparameters(ranges, 5, "Grid") == [
        {"class_weight": "none"},
        {"class_weight": "balanced"},
    ]


def finished_job(sm: Any, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: (
            (d := sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] != "InProgress" and d
        )
    )


def test_training_logs_go_to_cloudwatch_under_sagemaker_names(sm: Any, runtime: FakeRuntime) -> None:
    runtime.release.set()
    sm.create_training_job(**training_request("logged"))
    described = finished_job(sm, "logged")
    # What `aws logs tail /aws/sagemaker/TrainingJobs --log-stream-name-prefix logged` reads.
    logs = boto3.client("logs", region_name=REGION)
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="logged/"
    )
    [stream] = streams["logStreams"]
    assert stream["logStreamName"].startswith("logged/algo-1-")
    events = logs.filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNames=[stream["logStreamName"]]
    )
    assert [e["message"] for e in events["events"]] == [
        "epoch 1",
        "validation:roc_auc=0.100000; validation:accuracy=0.9;",
    ]
    assert described["TrainingTimeInSeconds"] >= 1
    assert described["BillableTimeInSeconds"] == described["TrainingTimeInSeconds"]
    assert described["TrainingStartTime"] <= described["TrainingEndTime"]


def test_processing_logs_go_to_cloudwatch(sm: Any, runtime: FakeRuntime) -> None:
    runtime.release.set()
    runtime.processing_logs = "checked 3 columns\ndrift: none\n"
    sm.create_processing_job(
        ProcessingJobName="validate-1",
        RoleArn=ROLE,
        AppSpecification={"ImageUri": "img:latest", "ContainerEntrypoint": ["validate"]},
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
        Environment={"OUTCOME": "ok"},
    )
    wait_for(
        lambda: (
            sm.describe_processing_job(ProcessingJobName="validate-1")["ProcessingJobStatus"] == "Completed"
        )
    )
    logs = boto3.client("logs", region_name=REGION)
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs")["logStreams"]
    assert [s["logStreamName"].split("/")[0] for s in streams] == ["validate-1"]
    events = logs.get_log_events(
        logGroupName="/aws/sagemaker/ProcessingJobs", logStreamName=streams[0]["logStreamName"]
    )
    assert [e["message"] for e in events["events"]] == ["checked 3 columns", "drift: none"]


def test_describe_endpoint_carries_deployed_images(sm: Any, runtime: FakeRuntime) -> None:
    sm.create_endpoint(EndpointName="ep", EndpointConfigName=deploy_model(sm, "m1", "s3://b/m1.tar.gz"))
    [variant] = in_service(sm, "ep")["ProductionVariants"]
    [image] = variant["DeployedImages"]
    assert image["SpecifiedImage"] == image["ResolvedImage"] == "img:latest"
    assert variant["CurrentInstanceCount"] == 1


def test_a_hanging_invocation_fails_within_the_timeout_naming_the_endpoint(
    sm: Any, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_plane, "INVOKE_TIMEOUT", 1)
    sm.create_endpoint(EndpointName="slow-ep", EndpointConfigName=deploy_model(sm, "m1", "s3://b/m1.tar.gz"))
    in_service(sm, "slow-ep")
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    started = time.monotonic()
    with pytest.raises(ClientError) as caught:
        client.invoke_endpoint(EndpointName="slow-ep", Body=b"hang", ContentType="text/csv")
    assert time.monotonic() - started < 10
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "Endpoint slow-ep: the model container did not answer /invocations within 1 s" in str(caught.value)


def test_a_failed_tuning_job_carries_its_training_jobs_reasons(sm: Any, runtime: FakeRuntime) -> None:
    runtime.release.set()
    runtime.fail_training = True
    base = training_request("unused")
    definition = {
        k: base[k]
        for k in (
            "AlgorithmSpecification",
            "RoleArn",
            "InputDataConfig",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
        )
    }
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="hpo-bad",
        HyperParameterTuningJobConfig={
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:roc_auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "C", "MinValue": "0.1", "MaxValue": "1"}]
            },
        },
        TrainingJobDefinition=definition,
    )
    done = wait_for(
        lambda: (
            (d := sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="hpo-bad"))[
                "HyperParameterTuningJobStatus"
            ]
            != "InProgress"
            and d
        )
    )
    assert done["HyperParameterTuningJobStatus"] == "Failed"
    assert done["FailureReason"].startswith(
        "All 2 training jobs failed or reported no validation:roc_auc: hpo-bad-001-"
    )
    assert done["FailureReason"].count("AlgorithmError: bad hyperparameter C") == 2
    assert done["TrainingJobStatusCounters"]["NonRetryableError"] == 2


# -- tuning as a pure search (no moto) --------------------------------------------------------------
def test_best_trial_follows_the_objective_direction_and_skips_failures() -> None:
    trials = [
        tuning.Trial("a", {"C": "1"}, True, 0.7),
        tuning.Trial("b", {"C": "2"}, True, 0.9),
        tuning.Trial("c", {"C": "3"}, False, None, "AlgorithmError: diverged"),
        tuning.Trial("d", {"C": "4"}, True, None),
    ]
    assert tuning.best(trials, maximize=True).job_name == "b"
    assert tuning.best(trials, maximize=False).job_name == "a"
    assert tuning.best(trials[2:], maximize=True) is None
    assert tuning.counters(trials, in_progress=1) == {
        "Completed": 2,
        "InProgress": 1,
        "RetryableError": 0,
        "NonRetryableError": 2,
        "Stopped": 0,
    }
    assert tuning.failure_reason(trials[2:], "validation:rmse") == (
        "All 2 training jobs failed or reported no validation:rmse: c: AlgorithmError: diverged; "
        "d: no validation:rmse in its logs"
    )
