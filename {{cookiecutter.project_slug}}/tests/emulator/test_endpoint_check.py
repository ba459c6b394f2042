"""The offline run's endpoint check (endpoint_check.py, observe.invoke_check): the endpoint's answers
against what the project's inference.py answers in process for the same requests on the same model.

An endpoint here is the serving app itself behind a werkzeug server, reached through moto's
sagemaker-runtime InvokeEndpoint and the data plane (no training, no subprocess): the check's
whole path runs, from the model tarball in S3 to the record file, in a few seconds.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from inference_modules import module_from
from rich.console import Console
from werkzeug.serving import make_server

from {{ cookiecutter.package_name }} import data, settings, tarballs
from {{ cookiecutter.package_name }}.serving.app import Service, create_app
from {{ cookiecutter.package_name }}.serving.handlers import Handlers
from {{ cookiecutter.package_name }}_emulator import endpoint_check, observe
from {{ cookiecutter.package_name }}_emulator.data_plane import DataPlane
from {{ cookiecutter.package_name }}_emulator.endpoint_check import Answer, difference
from {{ cookiecutter.package_name }}_emulator.run import Emulator
from {{ cookiecutter.package_name }}_emulator.runtimes import Endpoint, JobResult, Runtime, free_port

CLOCK = """
import time

from .serving import codecs

def output_fn(prediction, accept, context):
    records = context.encoder.records(prediction)
    for record in records:
        record["served_at"] = time.time()  # differs between the endpoint and the check
    return codecs.encode_records(records, accept)
"""
KEY_ERROR = """
def input_fn(request_body, content_type):
    fields = {}
    return fields["listing_id"]
"""


# -- requests and the comparison ----------------------------------------------------------------
def test_the_requests_drop_the_label_and_carry_text_cells_in_csv_and_json_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "COLUMN_ROLES", {})  # a ranking bake's query column: not in this table
    table = data.Table(
        ["colour", settings.LABEL_COLUMN, "size"],
        {
            "colour": np.array(["red, dark", "blue"], dtype=object),
            settings.LABEL_COLUMN: np.array(["yes", "no"], dtype=object),
            "size": np.array([1.5, np.nan]),
        },
    )
    as_csv, as_lines = endpoint_check.requests_for(table, rows=5)
    assert (as_csv.content_type, as_csv.accept, as_csv.rows) == ("text/csv", "application/json", 2)
    assert as_csv.body == b'"red, dark",1.5\nblue,\n'
    assert (as_lines.content_type, as_lines.accept) == ("application/jsonlines", "application/jsonlines")
    assert [json.loads(line) for line in as_lines.body.splitlines()] == [
        {"colour": "red, dark", "size": 1.5},
        {"colour": "blue", "size": None},
    ]


def test_the_csv_requests_follow_the_served_models_features_not_the_holdouts_detection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Detection on 2 holdout rows could call ``code`` an id; the model trained it as a feature."""
    monkeypatch.setattr(settings, "COLUMN_ROLES", {})
    table = data.Table(
        ["code", settings.LABEL_COLUMN, "size"],
        {
            "code": np.array(["a1", "b2"], dtype=object),
            settings.LABEL_COLUMN: np.array(["yes", "no"], dtype=object),
            "size": np.array([1.5, 2.0]),
        },
    )
    as_csv, _ = endpoint_check.requests_for(table, rows=5, features=["size", "code"])
    assert as_csv.body == b"1.5,a1\n2.0,b2\n"


def answer(body: Any, kind: str = "application/json", status: int = 200) -> Answer:
    text = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, kind, text)


def test_answers_agree_on_texts_exactly_and_numbers_within_the_tolerance() -> None:
    want = answer({"predictions": [{"label": "yes", "score": 0.25}, {"label": 1, "score": 0.5}]})
    close = answer({"predictions": [{"label": "yes", "score": 0.25 + 1e-12}, {"label": 1.0, "score": 0.5}]})
    assert difference(close, want) == ""
    assert difference(answer(want.body, "application/json; charset=utf-8"), want) == ""


