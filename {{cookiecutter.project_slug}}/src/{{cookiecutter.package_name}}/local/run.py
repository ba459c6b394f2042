"""``make local-pipeline``: the whole pipeline offline, with the artifacts that go to AWS.

    python -m <package>.local.run [--runtime docker|process] [--data PATH [--label-column NAME]]
        [--inject-drift | --fail-training] [--keep] [execution input flags: --tune, --max-jobs N, ...]

Prepares the data first (``dataset.prepare``: the built-in sample or ``--data``, refused with one
line when unusable), then starts moto with the real stack (``control_plane``), attaches a
data-plane runtime to its SageMaker backend and runs a scenario (``scenarios.SCENARIOS``): two
executions through ``stepfunctions.start_execution`` (create path, then update path; or the drift
block; or a failed training first), each followed by its checks. ``--keep`` leaves moto and the
endpoint up until Ctrl-C (then exits 0 after cleaning up). The exit code is 1 when an expected
outcome did not happen, 2 when the data or the runtime is refused.

Outputs go to ``.local-pipeline/<run>/``: each execution's history, the decision files and reports
downloaded from S3, the job logs, and ``harness.log`` (moto's and the harness's own log lines).
What is shown lives in ``report``; this module orchestrates.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.live import Live

from .. import data, deploy, polling, s3uri, settings, tarballs
from . import answers, report, sagemaker_backend
from .control_plane import DUMMY_CREDENTIALS, LOCAL_IMAGE_URI, ControlPlane
from .dataset import DataRefused, DataSet, prepare
from .runtimes import Runtime, RuntimeUnavailable, default_runtime_name
from .runtimes.process import ProcessRuntime
from .sagemaker_backend import DataPlane
from .scenarios import SCENARIOS, Observation, Scenario, Step, run_checks

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
POLL_SECONDS = 0.25
LOGGERS = ("moto", "werkzeug", __package__.rsplit(".", 1)[0])  # moto's and ours: to the run folder


@dataclass
class Failure:
    """A failed job or endpoint: what the console shows instead of a traceback."""

    kind: str  # training job, processing job, tuning job, endpoint, invocation
    name: str
    reason: str
    log_tail: str = ""
    log_file: Path | None = None


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
    after: str
    endpoint_config: str
    model_data_url: str
    rows: int
    matches: bool
    error: str = ""


@dataclass
class PipelineResult:
    runtime: str
    run_dir: Path
    bucket: str = settings.S3_BUCKET
    data_source: str = "built-in sample"
    executions: list[ExecutionOutcome] = field(default_factory=list)
    invocations: list[InvokeCheck] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[tuple[str, int]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def make_runtime(name: str, cp: ControlPlane, work: Path, image: str = LOCAL_IMAGE_URI) -> Runtime:
    if name == "process":
        return ProcessRuntime(cp.endpoint_url, cp.region, work)
    from .runtimes.docker import DockerRuntime  # imports the sagemaker SDK: only when asked for

    return DockerRuntime(cp.endpoint_url, cp.container_endpoint_url, cp.region, work, image)


class Harness:
    """One local-pipeline run: data, control plane, data plane, executions, checks. Always call close()."""

    def __init__(
        self,
        runtime: str,
        run_dir: Path,
        console: Console | None = None,
        image: str = LOCAL_IMAGE_URI,
        *,
        data_source: Path | None = None,
        label_column: str = settings.LABEL_COLUMN,
        execution_input: dict[str, Any] | None = None,
    ):
        self.runtime_name = runtime
        self.run_dir = run_dir
        self.console = console or Console()
        self.image = image
        self.data_source, self.label_column = data_source, label_column
        self.execution_input = dict(execution_input or {})
        self.cp = ControlPlane(host="0.0.0.0" if runtime == "docker" else "127.0.0.1")
        self.plane: DataPlane | None = None
        self.dataset: DataSet | None = None
        self.queue_url = ""
        self.last_event = ""
        self.result = PipelineResult(runtime, run_dir)
        self._log_handler: logging.Handler | None = None
        self._reported: set[tuple[str, str]] = set()

    # -- set-up and tear-down ----------------------------------------------------------------------
    def prepare_data(self) -> DataSet:
        """Validate and lay out the data (before moto starts: bad data costs no start-up)."""
        if self.dataset is None:
            self.dataset = prepare(self.data_source, self.run_dir / "data", self.label_column)
            self.result.data_source = self.dataset.source
        return self.dataset

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        dataset = self.prepare_data()
        self._log_handler = route_logs(self.run_dir / "harness.log")
        self.cp.start()
        self.stack = self.cp.deploy(image_uri=self.image)
        runtime = make_runtime(self.runtime_name, self.cp, self.run_dir / "work", self.image)
        self.plane = DataPlane(runtime, on_event=self._event).attach()
        self._subscribe_queue()
        self.upload_training_file(dataset.train)
        self.cp.client("s3").upload_file(str(dataset.holdout), settings.S3_BUCKET, "data/holdout/holdout.csv")

    def close(self) -> None:
        """Stop executions, endpoints, containers and moto; safe after a failure or Ctrl-C, and twice."""
        try:
            self._abort_running_executions()
            if self.plane is not None:
                self.plane.detach()
                self.plane = None
        finally:
            self.cp.stop()
            if self._log_handler is not None:
                unroute_logs(self._log_handler)
                self._log_handler = None

    def _abort_running_executions(self) -> None:
        """After Ctrl-C an execution may still run in moto's interpreter: stop it before moto goes."""
        if self.cp.port is None or not getattr(self, "stack", None):
            return
        sfn = self.cp.client("stepfunctions")
        with contextlib.suppress(Exception):  # best effort: moto is torn down next anyway
            running = sfn.list_executions(
                stateMachineArn=self.stack.state_machine_arn, statusFilter="RUNNING"
            )
            for execution in running["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"], cause="local-pipeline interrupted")

    def _event(self, message: str) -> None:
        self.last_event = message
        with (self.run_dir / "events.log").open("a") as log:
            log.write(f"{datetime.now(UTC).isoformat()} {message}\n")

    def _subscribe_queue(self) -> None:
        """An SQS queue on the notification topic, so the run can read what SNS published."""
        sqs, sns = self.cp.client("sqs"), self.cp.client("sns")
        self.queue_url = sqs.create_queue(QueueName=f"{settings.PROJECT_SLUG}-local-notifications")[
            "QueueUrl"
        ]
        attributes = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        sns.subscribe(
            TopicArn=self.stack.outputs["NotificationTopicArn"],
            Protocol="sqs",
            Endpoint=attributes["Attributes"]["QueueArn"],
        )

    def notifications(self) -> list[dict[str, Any]]:
        """Drain the queue: the SNS envelopes (Subject, Message) published since the last call."""
        sqs, found = self.cp.client("sqs"), []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    # -- executions --------------------------------------------------------------------------------
    def execute(
        self, name: str, execution_input: dict[str, Any] | None = None, timeout: float = 1800
    ) -> ExecutionOutcome:
        sfn = self.cp.client("stepfunctions")
        given = self.execution_input if execution_input is None else execution_input
        arn = self.cp.start_execution(name, execution_input=given)
        start = time.monotonic()
        with Live(console=self.console, refresh_per_second=4, transient=True) as live:

            def show(status: str) -> None:
                view = report.live_view(
                    name, status, self.cp.history(arn), time.monotonic() - start, self.last_event
                )
                live.update(view)

            try:
                status = polling.wait_until(
                    lambda: sfn.describe_execution(executionArn=arn)["status"],
                    lambda s: s in TERMINAL,
                    timeout,
                    POLL_SECONDS,
                    what=f"execution {name}",
                    on_poll=show,
                )
            except polling.WaitTimeout as error:
                raise TimeoutError(str(error)) from None
        events = self.cp.history(arn)
        outcome = ExecutionOutcome(
            name, arn, status, time.monotonic() - start, events, report.state_rows(events)
        )
        failed = [e for e in events if e["type"] == "ExecutionFailed"]
        if failed:
            details = failed[0].get("executionFailedEventDetails", {})
            outcome.error = f"{details.get('error', '')}: {details.get('cause', '')}"
        (self.run_dir / f"{name}-history.json").write_text(
            json.dumps({"events": events}, indent=2, default=_json_default)
        )
        outcome.validation = self._read_json(f"runs/{name}/validation/decision.json")
        outcome.evaluation = self._read_json(f"runs/{name}/evaluation/decision.json")
        self._download_reports(name)
        outcome.failures = self.failures()
        if outcome.failures:
            report.render_failures(self.console, outcome.failures)
        self.result.executions.append(outcome)
        return outcome

    def failures(self) -> list[Failure]:
        """Failed jobs and endpoints not reported yet, with the container's reason and log tail."""
        sm, found = self.cp.client("sagemaker"), []
        listings = (
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
        for kind, lister, key, name_field, describer in listings:
            for summary in getattr(sm, lister)(StatusEquals="Failed").get(key, []):
                name = summary[name_field]
                if (kind, name) not in self._reported:
                    reason = getattr(sm, describer)(**{name_field: name}).get("FailureReason", "")
                    found.append(self._failure(kind, name, reason))
        with contextlib.suppress(ClientError):
            endpoint = sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME)
            reason = endpoint.get("FailureReason", "")
            if reason and ("endpoint", reason) not in self._reported:
                self._reported.add(("endpoint", reason))
                found.append(self._failure("endpoint", settings.ENDPOINT_NAME, reason, mark=False))
        return found

    def _failure(self, kind: str, name: str, reason: str, mark: bool = True) -> Failure:
        if mark:
            self._reported.add((kind, name))
        logs = self.plane.job_logs.get(name, "") if self.plane else ""
        log_file = None
        if logs:
            log_file = self.run_dir / f"{name}.log"
            log_file.write_text(logs)
        return Failure(
            kind, name, reason or "no FailureReason", "\n".join(logs.strip().splitlines()[-15:]), log_file
        )

    def _read_json(self, key: str) -> dict[str, Any] | None:
        s3 = self.cp.client("s3")
        try:
            return json.loads(s3.get_object(Bucket=settings.S3_BUCKET, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def _download_reports(self, execution: str) -> None:
        s3 = self.cp.client("s3")
        listed = s3.list_objects_v2(Bucket=settings.S3_BUCKET, Prefix=f"runs/{execution}/").get(
            "Contents", []
        )
        for item in listed:
            if item["Key"].endswith((".html", ".json")):
                target = self.run_dir / item["Key"].removeprefix("runs/")
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(settings.S3_BUCKET, item["Key"], str(target))

    # -- the endpoint ------------------------------------------------------------------------------
    def endpoint_state(self) -> tuple[str, str] | None:
        """(endpoint config, model data URL) of the endpoint, None when there is none."""
        sm = self.cp.client("sagemaker")
        try:
            config = sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME)["EndpointConfigName"]
        except sm.exceptions.ClientError:
            return None
        model = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
        return config, sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"]

    def runtime_client(self) -> Any:
        """sagemaker-runtime with no retry and a read timeout just above the invocation timeout, so a
        hung model surfaces as the ModelError that names the endpoint, once."""
        timeout = sagemaker_backend.INVOKE_TIMEOUT + 5
        config = Config(read_timeout=timeout, retries={"total_max_attempts": 1})
        return self.cp.client("sagemaker-runtime", config=config)

    def check_endpoint(self, after: str) -> InvokeCheck | None:
        """Send holdout rows through sagemaker-runtime and compare with the model's own predictions."""
        state = self.endpoint_state()
        if state is None:
            return None
        config, model_url = state
        assert self.dataset is not None
        rows, body = answers.request_body(data.read_csv(self.dataset.holdout))
        try:
            reply = self.runtime_client().invoke_endpoint(
                EndpointName=settings.ENDPOINT_NAME,
                Body=body.encode(),
                ContentType="text/csv",
                Accept="application/json",
            )
            got = json.loads(reply["Body"].read())["predictions"]
        except (ClientError, BotoCoreError) as error:
            check = InvokeCheck(
                after, config, model_url, 0, False, f"endpoint {settings.ENDPOINT_NAME}: {error}"
            )
            report.render_failures(self.console, [Failure("invocation", settings.ENDPOINT_NAME, str(error))])
        else:
            want = answers.expected(self._model_dir(model_url), rows)
            check = InvokeCheck(after, config, model_url, len(got), answers.agree(got, want))
        self.result.invocations.append(check)
        return check

    def _model_dir(self, uri: str) -> Path:
        bucket, key = s3uri.split(uri, key_required=True)
        folder = self.run_dir / "models" / key.replace("/", "_")
        archive = folder.with_suffix(".download")
        archive.parent.mkdir(parents=True, exist_ok=True)
        self.cp.client("s3").download_file(bucket, key, str(archive))
        return tarballs.extract(archive, folder)

    def endpoint_configs(self) -> set[str]:
        sm = self.cp.client("sagemaker")
        return {c["EndpointConfigName"] for c in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]}

    def upload_training_file(self, path: Path) -> None:
        self.cp.client("s3").upload_file(str(path), settings.S3_BUCKET, "data/train/train.csv")

    def list_artifacts(self) -> list[tuple[str, int]]:
        s3, found = self.cp.client("s3"), []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.S3_BUCKET):
            found += [(item["Key"], item["Size"]) for item in page.get("Contents", [])]
        return found


