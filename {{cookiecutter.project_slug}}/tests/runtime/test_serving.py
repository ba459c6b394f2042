"""The inference app with the default service functions (what inference.py does not define), through
Flask's test client: every content type, Accept and error code, with this bake's problem type and
library, on data with string labels and categorical columns. The project's own inference.py is
tested by test_inference.py, test_inference_example.py and the fuzz."""

from __future__ import annotations

import io
import json
import threading

import orjson
import pytest
from serving_bodies import (
    DEFAULTS,
    assert_exact,
    csv_body,
    expected,
    json_rows,
    jsonl_body,
    parse_csv,
    parse_json,
    parse_jsonl,
)

from {{ cookiecutter.package_name }}.serving.app import MAX_PAYLOAD_BYTES, create_app
from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE


@pytest.fixture(scope="module")
def predictor(served):
    return served[0]


@pytest.fixture(scope="module")
def rows(served):
    return served[1].take(slice(0, 12))  # includes rows with the unseen category and missing cells


@pytest.fixture(scope="module")
def names(predictor):
    return predictor.feature_names


def default_app(predictor):
    return create_app(predictor=predictor, inference=DEFAULTS)


@pytest.fixture(scope="module")
def client(predictor):
    return default_app(predictor).test_client()


def post(client, body, content_type="text/csv", accept=None, **kwargs):
    headers = {"Accept": accept} if accept else {}
    return client.post("/invocations", data=body, content_type=content_type, headers=headers, **kwargs)


def test_ping_warms_up_in_the_serving_process_not_at_create_app(predictor, monkeypatch):
    calls = []
    original = predictor.predict
    monkeypatch.setattr(predictor, "predict", lambda X: calls.append(X.shape) or original(X))
    app = create_app(predictor=predictor)  # the project's inference.py: the warm-up uses the defaults
    assert calls == []  # gunicorn's master builds the app: no prediction (no thread pool) there
    assert app.test_client().get("/ping").status_code == 200
    # The example row, answered as CSV, JSON and JSON Lines.
    assert calls == [(1, len(predictor.feature_names))] * 3
    assert app.test_client().get("/ping").status_code == 200 and len(calls) == 3  # once per process


def test_ping_is_503_until_the_warm_up_prediction_succeeds(predictor, monkeypatch):
    app = default_app(predictor)
    monkeypatch.setattr(predictor, "predict", lambda X: 1 / 0)
    reply = app.test_client().get("/ping")
    assert reply.status_code == 503 and reply.json["error"] == "warm-up prediction failed: ZeroDivisionError"
    monkeypatch.undo()
    assert app.test_client().get("/ping").status_code == 200


