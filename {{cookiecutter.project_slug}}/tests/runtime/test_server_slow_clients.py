"""The launcher's two servers against slow and lying clients, and its refusals (issue 15, serving).

Without nginx (the process runtime only), ``serve --no-nginx`` runs waitress on loopback: whole
requests are read in its event loop before a thread sees them, and a connection that sends nothing
for --client-timeout seconds is closed. So N clients stalled in their headers, or sending a body
shorter than its Content-Length, hold sockets, not the threads that answer /ping. All on loopback,
bounded: at most SLOW connections, every wait capped.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.steps import serve

PACKAGE = "{{ cookiecutter.package_name }}"
SLOW = 16  # stalled connections held at once: 8x the server's threads
PROBES = 8
CLIENT_TIMEOUT = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_for(project_root: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(project_root / "src"), *extra.pop("PYTHONPATH", "").split(os.pathsep)])
    return {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep), **extra}


def ping(port: int, timeout: float = 2.0) -> int | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connection.request("GET", "/ping")
        return connection.getresponse().status
    except OSError:
        return None


def wait_until_up(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "exited"
        if ping(port, 0.5) == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"no 200 on /ping within {timeout} s")


@pytest.fixture(scope="module")
def model_root(project_root, tmp_path_factory) -> Path:
    """/opt/ml with a model trained by the training entrypoint on the sample data."""
    from {{ cookiecutter.package_name }}_emulator import sample_data

    root = tmp_path_factory.mktemp("opt_ml")
    paths = sample_data.write(tmp_path_factory.mktemp("data"))
    shutil.copytree(Path(paths["train"]).parent, root / "input" / "data" / "train")
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text("{}")
    result = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.steps.train"],
        env=env_for(project_root, OPT_ML_ROOT=str(root)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.fixture
def no_nginx_server(project_root, model_root):
    port = free_port()
    command = [sys.executable, "-m", f"{PACKAGE}.steps.serve", "--no-nginx", "--port", str(port)]
    command += ["--workers", "2", "--client-timeout", str(CLIENT_TIMEOUT)]
    process = subprocess.Popen(
        command, env=env_for(project_root, OPT_ML_ROOT=str(model_root)), stderr=subprocess.PIPE
    )
    try:
        wait_until_up(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def hold(port: int, payload: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(payload)
    return sock


def test_probes_are_answered_while_slow_header_clients_are_held(no_nginx_server):
    held = [hold(no_nginx_server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-") for _ in range(SLOW)]
    try:
        for sock in held:  # each trickles one more byte, as a slowloris client does
            sock.sendall(b"T")
        answered = sum(ping(no_nginx_server) == 200 for _ in range(PROBES))
        print(f"\nprobes answered while {SLOW} slow-header connections are held: {answered}/{PROBES}")
        assert answered == PROBES
    finally:
        for sock in held:
            sock.close()


def test_a_body_shorter_than_its_content_length_is_dropped_after_the_client_timeout(no_nginx_server):
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\n"  # fmt: skip
    held = [hold(no_nginx_server, head + b"1,2,3\n") for _ in range(SLOW)]
    try:
        answered = sum(ping(no_nginx_server) == 200 for _ in range(PROBES))
        print(f"\nprobes answered while {SLOW} short-body connections are held: {answered}/{PROBES}")
        assert answered == PROBES
        started = time.monotonic()
        held[0].settimeout(CLIENT_TIMEOUT * 4)
        assert held[0].recv(65536) == b"", "the server answered a request whose body never came"
        closed_after = time.monotonic() - started
        assert closed_after < CLIENT_TIMEOUT * 4, closed_after  # seconds, not the 60 s of a worker
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com"])
def test_no_nginx_refuses_anything_but_loopback(project_root, host):
    result = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.steps.serve", "--no-nginx", "--host", host],
        env=env_for(project_root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"serve: --no-nginx serves on loopback only (got --host {host}); "
        "anything reachable from outside must go through nginx"
    )


def test_without_nginx_the_image_path_refuses_to_start(project_root, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.steps.serve"],
        env=env_for(project_root, PATH=str(tmp_path), NGINX_CONF_TEMPLATE=str(tmp_path / "none.conf")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "the image always serves through nginx" in result.stderr
    assert "--no-nginx (loopback only)" in result.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.9", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("192.168.1.1", False), ("", False)],
)  # fmt: skip
def test_is_loopback(host, loopback):
    assert serve.is_loopback(host) is loopback


WARM_APP = """
import os

class App:
    def warm_up(self):
        if os.environ.get("WARM_FAIL"):
            raise RuntimeError("cannot predict the example row")
        with open(os.environ["WARM_MARK"], "a") as mark:
            mark.write(f"{os.getpid()}\\n")

    def __call__(self, environ, start_response):
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

app = App()
"""


def start_gunicorn(project_root: Path, tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int]:
    (tmp_path / "warmapp.py").write_text(WARM_APP)
    port = free_port()
    command = serve.gunicorn_command(f"127.0.0.1:{port}", 2, 30, "warmapp:app")
    process = subprocess.Popen(
        command,
        env=env_for(project_root, PYTHONPATH=str(tmp_path), WARM_MARK=str(tmp_path / "mark"), **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return process, port


def test_warm_up_runs_in_each_worker_after_fork_before_ping(project_root, tmp_path):
    process, port = start_gunicorn(project_root, tmp_path)
    try:
        wait_until_up(port, process)  # the first worker is warm; the second may still be warming
        deadline = time.monotonic() + 20
        while len(pids := [int(pid) for pid in (tmp_path / "mark").read_text().split()]) < 2:
            assert time.monotonic() < deadline, pids
            time.sleep(0.05)
        workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(pids) == 2 and process.pid not in pids
        assert sorted(pids) == sorted(int(pid) for pid in workers)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_failing_warm_up_stops_gunicorn_instead_of_serving(project_root, tmp_path):
    process, port = start_gunicorn(project_root, tmp_path, WARM_FAIL="1")
    try:
        code = process.wait(timeout=60)
        assert code != 0
        assert "warm-up failed: cannot predict the example row" in process.stderr.read().decode()
        assert ping(port, 0.5) is None
    finally:
        if process.poll() is None:
            process.kill()
