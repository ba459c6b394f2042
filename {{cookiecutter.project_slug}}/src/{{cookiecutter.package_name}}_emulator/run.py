"""``make local-pipeline``: the whole pipeline offline, with the artifacts that go to AWS.

    python -m <package>_emulator.run [--runtime docker|process] [--data PATH [--label-column NAME]]
        [--inject-drift | --fail-training | --fail-update 5xx|ping] [--schedule [RULE]]
        [--endpoint-speedup X] [--keep] [execution input flags: --tune, --max-jobs N, ...]

Prepares the data first (``run_data.prepare``: the built-in sample or ``--data``, refused with one
line when unusable), then starts moto with the real stack (``control_plane``), attaches a
data-plane runtime to its SageMaker backend and runs a scenario (``scenarios.SCENARIOS``): two
executions through ``stepfunctions.start_execution`` (create path, then update path; or the drift
block; or a failed training first; or an update whose new model fails and is rolled back), each
followed by its checks. ``--schedule`` starts each execution the way EventBridge does, through the
stack's schedule rule, its target input and its role (``schedule``). Endpoints take SageMaker's
times, ``--endpoint-speedup`` times faster (``blue_green.EndpointClock``), and while one is being
updated the run plays the production clients (``traffic``), so the rollback alarms judge the new
fleet. What the emulator does not enforce is listed at the end. ``--keep`` leaves moto and the
endpoint up until Ctrl-C (then exits with the run's code after cleaning up). Exit codes
(``scenarios.verdict``): 0 every expected outcome happened; 1 one did not (a broken run); 2 the
data or the runtime is refused; 3 on your data (``--data``), the gate refused the candidate and
production was kept (a correct outcome, in one line: ``the gate kept production: <reason>``).

Outputs go to ``.local-pipeline/<run>/``: each execution's history, the decision files and reports
downloaded from S3, the job logs, and ``emulator.log`` (moto's and the emulator's own log lines).

This module orchestrates only: what is read back from moto is ``observe``, what was expected is
``scenarios``, what is shown is ``terminal``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from {{ cookiecutter.package_name }} import data, settings
from {{ cookiecutter.package_name }}_deploy import cli, clients, executions, polling

from . import endpoint_check, forkserver, identity_policies, least_privilege, observe, schedule, terminal
from .blue_green import EndpointClock, FleetFault
from .control_plane import LOCAL_IMAGE_URI, ControlPlane
from .data_plane import DataPlane
from .moto_server import DUMMY_CREDENTIALS
from .observe import ExecutionOutcome, Failure, InvokeCheck, PipelineResult
from .run_data import DataRefused, DataSet, prepare, training_sets
from .runtimes import Runtime, RuntimeUnavailable, default_runtime_name
from .runtimes.process import ProcessRuntime
from .scenarios import (
    SCENARIOS,
    Observation,
    Scenario,
    Step,
    artifacts_present,
    judge,
    verdict,
)
from .terminal import quiet_moto, route_logs, unroute_logs
from .traffic import ProductionTraffic

POLL_SECONDS = 0.1  # DescribeExecution: a few hundred bytes; the live view reads the history less often
# AWS seconds per real second for endpoints: SageMaker's provisioning (~3 min) takes 3 s, the
# pipeline's 600 s baking period 10 s, and one alarm period (60 s) 1 s.
ENDPOINT_SPEEDUP = 60.0
# Production clients during an endpoint update: requests per minute of AWS time (the 5xx alarm
# judges a minute from ErrorRateMinInvocations = 20 requests on).
TRAFFIC_PER_MINUTE = 40


def make_runtime(name: str, cp: ControlPlane, work: Path, image: str = LOCAL_IMAGE_URI) -> Runtime:
    if name == "process":
        return ProcessRuntime(cp.endpoint_url, cp.region, work)
    from .runtimes.docker import DockerRuntime  # imports the sagemaker SDK: only when asked for

    return DockerRuntime(cp.endpoint_url, cp.container_endpoint_url, cp.region, work, image)


class Emulator:
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
        clock: EndpointClock | None = None,
        schedule_rule: str | None = None,
    ):
        """``clock``: SageMaker's endpoint times offline; ``schedule_rule``: start executions through
        this scheduled rule of the stack (its logical id; "" for the stack's schedule) instead of
        StartExecution."""
        self.runtime_name = runtime
        self.run_dir = run_dir
        self.console = console or Console()
        self.image = image
        self.data_source, self.label_column = data_source, label_column
        self.execution_input = dict(execution_input or {})
        self.clock = clock or EndpointClock(speedup=ENDPOINT_SPEEDUP)
        self.schedule_rule = schedule_rule
        self.cp = ControlPlane(host="0.0.0.0" if runtime == "docker" else "127.0.0.1")
        self.plane: DataPlane | None = None
        self.traffic: ProductionTraffic | None = None
        self.dataset: DataSet | None = None
        self.queue_url = ""
        self.last_event = ""
        self.result = PipelineResult(runtime, run_dir)
        self._log_handler: Any = None
        self._reported: set[tuple[str, str]] = set()

    # -- set-up and tear-down ----------------------------------------------------------------------
    def prepare_data(self) -> DataSet:
        """Validate and lay out the data (before moto starts: bad data costs no start-up)."""
        if self.dataset is None:
            self.dataset = prepare(
                self.data_source, self.run_dir / "data", self.label_column, console=self.console
            )
            self.result.data_source, self.result.data_split = self.dataset.source, self.dataset.split
        return self.dataset

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # The fork server's imports (seconds) overlap moto's start and the deploy.
        forkserver.warm_up(forkserver.preload_for(settings.PACKAGE_NAME, jobs=self.runtime_name == "process"))
        dataset = self.prepare_data()
        self._log_handler = route_logs(self.run_dir / "emulator.log")
        self.cp.start()
        self.stack = self.cp.deploy(image_uri=self.image)
        runtime = make_runtime(self.runtime_name, self.cp, self.run_dir / "work", self.image)
        self.plane = DataPlane(runtime, on_event=self._event, clock=self.clock).attach()
        self.queue_url = observe.subscribe_queue(self.cp, self.stack.outputs["NotificationTopicArn"])
        self.upload_training_file(dataset.train)
        self.cp.client("s3").upload_file(str(dataset.holdout), settings.S3_BUCKET, "data/holdout/holdout.csv")
        endpoint_check.preimport()  # while the first execution runs
        row = endpoint_check.requests_for(data.read_csv(dataset.holdout), rows=1)[0].body  # CSV, one row
        self.traffic = ProductionTraffic(
            self.cp.client,
            settings.ENDPOINT_NAME,
            row,
            per_minute=TRAFFIC_PER_MINUTE,
            clock=self.clock,
        ).__enter__()

    def close(self) -> None:
        """Stop executions, endpoints, containers and moto; safe after a failure or Ctrl-C, and twice."""
        try:
            self._abort_running_executions()
            if self.traffic is not None:
                self.traffic.__exit__()
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
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.stack.state_machine_arn, statusFilter="RUNNING"
            )
            for execution in (execution for page in pages for execution in page["executions"]):
                sfn.stop_execution(executionArn=execution["executionArn"], cause="local-pipeline interrupted")

    def _event(self, message: str) -> None:
        self.last_event = message
        with (self.run_dir / "events.log").open("a") as log:
            log.write(f"{datetime.now(UTC).isoformat()} {message}\n")

    # -- executions --------------------------------------------------------------------------------
    def execute(
        self, name: str, execution_input: dict[str, Any] | None = None, timeout: float = 1800
    ) -> ExecutionOutcome:
        """Start ``name``, wait for its end (live view on the console), read back what it did."""
        sfn = self.cp.client("stepfunctions")
        given = self.execution_input if execution_input is None else execution_input
        if self.schedule_rule is None:
            arn = self.cp.start_execution(name, execution_input=given)
        else:  # EventBridge names the execution: the rest of the run follows its name
            target = schedule.scheduled_target(self.cp, self.stack.name, self.schedule_rule or None)
            arn = schedule.fire(self.cp, target)
            name = arn.rsplit(":", 1)[-1]
            self._event(f"schedule {target.schedule} ({target.rule}) started {name} as {target.role_arn}")
        start = time.monotonic()
        with terminal.live_execution(
            self.console, name, lambda: self.cp.history(arn), lambda: self.last_event
        ) as show:
            try:
                status = polling.wait_until(
                    lambda: sfn.describe_execution(executionArn=arn)["status"],
                    lambda s: s in executions.TERMINAL_EXECUTION,
                    timeout,
                    POLL_SECONDS,
                    what=f"execution {name}",
                    on_poll=show,
                )
            except polling.WaitTimeout as error:
                raise TimeoutError(str(error)) from None
        events = self.cp.history(arn)
        outcome = ExecutionOutcome(
            name, arn, status, time.monotonic() - start, events, terminal.state_rows(events)
        )
        outcome.error = observe.execution_error(events)
        terminal.write_history(self.run_dir / f"{name}-history.json", events)
        outcome.validation = observe.read_json(self.cp, f"runs/{name}/validation/decision.json")
        outcome.evaluation = observe.read_json(self.cp, f"runs/{name}/evaluation/decision.json")
        observe.download_reports(self.cp, name, self.run_dir)
        outcome.failures = self.failures()
        if outcome.failures:
            terminal.render_failures(self.console, outcome.failures)
        self.result.executions.append(outcome)
        return outcome

    def failures(self) -> list[Failure]:
        """Failed jobs and endpoints not reported yet, with the container's reason and log tail."""
        logs = self.plane.job_logs if self.plane else {}
        return [
            observe.failure(kind, name, reason, logs.get(name, ""), self.run_dir)
            for kind, name, reason in observe.failed_resources(self.cp, self._reported)
        ]

    def notifications(self) -> list[dict[str, Any]]:
        """Drain the queue: the SNS envelopes (Subject, Message) published since the last call."""
        return observe.drain(self.cp, self.queue_url)

    # -- the endpoint ------------------------------------------------------------------------------
    def endpoint_state(self) -> tuple[str, str] | None:
        """(endpoint config, model data URL) of the endpoint, None when there is none."""
        return observe.endpoint_state(self.cp)

    def endpoint_configs(self) -> set[str]:
        return observe.endpoint_configs(self.cp)

    def runtime_client(self) -> Any:
        return observe.runtime_client(self.cp)

    def check_endpoint(self, after: str) -> InvokeCheck | None:
        """Send holdout rows through sagemaker-runtime and compare with what inference.py answers
        in process; on a 5xx, show the traceback of the user's code from the endpoint's log."""
        assert self.dataset is not None
        check = observe.invoke_check(self.cp, after, self.dataset.holdout, self.run_dir)
        if check is None:
            return None
        if check.server_error:
            from {{ cookiecutter.package_name }}.serving.handlers import user_traceback  # the model stack: loaded by now

            check.user_traceback = user_traceback(self.endpoint_logs())
        if not check.matches:
            reason = (check.error or check.difference).removeprefix(f"endpoint {settings.ENDPOINT_NAME}: ")
            failure = Failure("invocation", settings.ENDPOINT_NAME, reason, check.user_traceback)
            failure.tail_title = "your code (inference.py), from the endpoint's log"
            terminal.render_failures(self.console, [failure])
        self.result.invocations.append(check)
        return check

    def endpoint_logs(self) -> str:
        endpoint = self.plane.endpoint_for(settings.ENDPOINT_NAME) if self.plane else None
        return self.plane.runtime.endpoint_logs(endpoint) if self.plane and endpoint else ""

    def upload_training_file(self, path: Path) -> None:
        self.cp.client("s3").upload_file(str(path), settings.S3_BUCKET, "data/train/train.csv")

    def list_artifacts(self) -> list[tuple[str, int]]:
        return observe.artifacts(self.cp)


def run_step(emulator: Emulator, step: Step, name: str, training_file: Path) -> Observation:
    """Upload the step's training set, run one execution, observe what changed."""
    before, configs = emulator.endpoint_state(), emulator.endpoint_configs()
    emulator.upload_training_file(training_file)
    if step.fault is not None and emulator.plane is not None:
        emulator.plane.inject(step.fault)
    outcome = emulator.execute(name)
    notes = emulator.notifications()
    emulator.result.notifications += notes
    check = emulator.check_endpoint(outcome.name)
    return Observation(
        name=outcome.name,
        status=outcome.status,
        error=outcome.error,
        validation=outcome.validation,
        evaluation=outcome.evaluation,
        states=[row["name"] for row in outcome.states],
        before=before,
        after=emulator.endpoint_state(),
        new_configs=emulator.endpoint_configs() - configs,
        notifications=notes,
        answers_match=None if check is None else check.matches,
        endpoint_polls=sum(
            1
            for e in outcome.history
            if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "DescribeEndpoint"
        ),
    )


def scenario_for(inject_drift: bool, fail_training: bool, fail_update: str | None = None) -> Scenario:
    if fail_update:
        return SCENARIOS[f"fail-update-{FleetFault(fail_update).value}"]
    return SCENARIOS["inject-drift" if inject_drift else "fail-training" if fail_training else "normal"]


def run_pipeline(
    emulator: Emulator,
    *,
    inject_drift: bool = False,
    fail_training: bool = False,
    fail_update: str | None = None,
    stamp: str | None = None,
) -> PipelineResult:
    """The scenario's executions with their checks; fills ``emulator.result`` (phases, problems)."""
    result, scenario = emulator.result, scenario_for(inject_drift, fail_training, fail_update)
    stamp = stamp or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        result.phases[name] = now - clock
        clock = now

    emulator.start()
    dataset = emulator.prepare_data()
    files = training_sets(dataset, emulator.run_dir / "data")
    phase("moto start+deploy")
    for index, step in enumerate(scenario.steps, start=1):
        name = f"{step.prefix}-{stamp}" + ("" if index == 1 else f"-{index}")
        observed = run_step(emulator, step, name, files[step.training_set])
        phase(f"execution {index}")
        # On your data the gate may rightly refuse a candidate the scenario meant to deploy: that is
        # the answer the run exists to give, and later steps would only ask again (the demo's data
        # must still deploy: there a refusal is a broken run).
        problems, kept = judge(step, observed, own_data=dataset.own)
        result.problems += problems
        if kept is not None:
            result.kept_production = kept
            break
    emulator.upload_training_file(files["train"])
    result.artifacts = emulator.list_artifacts()
    result.problems += artifacts_present([key for key, _ in result.artifacts])
    phase("checks")
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="exit codes: 0 every expected outcome happened; 1 one did not (a broken run); "
        "2 the data or the runtime was refused; 3 on --data, the gate refused the candidate and "
        "production was kept (the last line says why)",
    )
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
    what.add_argument(
        "--fail-update",
        choices=[fault.value for fault in FleetFault],
        help="the second run's new model fails after the update (5xx: its /invocations answer HTTP 500 "
        "during baking; ping: it never answers /ping): SageMaker rolls it back",
    )
    parser.add_argument(
        "--schedule",
        nargs="?",
        const="",
        default=None,
        metavar="RULE",
        help="start each execution as EventBridge does, through the stack's scheduled rule (its logical "
        "id; default the pipeline's schedule), its target input and role",
    )
    parser.add_argument(
        "--endpoint-speedup",
        type=float,
        default=ENDPOINT_SPEEDUP,
        help="how many times faster than on AWS endpoints provision, bake and roll back (default %(default)g)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave moto and the endpoint running until Ctrl-C"
    )
    parser.add_argument(
        "--image", default=LOCAL_IMAGE_URI, help="image for the docker runtime (make build-offline)"
    )
    parser.add_argument("--out", type=Path, default=Path(".local-pipeline"))
    cli.add_execution_input_flags(parser)
    return parser.parse_args(argv)