def test_execution_parameters_for_batch_transform(predictor, monkeypatch):
    monkeypatch.setenv("MODEL_SERVER_WORKERS", "3")
    reply = default_app(predictor).test_client().get("/execution-parameters")
    assert reply.json == {"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


@pytest.mark.parametrize("accept", ["text/csv", "application/json"])
def test_csv_in_answers_exactly_what_the_library_predicts(client, predictor, rows, names, accept):
    reply = post(client, csv_body(rows, names), accept=accept)
    assert reply.status_code == 200 and reply.mimetype == accept
    text = reply.get_data(as_text=True)
    answer = (
        parse_csv(text, PROBLEM_TYPE)
        if accept == "text/csv"
        else parse_json(text, PROBLEM_TYPE, predictor.classes)
    )
    assert_exact(answer, expected(predictor, rows), PROBLEM_TYPE, predictor.classes, accept == "text/csv")


@pytest.mark.parametrize("shape", ["instances-lists", "instances-objects", "bare-lists"])
def test_json_in_every_shape_answers_exactly(client, predictor, rows, names, shape):
    lists = json_rows(rows, names)
    payload = {
        "instances-lists": {"instances": lists},
        "instances-objects": {"instances": [dict(zip(names, r, strict=True)) for r in lists]},
        "bare-lists": lists,
    }[shape]
    reply = post(client, json.dumps(payload), "application/json")
    assert reply.status_code == 200 and reply.mimetype == "application/json"
    answer = parse_json(reply.get_data(as_text=True), PROBLEM_TYPE, predictor.classes)
    assert_exact(answer, expected(predictor, rows), PROBLEM_TYPE, predictor.classes, csv_=False)


@pytest.mark.parametrize("by_name", [True, False])
@pytest.mark.parametrize("accept", [None, "application/json", "text/csv"])
def test_json_lines_in_answers_exactly(client, predictor, rows, names, by_name, accept):
    reply = post(client, jsonl_body(rows, names, by_name), "application/jsonlines", accept)
    produced = accept or "application/jsonlines"
    assert reply.status_code == 200 and reply.mimetype == produced
    text = reply.get_data(as_text=True)
    parse = {"application/jsonlines": parse_jsonl, "application/json": parse_json}.get(produced)
    answer = parse(text, PROBLEM_TYPE, predictor.classes) if parse else parse_csv(text, PROBLEM_TYPE)
    assert_exact(answer, expected(predictor, rows), PROBLEM_TYPE, predictor.classes, produced == "text/csv")


@pytest.mark.parametrize("content_type", ["text/csv", "application/json"])
def test_json_lines_out_holds_the_json_records_one_a_line(client, rows, names, content_type):
    body = csv_body(rows, names) if content_type == "text/csv" else json.dumps(json_rows(rows, names))
    lines = post(client, body, content_type, "application/jsonlines").get_data(as_text=True)
    as_json = post(client, body, content_type, "application/json").json["predictions"]
    assert lines.endswith("\n") and [json.loads(line) for line in lines.splitlines()] == as_json


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[1, 2]\n{"a": \n', "row 2: malformed JSON"),
        ('"text"\n', "row 1: expected a list of"),
        ("\n\n", "empty request body"),
        ('{"nope": 1}\n', "row 1: expected"),
    ],
)
def test_json_lines_errors_name_the_row(client, body, message):
    status, error = error_of(post(client, body, "application/jsonlines"))
    assert status == 400 and error.startswith(message), error


def number(value: float) -> str:
    """A number as the answers write it: orjson's shortest round-trip text, in CSV as in JSON."""
    return orjson.dumps(float(value)).decode()


def test_the_output_shape_of_this_problem_type(client, predictor, rows, names):
    one = rows.take(slice(0, 1))
    body = json.loads(post(client, csv_body(one, names), accept="application/json").get_data())
    csv_text = post(client, csv_body(one, names)).get_data(as_text=True)
    want = expected(predictor, one)
    if PROBLEM_TYPE == "binary":
        assert body == {"predictions": [{"label": want.labels[0], "score": float(want.scores[0])}]}
        assert csv_text == f"{want.labels[0]},{number(want.scores[0])}\n"
    elif PROBLEM_TYPE == "multiclass":
        probabilities = dict(zip(map(str, predictor.classes), want.probabilities[0].tolist(), strict=True))
        assert body == {"predictions": [{"label": want.labels[0], "probabilities": probabilities}]}
        header = ",".join(["label", *map(str, predictor.classes)])
        assert csv_text == f"{header}\n{want.labels[0]},{','.join(map(number, want.probabilities[0]))}\n"
    elif PROBLEM_TYPE == "ranking":  # a score per row; its rank too when the group is sent (test_ranking.py)
        assert body == {"predictions": [{"score": float(want.values[0])}]}
        assert csv_text == f"{number(want.values[0])}\n"
    else:
        assert body == {"predictions": [{"value": float(want.values[0])}]}
        assert csv_text == f"{number(want.values[0])}\n"


@pytest.mark.parametrize(
    ("content_type", "accept", "expected_type"),
    [
        ("text/csv", "application/json", "application/json"),
        ("application/json", "text/csv", "text/csv"),
        ("application/json", "*/*", "application/json"),
        ("text/csv", "*/*", "text/csv"),
        ("text/csv", "application/json;q=0.5, text/csv;q=0.9", "text/csv"),
        ("text/csv; charset=utf-8", None, "text/csv"),
        ("text/csv", "application/jsonlines", "application/jsonlines"),
        ("application/jsonlines", None, "application/jsonlines"),
        ("application/jsonlines", "text/*", "text/csv"),
        ("application/jsonlines", "application/json, application/jsonlines;q=0.2", "application/json"),
    ],
)
def test_accept_picks_the_response_type(client, rows, names, content_type, accept, expected_type):
    body = {
        "text/csv": csv_body(rows, names),
        "application/json": json.dumps(json_rows(rows, names)),
        "application/jsonlines": jsonl_body(rows, names),
    }[content_type.split(";")[0]]
    reply = post(client, body, content_type, accept)
    assert reply.status_code == 200 and reply.mimetype == expected_type


