"""The service layer (inference.py, serving/handlers.py): which functions serve, how they are called,
and how their errors answer; and the defaults written as comments in inference.py are the defaults.

Modules written in these tests stand in for inference.py (``create_app(inference=...)``), so they
hold whatever the project's own inference.py defines.
"""

from __future__ import annotations

import json
import logging

import pytest
from inference_modules import INFERENCE, commented_defaults, module_from
from serving_bodies import DEFAULTS, csv_body, json_rows, jsonl_body

from {{ cookiecutter.package_name }}.serving import codecs
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.handlers import Handlers, user_traceback


@pytest.fixture(scope="module")
def predictor(served):
    return served[0]


@pytest.fixture(scope="module")
def rows(served):
    return served[1].take(slice(0, 6))


def client_of(predictor, source: str):
    return create_app(predictor=predictor, inference=module_from(source)).test_client()


def post(client, body, content_type="text/csv", accept=None):
    headers = {"Accept": accept} if accept else {}
    return client.post("/invocations", data=body, content_type=content_type, headers=headers)


def requests_of(rows, names) -> list[tuple[bytes, str, str | None]]:
    """Valid and invalid requests of every type the defaults read, with and without Accept."""
    csv_text = csv_body(rows, names).encode()
    as_json = json.dumps({"instances": json_rows(rows, names)}).encode()
    lines = jsonl_body(rows, names)
    return [
        (csv_text, codecs.CSV, None),
        (csv_text, codecs.CSV, codecs.JSON),
        (as_json, codecs.JSON, None),
        (as_json, codecs.JSON, codecs.CSV),
        (lines, codecs.JSONLINES, None),
        (lines, codecs.JSONLINES, "application/json;q=0.5, application/jsonlines"),
        (jsonl_body(rows, names, by_name=False), codecs.JSONLINES, codecs.CSV),
        (b"1,2\n", codecs.CSV, None),
        (b'{"instances": 3}', codecs.JSON, None),
        (b"[1,\n", codecs.JSONLINES, None),
        (csv_text, "text/plain", None),
        (csv_text, codecs.CSV, "image/png"),
    ]


def answers(client, requests) -> list[tuple[int, str, bytes]]:
    out = []
    for body, content_type, accept in requests:
        reply = post(client, body, content_type, accept)
        out.append((reply.status_code, reply.headers["Content-Type"], reply.get_data()))
    return out


def test_the_commented_defaults_in_inference_py_answer_exactly_as_the_defaults(predictor, rows):
    source = commented_defaults(INFERENCE.read_text())
    if source is None:
        pytest.skip("inference.py holds code of its own between the fences (the commented defaults are gone)")
    module = module_from(source)
    assert Handlers.of(module).defined == ("input_fn", "predict_fn", "output_fn")
    requests = requests_of(rows, predictor.feature_names)
    written_out = answers(create_app(predictor=predictor, inference=module).test_client(), requests)
    assert written_out == answers(create_app(predictor=predictor, inference=DEFAULTS).test_client(), requests)
    assert [status for status, _, _ in written_out] == [200] * 7 + [400, 400, 400, 415, 406]


def test_the_project_inference_py_loads_and_is_what_the_app_serves(predictor):
    handlers = Handlers.project()
    service = create_app(predictor=predictor).extensions["serving"]
    assert service.handlers == handlers
    assert set(handlers.defined) <= {"input_fn", "predict_fn", "output_fn"}


