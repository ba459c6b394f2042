"""Property-based tests: whatever a client sends to /invocations, the answer is a 4xx with a
message or a correct prediction, never a 5xx from the project's code.

Hypothesis throws random bytes, broken CSV, JSON and JSON Lines, wrong feature counts, full-width
rows whose cells are lists, objects or deeply nested, huge and odd values, odd encodings and wrong
headers at the app. Valid bodies must predict exactly what the model does.

The generic properties run on the default service functions and, when the project's inference.py
defines any, on the project's service too: there a 500 may only come from the user's own function
(``internal error in input_fn: ...``), and valid bodies are checked for exact numbers only where the
default output_fn answers. The properties of the default decoder's messages run on the defaults.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_bodies import DEFAULTS

from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.handlers import Handlers
from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CONTENT_TYPES = [
    "text/csv",
    "application/json",
    "application/jsonlines",
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
    "application/jsonlines",
    "text/html",
    "application/*",
    "text/csv;q=0.1, application/json",
]
CHECKED = {"count": 0, "ok": 0, "client_errors": 0, "user_errors": 0}
PROJECT = Handlers.project()
# The defaults always; the project's service too when its inference.py defines a function.
SERVICES = ["defaults", "project"] if PROJECT.custom else ["defaults"]


@pytest.fixture(scope="module")
def model(served) -> Predictor:
    return served[0]


class Client:
    """Flask's test client whose replies carry the service functions that answered them."""

    def __init__(self, model: Predictor, inference: object | None):
        app = create_app(predictor=model, inference=inference)
        self.handlers = app.extensions["serving"].handlers
        self.test_client = app.test_client()

    def post(self, *args, **kwargs):
        reply = self.test_client.post(*args, **kwargs)
        reply.handlers = self.handlers
        return reply


@pytest.fixture(scope="module", params=SERVICES)
def client(model, request) -> Client:
    return Client(model, DEFAULTS if request.param == "defaults" else None)  # None: the project's


@pytest.fixture(scope="module")
def default_client(model) -> Client:
    return Client(model, DEFAULTS)


def check(reply, expect_rows: np.ndarray | None = None, model: Predictor | None = None) -> None:
    """The invariant: 2xx with a prediction per row, or 4xx with a message; never a 5xx from the
    project's code (a user's function may fail: then the 500 names it)."""
    CHECKED["count"] += 1
    handlers = reply.handlers
    if reply.status_code == 500 and handlers.custom:
        error = json.loads(reply.get_data())["error"] if reply.mimetype == "application/json" else ""
        assert error.startswith(tuple(f"internal error in {n}: " for n in handlers.defined)), reply.get_data()
        CHECKED["user_errors"] += 1
        return
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
    if expect_rows is not None and handlers.output_fn is None and handlers.predict_fn is None:
        assert _numbers(reply) == _numbers_of(model.predict(expect_rows))


def _numbers(reply) -> list[float]:
    """Every number of the answer, row by row (scores, probabilities or values)."""
    if reply.mimetype == "text/csv":
        lines = reply.get_data(as_text=True).splitlines()
        if model_problem(reply) == "multiclass":
            lines = lines[1:]  # the header names the classes
        start = 0 if model_problem(reply) in ("regression", "ranking") else 1  # one number per line
        return [float(v) for line in lines for v in line.split(",")[start:]]
    numbers = []
    records = (
        reply.json["predictions"]
        if reply.mimetype == "application/json"
        else [json.loads(line) for line in reply.get_data(as_text=True).splitlines()]
    )
    for p in records:
        numbers += [p["score"]] if "score" in p else list(p.get("probabilities", {}).values()) or [p["value"]]
    return numbers


def _numbers_of(predictions) -> list[float]:
    if predictions.values is not None:
        return predictions.values.tolist()
    if predictions.scores is not None:
        return predictions.scores.tolist()
    return predictions.probabilities.reshape(-1).tolist()


def model_problem(_reply) -> str:
    return PROBLEM_TYPE


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
    lines=st.lists(st.one_of(json_values.map(json.dumps), st.text(max_size=12)), max_size=6),
    accept=st.sampled_from(ACCEPTS),
)
def test_broken_json_lines(client, lines, accept):
    body = "\n".join(lines).encode()
    headers = {"Accept": accept} if accept else {}
    check(client.post("/invocations", data=body, content_type="application/jsonlines", headers=headers))


def _row_cells(model: Predictor, scale: float) -> st.SearchStrategy[list]:
    """One valid row: floats (scaled) in numeric columns; a training category, an unseen one or
    missing in categorical columns."""
    columns = []
    for name, kind in zip(model.feature_names, model.feature_kinds, strict=True):
        if kind == "numeric":
            columns.append(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False).map(lambda v: v * scale))
        else:
            columns.append(st.sampled_from([*model.categories[name], "never-seen", None]))
    return st.tuples(*columns).map(list)


def _csv_line(row: list) -> str:
    return ",".join("" if v is None else repr(v) if isinstance(v, float) else v for v in row) + "\n"


