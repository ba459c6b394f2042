"""What a local-pipeline run reads back from moto: the observed outcome that checks judge.

Everything here asks moto's APIs (through the control plane's clients) what happened, as a person
with the AWS CLI would: an execution's history and decision files, failed jobs and endpoints with
the container's reason, the endpoint's model and its answers, SNS notifications (through an SQS
queue), the artifacts in S3. Nothing here decides whether that was expected (``scenarios``) or
shows it (``report``); ``run`` calls these in order.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from {{ cookiecutter.package_name }} import data, s3uri, settings, tarballs

from . import data_plane, endpoint_check
from .control_plane import ControlPlane


@dataclass
class Failure:
    """A failed job or endpoint: what the console shows instead of a traceback."""

    kind: str  # training job, processing job, tuning job, endpoint, invocation
    name: str
    reason: str
    log_tail: str = ""
    log_file: Path | None = None
    tail_title: str = "last log lines"


@dataclass
class ExecutionOutcome:
    name: str
    arn: str
    status: str
    seconds: float
    history: list[dict[str, Any]]
    states: list[dict[str, Any]]
    validation: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    error: str = ""
    failures: list[Failure] = field(default_factory=list)


@dataclass
class InvokeCheck:
    """The endpoint check after one execution (``endpoint_check``): ``matches`` when every request
    was answered as inference.py answers it in process, the CSV one with predictions for ``rows``
    rows, and none with a 5xx."""

    after: str
    endpoint_config: str
    model_data_url: str
    rows: int
    matches: bool
    error: str = ""
    difference: str = ""
    server_error: bool = False  # the endpoint answered 5xx: run.py then shows the user's traceback
    user_traceback: str = ""


@dataclass
class PipelineResult:
    runtime: str
    run_dir: Path
    bucket: str = settings.S3_BUCKET
    data_source: str = "built-in sample"
    data_split: str = ""  # run_data's split line
    kept_production: str = ""  # the gate's reasons when it refused a candidate on your data
    executions: list[ExecutionOutcome] = field(default_factory=list)
    invocations: list[InvokeCheck] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[tuple[str, int]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- executions ----------------------------------------------------------------------------------
def execution_error(events: list[dict[str, Any]]) -> str:
    """``error: cause`` of the ExecutionFailed event, empty when there is none."""
    failed = [e for e in events if e["type"] == "ExecutionFailed"]
    if not failed:
        return ""
    details = failed[0].get("executionFailedEventDetails", {})
    return f"{details.get('error', '')}: {details.get('cause', '')}"


def read_json(cp: ControlPlane, key: str) -> dict[str, Any] | None:
    s3 = cp.client("s3")
    try:
        return json.loads(s3.get_object(Bucket=settings.S3_BUCKET, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def download_reports(cp: ControlPlane, execution: str, run_dir: Path) -> None:
    """The execution's decision files and reports (runs/<execution>/) into the run folder."""
    s3 = cp.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.S3_BUCKET, Prefix=f"runs/{execution}/"
    )
    for item in (item for page in pages for item in page.get("Contents", [])):
        if item["Key"].endswith((".html", ".json")):
            target = run_dir / item["Key"].removeprefix("runs/")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(settings.S3_BUCKET, item["Key"], str(target))


# -- failures ------------------------------------------------------------------------------------
_LISTINGS = (  # kind, list call, summaries key, name field, describe call
    (
        "training job",
        "list_training_jobs",
        "TrainingJobSummaries",
        "TrainingJobName",
        "describe_training_job",
    ),
    (
        "processing job",
        "list_processing_jobs",
        "ProcessingJobSummaries",
        "ProcessingJobName",
        "describe_processing_job",
    ),
    (
        "tuning job",
        "list_hyper_parameter_tuning_jobs",
        "HyperParameterTuningJobSummaries",
        "HyperParameterTuningJobName",
        "describe_hyper_parameter_tuning_job",
    ),
)


