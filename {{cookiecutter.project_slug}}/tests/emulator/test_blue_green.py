"""UpdateEndpoint's blue/green deployment with auto-rollback, emulated: the data plane with a fake runtime.

The rollback alarms are the template's own (infra/template.yaml, created as the control plane
creates them); the deploy CLI's ``update-endpoint`` runs against the emulation, not a stub.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from fake_runtime import FakeRuntime
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import cfn, cli
from {{ cookiecutter.package_name }}_deploy.endpoint import blue_green_config
from {{ cookiecutter.package_name }}_emulator import alarms
from {{ cookiecutter.package_name }}_emulator.blue_green import DeploymentTimer, EndpointClock, FleetFault
from {{ cookiecutter.package_name }}_emulator.control_plane import create_template_resource
from {{ cookiecutter.package_name }}_emulator.data_plane import DataPlane

REGION = settings.AWS_REGION
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/hosting"
ENDPOINT = settings.ENDPOINT_NAME
ERRORS_ALARM, LATENCY_ALARM = f"{settings.STACK_NAME}-endpoint-5xx", f"{settings.STACK_NAME}-endpoint-latency"
# SageMaker's times 240x faster; with production traffic (``paced``) 60x: one AWS minute (the
# alarms' period) is then 1 s, and the 5xx alarm's 20 invocations a minute need 20 a second, which
# the traffic threads below exceed even on a busy machine.
FAST, PACED = 240.0, 60.0
SHORT_BAKE = 180  # AWS seconds: three alarm periods


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, project_root: Path) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret (moto dummy)
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        template = cfn.load_template(project_root / "infra" / "template.yaml")
        resolver = cfn.Intrinsics(
            template,
            stack_name=settings.STACK_NAME,
            resources={},
            parameters={k: str(v.get("Default", "")) for k, v in template["Parameters"].items()},
            region=REGION,
            account=ACCOUNT,
            client=lambda service: boto3.client(service, region_name=REGION),
        )
        client = lambda service: boto3.client(service, region_name=REGION)  # noqa: E731
        for logical_id in ("EndpointErrorsAlarm", "EndpointLatencyAlarm"):
            create_template_resource(client, template["Resources"][logical_id], resolver)
        yield


@pytest.fixture
def runtime() -> FakeRuntime:
    fake = FakeRuntime()
    fake.release.set()
    return fake


@pytest.fixture
def plane(aws: None, runtime: FakeRuntime) -> Iterator[DataPlane]:
    with DataPlane(runtime, clock=EndpointClock(FAST, provisioning_s=60.0, rollback_s=60.0)) as attached:
        yield attached


@pytest.fixture
def paced(plane: DataPlane, serving: str) -> None:
    """Endpoint times at 60x from here on (before any invocation: metrics are stamped with this clock)."""
    plane.clock = EndpointClock(PACED, provisioning_s=60.0, rollback_s=60.0)


@pytest.fixture
def sm(plane: DataPlane) -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def config(sm: Any, name: str, model_url: str, image: str = "img:1") -> str:
    sm.create_model(
        ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image, "ModelDataUrl": model_url}
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


def follow(sm: Any, timeout: float = 30) -> tuple[list[str], dict[str, Any]]:
    """Every status DescribeEndpoint showed until the endpoint settled, and the last description."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sm.describe_endpoint(EndpointName=ENDPOINT)
        if not seen or seen[-1] != described["EndpointStatus"]:
            seen.append(described["EndpointStatus"])
        if described["EndpointStatus"] in ("InService", "Failed") and len(seen) > 1:
            return seen, described
        time.sleep(0.02)
    raise AssertionError(f"endpoint still changing: {seen}")


@pytest.fixture
def serving(sm: Any) -> str:
    """The endpoint, InService on model v1."""
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config(sm, "v1", "s3://b/v1.tar.gz"))
    seen, described = follow(sm)
    assert seen == ["Creating", "InService"] and described["EndpointConfigName"] == "v1-config"
    return "v1-config"


