"""nginx (container/nginx.conf, rendered by steps/serve.py) in front of the real gunicorn command on
this machine, a gated stand-in app, and the bounded health-under-load driver; loopback only.

The image runs the same config and launcher (tests/runtime/test_image.py); here nginx comes from the
machine (Debian's nginx-light, 1.22 as in the image), so the tests skip where there is none.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.steps import serve

TIMEOUT = 30  # gunicorn's worker timeout and nginx's proxy timeout here, seconds

# A stand-in for the model app with the parts that matter to nginx: the warm-up hook (held until
# WARM_GATE exists, failing with WARM_FAIL) and /invocations held until GATE exists, so a test
# decides when workers are busy and when they finish.
GATED_APP = """
import os
import time


def _wait(path):
    while not os.path.exists(path):
        time.sleep(0.01)


class App:
    def warm_up(self):
        if os.environ.get("WARM_FAIL"):
            raise RuntimeError("cannot predict the example row")
        _wait(os.environ["WARM_GATE"])

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read()
        _wait(os.environ["GATE"])
        answer = f"{len(body)}\\n".encode()
        start_response("200 OK", [("Content-Type", "text/csv"), ("Content-Length", str(len(answer)))])
        return [answer]


app = App()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nginx_or_skip() -> str:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if nginx is None:
        pytest.skip(
            "no nginx on this machine (apt-get install nginx-light); test_image.py runs these in the image"
        )
    return nginx


@dataclass
class Gates:
    """Files the gated app waits for: open one with ``open()``."""

    folder: Path
    warm: Path = field(init=False)
    invocations: Path = field(init=False)

    def __post_init__(self) -> None:
        self.warm, self.invocations = self.folder / "warm-gate", self.folder / "gate"

    def env(self) -> dict[str, str]:
        return {"WARM_GATE": str(self.warm), "GATE": str(self.invocations)}


def gated_app(folder: Path) -> tuple[str, Gates]:
    """(gunicorn app spec, gates) of the gated stand-in written into ``folder``."""
    (folder / "gatedapp.py").write_text(GATED_APP)
    return "gatedapp:app", Gates(folder)


@dataclass
class Stack:
    port: int
    run_dir: Path
    gunicorn: subprocess.Popen

    @property
    def ready_file(self) -> Path:
        return serve.ready_file(self.run_dir)


@contextmanager
def nginx_stack(
    project_root: Path, workdir: Path, app: str, workers: int, env: dict[str, str], wait_ready: bool = True
) -> Iterator[Stack]:
    """gunicorn (serve.gunicorn_command, ``workers`` workers) on a unix socket behind nginx on a
    loopback port, wired as serve_with_nginx wires them; yields once nginx answers (and, with
    ``wait_ready``, once /ping is 200). Stops both afterwards."""
    nginx = nginx_or_skip()
    run_dir = workdir / "run"
    run_dir.mkdir()
    socket_path, port = run_dir / "gunicorn.sock", free_port()
    config = serve.render_nginx(
        project_root / "container" / "nginx.conf", run_dir, port, socket_path, TIMEOUT, workers
    )
    # nginx started as root runs its workers as nobody, who cannot enter this run folder; the image
    # starts it as the model user, which owns both.
    as_root = ["-g", "user root;"] if os.geteuid() == 0 else []
    pythonpath = os.pathsep.join(
        filter(None, [str(project_root / "src"), str(workdir), os.environ.get("PYTHONPATH")])
    )
    full_env = {**os.environ, **serve.SINGLE_THREADED, "PYTHONPATH": pythonpath, "HOME": str(workdir), **env}
    full_env[serve.READY_FILE_ENV] = str(serve.ready_file(run_dir))
    full_env["MODEL_SERVER_WORKERS"] = str(workers)
    log = (workdir / "gunicorn.log").open("w")
    gunicorn = subprocess.Popen(
        serve.gunicorn_command(f"unix:{socket_path}", workers, TIMEOUT, app),
        env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    proxy = subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(run_dir), "-e", "stderr", *as_root],
        stdout=subprocess.DEVNULL, stderr=(workdir / "nginx.log").open("w"),
    )  # fmt: skip
    try:
        _wait_for(port, 200 if wait_ready else None, [gunicorn, proxy], workdir)
        yield Stack(port, run_dir, gunicorn)
    finally:
        for process in (proxy, gunicorn):
            if process.poll() is None:
                process.send_signal(15)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def _wait_for(port: int, status: int | None, processes: list[subprocess.Popen], workdir: Path) -> None:
    """Until /ping answers ``status`` (None: anything); fails if nginx exits, or gunicorn does while
    a 200 is awaited."""
    gunicorn, nginx = processes
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if nginx.poll() is not None or (status == 200 and gunicorn.poll() is not None):
            logs = "".join(path.read_text()[-2000:] for path in workdir.glob("*.log"))
            pytest.fail(f"the server exited before /ping answered {status}:\n{logs}")
        try:
            got = request(port, "GET", "/ping", timeout=2)[0]
            if status is None or got == status:
                return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"/ping did not answer {status or 'at all'} within 120 s")


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = TIMEOUT,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request on a fresh loopback connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


