"""This bake's problem type and library served through the real gunicorn server (the image's
command and config module, 2 workers forked after --preload), answering exactly what the library
predicts, in CSV and JSON, with Accept honoured. XGBoost and LightGBM must answer here exactly as
scikit-learn does: a library thread pool started before fork would hang the workers (issue 11), so
every request has a timeout and a hang fails the test. Bake with ``problem_type=...`` and
``model_library=...`` to run the other combinations; the test reads both from settings.

It also prints the 1-row latency through gunicorn on loopback (a figure, not an assertion).
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from serving_bodies import assert_exact, csv_body, expected, json_rows, parse_csv, parse_json

from {{ cookiecutter.package_name }}.serving import server
from {{ cookiecutter.package_name }}.settings import MODEL_LIBRARY, PROBLEM_TYPE

pytestmark = pytest.mark.slow
TIMEOUT = 20  # seconds per request: a hung worker fails the test instead of blocking it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, reply.getheader("Content-Type", ""), reply.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def gunicorn(served, project_root, tmp_path_factory):
    """gunicorn with the image's settings, bound to loopback, serving the trained model."""
    root = tmp_path_factory.mktemp("opt-ml")
    shutil.copytree(served[2], root / "model")
    port = free_port()
    # Library thread settings left at their defaults on purpose: the serving path itself must not
    # start a pool before fork (the image pins OMP_NUM_THREADS=1 on top of that).
    env = {k: v for k, v in os.environ.items() if k not in server.SINGLE_THREADED}
    env.update(OPT_ML_ROOT=str(root), MODEL_SERVER_WORKERS="2")
    env["PYTHONPATH"] = os.pathsep.join([str(project_root / "src"), env.get("PYTHONPATH", "")])
    log = root / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            server.gunicorn_command(f"127.0.0.1:{port}", 2, 30), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_ping(port, process, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _wait_for_ping(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if request(port, "GET", "/ping")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"no /ping 200 within 120 s:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize(
    ("content_type", "accept"),
    [
        ("text/csv", None),
        ("text/csv", "application/json"),
        ("application/json", None),
        ("application/json", "text/csv"),
    ],
)
def test_every_holdout_row_answers_exactly_what_the_library_predicts(gunicorn, served, content_type, accept):
    predictor, holdout, _ = served
    names = predictor.feature_names
    body = (
        csv_body(holdout, names).encode()
        if content_type == "text/csv"
        else orjson.dumps({"instances": json_rows(holdout, names)})
    )
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    # Many requests, so both workers answer some (each warmed up in its own process).
    for _ in range(6):
        status, answer_type, data = request(gunicorn, "POST", "/invocations", body, headers)
        assert status == 200, data[:500]
        produced = accept or content_type
        assert answer_type.startswith(produced)
        text = data.decode()
        answer = (
            parse_csv(text, PROBLEM_TYPE)
            if produced == "text/csv"
            else parse_json(text, PROBLEM_TYPE, predictor.classes)
        )
        assert_exact(
            answer, expected(predictor, holdout), PROBLEM_TYPE, predictor.classes, produced == "text/csv"
        )


def test_client_errors_are_4xx_through_gunicorn(gunicorn, served):
    names = served[0].feature_names
    nested = ("[[" + ",".join(["[" * 1000 + "1" + "]" * 1000] * len(names)) + "]]").encode()
    for body, content_type, status in [
        (nested, "application/json", 400),
        (b"1,2\n", "text/csv", 400),
        (b"[[[], []]]", "application/json", 400),
        (b"1", "text/plain", 415),
    ]:
        got, _, data = request(gunicorn, "POST", "/invocations", body, {"Content-Type": content_type})
        assert got == status, data[:300]
    got, _, _ = request(
        gunicorn, "POST", "/invocations", b"1", {"Content-Type": "text/csv", "Accept": "image/png"}
    )
    assert got == 406


def test_one_row_latency_through_gunicorn(gunicorn, served):
    predictor, holdout, _ = served
    body = csv_body(holdout.take(slice(0, 1)), predictor.feature_names).encode()
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=TIMEOUT)
    times = []
    try:
        for _ in range(300):
            start = time.perf_counter()
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
            reply = connection.getresponse()
            reply.read()
            times.append(time.perf_counter() - start)
            assert reply.status == 200
            if reply.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=TIMEOUT)
    finally:
        connection.close()
    times.sort()
    p50, p99 = times[len(times) // 2] * 1e3, times[int(len(times) * 0.99)] * 1e3
    print(
        f"\n{PROBLEM_TYPE} x {MODEL_LIBRARY}: 1-row CSV through gunicorn, p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )
