"""``make local-pipeline``: the whole pipeline offline, with the artifacts that go to AWS.

    python -m <package>.local.run [--runtime docker|process] [--inject-drift | --fail-training] [--keep]

Starts moto with the real stack (``control_plane``), attaches a data-plane runtime to its SageMaker
backend, runs the state machine twice through ``stepfunctions.start_execution`` (create path, then
update path), checks the endpoint's answers against the model after each, and prints a summary.
``--inject-drift`` uploads the drifted training set before the second run (expected: blocked by
the drift policy or the gate, production unchanged). ``--fail-training`` makes the first run's
training fail (a one-class label: the schema accepts it, training cannot fit it), to show the
Catch and the failure notification; the second run then creates the endpoint. ``--keep`` leaves
moto and the endpoint up until Ctrl-C. The exit code is 1 when an expected outcome did not happen.

Outputs go to ``.local-pipeline/<run>/``: each execution's history (GetExecutionHistory events),
the decision files and reports downloaded from S3, and the job logs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import signal
import sys
import tarfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.live import Live

from .. import sample_data, settings
from ..model import Model
from . import report
from .control_plane import LOCAL_IMAGE_URI, ControlPlane
from .runtimes import Runtime, RuntimeUnavailable, default_runtime_name
from .runtimes.process import ProcessRuntime
from .sagemaker_backend import DataPlane

INVOKE_ROWS = 20
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


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


@dataclass
class InvokeCheck:
    after: str
    endpoint_config: str
    model_data_url: str
    rows: int
    matches: bool


@dataclass
class PipelineResult:
    runtime: str
    run_dir: Path
    bucket: str = settings.S3_BUCKET
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
    """One local-pipeline run: control plane, data plane, executions, checks. Always call close()."""

    def __init__(
        self, runtime: str, run_dir: Path, console: Console | None = None, image: str = LOCAL_IMAGE_URI
    ):
        self.runtime_name = runtime
        self.run_dir = run_dir
        self.console = console or Console()
        self.image = image
        self.cp = ControlPlane(host="0.0.0.0" if runtime == "docker" else "127.0.0.1")
        self.plane: DataPlane | None = None
        self.queue_url = ""
        self.last_event = ""
        self.result = PipelineResult(runtime, run_dir)

    # -- set-up and tear-down ----------------------------------------------------------------------
    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cp.start()
        self.stack = self.cp.deploy(image_uri=self.image)
        runtime = make_runtime(self.runtime_name, self.cp, self.run_dir / "work", self.image)
        self.plane = DataPlane(runtime, on_event=self._event).attach()
        self._subscribe_queue()
        self.cp.upload_sample_data(self.run_dir / "data")
        # The same files again, plus drifted/ for --inject-drift.
        sample_data.write(self.run_dir / "data", with_drift=True)

    def close(self) -> None:
        """Stop executions, endpoints, containers and moto; safe after a failure or Ctrl-C, and twice."""
        try:
            self._abort_running_executions()
            if self.plane is not None:
                self.plane.detach()
                self.plane = None
        finally:
            self.cp.stop()

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
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.stack.outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=queue_arn)

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
    def execute(self, name: str, timeout: float = 1800) -> ExecutionOutcome:
        sfn = self.cp.client("stepfunctions")
        arn = self.cp.start_execution(name)
        start = time.monotonic()
        status, events = "RUNNING", []
        with Live(console=self.console, refresh_per_second=4, transient=True) as live:
            while True:
                status = sfn.describe_execution(executionArn=arn)["status"]
                events = self.cp.history(arn)
                live.update(report.live_view(name, status, events, time.monotonic() - start, self.last_event))
                if status in TERMINAL:
                    break
                if time.monotonic() - start > timeout:
                    raise TimeoutError(f"execution {name} still {status} after {timeout:.0f} s")
                time.sleep(0.5)  # history calls cost moto CPU that the jobs need
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
        if status != "SUCCEEDED":
            self._print_failed_job_logs()
        self.result.executions.append(outcome)
        return outcome

    def _read_json(self, key: str) -> dict[str, Any] | None:
        s3 = self.cp.client("s3")
        try:
            return json.loads(s3.get_object(Bucket=settings.S3_BUCKET, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def _download_reports(self, execution: str) -> None:
        s3 = self.cp.client("s3")
        for item in s3.list_objects_v2(Bucket=settings.S3_BUCKET, Prefix=f"runs/{execution}/").get(
            "Contents", []
        ):
            if item["Key"].endswith((".html", ".json")):
                target = self.run_dir / item["Key"].removeprefix("runs/")
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(settings.S3_BUCKET, item["Key"], str(target))

    def _print_failed_job_logs(self) -> None:
        assert self.plane is not None
        for job, logs in self.plane.job_logs.items():
            (self.run_dir / f"{job}.log").write_text(logs)
            tail = "\n".join(logs.strip().splitlines()[-15:])
            self.console.print(
                f"[red]--- logs of failed job {job} (last lines; full log in {self.run_dir / (job + '.log')}) ---[/]\n{tail}"
            )
        self.plane.job_logs.clear()

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

    def check_endpoint(self, after: str) -> InvokeCheck | None:
        """Send holdout rows through sagemaker-runtime and compare with the model's own scores."""
        state = self.endpoint_state()
        if state is None:
            return None
        config, model_url = state
        features, matrix = holdout_rows(self.run_dir / "data" / "holdout" / "holdout.csv", INVOKE_ROWS)
        body = "\n".join(",".join(row) for row in features)
        reply = self.cp.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=settings.ENDPOINT_NAME,
            Body=body.encode(),
            ContentType="text/csv",
            Accept="application/json",
        )
        predictions = json.loads(reply["Body"].read())["predictions"]
        model = self._load_model(model_url)
        expected = model.predict_proba(matrix)
        got = np.array([p["score"] for p in predictions])
        matches = len(got) == len(expected) and bool(np.allclose(got, expected, atol=1e-9))
        check = InvokeCheck(after, config, model_url, len(got), matches)
        self.result.invocations.append(check)
        return check

    def _load_model(self, uri: str) -> Model:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        body = self.cp.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        target = self.run_dir / "models" / key.replace("/", "_")
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            tar.extractall(target, filter="data")
        return Model.load(target)

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


