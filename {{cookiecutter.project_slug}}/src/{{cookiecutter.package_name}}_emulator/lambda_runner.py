"""Run a deployed Lambda zip in a subprocess, the way the Lambda Python runtime would.

moto runs Lambda code in Docker images it pulls from a registry; this machine has none. The
emulator instead unpacks the very zip moto holds (``LambdaFunction.code_bytes``) and calls its
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
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from {{ cookiecutter.package_name }} import settings

from . import forkserver, lambda_bootstrap, principals

# The bootstrap is a module of its own (lambda_bootstrap.py, standard library only). It runs in a
# child forked from the warm interpreter (a warm Lambda environment), which drops the project's
# modules and paths first; ``python -I lambda_bootstrap.py`` runs the same code cold.
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")


PROJECT_PACKAGE = settings.PACKAGE_NAME
ACCOUNT = "123456789012"  # moto's default account, where the stack is deployed


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
            # Signed as its execution role, as on AWS (bucket policies name principals: principals.py).
            "AWS_ACCESS_KEY_ID": principals.key_for_function(function_name, region, ACCOUNT) or "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret (moto dummy)
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "_HANDLER": handler,
        }
        args = [
            str(task_dir),
            handler,
            str(result_file),
            request_id,
            function_name,
            str(timeout_s),
            PROJECT_PACKAGE,
        ]
        log_path = Path(tmp) / "output.log"
        log_path.touch()
        code = _run_warm(args, json.dumps(event), env, log_path, timeout_s)
        logs = log_path.read_text(errors="replace")
        if code is None:
            # The runtime's own report of a timeout (Step Functions sees errorType Sandbox.Timedout).
            message = f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
            payload = {"errorType": "Sandbox.Timedout", "errorMessage": message}
            return Invocation(json.dumps(payload), True, logs)
        if not result_file.exists():
            # The interpreter died before writing a reply (os._exit, segfault, killed).
            message = f"RequestId: {request_id} Error: Runtime exited with exit code {code}"
            payload = {"errorType": "Runtime.ExitError", "errorMessage": message}
            return Invocation(json.dumps(payload), True, logs)
        result = json.loads(result_file.read_text())
    return Invocation(json.dumps(result["payload"]), not result["ok"], logs)


def _run_warm(
    args: list[str], event_text: str, env: dict[str, str], log_path: Path, timeout_s: float
) -> int | None:
    """Run the bootstrap in a child of the fork server (the process runtime's warm interpreter);
    its exit code, or None after killing it at the timeout."""
    child = forkserver.start(lambda_bootstrap.run_forked, (args, event_text, env, str(log_path)), daemon=True)
    child.join(timeout_s)
    if child.exitcode is None:
        child.kill()
        child.join()
        return None
    return child.exitcode


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
