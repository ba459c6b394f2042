"""serving/double_imputer.py: scikit-learn's SimpleImputer in float64 ONNX (standard operators),
so a regression pipeline that imputes exports in double precision (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.serving import double_imputer

pytest.importorskip("skl2onnx", reason="the converter is a skl2onnx one")
ort = pytest.importorskip("onnxruntime", reason="the converted models are run")

from skl2onnx import convert_sklearn  # noqa: E402
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Columns in the tens of thousands with missing cells, a target in the thousands: where
    float32 fill values and kernels (ulp ~1e-3) would show."""
    rng = np.random.default_rng(3)
    X = rng.normal(40_000, 9_000, size=(300, 4)) * np.array([1.0, 0.5, 2.0, 1.5])
    y = X @ np.array([0.05, -0.02, 0.01, 0.03]) + rng.normal(0, 5, 300)
    X[rng.random(X.shape) < 0.15] = np.nan
    return X, y


def _convert(pipeline, tensor):
    n = pipeline[0].n_features_in_
    model = convert_sklearn(
        pipeline,
        initial_types=[("X", tensor([None, n]))],
        target_opset=18,
        custom_conversion_functions={SimpleImputer: double_imputer.convert},
    )
    return model


def _operators(model) -> set[tuple[str, str]]:
    return {(node.domain, node.op_type) for node in model.graph.node}


def _run(model, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})[0].reshape(-1)


@pytest.mark.parametrize("strategy", ["median", "mean", "most_frequent"])
def test_float64_imputes_with_the_fitted_statistics_exactly(data, strategy):
    X, y = data
    pipeline = make_pipeline(SimpleImputer(strategy=strategy), Ridge()).fit(X, y)
    model = _convert(pipeline, DoubleTensorType)
    assert ("", "Where") in _operators(model) and ("ai.onnx.ml", "Imputer") not in _operators(model)
    missing = np.isnan(X).any(axis=1)
    assert missing.sum() > 100  # the rows the fill values decide
    want, got = pipeline.predict(X), _run(model, X)
    assert np.max(np.abs(want - got)) <= 1e-9 * np.max(np.abs(want))


def test_float32_input_keeps_skl2onnx_s_own_imputer(data):
    X, y = data
    pipeline = make_pipeline(SimpleImputer(), Ridge()).fit(X, y)
    assert ("ai.onnx.ml", "Imputer") in _operators(_convert(pipeline, FloatTensorType))


def test_what_it_does_not_cover_goes_to_skl2onnx_s_converter(data):
    X, y = data
    # add_indicator appends columns; a 0 marker is not NaN: both are skl2onnx's own Imputer.
    cases = ((SimpleImputer(add_indicator=True), X), (SimpleImputer(missing_values=0.0), np.nan_to_num(X)))
    for imputer, rows in cases:
        pipeline = make_pipeline(imputer, Ridge()).fit(rows, y)
        assert ("ai.onnx.ml", "Imputer") in _operators(_convert(pipeline, DoubleTensorType))