def raw(port: int, data: bytes, timeout: float = 5) -> tuple[int, bytes, bool]:
    """(status, whole response, whether the server closed the connection within ``timeout`` s)
    for bytes sent as they are."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received, closed = b"", False
        try:
            while chunk := sock.recv(65536):
                received += chunk
            closed = True
        except TimeoutError:
            pass
    return int(received.split(b" ", 2)[1]), received, closed


@dataclass
class LoadResult:
    """What the driver saw: /ping latencies and statuses, /invocations statuses and latencies."""

    pings: list[tuple[int | str, float]]
    invocations: list[tuple[int | str, float, bytes]]

    def ping_quantile(self, q: float) -> float:
        times = sorted(t for _, t in self.pings)
        return times[min(len(times) - 1, int(len(times) * q))]

    def statuses(self) -> Counter:
        return Counter(status for status, _, _ in self.invocations)

    def summary(self) -> str:
        times = sorted(t for _, t, _ in self.invocations)
        return (
            f"/ping p50 {self.ping_quantile(0.5) * 1e3:.0f} ms, p99 {self.ping_quantile(0.99) * 1e3:.0f} ms, "
            f"max {self.ping_quantile(1.0) * 1e3:.0f} ms over {len(self.pings)} probes; /invocations "
            f"{dict(self.statuses())}, latency p50 {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s; "
            f"load average {os.getloadavg()[0]:.1f}"
        )


def heavy_load(
    port: int, bodies: list[bytes], clients: int, per_client: int, ping_every: float = 0.02
) -> LoadResult:
    """``clients`` threads each POST ``per_client`` bodies (in turn from ``bodies``) to /invocations
    while two threads GET /ping every ``ping_every`` s until the last answer; bounded by the count."""
    invocations: list[tuple[int | str, float, bytes]] = []
    pings: list[tuple[int | str, float]] = []
    done = threading.Event()

    def timed(method: str, path: str, body: bytes | None, headers: dict, timeout: float) -> tuple:
        started = time.perf_counter()
        try:
            status, _, data = request(port, method, path, body, headers, timeout)
        except OSError as error:
            status, data = type(error).__name__, b""
        return status, time.perf_counter() - started, data

    def client(i: int) -> None:
        for k in range(per_client):
            body = bodies[(i + k) % len(bodies)]
            invocations.append(timed("POST", "/invocations", body, {"Content-Type": "text/csv"}, 2 * TIMEOUT))

    def pinger() -> None:
        while not done.is_set():
            status, took, _ = timed("GET", "/ping", None, {}, 10)
            pings.append((status, took))
            time.sleep(ping_every)

    probes = [threading.Thread(target=pinger) for _ in range(2)]
    senders = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in probes + senders:
        thread.start()
    for thread in senders:
        thread.join()
    done.set()
    for thread in probes:
        thread.join()
    return LoadResult(pings, invocations)


def all_missing_bodies(width: int, limit: int) -> list[bytes]:
    """The largest valid all-missing CSV bodies under ``limit`` bytes: "nan" cells (the review's)
    and empty cells (four times the rows: the most rows a valid body can have)."""
    bodies = []
    for cell in ("nan", ""):
        line = (",".join([cell] * width) + "\n").encode()
        bodies.append(line * (limit // len(line)))
    return bodies
