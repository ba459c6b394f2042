"""What a local-pipeline run shows, and where its output goes.

The live state of an execution, failures with the container's reason, the final summary (rich),
the execution histories written to the run folder, and the log routing that keeps moto's and the
emulator's log lines in ``<run>/emulator.log`` instead of on the console.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from {{ cookiecutter.package_name }} import settings

if TYPE_CHECKING:
    from .observe import ExecutionOutcome, Failure, PipelineResult

# moto's and the project's three packages': to the run folder.
LOGGERS = ("moto", "werkzeug", settings.PACKAGE_NAME, f"{settings.PACKAGE_NAME}_deploy", __package__)
LIVE_SECONDS = 1.0  # how often the live view reads the whole history (moto serialises every event)

FAILURE_EVENTS = ("Failed", "TimedOut", "Aborted")
STATUS_STYLE = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "RUNNING": "yellow",
    "ok": "green",
    "failed": "red",
    "running": "yellow",
}
VERDICT_STYLE = {0: "green", 1: "red", 3: "yellow"}  # scenarios.verdict's exit codes


def state_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per state visited: name, type, status (ok / failed / running), seconds, error."""
    rows: list[dict[str, Any]] = []
    open_rows: dict[str, dict[str, Any]] = {}
    for event in events:
        kind: str = event["type"]
        when: datetime = event["timestamp"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            row = {
                "name": name,
                "type": kind.removesuffix("StateEntered"),
                "status": "running",
                "start": when,
                "end": None,
                "error": "",
            }
            rows.append(row)
            open_rows[name] = row
        elif kind.endswith("StateExited"):
            row = open_rows.pop(event["stateExitedEventDetails"]["name"], None)
            if row is not None:
                row["status"], row["end"] = "ok", when
        elif kind.endswith(FAILURE_EVENTS) and rows:
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            row = rows[-1]
            row["status"], row["end"] = "failed", when
            row["error"] = details.get("error", kind)
            open_rows.pop(row["name"], None)
    for row in rows:
        row["seconds"] = (row["end"] - row["start"]).total_seconds() if row["end"] else None
    return rows


def current_state(events: list[dict[str, Any]]) -> str:
    running = [r["name"] for r in state_rows(events) if r["status"] == "running"]
    return running[-1] if running else "-"


def live_view(name: str, status: str, events: list[dict[str, Any]], elapsed: float, last_event: str) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_row(
        Text(name, style="bold"),
        Text(status, style=STATUS_STYLE.get(status, "")),
        Text(f"state: {current_state(events)}", style="cyan"),
        f"{elapsed:5.1f} s",
    )
    if last_event:
        table.add_row("", Text(last_event, style="dim"), "", "")
    return table


@contextmanager
def live_execution(
    console: Console, name: str, history: Callable[[], list[dict[str, Any]]], last_event: Callable[[], str]
) -> Iterator[Callable[[str], None]]:
    """A transient live view of one execution; yields ``show(status)`` for the poller to call.
    The history is read at most every LIVE_SECONDS, however often the status is polled."""
    start, shown = time.monotonic(), {"at": -LIVE_SECONDS, "events": []}
    with Live(console=console, refresh_per_second=4, transient=True) as live:

        def show(status: str) -> None:
            now = time.monotonic()
            if now - shown["at"] >= LIVE_SECONDS:
                shown.update(at=now, events=history())
            live.update(live_view(name, status, shown["events"], now - start, last_event()))

        yield show


def grouped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows merged by state name (the endpoint wait loop visits the same states many times)."""
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = merged.setdefault(row["name"], {**row, "visits": 0, "seconds": 0.0})
        entry["visits"] += 1
        entry["seconds"] += row["seconds"] or 0.0
        if row["status"] != "ok":
            entry["status"], entry["error"] = row["status"], row["error"] or entry["error"]
    return list(merged.values())


def execution_table(outcome: ExecutionOutcome) -> Table:
    title = f"{outcome.name}: [{STATUS_STYLE.get(outcome.status, '')}]{outcome.status}[/] in {outcome.seconds:.1f} s"
    table = Table(title=title, title_justify="left")
    for column in ("state", "type", "status", "visits", "seconds", "error"):
        table.add_column(column, justify="right" if column in ("visits", "seconds") else "left")
    for row in grouped(outcome.states):
        status = Text(row["status"], style=STATUS_STYLE.get(row["status"], ""))
        table.add_row(
            row["name"], row["type"], status, str(row["visits"]), f"{row['seconds']:.2f}", row["error"]
        )
    return table


def decisions_table(result: PipelineResult) -> Table:
    table = Table(title="Decisions (decision.json in S3)", title_justify="left")
    for column in ("execution", "step", "decision", "details"):
        table.add_column(column)
    for outcome in result.executions:
        validation, evaluation = outcome.validation, outcome.evaluation
        if validation:
            drifted = ", ".join(validation.get("drifted_features", [])[:6]) or "none"
            table.add_row(
                outcome.name,
                "validate",
                str(validation.get("decision")),
                f"drift={validation.get('drift_detected')} policy={validation.get('policy')} drifted: {drifted}",
            )
        if evaluation:
            candidate = evaluation.get("candidate") or {}
            production = evaluation.get("production") or {}
            metric = evaluation.get("metric", "roc_auc")
            details = f"{metric}: candidate {candidate.get(metric, float('nan')):.4f}"
            details += (
                f", production {production[metric]:.4f}" if metric in production else ", no production model"
            )
            table.add_row(
                outcome.name, "evaluate", "promote" if evaluation.get("promote") else "reject", details
            )
        if not validation and not evaluation:
            table.add_row(outcome.name, "-", "-", "no decision files (the run stopped earlier)")
    return table


def render_failures(console: Console, failures: list[Failure]) -> None:
    """Each failed job, endpoint or invocation: its name, the container's reason, its last log lines."""
    for failure in failures:
        console.print(f"[red bold]{failure.kind} {failure.name} failed:[/] {failure.reason}")
        if failure.log_tail:
            where = f" (full log: {failure.log_file})" if failure.log_file else ""
            console.print(f"[dim]--- {failure.tail_title}{where} ---[/]\n{failure.log_tail}")


def render_keep(console: Console, moto_url: str, env: str, serving_url: str, state_machine_arn: str) -> None:
    aws = f"{env} aws --endpoint-url {moto_url}"
    console.print(f"moto: {moto_url}   serving container/process: {serving_url}")
    console.print(f"  {aws} sagemaker describe-endpoint --endpoint-name {settings.ENDPOINT_NAME}")
    console.print(
        f"  {aws} sagemaker-runtime invoke-endpoint --endpoint-name {settings.ENDPOINT_NAME} "
        "--content-type text/csv --body fileb://row.csv out.json"
    )
    console.print(f"  {aws} stepfunctions list-executions --state-machine-arn {state_machine_arn}")
    console.print(f"  {aws} logs tail /aws/sagemaker/TrainingJobs")
    console.print(f"  {aws} s3 ls --recursive s3://{settings.S3_BUCKET}/runs/")
    console.print("Press Ctrl-C to stop and clean up.")


def render_summary(console: Console, result: PipelineResult) -> None:
    for outcome in result.executions:
        console.print(execution_table(outcome))
    console.print(decisions_table(result))

    checks = Table(
        title="Endpoint checks (sagemaker-runtime InvokeEndpoint through moto)", title_justify="left"
    )
    for column in ("after", "endpoint config", "model", "rows", "matches inference.py in process", "error"):
        checks.add_column(column)
    for check in result.invocations:
        checks.add_row(
            check.after,
            check.endpoint_config,
            check.model_data_url,
            str(check.rows),
            Text(str(check.matches), style="green" if check.matches else "red"),
            check.error or check.difference,
        )
    console.print(checks)

    if result.notifications:
        notes = Table(title="Notifications (SNS topic -> SQS queue)", title_justify="left")
        notes.add_column("subject")
        notes.add_column("message")
        for note in result.notifications:
            notes.add_row(note.get("Subject", ""), note.get("Message", "")[:160])
        console.print(notes)

    artifacts = Table(title=f"Artifacts in s3://{result.bucket}", title_justify="left")
    artifacts.add_column("key")
    artifacts.add_column("bytes", justify="right")
    for key, size in result.artifacts:
        artifacts.add_row(key, str(size))
    console.print(artifacts)

    phases = " | ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items())
    console.print(
        Group(
            Text(f"Runtime: {result.runtime}   Data: {result.data_source}   Phases: {phases}"),
            *([Text(result.data_split)] if result.data_split else []),
            Text(f"Reports and histories: {result.run_dir}"),
        )
    )
    for problem in result.problems:  # the verdict line comes last (run.main)
        console.print(f"[red]x[/] {problem}")


# -- files and logs --------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def write_history(path: Path, events: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"events": events}, indent=2, default=_json_default))


def route_logs(path: Path) -> logging.Handler:
    """moto's and the emulator's log lines to the run folder, not the console."""
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


def quiet_moto() -> None:
    """moto warns about every template resource it does not model (alarms, OIDC...): not news here."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"moto\.")
    logging.getLogger("moto").setLevel(logging.ERROR)
