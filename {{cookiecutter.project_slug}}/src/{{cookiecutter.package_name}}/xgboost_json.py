"""XGBoost's JSON model checked whole, then rewritten canonically, before XGBoost parses a byte.

XGBoost's own reader trusts the trees it reads: out-of-range node or feature indices, children
that point back at their node and deep nesting crashed or corrupted the process (issue 22). So the
file is decoded by Python's ``json`` (strict: no duplicate keys, no NaN), every field XGBoost reads
is checked against metadata.json (``model_files.Expected``), and ``canonical`` returns the model
rebuilt from the checked values alone: XGBoost then parses JSON that a plain encoder wrote, with no
field or encoding the check did not see. Layout: https://xgboost.readthedocs.io/en/stable/tutorials/saving_model.html
(JSON, not UBJSON: Python has no well-kept UBJSON reader, and the JSON file is smaller, 349 KB
against 473 KB for the multiclass sample).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .model_files import Expected, UnsafeModelError, read_model_file
from .tree_checks import Refused, binary_tree, floats, ints

# What this project's estimators write (model.build_estimator); predict_proba needs probabilities.
OBJECTIVES = {
    "binary": frozenset({"binary:logistic"}),
    "multiclass": frozenset({"multi:softprob"}),
    "regression": frozenset({"reg:squarederror"}),
    "ranking": frozenset({"rank:ndcg"}),  # XGBRanker (model.py): one score per row
}
# The objective parameters that are words, not numbers, and the words they may hold.
WORD_PARAMETERS = {"lambdarank_pair_method": frozenset({"topk", "mean"})}
MAX_TREES, MAX_NODES = 1_000_000, 1 << 20  # per model, per tree
NUMBER = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
BASE_SCORE = re.compile(
    r"^\[?-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:,-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)*\]?$"
)
EMPTY_CATS = {"enc": [], "feature_segments": [], "sorted_idx": []}  # XGBoost 3's category encoder
ROOT_PARENT = 2147483647  # XGBoost's "no parent" in the parents array
TREE_ARRAYS = ("left_children", "right_children", "parents", "split_indices", "split_conditions",
               "default_left", "split_type", "base_weights", "loss_changes", "sum_hessian")  # fmt: skip
TREE_KEYS = {*TREE_ARRAYS, "categories", "categories_nodes", "categories_segments", "categories_sizes",
             "id", "tree_param"}  # fmt: skip


def canonical(path: Path, expected: Expected) -> bytes:
    """The model at ``path`` checked and re-encoded; raises UnsafeModelError naming the cause."""
    raw = read_model_file(path)
    try:
        model = json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        return json.dumps(_model(model, expected), separators=(",", ":"), allow_nan=False).encode()
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnsafeModelError(f"{path}: not an XGBoost JSON model ({error})") from None
    except RecursionError:
        raise UnsafeModelError(f"{path}: not an XGBoost JSON model (nested too deep)") from None
    except (Refused, ValueError, KeyError, TypeError) as error:
        cause = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        raise UnsafeModelError(f"{path}: refusing the XGBoost model: {cause}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Refused(
            f"a key appears twice in one object ({sorted(k for k in keys if keys.count(k) > 1)[0]!r})"
        )
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise Refused(f"{name} is not valid JSON")


def _object(value: Any, what: str, keys: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, dict) or not keys <= set(value) <= keys | optional:
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise Refused(f"{what} must have the keys {sorted(keys)}, found {found}")
    return value


def _number_text(value: Any, what: str, exactly: str | None = None) -> str:
    if not isinstance(value, str) or not NUMBER.match(value) or (exactly is not None and value != exactly):
        raise Refused(f"{what} is {value!r}" + (f", expected {exactly!r}" if exactly is not None else ""))
    return value


def _model(model: Any, expected: Expected) -> dict[str, Any]:
    top = _object(model, "the model", {"learner", "version"})
    version = ints(top["version"], "version", length=3)
    learner = _object(
        top["learner"],
        "learner",
        {"gradient_booster", "learner_model_param", "objective"},
        frozenset({"attributes", "feature_names", "feature_types"}),
    )
    groups = expected.n_classes if expected.task == "multiclass" else 1
    return {
        "learner": {
            "attributes": {},
            "feature_names": [],
            "feature_types": _feature_types(learner.get("feature_types", []), expected),
            "gradient_booster": _booster(learner["gradient_booster"], expected, groups),
            "learner_model_param": _model_param(learner["learner_model_param"], expected, groups),
            "objective": _objective(learner["objective"], expected),
        },
        "version": version.tolist(),
    }


def _feature_types(types: Any, expected: Expected) -> list[str]:
    if types == []:
        return []
    want = ["c" if i in expected.categories else "q" for i in range(expected.n_features)]
    if types != want:
        raise Refused(f"feature_types {str(types)[:80]} are not the metadata's {want}")
    return want


def _model_param(param: Any, expected: Expected, groups: int) -> dict[str, str]:
    param = _object(param, "learner_model_param", {"base_score", "num_class", "num_feature"},
                    frozenset({"boost_from_average", "num_target"}))  # fmt: skip
    num_class = str(expected.n_classes) if expected.task == "multiclass" else "0"
    out = {
        "base_score": param["base_score"],
        "num_class": _number_text(param["num_class"], "num_class", num_class),
        "num_feature": _number_text(param["num_feature"], "num_feature", str(expected.n_features)),
    }
    base = param["base_score"]
    if not isinstance(base, str) or len(base) > 64 * groups or not BASE_SCORE.match(base):
        raise Refused(f"base_score {str(base)[:80]!r} is not a number or a list of numbers")
    scores = floats([float(x) for x in base.strip("[]").split(",")], "base_score")
    if len(scores) not in (1, groups):
        raise Refused(f"base_score has {len(scores)} values, expected 1 or {groups}")
    if "boost_from_average" in param:
        out["boost_from_average"] = _number_text(param["boost_from_average"], "boost_from_average")
    if "num_target" in param:
        out["num_target"] = _number_text(param["num_target"], "num_target", "1")
    return out


def _objective(objective: Any, expected: Expected) -> dict[str, Any]:
    if not isinstance(objective, dict) or objective.get("name") not in OBJECTIVES[expected.task]:
        name = objective.get("name") if isinstance(objective, dict) else objective
        raise Refused(
            f"objective {str(name)[:60]!r}: a {expected.task} model serves "
            f"{sorted(OBJECTIVES[expected.task])} (xgboost_json.OBJECTIVES)"
        )
    out: dict[str, Any] = {"name": objective["name"]}
    for key, params in objective.items():
        if key == "name":
            continue
        if not isinstance(params, dict) or not key.endswith("_param"):
            raise Refused(f"objective field {key!r} is not a parameter block")
        out[key] = {
            str(k): v if v in WORD_PARAMETERS.get(k, ()) else _number_text(v, f"objective {key}.{k}")
            for k, v in params.items()
        }
    softmax = out.get("softmax_multiclass_param", {}).get("num_class")
    if softmax is not None and softmax != str(expected.n_classes):
        raise Refused(f"objective num_class {softmax} is not the metadata's {expected.n_classes}")
    return out


def _booster(booster: Any, expected: Expected, groups: int) -> dict[str, Any]:
    booster = _object(booster, "gradient_booster", {"model", "name"})
    if booster["name"] != "gbtree":
        raise Refused(f"gradient_booster {str(booster['name'])[:40]!r}: only gbtree is served")
    model = _object(booster["model"], "gbtree model", {"gbtree_model_param", "iteration_indptr", "tree_info", "trees"},
                    frozenset({"cats"}))  # fmt: skip
    if model.get("cats", EMPTY_CATS) != EMPTY_CATS:
        raise Refused("a category encoder is stored in the model; this project encodes categories itself")
    trees = model["trees"]
    if not isinstance(trees, list) or not 0 < len(trees) <= MAX_TREES:
        raise Refused(f"trees must be a list of 1 to {MAX_TREES:,} trees")
    n = len(trees)
    param = _object(model["gbtree_model_param"], "gbtree_model_param", {"num_parallel_tree", "num_trees"})
    _number_text(param["num_trees"], "num_trees", str(n))
    _number_text(param["num_parallel_tree"], "num_parallel_tree", "1")
    tree_info = ints(model["tree_info"], "tree_info", length=n, high=groups)
    indptr = ints(model["iteration_indptr"], "iteration_indptr", high=n + 1)
    if indptr.size < 1 or indptr[0] != 0 or indptr[-1] != n or (np.diff(indptr) < 0).any():
        raise Refused("iteration_indptr must rise from 0 to the number of trees")
    out = {
        "gbtree_model_param": {"num_parallel_tree": "1", "num_trees": str(n)},
        "iteration_indptr": indptr.tolist(),
        "tree_info": tree_info.tolist(),
        "trees": [_tree(tree, i, expected) for i, tree in enumerate(trees)],
    }
    if "cats" in model:
        out["cats"] = EMPTY_CATS
    return {"model": out, "name": "gbtree"}


def _tree(tree: Any, index: int, expected: Expected) -> dict[str, Any]:
    what = f"tree {index}"
    tree = _object(tree, what, TREE_KEYS)
    param = _object(tree["tree_param"], f"{what} tree_param",
                    {"num_deleted", "num_feature", "num_nodes", "size_leaf_vector"})  # fmt: skip
    nodes = int(_number_text(param["num_nodes"], f"{what} num_nodes"))
    if not 0 < nodes <= MAX_NODES:
        raise Refused(f"{what} has {nodes} nodes (1 to {MAX_NODES:,})")
    _number_text(param["num_deleted"], f"{what} num_deleted", "0")
    _number_text(param["num_feature"], f"{what} num_feature", str(expected.n_features))
    _number_text(param["size_leaf_vector"], f"{what} size_leaf_vector", "1")
    if type(tree["id"]) is not int or tree["id"] != index:
        raise Refused(f"{what} has id {str(tree['id'])[:20]}")
    left = ints(tree["left_children"], f"{what} left_children", nodes, low=-1, high=nodes)
    right = ints(tree["right_children"], f"{what} right_children", nodes, low=-1, high=nodes)
    binary_tree(left, right, what)
    parents = ints(tree["parents"], f"{what} parents", nodes, high=ROOT_PARENT + 1)
    interior = np.flatnonzero(left >= 0)
    if parents[0] != ROOT_PARENT or not (
        np.array_equal(parents[left[interior]], interior)
        and np.array_equal(parents[right[interior]], interior)
    ):
        raise Refused(f"{what} parents do not match its children")
    split_type = ints(tree["split_type"], f"{what} split_type", nodes, high=2)
    out = {
        "base_weights": floats(tree["base_weights"], f"{what} base_weights", nodes).tolist(),
        "default_left": ints(tree["default_left"], f"{what} default_left", nodes, high=2).tolist(),
        "id": index,
        "left_children": left.tolist(),
        "loss_changes": floats(tree["loss_changes"], f"{what} loss_changes", nodes).tolist(),
        "parents": parents.tolist(),
        "right_children": right.tolist(),
        "split_conditions": floats(tree["split_conditions"], f"{what} split_conditions", nodes).tolist(),
        "split_indices": ints(
            tree["split_indices"], f"{what} split_indices", nodes, high=expected.n_features
        ).tolist(),
        "split_type": split_type.tolist(),
        "sum_hessian": floats(tree["sum_hessian"], f"{what} sum_hessian", nodes).tolist(),
        "tree_param": {
            "num_deleted": "0",
            "num_feature": str(expected.n_features),
            "num_nodes": str(nodes),
            "size_leaf_vector": "1",
        },
    }
    out.update(_categories(tree, what, split_type, out["split_indices"], expected))
    return out


def _categories(
    tree: dict[str, Any], what: str, split_type: np.ndarray, features: list[int], expected: Expected
) -> dict[str, list[int]]:
    """Categorical splits: each lists codes 0..n-1 of its feature's categories (XGBoost sizes a
    bitset by the largest code, so an unchecked code allocates without bound)."""
    categorical = np.flatnonzero(split_type == 1)
    nodes = ints(tree["categories_nodes"], f"{what} categories_nodes", len(categorical), high=len(split_type))
    if not np.array_equal(nodes, categorical):
        raise Refused(f"{what} categories_nodes are not its categorical splits")
    codes = ints(tree["categories"], f"{what} categories")
    segments = ints(
        tree["categories_segments"], f"{what} categories_segments", len(nodes), high=len(codes) + 1
    )
    sizes = ints(tree["categories_sizes"], f"{what} categories_sizes", len(nodes), high=len(codes) + 1)
    for node, start, size in zip(nodes.tolist(), segments.tolist(), sizes.tolist(), strict=True):
        feature = features[node]
        if feature not in expected.categories or start + size > len(codes):
            raise Refused(
                f"{what} node {node}: a categorical split on a numeric feature, or codes out of range"
            )
        chosen = codes[start : start + size]
        if chosen.size and (chosen.min() < 0 or chosen.max() >= max(expected.categories[feature], 1)):
            raise Refused(
                f"{what} node {node}: category codes beyond the feature's {expected.categories[feature]}"
            )
    return {
        "categories": codes.tolist(),
        "categories_nodes": nodes.tolist(),
        "categories_segments": segments.tolist(),
        "categories_sizes": sizes.tolist(),
    }
