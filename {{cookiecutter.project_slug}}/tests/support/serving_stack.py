"""nginx (container/nginx.conf, rendered by steps/serve.py) in front of the real gunicorn command on
this machine, a gated stand-in app, and the bounded health-under-load driver; loopback only.

The image runs the same config and launcher (tests/runtime/test_image.py); here nginx comes from the
machine (Debian's nginx-light, 1.22 as in the image), so the tests skip where there is none.
"""

from __future__ import annotations

import http.client
import math
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

import orjson
import pytest
from gunicorn_server import free_port

from {{ cookiecutter.package_name }}.steps import serve

TIMEOUT = 30  # gunicorn's worker timeout and nginx's proxy timeout here, seconds
HEALTH_DEADLINE = 2.0  # seconds: SageMaker's /ping timeout

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


def nginx_or_skip() -> str:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if nginx is None:
        pytest.skip(
            "no nginx on this machine (apt-get install nginx-light); test_image.py runs these in the image"
        )
    return nginx


@dataclass
class Gates:
    """Files the gated app waits for: ``gates.warm.touch()`` lets the warm-up finish,
    ``gates.invocations.touch()`` every request held and to come."""

    folder: Path
    warm: Path = field(init=False)
    invocations: Path = field(init=False)

    def __post_init__(self) -> None:
        self.warm, self.invocations = self.folder / "warm-gate", self.folder / "gate"

    def env(self, seen_as: Path | None = None) -> dict[str, str]:
        """The app's environment; ``seen_as``: the folder's path where the app runs (a mount)."""
        folder = seen_as or self.folder
        return {"WARM_GATE": str(folder / self.warm.name), "GATE": str(folder / self.invocations.name)}


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
    project_root: Path,
    workdir: Path,
    app: str,
    workers: int,
    env: dict[str, str],
    wait_ready: bool = True,
    timeout: int = TIMEOUT,
) -> Iterator[Stack]:
    """gunicorn (serve.gunicorn_command, ``workers`` workers) on a unix socket behind nginx on a
    loopback port, wired as serve_with_nginx wires them; yields once nginx answers (and, with
    ``wait_ready``, once /ping is 200). Stops both afterwards."""
    nginx = nginx_or_skip()
    run_dir = workdir / "run"
    run_dir.mkdir()
    socket_path, port = run_dir / "gunicorn.sock", free_port()
    config = serve.render_nginx(
        project_root / "container" / "nginx.conf", run_dir, port, socket_path, timeout, workers
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
        serve.gunicorn_command(f"unix:{socket_path}", workers, timeout, app),
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


# The checks, shared by the tests on this machine's nginx and those in the image.


def is_json_error(body: bytes, code: int) -> bool:
    return orjson.loads(body)["code"] == code


def in_flight(
    port: int, n: int, body: bytes | list[bytes], headers: dict
) -> tuple[list[threading.Thread], list]:
    """``n`` /invocations started at once in threads; their (status, headers, body) land in the list."""
    answers: list = []

    def send() -> None:
        answers.append(request(port, "POST", "/invocations", body, headers))

    threads = [threading.Thread(target=send) for _ in range(n)]
    for thread in threads:
        thread.start()
    return threads, answers


def wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.01)


def assert_ping_503_until_warm(port: int, gates: Gates) -> None:
    """With the warm-up held: /ping is 503 (JSON); once it is let go, 200 within 30 s."""
    for _ in range(3):
        status, _, body = request(port, "GET", "/ping", timeout=HEALTH_DEADLINE)
        assert status == 503 and is_json_error(body, 503), body
        time.sleep(0.2)
    gates.warm.touch()
    wait_until(lambda: request(port, "GET", "/ping")[0] == 200, timeout=30)


