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
import time

import gunicorn_server
import orjson
import pytest
from gunicorn_server import TIMEOUT, request
from serving_bodies import assert_exact, csv_body, expected, json_rows, parse_csv, parse_json

from {{ cookiecutter.package_name }}.settings import MODEL_LIBRARY, PROBLEM_TYPE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gunicorn(served, project_root, tmp_path_factory):
    with gunicorn_server.gunicorn(served[2], project_root, tmp_path_factory.mktemp("gunicorn")) as (port, _):
        yield port


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