def render_emulation(console: Console, emulator: Emulator) -> None:
    """The endpoint as DescribeEndpoint shows it, and what this run's emulation did not enforce."""
    if emulator.plane is None:  # nothing was started
        return
    sm = emulator.cp.client("sagemaker")
    try:
        endpoint = sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME)
    except sm.exceptions.ClientError:
        endpoint = None
    if endpoint is not None:
        policy = (endpoint.get("LastDeploymentConfig") or {}).get("BlueGreenUpdatePolicy", {})
        console.print(
            f"Endpoint {settings.ENDPOINT_NAME}: {endpoint['EndpointStatus']} on {endpoint['EndpointConfigName']}"
            + (f"; FailureReason: {endpoint['FailureReason']}" if endpoint.get("FailureReason") else "")
            + (f"; last deployment baked {policy.get('TerminationWaitInSeconds')} s" if policy else ""),
            soft_wrap=True,
        )
    clock = emulator.clock
    console.print(
        f"Endpoint times: {clock.speedup:g}x SageMaker's (provisioning {clock.provisioning_s:g} s, "
        f"rollback {clock.rollback_s:g} s, baking and alarm periods as deployed); "
        f"{emulator.traffic.summary() if emulator.traffic else 'no production traffic'}",
        soft_wrap=True,
    )
    checked = least_privilege.report(identity_policies.LEDGER, identity_policies.enforced())
    table = least_privilege.write_table(checked, emulator.run_dir / "least-privilege.md")
    for line in least_privilege.summary(checked):
        console.print(line, soft_wrap=True)
    console.print(f"Least-privilege table: {table}", soft_wrap=True)
    limits = [*emulator.stack.limits, *emulator.plane.notes]
    if limits:
        console.print("[yellow]Not enforced offline (would be on AWS):[/]")
        for limit in limits:
            console.print(f"  - {limit}", soft_wrap=True)


