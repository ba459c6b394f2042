"""Request bodies to a float matrix, predictions to response bodies; numpy and orjson, no DataFrame.

CSV: no header, one row per line, features in metadata.json order. JSON: ``{"instances": [[...]]}``,
``{"instances": [{"feature": value}]}`` or a bare list of lists. Missing values (empty cell, nan,
na, null, none; JSON null) become NaN and are imputed by the model as in training; infinite values
are refused as in training. The common case is parsed in one numpy call; only a failing body is
walked cell by cell to name the row and column at fault.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from ..data import MISSING
from .errors import BadRequest

CSV = "text/csv"
JSON = "application/json"
CONTENT_TYPES = (CSV, JSON)
JSON_SHAPES = (
    'a JSON body {"instances": [[...], ...]}, {"instances": [{"feature": value}, ...]} or a list of lists'
)


def _cell(value: Any, row: int, column: int, names: Sequence[str]) -> float:
    """One cell as a float, or a BadRequest naming its row (1-based) and feature."""
    if value is None or (isinstance(value, str) and value.strip().lower() in MISSING):
        return math.nan
    if not isinstance(value, int | float | str):  # bool is an int: true/false read as 1/0
        raise BadRequest(f"row {row}, column {column + 1} ({names[column]!r}): {value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(
            f"row {row}, column {column + 1} ({names[column]!r}): {value!r} is not a number"
        ) from None
    if math.isinf(number):
        raise BadRequest(
            f"row {row}, column {column + 1} ({names[column]!r}): infinite values are not allowed"
        )
    return number


def _matrix(rows: list[Sequence[Any]], names: Sequence[str]) -> np.ndarray:
    """Rows of cells (strings or numbers) to a float matrix; the fast path is a single numpy call."""
    if not rows:
        raise BadRequest("the request has no rows")
    expected = len(names)
    for i, row in enumerate(rows, start=1):
        if len(row) != expected:
            raise BadRequest(f"row {i}: expected {expected} features, got {len(row)}")
    try:
        X = np.array(rows, dtype=np.float64)
        if not np.isfinite(X).all():
            raise ValueError  # NaN is fine but goes through the slow path to vet every cell
    except (ValueError, TypeError):
        X = np.array(
            [[_cell(v, i, j, names) for j, v in enumerate(row)] for i, row in enumerate(rows, start=1)]
        )
    return X.reshape(len(rows), expected)


def decode_csv(body: bytes, names: Sequence[str]) -> np.ndarray:
    text = _text(body)
    if '"' in text:  # quoted cells are rare in inference payloads; let the csv module handle them
        try:
            rows: list[Sequence[Any]] = [r for r in csv.reader(io.StringIO(text)) if r]
        except csv.Error as error:  # e.g. a stray carriage return inside a quoted cell
            raise BadRequest(f"malformed CSV: {error}") from None
    else:
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
    return _matrix(rows, names)


def decode_json(body: bytes, names: Sequence[str]) -> np.ndarray:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"malformed JSON: {error}") from None
    instances = payload.get("instances") if isinstance(payload, dict) else payload
    if not isinstance(instances, list):
        raise BadRequest(f"expected {JSON_SHAPES}")
    if instances and all(isinstance(r, dict) for r in instances):
        return _matrix([_by_name(r, i, names) for i, r in enumerate(instances, start=1)], names)
    for i, row in enumerate(instances, start=1):
        if not isinstance(row, list):
            raise BadRequest(
                f"row {i}: expected a list of {len(names)} values or an object of feature: value"
            )
    return _matrix(instances, names)


def _by_name(row: dict[str, Any], i: int, names: Sequence[str]) -> list[Any]:
    unknown = sorted(set(row) - set(names))
    missing = [n for n in names if n not in row]
    if unknown or missing:
        parts = [
            f"unknown feature(s) {', '.join(unknown)}" if unknown else "",
            f"missing feature(s) {', '.join(missing[:5])}" if missing else "",
        ]
        raise BadRequest(
            f"row {i}: expected {len(names)} features, got {len(row)}: {'; '.join(p for p in parts if p)}"
        )
    return [row[n] for n in names]


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"the body is not UTF-8 text ({error.reason} at byte {error.start})") from None


def decode(body: bytes, content_type: str, names: Sequence[str]) -> np.ndarray:
    if not body.strip():
        raise BadRequest("empty request body")
    return decode_csv(body, names) if content_type == CSV else decode_json(body, names)


def encode(labels: np.ndarray, scores: np.ndarray, accept: str) -> bytes:
    if accept == CSV:
        return "".join(
            f"{label},{score!r}\n" for label, score in zip(labels.tolist(), scores.tolist(), strict=True)
        ).encode()
    predictions = [
        {"label": label, "score": score}
        for label, score in zip(labels.tolist(), scores.tolist(), strict=True)
    ]
    return orjson.dumps({"predictions": predictions})


def encode_error(message: str, status: int, accept: str) -> bytes:
    if accept == CSV:
        return f"error {status}: {message}\n".encode()
    return orjson.dumps({"error": message, "code": status})