def holdout_rows(path: Path, count: int) -> tuple[list[list[str]], np.ndarray]:
    """The first ``count`` holdout rows without the label: as CSV cells and as a float matrix."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        label = header.index(settings.LABEL_COLUMN)
        rows = [
            [v for i, v in enumerate(row) if i != label] for row, _ in zip(reader, range(count), strict=False)
        ]
    return rows, np.array([[float(v) for v in row] for row in rows])


def one_class_copy(train_csv: Path, target: Path) -> Path:
    """The training set with every label set to the first class: valid data, untrainable model."""
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


def run_pipeline(
    harness: Harness, *, inject_drift: bool = False, fail_training: bool = False, stamp: str | None = None
) -> PipelineResult:
    """Both executions with their checks; fills ``harness.result`` (phases, problems) and returns it."""
    result = harness.result
    stamp = stamp or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        result.phases[name] = now - clock
        clock = now

    harness.start()
    data = harness.run_dir / "data"
    if fail_training:
        harness.upload_training_file(
            one_class_copy(data / "train" / "train.csv", data / "one-class" / "train.csv")
        )
    phase("moto start+deploy")

    first = harness.execute(f"create-{stamp}")
    phase("execution 1")
    if fail_training:
        if first.status != "FAILED":
            result.problems.append(
                f"{first.name}: expected FAILED (training cannot fit one class), got {first.status}"
            )
        notes = harness.notifications()
        result.notifications += notes
        if not any("failed" in n.get("Subject", "").lower() for n in notes):
            result.problems.append(f"{first.name}: no failure notification was published to the SNS topic")
        if harness.endpoint_state() is not None:
            result.problems.append(f"{first.name}: an endpoint exists although the run failed")
        harness.upload_training_file(data / "train" / "train.csv")
    elif first.status != "SUCCEEDED":
        result.problems.append(f"{first.name}: expected SUCCEEDED, got {first.status} {first.error}")
    else:
        result.notifications += harness.notifications()
    check = harness.check_endpoint(f"{first.name}")
    if not fail_training and (check is None or not check.matches):
        result.problems.append(
            f"after {first.name}: the endpoint does not answer with the trained model's scores"
        )
    phase("invoke")

    before = harness.endpoint_state()
    configs_before = harness.endpoint_configs()
    if inject_drift:
        harness.upload_training_file(data / "drifted" / "train.csv")
    second = harness.execute(
        f"{'drift' if inject_drift else 'update' if not fail_training else 'create'}-{stamp}-2"
    )
    phase("execution 2")
    notes = harness.notifications()
    result.notifications += notes
    after = harness.endpoint_state()
    check = harness.check_endpoint(second.name)
    if second.status != "SUCCEEDED":
        result.problems.append(f"{second.name}: expected SUCCEEDED, got {second.status} {second.error}")
    elif inject_drift:
        result.problems += drift_problems(
            second, harness.endpoint_configs() - configs_before, before, after, notes
        )
    elif after is None or after == before:
        result.problems.append(
            f"{second.name}: the endpoint was not created or updated (before {before}, after {after})"
        )
    if check is None or not check.matches:
        result.problems.append(f"after {second.name}: the endpoint does not answer with its model's scores")
    result.artifacts = harness.list_artifacts()
    keys = [key for key, _ in result.artifacts]
    for suffix in ("model.tar.gz", "validation/decision.json", "evaluation/decision.json"):
        if not any(key.endswith(suffix) for key in keys):
            result.problems.append(f"no *{suffix} in s3://{settings.S3_BUCKET}")
    phase("checks")
    return result


def drift_problems(
    outcome: ExecutionOutcome, new_configs: set[str], before: Any, after: Any, notes: list[dict[str, Any]]
) -> list[str]:
    """What must hold after a run on drifted data, given the baked drift policy.

    ``block``: the run stops at validation. ``retrain``: drift is reported and training goes on,
    and the gate must block the candidate: the drifted sample carries concept drift too, so a
    model trained on it is clearly worse on the clean holdout. Either way production is unchanged.
    """
    problems, validation = [], outcome.validation or {}
    if validation.get("drift_detected") is not True:
        problems.append(f"{outcome.name}: the drifted training set was not reported as drifted")
    blocked_by_gate = outcome.evaluation is not None and not outcome.evaluation.get("promote")
    if settings.DRIFT_POLICY == "retrain" and not blocked_by_gate:
        problems.append(f"{outcome.name}: the gate promoted a model trained on concept-drifted data")
    if new_configs or after != before:
        problems.append(
            f"{outcome.name}: the run should have been blocked, but it deployed {sorted(new_configs)}"
        )
    if not any("blocked" in n.get("Subject", "").lower() for n in notes):
        problems.append(f"{outcome.name}: no 'blocked' notification was published")
    return problems


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runtime",
        choices=("docker", "process"),
        help="default: docker if a daemon answers and the image exists",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--inject-drift", action="store_true", help="upload drifted training data before the second run"
    )
    what.add_argument("--fail-training", action="store_true", help="make the first run's training fail")
    parser.add_argument(
        "--keep", action="store_true", help="leave moto and the endpoint running until Ctrl-C"
    )
    parser.add_argument(
        "--image", default=LOCAL_IMAGE_URI, help="image for the docker runtime (built by make build-offline)"
    )
    parser.add_argument("--out", type=Path, default=Path(".local-pipeline"))
    return parser.parse_args(argv)


def keep_serving(harness: Harness, console: Console) -> None:
    endpoint = harness.plane.endpoint_for(settings.ENDPOINT_NAME) if harness.plane else None
    env = f"AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={harness.cp.region}"
    aws = f"{env} aws --endpoint-url {harness.cp.endpoint_url}"
    console.print(
        f"moto: {harness.cp.endpoint_url}   serving container/process: {endpoint.url if endpoint else '-'}"
    )
    console.print(f"  {aws} sagemaker describe-endpoint --endpoint-name {settings.ENDPOINT_NAME}")
    console.print(
        f"  {aws} sagemaker-runtime invoke-endpoint --endpoint-name {settings.ENDPOINT_NAME} --content-type text/csv --body fileb://row.csv out.json"
    )
    console.print(
        f"  {aws} stepfunctions list-executions --state-machine-arn {harness.stack.state_machine_arn}"
    )
    console.print(f"  {aws} s3 ls --recursive s3://{settings.S3_BUCKET}/runs/")
    console.print("Press Ctrl-C to stop and clean up.")
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
    runtime = args.runtime or default_runtime_name(args.image)
    if runtime == "process" and not args.runtime:
        console.print(
            f"[yellow]No Docker daemon or no image {args.image}: using the process runtime (make build-offline for Docker).[/]"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    harness = Harness(runtime, args.out / stamp, console, args.image)

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
