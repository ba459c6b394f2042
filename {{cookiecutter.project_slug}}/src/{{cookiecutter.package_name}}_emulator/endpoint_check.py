"""Does the endpoint answer as this project's service layer does? (the emulator's invoke check)

The check's requests (``requests_for``): the first ``ROWS`` holdout rows, label dropped, as CSV
asking for JSON, and as JSON Lines records by feature name asking for JSON Lines (what Batch
Transform streams). Each goes to the endpoint through sagemaker-runtime InvokeEndpoint
(``observe.invoke_check``) and, in this process, through the project's own ``inference.py``
functions (``serving/app.py``'s ``Service.respond``) on the model file the endpoint serves, loaded
by ``Predictor.load``: the library, so a compiled ONNX model the endpoint serves is checked against
it as well. The two answers must agree (``difference``): same status and content type; in a JSON,
JSON Lines or CSV answer the same fields in the same order, texts equal and numbers within 1e-6;
any other type byte for byte. So a custom answer (a decision, the top classes, ids) passes when the
endpoint and the functions agree, and a difference is named by its place in the answer.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from {{ cookiecutter.package_name }} import column_roles, data, settings

if TYPE_CHECKING:
    from {{ cookiecutter.package_name }}.serving.app import Service

ROWS = 20
# 1e-6: the compiled predictor (serving/compiled.py) is used only within 1e-6 of the library.
TOLERANCE = 1e-6
MAX_DIFFERENCES = 3
ERROR_BYTES = 512  # sagemaker-runtime passes a container's error body on cut to this (OriginalMessage)
CSV, JSON, JSONLINES = "text/csv", "application/json", "application/jsonlines"


@dataclass(frozen=True)
class Request:
    name: str
    body: bytes
    content_type: str
    accept: str
    rows: int


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    @property
    def kind(self) -> str:
        return self.content_type.split(";", 1)[0].strip().lower()


def requests_for(table: data.Table, rows: int = ROWS, features: Sequence[str] | None = None) -> list[Request]:
    """The check's requests for the first ``rows`` rows of ``table`` (its label column dropped).

    A CSV row is positional, so it carries the features only, in ``features`` order: the served
    model's own list when the caller has the model (its metadata is the truth, issue 23), else the
    roles resolved on ``table`` as training would. A JSON Lines record also carries the id,
    timestamp, group and weight columns (column_roles.py), which the endpoint accepts beside the
    features and the model never sees."""
    if features is None:
        features = column_roles.resolve(table, settings.LABEL_COLUMN).features
    features = list(features)
    named = [c for c in table.columns if c != settings.LABEL_COLUMN]
    head = table.take(slice(0, rows))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i in range(head.n_rows):
        record = [_json_cell(head.data[c][i]) for c in features]
        writer.writerow("" if v is None else repr(v) if isinstance(v, float) else v for v in record)
    lines = b"".join(
        orjson.dumps({c: _json_cell(head.data[c][i]) for c in named}) + b"\n" for i in range(head.n_rows)
    )
    return [
        Request("CSV -> JSON", buffer.getvalue().encode(), CSV, JSON, head.n_rows),
        Request("JSON Lines -> JSON Lines", lines, JSONLINES, JSONLINES, head.n_rows),
    ]


def _json_cell(value: object) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else float(value)
    return None if value is None or value == "" else str(value)


MODEL_STACK = ("predictor", "serving.app", "skops.io", "sklearn.pipeline", "onnxruntime")


def preimport() -> threading.Thread:
    """Import what ``local_service`` loads a model with, in a background thread: the emulator starts
    it once moto is up, so the first endpoint check does not pay a second of imports."""

    def run() -> None:
        for name in MODEL_STACK:
            package_module = name in ("predictor", "serving.app")
            module = f"{settings.PACKAGE_NAME}.{name}" if package_module else name
            with contextlib.suppress(ImportError):  # a library this bake does not use
                importlib.import_module(module)

    thread = threading.Thread(target=run, name="answers-preimport", daemon=True)
    thread.start()
    return thread


def local_service(model_dir: Path) -> Service:
    """The model folder behind this project's service functions, in this process."""
    from {{ cookiecutter.package_name }}.predictor import Predictor  # the model's libraries: only when a check runs
    from {{ cookiecutter.package_name }}.serving.app import Service
    from {{ cookiecutter.package_name }}.serving.handlers import Handlers

    return Service(Predictor.load(model_dir), Handlers.project())


