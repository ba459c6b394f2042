"""The CSV answer's numbers (codecs.Encoder): orjson's text, so the same text as the JSON answer, and
every number reads back as exactly the float predicted; NaN and infinity keep repr's text (issue 13)."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.predictor import Predictions
from {{ cookiecutter.package_name }}.serving import codecs

CSV, JSON = codecs.CSV, codecs.JSON
# Labels that need quoting in CSV, and a number label (its CSV field is its text).
CLASSES = ["plain", 'say "hi"', "a,b", 7]
floats = st.floats(allow_nan=True, allow_infinity=True)
rows = st.integers(min_value=1, max_value=40)


def read_back(text: str) -> list[float]:
    return [float(cell) for cell in text.replace(",", "\n").split("\n") if cell]


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(floats, min_size=1, max_size=40))
def test_regression_values_read_back_exactly(values):
    encoder = codecs.Encoder("regression", [])
    answer = encoder.encode(Predictions(values=np.array(values)), CSV).decode()
    assert same(read_back(answer), values)
    if all(math.isfinite(v) for v in values):  # the JSON answer writes the very same text
        as_json = encoder.encode(Predictions(values=np.array(values)), JSON)
        assert (
            as_json
            == b'{"predictions":[' + b",".join(b'{"value":%b}' % orjson.dumps(v) for v in values) + b"]}"
        )
        assert answer.splitlines() == [orjson.dumps(v).decode() for v in values]
    else:
        assert answer.splitlines() == [repr(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(rows.flatmap(lambda n: st.tuples(st.lists(st.sampled_from(CLASSES[:2]), min_size=n, max_size=n),
                                        st.lists(floats, min_size=n, max_size=n))))  # fmt: skip
def test_binary_lines_are_label_and_score(case):
    labels, scores = case
    encoder = codecs.Encoder("binary", CLASSES[:2])
    predictions = Predictions(labels=np.array(labels, dtype=object), scores=np.array(scores))
    lines = list(csv.reader(io.StringIO(encoder.encode(predictions, CSV).decode())))
    assert [line[0] for line in lines] == labels
    assert same([float(line[1]) for line in lines], scores)
    writer = (lambda s: orjson.dumps(s).decode()) if all(map(math.isfinite, scores)) else repr
    assert [line[1] for line in lines] == [writer(s) for s in scores]


@settings(max_examples=200, deadline=None)
@given(rows.flatmap(lambda n: st.tuples(st.lists(st.sampled_from(CLASSES), min_size=n, max_size=n),
                                        st.lists(st.lists(floats, min_size=4, max_size=4), min_size=n, max_size=n))))  # fmt: skip
def test_multiclass_rows_keep_the_header_labels_and_probabilities(case):
    labels, probabilities = case
    encoder = codecs.Encoder("multiclass", CLASSES)
    predictions = Predictions(labels=np.array(labels, dtype=object), probabilities=np.array(probabilities))
    header, *body = list(csv.reader(io.StringIO(encoder.encode(predictions, CSV).decode())))
    assert header == ["label", *map(str, CLASSES)]
    assert [line[0] for line in body] == [str(label) for label in labels]
    assert all(same([float(v) for v in line[1:]], row) for line, row in zip(body, probabilities, strict=True))


def test_small_scores_are_written_as_orjson_writes_them():
    # The cases where orjson's text is not repr's; both read back as the same float.
    encoder = codecs.Encoder("regression", [])
    answer = encoder.encode(Predictions(values=np.array([3e-05, 1.5e-09, 0.5, 1e16])), CSV)
    assert answer == b"0.00003\n1.5e-9\n0.5\n1e+16\n"
