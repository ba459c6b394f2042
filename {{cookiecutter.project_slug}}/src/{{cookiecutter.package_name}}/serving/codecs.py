"""Request bodies to the model input, predictions to response bodies; numpy and orjson, no DataFrame.

CSV: no header, one row per line, features in metadata.json order. JSON: ``{"instances": [[...]]}``,
``{"instances": [{"feature": value}]}`` or a bare list of lists. JSON Lines (``application/jsonlines``,
what SageMaker Batch Transform streams with SplitType Line): one record per line, a list of values
or an object of feature: value. Missing values (empty cell, nan,
na, null, none; JSON null) become NaN in numeric columns and None in categorical ones, as in
training. Numeric cells are floats (infinities refused, as in training); categorical cells are
strings (a JSON number is taken as its text). The model input is the ``Predictor`` contract: a
float64 matrix when every feature is numeric, else an object matrix of floats and strings.

Every shape a client can send either decodes or raises ``BadRequest`` naming the row and column:
nested lists or objects in a cell, rows of the wrong width, 1,000-deep nesting (messages quote a
cell through a depth- and length-bounded repr, so nothing recurses on client data). The all-numeric
common case is parsed in one orjson or numpy call; only a failing body is walked cell by cell.

The service layer (``inference.py``) builds on the same pieces: ``load_records`` and
``decode_records`` (a body to records, records to the model input), ``Encoder.records`` (the
default answer as one dict per row) and ``encode_records`` (records to a body, in any type here).
"""

from __future__ import annotations

import csv
import io
import math
import reprlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from ..data import MISSING
from ..predictor import label_key
from .errors import BadRequest, NotAcceptable, UnsupportedMediaType

CSV = "text/csv"
JSON = "application/json"
# SageMaker's name for JSON Lines (Batch Transform, the built-in algorithms).
# https://docs.aws.amazon.com/sagemaker/latest/dg/cdf-inference.html
JSONLINES = "application/jsonlines"
CONTENT_TYPES = (CSV, JSON, JSONLINES)
JSON_SHAPES = (
    'a JSON body {"instances": [[...], ...]}, {"instances": [{"feature": value}, ...]} or a list of lists'
)
NUMERIC = "numeric"
CATEGORICAL = "categorical"
TEXT = "text"  # free text: a string, like a category, turned into TF-IDF by the Predictor

# Bounded quoting of client cells in error messages: depth 2, 40 characters (a 1,000-deep list or
# a megabyte string must not become a RecursionError or a megabyte error line).
_QUOTE = reprlib.Repr()  # Python 3.11's Repr takes no keyword arguments
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlist, _QUOTE.maxdict = 2, 40, 40, 4, 4


_QUOTED_LENGTH = 120


def quote(value: Any) -> str:
    """A client value for an error line: reprlib bounds each part, this the whole (four dicts of
    four 40-character entries still made a 300-character line: tests/runtime/test_serving_fuzz.py)."""
    text = _QUOTE.repr(value)
    return text if len(text) <= _QUOTED_LENGTH else text[: _QUOTED_LENGTH - 3] + "..."