def one_class_copy(train_csv: Path, target: Path) -> Path:
    """The training set with every label set to the first row's: valid data, untrainable model."""
    with train_csv.open(newline="") as handle:
        rows = list(csv.reader(handle))
    label = rows[0].index(settings.LABEL_COLUMN)
    first = rows[1][label]
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        csv.writer(handle).writerows([rows[0], *([*r[:label], first, *r[label + 1 :]] for r in rows[1:])])
    return target


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def training_sets(harness: Harness) -> dict[str, Path]:
    dataset = harness.prepare_data()
    one_class = harness.run_dir / "data" / "one-class" / "train.csv"
    return {
        "train": dataset.train,
        "drifted": dataset.drifted,
        "one-class": one_class_copy(dataset.train, one_class),
    }


def run_step(harness: Harness, step: Step, name: str, training_file: Path) -> Observation:
    """Upload the step's training set, run one execution, observe what changed."""
    before, configs = harness.endpoint_state(), harness.endpoint_configs()
    harness.upload_training_file(training_file)
    outcome = harness.execute(name)
    notes = harness.notifications()
    harness.result.notifications += notes
    check = harness.check_endpoint(name)
    return Observation(
        name=name,
        status=outcome.status,
        error=outcome.error,
        validation=outcome.validation,
        evaluation=outcome.evaluation,
        states=[row["name"] for row in outcome.states],
        before=before,
        after=harness.endpoint_state(),
        new_configs=harness.endpoint_configs() - configs,
        notifications=notes,
        answers_match=None if check is None else check.matches,
    )


