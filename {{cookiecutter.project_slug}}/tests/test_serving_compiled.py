"""The compiled predictor (serving/compiled.py): exported at training only when it answers as the
library does (1e-6, same labels), else one log line and the library serves; served through the app."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
from serving_bodies import csv_body, expected

from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.serving import compiled
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE

pytest.importorskip("onnxruntime", reason="the compiled predictor needs onnxruntime")
pytest.importorskip("onnxmltools", reason="exporting trees needs onnxmltools")
pytest.importorskip("skl2onnx", reason="exporting needs skl2onnx")


@pytest.fixture(scope="module")
def fitted():
    """(fitted predictor, holdout) on numeric features, so every library's converter applies."""
    import datasets

    train, holdout = datasets.for_problem(PROBLEM_TYPE, categorical=False)
    return Predictor.fit(train, {}), holdout


def numbers(p) -> np.ndarray:
    return next(a for a in (p.values, p.scores, p.probabilities) if a is not None)


def test_export_writes_the_onnx_model_only_when_it_answers_as_the_library(fitted, tmp_path, capsys):
    predictor, holdout = fitted
    predictor.save(tmp_path)
    written = compiled.export(predictor, holdout, tmp_path)
    log = capsys.readouterr().err
    assert written == (tmp_path / compiled.COMPILED_FILE).is_file()
    if not written:  # float32 kernels: regression values in the hundreds differ by ~1e-5
        assert log.startswith("compiled predictor: not used: max difference ") and "serving uses" in log
        assert (
            create_app(tmp_path).extensions["serving"].predictor.estimator.__class__
            is not compiled.CompiledModel
        )
        return
    assert "model.onnx written (max difference" in log and "serving uses ONNX Runtime" in log
    served = create_app(tmp_path).extensions["serving"].predictor
    assert isinstance(served.estimator, compiled.CompiledModel)
    want, got = expected(predictor, holdout), served.predict(served.features(holdout))
    assert np.max(np.abs(numbers(want) - numbers(got))) <= compiled.TOLERANCE
    if want.labels is not None:
        assert got.labels.tolist() == want.labels.tolist()
    # Through the app: the compiled answers, CSV and JSON.
    client = create_app(tmp_path).test_client()
    assert client.get("/ping").status_code == 200
    reply = client.post("/invocations", data=csv_body(holdout, predictor.feature_names), content_type="text/csv",
                        headers={"Accept": "application/json"})  # fmt: skip
    assert reply.status_code == 200
    first = json.loads(reply.get_data())["predictions"][0]
    if PROBLEM_TYPE == "binary":
        assert first == {"label": got.labels[0], "score": float(got.scores[0])}
    elif PROBLEM_TYPE == "multiclass":
        assert first["label"] == got.labels[0]


def test_a_mismatching_export_is_not_used(fitted, tmp_path, capsys, monkeypatch):
    predictor, holdout = fitted
    import datasets

    # The ONNX model of another fit (labels shuffled): a real mismatch the check must catch.
    train, _ = datasets.for_problem(PROBLEM_TYPE, categorical=False, seed=1)
    from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN

    train.data[LABEL_COLUMN] = np.random.default_rng(0).permutation(train.data[LABEL_COLUMN])
    other = compiled.convert(Predictor.fit(train, {}))
    monkeypatch.setattr(compiled, "convert", lambda _predictor: other)
    assert compiled.export(predictor, holdout, tmp_path) is False
    assert not (tmp_path / compiled.COMPILED_FILE).exists()
    log = capsys.readouterr().err
    assert "compiled predictor: not used: " in log and f"serving uses {predictor.library}" in log


def test_an_unsupported_model_is_not_exported(fitted, tmp_path, capsys):
    predictor, holdout = fitted
    odd = dataclasses.replace(predictor, library="no-such-library")
    assert compiled.export(odd, holdout, tmp_path) is False and not any(tmp_path.iterdir())
    assert "not exported (NotImplementedError: no ONNX converter" in capsys.readouterr().err


def test_without_onnxruntime_serving_uses_the_library(fitted, tmp_path, monkeypatch, capsys):
    predictor, _ = fitted
    predictor.save(tmp_path)
    (tmp_path / compiled.COMPILED_FILE).write_bytes(compiled.convert(predictor))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    loaded = compiled.load(tmp_path)
    assert not isinstance(loaded.estimator, compiled.CompiledModel)
    assert "onnxruntime is not installed; serving uses" in capsys.readouterr().err


def test_the_session_is_created_in_the_process_that_predicts(fitted, tmp_path):
    predictor, holdout = fitted
    model = compiled.CompiledModel(compiled.convert(predictor), PROBLEM_TYPE)
    attached = dataclasses.replace(predictor, estimator=model)
    assert model._session is None  # gunicorn's master only holds the bytes
    attached.predict(attached.features(holdout.take(slice(0, 1))))
    assert model._session is not None


def test_model_folder_with_the_compiled_file_still_loads(fitted, tmp_path):
    predictor, _ = fitted
    predictor.save(tmp_path)
    # The folder allow-list is the Predictor's: model.onnx is on it.
    (tmp_path / compiled.COMPILED_FILE).write_bytes(compiled.convert(predictor))
    assert Predictor.load(tmp_path).feature_names == predictor.feature_names
