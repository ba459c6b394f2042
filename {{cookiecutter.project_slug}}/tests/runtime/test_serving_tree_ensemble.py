"""serving/tree_ensemble.py: TreeEnsembleRegressor attributes re-encoded as opset 5's TreeEnsemble,
in float64 or float32, the base score summed first (issue 13). Hand-built trees, so every bake runs it; LightGBM's own export is
tested in test_serving_compiled.py and test_problem_types.py of the booster bakes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.serving import onnx_file, tree_ensemble

ort = pytest.importorskip("onnxruntime", reason="the models are run")
pytest.importorskip("onnx", reason="the models are built with onnx")

# Two trees and a stump, in the converter's layout (node ids per tree, leaves as LEAF nodes, one
# vote per leaf). Thresholds and weights need all 53 bits: float32 would round them.
T0 = 0.1 + 0.2  # 0.30000000000000004
ATTRS = {
    "post_transform": "NONE",
    "n_targets": 1,
    "nodes_treeids": [0, 0, 0, 0, 0, 1, 1, 1, 2],
    "nodes_nodeids": [0, 1, 2, 3, 4, 0, 1, 2, 0],
    "nodes_featureids": [0, 1, 0, 0, 0, 1, 0, 0, 0],
    "nodes_modes": ["BRANCH_LEQ", "BRANCH_LT", "LEAF", "LEAF", "LEAF", "BRANCH_EQ", "LEAF", "LEAF", "LEAF"],
    "nodes_values": [T0, 1e9 + 0.5, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0],
    "nodes_truenodeids": [1, 2, 0, 0, 0, 1, 0, 0, 0],
    "nodes_falsenodeids": [4, 3, 0, 0, 0, 2, 0, 0, 0],
    "nodes_missing_value_tracks_true": [1, 0, 0, 0, 0, 0, 0, 0, 0],
    "target_treeids": [0, 0, 0, 1, 1, 2],
    "target_nodeids": [2, 3, 4, 1, 2, 0],
    "target_ids": [0, 0, 0, 0, 0, 0],
    "target_weights": [100.000000000001, 200.000000000002, 300.000000000003, 0.125, -0.25, 1e-13],
    "base_values": [150.00000000000003],
}


def expected(x0: float, x1: float) -> float:
    """The same trees, by hand."""
    if math.isnan(x0) or x0 <= T0:  # missing goes the true way at the root
        first = 100.000000000001 if x1 < 1e9 + 0.5 else 200.000000000002
    else:
        first = 300.000000000003
    second = 0.125 if x1 == 2.0 else -0.25
    return 150.00000000000003 + first + second + 1e-13


ROWS = np.array(
    [
        [T0, 0.0],
        [np.nextafter(T0, 1), 2.0],
        [np.nan, 1e9 + 0.5],
        [-5.0, np.nextafter(1e9 + 0.5, 0)],
        [9.0, 2.0],
    ]
)


def test_the_model_answers_as_the_trees_do_in_float64():
    model = tree_ensemble.model(ATTRS, 2)
    assert (
        onnx_file.canonical(model, onnx_file.Expected(n_features=2, n_classes=0)) == model
    )  # export keeps it as is
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert (
        session.get_inputs()[0].type == "tensor(double)" and session.get_outputs()[0].type == "tensor(double)"
    )
    got = session.run(None, {"X": ROWS})[0].reshape(-1)
    assert got.tolist() == [expected(*row) for row in ROWS.tolist()]  # exactly: splits at 1 ulp decide


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"post_transform": "LOGISTIC"}, "post-transform"),
        ({"n_targets": 2}, "single-target"),
        ({"target_ids": [0, 0, 0, 0, 0, 1]}, "several targets"),
        ({"target_nodeids": [2, 2, 4, 1, 2, 0]}, "more than once"),
        ({"nodes_modes": ["BRANCH_MEMBER", *ATTRS["nodes_modes"][1:]]}, "split mode"),
    ],
)
def test_what_it_does_not_cover_is_refused_so_the_library_serves(change, reason):
    with pytest.raises(NotImplementedError, match=reason):
        tree_ensemble.model({**ATTRS, **change}, 2)


def test_in_float32_the_base_score_is_summed_first_as_xgboost_does():
    # float32 sums are order-dependent: 2**24 + 1 + 1 is 2**24 when the base comes first.
    big = {**ATTRS, "base_values": [2.0**24], "target_weights": [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]}
    session = ort.InferenceSession(
        tree_ensemble.model(big, 2, np.float32), providers=["CPUExecutionProvider"]
    )
    assert (
        session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].type == "tensor(float)"
    )
    got = session.run(None, {"X": np.array([[0.0, 0.0]], dtype=np.float32)})[0].reshape(-1)
    base_first = np.float32(np.float32(np.float32(2.0**24) + np.float32(1.0)) + np.float32(1.0))
    base_last = np.float32(np.float32(1.0 + 1.0) + np.float32(2.0**24))
    assert base_first != base_last and got.tolist() == [float(base_first)]


def test_an_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="float32 or float64"):
        tree_ensemble.model(ATTRS, 2, np.float16)