def failed_resources(cp: ControlPlane, reported: set[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(kind, name, FailureReason) of failed jobs and of a failed endpoint not in ``reported``
    (which it extends: each failure is reported once)."""
    sm, found = cp.client("sagemaker"), []
    for kind, lister, key, name_field, describer in _LISTINGS:
        pages = sm.get_paginator(lister).paginate(StatusEquals="Failed")  # AWS pages at 10
        for summary in (summary for page in pages for summary in page.get(key, [])):
            name = summary[name_field]
            if (kind, name) not in reported:
                reported.add((kind, name))
                found.append(
                    (kind, name, getattr(sm, describer)(**{name_field: name}).get("FailureReason", ""))
                )
    with contextlib.suppress(ClientError):
        reason = sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME).get("FailureReason", "")
        if reason and ("endpoint", reason) not in reported:  # an endpoint fails again under its name
            reported.add(("endpoint", reason))
            found.append(("endpoint", settings.ENDPOINT_NAME, reason))
    return found


def failure(kind: str, name: str, reason: str, logs: str, run_dir: Path) -> Failure:
    """The failure with its last log lines; the whole log goes to ``<run>/<name>.log``."""
    log_file = None
    if logs:
        log_file = run_dir / f"{name}.log"
        log_file.write_text(logs)
    tail = "\n".join(logs.strip().splitlines()[-15:])
    return Failure(kind, name, reason or "no FailureReason", tail, log_file)


# -- the endpoint --------------------------------------------------------------------------------
def endpoint_state(cp: ControlPlane) -> tuple[str, str] | None:
    """(endpoint config, model data URL) of the endpoint, None when there is none."""
    sm = cp.client("sagemaker")
    try:
        config = sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME)["EndpointConfigName"]
    except sm.exceptions.ClientError:
        return None
    model = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
    return config, sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"]


def endpoint_configs(cp: ControlPlane) -> set[str]:
    sm = cp.client("sagemaker")
    pages = sm.get_paginator("list_endpoint_configs").paginate()
    return {c["EndpointConfigName"] for page in pages for c in page["EndpointConfigs"]}


def runtime_client(cp: ControlPlane) -> Any:
    """sagemaker-runtime with no retry and a read timeout just above the invocation timeout, so a
    hung model surfaces as the ModelError that names the endpoint, once."""
    timeout = data_plane.INVOKE_TIMEOUT + 5
    return cp.client(
        "sagemaker-runtime", config=Config(read_timeout=timeout, retries={"total_max_attempts": 1})
    )


def invoke(client: Any, request: endpoint_check.Request) -> endpoint_check.Answer:
    """One request through sagemaker-runtime InvokeEndpoint; a container's 4xx or 5xx, which AWS
    wraps in a ModelError, as its original status and message."""
    try:
        reply = client.invoke_endpoint(
            EndpointName=settings.ENDPOINT_NAME,
            Body=request.body,
            ContentType=request.content_type,
            Accept=request.accept,
        )
    except ClientError as error:
        response = error.response
        if response.get("Error", {}).get("Code") != "ModelError" or "OriginalStatusCode" not in response:
            raise
        message = str(response.get("OriginalMessage", "")).encode()
        return endpoint_check.Answer(int(response["OriginalStatusCode"]), "", message)
    return endpoint_check.Answer(200, reply.get("ContentType", ""), reply["Body"].read())


def invoke_check(cp: ControlPlane, after: str, holdout: Path, run_dir: Path) -> InvokeCheck | None:
    """The check's requests through sagemaker-runtime, each compared with what this project's
    inference.py answers in process on the endpoint's model (None without an endpoint); the
    requests and both answers go to ``<run>/endpoint-check-<after>.json``."""
    state = endpoint_state(cp)
    if state is None:
        return None
    config, model_url = state
    try:
        service = endpoint_check.local_service(model_dir(cp, model_url, run_dir))
    except Exception as error:  # inference.py or the model refused in process: a failed check, not a crash
        reason = f"in process: {type(error).__name__}: {error}"
        return InvokeCheck(after, config, model_url, 0, False, reason)
    # The CSV requests carry the served model's own features, in its order (its metadata).
    requests = endpoint_check.requests_for(data.read_csv(holdout), features=service.predictor.feature_names)
    client = runtime_client(cp)
    try:
        answers = [invoke(client, request) for request in requests]
    except (ClientError, BotoCoreError) as error:
        return InvokeCheck(after, config, model_url, 0, False, f"endpoint {settings.ENDPOINT_NAME}: {error}")
    local = [endpoint_check.local_answer(service, request) for request in requests]
    differences = [endpoint_check.difference(got, want) for got, want in zip(answers, local, strict=True)]
    _write_check(run_dir / f"endpoint-check-{after}.json", requests, answers, local, differences)
    first = answers[0]
    error = ""
    if first.status != 200:
        error = f"{requests[0].name}: the endpoint answered {first.status}: {first.body[:200].decode(errors='replace')}"
    server_error = any(answer.status >= 500 for answer in answers)
    return InvokeCheck(
        after,
        config,
        model_url,
        requests[0].rows if first.status == 200 else 0,
        first.status == 200 and not server_error and not any(differences),
        error,
        "; ".join(f"{r.name}: {d}" for r, d in zip(requests, differences, strict=True) if d),
        server_error,
    )


def _write_check(
    path: Path,
    requests: list[endpoint_check.Request],
    answers: list[endpoint_check.Answer],
    local: list[endpoint_check.Answer],
    differences: list[str],
) -> None:
    def shown(answer: endpoint_check.Answer) -> dict[str, Any]:
        body = answer.body.decode(errors="replace")
        return {"status": answer.status, "content_type": answer.content_type, "body": body}

    path.parent.mkdir(parents=True, exist_ok=True)
    record = [
        {
            "request": {"content_type": r.content_type, "accept": r.accept, "body": r.body.decode()},
            "endpoint": shown(got),
            "in_process": shown(want),
            "difference": difference,
        }
        for r, got, want, difference in zip(requests, answers, local, differences, strict=True)
    ]
    path.write_text(json.dumps(record, indent=2) + "\n")


def model_dir(cp: ControlPlane, uri: str, run_dir: Path) -> Path:
    """The model tarball at ``uri``, downloaded and extracted below ``<run>/models/``."""
    bucket, key = s3uri.split(uri, key_required=True)
    folder = run_dir / "models" / key.replace("/", "_")
    archive = folder.with_suffix(".download")
    archive.parent.mkdir(parents=True, exist_ok=True)
    cp.client("s3").download_file(bucket, key, str(archive))
    return tarballs.extract(archive, folder)


# -- notifications and artifacts -----------------------------------------------------------------
def subscribe_queue(cp: ControlPlane, topic_arn: str) -> str:
    """An SQS queue on the notification topic, so the run can read what SNS published; its URL."""
    sqs, sns = cp.client("sqs"), cp.client("sns")
    queue_url = sqs.create_queue(QueueName=f"{settings.PROJECT_SLUG}-local-notifications")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"])
    return queue_url


def drain(cp: ControlPlane, queue_url: str) -> list[dict[str, Any]]:
    """The SNS envelopes (Subject, Message) in the queue, deleted as read."""
    sqs, found = cp.client("sqs"), []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def artifacts(cp: ControlPlane) -> list[tuple[str, int]]:
    """(key, bytes) of every object in the project bucket."""
    s3, found = cp.client("s3"), []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.S3_BUCKET):
        found += [(item["Key"], item["Size"]) for item in page.get("Contents", [])]
    return found