def local_answer(service: Service, request: Request) -> Answer:
    status, content_type, body = service.respond(request.body, request.content_type, request.accept)
    return Answer(status, content_type, body)


def difference(endpoint: Answer, local: Answer) -> str:
    """'' when the endpoint's answer agrees with the local one, else what differs (a few places)."""
    if endpoint.status != local.status:
        return f"status: endpoint {endpoint.status}, in process {local.status} ({_error_text(local)})"
    if endpoint.status >= 400:  # an error's type is lost in ModelError: compare what is passed on
        if endpoint.body[:ERROR_BYTES] != local.body[:ERROR_BYTES]:
            return f"error: endpoint {_error_text(endpoint)!r}, in process {_error_text(local)!r}"
        return ""
    if endpoint.kind != local.kind:
        return f"content type: endpoint {endpoint.content_type}, in process {local.content_type}"
    found: list[str] = []
    _compare(_parsed(endpoint), _parsed(local), _root(local.kind), found)
    return "; ".join(found)


def _error_text(answer: Answer) -> str:
    return answer.body[:200].decode(errors="replace").strip()


def _root(kind: str) -> str:
    """Where a difference is: ``$.predictions[3].score`` in JSON, ``line 4, score`` in JSON Lines,
    ``line 4, field 2`` in CSV (lines and fields counted from 1), ``body`` otherwise."""
    return {JSON: "$", JSONLINES: "", CSV: ""}.get(kind, "body")


def _parsed(answer: Answer) -> Any:
    """The answer as values (numbers as numbers) when its type is one the codecs write."""
    try:
        if answer.kind == JSON:
            return orjson.loads(answer.body)
        if answer.kind == JSONLINES:
            return [orjson.loads(line) for line in answer.body.splitlines() if line.strip()]
        if answer.kind == CSV:
            text = answer.body.decode()
            return [[_number_or_text(cell) for cell in row] for row in csv.reader(io.StringIO(text))]
    except (orjson.JSONDecodeError, UnicodeDecodeError, csv.Error):
        pass
    return answer.body


def _number_or_text(cell: str) -> float | str:
    try:
        return float(cell)
    except ValueError:
        return cell


def _place(path: str, step: str | int) -> str:
    line = path.startswith("line ") and "," not in path  # a whole line of JSON Lines or CSV
    if isinstance(step, str):
        return f"{path}, {step}" if line else f"{path}.{step}"
    if not path:
        return f"line {step + 1}"
    return f"{path}, field {step + 1}" if line else f"{path}[{step}]"


def _compare(got: Any, want: Any, path: str, found: list[str]) -> None:
    if len(found) >= MAX_DIFFERENCES:
        return
    if isinstance(want, dict) and isinstance(got, dict):
        if list(got) != list(want):
            found.append(f"{path}: endpoint fields {list(got)}, in process {list(want)}")
            return
        for key, value in want.items():
            _compare(got[key], value, _place(path, key), found)
    elif isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            found.append(f"{path}: endpoint {len(got)} items, in process {len(want)}")
            return
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, _place(path, i), found)
    elif _is_number(got) and _is_number(want):
        if not (
            math.isclose(got, want, rel_tol=0, abs_tol=TOLERANCE) or (math.isnan(got) and math.isnan(want))
        ):
            found.append(f"{path}: endpoint {got!r}, in process {want!r}")
    elif got != want:
        found.append(f"{path}: endpoint {_short(got)}, in process {_short(want)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
