"""The data plane attached to moto's SageMaker backend: one truth for control and data plane.

moto records SageMaker resources but runs nothing (training jobs are "Completed" at once). Once
attached (``wire`` routes moto's SageMaker API here), creating a training or processing job
starts the real job in a background thread, a tuning job runs its search (``tuning``) as
training jobs, creating or updating an endpoint starts a serving process or container through
one launch path, and sagemaker-runtime InvokeEndpoint forwards to it. The state machine, the
endpoint Lambda, the deploy CLI and anyone with the AWS CLI pointed at moto see the same state.

Endpoints take SageMaker's times (``blue_green.EndpointClock``): CreateEndpoint provisions, starts
and health-checks a fleet (``_create``); UpdateEndpoint is a blue/green deployment with
auto-rollback (``_update``: provision and start the new fleet, shift all traffic, bake while the
rollback alarms are evaluated on the invocations ``invoke`` records in ``metrics``, then stop the
old fleet or roll back), both through ``_start_fleet``. Job state transitions live in
``jobs.JobLifecycle``. moto's server runs in this process (ThreadedMotoServer), so the patches reach every
client. These are private moto internals: moto is pinned in pyproject.toml.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

import requests
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint

from . import alarms, jobs, tuning, wire
from .blue_green import (
    PING_FAILED,
    DeploymentTimer,
    EndpointClock,
    FleetFault,
    Policy,
    alarm_model,
    set_alarm_state,
)
from .jobs import JobLifecycle
from .runtimes import Endpoint, JobResult, Runtime

log = logging.getLogger(__name__)
INVOKE_TIMEOUT = 60  # seconds: SageMaker's limit for a real-time invocation
EndpointKey = tuple[str, str, str]  # account, region, endpoint name


class FleetFailed(RuntimeError):
    """A new fleet did not come up; the message is the endpoint's FailureReason."""


