"""This bake's problem type and library served through the real gunicorn server (the image's
command and config module, 2 workers forked after --preload), answering as the project's
inference.py does in process (and, with the defaults, exactly what the library predicts), in CSV,
JSON and JSON Lines, with Accept honoured. XGBoost and LightGBM must answer here exactly as
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
from serving_bodies import (
    assert_exact,
    csv_body,
    expected,
    json_rows,
    jsonl_body,
    parse_csv,
    parse_json,
    parse_jsonl,
)

from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.handlers import Handlers
from {{ cookiecutter.package_name }}.settings import MODEL_LIBRARY, PROBLEM_TYPE
from {{ cookiecutter.package_name }}_emulator.endpoint_check import Answer, difference

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("gunicorn")


@pytest.fixture(scope="module")
def gunicorn(served, project_root, workdir):
    with gunicorn_server.gunicorn(served[2], project_root, workdir) as (port, _):
        yield port


def test_no_control_socket_is_opened(gunicorn, workdir):
    # server.control_socket_disable, read by gunicorn from its config module: nothing uses the socket.
    # gunicorn starts it (when enabled) in the master some time after the workers: give it 3 s.
    assert request(gunicorn, "GET", "/ping")[0] == 200
    log = workdir / "gunicorn.log"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and "Control socket" not in log.read_text():
        time.sleep(0.1)
    assert "Control socket listening" not in log.read_text()
    assert not (workdir / "home" / ".gunicorn").exists()


@pytest.mark.parametrize(
    ("content_type", "accept"),
    [
        ("text/csv", None),
        ("text/csv", "application/json"),
        ("application/json", None),
        ("application/json", "text/csv"),
        ("application/jsonlines", None),
    ],
)
def test_every_holdout_row_answers_as_the_project_service_does_in_process(
    gunicorn, served, content_type, accept
):
    """gunicorn serves the project's inference.py: its answers are the in-process service's; with
    the defaults (nothing defined) they are also exactly what the library predicts."""
    predictor, holdout, _ = served
    names = predictor.feature_names
    body = {
        "text/csv": csv_body(holdout, names).encode(),
        "application/json": orjson.dumps({"instances": json_rows(holdout, names)}),
        "application/jsonlines": jsonl_body(holdout, names),
    }[content_type]
    local = Answer(*create_app(predictor=predictor).extensions["serving"].respond(body, content_type, accept))
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    # Many requests, so both workers answer some (each warmed up in its own process).
    for _ in range(6):
        status, answer_type, data = request(gunicorn, "POST", "/invocations", body, headers)
        assert status == 200, data[:500]
        assert difference(Answer(status, answer_type, data), local) == ""
    if Handlers.project().custom:
        return
    produced = accept or content_type
    text = data.decode()
    parse = {"text/csv": None, "application/json": parse_json, "application/jsonlines": parse_jsonl}[produced]
    answer = parse(text, PROBLEM_TYPE, predictor.classes) if parse else parse_csv(text, PROBLEM_TYPE)
    assert_exact(
        answer, expected(predictor, holdout), PROBLEM_TYPE, predictor.classes, produced == "text/csv"
    )


def test_client_errors_are_4xx_through_gunicorn(gunicorn, served):
    names = served[0].feature_names
    nested = ("[[" + ",".join(["[" * 1000 + "1" + "]" * 1000] * len(names)) + "]]").encode()
    service = create_app(predictor=served[0]).extensions["serving"]
    for body, content_type, accept, status in [
        (nested, "application/json", None, 400),
        (b"1,2\n", "text/csv", None, 400),
        (b"[[[], []]]", "application/json", None, 400),
        (b"[1,\n", "application/jsonlines", None, 400),
        (b"1", "text/plain", None, 415),
        (b"1", "text/csv", "image/png", 406),
    ]:
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        got, _, data = request(gunicorn, "POST", "/invocations", body, headers)
        in_process = service.respond(body, content_type, accept)[0]
        # The statuses of the defaults; a project's own input_fn / output_fn may decide others.
        assert got == in_process < 500, data[:300]
        if not service.handlers.custom:
            assert got == status


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


@pytest.fixture(scope="module")
def compiled_model(project_root, tmp_path_factory):
    """(predictor, holdout, folder with model.onnx) when the export verifies for this combination."""
    pytest.importorskip("onnxruntime", reason="the compiled predictor needs onnxruntime")
    import datasets

    from {{ cookiecutter.package_name }}.predictor import Predictor
    from {{ cookiecutter.package_name }}.serving import compiled

    train, holdout = datasets.for_problem(PROBLEM_TYPE, categorical=False)
    predictor = Predictor.fit(train, {})
    folder = tmp_path_factory.mktemp("compiled-model")
    predictor.save(folder)
    if not compiled.export(predictor, holdout, folder):
        pytest.skip(
            f"no verified ONNX export for {PROBLEM_TYPE} x {MODEL_LIBRARY} (see the training log line)"
        )
    return predictor, holdout, folder


def test_the_compiled_predictor_answers_as_the_library_through_gunicorn(
    compiled_model, project_root, tmp_path
):
    predictor, holdout, folder = compiled_model
    names = predictor.feature_names
    with gunicorn_server.gunicorn(folder, project_root, tmp_path) as (port, master):
        # ONNX Runtime lives in the workers only: imported before fork, it aborts them at exit.
        # A worker imports it in its warm-up, which may still run after the first /ping (load).
        def every_worker_has_it() -> bool:
            return all("onnxruntime" in gunicorn_server.maps(pid) for pid in gunicorn_server.workers(master))

        deadline = time.monotonic() + 60
        while not every_worker_has_it() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert every_worker_has_it()
        assert "onnxruntime" not in gunicorn_server.maps(master)
        body = csv_body(holdout, names).encode()
        # The library's answer through the project's inference.py, in process: ONNX answers within 1e-6.
        library = Answer(
            *create_app(predictor=predictor).extensions["serving"].respond(body, "text/csv", None)
        )
        for _ in range(4):  # both workers, each with its own ONNX Runtime session made after fork
            status, answer_type, data = request(
                port, "POST", "/invocations", body, {"Content-Type": "text/csv"}
            )
            assert status == 200
            assert difference(Answer(status, answer_type, data), library) == ""
        # ONNX Runtime is the one answering: no worker has the library's native code mapped.
        native = NATIVE_CODE[MODEL_LIBRARY]
        assert not any(native in gunicorn_server.maps(pid) for pid in gunicorn_server.workers(master))


# What /proc/<pid>/maps shows once the library is imported: its compiled extensions.
NATIVE_CODE = {"scikit-learn": "/sklearn/", "xgboost": "libxgboost", "lightgbm": "lib_lightgbm"}