@pytest.mark.parametrize(
    ("got", "message"),
    [
        (
            answer({"predictions": [{"label": "no", "score": 0.25}, {"label": 1, "score": 0.5}]}),
            "$.predictions[0].label: endpoint 'no', in process 'yes'",
        ),
        (
            answer({"predictions": [{"label": "yes", "score": 0.26}, {"label": 1, "score": 0.5}]}),
            "$.predictions[0].score: endpoint 0.26, in process 0.25",
        ),
        (
            answer({"predictions": [{"label": "yes", "score": 0.25}]}),
            "$.predictions: endpoint 1 items, in process 2",
        ),
        (
            answer({"predictions": [{"score": 0.25, "label": "yes"}, {"label": 1, "score": 0.5}]}),
            "$.predictions[0]: endpoint fields ['score', 'label'], in process ['label', 'score']",
        ),
        (
            answer(b"yes,0.25\n1,0.5\n", "text/csv"),
            "content type: endpoint text/csv, in process application/json",
        ),
        (answer(b'{"error":"boom","code":500}', status=500), "status: endpoint 500, in process 200"),
    ],
)
def test_a_difference_is_named_by_its_place_in_the_answer(got: Answer, message: str) -> None:
    want = answer({"predictions": [{"label": "yes", "score": 0.25}, {"label": 1, "score": 0.5}]})
    assert difference(got, want).startswith(message)


def test_places_in_json_lines_and_csv_answers_are_lines_and_fields() -> None:
    lines = answer(
        b'{"label":"a","decision":"approve"}\n{"label":"b","decision":"review"}\n', "application/jsonlines"
    )
    other = answer(
        b'{"label":"a","decision":"approve"}\n{"label":"b","decision":"approve"}\n', "application/jsonlines"
    )
    assert difference(other, lines) == "line 2, decision: endpoint 'approve', in process 'review'"
    table = answer(b"label,a,b\nb,0.25,0.75\n", "text/csv")
    assert difference(answer(b"label,a,b\nb,0.25,0.7\n", "text/csv"), table) == (
        "line 2, field 3: endpoint 0.7, in process 0.75"
    )
    assert difference(
        answer(b"\x08\x01", "application/x-protobuf"), answer(b"\x08\x02", "application/x-protobuf")
    )


def test_error_answers_agree_on_status_and_the_message_passed_on() -> None:
    error = answer(b'{"error":"row 1: expected 3 features, got 2","code":400}', status=400)
    assert difference(answer(error.body, "", 400), error) == ""  # a ModelError carries no content type
    other = answer(b'{"error":"row 2: expected 3 features, got 2","code":400}', status=400)
    assert difference(other, error).startswith("error: endpoint")


# -- the check through moto's sagemaker-runtime -------------------------------------------------
class AppRuntime(Runtime):
    """Endpoints are the serving app of ``self.app`` (swapped by each test) behind werkzeug; their
    log is what the serving code logs (the app runs in this process)."""

    name = "app"

    def __init__(self) -> None:
        self.app: Any = None
        self.servers: list[Any] = []
        self.log = io.StringIO()
        logging.getLogger(f"{settings.PACKAGE_NAME}.serving").addHandler(logging.StreamHandler(self.log))

    def run_training(self, request: dict[str, Any]) -> JobResult:
        raise NotImplementedError

    def run_processing(self, request: dict[str, Any]) -> JobResult:
        raise NotImplementedError

    def start_endpoint(self, name: str, container: dict[str, Any], instance_count: int = 1) -> Endpoint:
        port = free_port()
        server = make_server("127.0.0.1", port, lambda environ, start: self.app(environ, start))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return Endpoint(name, f"http://127.0.0.1:{port}", container["ModelDataUrl"], {"server": server})

    def stop_endpoint(self, endpoint: Endpoint) -> None:
        endpoint.details["server"].shutdown()

    def endpoint_logs(self, endpoint: Endpoint) -> str:
        return self.log.getvalue()


@pytest.fixture(scope="module")
def endpoint(cp: Any, served: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppRuntime]:
    """An endpoint named as the project's, whose model tarball in S3 holds the served model."""
    predictor, _, model_dir = served
    s3, sm = cp.client("s3"), cp.client("sagemaker")
    s3.create_bucket(Bucket=settings.S3_BUCKET, CreateBucketConfiguration={"LocationConstraint": cp.region})
    archive = tarballs.create(model_dir, tmp_path_factory.mktemp("tarball") / "model.tar.gz")
    s3.upload_file(str(archive), settings.S3_BUCKET, "models/test/model.tar.gz")
    runtime = AppRuntime()
    runtime.app = create_app(predictor=predictor)
    plane = DataPlane(runtime).attach()
    role = cp.client("iam").get_role(RoleName="local-emulator")["Role"]["Arn"]
    url = f"s3://{settings.S3_BUCKET}/models/test/model.tar.gz"
    sm.create_model(
        ModelName="m", ExecutionRoleArn=role, PrimaryContainer={"Image": "img:latest", "ModelDataUrl": url}
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=settings.ENDPOINT_NAME, EndpointConfigName="c")
    deadline = time.monotonic() + 30
    while sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME)["EndpointStatus"] != "InService":
        assert time.monotonic() < deadline, "the endpoint did not come up"
        time.sleep(0.05)
    runtime.plane = plane
    yield runtime
    plane.detach()


