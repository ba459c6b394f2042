"""Data-plane runtimes: where the offline emulator really runs SageMaker jobs and endpoints.

Two runtimes share one interface so moto's SageMaker backend (``<package>_emulator/data_plane.py``) can
drive either: ``process`` runs the package's entrypoint modules as subprocesses against a folder
laid out like /opt/ml (no Docker needed); ``docker`` runs the project's image through SageMaker
Python SDK v2 local mode. Requests are the SageMaker API request dicts (``CreateTrainingJob`` ...),
so the runtimes see exactly what the state machine sent.
"""

from __future__ import annotations

import abc
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from typing import Any

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run here (no Docker daemon, no image...); the message says what is missing."""


@dataclass
class JobResult:
    """How a training or processing job ended, in the terms DescribeTrainingJob reports."""

    succeeded: bool
    failure_reason: str = ""
    logs: str = ""
    model_artifacts: str | None = None  # S3 URI of model.tar.gz (training jobs that succeeded)


@dataclass
class Endpoint:
    """A serving process or container answering /ping and /invocations on ``url``."""

    name: str
    url: str  # e.g. http://127.0.0.1:34567, reachable from the host
    model_data_url: str
    details: dict[str, Any] = field(default_factory=dict)  # runtime-private (process, session...)


class Runtime(abc.ABC):
    """What moto's SageMaker backend needs from a data plane. Calls block; the backend threads them."""

    name: str = "runtime"
    max_parallel_jobs: int = 1  # how many training jobs of a tuning job may run at once

    @abc.abstractmethod
    def run_training(self, request: dict[str, Any]) -> JobResult:
        """Run a CreateTrainingJob request to the end; upload model.tar.gz like SageMaker does."""

    @abc.abstractmethod
    def run_processing(self, request: dict[str, Any]) -> JobResult:
        """Run a CreateProcessingJob request to the end; upload its ProcessingOutputs."""

    @abc.abstractmethod
    def start_endpoint(self, name: str, container: dict[str, Any], instance_count: int = 1) -> Endpoint:
        """Start serving ``container`` (a DescribeModel PrimaryContainer); return once /ping is 200."""

    @abc.abstractmethod
    def stop_endpoint(self, endpoint: Endpoint) -> None:
        """Stop serving and free the port; safe to call twice."""

    def image_problem(self, image: str) -> str | None:
        """Why ``image`` cannot be pulled for an endpoint (SageMaker's FailureReason), or None.

        The process runtime serves the package's own code whatever the image names: it finds none.
        """
        return None

    def endpoint_logs(self, endpoint: Endpoint) -> str:
        """The serving logs so far (shown when an endpoint fails)."""
        return ""

    def close(self) -> None:  # noqa: B027 - optional hook, most runtimes hold nothing
        """Release everything the runtime still holds (called on exit, also after Ctrl-C)."""


def aws_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """Variables that point boto3 in a job at moto, with dummy credentials and no metadata probes."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ENDPOINT_URL_S3": endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
        **DUMMY_CREDENTIALS,
    }


# Lines that say nothing about why a server died: nginx retrying the app socket during health checks.
NOISE = re.compile(r"connect\(\) to unix:.* failed|GET /ping")


def log_tail(logs: str, lines: int = 5) -> str:
    """The last lines that carry a reason (noise dropped), joined for a one-line FailureReason."""
    kept = [line for line in logs.strip().splitlines() if line.strip() and not NOISE.search(line)]
    return " | ".join(kept[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def docker_daemon_answers(timeout: float = 10) -> bool:
    if not shutil.which("docker"):
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def image_exists(image: str) -> bool:
    result = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    return result.returncode == 0


def default_runtime_name(image: str) -> str:
    """``docker`` when a daemon answers and the image is built, else ``process``."""
    return "docker" if docker_daemon_answers() and image_exists(image) else "process"