class Traffic:
    """Production clients: two threads calling InvokeEndpoint in a loop while the test runs."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.answers: list[int] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        client = boto3.client("sagemaker-runtime", region_name=REGION)
        while not self.stop.is_set():
            try:
                client.invoke_endpoint(EndpointName=ENDPOINT, Body=b"1,2", ContentType="text/csv")
                self.answers.append(200)
            except ClientError as error:
                self.answers.append(error.response["ResponseMetadata"]["HTTPStatusCode"])

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def answering_model(name: str = ENDPOINT) -> str:
    client = boto3.client("sagemaker-runtime", region_name=REGION)
    reply = client.invoke_endpoint(EndpointName=name, Body=b"1,2", ContentType="text/csv")
    return json.loads(reply["Body"].read())["model"]


def alarm_state(name: str) -> str:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    return cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def deployment(
    wait: int = SHORT_BAKE, alarms_: tuple[str, ...] = (ERRORS_ALARM, LATENCY_ALARM)
) -> dict[str, Any]:
    chosen = blue_green_config(alarms_)  # the deploy CLI's (and the state machine's) DeploymentConfig
    chosen["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] = wait
    return chosen


# ------------------------------------------------------------------ a good update


def test_update_bakes_then_switches_and_keeps_what_aws_shows(
    sm: Any, serving: str, runtime: FakeRuntime, paced: None
) -> None:
    new = config(sm, "v2", "s3://b/v2.tar.gz")
    requested = deployment()
    with Traffic():
        sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=new, DeploymentConfig=requested)
        during = sm.describe_endpoint(EndpointName=ENDPOINT)
        seen, done = follow(sm)
    assert during["EndpointStatus"] == "Updating" and during["EndpointConfigName"] == serving
    assert during["PendingDeploymentSummary"]["EndpointConfigName"] == new
    assert seen == ["Updating", "InService"]
    assert done["EndpointConfigName"] == new and "FailureReason" not in done
    assert "PendingDeploymentSummary" not in done
    assert done["LastDeploymentConfig"] == requested
    assert answering_model() == "s3://b/v2.tar.gz"
    assert runtime.stopped == ["s3://b/v1.tar.gz"]  # the old fleet ends after the baking period
    assert alarm_state(ERRORS_ALARM) == "OK"


def test_the_baking_period_holds_the_old_fleet(sm: Any, serving: str, plane: DataPlane) -> None:
    sm.update_endpoint(
        EndpointName=ENDPOINT,
        EndpointConfigName=config(sm, "v2", "s3://b/v2.tar.gz"),
        DeploymentConfig=deployment(300),
    )
    started = time.monotonic()
    seen, _ = follow(sm)
    elapsed = time.monotonic() - started
    # Provisioning (60 s) and TerminationWaitInSeconds (300 s) at 240x: at least 1.5 s of Updating.
    assert elapsed >= plane.clock.real(60 + 300) * 0.95, elapsed
    assert seen == ["Updating", "InService"]


# ------------------------------------------------------------------ rollbacks


def test_5xx_during_baking_fires_the_alarm_and_rolls_back(
    sm: Any, serving: str, runtime: FakeRuntime, paced: None
) -> None:
    runtime.erroring_models.add("s3://b/v2.tar.gz")  # loads and answers /ping, then 500 on every request
    requested = deployment(600)
    with Traffic() as traffic:
        sm.update_endpoint(
            EndpointName=ENDPOINT,
            EndpointConfigName=config(sm, "v2", "s3://b/v2.tar.gz"),
            DeploymentConfig=requested,
        )
        seen, done = follow(sm)
    assert seen == ["Updating", "RollingBack", "InService"]
    assert done["EndpointConfigName"] == serving
    assert f"alarm {ERRORS_ALARM} went to ALARM during the baking period" in done["FailureReason"]
    assert done["LastDeploymentConfig"] == requested
    assert alarm_state(ERRORS_ALARM) == "ALARM"
    assert 424 in traffic.answers  # clients saw the new fleet's errors (ModelError) before the rollback
    assert answering_model() == "s3://b/v1.tar.gz"
    assert runtime.stopped == ["s3://b/v2.tar.gz"]


def test_injected_5xx_fault_is_caught_by_the_same_alarm(
    sm: Any, serving: str, plane: DataPlane, paced: None
) -> None:
    plane.inject(FleetFault.INVOCATIONS_5XX)
    with Traffic():
        sm.update_endpoint(
            EndpointName=ENDPOINT,
            EndpointConfigName=config(sm, "v2", "s3://b/v2.tar.gz"),
            DeploymentConfig=deployment(600),
        )
        seen, done = follow(sm)
    assert seen == ["Updating", "RollingBack", "InService"] and done["EndpointConfigName"] == serving
    assert ERRORS_ALARM in done["FailureReason"]


def test_no_traffic_means_no_alarm_so_a_failing_model_stays(
    sm: Any, serving: str, runtime: FakeRuntime
) -> None:
    # As on AWS: the 5xx alarm needs 20 invocations a minute; a model nobody calls is not judged.
    runtime.erroring_models.add("s3://b/v2.tar.gz")
    sm.update_endpoint(
        EndpointName=ENDPOINT,
        EndpointConfigName=config(sm, "v2", "s3://b/v2.tar.gz"),
        DeploymentConfig=deployment(),
    )
    _, done = follow(sm)
    assert done["EndpointConfigName"] == "v2-config" and "FailureReason" not in done


@pytest.mark.parametrize("failure", ["ping", "image"])
def test_a_fleet_that_does_not_come_up_leaves_the_old_one(
    sm: Any, serving: str, runtime: FakeRuntime, failure: str
) -> None:
    if failure == "ping":
        runtime.fail_models.add("s3://b/v2.tar.gz")
    else:
        runtime.missing_images.add("img:missing")
    new = config(sm, "v2", "s3://b/v2.tar.gz", image="img:missing" if failure == "image" else "img:1")
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=new, DeploymentConfig=deployment())
    seen, done = follow(sm)
    assert seen == ["Updating", "InService"]  # traffic never moved: no RollingBack
    assert done["EndpointConfigName"] == serving
    assert done["FailureReason"].startswith(f"Update to {new} failed: ")
    assert ("/ping" if failure == "ping" else "Failed to pull the image img:missing") in done["FailureReason"]
    assert answering_model() == "s3://b/v1.tar.gz"


def test_a_deployment_longer_than_its_maximum_execution_time_rolls_back(
    sm: Any, serving: str, plane: DataPlane
) -> None:
    plane.clock = EndpointClock(speedup=600.0, provisioning_s=60.0, rollback_s=60.0)
    too_long = deployment(590)  # 60 s provisioning + 590 s baking > 600 s
    too_long["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] = 600
    sm.update_endpoint(
        EndpointName=ENDPOINT,
        EndpointConfigName=config(sm, "v2", "s3://b/v2.tar.gz"),
        DeploymentConfig=too_long,
    )
    seen, done = follow(sm)
    assert seen == ["Updating", "RollingBack", "InService"] and done["EndpointConfigName"] == serving
    assert "exceeded MaximumExecutionTimeoutInSeconds (600 s)" in done["FailureReason"]


def test_a_deployments_real_work_is_not_stretched_by_the_speedup() -> None:
    timer = DeploymentTimer(EndpointClock(speedup=1_000_000.0))
    assert timer.wait(3600, threading.Event())  # an AWS hour of waiting: 3.6 ms here
    time.sleep(0.2)  # starting a container: real work, real time
    assert 3600.2 <= timer.elapsed_s() < 3601


# ------------------------------------------------------------------ what UpdateEndpoint refuses


def test_an_alarm_that_does_not_exist_is_refused(sm: Any, serving: str) -> None:
    with pytest.raises(ClientError) as refused:
        sm.update_endpoint(
            EndpointName=ENDPOINT,
            EndpointConfigName=config(sm, "v2", "s3://b/v2.tar.gz"),
            DeploymentConfig=deployment(alarms_=(ERRORS_ALARM, "no-such-alarm")),
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "no-such-alarm" in refused.value.response["Error"]["Message"]
    described = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", serving)


def test_a_baking_period_out_of_range_is_refused(sm: Any, serving: str) -> None:
    # botocore checks minimums client-side; Step Functions' SDK integrations do not (nor maximums).
    unchecked = boto3.client("sagemaker", region_name=REGION, config=Config(parameter_validation=False))
    for member, value, words in (
        ("TerminationWaitInSeconds", 3601, "less than or equal to 3600"),
        ("MaximumExecutionTimeoutInSeconds", 300, "greater than or equal to 600"),
    ):
        blue_green = deployment()
        blue_green["BlueGreenUpdatePolicy"][member] = value
        with pytest.raises(ClientError, match=words):
            unchecked.update_endpoint(
                EndpointName=ENDPOINT,
                EndpointConfigName=config(sm, f"v{value}", "s3://b/v2.tar.gz"),
                DeploymentConfig=blue_green,
            )
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "InService"


# ------------------------------------------------------------------ the deploy CLI


def test_deploy_cli_reports_a_rollback_as_a_failure(
    sm: Any, serving: str, runtime: FakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime.missing_images.add("registry/repo:broken")
    code = cli.main(["update-endpoint", "--image-uri", "registry/repo:broken", "--poll-seconds", "0.05"])
    error = capsys.readouterr().err
    assert code == 1
    assert f"endpoint {ENDPOINT} rolled back: it still runs {serving}" in error
    assert "Failed to pull the image registry/repo:broken" in error


def test_deploy_cli_refuses_missing_alarms_in_one_line(
    sm: Any, serving: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["update-endpoint", "--image-uri", "img:2", "--alarm", "gone", "--poll-seconds", "0.05"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and error.startswith("ERROR: ") and "ValidationException" in error and "gone" in error
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == serving


# ------------------------------------------------------------------ the alarms themselves


def test_the_template_error_rate_alarm_needs_volume_and_two_bad_minutes(aws: None) -> None:
    spec = alarms.AlarmSpec.of_moto(cloudwatch_backends[ACCOUNT][REGION].alarms[ERRORS_ALARM])
    metrics, start = alarms.Metrics(), 1_800_000_000.0 - 1_800_000_000.0 % 60

    def minute(index: int, calls: int, errors: int) -> None:
        for call in range(calls):
            status = 500 if call < errors else 200
            metrics.record(
                ENDPOINT, "AllTraffic", at=start + index * 60 + call * 0.1, status=status, latency_us=1000
            )

    minute(0, 19, 19)  # all errors, but below the 20-invocation floor: 0 %
    minute(1, 40, 4)  # 10 % > 5 %
    assert alarms.evaluate(spec, metrics, start + 120).value == "OK"  # one bad minute of two
    minute(2, 40, 3)  # 7.5 %
    state = alarms.evaluate(spec, metrics, start + 180)
    assert state.value == "ALARM" and "[10, 7.5]" in state.reason
    minute(3, 100, 5)  # exactly 5 %: not greater than the threshold
    assert alarms.evaluate(spec, metrics, start + 240).value == "OK"


def test_an_alarm_the_emulator_cannot_evaluate_is_reported_not_passed() -> None:
    spec = alarms.AlarmSpec(
        "anomaly",
        (
            alarms.Query(
                "m",
                "",
                alarms.NAMESPACE,
                "Invocations",
                (("EndpointName", "e"), ("VariantName", "v")),
                "Sum",
                return_data=False,
            ),
            alarms.Query("band", "ANOMALY_DETECTION_BAND(m, 2)"),
        ),
        "GreaterThanThreshold",
        1,
        1,
        1,
        "notBreaching",
    )
    with pytest.raises(alarms.UnsupportedAlarm, match="ANOMALY_DETECTION_BAND"):
        alarms.evaluate(spec, alarms.Metrics(), 600.0)


# ------------------------------------------------------------------ the docker runtime's images


@pytest.mark.docker
def test_docker_runtime_finds_images_that_do_not_exist(aws: None) -> None:
    from types import SimpleNamespace

    from {{ cookiecutter.package_name }}_emulator.runtimes.docker import DockerRuntime

    runtime = SimpleNamespace(endpoint_url=None, region=REGION)  # only what image_problem reads
    assert "no such local image" in DockerRuntime.image_problem(runtime, "never-built-here:missing")  # type: ignore[arg-type]
    ecr = boto3.client("ecr", region_name=REGION)
    uri = ecr.create_repository(repositoryName="repo")["repository"]["repositoryUri"]
    assert f"Failed to pull the image {uri}:abc" in DockerRuntime.image_problem(runtime, f"{uri}:abc")  # type: ignore[arg-type]
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    )
    ecr.put_image(repositoryName="repo", imageManifest=manifest, imageTag="abc")
    assert DockerRuntime.image_problem(runtime, f"{uri}:abc") is None  # type: ignore[arg-type]
