"""Start pipeline executions and wait for their end."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from . import polling
from .clients import Aws, DeployError, Progress, say
from .inputs import ExecutionRequest
from .stack import stack_outputs


def execution_name(prefix: str) -> str:
    """``<prefix>-<UTC time>-<6 hex>``: unique, sortable, well under Step Functions' 80 characters."""
    return f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def start_execution(sfn: Any, state_machine_arn: str, name: str, payload: str = "{}") -> str:
    return sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)["executionArn"]


TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def wait_for_execution(
    sfn: Any, execution_arn: str, progress: Progress = say, poll_seconds: float = 10, timeout: float = 86_400
) -> dict[str, Any]:
    start, name = time.monotonic(), execution_arn.rsplit(":", 1)[-1]
    try:
        return polling.wait_until(
            lambda: sfn.describe_execution(executionArn=execution_arn),
            lambda execution: execution["status"] in TERMINAL_EXECUTION,
            timeout,
            poll_seconds,
            on_poll=lambda e: progress(f"execution {name}: {e['status']} ({time.monotonic() - start:.0f} s)"),
        )
    except polling.WaitTimeout:
        raise DeployError(f"execution {name} still RUNNING after {timeout:.0f} s") from None


def run_execution(aws: Aws, request: ExecutionRequest, progress: Progress = say) -> dict[str, Any]:
    """Start the pipeline; DescribeExecution at the end with ``wait``, else ``{"executionArn": ...}``."""
    sfn = aws.client("stepfunctions")
    arn = (
        request.state_machine_arn
        or stack_outputs(aws.client("cloudformation"), request.stack_name)["StateMachineArn"]
    )
    payload = json.dumps(dict(request.execution_input))
    execution_arn = start_execution(sfn, arn, execution_name(request.name_prefix), payload)
    print(execution_arn, flush=True)
    if not request.wait:
        return {"executionArn": execution_arn}
    execution = wait_for_execution(sfn, execution_arn, progress, request.poll_seconds)
    if execution["status"] != "SUCCEEDED":
        raise DeployError(
            f"execution {execution['status']}: {execution.get('error', '?')}: {execution.get('cause', '')}"
        )
    return execution
