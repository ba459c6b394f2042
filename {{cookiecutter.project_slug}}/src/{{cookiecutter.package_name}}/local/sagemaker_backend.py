"""Attach a data-plane runtime to moto's SageMaker backend: one truth for control and data plane.

moto records SageMaker resources but runs nothing (training jobs are "Completed" at once). Once
attached, creating a training or processing job there starts the real job in a background thread
(DescribeTrainingJob shows InProgress, then Completed or Failed with the container's FailureReason),
a tuning job runs N training jobs, creating an endpoint starts a serving process or container,
UpdateEndpoint (missing in moto) swaps it the way SageMaker does, and sagemaker-runtime
InvokeEndpoint forwards to it. The state machine, the endpoint Lambda, the deploy CLI and anyone
with the AWS CLI pointed at moto see the same state.

moto's server runs in this process (ThreadedMotoServer), so patching the response and backend
classes reaches every client. These are private moto internals: moto is pinned in pyproject.toml.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

import requests
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from .runtimes import Endpoint, JobResult, Runtime

log = logging.getLogger(__name__)

# Generic `prefix:name=value;` metric lines (metrics.format_for_logs) when no MetricDefinitions match.
METRIC_LINE = re.compile(r"(\w+:\w+)=(-?[0-9.]+(?:[eE][-+]?\d+)?);")
INVOKE_TIMEOUT = 60  # seconds: SageMaker's limit for a real-time invocation
EndpointKey = tuple[str, str, str]  # account, region, endpoint name


def parse_metrics(logs: str, definitions: list[dict[str, str]] | None = None) -> dict[str, float]:
    """Final value of each metric, found in the logs the way SageMaker MetricDefinitions do."""
    found: dict[str, float] = {}
    for name, value in METRIC_LINE.findall(logs):
        found[name] = float(value)
    for definition in definitions or []:
        matches = re.findall(definition["Regex"], logs)
        if matches:
            last = matches[-1]
            found[definition["Name"]] = float(last[0] if isinstance(last, tuple) else last)
    return {k: v for k, v in found.items() if math.isfinite(v)}


def sample_hyperparameters(
    ranges: dict[str, Any], count: int, strategy: str = "Random", seed: int = 0
) -> list[dict[str, str]]:
    """Hyperparameter sets from a tuning job's ParameterRanges (values as strings, as SageMaker sends them).

    Grid enumerates the categorical product; every other strategy samples at random with a fixed
    seed (Bayesian search needs a model of the objective; random search is its documented baseline).
    """
    if strategy == "Grid":
        names = [r["Name"] for r in ranges.get("CategoricalParameterRanges", [])]
        values = [r["Values"] for r in ranges.get("CategoricalParameterRanges", [])]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)][:count]
    rng = random.Random(seed)

    def scaled(low: float, high: float, scaling: str) -> float:
        if scaling in ("Logarithmic", "Auto") and low > 0:
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        return rng.uniform(low, high)

    sets = []
    for _ in range(count):
        values: dict[str, str] = {}
        for r in ranges.get("ContinuousParameterRanges", []):
            values[r["Name"]] = (
                f"{scaled(float(r['MinValue']), float(r['MaxValue']), r.get('ScalingType', 'Auto')):.6g}"
            )
        for r in ranges.get("IntegerParameterRanges", []):
            low, high = int(r["MinValue"]), int(r["MaxValue"])
            values[r["Name"]] = str(
                min(high, max(low, round(scaled(low, high, r.get("ScalingType", "Linear")))))
            )
        for r in ranges.get("CategoricalParameterRanges", []):
            values[r["Name"]] = rng.choice(r["Values"])
        sets.append(values)
    return sets


class DataPlane:
    """Runs what moto's SageMaker records. Use as a context manager or call attach()/detach()."""

    _attached: DataPlane | None = None

    def __init__(self, runtime: Runtime, on_event: Callable[[str], None] | None = None):
        self.runtime = runtime
        self.on_event = on_event or (lambda message: log.info("%s", message))
        self.endpoints: dict[EndpointKey, Endpoint] = {}
        self.job_logs: dict[str, str] = {}  # job name -> logs, for failure reports
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._saved: list[tuple[type, str, Any]] = []

    # -- attachment ------------------------------------------------------------------------------
    def attach(self) -> DataPlane:
        if DataPlane._attached is not None:
            raise RuntimeError("a DataPlane is already attached to moto's SageMaker backend")
        plane = self

        def wrap_create(
            action: str, start: Callable[[SageMakerModelBackend, dict[str, Any]], None]
        ) -> Callable[..., Any]:
            original = getattr(SageMakerResponse, action)

            def handler(response: SageMakerResponse) -> Any:
                result = original(response)  # moto validates and records the resource
                start(response.sagemaker_backend, json.loads(response.body or "{}"))
                return result

            return handler

        def create_endpoint(response: SageMakerResponse) -> Any:
            backend, name = response.sagemaker_backend, response._get_param("EndpointName")
            if name in backend.endpoints:  # moto would silently replace it; AWS refuses
                raise ValidationError(
                    message=f'Cannot create already existing endpoint "{_endpoint_arn(backend, name)}".'
                )
            result = original_create_endpoint(response)
            plane._start_endpoint(backend, name)
            return result

        def update_endpoint(response: SageMakerResponse) -> ActionResult:
            endpoint = response.sagemaker_backend.update_endpoint(
                response._get_param("EndpointName"), response._get_param("EndpointConfigName")
            )
            return ActionResult({"EndpointArn": endpoint.arn})

        def backend_update_endpoint(
            backend: SageMakerModelBackend, endpoint_name: str, endpoint_config_name: str
        ) -> FakeEndpoint:
            return plane._update_endpoint(backend, endpoint_name, endpoint_config_name)

        original_delete = SageMakerModelBackend.delete_endpoint

        def delete_endpoint(backend: SageMakerModelBackend, endpoint_name: str) -> None:
            original_delete(backend, endpoint_name)
            plane._stop((backend.account_id, backend.region_name, endpoint_name))

        def invoke_endpoint(response: SageMakerRuntimeResponse) -> Any:
            return plane._invoke(response)

        original_create_endpoint = SageMakerResponse.create_endpoint
        self._patch(
            SageMakerResponse, "create_training_job", wrap_create("create_training_job", self._start_training)
        )
        self._patch(
            SageMakerResponse,
            "create_processing_job",
            wrap_create("create_processing_job", self._start_processing),
        )
        self._patch(
            SageMakerResponse,
            "create_hyper_parameter_tuning_job",
            wrap_create("create_hyper_parameter_tuning_job", self._start_tuning),
        )
        self._patch(SageMakerResponse, "create_endpoint", create_endpoint)
        self._patch(SageMakerResponse, "update_endpoint", update_endpoint)
        self._patch(SageMakerModelBackend, "update_endpoint", backend_update_endpoint)
        self._patch(SageMakerModelBackend, "delete_endpoint", delete_endpoint)
        self._patch(SageMakerRuntimeResponse, "invoke_endpoint", invoke_endpoint)
        DataPlane._attached = self
        return self

    def _patch(self, cls: type, name: str, function: Callable[..., Any]) -> None:
        self._saved.append((cls, name, cls.__dict__.get(name)))
        setattr(cls, name, function)

    def detach(self, timeout: float = 30) -> None:
        """Undo the patches, stop every endpoint and wait for job threads (their runtime is closed)."""
        for cls, name, original in reversed(self._saved):
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        self._saved.clear()
        if DataPlane._attached is self:
            DataPlane._attached = None
        for key in list(self.endpoints):
            self._stop(key)
        self.runtime.close()
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self) -> DataPlane:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def wait_idle(self, timeout: float = 600) -> bool:
        """Wait for background jobs and endpoint changes; True if none is left running."""
        for thread in list(self._threads):
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _background(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except Exception:  # a bug here must not kill the moto server thread silently
                log.exception("background task %s failed", name)

        thread = threading.Thread(target=run, name=f"dataplane-{name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    # -- training ----------------------------------------------------------------------------------
    def _start_training(self, backend: SageMakerModelBackend, request: dict[str, Any]) -> None:
        self._mark_training_started(backend, request)
        self._background(request["TrainingJobName"], lambda: self._run_training(backend, request))

    def _mark_training_started(self, backend: SageMakerModelBackend, request: dict[str, Any]) -> None:
        job = backend.training_jobs[request["TrainingJobName"]]
        # moto replaces MetricDefinitions with a placeholder; keep what the caller asked for.
        job.algorithm_specification = dict(request["AlgorithmSpecification"])
        job.training_job_status, job.secondary_status = "InProgress", "Starting"
        job.training_end_time = job.model_artifacts = None
        job.final_metric_data_list = []
        job.secondary_status_transitions = [
            {"Status": "Starting", "StartTime": job.creation_time, "StatusMessage": "Launching"}
        ]

    def _run_training(self, backend: SageMakerModelBackend, request: dict[str, Any]) -> JobResult:
        name = request["TrainingJobName"]
        job = backend.training_jobs[name]
        job.secondary_status = "Training"
        self.on_event(f"training job {name} started ({self.runtime.name} runtime)")
        result = self._guarded(lambda: self.runtime.run_training(request))
        now = utcnow()
        metrics = parse_metrics(result.logs, request["AlgorithmSpecification"].get("MetricDefinitions"))
        job.final_metric_data_list = [
            {"MetricName": k, "Value": v, "Timestamp": now} for k, v in metrics.items()
        ]
        job.training_end_time = job.last_modified_time = now
        status = "Completed" if result.succeeded else "Failed"
        job.secondary_status_transitions.append({"Status": status, "StartTime": now, "EndTime": now})
        self.job_logs[name] = result.logs  # kept for failure reports and for --keep inspection
        if result.succeeded:
            job.model_artifacts = {"S3ModelArtifacts": result.model_artifacts}
        else:
            job.failure_reason = result.failure_reason
        job.training_job_status = job.secondary_status = status
        self.on_event(
            f"training job {name} {status.lower()}"
            + (f": {result.failure_reason}" if not result.succeeded else "")
        )
        return result

    # -- processing --------------------------------------------------------------------------------
    def _start_processing(self, backend: SageMakerModelBackend, request: dict[str, Any]) -> None:
        name = request["ProcessingJobName"]
        job = backend.processing_jobs[name]
        job.processing_job_status, job.processing_end_time = "InProgress", None
        job.environment = request.get("Environment")  # moto drops it; DescribeProcessingJob returns it
        job.processing_resources = request.get("ProcessingResources")

        def run() -> None:
            self.on_event(f"processing job {name} started ({self.runtime.name} runtime)")
            result = self._guarded(lambda: self.runtime.run_processing(request))
            job.processing_end_time = job.last_modified_time = utcnow()
            if not result.succeeded:
                job.failure_reason, job.exit_message = result.failure_reason, result.failure_reason
                self.job_logs[name] = result.logs
            job.processing_job_status = "Completed" if result.succeeded else "Failed"
            self.on_event(f"processing job {name} {job.processing_job_status.lower()}")

        self._background(name, run)

    # -- hyperparameter tuning --------------------------------------------------------------------
    def _start_tuning(self, backend: SageMakerModelBackend, request: dict[str, Any]) -> None:
        name = request["HyperParameterTuningJobName"]
        tuning = backend.hyper_parameter_tuning_jobs[name]
        tuning.hyper_parameter_tuning_job_status = "InProgress"
        tuning.best_training_job = tuning.OverallBestTrainingJob = None
        tuning.hyper_parameter_tuning_end_time = tuning.tuning_job_completion_details = None
        self._background(name, lambda: self._run_tuning(backend, request))

    def _run_tuning(self, backend: SageMakerModelBackend, request: dict[str, Any]) -> None:
        """SageMaker local mode has no tuning: run the search as N training jobs, at most
        MaxParallelTrainingJobs at a time, and pick the best by the objective metric in the logs."""
        name = request["HyperParameterTuningJobName"]
        tuning = backend.hyper_parameter_tuning_jobs[name]
        config = request["HyperParameterTuningJobConfig"]
        definition = request["TrainingJobDefinition"]
        objective = config["HyperParameterTuningJobObjective"]
        maximize = objective["Type"] == "Maximize"
        limits = config["ResourceLimits"]
        candidates = sample_hyperparameters(
            config.get("ParameterRanges", {}),
            int(limits["MaxNumberOfTrainingJobs"]),
            config.get("Strategy", "Random"),
        )
        counters = {
            "Completed": 0,
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": 0,
            "Stopped": 0,
        }
        scores: list[tuple[float, str, dict[str, str]]] = []
        lock = threading.Lock()

        def train(index: int, tuned: dict[str, str]) -> None:
            # AWS names them <tuning job>-<3-digit index>-<8 hex>.
            job_name = f"{name}-{index:03d}-{uuid.uuid4().hex[:8]}"
            static = {
                k: v
                for k, v in definition.items()
                if k not in ("StaticHyperParameters", "HyperParameterRanges")
            }
            job_request = {
                "TrainingJobName": job_name,
                "HyperParameters": {**(definition.get("StaticHyperParameters") or {}), **tuned},
                **static,
            }
            with lock:
                _record_training_job(backend, job_request)
                self._mark_training_started(backend, job_request)
                counters["InProgress"] += 1
                tuning.training_job_status_counters = dict(counters)
            result = self._run_training(backend, job_request)
            metrics = parse_metrics(
                result.logs, definition["AlgorithmSpecification"].get("MetricDefinitions")
            )
            value = metrics.get(objective["MetricName"])
            with lock:
                counters["InProgress"] -= 1
                ok = result.succeeded and value is not None
                counters["Completed" if ok else "NonRetryableError"] += 1
                tuning.training_job_status_counters = dict(counters)
                if ok:
                    scores.append((value, job_name, tuned))

        workers = max(1, min(int(limits.get("MaxParallelTrainingJobs", 1)), self.runtime.max_parallel_jobs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"tuning-{name}") as pool:
            list(pool.map(lambda item: train(*item), enumerate(candidates, start=1)))
        best: dict[str, Any] | None = None
        if scores:
            value, job_name, tuned = (max if maximize else min)(scores, key=lambda score: score[0])
            job = backend.training_jobs[job_name]
            best = {
                "TrainingJobName": job_name,
                "TrainingJobArn": job.arn,
                "TuningJobName": name,
                "CreationTime": job.creation_time,
                "TrainingStartTime": job.creation_time,
                "TrainingEndTime": job.training_end_time,
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": tuned,
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "Type": objective["Type"],
                    "MetricName": objective["MetricName"],
                    "Value": value,
                },
                "ObjectiveStatus": "Succeeded",
            }
        tuning.training_job_status_counters = counters
        tuning.objective_status_counters = {
            "Succeeded": counters["Completed"],
            "Pending": 0,
            "Failed": len(candidates) - counters["Completed"],
        }
        tuning.hyper_parameter_tuning_end_time = tuning.last_modified_time = utcnow()
        if best is None:
            tuning.failure_reason = (
                f"All {len(candidates)} training jobs failed or reported no {objective['MetricName']}"
            )
            tuning.hyper_parameter_tuning_job_status = "Failed"
        else:
            tuning.best_training_job = tuning.OverallBestTrainingJob = best
            tuning.hyper_parameter_tuning_job_status = "Completed"
        self.on_event(f"tuning job {name} {tuning.hyper_parameter_tuning_job_status.lower()}")

    # -- endpoints ---------------------------------------------------------------------------------
    def _container(self, backend: SageMakerModelBackend, config_name: str) -> tuple[dict[str, Any], int]:
        variant = backend.describe_endpoint_config(config_name)["ProductionVariants"][0]
        model = backend.describe_model(variant["ModelName"])
        container = model.primary_container or (model.containers or [None])[0]
        if not container or not container.get("ModelDataUrl"):
            raise ValueError(f"model {variant['ModelName']} has no PrimaryContainer.ModelDataUrl")
        return container, int(variant.get("InitialInstanceCount") or 1)

    def _start_endpoint(self, backend: SageMakerModelBackend, name: str) -> None:
        endpoint = backend.endpoints[name]
        endpoint.endpoint_status = "Creating"
        key = (backend.account_id, backend.region_name, name)

        def run() -> None:
            try:
                container, count = self._container(backend, endpoint.endpoint_config_name)
                self.on_event(f"endpoint {name}: starting {container['ModelDataUrl']}")
                started = self.runtime.start_endpoint(name, container, count)
            except Exception as error:
                endpoint.endpoint_status, endpoint.failure_reason = (
                    "Failed",
                    f"{type(error).__name__}: {error}"[:1024],
                )
                self.on_event(f"endpoint {name} failed: {endpoint.failure_reason}")
                return
            with self._lock:
                self.endpoints[key] = started
            endpoint.last_modified_time = utcnow()
            endpoint.endpoint_status = "InService"
            self.on_event(f"endpoint {name} InService at {started.url}")

        self._background(f"endpoint-{name}", run)

    def _update_endpoint(self, backend: SageMakerModelBackend, name: str, config_name: str) -> FakeEndpoint:
        """UpdateEndpoint as SageMaker does it: start the new fleet, health-check, switch, stop the old.

        If the new one fails, the old keeps serving; the endpoint returns to InService with a
        FailureReason (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html).
        """
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise ValidationError(message=f'Could not find endpoint "{_endpoint_arn(backend, name)}".')
        if endpoint.endpoint_status != "InService":
            raise ValidationError(
                message=f'Cannot update in-progress endpoint "{_endpoint_arn(backend, name)}".'
            )
        config = backend.describe_endpoint_config(config_name)  # ValidationException if missing
        endpoint.endpoint_status, endpoint.failure_reason = "Updating", None
        key = (backend.account_id, backend.region_name, name)

        def run() -> None:
            try:
                container, count = self._container(backend, config_name)
                self.on_event(f"endpoint {name}: updating to {container['ModelDataUrl']}")
                started = self.runtime.start_endpoint(name, container, count)
            except Exception as error:
                endpoint.failure_reason = f"Update to {config_name} failed: {type(error).__name__}: {error}"[
                    :1024
                ]
                endpoint.last_modified_time = utcnow()
                endpoint.endpoint_status = "InService"
                self.on_event(f"endpoint {name}: update failed, previous model keeps serving ({error})")
                return
            with self._lock:
                old = self.endpoints.get(key)
                self.endpoints[key] = started
                endpoint.endpoint_config_name = config_name
                endpoint.production_variants = endpoint._process_production_variants(
                    config["ProductionVariants"]
                )
            if old is not None:  # traffic is on the new fleet; AWS reports InService once the old is gone
                self._guarded_stop(old)
            endpoint.last_modified_time = utcnow()
            endpoint.endpoint_status = "InService"
            self.on_event(f"endpoint {name} updated to {config_name}")

        self._background(f"endpoint-{name}", run)
        return endpoint

    def _stop(self, key: EndpointKey) -> None:
        with self._lock:
            endpoint = self.endpoints.pop(key, None)
        if endpoint is not None:
            self._guarded_stop(endpoint)

    def _guarded_stop(self, endpoint: Endpoint) -> None:
        try:
            self.runtime.stop_endpoint(endpoint)
        except Exception:
            log.exception("stopping endpoint %s failed", endpoint.name)

    def endpoint_for(
        self, name: str, account: str | None = None, region: str | None = None
    ) -> Endpoint | None:
        with self._lock:
            for (acct, reg, ep), endpoint in self.endpoints.items():
                if ep == name and account in (None, acct) and region in (None, reg):
                    return endpoint
        return None

    # -- sagemaker-runtime InvokeEndpoint --------------------------------------------------------
    def _invoke(self, response: SageMakerRuntimeResponse) -> tuple[int, dict[str, str], bytes | str]:
        name = unquote(response.path.split("/")[2])
        endpoint = self.endpoint_for(name, response.current_account, response.region)
        if endpoint is None:
            return _rest_error(
                400, "ValidationError", f"Endpoint {name} of account {response.current_account} not found."
            )
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() in ("content-type", "accept") or k.lower().startswith("x-amzn-sagemaker-custom")
        }
        body = response.body if isinstance(response.body, bytes) else (response.body or "").encode()
        try:
            reply = requests.post(
                f"{endpoint.url}/invocations", data=body, headers=headers, timeout=INVOKE_TIMEOUT
            )
        except requests.Timeout:
            # SageMaker's limit for a real-time invocation is 60 s; the caller sees which endpoint hung.
            return _rest_error(
                424,
                "ModelError",
                f"Endpoint {name}: the model container did not answer /invocations within "
                f"{INVOKE_TIMEOUT:g} s (SageMaker's invocation timeout)",
            )
        except requests.RequestException as error:
            return _rest_error(
                424, "ModelError", f"Endpoint {name}: received no response from primary: {error}"
            )
        if reply.status_code >= 400:
            # AWS wraps container errors as ModelError (HTTP 424) with the original status.
            message = (
                f"Received client error ({reply.status_code}) from primary with message {reply.text[:512]!r}."
            )
            return _rest_error(
                424,
                "ModelError",
                message,
                OriginalStatusCode=reply.status_code,
                OriginalMessage=reply.text[:512],
            )
        content_type = reply.headers.get("Content-Type", "application/octet-stream")
        return (
            200,
            {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": "AllTraffic"},
            reply.content,
        )

    @staticmethod
    def _guarded(run: Callable[[], JobResult]) -> JobResult:
        """A runtime error (S3 missing, Docker gone...) is a failed job, as SageMaker would report it."""
        try:
            return run()
        except Exception as error:
            log.exception("runtime error")
            return JobResult(False, f"InternalServerError: {type(error).__name__}: {error}"[:1024])


def _record_training_job(backend: SageMakerModelBackend, request: dict[str, Any]) -> None:
    """Register a training job in moto (as CreateTrainingJob would) without starting a thread."""
    backend.create_training_job(
        training_job_name=request["TrainingJobName"],
        hyper_parameters=request.get("HyperParameters") or {},
        algorithm_specification=dict(request["AlgorithmSpecification"]),
        role_arn=request.get("RoleArn", ""),
        input_data_config=request.get("InputDataConfig") or [],
        output_data_config=request["OutputDataConfig"],
        resource_config=request.get("ResourceConfig") or {},
        vpc_config=request.get("VpcConfig") or {},
        stopping_condition=request.get("StoppingCondition") or {},
        tags=request.get("Tags") or [],
        enable_network_isolation=False,
        enable_inter_container_traffic_encryption=False,
        enable_managed_spot_training=False,
        checkpoint_config={},
        debug_hook_config={},
        debug_rule_configurations=[],
        tensor_board_output_config={},
        experiment_config={},
    )


def _endpoint_arn(backend: SageMakerModelBackend, name: str) -> str:
    return FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)


def _rest_error(status: int, code: str, message: str, **extra: Any) -> tuple[int, dict[str, str], str]:
    # sagemaker-runtime is a rest-json service: botocore reads the code from x-amzn-ErrorType.
    # moto takes a tuple response's HTTP status from its "status" header.
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "status": str(status)}
    return status, headers, json.dumps({"message": message, **extra})
