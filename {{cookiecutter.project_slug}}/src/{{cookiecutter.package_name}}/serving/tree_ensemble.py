"""Tree regression as ai.onnx.ml opset 5's ``TreeEnsemble``, answering as the booster does (training only).

onnxmltools writes ``TreeEnsembleRegressor``. Its output is float32 in every version (ONNX ML types
``Y`` as tensor(float)), and its thresholds and leaf weights are float32 attributes. It also adds
the base score after the trees. Either way a tree regression on targets in the hundreds missed
1e-6 (issue 13): LightGBM by 1.8e-5, XGBoost by 2.8e-4. Opset 5's ``TreeEnsemble`` keeps splits
and leaf weights as tensors of the input's type and answers in that type. No converter writes it
yet, so this module does, in the precision the booster computes in:

- LightGBM splits and sums in double: ``float64`` (measured: 0 difference on the sample).
- XGBoost compares float32 features with float32 thresholds. It starts from its base score and
  adds each tree in order, in float32: ``float32``, with the base score as the first tree, so the
  sums are XGBoost's own (measured: every answer bit-identical). In float64 it split differently
  (74 off).

It does not re-read the boosters' model formats. onnxmltools' own operator converter runs, and
each tree's nodes, modes, missing-value directions and leaves are taken from it, as the Python
numbers it passed to ``add_node``, before ONNX rounded them. They are re-encoded in the opset-5
layout: interior nodes in ``nodes_*`` and leaves in ``leaf_*``. Anything this re-encoding does not
cover raises NotImplementedError, and the library then serves: a post-transform, several targets,
a leaf voting more than once, an unknown split mode. ``compiled.export`` still checks the answers
against the library's.
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


def regressor_attributes(library: str, estimator: Any, n_features: int) -> dict[str, Any]:
    """The TreeEnsembleRegressor attributes onnxmltools writes for a booster's regressor."""
    from onnxmltools.convert import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    found: list[dict[str, Any]] = []
    types = [("X", FloatTensorType([None, n_features]))]  # the recorded numbers do not depend on it
    if library == "lightgbm":
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm as own

        alias, convert = "LgbmRegressor", convert_lightgbm
    elif library == "xgboost":
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost as own

        alias, convert = "XGBRegressor", convert_xgboost
    else:
        raise NotImplementedError(f"no tree converter for library {library!r}")

    def recorded(scope: Any, operator: Any, container: Any) -> None:
        own(scope, operator, _Recorder(container, found))

    convert(estimator, initial_types=types, custom_conversion_functions={alias: recorded})
    if len(found) != 1:
        raise NotImplementedError(f"expected one TreeEnsembleRegressor, the converter wrote {len(found)}")
    return found[0]


def model(attrs: dict[str, Any], n_features: int, dtype: type = np.float64) -> bytes:
    """An ONNX model of one TreeEnsembleRegressor's attributes, ``dtype`` (float32 or float64) in
    and out; the base score is the first tree's one leaf, so it is summed first."""
    from onnx import TensorProto, helper, numpy_helper

    if attrs.get("post_transform", "NONE") != "NONE" or attrs.get("n_targets", 1) != 1:
        raise NotImplementedError("only single-target regression without a post-transform")
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype {dtype}: float32 or float64")
    attrs = _base_first(attrs)
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
        ["variable"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function=AGGREGATES[attrs.get("aggregate_function", "SUM")],
        post_transform=0,
        tree_roots=[interior_index[root] for _, root in sorted(roots.items())],
        nodes_featureids=columns["feature"],
        nodes_splits=numpy_helper.from_array(np.array(columns["split"], dtype=dtype)),
        nodes_modes=numpy_helper.from_array(np.array(columns["mode"], dtype=np.uint8)),
        nodes_truenodeids=columns["true"],
        nodes_trueleafs=columns["true_leaf"],
        nodes_falsenodeids=columns["false"],
        nodes_falseleafs=columns["false_leaf"],
        nodes_missing_value_tracks_true=columns["missing"],
        leaf_targetids=[0] * len(leaf_keys),
        leaf_weights=numpy_helper.from_array(np.array([leaves[key] for key in leaf_keys], dtype=dtype)),
    )
    tensor = TensorProto.DOUBLE if dtype is np.float64 else TensorProto.FLOAT
    graph = helper.make_graph(
        [node],
        "trees",
        [helper.make_tensor_value_info("X", tensor, [None, n_features])],
        [helper.make_tensor_value_info("variable", tensor, [None, 1])],
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9).SerializeToString()


def _base_first(attrs: dict[str, Any]) -> dict[str, Any]:
    """The base score as a tree of one leaf, ahead of the others (XGBoost's order of summation)."""
    base = attrs.get("base_values") or []
    if len(base) > 1:
        raise NotImplementedError("several base values")
    if not base or base[0] == 0:
        return attrs
    tree = min(attrs["nodes_treeids"]) - 1
    out = {name: list(values) if isinstance(values, list) else values for name, values in attrs.items()}
    for name, value in (("nodes_treeids", tree), ("nodes_nodeids", 0), ("nodes_featureids", 0),
                        ("nodes_modes", "LEAF"), ("nodes_values", 0.0), ("nodes_truenodeids", 0),
                        ("nodes_falsenodeids", 0), ("nodes_missing_value_tracks_true", 0),
                        ("target_treeids", tree), ("target_nodeids", 0), ("target_ids", 0),
                        ("target_weights", float(base[0])) ):  # fmt: skip
        out[name] = [value, *out[name]]
    out.pop("base_values")
    out.pop("nodes_hitrates", None)  # unused, and not extended here
    return out


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