def test_categorical_cells_read_as_training_reads_them(client, predictor, rows, names):
    categorical = [j for j, kind in enumerate(predictor.feature_kinds) if kind == "categorical"]
    if not categorical:
        pytest.skip("this data set has no categorical feature")
    j = categorical[0]
    lists = json_rows(rows.take(slice(0, 1)), names)
    baseline = post(client, json.dumps(lists), "application/json").json
    padded = [list(lists[0])]
    padded[0][j] = f"  {lists[0][j]} "  # surrounding spaces are stripped, as read_csv does
    assert post(client, json.dumps(padded), "application/json").json == baseline
    unseen = [list(lists[0])]
    unseen[0][j] = "never-seen-in-training"
    missing = [list(lists[0])]
    missing[0][j] = None
    # An unseen category predicts as a missing one (the Predictor's contract), never a 4xx.
    assert (
        post(client, json.dumps(unseen), "application/json").json
        == post(client, json.dumps(missing), "application/json").json
    )


def error_of(reply) -> tuple[int, str]:
    assert reply.mimetype == "application/json", reply.get_data(as_text=True)
    assert reply.json["code"] == reply.status_code
    return reply.status_code, reply.json["error"]


def test_wrong_feature_count_names_row_expected_and_got(client, rows, names):
    lines = csv_body(rows.take(slice(0, 2)), names).splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0]
    width = len(names)
    assert error_of(post(client, "\n".join(lines))) == (
        400,
        f"row 2: expected {width} features, got {width - 1}",
    )
    json_body = json.dumps({"instances": [[*json_rows(rows, names)[0], 1.0]]})
    assert error_of(post(client, json_body, "application/json")) == (
        400,
        f"row 1: expected {width} features, got {width + 1}",
    )


def _numeric_column(predictor) -> int:
    return predictor.feature_kinds.index("numeric")


def test_non_numeric_value_names_row_and_feature(client, predictor, rows, names):
    j = _numeric_column(predictor)
    lists = json_rows(rows.take(slice(0, 3)), names)
    lists[2][j] = "abc"
    status, message = error_of(post(client, json.dumps(lists), "application/json"))
    assert (status, message) == (400, f"row 3, column {j + 1} ({names[j]!r}): 'abc' is not a number")


@pytest.mark.parametrize(
    ("cell", "shown"),
    [([1], "a list [1]"), ([1, 2], "a list [1, 2]"), ([], "a list []"), ({"a": 1}, "an object {'a': 1}")],
)
def test_a_list_or_object_in_a_cell_is_a_400_naming_row_and_column(
    client, predictor, rows, names, cell, shown
):
    # Every cell of the row, and one cell only: the full-width shapes once ended in a 500 (reshape).
    width = len(names)
    for lists, j in (([[cell] * width], 0), ([[*json_rows(rows, names)[0][:-1], cell]], width - 1)):
        status, message = error_of(post(client, json.dumps({"instances": lists}), "application/json"))
        assert (status, message) == (
            400,
            f"row 1, column {j + 1} ({names[j]!r}): {shown} is not a {_kind(predictor, j)}",
        )


def _kind(predictor, j: int) -> str:
    return "number" if predictor.feature_kinds[j] == "numeric" else "category (send a string)"


@pytest.mark.parametrize("depth", [1000, 1023, 5000])
def test_deep_nesting_in_a_cell_is_a_400(client, predictor, names, depth):
    deep = "[" * depth + "1" + "]" * depth
    body = "[[" + ",".join([deep] * len(names)) + "]]"
    status, message = error_of(post(client, body, "application/json"))
    if depth < 1022:  # orjson parses up to 1,024 levels: the cell is named and quoted shortly
        assert (status, message) == (
            400,
            f"row 1, column 1 ({names[0]!r}): a list [[[...]]] is not a {_kind(predictor, 0)}",
        )
    else:  # deeper: orjson refuses it while parsing, no recursion
        assert status == 400 and message.startswith("malformed JSON: depth limit exceeded")


