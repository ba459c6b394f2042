"""What both processing steps leave behind: decision.json, report.html and, on error, the failure file.

A failed step still writes a decision (``"decision": "fail"``, same keys as a normal one) so a
person reading S3 sees why; exit code 1 makes the task fail for the state machine, whose Catch
reports it. The reason goes to ``/opt/ml/output/failure`` (the project's contract, as in
training) and to ``/opt/ml/output/message``, which processing jobs return as ``ExitMessage``
(first 1 KB): https://docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import paths

DECISION_FILE = "decision.json"
REPORT_FILE = "report.html"


def write(output: Path, decision: dict[str, Any], html: str) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / DECISION_FILE).write_text(json.dumps(decision, indent=2, allow_nan=False) + "\n")
    (output / REPORT_FILE).write_text(html, encoding="utf-8")


def fail(
    output: Path,
    reason: str,
    decision: dict[str, Any],
    page: Callable[[dict[str, Any]], str],
    error: BaseException | None = None,
) -> int:
    """Record a failure everywhere it is looked for; returns the exit code (1)."""
    if error is not None and not isinstance(error, ValueError):
        traceback.print_exception(error, file=sys.stderr)  # unexpected: keep the stack for the logs
    print(f"error: {reason}", file=sys.stderr)
    paths.write_failure(reason)
    decision = {**decision, "decision": "fail", "reasons": [reason]}
    write(output, decision, page(decision))
    return 1
