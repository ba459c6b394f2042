"""The docker runtime: the project's real image run by SageMaker Python SDK v2 local mode.

The only module that imports the ``sagemaker`` SDK. Local mode does the SageMaker work (download
channels from moto's S3, write /opt/ml/input/config, docker-compose up, tar and upload the model,
serve /ping and /invocations on a host port); this adapter wraps what it lacks or does
differently from SageMaker:

- its create_* calls block and raise RuntimeError with no status or reason: the adapter captures
  the container output and /opt/ml/output/failure (read before local mode deletes the host dirs)
  and returns a JobResult with SageMaker's ``AlgorithmError: <failure>``;
- it takes fewer request fields and only ``local`` instance types: requests are rewritten;
- processing and serving containers get no endpoint variables: moto's address is added;
- its health check polls every 5 s and waits 120 s for a dead container: replaced by a 0.25 s poll
  that gives up as soon as the compose process has exited;
- it serves every endpoint on one configured port: each endpoint gets its own session and port,
  so an update can start the new container while the old one still serves (no update_endpoint
  or tuning in local mode: the backend emulates both on top of this runtime);
- its serving volume keeps the downloaded model.tar.gz next to the extracted files: removed, so
  /opt/ml/model holds what SageMaker puts there;
- its job folders are mkdtemp's 0700: made readable for images that drop root (ours does);
- it leaves containers, the ``sagemaker-local`` network and folders behind: containers carry a
  label and are removed by it, the rest on close().

The local-mode functions are replaced through ``patches.Patches`` (``install``/``uninstall``, pinned
to the SDK version), installed when a DockerRuntime is made and undone with every other patch when
the control plane stops; what each job thread printed is kept in ``_captures`` by thread id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from {{ cookiecutter.package_name }}.settings import PROJECT_SLUG

from .. import patches, principals
from ..patches import Patches
from . import (
    DUMMY_CREDENTIALS,
    Endpoint,
    JobResult,
    Runtime,
    RuntimeUnavailable,
    aws_environment,
    docker_daemon_answers,
    free_port,
    image_exists,
    log_tail,
)
from .process import S3, split_s3_uri

# Offline: no metadata-service probes when the SDK looks for credentials, no v3 banner.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from sagemaker.local import LocalSession, entities, image
from sagemaker.local.local_session import LocalSagemakerClient

# The SDK logs every config lookup and compose file at INFO; the emulator reports what matters.
logging.getLogger("sagemaker").setLevel(logging.WARNING)
logging.getLogger("sagemaker.config").setLevel(logging.WARNING)

LABEL_RUN = f"{PROJECT_SLUG}.local-run"
LABEL_JOB = f"{PROJECT_SLUG}.local-job"
NETWORK = "sagemaker-local"  # the compose network local mode creates (and never removes)
HEALTH_TIMEOUT = 120.0  # local mode's own limit
TELEMETRY_OPT_OUT = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
_serving: dict[int, str] = {}  # serving port -> local endpoint name, for the health check below
PATCHES = Patches("sagemaker-local-mode", pins={"sagemaker": "2.257.7"})


@dataclass
class Capture:
    """What one local-mode thread (a job's or a serving container's) printed and left behind."""

    lines: list[str] = field(default_factory=list)
    failure_text: str = ""


_captures: dict[int, Capture] = {}  # thread ident -> its capture (a job thread or a hosting thread)
_captures_lock = threading.Lock()


def capture_of(thread: threading.Thread | None = None) -> Capture:
    ident = (thread or threading.current_thread()).ident or 0
    with _captures_lock:
        return _captures.setdefault(ident, Capture())


def _captured() -> list[str]:
    """Output lines of the compose process run by the current thread (a job thread or a server)."""
    return capture_of().lines


def _stream_output(process: subprocess.Popen[bytes]) -> int:
    """Local mode's ``_stream_output``, keeping the lines (metrics, errors) instead of only printing."""
    lines = _captured()
    for raw in iter(process.stdout.readline, b""):  # type: ignore[union-attr]
        lines.append(raw.decode("utf-8", "replace"))
    code = process.wait()
    # A serving container that dies is reported by the health check below; raising in local mode's
    # hosting thread would only print an unhandled-thread traceback.
    if code not in (0, 130) and not isinstance(threading.current_thread(), image._HostingContainer):
        raise RuntimeError(f"Failed to run: {process.args}. Process exited with code: {code}")
    return code


_original_cleanup = image._SageMakerContainer._cleanup


def _cleanup(self: Any, dirs_to_delete: Any = None) -> None:
    """Keep /opt/ml/output/failure of each host before local mode deletes the host folders."""
    for host in self.hosts:
        failure = Path(self.container_root, host, "output", "failure")
        if failure.is_file():
            capture_of().failure_text = failure.read_text(errors="replace").strip()
    _original_cleanup(self, dirs_to_delete)


