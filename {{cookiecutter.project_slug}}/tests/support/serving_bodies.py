"""Request bodies from a data Table and parsers of the answers, shared by the serving tests.

Bodies carry each cell as a client would send it: CSV text as training CSVs spell it (empty =
missing), JSON and JSON Lines with numbers as numbers, categories as strings and null for missing.
The parsers read the default answers (what ``codecs.Encoder`` writes); ``DEFAULTS`` is an
inference module that defines nothing, for the tests of the default service functions.
"""

from __future__ import annotations

import csv
import io
import json
import math
import types
from typing import Any

import numpy as np

from {{ cookiecutter.package_name }}.data import Table
from {{ cookiecutter.package_name }}.predictor import Predictions, Predictor

# An inference.py that defines no function: every request goes through the defaults.
DEFAULTS = types.SimpleNamespace()


def json_cell(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return None if value == "" else value


def json_rows(table: Table, names: list[str]) -> list[list[Any]]:
    return [[json_cell(table.data[n][i]) for n in names] for i in range(table.n_rows)]


def jsonl_body(table: Table, names: list[str], by_name: bool = True) -> bytes:
    """One JSON record per line: objects of feature: value, or lists in feature order."""
    rows = json_rows(table, names)
    records = [dict(zip(names, row, strict=True)) for row in rows] if by_name else rows
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def csv_body(table: Table, names: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in json_rows(table, names):
        writer.writerow("" if v is None else repr(v) if isinstance(v, float) else v for v in row)
    return out.getvalue()


def expected(predictor: Predictor, table: Table) -> Predictions:
    """The library's own predictions for the rows, through the Predictor as training uses it."""
    return predictor.predict(predictor.features(table))


def parse_csv(text: str, problem_type: str) -> dict[str, Any]:
    rows = list(csv.reader(io.StringIO(text)))
    if problem_type in ("regression", "ranking"):  # ranking: one score per line
        return {"values": [float(r[0]) for r in rows]}
    if problem_type == "binary":
        return {"labels": [r[0] for r in rows], "scores": [float(r[1]) for r in rows]}
    header, body = rows[0], rows[1:]
    return {
        "header": header,
        "labels": [r[0] for r in body],
        "probabilities": [[float(v) for v in r[1:]] for r in body],
    }


def parse_json(text: str, problem_type: str, classes: list[Any]) -> dict[str, Any]:
    return parse_records(json.loads(text)["predictions"], problem_type, classes)


def parse_jsonl(text: str, problem_type: str, classes: list[Any]) -> dict[str, Any]:
    assert text.endswith("\n"), "every JSON Lines record ends with a line break"
    return parse_records([json.loads(line) for line in text.splitlines()], problem_type, classes)


def parse_records(predictions: list[dict[str, Any]], problem_type: str, classes: list[Any]) -> dict[str, Any]:
    """The default answer's records (exactly the default fields) as labels and numbers."""
    if problem_type == "regression":
        assert all(set(p) == {"value"} for p in predictions)
        return {"values": [p["value"] for p in predictions]}
    if problem_type == "ranking":  # "rank" too when the records carried the group column
        assert all(set(p) in ({"score"}, {"score", "rank"}) for p in predictions)
        return {"values": [p["score"] for p in predictions]}
    if problem_type == "binary":
        assert all(set(p) == {"label", "score"} for p in predictions)
        return {"labels": [p["label"] for p in predictions], "scores": [p["score"] for p in predictions]}
    keys = [str(c) for c in classes]
    assert all(set(p) == {"label", "probabilities"} and list(p["probabilities"]) == keys for p in predictions)
    return {
        "labels": [p["label"] for p in predictions],
        "probabilities": [[p["probabilities"][k] for k in keys] for p in predictions],
    }


def assert_exact(
    answer: dict[str, Any], want: Predictions, problem_type: str, classes: list[Any], csv_: bool
):
    """Exactly the library's numbers (floats round-trip) and labels (CSV labels are text)."""
    if problem_type in ("regression", "ranking"):
        assert answer["values"] == want.values.tolist()
        return
    labels = want.labels.tolist()
    assert answer["labels"] == ([str(v) for v in labels] if csv_ else labels)
    if problem_type == "binary":
        assert answer["scores"] == want.scores.tolist()
    else:
        assert answer["probabilities"] == want.probabilities.tolist()
        if csv_:
            assert answer["header"] == ["label", *(str(c) for c in classes)]
