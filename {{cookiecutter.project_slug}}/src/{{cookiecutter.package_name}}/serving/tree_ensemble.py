"""LightGBM regression in float64 ONNX: ai.onnx.ml opset 5's ``TreeEnsemble`` (training only).

onnxmltools writes ``TreeEnsembleRegressor``. Its output is float32 in every version (ONNX ML types
``Y`` as tensor(float)), and its thresholds and leaf weights are float32 attributes. So a tree
regression on targets in the hundreds misses 1e-6 however it is fed (LightGBM: 1.8e-5, issue 13).
Opset 5's ``TreeEnsemble`` keeps splits and leaf weights as tensors of the input's type and answers
in that type. No converter writes it yet, so this module does. LightGBM computes in double, so this
answers exactly as LightGBM does (measured: 0 on the sample). XGBoost is left out: it compares
float32 features with float32 thresholds and returns float32 sums, so a float64 model splits
differently (measured: 74 off).

It does not re-read the booster's model format. onnxmltools' own operator converter runs, and
each tree's nodes, modes, missing-value directions and leaves are taken from it, as the Python
doubles it passed to ``add_node``, before ONNX rounded them to float32. They are re-encoded in the
opset-5 layout: interior nodes in ``nodes_*`` and leaves in ``leaf_*``. Anything this re-encoding
does not cover raises NotImplementedError, and the library then serves: a post-transform, several
targets, a leaf voting more than once, an unknown split mode. ``compiled.export`` still checks
the answers against the library's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# ai.onnx.ml TreeEnsemble-5 encodings: https://onnx.ai/onnx/operators/onnx_aionnxml_TreeEnsemble.html
MODES = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4, "BRANCH_NEQ": 5}
AGGREGATES = {"AVERAGE": 0, "SUM": 1, "MIN": 2, "MAX": 3}
ML_OPSET, OPSET = 5, 18


class _Recorder:
    """The converter's container, recording the attributes of the tree node it adds."""

    def __init__(self, container: Any, found: list[dict[str, Any]]):
        self._container, self._found = container, found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, op_type: str, *args: Any, **attrs: Any) -> Any:
        if op_type == "TreeEnsembleRegressor":
            self._found.append(dict(attrs))
        return self._container.add_node(op_type, *args, **attrs)


def regressor_attributes(estimator: Any, n_features: int) -> dict[str, Any]:
    """The TreeEnsembleRegressor attributes onnxmltools writes for a LightGBM regressor, as doubles."""
    from onnxmltools.convert import convert_lightgbm
    from onnxmltools.convert.common.data_types import DoubleTensorType
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm as own

    found: list[dict[str, Any]] = []

    def recorded(scope: Any, operator: Any, container: Any) -> None:
        own(scope, operator, _Recorder(container, found))

    convert_lightgbm(
        estimator,
        initial_types=[("X", DoubleTensorType([None, n_features]))],
        custom_conversion_functions={"LgbmRegressor": recorded},
    )
    if len(found) != 1:
        raise NotImplementedError(f"expected one TreeEnsembleRegressor, the converter wrote {len(found)}")
    return found[0]


def float64_model(attrs: dict[str, Any], n_features: int) -> bytes:
    """A float64-in, float64-out ONNX model of one TreeEnsembleRegressor's attributes."""
    from onnx import TensorProto, helper, numpy_helper

    if attrs.get("post_transform", "NONE") != "NONE" or attrs.get("n_targets", 1) != 1:
        raise NotImplementedError("only single-target regression without a post-transform")
    leaves = _leaf_weights(attrs)
    nodes: dict[tuple[int, int], int] = {}  # (tree, node id) -> position in the converter's lists
    roots: dict[int, tuple[int, int]] = {}  # tree -> its first node, the root
    for i, key in enumerate(zip(attrs["nodes_treeids"], attrs["nodes_nodeids"], strict=True)):
        nodes[key] = i
        roots.setdefault(key[0], key)
    interior = [key for key, i in nodes.items() if attrs["nodes_modes"][i] != "LEAF"]
    leaf_keys = [key for key, i in nodes.items() if attrs["nodes_modes"][i] == "LEAF"]
    if set(leaf_keys) != set(leaves):
        raise NotImplementedError("leaves and leaf weights do not match one to one")
    leaf_index = {key: j for j, key in enumerate(leaf_keys)}
    # A tree that is a single leaf gets one split whose both branches are that leaf.
    stumps = [root for root in roots.values() if root in leaf_index]
    interior_index = {key: j for j, key in enumerate([*interior, *stumps])}

    def child(tree: int, node_id: int) -> tuple[int, int]:
        key = (tree, node_id)
        return (leaf_index[key], 1) if key in leaf_index else (interior_index[key], 0)

    columns: dict[str, list[Any]] = {name: [] for name in ("feature", "split", "mode", "true", "true_leaf",
                                                           "false", "false_leaf", "missing")}  # fmt: skip
    for key in interior:
        i = nodes[key]
        mode = attrs["nodes_modes"][i]
        if mode not in MODES:
            raise NotImplementedError(f"split mode {mode}")
        true, false = (
            child(key[0], attrs["nodes_truenodeids"][i]),
            child(key[0], attrs["nodes_falsenodeids"][i]),
        )
        for name, value in zip(columns, (attrs["nodes_featureids"][i], float(attrs["nodes_values"][i]), MODES[mode],
                                         true[0], true[1], false[0], false[1],
                                         attrs["nodes_missing_value_tracks_true"][i]), strict=True):  # fmt: skip
            columns[name].append(value)
    for key in stumps:
        for name, value in zip(columns, (0, 0.0, 0, leaf_index[key], 1, leaf_index[key], 1, 0), strict=True):
            columns[name].append(value)

    node = helper.make_node(
        "TreeEnsemble",
        ["X"],
        ["trees"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function=AGGREGATES[attrs.get("aggregate_function", "SUM")],
        post_transform=0,
        tree_roots=[interior_index[root] for _, root in sorted(roots.items())],
        nodes_featureids=columns["feature"],
        nodes_splits=numpy_helper.from_array(np.array(columns["split"], dtype=np.float64)),
        nodes_modes=numpy_helper.from_array(np.array(columns["mode"], dtype=np.uint8)),
        nodes_truenodeids=columns["true"],
        nodes_trueleafs=columns["true_leaf"],
        nodes_falsenodeids=columns["false"],
        nodes_falseleafs=columns["false_leaf"],
        nodes_missing_value_tracks_true=columns["missing"],
        leaf_targetids=[0] * len(leaf_keys),
        leaf_weights=numpy_helper.from_array(np.array([leaves[key] for key in leaf_keys], dtype=np.float64)),
    )
    base = np.array(attrs.get("base_values") or [0.0], dtype=np.float64)
    add = helper.make_node("Add", ["trees", "base"], ["variable"])
    graph = helper.make_graph(
        [node, add],
        "trees_float64",
        [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, n_features])],
        [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])],
        initializer=[numpy_helper.from_array(base, "base")],
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9).SerializeToString()


def _leaf_weights(attrs: dict[str, Any]) -> dict[tuple[int, int], float]:
    """(tree, leaf node id) -> its weight; one vote per leaf, for target 0."""
    weights: dict[tuple[int, int], float] = {}
    votes = zip(attrs["target_treeids"], attrs["target_nodeids"], attrs["target_ids"], attrs["target_weights"],
                strict=True)  # fmt: skip
    for tree, node_id, target, weight in votes:
        if target != 0 or (tree, node_id) in weights:
            raise NotImplementedError("a leaf votes for several targets or more than once")
        weights[(tree, node_id)] = float(weight)
    return weights