def test_only_the_functions_defined_replace_the_defaults_and_context_is_optional(predictor, rows):
    names = predictor.feature_names
    client = client_of(
        predictor,
        """
        from .serving import codecs

        def output_fn(prediction, accept):
            return codecs.encode_records([{"n": len(prediction.labels if prediction.labels is not None else prediction.values)}], accept)
        """,
    )
    reply = post(client, csv_body(rows, names), accept="application/json")
    assert (reply.status_code, reply.json) == (200, {"predictions": [{"n": rows.n_rows}]})
    with_context = client_of(
        predictor,
        """
        def predict_fn(data, model, context):
            assert context.model is model and context.schema.names == tuple(model.feature_names)
            return model.predict(data[:1])
        """,
    )
    reply = post(with_context, csv_body(rows, names), accept="application/json")
    assert reply.status_code == 200 and len(reply.json["predictions"]) == 1  # default input_fn and output_fn


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def model_fn(model_dir):\n    return None\n", "inference.py defines model_fn: not supported here"),
        ("def transform_fn(model, body, ct, accept):\n    return b''\n", "inference.py defines transform_fn"),
        (
            "def input_fn(body):\n    return body\n",
            "input_fn (line 1) takes 1 parameters; SageMaker's input_fn takes two",
        ),
        ("output_fn = 3\n", "inference.py: output_fn is a int, not a function"),
    ],
)
def test_what_inference_py_may_not_define_stops_the_app_at_start(predictor, source, message):
    with pytest.raises(TypeError) as refused:
        create_app(predictor=predictor, inference=module_from(source))
    assert message in str(refused.value)


INPUT_RAISES = """
from .serving import codecs

def input_fn(request_body, content_type, context):
    records = codecs.load_records(request_body, content_type)
    if len(records) > 2:
        raise {error}
    return codecs.decode_records(records, context.schema)
"""


def test_a_value_error_in_input_fn_is_a_400_with_its_message(predictor, rows):
    client = client_of(predictor, INPUT_RAISES.format(error='ValueError("at most 2 records, please")'))
    reply = post(client, csv_body(rows, predictor.feature_names))
    assert (reply.status_code, reply.json) == (400, {"error": "at most 2 records, please", "code": 400})
    assert post(client, csv_body(rows.take(slice(0, 2)), predictor.feature_names)).status_code == 200


def test_a_key_error_in_input_fn_is_a_500_whose_log_names_the_function_and_line(predictor, rows, caplog):
    client = client_of(predictor, INPUT_RAISES.format(error='KeyError("listing_id")'))
    with caplog.at_level(logging.ERROR):
        reply = post(client, csv_body(rows, predictor.feature_names))
    assert (reply.status_code, reply.json) == (
        500,
        {"error": "internal error in input_fn: KeyError", "code": 500},
    )
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    lines = record.getMessage().splitlines()
    assert (
        lines[0] == "inference.py: input_fn failed at line 7 (<inference_under_test>): KeyError: 'listing_id'"
    )
    assert lines[1:] == [
        "Traceback of your code (most recent call last):",
        '  File "<inference_under_test>", line 7, in input_fn',
        '    raise KeyError("listing_id")',
        "KeyError: 'listing_id'",
    ]  # the user's frame only: no app, Flask or werkzeug frame
    assert record.exc_info is None
    # The block is what the offline run finds in an endpoint's log, among other lines.
    log = f"serve: waitress on 127.0.0.1\n{record.getMessage()}\nINFO another line\n"
    assert user_traceback(log) == record.getMessage()
    assert user_traceback("nothing failed here\n") == ""


def test_errors_in_output_fn_and_predict_fn(predictor, rows, caplog):
    names = predictor.feature_names
    body = csv_body(rows, names)
    bad_accept = client_of(
        predictor,
        """
        def output_fn(prediction, accept):
            raise ValueError(f"this endpoint answers JSON only, not {accept}")
        """,
    )
    reply = post(bad_accept, body, accept="text/csv")  # errors follow Accept: a text line for CSV
    assert (reply.status_code, reply.get_data(as_text=True)) == (
        400,
        "error 400: this endpoint answers JSON only, not text/csv\n",
    )
    failing_model = client_of(
        predictor, "def predict_fn(data, model):\n    raise ValueError('model broke')\n"
    )
    with caplog.at_level(logging.ERROR):
        reply = post(failing_model, body)
    # The request was accepted: a ValueError from the model call is a bug, not the client's.
    assert (reply.status_code, reply.json["error"]) == (500, "internal error in predict_fn: ValueError")
    assert "inference.py: predict_fn failed at line 2" in caplog.text


