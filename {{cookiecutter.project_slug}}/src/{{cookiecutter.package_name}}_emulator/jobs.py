"""Where a training or processing job changes state: the one place that writes moto's job fields.

``JobLifecycle`` owns every transition SageMaker reports for a job (DescribeTrainingJob /
DescribeProcessingJob): ``started`` (InProgress; secondary status Starting, then Downloading and
Training once it runs, each with AWS's StatusMessage in SecondaryStatusTransitions) and
``finished`` (Completed or Failed with the container's FailureReason, end time, metrics,
TrainingTimeInSeconds and BillableTimeInSeconds, the model artifact). It also writes the job's
logs to moto's CloudWatch Logs under SageMaker's names, so ``aws logs tail
/aws/sagemaker/TrainingJobs`` works against a kept moto:
group ``/aws/sagemaker/TrainingJobs`` (``ProcessingJobs``), stream ``<job>/algo-1-<epoch seconds>``
("Log Amazon SageMaker events with Amazon CloudWatch", SageMaker developer guide).

"Where does a job become Failed?": ``JobLifecycle.finished``.

Every finished job (and tuning job) also bumps a change counter, ``changed()``: a ``.sync``
task in ``integrations`` sleeps in ``wait_for_change`` and describes its job as soon as one ends.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from moto.core.utils import utcnow

from .runtimes import JobResult
from .tuning import parse_metrics

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
MAX_EVENT_BYTES = 200_000  # CloudWatch's limit is 256 KiB per event
# SecondaryStatusTransitions messages, as DescribeTrainingJob reports them
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_SecondaryStatusTransition.html).
STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
}
_changed = threading.Condition()
_changes = 0


def changes() -> int:
    """How many job changes there have been so far (pass it to ``wait_for_change``)."""
    with _changed:
        return _changes


def changed() -> None:
    """A job reached a new status: wake whoever waits for one."""
    global _changes
    with _changed:
        _changes += 1
        _changed.notify_all()


def wait_for_change(seen: int, timeout: float) -> bool:
    """Until a change after ``seen`` (True) or ``timeout`` seconds (False)."""
    with _changed:
        return _changed.wait_for(lambda: _changes != seen, timeout)


class JobLifecycle:
    """State transitions of one job kind in one moto SageMaker backend."""

    def __init__(self, backend: Any, kind: str) -> None:
        if kind not in ("training", "processing"):
            raise ValueError(f"unknown job kind {kind!r}")
        self.backend, self.kind = backend, kind

    def _job(self, name: str) -> Any:
        jobs = self.backend.training_jobs if self.kind == "training" else self.backend.processing_jobs
        return jobs[name]

    # -- transitions -------------------------------------------------------------------------------
    def started(self, name: str, request: dict[str, Any]) -> None:
        job, now = self._job(name), utcnow()
        if self.kind == "processing":
            job.processing_job_status, job.processing_end_time = "InProgress", None
            job.processing_start_time = now
            job.environment = request.get("Environment")  # moto drops it; DescribeProcessingJob returns it
            job.processing_resources = request.get("ProcessingResources")
            return
        # moto replaces MetricDefinitions with a placeholder; keep what the caller asked for.
        job.algorithm_specification = dict(request["AlgorithmSpecification"])
        job.training_job_status, job.secondary_status = "InProgress", "Starting"
        job.training_start_time, job.training_end_time = now, None
        job.model_artifacts = job.failure_reason = None
        job.final_metric_data_list = []
        job.secondary_status_transitions = [_transition("Starting", job.creation_time)]

    def running(self, name: str) -> None:
        if self.kind == "training":
            job, now = self._job(name), utcnow()
            _close(job.secondary_status_transitions, now)
            job.secondary_status_transitions += [
                _transition("Downloading", now, now),
                _transition("Training", now),
            ]
            job.secondary_status = "Training"

    def finished(self, name: str, request: dict[str, Any], result: JobResult) -> str:
        """Record the end; returns the status (Completed or Failed)."""
        job, now = self._job(name), utcnow()
        status = "Completed" if result.succeeded else "Failed"
        self.write_logs(name, result.logs)
        if self.kind == "processing":
            job.processing_end_time = job.last_modified_time = now
            if not result.succeeded:
                job.failure_reason = job.exit_message = result.failure_reason
            job.processing_job_status = status
            changed()
            return status
        definitions = request["AlgorithmSpecification"].get("MetricDefinitions")
        job.final_metric_data_list = [
            {"MetricName": k, "Value": v, "Timestamp": now}
            for k, v in parse_metrics(result.logs, definitions).items()
        ]
        job.training_end_time = job.last_modified_time = now
        # One instance, on demand: billable time is the training time (no spot savings offline).
        seconds = max(1, math.ceil((now - (job.training_start_time or now)).total_seconds()))
        job.training_time_in_seconds = job.billable_time_in_seconds = seconds
        transitions = job.secondary_status_transitions
        _close(transitions, now)
        if result.succeeded:
            transitions.append(_transition("Uploading", now, now))
        transitions.append(_transition(status, now, now))
        if result.succeeded:
            job.model_artifacts = {"S3ModelArtifacts": result.model_artifacts}
        else:
            job.failure_reason = result.failure_reason
        job.training_job_status = job.secondary_status = status
        changed()
        return status

    # -- CloudWatch Logs ---------------------------------------------------------------------------
    def write_logs(self, name: str, text: str) -> str:
        """The job's output as log events in moto's CloudWatch Logs; returns the stream name."""
        from moto.logs.models import logs_backends

        logs = logs_backends[self.backend.account_id][self.backend.region_name]
        group = TRAINING_LOG_GROUP if self.kind == "training" else PROCESSING_LOG_GROUP
        stream = f"{name}/algo-1-{int(time.time())}"
        logs.ensure_log_group(group)
        logs.create_log_stream(group, stream)
        stamp = int(time.time() * 1000)
        events = [
            {"timestamp": stamp, "message": line[:MAX_EVENT_BYTES]}
            for line in text.splitlines()
            if line.strip()
        ]
        if events:
            logs.put_log_events(group, stream, events)
        return stream


def _transition(status: str, start: Any, end: Any = None) -> dict[str, Any]:
    entry = {"Status": status, "StartTime": start, "StatusMessage": STATUS_MESSAGES[status]}
    return entry if end is None else {**entry, "EndTime": end}


def _close(transitions: list[dict[str, Any]], now: Any) -> None:
    """The current transition ends now (the next one starts)."""
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