def assert_overload_shed(port: int, gates: Gates, heavy_cap: int, total_cap: int) -> list[float]:
    """With /invocations held: exactly ``heavy_cap`` heavy requests (>= 1,000,000 bytes or
    chunked) and ``total_cap`` in all are let in, the rest get a JSON 429 with Retry-After at once,
    and /ping answers within 2 s all along. Lets the requests go at the end; every one let in
    answers 200. Returns the /ping latencies."""
    csv = {"Content-Type": "text/csv"}
    # All at once, none can finish: exactly the cap is let in, whatever the order. Two are chunked
    # (a list body: http.client chunks it) and tiny: shed only because chunked counts as heavy.
    big = in_flight(port, heavy_cap, b"1," * 500_000, csv)
    chunked = in_flight(port, 2, [b"1\n"], csv)
    rest: tuple[list[threading.Thread], list] = ([], [])
    pings = []
    try:
        wait_until(lambda: len(big[1]) + len(chunked[1]) == 2)
        shed = big[1] + chunked[1]
        assert [status for status, _, _ in shed] == [429, 429], shed
        assert all(is_json_error(body, 429) for _, _, body in shed)
        # Small requests still get in, up to the total (the heavy ones count in it too).
        rest = in_flight(port, total_cap - heavy_cap + 1, b"1\n", csv)
        wait_until(lambda: len(rest[1]) == 1)
        assert rest[1][0][0] == 429
        status, headers, _ = request(port, "POST", "/invocations", b"1\n", csv)
        assert status == 429 and headers.get("Retry-After") == "1"
        for _ in range(10):  # every worker is held, and the queue behind them is full
            started = time.perf_counter()
            assert request(port, "GET", "/ping", timeout=HEALTH_DEADLINE)[0] == 200
            pings.append(time.perf_counter() - started)
        assert len(big[1]) + len(chunked[1]) + len(rest[1]) == 3, "a held request was answered"
    finally:
        gates.invocations.touch()
        for thread in big[0] + chunked[0] + rest[0]:
            thread.join()
    statuses = sorted(status for status, _, _ in big[1] + chunked[1] + rest[1])
    assert statuses == [200] * total_cap + [429] * 3, statuses
    return pings


UNKNOWN_CODINGS = [b"gzip", b"chunked, gzip", b"gzip, chunked", b"identity", b"x" * 100]


def assert_unknown_transfer_encoding_refused(port: int, coding: bytes) -> None:
    """A JSON 400 (not nginx's 501) and the connection closed: the body's end is unknown."""
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: " + coding
    status, reply, closed = raw(port, head + b"\r\n\r\n1\r\n")
    assert status == 400 and closed, reply[:300]
    assert is_json_error(reply.split(b"\r\n\r\n", 1)[1], 400)


def assert_health_under_heavy_load(port: int, width: int, workers: int, problem_type: str) -> LoadResult:
    """2x ``workers`` clients each send two of the largest all-missing bodies: /ping p99 under 2 s,
    no 5xx (a 429 is shed load), and every row answered as one all-missing row is through the JSON
    decoder."""
    from {{ cookiecutter.package_name }}.serving import MAX_PAYLOAD_BYTES

    bodies = all_missing_bodies(width, MAX_PAYLOAD_BYTES)
    result = heavy_load(port, bodies, clients=2 * workers, per_client=2)
    one = orjson.dumps({"instances": [[None] * width]})
    status, _, single = request(
        port, "POST", "/invocations", one, {"Content-Type": "application/json", "Accept": "text/csv"}
    )
    assert status == 200, single
    statuses = result.statuses()
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] >= workers, statuses
    assert {status for status, _ in result.pings} == {200}, result.pings
    assert len(result.pings) >= 10
    assert result.ping_quantile(0.99) < HEALTH_DEADLINE, result.summary()
    header = int(problem_type == "multiclass")  # multiclass CSV answers start with a header line
    expected_line = single.splitlines()[-1]
    rows = {body.count(b"\n") for body in bodies}
    for status, _, data in result.invocations:
        if status == 200:
            lines = set(data.splitlines()[header:])
            assert len(data.splitlines()) - header in rows and len(lines) == 1, lines
            assert same_answer(lines.pop(), expected_line)
    return result


def same_answer(line: bytes, expected: bytes) -> bool:
    """Same label, scores within 1e-6: a batch of 52,000 rows may round the last digits of a
    multiclass softmax differently from a batch of one (the same model, the same row)."""
    cells, wanted = line.split(b","), expected.split(b",")
    if len(cells) != len(wanted):
        return False
    for cell, want in zip(cells, wanted, strict=True):
        try:
            if not math.isclose(float(cell), float(want), rel_tol=1e-6, abs_tol=1e-9):
                return False
        except ValueError:
            if cell != want:
                return False
    return True
