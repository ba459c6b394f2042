"""Typed requests the CLI builds and the library functions take (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }} import settings

from .clients import DeployError


@dataclass(frozen=True)
class InfraRequest:
    """``deploy-infra``: upload the Lambda zip and the ASL, then create or update the stack."""

    project_root: Path
    image_uri: str | None = None  # default: <account>.dkr.ecr.<region>.amazonaws.com/<repository>:latest
    artifact_bucket: str = settings.ARTIFACT_BUCKET
    stack_name: str = settings.STACK_NAME
    cfn_role_arn: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    poll_seconds: float = 5


@dataclass(frozen=True)
class EndpointUpdateRequest:
    """``update-endpoint``: serve the production model's artifact with a new image."""

    image_uri: str
    endpoint_name: str = settings.ENDPOINT_NAME
    alarm_names: Sequence[str] = ()
    poll_seconds: float = 30


@dataclass(frozen=True)
class ExecutionInput:
    """The state machine's execution input (docs/architecture.md, "Execution input"); None = default."""

    tune: bool | None = None
    max_jobs: int | None = None
    max_parallel_jobs: int | None = None
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    data_prefix: str | None = None  # P -> {"train": s3://<bucket>/P/train/, "holdout": .../P/holdout/}
    training_instance_type: str | None = None
    training_instance_count: int | None = None
    volume_size_gb: int | None = None  # every job's storage volume
    max_runtime_seconds: int | None = None  # every job's time limit
    training_input_mode: str | None = None  # "File" or "FastFile": the training channels only
    dry_run: bool | None = None

    def to_json(self, bucket: str = settings.S3_BUCKET) -> dict[str, Any]:
        """Only the fields given, so the state machine's Init state applies its own defaults."""
        found: dict[str, Any] = {
            name: value
            for name, value in (
                ("tune", self.tune),
                ("max_jobs", self.max_jobs),
                ("max_parallel_jobs", self.max_parallel_jobs),
                ("training_instance_type", self.training_instance_type),
                ("training_instance_count", self.training_instance_count),
                ("volume_size_gb", self.volume_size_gb),
                ("max_runtime_seconds", self.max_runtime_seconds),
                ("training_input_mode", self.training_input_mode),
                ("dry_run", self.dry_run),
            )
            if value is not None
        }
        if self.hyperparameters:
            found["hyperparameters"] = dict(self.hyperparameters)
        if self.data_prefix is not None:
            prefix = self.data_prefix.strip("/")
            if not prefix:
                raise DeployError("--data-prefix must not be empty")
            found["data"] = {
                "train": f"s3://{bucket}/{prefix}/train/",
                "holdout": f"s3://{bucket}/{prefix}/holdout/",
            }
        return found


@dataclass(frozen=True)
class ExecutionRequest:
    """``start-execution``: start the pipeline with ``execution_input``, optionally wait for the end."""

    execution_input: Mapping[str, Any] = field(default_factory=dict)
    state_machine_arn: str | None = None  # default: the stack's StateMachineArn output
    stack_name: str = settings.STACK_NAME
    name_prefix: str = "manual"
    wait: bool = False
    poll_seconds: float = 10