class DataPlane:
    """Runs what moto's SageMaker records. Use as a context manager or call attach()/detach()."""

    _attached: DataPlane | None = None

    def __init__(
        self,
        runtime: Runtime,
        on_event: Callable[[str], None] | None = None,
        clock: EndpointClock | None = None,
    ):
        """``clock``: how SageMaker's endpoint times map to real time (``blue_green.EndpointClock``)."""
        self.runtime = runtime
        self.on_event = on_event or (lambda message: log.info("%s", message))
        self.clock = clock or EndpointClock()
        self.endpoints: dict[EndpointKey, Endpoint] = {}  # the fleet serving each endpoint's traffic
        self.job_logs: dict[str, str] = {}  # job name -> logs, for failure reports
        self.metrics = alarms.Metrics()  # AWS/SageMaker invocation metrics, for the rollback alarms
        self.notes: list[str] = []  # what this run's emulation did not enforce (shown by the run)
        self._faults: list[FleetFault] = []  # armed for the next updates' new fleets
        self._faulty: dict[str, FleetFault] = {}  # serving URL -> the fault injected there
        self._variants: dict[EndpointKey, str] = {}
        self._alarm_states: dict[str, str] = {}
        self._closing = threading.Event()
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []

    # -- attachment ------------------------------------------------------------------------------
    def attach(self) -> DataPlane:
        if DataPlane._attached is not None:
            raise RuntimeError("a DataPlane is already attached to moto's SageMaker backend")
        try:
            wire.install(self)
        except BaseException:
            wire.uninstall()  # nothing half-patched
            raise
        DataPlane._attached = self
        return self

    def detach(self, timeout: float = 30) -> None:
        """Undo the patches, stop every endpoint and wait for job threads (their runtime is closed)."""
        self._closing.set()  # deployments in their provisioning or baking wait stop there
        wire.uninstall()
        if DataPlane._attached is self:
            DataPlane._attached = None
        for key in list(self.endpoints):
            self._stop_key(key)
        self.runtime.close()
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self) -> DataPlane:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def _background(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except Exception:  # a bug here must not kill the moto server thread silently
                log.exception("background task %s failed", name)

        thread = threading.Thread(target=run, name=f"dataplane-{name}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    # -- jobs --------------------------------------------------------------------------------------
    def start_training(self, backend: Any, request: dict[str, Any]) -> None:
        JobLifecycle(backend, "training").started(request["TrainingJobName"], request)
        self._background(request["TrainingJobName"], lambda: self._run_training(backend, request))

    def _run_training(self, backend: Any, request: dict[str, Any]) -> JobResult:
        name, lifecycle = request["TrainingJobName"], JobLifecycle(backend, "training")
        lifecycle.running(name)
        self.on_event(f"training job {name} started ({self.runtime.name} runtime)")
        self._note_job_limits(request)
        result = self._guarded(lambda: self.runtime.run_training(request))
        self.job_logs[name] = result.logs  # kept for failure reports and for --keep inspection
        status = lifecycle.finished(name, request, result)
        self.on_event(
            f"training job {name} {status.lower()}"
            + (f": {result.failure_reason}" if not result.succeeded else "")
        )
        return result

    def start_processing(self, backend: Any, request: dict[str, Any]) -> None:
        name, lifecycle = request["ProcessingJobName"], JobLifecycle(backend, "processing")
        lifecycle.started(name, request)

        def run() -> None:
            self.on_event(f"processing job {name} started ({self.runtime.name} runtime)")
            result = self._guarded(lambda: self.runtime.run_processing(request))
            self.job_logs[name] = result.logs
            status = lifecycle.finished(name, request, result)
            self.on_event(f"processing job {name} {status.lower()}")

        self._background(name, run)

    # -- hyperparameter tuning --------------------------------------------------------------------
    def start_tuning(self, backend: Any, request: dict[str, Any]) -> None:
        name = request["HyperParameterTuningJobName"]
        job = backend.hyper_parameter_tuning_jobs[name]
        job.hyper_parameter_tuning_job_status = "InProgress"
        job.best_training_job = job.OverallBestTrainingJob = None
        job.hyper_parameter_tuning_end_time = job.tuning_job_completion_details = None
        self._background(name, lambda: self._run_tuning(backend, request))

    def _run_tuning(self, backend: Any, request: dict[str, Any]) -> None:
        """SageMaker local mode has no tuning: the search's candidates as training jobs, at most
        MaxParallelTrainingJobs at a time; the best by the objective metric in the logs."""
        name = request["HyperParameterTuningJobName"]
        job = backend.hyper_parameter_tuning_jobs[name]
        config, definition = request["HyperParameterTuningJobConfig"], request["TrainingJobDefinition"]
        objective, limits = config["HyperParameterTuningJobObjective"], config["ResourceLimits"]
        candidates = tuning.sample_hyperparameters(
            config.get("ParameterRanges", {}),
            int(limits["MaxNumberOfTrainingJobs"]),
            config.get("Strategy", "Random"),
        )
        trials: list[tuning.Trial] = []
        lock, running = threading.Lock(), [0]

        def trial(index: int, tuned: dict[str, str]) -> None:
            request = _trial_request(name, index, definition, tuned)
            with lock:
                _record_training_job(backend, request)
                JobLifecycle(backend, "training").started(request["TrainingJobName"], request)
                running[0] += 1
                job.training_job_status_counters = tuning.counters(trials, in_progress=running[0])
            result = self._run_training(backend, request)
            metrics = tuning.parse_metrics(
                result.logs, definition["AlgorithmSpecification"].get("MetricDefinitions")
            )
            done = tuning.Trial(
                request["TrainingJobName"],
                tuned,
                result.succeeded,
                metrics.get(objective["MetricName"]),
                result.failure_reason,
            )
            with lock:
                trials.append(done)
                running[0] -= 1
                job.training_job_status_counters = tuning.counters(trials, in_progress=running[0])

        workers = max(1, min(int(limits.get("MaxParallelTrainingJobs", 1)), self.runtime.max_parallel_jobs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"tuning-{name}") as pool:
            list(pool.map(lambda item: trial(*item), enumerate(candidates, start=1)))
        self._finish_tuning(backend, name, objective, trials)

    def _finish_tuning(
        self, backend: Any, name: str, objective: dict[str, Any], trials: list[tuning.Trial]
    ) -> None:
        job, winner = (
            backend.hyper_parameter_tuning_jobs[name],
            tuning.best(trials, objective["Type"] == "Maximize"),
        )
        counters = tuning.counters(trials)
        job.training_job_status_counters = counters
        job.objective_status_counters = {
            "Succeeded": counters["Completed"],
            "Pending": 0,
            "Failed": len(trials) - counters["Completed"],
        }
        job.hyper_parameter_tuning_end_time = job.last_modified_time = utcnow()
        if winner is None:
            job.failure_reason = tuning.failure_reason(trials, objective["MetricName"])
            job.hyper_parameter_tuning_job_status = "Failed"
        else:
            trained = backend.training_jobs[winner.job_name]
            job.best_training_job = job.OverallBestTrainingJob = {
                "TrainingJobName": winner.job_name,
                "TrainingJobArn": trained.arn,
                "TuningJobName": name,
                "CreationTime": trained.creation_time,
                "TrainingStartTime": trained.creation_time,
                "TrainingEndTime": trained.training_end_time,
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": winner.hyperparameters,
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "Type": objective["Type"],
                    "MetricName": objective["MetricName"],
                    "Value": winner.objective,
                },
                "ObjectiveStatus": "Succeeded",
            }
            job.hyper_parameter_tuning_job_status = "Completed"
        jobs.changed()
        self.on_event(f"tuning job {name} {job.hyper_parameter_tuning_job_status.lower()}")

    # -- endpoints: one launch path for create and update -----------------------------------------
    def start_endpoint(self, backend: Any, name: str) -> None:
        endpoint = backend.endpoints[name]
        endpoint.endpoint_status = "Creating"
        config_name = endpoint.endpoint_config_name
        self._background(f"endpoint-{name}", lambda: self._create(backend, name, config_name))

    def inject(self, fault: FleetFault) -> None:
        """Make the next UpdateEndpoint's new fleet fail as ``fault`` says (``--fail-update``)."""
        self._faults.append(fault)

    def update_endpoint(
        self,
        backend: Any,
        name: str,
        config_name: str,
        deployment_config: dict[str, Any] | None = None,
        retain_deployment_config: bool = False,
    ) -> FakeEndpoint:
        """UpdateEndpoint as SageMaker does it: a blue/green deployment with auto-rollback (``blue_green``).

        Validates synchronously (the endpoint is InService, the config and the rollback alarms
        exist, the policy's ranges), then deploys in the background: provision, health-check,
        shift all traffic, bake while the alarms watch, then terminate the old fleet or roll back
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html).
        """
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise ValidationError(message=f'Could not find endpoint "{self.endpoint_arn(backend, name)}".')
        if endpoint.endpoint_status != "InService":
            raise ValidationError(
                message=f'Cannot update in-progress endpoint "{self.endpoint_arn(backend, name)}".'
            )
        backend.describe_endpoint_config(config_name)  # ValidationException if missing
        if deployment_config is None and retain_deployment_config:
            deployment_config = getattr(endpoint, "last_deployment_config", None)
        policy = Policy.of_request(deployment_config, backend.account_id, backend.region_name)
        endpoint.endpoint_status, endpoint.failure_reason = "Updating", None
        endpoint.last_deployment_config = policy.given
        endpoint.pending_deployment_summary = {"EndpointConfigName": config_name, "StartTime": utcnow()}
        endpoint.last_modified_time = utcnow()
        fault = self._faults.pop(0) if self._faults else None
        self._background(f"endpoint-{name}", lambda: self._update(backend, name, config_name, policy, fault))
        return endpoint

    def _create(self, backend: Any, name: str, config_name: str) -> None:
        endpoint = backend.endpoints[name]
        if not self.clock.sleep(self.clock.provisioning_s, self._closing):
            return
        try:
            started, variants = self._start_fleet(backend, name, config_name)
        except FleetFailed as failure:
            endpoint.failure_reason = str(failure)[:1024]
            endpoint.last_modified_time = utcnow()
            endpoint.endpoint_status = "Failed"
            self.on_event(f"endpoint {name} failed: {endpoint.failure_reason}")
            return
        if not self._still_there(backend, name, started):
            return
        with self._lock:
            self.endpoints[self._key(backend, name)] = started
        endpoint.production_variants = variants
        endpoint.last_modified_time = utcnow()
        endpoint.endpoint_status = "InService"
        self.on_event(f"endpoint {name} InService at {started.url} ({config_name})")

    def _update(
        self, backend: Any, name: str, config_name: str, policy: Policy, fault: FleetFault | None
    ) -> None:
        endpoint, key = backend.endpoints[name], self._key(backend, name)
        timer = DeploymentTimer(self.clock)
        if policy.traffic != "ALL_AT_ONCE":
            self._note(f"UpdateEndpoint {policy.traffic} traffic shifting is emulated as ALL_AT_ONCE")
        if not timer.wait(self.clock.provisioning_s, self._closing):
            return
        try:
            started, variants = self._start_fleet(backend, name, config_name, fault)
        except FleetFailed as failure:  # nothing moved: the old fleet kept serving
            # The failed fleet's instances are released before the update ends, as on AWS: the
            # endpoint stays Updating meanwhile, so a poller sees more than one answer.
            self.clock.sleep(self.clock.rollback_s, self._closing)
            self._finish(endpoint, f"Update to {config_name} failed: {failure}")
            return
        if not self._still_there(backend, name, started):
            return
        with self._lock:  # all at once: every request now goes to the new fleet
            old = self.endpoints.get(key)
            self.endpoints[key] = started
        self.on_event(
            f"endpoint {name}: all traffic on {config_name}; baking {policy.termination_wait_s} s"
            f" (AWS time) with rollback alarms {', '.join(policy.alarms) or 'none'}"
        )
        rollback = self._bake(backend, name, policy, timer)
        if rollback is not None:
            endpoint.endpoint_status = "RollingBack"
            self.on_event(f"endpoint {name}: rolling back to {endpoint.endpoint_config_name}: {rollback}")
            with self._lock:
                if old is not None and self.endpoints.get(key) is started:
                    self.endpoints[key] = old
            self._guarded_stop(started)
            self.clock.sleep(self.clock.rollback_s, self._closing)
            self._finish(endpoint, f"Update to {config_name} rolled back: {rollback}")
            return
        if old is not None:  # the baking period passed: terminate the old fleet
            self._guarded_stop(old)
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = variants
        self._finish(endpoint, None)

    def _start_fleet(
        self, backend: Any, name: str, config_name: str, fault: FleetFault | None = None
    ) -> tuple[Endpoint, list[dict[str, Any]]]:
        """Start ``config_name``'s containers; FleetFailed with SageMaker's reason when they do not come up."""
        container, count, variants = _serving_spec(backend, config_name)
        variant = variants[0]["VariantName"]
        self.on_event(f"endpoint {name}: starting {container['ModelDataUrl']} ({config_name})")
        problem = self.runtime.image_problem(container.get("Image", ""))
        if problem:
            raise FleetFailed(problem)
        if fault is FleetFault.PING:
            raise FleetFailed(
                PING_FAILED.format(variant=variant) + " (fault injected by the emulator: --fail-update ping)"
            )
        try:
            started = self.runtime.start_endpoint(name, container, count)
        except Exception as error:
            raise FleetFailed(f"{type(error).__name__}: {error}") from error
        if fault is FleetFault.INVOCATIONS_5XX:
            self._faulty[started.url] = fault
        self._variants[self._key(backend, name)] = variant
        return started, variants

    def _bake(self, backend: Any, name: str, policy: Policy, timer: DeploymentTimer) -> str | None:
        """Hold the baking period; the reason to roll back (an alarm in ALARM...), or None."""
        watched = self._rollback_alarms(backend, policy)
        remaining = float(policy.termination_wait_s)
        step = min([spec.period for spec in watched] or [remaining or 1.0])
        while remaining > 0:
            wait = min(step, remaining)
            if not timer.wait(wait, self._closing):
                return "the emulator stopped"
            remaining -= wait
            if name not in backend.endpoints:
                return "the endpoint was deleted"
            if policy.max_execution_s and timer.elapsed_s() > policy.max_execution_s:
                return (
                    f"the deployment exceeded MaximumExecutionTimeoutInSeconds ({policy.max_execution_s} s)"
                )
            for spec in watched:
                state = alarms.evaluate(spec, self.metrics, self.clock.now())
                self._show_alarm(backend, spec.name, state)
                if state.value == "ALARM":
                    return f"alarm {spec.name} went to ALARM during the baking period ({state.reason})"
        return None

    def _rollback_alarms(self, backend: Any, policy: Policy) -> list[alarms.AlarmSpec]:
        watched = []
        for alarm_name in policy.alarms:
            model = alarm_model(backend.account_id, backend.region_name, alarm_name)
            try:
                watched.append(alarms.AlarmSpec.of_moto(model))
            except (alarms.UnsupportedAlarm, AttributeError, TypeError) as error:
                self._note(f"rollback alarm {alarm_name} is not evaluated offline: {error}")
        return watched

    def _show_alarm(self, backend: Any, alarm_name: str, state: alarms.AlarmState) -> None:
        if self._alarm_states.get(alarm_name) != state.value:
            self._alarm_states[alarm_name] = state.value
            set_alarm_state(backend.account_id, backend.region_name, alarm_name, state.value, state.reason)
            self.on_event(f"alarm {alarm_name}: {state.value} ({state.reason})")

    def _finish(self, endpoint: Any, failure_reason: str | None) -> None:
        endpoint.failure_reason = failure_reason[:1024] if failure_reason else None
        endpoint.pending_deployment_summary = None
        endpoint.last_modified_time = utcnow()
        endpoint.endpoint_status = "InService"
        outcome = f"rolled back or failed: {failure_reason}" if failure_reason else "updated"
        self.on_event(
            f"endpoint {endpoint.endpoint_name} InService ({endpoint.endpoint_config_name}), {outcome}"
        )

    def _still_there(self, backend: Any, name: str, started: Endpoint) -> bool:
        """DeleteEndpoint may have come while the fleet started: then it must not serve."""
        if name in backend.endpoints and not self._closing.is_set():
            return True
        self._guarded_stop(started)
        return False

    def _note_job_limits(self, request: dict[str, Any]) -> None:
        """The run options offline cannot honour, said in the run's output (docs/architecture.md,
        "Execution input"): no volume is made, and local mode has no time limit and no FastFile."""
        self._note("VolumeSizeInGB is recorded on the jobs, not enforced offline (no volume is made)")
        if self.runtime.name != "docker":
            return
        self._note(
            "MaxRuntimeInSeconds is not enforced on the Docker runtime (the process runtime stops a job past it)"
        )
        if request.get("AlgorithmSpecification", {}).get("TrainingInputMode") == "FastFile":
            self._note("FastFile input mode runs as File in SageMaker local mode")

    def _note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
        self.on_event(message)

    @staticmethod
    def _key(backend: Any, name: str) -> EndpointKey:
        return backend.account_id, backend.region_name, name

    def stop_endpoint(self, backend: Any, name: str) -> None:
        self._stop_key((backend.account_id, backend.region_name, name))

    def _stop_key(self, key: EndpointKey) -> None:
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

    @staticmethod
    def endpoint_arn(backend: Any, name: str) -> str:
        return FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)

    # -- sagemaker-runtime InvokeEndpoint --------------------------------------------------------
    def invoke(self, response: Any) -> tuple[int, dict[str, str], bytes | str]:
        """InvokeEndpoint: forward to the fleet serving the endpoint, record SageMaker's metrics."""
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
        variant = self._variants.get((response.current_account, response.region, name), "AllTraffic")
        started = time.perf_counter()
        answer = self._forward(name, endpoint, body, headers)
        latency_us = (time.perf_counter() - started) * 1e6 if answer[0] else None
        # No answer at all counts as a server error of the model (Invocation5XXErrors).
        self.metrics.record(
            name, variant, at=self.clock.now(), status=answer[0] or 500, latency_us=latency_us
        )
        return self._reply(name, variant, *answer)

    def _forward(
        self, name: str, endpoint: Endpoint, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes, str]:
        """(status or 0 when the container did not answer, content type, content, reason)."""
        if self._faulty.get(endpoint.url) is FleetFault.INVOCATIONS_5XX:
            text = b'{"error": "fault injected by the emulator: --fail-update 5xx"}'
            return 500, "application/json", text, ""
        try:
            reply = requests.post(
                f"{endpoint.url}/invocations", data=body, headers=headers, timeout=INVOKE_TIMEOUT
            )
        except requests.Timeout:
            # SageMaker's limit for a real-time invocation is 60 s; the caller sees which endpoint hung.
            return (
                0,
                "",
                b"",
                (
                    f"Endpoint {name}: the model container did not answer /invocations within "
                    f"{INVOKE_TIMEOUT:g} s (SageMaker's invocation timeout)"
                ),
            )
        except requests.RequestException as error:
            return 0, "", b"", f"Endpoint {name}: received no response from primary: {error}"
        return (
            reply.status_code,
            reply.headers.get("Content-Type", "application/octet-stream"),
            reply.content,
            "",
        )

    @staticmethod
    def _reply(
        name: str, variant: str, status: int, content_type: str, content: bytes, reason: str
    ) -> tuple[int, dict[str, str], bytes | str]:
        if not status:
            return _rest_error(424, "ModelError", reason)
        if status >= 400:
            # AWS wraps container errors as ModelError (HTTP 424) with the original status.
            text = content.decode(errors="replace")[:512]
            kind = "server" if status >= 500 else "client"
            message = f"Received {kind} error ({status}) from primary with message {text!r}."
            return _rest_error(424, "ModelError", message, OriginalStatusCode=status, OriginalMessage=text)
        return 200, {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": variant}, content

    @staticmethod
    def _guarded(run: Callable[[], JobResult]) -> JobResult:
        """A runtime error (S3 missing, Docker gone...) is a failed job, as SageMaker would report it."""
        try:
            return run()
        except Exception as error:
            log.exception("runtime error")
            return JobResult(False, f"InternalServerError: {type(error).__name__}: {error}"[:1024])


def _serving_spec(backend: Any, config_name: str) -> tuple[dict[str, Any], int, list[dict[str, Any]]]:
    """(container, instance count, DescribeEndpoint ProductionVariants with DeployedImages)."""
    config = backend.describe_endpoint_config(config_name)
    variant = config["ProductionVariants"][0]
    model = backend.describe_model(variant["ModelName"])
    container = model.primary_container or (model.containers or [None])[0]
    if not container or not container.get("ModelDataUrl"):
        raise ValueError(f"model {variant['ModelName']} has no PrimaryContainer.ModelDataUrl")
    count = int(variant.get("InitialInstanceCount") or 1)
    image = container.get("Image", "")
    variants = [
        {
            "VariantName": v["VariantName"],
            "CurrentInstanceCount": int(v.get("InitialInstanceCount") or 1),
            "DesiredInstanceCount": int(v.get("InitialInstanceCount") or 1),
            "CurrentWeight": float(v.get("InitialVariantWeight", 1.0)),
            "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
            # A local image has no registry digest: the resolved image is the name as given.
            "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": utcnow()}],
        }
        for v in config["ProductionVariants"]
    ]
    return container, count, variants


