"""The Lambda runtime's bootstrap, for ``lambda_runner``: a program of its own, run as

    python -I lambda_bootstrap.py TASK_DIR HANDLER RESULT_FILE REQUEST_ID NAME TIMEOUT_S PROJECT < event.json

or, warm, as ``run_forked`` in a child of the emulator's fork server (what ``lambda_runner`` does).

It imports the handler from the unpacked zip in TASK_DIR, calls it with the event and a context
object, and writes ``{"ok": bool, "payload": ...}`` to RESULT_FILE: the function's JSON-serialisable
result, or the runtime's error document (``errorMessage``, ``errorType``, ``requestId``,
``stackTrace``) for an import error, a missing handler, an uncaught exception or an unmarshalable
result (https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html,
https://docs.aws.amazon.com/lambda/latest/dg/python-context.html).

It must import nothing of the project (it runs isolated, like the Lambda runtime): standard
library only, on purpose.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from types import TracebackType
from typing import Any


class Context:
    """The attributes and method of the Lambda context object that handlers use."""

    function_version = "$LATEST"
    memory_limit_in_mb = "128"
    invoked_function_arn = ""

    def __init__(self, name: str, request_id: str, deadline: float) -> None:
        self.function_name = name
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{name}"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error(kind: str, message: str, request_id: str, tb: TracebackType | None = None) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": kind,
        "requestId": request_id,
        "stackTrace": traceback.format_list(traceback.extract_tb(tb)) if tb else [],
    }


def isolate(task_dir: str, project: str) -> None:
    """The project is not in a Lambda: drop its folder and an editable install's finder, which
    site-packages would otherwise add even in isolated mode; the zip comes first."""
    sys.path[:] = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", project))]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
    sys.path.insert(0, task_dir)


def invoke(handler: str, event: Any, context: Context) -> tuple[bool, Any]:
    module_name, _, function_name = handler.rpartition(".")
    request_id = context.aws_request_id
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:
        return False, error(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", request_id
        )
    function = getattr(module, function_name, None)
    if function is None:
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return False, error("Runtime.HandlerNotFound", message, request_id)
    try:
        result = function(event, context)
    except Exception as exc:
        print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
        return False, error(type(exc).__name__, str(exc), request_id, exc.__traceback__)
    try:
        return True, json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        return False, error("Runtime.MarshalError", f"Unable to marshal response: {exc}", request_id)


def run_forked(args: list[str], event_text: str, env: dict[str, str], log_path: str) -> None:
    """The same bootstrap in a child forked from a warm interpreter (``lambda_runner``): a warm
    Lambda execution environment, without paying for a fresh interpreter and boto3 import on
    every invocation. The child drops the project's modules and paths, as the cold start would."""
    task_dir, handler, result_file, request_id, name, timeout_s, project = args
    os.environ.clear()
    os.environ.update(env)
    os.chdir(task_dir)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(fd, stream.fileno())
    # The project's three packages: the runtime, its _deploy tooling and this _emulator.
    packages = (project, f"{project}_deploy", f"{project}_emulator")
    for module in [m for m in sys.modules if m.split(".")[0] in packages]:
        del sys.modules[module]
    isolate(task_dir, project)
    importlib.invalidate_caches()
    context = Context(name, request_id, time.monotonic() + float(timeout_s))
    ok, payload = invoke(handler, json.loads(event_text), context)
    with open(result_file, "w") as out:
        json.dump({"ok": ok, "payload": payload}, out)
    sys.stdout.flush()
    sys.stderr.flush()


def main(argv: list[str]) -> int:
    task_dir, handler, result_file, request_id, name, timeout_s, project = argv[1:8]
    isolate(task_dir, project)
    context = Context(name, request_id, time.monotonic() + float(timeout_s))
    ok, payload = invoke(handler, json.load(sys.stdin), context)
    with open(result_file, "w") as out:
        json.dump({"ok": ok, "payload": payload}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
