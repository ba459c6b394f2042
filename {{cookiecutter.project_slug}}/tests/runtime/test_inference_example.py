"""The README's inference.py example, loaded from README.md and served in process: each thing it shows
(ids echoed back, one record without a wrapper, a decision from settings, the top classes, JSON
Lines) does what the README says, for this bake's problem type, and no request makes it answer 5xx.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inference_modules import module_from, readme_example
from serving_bodies import expected, json_rows

from {{ cookiecutter.package_name }} import settings as project
from {{ cookiecutter.package_name }}.serving import codecs
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE

ID = "listing_id"


@pytest.fixture(scope="module")
def example():
    return module_from(readme_example(), "readme_example")


@pytest.fixture(scope="module")
def predictor(served):
    return served[0]


@pytest.fixture(scope="module")
def rows(served):
    return served[1].take(slice(0, 8))


@pytest.fixture(scope="module")
def client(predictor, example):
    return create_app(predictor=predictor, inference=example).test_client()


def post(client, body, content_type, accept=None):
    headers = {"Accept": accept} if accept else {}
    return client.post("/invocations", data=body, content_type=content_type, headers=headers)


def records_with_ids(rows, names) -> list[dict]:
    return [{ID: f"L-{i}", **dict(zip(names, r, strict=True))} for i, r in enumerate(json_rows(rows, names))]


def decision_number(record: dict) -> float:
    if PROBLEM_TYPE in ("binary", "ranking"):
        return record["score"]
    if PROBLEM_TYPE == "regression":
        return record["value"]
    return record["top"][0]["probability"]


def want_records(predictor, rows) -> list[dict]:
    """What the README says each answer holds, from the library's own predictions."""
    want = expected(predictor, rows)
    out = []
    for i in range(rows.n_rows):
        if PROBLEM_TYPE == "binary":
            record = {"label": want.labels[i], "score": float(want.scores[i])}
        elif PROBLEM_TYPE == "regression":
            record = {"value": float(want.values[i])}
        elif PROBLEM_TYPE == "ranking":  # the rows' own scores: these requests carry no query column
            record = {"score": float(want.values[i])}
        else:
            row = want.probabilities[i].tolist()
            top = sorted(range(len(row)), key=row.__getitem__, reverse=True)[:3]
            record = {
                "label": want.labels[i],
                "top": [{"label": predictor.classes[j], "probability": row[j]} for j in top],
            }
        record["decision"] = "approve" if decision_number(record) >= project.DECISION_THRESHOLD else "review"
        out.append(record)
    return out


def test_ids_are_echoed_first_in_each_answer_and_never_read_as_features(client, predictor, rows):
    names = predictor.feature_names
    reply = post(client, json.dumps({"instances": records_with_ids(rows, names)}), codecs.JSON)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    got = reply.json["predictions"]
    assert [next(iter(r)) for r in got] == [ID] * rows.n_rows
    assert [r.pop(ID) for r in got] == [f"L-{i}" for i in range(rows.n_rows)]
    assert got == want_records(predictor, rows)  # the same answer as without the id field
    default = create_app(predictor=predictor, inference=None).test_client()
    if not default.application.extensions["serving"].handlers.custom:  # the shipped defaults refuse it
        refused = post(default, json.dumps({"instances": records_with_ids(rows, names)}), codecs.JSON)
        assert refused.status_code == 400 and f"unknown feature(s) '{ID}'" in refused.json["error"]


def test_a_decision_field_follows_the_threshold_in_settings(client, predictor, rows, monkeypatch):
    body = json.dumps(json_rows(rows, predictor.feature_names))
    answers = post(client, body, codecs.JSON).json["predictions"]
    numbers = [decision_number(r) for r in answers]
    assert [r["decision"] for r in answers] == [
        "approve" if n >= project.DECISION_THRESHOLD else "review" for n in numbers
    ]
    monkeypatch.setattr(project, "DECISION_THRESHOLD", sorted(numbers)[len(numbers) // 2])
    split = [r["decision"] for r in post(client, body, codecs.JSON).json["predictions"]]
    assert "approve" in split and "review" in split  # read per request: a retune needs no restart


@pytest.mark.skipif(PROBLEM_TYPE != "multiclass", reason="the top classes are the multiclass answer")
def test_the_top_classes_come_most_probable_first(client, predictor, rows):
    answers = post(client, json.dumps(json_rows(rows, predictor.feature_names)), codecs.JSON).json[
        "predictions"
    ]
    for answer in answers:
        probabilities = [c["probability"] for c in answer["top"]]
        assert len(answer["top"]) == min(3, len(predictor.classes))
        assert probabilities == sorted(probabilities, reverse=True)
        assert answer["top"][0]["label"] == answer["label"]


def test_one_record_without_the_instances_wrapper(client, predictor, rows):
    one = records_with_ids(rows.take(slice(0, 1)), predictor.feature_names)[0]
    reply = post(client, json.dumps(one), codecs.JSON)
    assert reply.status_code == 200
    assert reply.json["predictions"] == [{ID: "L-0", **want_records(predictor, rows.take(slice(0, 1)))[0]}]


def test_json_lines_in_and_out_with_ids(client, predictor, rows):
    lines = "".join(json.dumps(r) + "\n" for r in records_with_ids(rows, predictor.feature_names))
    reply = post(client, lines, codecs.JSONLINES)
    assert reply.status_code == 200 and reply.mimetype == codecs.JSONLINES
    got = [json.loads(line) for line in reply.get_data(as_text=True).splitlines()]
    want = want_records(predictor, rows)
    assert got == [{ID: f"L-{i}", **record} for i, record in enumerate(want)]


def test_csv_json_and_json_lines_answer_the_same_fields(client, predictor, rows):
    body = json.dumps(json_rows(rows, predictor.feature_names))
    as_json = post(client, body, codecs.JSON).json["predictions"]
    lines = post(client, body, codecs.JSON, accept=codecs.JSONLINES).get_data(as_text=True).splitlines()
    assert [json.loads(line) for line in lines] == as_json
    text = post(client, body, codecs.JSON, accept=codecs.CSV).get_data(as_text=True)
    fields = [[_value(cell) for cell in line] for line in csv.reader(io.StringIO(text))]
    assert fields == [[_value(v) for v in _flat(record)] for record in as_json]  # one line per record


def _flat(value) -> list:
    if isinstance(value, dict):
        return [v for item in value.values() for v in _flat(item)]
    if isinstance(value, list):
        return [v for item in value for v in _flat(item)]
    return [value]


def _value(value) -> float | str:
    """A CSV field or a JSON value, numbers as floats (the texts of one number may differ)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


example_bodies = st.one_of(
    st.binary(max_size=512),
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
        ),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=example_bodies,
    content_type=st.sampled_from([codecs.CSV, codecs.JSON, codecs.JSONLINES, "text/plain"]),
    accept=st.sampled_from([None, codecs.CSV, codecs.JSON, codecs.JSONLINES, "text/html"]),
)
def test_no_request_makes_the_example_answer_5xx(client, body, content_type, accept):
    reply = post(client, body, content_type, accept)
    assert reply.status_code < 500, reply.get_data(as_text=True)
