"""The inference app through Flask's test client: every content type, Accept and error code."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.data import read_csv
from {{ cookiecutter.package_name }}.model import Model
from {{ cookiecutter.package_name }}.serving.app import MAX_PAYLOAD_BYTES, create_app


@pytest.fixture(scope="module")
def model(trained_model) -> Model:
    return trained_model


@pytest.fixture(scope="module")
def rows(sample_data, model) -> np.ndarray:
    return read_csv(sample_data["holdout"]).matrix(model.feature_names)[:5]


@pytest.fixture(scope="module")
def client(model):
    return create_app(model=model).test_client()


def csv_body(X: np.ndarray) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X)


def post(client, body, content_type="text/csv", accept=None, **kwargs):
    headers = {"Accept": accept} if accept else {}
    return client.post("/invocations", data=body, content_type=content_type, headers=headers, **kwargs)


def test_ping_answers_once_the_model_is_loaded(client):
    assert client.get("/ping").status_code == 200


def test_execution_parameters_for_batch_transform(client, monkeypatch, model):
    monkeypatch.setenv("MODEL_SERVER_WORKERS", "3")
    reply = create_app(model=model).test_client().get("/execution-parameters")
    assert reply.json == {"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


def test_csv_in_csv_out_matches_the_model(client, model, rows):
    reply = post(client, csv_body(rows))
    assert reply.status_code == 200 and reply.mimetype == "text/csv"
    lines = [line.split(",") for line in reply.get_data(as_text=True).splitlines()]
    expected = model.predict_proba(rows)
    assert [float(score) for _, score in lines] == pytest.approx(expected.tolist(), abs=1e-12)
    assert [int(label) for label, _ in lines] == model.predict(rows).tolist()


@pytest.mark.parametrize("shape", ["instances-lists", "instances-objects", "bare-lists"])
def test_json_in_json_out_in_every_shape(client, model, rows, shape):
    lists = rows.tolist()
    payload = {
        "instances-lists": {"instances": lists},
        "instances-objects": {"instances": [dict(zip(model.feature_names, r, strict=True)) for r in lists]},
        "bare-lists": lists,
    }[shape]
    reply = post(client, json.dumps(payload), "application/json")
    assert reply.status_code == 200 and reply.mimetype == "application/json"
    predictions = reply.json["predictions"]
    assert [p["score"] for p in predictions] == pytest.approx(model.predict_proba(rows).tolist(), abs=1e-12)
    assert [p["label"] for p in predictions] == model.predict(rows).tolist()


@pytest.mark.parametrize(
    ("content_type", "accept", "expected"),
    [
        ("text/csv", "application/json", "application/json"),
        ("application/json", "text/csv", "text/csv"),
        ("application/json", "*/*", "application/json"),
        ("text/csv", "*/*", "text/csv"),
        ("text/csv", "application/json;q=0.5, text/csv;q=0.9", "text/csv"),
        ("text/csv; charset=utf-8", None, "text/csv"),
    ],
)
def test_accept_picks_the_response_type(client, rows, content_type, accept, expected):
    body = csv_body(rows) if content_type.startswith("text/csv") else json.dumps({"instances": rows.tolist()})
    reply = post(client, body, content_type, accept)
    assert reply.status_code == 200 and reply.mimetype == expected


def test_missing_cells_are_imputed_as_in_training(client, model, rows):
    X = rows[:1].copy()
    X[0, 3] = np.nan
    body = csv_body(rows[:1]).replace(repr(float(rows[0, 3])), "", 1)
    reply = post(client, body, accept="application/json")
    assert reply.status_code == 200
    assert reply.json["predictions"][0]["score"] == pytest.approx(float(model.predict_proba(X)[0]))
    json_reply = post(client, json.dumps([[None if np.isnan(v) else v for v in X[0]]]), "application/json")
    assert json_reply.json == reply.json


def error_of(reply) -> tuple[int, str]:
    assert reply.mimetype == "application/json", reply.get_data(as_text=True)
    assert reply.json["code"] == reply.status_code
    return reply.status_code, reply.json["error"]


def test_wrong_feature_count_names_row_expected_and_got(client, rows):
    lines = csv_body(rows[:2]).splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0]
    assert error_of(post(client, "\n".join(lines))) == (400, "row 2: expected 30 features, got 29")
    json_body = json.dumps({"instances": [[*rows[0].tolist(), 1.0]]})
    assert error_of(post(client, json_body, "application/json")) == (
        400,
        "row 1: expected 30 features, got 31",
    )


def test_non_numeric_value_names_row_and_feature(client, model, rows):
    lines = csv_body(rows[:3]).splitlines()
    cells = lines[2].split(",")
    cells[1] = "abc"
    lines[2] = ",".join(cells)
    status, message = error_of(post(client, "\n".join(lines)))
    assert (status, message) == (400, f"row 3, column 2 ({model.feature_names[1]!r}): 'abc' is not a number")
    instances = [dict(zip(model.feature_names, rows[0].tolist(), strict=True))]
    instances[0][model.feature_names[4]] = [1]
    status, message = error_of(post(client, json.dumps({"instances": instances}), "application/json"))
    assert message == f"row 1, column 5 ({model.feature_names[4]!r}): [1] is not a number"


def test_infinite_values_are_refused_as_in_training(client, model, rows):
    body = json.dumps([["inf", *rows[0].tolist()[1:]]])
    status, message = error_of(post(client, body, "application/json"))
    assert (status, message) == (
        400,
        f"row 1, column 1 ({model.feature_names[0]!r}): infinite values are not allowed",
    )
    overflow = json.dumps([rows[0].tolist()]).replace(repr(float(rows[0, 0])), "1e999", 1)
    assert error_of(post(client, overflow, "application/json"))[0] == 400  # orjson refuses it as it parses
    cells = csv_body(rows[:1]).split(",")
    cells[0] = "-inf"
    assert "infinite values are not allowed" in error_of(post(client, ",".join(cells)))[1]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("", "text/csv", "empty request body"),
        ("\n \n", "text/csv", "empty request body"),
        ("{not json", "application/json", "malformed JSON"),
        ('{"rows": []}', "application/json", "expected a JSON body"),
        ('{"instances": []}', "application/json", "the request has no rows"),
        ('{"instances": [1, 2]}', "application/json", "row 1: expected a list of 30 values"),
        (b"\xff\xfe1,2", "text/csv", "the body is not UTF-8 text"),
    ],
)
def test_malformed_or_empty_body_is_400(client, body, content_type, message):
    status, error = error_of(post(client, body, content_type))
    assert status == 400 and message in error


def test_errors_follow_a_csv_accept_as_text(client):
    reply = post(client, "1,2", accept="text/csv")
    assert reply.status_code == 400 and reply.mimetype == "text/csv"
    assert reply.get_data(as_text=True) == "error 400: row 1: expected 30 features, got 2\n"


def test_body_over_6_mb_is_413_before_reading(client):
    status, message = error_of(post(client, "1," * (MAX_PAYLOAD_BYTES // 2 + 1)))
    assert status == 413 and f"the limit is {MAX_PAYLOAD_BYTES}" in message


def test_chunked_body_over_6_mb_is_413(client):
    # gunicorn de-chunks the body and marks the stream terminated; the test client needs telling.
    reply = client.post(
        "/invocations",
        input_stream=io.BytesIO(b"1," * (MAX_PAYLOAD_BYTES // 2 + 1)),
        headers={"Content-Type": "text/csv", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert error_of(reply)[0] == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-npy", ""])
def test_unsupported_content_type_is_415(client, content_type):
    status, message = error_of(post(client, "1,2", content_type))
    assert status == 415 and "send text/csv or application/json" in message


def test_unsupported_accept_is_406(client, rows):
    status, message = error_of(post(client, csv_body(rows), accept="application/x-protobuf"))
    assert (status, message) == (
        406,
        "cannot produce 'application/x-protobuf'; supported: text/csv, application/json",
    )


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("get", "/", 404), ("get", "/health", 404), ("post", "/ping", 405), ("get", "/invocations", 405)],
)
def test_only_the_contract_routes_exist(client, method, path, status):
    reply = getattr(client, method)(path)
    assert error_of(reply)[0] == status


def test_a_bug_is_a_json_500_and_the_app_keeps_serving(model, rows, monkeypatch):
    client = create_app(model=model).test_client()
    monkeypatch.setattr(model, "predict_proba", lambda X: 1 / 0)
    assert error_of(post(client, csv_body(rows))) == (500, "internal error: ZeroDivisionError")
    monkeypatch.undo()
    assert post(client, csv_body(rows)).status_code == 200


def test_a_stray_carriage_return_in_quoted_csv_is_a_400(client):
    # Found by the fuzz test: the csv module raises on this, which once became a 500.
    reply = post(client, '\r,"')
    assert reply.status_code == 400 and "malformed CSV" in reply.json["error"]