def _trial_request(
    tuning_name: str, index: int, definition: dict[str, Any], tuned: dict[str, str]
) -> dict[str, Any]:
    """The CreateTrainingJob request of one trial; AWS names them <tuning job>-<3 digits>-<8 hex>."""
    static = {
        k: v for k, v in definition.items() if k not in ("StaticHyperParameters", "HyperParameterRanges")
    }
    return {
        "TrainingJobName": f"{tuning_name}-{index:03d}-{uuid.uuid4().hex[:8]}",
        "HyperParameters": {**(definition.get("StaticHyperParameters") or {}), **tuned},
        **static,
    }


def _record_training_job(backend: Any, request: dict[str, Any]) -> None:
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
        enable_network_isolation=bool(request.get("EnableNetworkIsolation")),
        enable_inter_container_traffic_encryption=False,
        enable_managed_spot_training=False,
        checkpoint_config={},
        debug_hook_config={},
        debug_rule_configurations=[],
        tensor_board_output_config={},
        experiment_config={},
    )


def _rest_error(status: int, code: str, message: str, **extra: Any) -> tuple[int, dict[str, str], str]:
    # sagemaker-runtime is a rest-json service: botocore reads the code from x-amzn-ErrorType.
    # moto takes a tuple response's HTTP status from its "status" header.
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "status": str(status)}
    return status, headers, json.dumps({"message": message, **extra})
