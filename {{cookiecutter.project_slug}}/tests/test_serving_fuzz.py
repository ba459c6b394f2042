"""Property-based tests: whatever a client sends to /invocations, the answer is a 4xx with a
message or a correct prediction, never a 5xx.

Hypothesis throws random bytes, broken CSV and JSON, wrong feature counts, huge and odd values,
odd encodings and wrong headers at the app. Valid bodies must predict exactly what the model does.
"""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.model import Model
from {{ cookiecutter.package_name }}.serving.app import create_app

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CONTENT_TYPES = [
    "text/csv",
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
    "text/csv; charset=latin-1",
    "application/json; charset=utf-16",
]
ACCEPTS = [
    None,
    "*/*",
    "text/csv",
    "application/json",
    "text/html",
    "application/*",
    "text/csv;q=0.1, application/json",
]
CHECKED = {"count": 0, "ok": 0, "client_errors": 0}


@pytest.fixture(scope="module")
def model(trained_model) -> Model:
    return trained_model


@pytest.fixture(scope="module")
def client(model):
    return create_app(model=model).test_client()


def check(reply, expect_rows: np.ndarray | None = None, model: Model | None = None) -> None:
    """The invariant: 2xx with a prediction per row, or 4xx with a message; never 5xx."""
    CHECKED["count"] += 1
    assert reply.status_code < 500, reply.get_data(as_text=True)
    if reply.status_code >= 400:
        CHECKED["client_errors"] += 1
        body = reply.get_data(as_text=True)
        assert body.strip(), "a 4xx must say why"
        if reply.mimetype == "application/json":
            error = json.loads(body)
            assert error["code"] == reply.status_code and error["error"]
        return
    CHECKED["ok"] += 1
    assert reply.status_code == 200
    if expect_rows is not None:
        scores = _scores(reply)
        np.testing.assert_allclose(scores, model.predict_proba(expect_rows), rtol=0, atol=1e-12)


def _scores(reply) -> list[float]:
    if reply.mimetype == "text/csv":
        return [float(line.split(",")[1]) for line in reply.get_data(as_text=True).splitlines()]
    return [p["score"] for p in reply.json["predictions"]]


@FUZZ
@given(
    body=st.binary(max_size=4096),
    content_type=st.sampled_from(CONTENT_TYPES),
    accept=st.sampled_from(ACCEPTS),
)
def test_random_bytes(client, body, content_type, accept):
    headers = {"Accept": accept} if accept else {}
    check(client.post("/invocations", data=body, content_type=content_type, headers=headers))


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=8),
    st.sampled_from(["", "nan", "NA", "null", "1e309", "-0", "0x10", " 1 ", "\uff11", "1,5", '"2"']),
)


@FUZZ
@given(
    rows=st.lists(st.lists(cells, min_size=0, max_size=34), min_size=0, max_size=5),
    accept=st.sampled_from(ACCEPTS),
)
def test_broken_csv(client, rows, accept):
    body = "\n".join(",".join(row) for row in rows)
    headers = {"Accept": accept} if accept else {}
    check(client.post("/invocations", data=body.encode(), content_type="text/csv", headers=headers))


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=40,
)


@FUZZ
@given(payload=json_values, wrap=st.booleans(), accept=st.sampled_from(ACCEPTS))
def test_broken_json(client, payload, wrap, accept):
    body = json.dumps({"instances": payload} if wrap else payload).encode()  # stdlib: big ints too
    headers = {"Accept": accept} if accept else {}
    check(client.post("/invocations", data=body, content_type="application/json", headers=headers))


@FUZZ
@given(
    n_rows=st.integers(min_value=1, max_value=50),
    scale=st.sampled_from([1.0, 1e-300, 1e300, -1e12]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
    data=st.data(),
)
def test_valid_rows_predict_exactly(client, model, n_rows, scale, encoding, data):
    values = data.draw(
        st.lists(
            st.lists(
                st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
                min_size=model.n_features,
                max_size=model.n_features,
            ),
            min_size=n_rows,
            max_size=n_rows,
        )
    )
    X = np.asarray(values) * scale
    csv_body = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X).encode(encoding)
    reply = client.post("/invocations", data=csv_body, content_type="text/csv")
    if encoding == "utf-8-sig":  # a byte-order mark is not a number: a clear 400, not a guess
        check(reply)
        return
    check(reply, X, model)
    check(
        client.post(
            "/invocations", data=orjson.dumps({"instances": X.tolist()}), content_type="application/json"
        ),
        X,
        model,
    )


def test_huge_row_and_wide_payloads_are_refused_cleanly(client, model):
    wide = ",".join(["1.0"] * 100_000)
    reply = client.post("/invocations", data=wide, content_type="text/csv")
    assert (
        reply.status_code == 400
        and f"expected {model.n_features} features, got 100000" in reply.json["error"]
    )
    over = b"1.0," * (2 * 1024 * 1024)
    assert client.post("/invocations", data=over, content_type="text/csv").status_code == 413


def test_fuzz_counts(client):
    # Runs last in this module: prints how many bodies were thrown and how they were answered.
    print(
        f"\nfuzz: {CHECKED['count']} requests, {CHECKED['ok']} predictions, {CHECKED['client_errors']} 4xx, 0 5xx"
    )
    assert CHECKED["count"] >= 1000