_original_compose = image._SageMakerContainer._compose


def _compose(self: Any, detached: bool = False) -> list[str]:
    """Multi-host training waits for every host. Local mode runs ``compose up
    --abort-on-container-exit``, so the first container to exit stops the others: a worker that
    finishes its shard before the leader has saved the model (only the leader writes it) would
    leave an empty model.tar.gz and a "Completed" job. Without the flag compose returns when all
    hosts have exited; a host that failed is still reported through its failure file
    (``_cleanup`` keeps it, ``_run_job`` fails the job on it)."""
    command = _original_compose(self, detached)
    if not detached and len(getattr(self, "hosts", ())) > 1:
        command = [part for part in command if part != "--abort-on-container-exit"]
    return command


_original_compose_file = image._SageMakerContainer._generate_compose_file


def _generate_compose_file(
    self: Any, command: str, additional_volumes: Any = None, additional_env_vars: Any = None
) -> Any:
    """Make the job's folders readable before the containers start. Local mode makes them with
    mkdtemp (mode 0700, root), so a container that drops to an unprivileged user (ours does) could
    not read its channels, config or model. SageMaker's own mounts are readable."""
    for root in [self.container_root, *(volume.host_dir for volume in additional_volumes or [])]:
        for folder, _dirs, _files in os.walk(root):
            os.chmod(folder, 0o755)
    return _original_compose_file(self, command, additional_volumes, additional_env_vars)


def _wait_for_serving_container(serving_port: int) -> None:
    """Poll /ping every 0.25 s; stop waiting as soon as the serving compose process has exited."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://localhost:{serving_port}/ping", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        endpoint = LocalSagemakerClient._endpoints.get(_serving.get(serving_port, ""))
        hosting = getattr(getattr(endpoint, "container", None), "container", None)
        if hosting is not None and hosting.process is not None and hosting.process.poll() is not None:
            raise RuntimeError(
                f"the serving container exited (code {hosting.process.returncode}) before /ping answered"
            )
        time.sleep(0.25)
    raise RuntimeError(f"/ping on port {serving_port} did not answer 200 within {HEALTH_TIMEOUT:.0f} s")


_original_serving_volumes = image._SageMakerContainer._prepare_serving_volumes


def _prepare_serving_volumes(self: Any, model_location: str) -> Any:
    """Leave only the model's files in /opt/ml/model, as SageMaker does: it extracts model.tar.gz
    there ("How SageMaker hosting loads your model artifacts"); local mode extracts next to the
    downloaded archive and mounts both, and a model loader that allows only known files refuses it."""
    volumes = _original_serving_volumes(self, model_location)
    for volume in volumes:
        if getattr(volume, "container_dir", "") == "/opt/ml/model":
            for archive in Path(volume.host_dir).glob("*.tar.gz"):
                archive.unlink()
    return volumes


def install() -> None:
    """Local mode's output capture, failure file, folder modes and health check (reversible)."""
    if PATCHES.active:
        return
    PATCHES.check_pins()
    PATCHES.replace(image, "_stream_output", _stream_output)
    PATCHES.replace(image._SageMakerContainer, "_cleanup", _cleanup)
    PATCHES.replace(image._SageMakerContainer, "_generate_compose_file", _generate_compose_file)
    PATCHES.replace(image._SageMakerContainer, "_compose", _compose)
    PATCHES.replace(entities, "_wait_for_serving_container", _wait_for_serving_container)
    PATCHES.replace(image._SageMakerContainer, "_prepare_serving_volumes", _prepare_serving_volumes)


def uninstall() -> None:
    PATCHES.undo()


def compose_available() -> bool:
    """Local mode needs ``docker compose`` v2 or a ``docker-compose`` binary (Debian ships 1.29)."""
    try:
        version = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=20, check=False
        )
        if version.returncode == 0 and "v2" in version.stdout:
            return True
    except (OSError, subprocess.TimeoutExpired):
        pass
    return shutil.which("docker-compose") is not None


