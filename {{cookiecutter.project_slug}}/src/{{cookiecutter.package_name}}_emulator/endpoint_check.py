"""Does the endpoint answer with its model's predictions? (the emulator's invoke check)

Rows of the holdout (label dropped) go through sagemaker-runtime InvokeEndpoint as CSV; the same
rows go through the model file the endpoint serves, loaded with ``predictor.Predictor``; the
answers must agree (labels exactly, scores / probabilities / values to 1e-6). The reply shapes are
those of docs/architecture.md, "Serving output".
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from {{ cookiecutter.package_name }} import data, settings

ROWS = 20
# 1e-6: the compiled predictor (serving/compiled.py) is used only within 1e-6 of the library.
TOLERANCE = 1e-6


def request_body(table: data.Table, rows: int = ROWS) -> tuple[data.Table, str]:
    """The first ``rows`` rows and their features as CSV text (no header, label dropped)."""
    head = table.take(slice(0, rows))
    features = [c for c in head.columns if c != settings.LABEL_COLUMN]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i in range(head.n_rows):
        writer.writerow(_cell(head.data[c][i]) for c in features)
    return head, buffer.getvalue()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(float(value))
    return "" if value is None else str(value)


MODEL_STACK = ("predictor", "skops.io", "sklearn.pipeline", "onnxruntime")


def preimport() -> threading.Thread:
    """Import what ``expected`` loads a model with, in a background thread: the emulator starts it
    once moto is up, so the first endpoint check does not pay a second of imports."""

    def run() -> None:
        for name in MODEL_STACK:
            module = f"{settings.PACKAGE_NAME}.{name}" if name == "predictor" else name
            with contextlib.suppress(ImportError):  # a library this bake does not use
                importlib.import_module(module)

    thread = threading.Thread(target=run, name="answers-preimport", daemon=True)
    thread.start()
    return thread


def expected(model_dir: Path, rows: data.Table) -> list[dict[str, Any]]:
    """What the endpoint must answer for ``rows``, from the model files themselves."""
    from {{ cookiecutter.package_name }}.predictor import Predictor  # the model's libraries: only when a check runs

    predictor = Predictor.load(model_dir)
    predictions = predictor.predict(predictor.features(rows))
    n = rows.n_rows
    if predictions.values is not None:
        return [{"value": float(v)} for v in predictions.values]
    labels = predictions.labels if predictions.labels is not None else [None] * n
    if predictions.scores is not None:
        return [{"label": labels[i], "score": float(predictions.scores[i])} for i in range(n)]
    classes = [str(c) for c in predictor.classes]
    probabilities = predictions.probabilities if predictions.probabilities is not None else np.empty((n, 0))
    return [
        {"label": labels[i], "probabilities": dict(zip(classes, map(float, probabilities[i]), strict=True))}
        for i in range(n)
    ]


def agree(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    if len(got) != len(want):
        return False
    return all(_same(g, w) for g, w in zip(got, want, strict=True))


def _same(got: dict[str, Any], want: dict[str, Any]) -> bool:
    from {{ cookiecutter.package_name }}.predictor import label_key

    if set(got) != set(want):
        return False
    for key, value in want.items():
        if key == "label":
            if label_key(got[key]) != label_key(value):
                return False
        elif key == "probabilities":
            if set(got[key]) != set(value) or not all(
                math.isclose(got[key][c], p, abs_tol=TOLERANCE) for c, p in value.items()
            ):
                return False
        elif not math.isclose(float(got[key]), float(value), abs_tol=TOLERANCE):
            return False
    return True