@FUZZ
@given(
    n_rows=st.integers(min_value=1, max_value=50),
    scale=st.sampled_from([1.0, 1e-300, 1e300, -1e12]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
    data=st.data(),
)
def test_valid_rows_predict_exactly(client, model, n_rows, scale, encoding, data):
    rows = data.draw(st.lists(_row_cells(model, scale), min_size=n_rows, max_size=n_rows))
    X = np.array(rows, dtype=np.float64 if all(k == "numeric" for k in model.feature_kinds) else object)
    csv_body = "".join(_csv_line(row) for row in rows).encode(encoding)
    reply = client.post("/invocations", data=csv_body, content_type="text/csv")
    if encoding == "utf-8-sig":  # a byte-order mark is not a number: a clear 400, not a guess
        check(reply)
        return
    check(reply, X, model)
    check(
        client.post("/invocations", data=orjson.dumps({"instances": rows}), content_type="application/json"),
        X,
        model,
    )
    records = [dict(zip(model.feature_names, row, strict=True)) for row in rows]
    check(
        client.post(
            "/invocations",
            data=b"".join(orjson.dumps(r) + b"\n" for r in records),
            content_type="application/jsonlines",
        ),
        X,
        model,
    )


class Deep:
    """A cell nested ``depth`` lists deep, spliced into the body as text (json.dumps would recurse)."""

    def __init__(self, depth: int):
        self.depth = depth


# Leaves orjson reads (64-bit integers, finite floats), so the 400 must come from the cell itself.
nested = st.recursive(
    st.none()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)
containers = st.one_of(
    st.lists(nested, max_size=4),
    st.dictionaries(st.text(max_size=4), nested, max_size=3),
    st.integers(min_value=2, max_value=1200).map(Deep),
)


def _json_body(rows: list[list], by_name: list[str] | None) -> bytes:
    deep: dict[str, int] = {}

    def mark(cell):
        if isinstance(cell, Deep):
            key = f"__deep_{len(deep)}__"
            deep[key] = cell.depth
            return key
        return cell

    marked = [[mark(c) for c in row] for row in rows]
    payload = [dict(zip(by_name, row, strict=True)) for row in marked] if by_name else marked
    text = json.dumps({"instances": payload})
    for key, depth in deep.items():
        text = text.replace(f'"{key}"', "[" * depth + "1" + "]" * depth)
    return text.encode()


@FUZZ
@given(data=st.data(), n_rows=st.integers(min_value=1, max_value=3), by_name=st.booleans())
def test_full_width_rows_with_nested_cells_are_a_400_naming_the_cell(
    default_client, model, data, n_rows, by_name
):
    """Rows of the right width whose cells are lists, objects or nested up to 1,200 deep."""
    width = len(model.feature_names)
    rows = data.draw(st.lists(_row_cells(model, 1.0), min_size=n_rows, max_size=n_rows))
    spots = data.draw(
        st.lists(st.tuples(st.integers(0, n_rows - 1), st.integers(0, width - 1)), min_size=1, unique=True)
    )
    for i, j in spots:
        rows[i][j] = data.draw(containers)
    names = model.feature_names if by_name else None
    reply = default_client.post("/invocations", data=_json_body(rows, names), content_type="application/json")
    check(reply)
    assert reply.status_code == 400
    message = reply.json["error"]
    if any(isinstance(rows[i][j], Deep) and rows[i][j].depth > 1021 for i, j in spots):
        assert message.startswith("malformed JSON: depth limit exceeded")  # orjson's own limit
        return
    i, j = min(spots)  # cells are vetted row by row, left to right
    assert message.startswith(f"row {i + 1}, column {j + 1} ({model.feature_names[j]!r}): ")
    assert len(message) < 300  # the cell is quoted shortly, however big or deep


@FUZZ
@given(data=st.data(), n_rows=st.integers(min_value=1, max_value=3))
def test_csv_cells_holding_json_text_are_numbers_or_categories(default_client, model, data, n_rows):
    """In CSV a list is just text: a 400 naming the cell in a numeric column, a category otherwise."""
    rows = data.draw(st.lists(_row_cells(model, 1.0), min_size=n_rows, max_size=n_rows))
    spots = data.draw(
        st.lists(
            st.tuples(st.integers(0, n_rows - 1), st.integers(0, len(model.feature_names) - 1)),
            min_size=1,
            unique=True,
        )
    )
    for i, j in spots:
        cell = data.draw(containers)
        rows[i][j] = "[" * cell.depth + "]" * cell.depth if isinstance(cell, Deep) else json.dumps(cell)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(["" if v is None else v for v in row] for row in rows)
    reply = default_client.post("/invocations", data=out.getvalue().encode(), content_type="text/csv")
    check(reply)
    numeric = sorted((i, j) for i, j in spots if model.feature_kinds[j] == "numeric")
    text_numbers = [(i, j) for i, j in numeric if _is_number(rows[i][j])]  # e.g. "1" from json.dumps(1)
    bad = [spot for spot in numeric if spot not in text_numbers]
    if bad:
        i, j = bad[0]
        assert reply.status_code == 400
        assert reply.json["error"].startswith(f"row {i + 1}, column {j + 1} ({model.feature_names[j]!r}): ")
    else:
        assert reply.status_code == 200


def _is_number(text: str) -> bool:
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False


def test_huge_row_and_wide_payloads_are_refused_cleanly(default_client, model):
    wide = ",".join(["1.0"] * 100_000)
    reply = default_client.post("/invocations", data=wide, content_type="text/csv")
    width = len(model.feature_names)
    assert reply.status_code == 400 and f"expected {width} features, got 100000" in reply.json["error"]
    over = b"1.0," * (2 * 1024 * 1024)
    assert default_client.post("/invocations", data=over, content_type="text/csv").status_code == 413


def test_fuzz_counts():
    # Runs last in this module: prints how many bodies were thrown and how they were answered.
    print(
        f"\nfuzz: {CHECKED['count']} requests, {CHECKED['ok']} predictions, {CHECKED['client_errors']} 4xx, "
        f"{CHECKED['user_errors']} 500s from inference.py's own functions, no other 5xx"
    )
    assert CHECKED["count"] >= 1000