class DockerRuntime(Runtime):
    name = "docker"
    max_parallel_jobs = 1  # parallel compose projects race to create the shared sagemaker-local network

    def __init__(
        self, endpoint_url: str, container_endpoint_url: str, region: str, workdir: Path, image_name: str
    ):
        if not docker_daemon_answers():
            raise RuntimeUnavailable(
                "the docker runtime needs a Docker daemon: none answers (use --runtime process)"
            )
        if not compose_available():
            raise RuntimeUnavailable(
                "SageMaker local mode needs `docker compose` v2 or `docker-compose` on PATH"
            )
        if not image_exists(image_name):
            raise RuntimeUnavailable(
                f"image {image_name} not found: build it with `make build-offline` (or `make build`)"
            )
        self.endpoint_url = endpoint_url  # moto as the host sees it
        self.container_url = container_endpoint_url  # moto as containers see it (host reaches it too)
        self.region = region
        self.image = image_name
        self.run_id = uuid.uuid4().hex[:12]
        # local mode refuses container roots under /root and other system paths
        self.root = Path(workdir).resolve() / "docker"
        self.root.mkdir(parents=True, exist_ok=True)
        self.s3 = S3(endpoint_url, region)
        patches.install(sys.modules[__name__])  # undone with every patch by ControlPlane.stop()

    # -- sessions --------------------------------------------------------------------------------
    def _session(self, job: str, serving_port: int | None = None, role: str | None = None) -> LocalSession:
        """``role``: the job's execution role, which its S3 transfers and its own calls sign as."""
        key = principals.key_for(role) if role else "testing"
        boto_session = boto3.Session(
            region_name=self.region, aws_access_key_id=key, aws_secret_access_key="testing"
        )
        # boto_session is required (without it LocalSession raises AttributeError); the opt-out stops
        # an STS call and a telemetry GET after every create_* call.
        session = LocalSession(
            boto_session=boto_session, s3_endpoint_url=self.container_url, sagemaker_config=TELEMETRY_OPT_OUT
        )
        local: dict[str, Any] = {
            "container_root": str(self.root),
            "container_config": {"labels": {LABEL_RUN: self.run_id, LABEL_JOB: job}},
        }
        if serving_port is not None:
            local["serving_port"] = serving_port
        session.config = {"local": local}
        return session

    def image_problem(self, image: str) -> str | None:
        """A local name must be a local image; an ECR name must be in (moto's) ECR, then the
        local image stands for it (no registry offline)."""
        if not image:
            return None
        if ".dkr.ecr." not in image:
            return None if image_exists(image) else _pull_failed(image, "no such local image")
        repository, _, tag = image.split("/", 1)[1].partition(":")
        ecr = boto3.client("ecr", endpoint_url=self.endpoint_url, region_name=self.region, **_DUMMY_KEYS)
        try:
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag or "latest"}])
        except ecr.exceptions.ClientError as error:
            return _pull_failed(image, error.response["Error"]["Message"])
        return None

    def _image(self, uri: str) -> str:
        # An ECR-like name makes local mode log in to ECR and pull: always run the local image.
        return self.image if ".dkr.ecr." in uri or not uri else uri

    def _environment(self, requested: dict[str, str] | None) -> dict[str, str]:
        # Local mode adds the session's credentials itself; a second copy makes compose refuse the file.
        endpoint = {
            k: v
            for k, v in aws_environment(self.container_url, self.region).items()
            if k not in DUMMY_CREDENTIALS
        }
        return {**(requested or {}), **endpoint}

    def _run_job(self, job: str, call: Any) -> tuple[bool, str, str]:
        """Run a blocking local-mode call; (succeeded, failure text, logs). Removes the job's containers."""
        capture = capture_of()
        capture.lines, capture.failure_text = [], ""
        try:
            call()
            succeeded, error = True, ""
        except RuntimeError as failure:
            succeeded, error = False, str(failure)
        finally:
            remove_containers(f"{LABEL_JOB}={job}")
        # A host's failure file fails the job even when compose itself exited 0 (multi-host: _compose).
        succeeded = succeeded and not capture.failure_text
        return succeeded, capture.failure_text or error, "".join(capture.lines)

    # -- jobs ----------------------------------------------------------------------------------------
    def run_training(self, request: dict[str, Any]) -> JobResult:
        name = request["TrainingJobName"]
        client = self._session(name, role=request.get("RoleArn")).sagemaker_client
        spec = request["AlgorithmSpecification"]
        algorithm = {"TrainingImage": self._image(spec["TrainingImage"]), "TrainingInputMode": "File"}
        for key in ("ContainerEntrypoint", "ContainerArguments"):
            if spec.get(key):
                algorithm[key] = spec[key]
        ok, failure, logs = self._run_job(
            name,
            lambda: client.create_training_job(
                TrainingJobName=name,
                AlgorithmSpecification=algorithm,
                OutputDataConfig={"S3OutputPath": request["OutputDataConfig"]["S3OutputPath"]},
                ResourceConfig={
                    "InstanceType": "local",
                    "InstanceCount": request["ResourceConfig"].get("InstanceCount", 1),
                },
                InputDataConfig=request.get("InputDataConfig") or [],
                Environment=self._environment(request.get("Environment")),
                HyperParameters=request.get("HyperParameters") or {},
            ),
        )
        LocalSagemakerClient._training_jobs.pop(name, None)  # class-level table shared by all sessions
        artifact = request["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{name}/output/model.tar.gz"
        if not ok:
            # local mode uploads model.tar.gz even after a failure; SageMaker does not.
            bucket, key = split_s3_uri(artifact)
            self.s3.client.delete_object(Bucket=bucket, Key=key)
            return JobResult(False, f"AlgorithmError: {failure}"[:1024], logs)
        return JobResult(True, logs=logs, model_artifacts=artifact)

    def run_processing(self, request: dict[str, Any]) -> JobResult:
        name = request["ProcessingJobName"]
        client = self._session(name, role=request.get("RoleArn")).sagemaker_client
        app = request["AppSpecification"]
        if not app.get("ContainerEntrypoint"):
            # local mode raises KeyError on ContainerArguments alone
            raise ValueError(f"processing job {name}: local mode needs AppSpecification.ContainerEntrypoint")
        cluster = request.get("ProcessingResources", {}).get("ClusterConfig", {})
        ok, failure, logs = self._run_job(
            name,
            lambda: client.create_processing_job(
                ProcessingJobName=name,
                AppSpecification={
                    "ImageUri": self._image(app["ImageUri"]),
                    "ContainerEntrypoint": app["ContainerEntrypoint"],
                    "ContainerArguments": app.get("ContainerArguments") or [],
                },
                ProcessingResources={
                    "ClusterConfig": {
                        "InstanceType": "local",
                        "InstanceCount": cluster.get("InstanceCount", 1),
                        "VolumeSizeInGB": 1,
                    }
                },
                Environment=self._environment(request.get("Environment")),
                ProcessingInputs=[dict(item) for item in request.get("ProcessingInputs") or []],
                ProcessingOutputConfig=request.get("ProcessingOutputConfig") or {},
            ),
        )
        LocalSagemakerClient._processing_jobs.pop(name, None)
        return JobResult(ok, "" if ok else f"AlgorithmError: {failure}"[:1024], logs)

    # -- endpoints ---------------------------------------------------------------------------------
    def start_endpoint(self, name: str, container: dict[str, Any], instance_count: int = 1) -> Endpoint:
        port = free_port()
        local_name = f"{name}-{port}"
        client = self._session(local_name, serving_port=port).sagemaker_client
        client.create_model(
            ModelName=local_name,
            PrimaryContainer={
                "Image": self._image(container.get("Image", "")),
                "ModelDataUrl": container["ModelDataUrl"],
                "Environment": self._environment(container.get("Environment")),
            },
        )
        # One instance: local mode publishes every instance on the same host port.
        client.create_endpoint_config(
            EndpointConfigName=local_name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": local_name,
                    "InitialInstanceCount": 1,
                    "InstanceType": "local",
                }
            ],
        )
        _serving[port] = local_name
        endpoint = Endpoint(
            name,
            f"http://localhost:{port}",
            container["ModelDataUrl"],
            {"client": client, "local_name": local_name, "port": port},
        )
        try:
            client.create_endpoint(EndpointName=local_name, EndpointConfigName=local_name)
        except Exception as error:
            logs = self.endpoint_logs(endpoint)
            self.stop_endpoint(endpoint)
            raise RuntimeError(f"{error}; container log tail: {log_tail(logs, 8)}") from None
        return endpoint

    def stop_endpoint(self, endpoint: Endpoint) -> None:
        local_name = endpoint.details["local_name"]
        try:
            endpoint.details["client"].delete_endpoint(EndpointName=local_name)  # kills the compose process
        finally:
            remove_containers(f"{LABEL_JOB}={local_name}")
            _serving.pop(endpoint.details["port"], None)
            for table in (
                LocalSagemakerClient._endpoints,
                LocalSagemakerClient._endpoint_configs,
                LocalSagemakerClient._models,
            ):
                table.pop(local_name, None)

    def endpoint_logs(self, endpoint: Endpoint) -> str:
        local = LocalSagemakerClient._endpoints.get(endpoint.details["local_name"])
        hosting = getattr(getattr(local, "container", None), "container", None)
        return "".join(capture_of(hosting).lines) if hosting is not None else ""

    def close(self) -> None:
        for local_name in [n for n in LocalSagemakerClient._endpoints if n in _serving.values()]:
            with contextlib.suppress(Exception):  # already gone: the label sweep below removes the rest
                LocalSagemakerClient._endpoints[local_name].stop()
        remove_containers(f"{LABEL_RUN}={self.run_id}")
        subprocess.run(
            ["docker", "network", "rm", NETWORK], capture_output=True, check=False
        )  # fails while in use: fine
        shutil.rmtree(self.root, ignore_errors=True)


def remove_containers(label: str) -> list[str]:
    """Force-remove the containers carrying ``label`` (local mode never removes them)."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}"], capture_output=True, text=True, check=False
    )
    ids = listed.stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)
    return ids


_DUMMY_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _pull_failed(image: str, why: str) -> str:
    # The FailureReason SageMaker gives when a variant's image cannot be pulled.
    return f"Failed to pull the image {image} for the primary container: {why}."
