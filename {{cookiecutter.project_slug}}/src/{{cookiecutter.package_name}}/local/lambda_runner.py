"""Run a deployed Lambda zip in a subprocess, the way the Lambda Python runtime would.

moto runs Lambda code in Docker images it pulls from a registry; this machine has none. The
harness instead unpacks the very zip moto holds (``LambdaFunction.code_bytes``) and calls its
handler in a fresh interpreter with boto3 pointed at the moto server. The reply mimics the
runtime's: a JSON payload, or on an uncaught exception the runtime's error document
``{"errorMessage", "errorType", "requestId", "stackTrace"}`` which Step Functions turns into the
error name (``errorType``) a Catch matches.
https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Executed with ``python -I`` (isolated: no PYTHONPATH, no cwd on sys.path) so the function sees
# only its own zip plus the interpreter's packages (boto3), as in the Lambda runtime.
_BOOTSTRAP = r"""
import importlib, json, os, sys, time, traceback

task_dir, handler, result_file, request_id, name, timeout_s, project = sys.argv[1:8]
# The project itself is not in a Lambda: drop its folder and an editable install's finder, which
# site-packages would otherwise add even in isolated mode.
sys.path[:] = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", project))]
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path.insert(0, task_dir)
deadline = time.monotonic() + float(timeout_s)


class Context:
    function_name = name
    function_version = "$LATEST"
    aws_request_id = request_id
    memory_limit_in_mb = "128"
    invoked_function_arn = ""
    log_group_name = "/aws/lambda/" + name

    @staticmethod
    def get_remaining_time_in_millis():
        return max(0, int((deadline - time.monotonic()) * 1000))


def error(kind, message, tb=None):
    return {"errorMessage": message, "errorType": kind, "requestId": request_id,
            "stackTrace": traceback.format_list(traceback.extract_tb(tb)) if tb else []}


def run():
    module_name, _, function_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:
        return False, error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    function = getattr(module, function_name, None)
    if function is None:
        return False, error("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    event = json.load(sys.stdin)
    try:
        result = function(event, Context())
    except Exception as exc:
        print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
        return False, error(type(exc).__name__, str(exc), exc.__traceback__)
    try:
        return True, json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        return False, error("Runtime.MarshalError", f"Unable to marshal response: {exc}")


ok, payload = run()
with open(result_file, "w") as out:
    json.dump({"ok": ok, "payload": payload}, out)
"""


PROJECT_PACKAGE = __package__.split(".")[0]


@dataclass(frozen=True)
class Invocation:
    payload: str  # the JSON text the Invoke API returns
    errored: bool  # True when the runtime reports a function error
    logs: str  # what the function printed (the tail AWS returns with LogType=Tail)


def run_zip(
    code: bytes,
    handler: str,
    event: object,
    *,
    endpoint_url: str,
    region: str,
    function_name: str,
    environment: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> Invocation:
    """Unpack ``code`` and call ``handler`` (``module.function``) with ``event``."""
    request_id = str(uuid.uuid4())
    with tempfile.TemporaryDirectory(prefix="lambda-") as tmp:
        task_dir = Path(tmp) / "task"
        with zipfile.ZipFile(io.BytesIO(code)) as archive:
            archive.extractall(task_dir)
        result_file = Path(tmp) / "result.json"
        env = {
            # Only what the function needs: no host credentials or AWS profile leak in.
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "LANG": "C.UTF-8",
            **(environment or {}),
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret (moto dummy)
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "_HANDLER": handler,
        }
        command = [sys.executable, "-I", "-c", _BOOTSTRAP, str(task_dir), handler, str(result_file)]
        command += [request_id, function_name, str(timeout_s), PROJECT_PACKAGE]
        try:
            done = subprocess.run(
                command,
                input=json.dumps(event),
                capture_output=True,
                text=True,
                env=env,
                cwd=task_dir,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired as expired:
            # The runtime's own report of a timeout (Step Functions sees errorType Sandbox.Timedout).
            message = f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
            payload = {"errorType": "Sandbox.Timedout", "errorMessage": message}
            return Invocation(json.dumps(payload), True, _text(expired.stdout) + _text(expired.stderr))
        logs = done.stdout + done.stderr
        if not result_file.exists():
            # The interpreter died before writing a reply (os._exit, segfault, killed).
            message = f"RequestId: {request_id} Error: Runtime exited with exit code {done.returncode}"
            payload = {"errorType": "Runtime.ExitError", "errorMessage": message}
            return Invocation(json.dumps(payload), True, logs)
        result = json.loads(result_file.read_text())
    return Invocation(json.dumps(result["payload"]), not result["ok"], logs)


def zip_sources(files: dict[str, str]) -> bytes:
    """A deployment zip from ``{"handler.py": source, ...}`` (tests and small fixtures)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _text(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""