def keep_serving(emulator: Emulator, console: Console) -> None:
    """Until Ctrl-C (a normal way to end a --keep session: the caller cleans up and exits 0)."""
    endpoint = emulator.plane.endpoint_for(settings.ENDPOINT_NAME) if emulator.plane else None
    env = " ".join(f"{k.upper()}={v}" for k, v in DUMMY_CREDENTIALS.items())
    terminal.render_keep(
        console,
        emulator.cp.endpoint_url,
        f"{env} AWS_DEFAULT_REGION={emulator.cp.region}",
        endpoint.url if endpoint else "-",
        emulator.stack.state_machine_arn,
    )
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_moto()
    console = Console()
    try:
        execution_input = cli.execution_input_from(args).to_json()
    except clients.DeployError as error:
        console.print(f"[red]{error}[/]")
        return 2
    if args.schedule is not None and execution_input:
        console.print(
            "[red]--schedule starts executions with the rule target's input: no execution input flags[/]"
        )
        return 2
    if args.endpoint_speedup <= 0:
        console.print("[red]--endpoint-speedup must be positive[/]")
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    try:  # before anything starts: bad data is refused in one line
        prepared = prepare(args.data, args.out / stamp / "data", args.label_column, console=console)
    except DataRefused as error:
        console.print(f"[red]Refused: {error}[/]", soft_wrap=True)
        return 2
    runtime = args.runtime or default_runtime_name(args.image)
    if runtime == "process" and not args.runtime:
        console.print(
            f"[yellow]No Docker daemon or no image {args.image}: using the process runtime "
            "(make build-offline for Docker).[/]"
        )
    emulator = Emulator(
        runtime,
        args.out / stamp,
        console,
        args.image,
        execution_input=execution_input,
        clock=EndpointClock(speedup=args.endpoint_speedup),
        schedule_rule=args.schedule,
    )
    emulator.dataset = prepared
    emulator.result.data_source, emulator.result.data_split = prepared.source, prepared.split

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)  # docker stop / CI cancel: clean up like Ctrl-C
    try:
        result = run_pipeline(
            emulator,
            inject_drift=args.inject_drift,
            fail_training=args.fail_training,
            fail_update=args.fail_update,
            stamp=stamp,
        )
        terminal.render_summary(console, result)
        render_emulation(console, emulator)
        code, line = verdict(result)
        console.print(line, style=terminal.VERDICT_STYLE[code], soft_wrap=True, markup=False)
        if args.keep:
            keep_serving(emulator, console)
        return code
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted: cleaning up.[/]")
        return 130
    except RuntimeUnavailable as error:
        console.print(f"[red]{error}[/]")
        return 2
    finally:
        with console.status("cleaning up (endpoints, containers, moto)"):
            emulator.close()


if __name__ == "__main__":
    sys.exit(main())