def scenario_for(inject_drift: bool, fail_training: bool) -> Scenario:
    return SCENARIOS["inject-drift" if inject_drift else "fail-training" if fail_training else "normal"]


def run_pipeline(
    harness: Harness, *, inject_drift: bool = False, fail_training: bool = False, stamp: str | None = None
) -> PipelineResult:
    """The scenario's executions with their checks; fills ``harness.result`` (phases, problems)."""
    result, scenario = harness.result, scenario_for(inject_drift, fail_training)
    stamp = stamp or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        result.phases[name] = now - clock
        clock = now

    harness.start()
    files = training_sets(harness)
    phase("moto start+deploy")
    for index, step in enumerate(scenario.steps, start=1):
        name = f"{step.prefix}-{stamp}" + ("" if index == 1 else f"-{index}")
        result.problems += run_checks(step, run_step(harness, step, name, files[step.training_set]))
        phase(f"execution {index}")
    harness.upload_training_file(files["train"])
    result.artifacts = harness.list_artifacts()
    keys = [key for key, _ in result.artifacts]
    for suffix in ("model.tar.gz", "validation/decision.json", "evaluation/decision.json"):
        if not any(key.endswith(suffix) for key in keys):
            result.problems.append(f"no *{suffix} in s3://{settings.S3_BUCKET}")
    phase("checks")
    return result


