"""The real gunicorn server for tests: the image's command and config module (serve.py), bound to
loopback, with the model folder given; a hung worker fails a request by timeout, never the run."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.steps import serve

TIMEOUT = 20  # seconds per request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    """(status, content type, body) of one request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, reply.getheader("Content-Type", ""), reply.read()
    finally:
        connection.close()


def workers(pid: int) -> list[int]:
    """The gunicorn master's child processes (its workers), from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


@contextmanager
def gunicorn(
    model_dir: Path, project_root: Path, workdir: Path, n_workers: int = 2
) -> Iterator[tuple[int, int]]:
    """(port, master pid) once /ping answers 200 and every worker is up; stops it afterwards and
    fails if the log shows a traceback."""
    root = workdir / "opt-ml"
    shutil.copytree(model_dir, root / "model")
    port = free_port()
    # Library thread settings left at their defaults on purpose: the serving path itself must not
    # start a pool before fork (the image pins OMP_NUM_THREADS=1 on top of that).
    env = {k: v for k, v in os.environ.items() if k not in serve.SINGLE_THREADED}
    env.update(OPT_ML_ROOT=str(root), MODEL_SERVER_WORKERS=str(n_workers), HOME=str(workdir / "home"))
    env.pop("XDG_RUNTIME_DIR", None)  # gunicorn's control socket would go there, else under $HOME
    env["PYTHONPATH"] = os.pathsep.join([str(project_root / "src"), env.get("PYTHONPATH", "")])
    log = workdir / "gunicorn.log"
    with log.open("w") as out:
        command = serve.gunicorn_command(f"127.0.0.1:{port}", n_workers, 30)
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(port, process, log, n_workers)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    # Workers stop cleanly on SIGTERM: no native library aborting or hanging at interpreter exit.
    assert "was sent SIG" not in text and "terminate called" not in text, text[-3000:]
    assert process.returncode == 0, text[-3000:]


def maps(pid: int) -> str:
    """The shared objects a process has mapped (/proc/<pid>/maps)."""
    return Path(f"/proc/{pid}/maps").read_text()


def _wait_until_ready(port: int, process: subprocess.Popen, log: Path, n_workers: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if request(port, "GET", "/ping")[0] == 200 and len(workers(process.pid)) == n_workers:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"not ready within 120 s:\n{log.read_text()[-3000:]}")