@pytest.mark.parametrize(
    ("returned", "status", "content_type", "body"),
    [
        ("'plain text'", 200, "text/csv", b"plain text"),
        ("(b'x,y', 'application/x-custom')", 200, "application/x-custom", b"x,y"),
        ("bytearray(b'raw')", 200, "text/csv", b"raw"),
        (
            "{'not': 'bytes'}",
            500,
            "application/json",
            b'{"error":"internal error in output_fn: TypeError","code":500}',
        ),
        ("(b'x', 'text/plain\\r\\nSet-Cookie: a=b')", 500, "application/json", None),  # no header injection
    ],
)
def test_what_output_fn_returns_becomes_the_body_and_content_type(
    predictor, rows, returned, status, content_type, body
):
    client = client_of(predictor, f"def output_fn(prediction, accept):\n    return {returned}\n")
    reply = post(client, csv_body(rows, predictor.feature_names))
    assert (reply.status_code, reply.mimetype) == (status, content_type)
    if body is not None:
        assert reply.get_data() == body
    assert "Set-Cookie" not in reply.headers


def test_a_custom_input_fn_reads_any_content_type_and_its_own_errors_keep_their_status(predictor, rows):
    client = client_of(
        predictor,
        """
        from .serving import codecs
        from .serving.errors import UnsupportedMediaType

        def input_fn(request_body, content_type, context):
            if content_type == "text/plain":  # rows separated by ';'
                return codecs.decode(request_body.replace(b";", b"\\n"), codecs.CSV, context.schema)
            if content_type == "application/x-npy":
                raise UnsupportedMediaType("send text/plain")
            return codecs.decode(request_body, content_type, context.schema)
        """,
    )
    names = predictor.feature_names
    semicolons = ";".join(csv_body(rows, names).splitlines())
    reply = post(client, semicolons, "text/plain", accept="application/json")
    assert reply.status_code == 200 and len(reply.json["predictions"]) == rows.n_rows
    # No Accept: the request's own type, which the default output_fn cannot write: JSON then.
    assert post(client, semicolons, "text/plain").mimetype == "application/json"
    reply = post(client, b"\x93NUMPY", "application/x-npy")
    assert (reply.status_code, reply.json["error"]) == (415, "send text/plain")


def test_a_custom_output_fn_is_passed_any_type_the_client_names(predictor, rows):
    client = client_of(
        predictor,
        """
        from .serving.errors import NotAcceptable

        def output_fn(prediction, accept):
            if accept != "application/x-protobuf":
                raise NotAcceptable(f"cannot produce {accept}")
            return b"\\x08\\x01"
        """,
    )
    body = csv_body(rows, predictor.feature_names)
    reply = post(client, body, accept="image/*, application/x-protobuf;q=0.5")
    assert (reply.status_code, reply.mimetype, reply.get_data()) == (
        200,
        "application/x-protobuf",
        b"\x08\x01",
    )
    reply = post(client, body, accept="text/html")
    assert (reply.status_code, reply.json["error"]) == (406, "cannot produce text/html")
    default_client = create_app(predictor=predictor, inference=DEFAULTS).test_client()
    assert post(default_client, body, accept="application/x-protobuf").status_code == 406


def test_json_lines_answers_one_line_per_record_in_the_project_service(predictor, rows):
    """Batch Transform (SplitType Line, AssembleWith Line) pairs answer lines with input lines."""
    client = create_app(predictor=predictor).test_client()
    reply = post(client, jsonl_body(rows, predictor.feature_names), codecs.JSONLINES)
    if reply.status_code != 200:
        pytest.skip(f"this project's inference.py does not answer JSON Lines ({reply.status_code})")
    text = reply.get_data(as_text=True)
    assert text.endswith("\n") and len(text.splitlines()) == rows.n_rows
    assert all(isinstance(json.loads(line), dict) for line in text.splitlines())