def test_infinite_values_are_refused_as_in_training(client, predictor, rows, names):
    j = _numeric_column(predictor)
    lists = json_rows(rows.take(slice(0, 1)), names)
    lists[0][j] = "inf"
    status, message = error_of(post(client, json.dumps(lists), "application/json"))
    assert (status, message) == (
        400,
        f"row 1, column {j + 1} ({names[j]!r}): infinite values are not allowed",
    )
    lists[0][j] = 10**400  # beyond float range: a 400, not an OverflowError
    assert error_of(post(client, json.dumps(lists), "application/json"))[0] == 400


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("", "text/csv", "empty request body"),
        ("\n \n", "text/csv", "empty request body"),
        ("{not json", "application/json", "malformed JSON"),
        ('{"rows": []}', "application/json", "expected a JSON body"),
        ('{"instances": []}', "application/json", "the request has no rows"),
        ('{"instances": [1, 2]}', "application/json", "row 1: expected a list of"),
        (b"\xff\xfe1,2", "text/csv", "the body is not UTF-8 text"),
        ('\r,"', "text/csv", "malformed CSV"),  # found by the fuzz test: once a 500
    ],
)
def test_malformed_or_empty_body_is_400(client, body, content_type, message):
    status, error = error_of(post(client, body, content_type))
    assert status == 400 and message in error


def test_unknown_and_missing_feature_names_are_listed(client, rows, names):
    row = dict(zip(names, json_rows(rows, names)[0], strict=True))
    row.pop(names[1])
    row["nope"] = 1
    status, message = error_of(post(client, json.dumps({"instances": [row]}), "application/json"))
    assert (status, message) == (
        400,
        f"row 1: expected {len(names)} features, got {len(names)}: unknown feature(s) 'nope'; "
        f"missing feature(s) {names[1]}",
    )


def test_errors_follow_a_csv_accept_as_text(client, names):
    reply = post(client, "1,2", accept="text/csv")
    assert reply.status_code == 400 and reply.mimetype == "text/csv"
    assert reply.get_data(as_text=True) == f"error 400: row 1: expected {len(names)} features, got 2\n"


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
    assert status == 415 and "send text/csv, application/json, application/jsonlines" in message


def test_unsupported_accept_is_406(client, rows, names):
    status, message = error_of(post(client, csv_body(rows, names), accept="application/x-protobuf"))
    assert (status, message) == (
        406,
        "cannot produce 'application/x-protobuf'; supported: text/csv, application/json, application/jsonlines",
    )


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("get", "/", 404), ("get", "/health", 404), ("post", "/ping", 405), ("get", "/invocations", 405)],
)
def test_only_the_contract_routes_exist(client, method, path, status):
    reply = getattr(client, method)(path)
    assert error_of(reply)[0] == status


def test_a_bug_is_a_json_500_and_the_app_keeps_serving(predictor, rows, names, monkeypatch):
    client = default_app(predictor).test_client()
    monkeypatch.setattr(predictor, "predict", lambda X: 1 / 0)
    assert error_of(post(client, csv_body(rows, names))) == (500, "internal error: ZeroDivisionError")
    monkeypatch.undo()
    assert post(client, csv_body(rows, names)).status_code == 200


def test_scikit_learn_skips_its_finiteness_check_in_every_serving_thread(client, rows, names):
    # scikit-learn keeps its config per thread; gunicorn's gthread workers serve in a thread.
    sklearn = pytest.importorskip("sklearn")
    seen = []

    def serve() -> None:
        seen.append(sklearn.get_config()["assume_finite"])
        assert post(client, csv_body(rows, names)).status_code == 200
        seen.append(sklearn.get_config()["assume_finite"])

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    assert seen == [False, True]


def test_a_big_cell_is_quoted_in_at_most_120_characters_of_an_error_line():
    from {{ cookiecutter.package_name }}.serving.codecs import quote

    cell = [{f"{k}{'k' * 40}": "v" * 50 for k in range(4)} for _ in range(4)]  # reprlib alone: 1,352
    assert len(quote(cell)) == 120 and quote(cell).endswith("...") and quote(cell).startswith("[{'0kkk")
    assert quote([1, "a"]) == "[1, 'a']"  # short values as they are