@pytest.fixture
def holdout(served: Any, tmp_path: Path) -> Path:
    path = tmp_path / "holdout.csv"
    data.write_csv(path, served[1])
    return path


def serve(endpoint: AppRuntime, served: Any, monkeypatch: pytest.MonkeyPatch, source: str | None) -> None:
    """Serve ``source`` as inference.py, at the endpoint and in the check's process alike."""
    module = module_from(source) if source else None
    handlers = Handlers.of(module) if module else Handlers.project()
    endpoint.app = create_app(predictor=served[0], inference=module)
    monkeypatch.setattr(Handlers, "project", classmethod(lambda cls: handlers))


def test_the_project_service_passes_the_check_and_both_answers_are_recorded(
    cp: Any, endpoint: AppRuntime, served: Any, holdout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(endpoint, served, monkeypatch, None)
    check = observe.invoke_check(cp, "create", holdout, tmp_path)
    assert check is not None
    assert (check.matches, check.rows, check.error, check.difference) == (True, endpoint_check.ROWS, "", "")
    recorded = json.loads((tmp_path / "endpoint-check-create.json").read_text())
    assert [r["request"]["content_type"] for r in recorded] == ["text/csv", "application/jsonlines"]
    for record in recorded:
        assert record["endpoint"]["status"] == 200 and record["endpoint"] == record["in_process"]


def test_an_output_fn_reading_a_clock_fails_the_check_naming_the_field(
    cp: Any, endpoint: AppRuntime, served: Any, holdout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(endpoint, served, monkeypatch, CLOCK)
    check = observe.invoke_check(cp, "create", holdout, tmp_path)
    assert check is not None and not check.matches and check.error == ""
    assert check.difference.startswith("CSV -> JSON: $.predictions[0].served_at: endpoint ")
    assert "JSON Lines -> JSON Lines: line 1, served_at: endpoint " in check.difference


def test_a_failing_input_fn_is_a_server_error_of_the_check(
    cp: Any, endpoint: AppRuntime, served: Any, holdout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(endpoint, served, monkeypatch, KEY_ERROR)
    check = observe.invoke_check(cp, "create", holdout, tmp_path)
    assert check is not None and not check.matches and check.server_error and check.rows == 0
    assert check.error == (
        'CSV -> JSON: the endpoint answered 500: {"error":"internal error in input_fn: KeyError","code":500}'
    )


def test_an_inference_py_refused_in_process_fails_the_check_with_its_reason(
    cp: Any, endpoint: AppRuntime, served: Any, holdout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(endpoint, served, monkeypatch, None)

    def refused(cls: type) -> Handlers:
        raise TypeError("inference.py defines model_fn: not supported here")

    monkeypatch.setattr(Handlers, "project", classmethod(refused))
    check = observe.invoke_check(cp, "create", holdout, tmp_path)
    assert check is not None and not check.matches
    assert check.error == "in process: TypeError: inference.py defines model_fn: not supported here"


def test_the_local_service_is_the_project_inference_on_the_library_model(served: Any) -> None:
    service = endpoint_check.local_service(served[2])
    assert isinstance(service, Service) and service.handlers == Handlers.project()
    assert type(service.predictor.estimator) is type(served[0].estimator)


def test_the_offline_run_shows_the_traceback_of_the_user_code_only_in_one_screen(
    cp: Any, endpoint: AppRuntime, served: Any, holdout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(endpoint, served, monkeypatch, KEY_ERROR)
    screen = io.StringIO()
    emulator = Emulator("process", tmp_path, Console(file=screen, width=300))
    emulator.cp, emulator.plane = cp, endpoint.plane  # the moto and data plane of this module
    emulator.dataset = types.SimpleNamespace(holdout=holdout)
    check = emulator.check_endpoint("create")
    assert check is not None and not check.matches
    shown = screen.getvalue().splitlines()
    assert shown[0].startswith(
        f"invocation {settings.ENDPOINT_NAME} failed: CSV -> JSON: the endpoint answered 500"
    )
    assert shown[1] == "--- your code (inference.py), from the endpoint's log ---"
    assert shown[2:] == [
        "inference.py: input_fn failed at line 4 (<inference_under_test>): KeyError: 'listing_id'",
        "Traceback of your code (most recent call last):",
        '  File "<inference_under_test>", line 4, in input_fn',
        '    return fields["listing_id"]',
        "           ~~~~~~^^^^^^^^^^^^^^",
        "KeyError: 'listing_id'",
    ]