def route_logs(path: Path) -> logging.Handler:
    """moto's and the harness's log lines to the run folder, not the console."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    return handler


def unroute_logs(handler: logging.Handler) -> None:
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.removeHandler(handler)
        logger.propagate = True
    handler.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runtime",
        choices=("docker", "process"),
        help="default: docker if a daemon answers and the image exists",
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="a folder with train/ and holdout/ CSVs, or one CSV to split"
    )
    parser.add_argument("--label-column", default=settings.LABEL_COLUMN, help="the label's column in --data")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--inject-drift", action="store_true", help="drifted training data for the second run")
    what.add_argument("--fail-training", action="store_true", help="make the first run's training fail")
    parser.add_argument(
        "--keep", action="store_true", help="leave moto and the endpoint running until Ctrl-C"
    )
    parser.add_argument(
        "--image", default=LOCAL_IMAGE_URI, help="image for the docker runtime (make build-offline)"
    )
    parser.add_argument("--out", type=Path, default=Path(".local-pipeline"))
    deploy.add_execution_input_flags(parser)
    return parser.parse_args(argv)


def keep_serving(harness: Harness, console: Console) -> None:
    """Until Ctrl-C (a normal way to end a --keep session: the caller cleans up and exits 0)."""
    endpoint = harness.plane.endpoint_for(settings.ENDPOINT_NAME) if harness.plane else None
    env = " ".join(f"{k.upper()}={v}" for k, v in DUMMY_CREDENTIALS.items())
    report.render_keep(
        console,
        harness.cp.endpoint_url,
        f"{env} AWS_DEFAULT_REGION={harness.cp.region}",
        endpoint.url if endpoint else "-",
        harness.stack.state_machine_arn,
    )
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


def quiet_moto() -> None:
    """moto warns about every template resource it does not model (alarms, OIDC...): not news here."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"moto\.")
    logging.getLogger("moto").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_moto()
    console = Console()
    try:
        execution_input = deploy.execution_input_from(args).to_json()
    except deploy.DeployError as error:
        console.print(f"[red]{error}[/]")
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    try:  # before anything starts: bad data is refused in one line
        prepared = prepare(args.data, args.out / stamp / "data", args.label_column)
    except DataRefused as error:
        console.print(f"[red]Refused: {error}[/]", soft_wrap=True)
        return 2
    runtime = args.runtime or default_runtime_name(args.image)
    if runtime == "process" and not args.runtime:
        console.print(
            f"[yellow]No Docker daemon or no image {args.image}: using the process runtime "
            "(make build-offline for Docker).[/]"
        )
    harness = Harness(runtime, args.out / stamp, console, args.image, execution_input=execution_input)
    harness.dataset, harness.result.data_source = prepared, prepared.source

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)  # docker stop / CI cancel: clean up like Ctrl-C
    try:
        result = run_pipeline(
            harness, inject_drift=args.inject_drift, fail_training=args.fail_training, stamp=stamp
        )
        report.render_summary(console, result)
        if args.keep:
            keep_serving(harness, console)
        return 0 if result.ok else 1
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted: cleaning up.[/]")
        return 130
    except RuntimeUnavailable as error:
        console.print(f"[red]{error}[/]")
        return 2
    finally:
        with console.status("cleaning up (endpoints, containers, moto)"):
            harness.close()


if __name__ == "__main__":
    sys.exit(main())