@dataclass(frozen=True)
class Schema:
    """The model's input columns, with everything the per-request path needs computed once."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    # The model's id, timestamp, group and weight columns (column_roles.py): a record may carry
    # them (an id to echo back, say); they are not features, so the model never sees them.
    ignored: frozenset[str] = frozenset()
    index: dict[str, int] = field(init=False, repr=False)
    numeric_only: bool = field(init=False)
    cells: tuple[Callable[[Any, int, int], Any], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.kinds):
            raise ValueError(f"{len(self.names)} feature names but {len(self.kinds)} feature kinds")
        unknown = sorted(set(self.kinds) - {NUMERIC, CATEGORICAL, TEXT})
        if unknown:
            raise ValueError(
                f"unknown feature kind(s) {unknown}; expected {NUMERIC!r}, {CATEGORICAL!r} or {TEXT!r}"
            )
        object.__setattr__(self, "index", {name: j for j, name in enumerate(self.names)})
        object.__setattr__(self, "numeric_only", all(k == NUMERIC for k in self.kinds))
        converters = {NUMERIC: self._number, CATEGORICAL: self._category, TEXT: self._category}
        object.__setattr__(self, "cells", tuple(converters[k] for k in self.kinds))

    @property
    def width(self) -> int:
        return len(self.names)

    def where(self, row: int, column: int) -> str:
        return f"row {row}, column {column + 1} ({self.names[column]!r})"

    def _number(self, value: Any, row: int, column: int) -> float:
        """One numeric cell as a float (NaN if missing), or a BadRequest naming row and feature."""
        try:
            number = float(value)  # str, int, float; bool is an int: true/false read as 1/0
        except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer beyond float range
            if value is None or (isinstance(value, str) and value.strip().lower() in MISSING):
                return math.nan
            shown = quote(value) if isinstance(value, int | float | str) else _kind(value)
            raise BadRequest(f"{self.where(row, column)}: {shown} is not a number") from None
        if math.isinf(number):
            raise BadRequest(f"{self.where(row, column)}: infinite values are not allowed")
        return number  # NaN ("nan", "NaN") is missing, as in training

    def _category(self, value: Any, row: int, column: int) -> str | None:
        """One categorical cell as its stripped text (None if missing), as training reads CSV."""
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip()
            return None if text.lower() in MISSING else text
        if isinstance(value, int | float) and not isinstance(value, bool):
            return label_key(value)  # a JSON number in a text column: one spelling, as in training
        raise BadRequest(f"{self.where(row, column)}: {_kind(value)} is not a category (send a string)")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return f"a list {quote(value)}"
    if isinstance(value, dict):
        return f"an object {quote(value)}"
    return quote(value)


def _matrix(rows: list[Sequence[Any]], schema: Schema) -> np.ndarray:
    """Rows of cells (strings or JSON values) to the model input; one numpy call when all-numeric."""
    if not rows:
        raise BadRequest("the request has no rows")
    expected = schema.width
    for i, row in enumerate(rows, start=1):
        if len(row) != expected:
            raise BadRequest(f"row {i}: expected {expected} features, got {len(row)}")
    if schema.numeric_only:
        try:
            X = np.array(rows, dtype=np.float64)
            # NaN is fine but goes through the slow path to vet every cell; a cell that is itself
            # a list gives a 3-D array (or "too many dimensions"): the slow path names it.
            if X.shape == (len(rows), expected) and np.isfinite(X).all():
                return X
        except (ValueError, TypeError, OverflowError):
            pass
        return np.array(_cells(rows, schema), dtype=np.float64)
    return np.array(_cells(rows, schema), dtype=object)


def _cells(rows: list[Sequence[Any]], schema: Schema) -> list[list[Any]]:
    cells = schema.cells
    return [[cells[j](v, i, j) for j, v in enumerate(row)] for i, row in enumerate(rows, start=1)]


# A body of plain decimal numbers, missing values, commas and line breaks is a JSON array of arrays
# once each line break becomes "],[" and each missing cell "null", and orjson reads floats (exactly,
# as float() does) faster than numpy converts strings: 100 rows x 30 features ~470 -> ~200 us
# (issue 13). Missing cells stay on this path too: a 6 MB body of "nan" took 2.5-5 s cell by cell and
# held its worker while /ping waited (issue 22). No letters but e/E and those of the missing
# spellings, no brackets or quotes: JSON can only yield numbers and null here.
_NUMBER_BYTES = b"0123456789eE.+-, \t\r\n"
_DIGITS = b"0123456789"
_MISSING_LETTERS = b"nNaAuUlLoO"  # na, nan, null, none (data.MISSING), in any case
# data.MISSING's spellings and float()'s signed NaN, longest first; each becomes one marker byte
# that no later spelling contains (upper case, absent once the body is lower-cased), so a cell is
# missing only if it was exactly one spelling: "nana" or "nanull" leave letters or two markers.
_MISSING_SPELLINGS = (b"none", b"null", b"+nan", b"-nan", b"nan", b"na")
_MARK = b"N"


def _numeric_csv(body: bytes, width: int) -> np.ndarray | None:
    """Numbers and missing values only, or None: anything unusual ("+1", ".5", "1 2", a lone
    carriage return, a wrong width) takes the general path, which decides and names the cell at
    fault. Blank lines are skipped, as the general path skips them."""
    letters = body.translate(None, _NUMBER_BYTES)
    if letters.translate(None, _MISSING_LETTERS):  # some other byte is in the body
        return None
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
        if b"\r" in body:  # a lone carriage return: a line break to the general path (splitlines)
            return None
    if not letters:  # the common case, numbers only: one orjson call, as before issue 22
        X = _float_rows(b"[[" + body.strip().replace(b"\n", b"],[") + b"]]", width)
        if X is not None:
            return X  # else empty cells, blank lines, or not numbers: see below
    text = _cells_text(body.lower() if letters else body, bool(letters))
    if not text:
        return None
    if len(text.translate(None, _DIGITS)) == len(text):
        return _all_missing(text, width)
    rows = b"[[" + text.replace(b"\n", b"],[") + b"]]"
    if b",," in rows:  # two passes: in ",,," the first leaves every other empty cell
        rows = rows.replace(b",,", b",N,").replace(b",,", b",N,")
    rows = rows.replace(b"[,", b"[N,").replace(b",]", b",N]")  # empty first and last cells
    # null (a missing cell) becomes NaN in a float array; a marker next to anything else ("1null",
    # "nullnull", "-null") is not JSON, so the body is declined.
    return _float_rows(rows.replace(_MARK, b"null"), width)


def _float_rows(rows: bytes, width: int) -> np.ndarray | None:
    """A JSON array of ``width``-long arrays of numbers (or null: NaN) as floats, or None."""
    try:
        X = np.array(orjson.loads(rows), dtype=np.float64)
    except (orjson.JSONDecodeError, ValueError, TypeError):  # not JSON, ragged, a cell not a number
        return None
    # orjson refuses a number beyond float range itself; the general path names that cell.
    if X.ndim != 2 or X.shape[1] != width or np.isinf(X).any():
        return None
    return X


def _cells_text(text: bytes, has_letters: bool) -> bytes:
    """Lower-cased ``text`` with "\\n" line breaks, without spaces around cells or blank lines,
    and each missing spelling as one marker byte."""
    if b" " in text or b"\t" in text:
        text = _collapse(text.replace(b"\t", b" "), b"  ", b" ")
        for edge in (b" ,", b", ", b" \n", b"\n "):
            text = text.replace(edge, edge.strip(b" "))
        text = text.strip(b" ")  # a space left is inside a cell ("1 2"): not JSON, so declined
    text = _collapse(text.strip(b"\n"), b"\n\n", b"\n")
    if has_letters:
        for spelling in _MISSING_SPELLINGS:
            text = text.replace(spelling, _MARK)
    return text


def _collapse(text: bytes, double: bytes, single: bytes) -> bytes:
    """Runs of ``single`` as one; each pass halves the longest run, so ~23 passes for 6 MB."""
    while double in text:
        text = text.replace(double, single)
    return text


def _all_missing(text: bytes, width: int) -> np.ndarray | None:
    """A body without digits is valid only as rows of ``width`` missing cells: all NaN, checked
    and built without a Python object per cell (a 6 MB body of empty cells has 6 million)."""
    if text.translate(None, b"N,\n") or _MARK + _MARK in text:
        return None
    rows = text.count(b"\n") + 1
    line = b"," * (width - 1) + b"\n"
    if text.replace(_MARK, b"") + b"\n" != line * rows:
        return None
    return np.full((rows, width), np.nan)


def decode_csv(body: bytes, schema: Schema) -> np.ndarray:
    if schema.numeric_only:
        fast = _numeric_csv(body, schema.width)
        if fast is not None:
            return fast
    return _matrix(_csv_rows(body), schema)


def _csv_rows(body: bytes) -> list[Any]:
    text = _text(body)
    if '"' in text:  # quoted cells are rare in inference payloads; let the csv module handle them
        try:
            return [r for r in csv.reader(io.StringIO(text)) if r]
        except csv.Error as error:  # e.g. a stray carriage return inside a quoted cell
            raise BadRequest(f"malformed CSV: {error}") from None
    return [line.split(",") for line in text.splitlines() if line.strip()]


def decode_json(body: bytes, schema: Schema) -> np.ndarray:
    return decode_records(instances(load_json(body)), schema)


def decode_jsonlines(body: bytes, schema: Schema) -> np.ndarray:
    return decode_records(load_json_lines(body), schema)


def load_json(body: bytes) -> Any:
    """A JSON body as Python values, or a BadRequest."""
    try:
        # orjson refuses nesting deeper than 1,024 levels itself (a JSONDecodeError, not recursion).
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"malformed JSON: {error}") from None


def instances(payload: Any) -> list[Any]:
    """The records of a JSON payload: ``{"instances": [...]}`` or a bare list, else a BadRequest."""
    records = payload.get("instances") if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise BadRequest(f"expected {JSON_SHAPES}")
    return records


def load_json_lines(body: bytes) -> list[Any]:
    """One JSON value per non-blank line (a raw line break cannot occur inside a JSON value)."""
    records = []
    for i, line in enumerate((line for line in body.splitlines() if line.strip()), start=1):
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as error:
            raise BadRequest(f"row {i}: malformed JSON: {error}") from None
    return records


def load_records(body: bytes, content_type: str) -> list[Any]:
    """The records of a body, for a service layer that takes fields out of them (an id) before
    ``decode_records``: JSON objects or lists (JSON, JSON Lines), lists of text cells (CSV)."""
    if not body.strip():
        raise BadRequest("empty request body")
    if content_type == CSV:
        return _csv_rows(body)
    if content_type == JSON:
        return instances(load_json(body))
    if content_type == JSONLINES:
        return load_json_lines(body)
    raise unsupported(content_type)


def decode_records(records: Any, schema: Schema) -> np.ndarray:
    """Records (each a list of values in feature order or an object of feature: value) to the
    model input, or a BadRequest naming the row and feature."""
    if not isinstance(records, list):
        raise BadRequest(f"expected {JSON_SHAPES}")
    if records and all(isinstance(r, dict) for r in records):
        return _matrix([_by_name(r, i, schema) for i, r in enumerate(records, start=1)], schema)
    for i, row in enumerate(records, start=1):
        if not isinstance(row, list):
            raise BadRequest(
                f"row {i}: expected a list of {schema.width} values or an object of feature: value"
            )
    return _matrix(records, schema)


def unsupported(content_type: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"unsupported content type {content_type or '(none)'!r}; send {', '.join(CONTENT_TYPES)}"
    )


def _by_name(row: dict[str, Any], i: int, schema: Schema) -> list[Any]:
    try:
        return [row[n] for n in schema.names] if len(row) == schema.width else _misnamed(row, i, schema)
    except KeyError:
        return _misnamed(row, i, schema)


def _misnamed(row: dict[str, Any], i: int, schema: Schema) -> list[Any]:
    unknown = sorted(set(row) - set(schema.index) - schema.ignored)
    missing = [n for n in schema.names if n not in row]
    if not unknown and not missing:  # only the model's own non-feature columns besides the features
        return [row[n] for n in schema.names]
    parts = [
        f"unknown feature(s) {', '.join(map(quote, unknown[:5]))}" if unknown else "",
        f"missing feature(s) {', '.join(missing[:5])}" if missing else "",
    ]
    raise BadRequest(
        f"row {i}: expected {schema.width} features, got {len(row)}: {'; '.join(p for p in parts if p)}"
    )


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"the body is not UTF-8 text ({error.reason} at byte {error.start})") from None


def decode(body: bytes, content_type: str, schema: Schema) -> np.ndarray:
    """A CSV, JSON or JSON Lines body to the model input (the default ``input_fn``)."""
    if not body.strip():
        raise BadRequest("empty request body")
    try:
        if content_type == CSV:
            return decode_csv(body, schema)
        if content_type == JSON:
            return decode_json(body, schema)
        if content_type == JSONLINES:
            return decode_jsonlines(body, schema)
    except RecursionError:  # defence in depth: nothing above recurses on client data
        raise BadRequest("the body is nested too deeply") from None
    raise unsupported(content_type)


def _csv_field(value: Any) -> str:
    """A label or class name as one CSV field, quoted only when it must be (RFC 4180)."""
    text = str(value)
    if any(c in text for c in ',"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def _numbers(values: list[float]) -> list[bytes]:
    """Each float's text: orjson's (the JSON answer's), or repr's for all when one is NaN or
    infinite (JSON has no such number: orjson writes null)."""
    text = orjson.dumps(values)
    if b"null" not in text:
        return text[1:-1].split(b",")
    return [repr(value).encode() for value in values]


def _rows(rows: list[list[float]]) -> list[bytes]:
    """Each row's floats as comma-separated text, as ``_numbers`` writes them."""
    text = orjson.dumps(rows)
    if b"null" not in text:
        return text[2:-2].split(b"],[")
    return [",".join(map(repr, row)).encode() for row in rows]


def _lines(first: list[bytes], rest: list[bytes]) -> bytes:
    return b"\n".join(map(b",".join, zip(first, rest, strict=True))) + b"\n"


class Encoder:
    """Predictions to response bodies for one problem type (README, "Calling the endpoint").

    binary      JSON {"predictions": [{"label", "score"}]}, CSV ``label,score`` lines
    multiclass  JSON {"predictions": [{"label", "probabilities": {class: p}}]}, CSV a header
                ``label,<class>,...`` then one line per row
    regression  JSON {"predictions": [{"value"}]}, CSV one value per line
    ranking     JSON {"predictions": [{"score"}]}, plus "rank" (1 = best within the row's group)
                when the request's records carry the group column; CSV one score per line
    JSON Lines holds the same records as JSON, one per line, without the "predictions" wrapper.
    Labels come from ``Predictor.predict`` (it applies the threshold); class names and their CSV
    fields are computed once here, not per request. Floats print as orjson writes them, in both
    answers: the shortest text that reads back exactly, as repr's, except that 1e-5 <= |x| < 1e-4
    is written out (0.00003 where repr writes 3e-05) and an exponent has no leading zero (1e-9,
    not 1e-09). orjson writes 100 scores in ~2 us, repr in ~36 us (issue 13). NaN and infinity,
    which JSON cannot hold, keep repr's text (nan, inf) in CSV.
    """

    def __init__(self, problem_type: str, classes: Sequence[Any]):
        if problem_type not in ("binary", "multiclass", "regression", "ranking"):
            raise ValueError(f"unknown problem type {problem_type!r}")
        self.problem_type = problem_type
        self.keys = [str(c) for c in classes]  # JSON object keys are strings
        self.fields = {c: _csv_field(c).encode() for c in classes}
        self.header = ",".join(["label", *(_csv_field(c) for c in classes)]).encode() + b"\n"

    def encode(self, predictions: Any, accept: str, groups: Sequence[Any] | None = None) -> bytes:
        """The answer body; ``groups`` (ranking only): each row's group, to add its rank in it."""
        if self.problem_type == "ranking":
            if accept == CSV:
                return b"\n".join(_numbers(predictions.values.tolist())) + b"\n"
            return _json_answer(self.records(predictions, groups), accept)
        if self.problem_type == "regression":
            return self._regression(predictions.values.tolist(), accept)
        labels = predictions.labels.tolist()
        if self.problem_type == "binary":
            return self._binary(labels, predictions.scores.tolist(), accept)
        return self._multiclass(labels, predictions.probabilities.tolist(), accept)

    def records(self, predictions: Any, groups: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """The default answer as one dict per row: what JSON holds under "predictions"."""
        if self.problem_type == "ranking":
            scores = predictions.values.tolist()
            if groups is None:
                return [{"score": score} for score in scores]
            ranks = ranks_within(scores, groups)
            return [{"score": s, "rank": r} for s, r in zip(scores, ranks, strict=True)]
        if self.problem_type == "regression":
            return _value_rows(predictions.values.tolist())
        labels = predictions.labels.tolist()
        if self.problem_type == "binary":
            return _score_rows(labels, predictions.scores.tolist())
        return self._probability_rows(labels, predictions.probabilities.tolist())

    def _fields(self, labels: list[Any]) -> list[bytes]:
        known = self.fields
        return [known[label] if label in known else _csv_field(label).encode() for label in labels]

    def _binary(self, labels: list[Any], scores: list[float], accept: str) -> bytes:
        if accept == CSV:
            return _lines(self._fields(labels), _numbers(scores))
        return _json_answer(_score_rows(labels, scores), accept)

    def _multiclass(self, labels: list[Any], probabilities: list[list[float]], accept: str) -> bytes:
        if accept == CSV:
            return self.header + _lines(self._fields(labels), _rows(probabilities))
        return _json_answer(self._probability_rows(labels, probabilities), accept)

    def _probability_rows(self, labels: list[Any], probabilities: list[list[float]]) -> list[dict[str, Any]]:
        keys = self.keys
        return [
            {"label": label, "probabilities": dict(zip(keys, row, strict=True))}
            for label, row in zip(labels, probabilities, strict=True)
        ]

    @staticmethod
    def _regression(values: list[float], accept: str) -> bytes:
        if accept == CSV:
            return b"\n".join(_numbers(values)) + b"\n"
        return _json_answer(_value_rows(values), accept)


def group_values(records: list[Any], group: str | None) -> list[Any] | None:
    """Ranking: each record's group, when every record is an object carrying the group column;
    else None (records in feature order, or a group missing somewhere: scores only)."""
    if group is None or not records or not all(isinstance(r, dict) and group in r for r in records):
        return None
    return [str(r[group]) for r in records]


def ranks_within(scores: Sequence[float], groups: Sequence[Any]) -> list[int]:
    """Each row's rank among the rows of its group by descending score: 1 = best; a tie keeps the
    rows' order in the request."""
    ranks = [0] * len(scores)
    members: dict[Any, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    for rows in members.values():
        for rank, i in enumerate(sorted(rows, key=lambda i: -scores[i]), start=1):  # sorted is stable
            ranks[i] = rank
    return ranks


def _score_rows(labels: list[Any], scores: list[float]) -> list[dict[str, Any]]:
    return [{"label": label, "score": score} for label, score in zip(labels, scores, strict=True)]


def _value_rows(values: list[float]) -> list[dict[str, Any]]:
    return [{"value": value} for value in values]


_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_LINE_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


def _json_answer(records: list[Any], accept: str) -> bytes:
    """JSON ``{"predictions": records}``, or JSON Lines: one record per line."""
    if accept == JSON:
        return orjson.dumps({"predictions": records}, option=_JSON_OPTIONS)
    if accept == JSONLINES:
        return b"".join([orjson.dumps(record, option=_LINE_OPTIONS) for record in records])
    raise NotAcceptable(f"cannot produce {accept!r}; supported: {', '.join(CONTENT_TYPES)}")


def encode_records(records: Sequence[Any], accept: str) -> bytes:
    """Records (dicts of JSON values: ``Encoder.records`` plus your fields) as a body of type
    ``accept``: JSON ``{"predictions": [...]}``, JSON Lines one record per line, or CSV one line
    per record holding its values in order (nested lists and objects flattened, no header), so
    that every type answers the same fields."""
    if accept == CSV:
        return b"".join([b",".join(_flat_cells(record)) + b"\n" for record in records])
    return _json_answer(list(records), accept)


def _flat_cells(value: Any) -> list[bytes]:
    if isinstance(value, dict):
        return [cell for item in value.values() for cell in _flat_cells(item)]
    if isinstance(value, list | tuple):
        return [cell for item in value for cell in _flat_cells(item)]
    return [_csv_cell(value)]


def _csv_cell(value: Any) -> bytes:
    """A value as the JSON answer writes it, strings unquoted unless CSV needs it (RFC 4180)."""
    if value is None:
        return b""
    if isinstance(value, str):
        return _csv_field(value).encode()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value).encode()  # JSON has no such number; as the default CSV writes it
    text = orjson.dumps(value, option=_JSON_OPTIONS)
    return _csv_field(orjson.loads(text)).encode() if text.startswith(b'"') else text


def encode_error(message: str, status: int, accept: str) -> bytes:
    if accept == CSV:
        return f"error {status}: {message}\n".encode()
    return orjson.dumps({"error": message, "code": status})
