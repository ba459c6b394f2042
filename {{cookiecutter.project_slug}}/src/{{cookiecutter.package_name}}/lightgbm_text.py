"""LightGBM's text model checked whole, then rewritten canonically, before LightGBM parses a byte.

LightGBM's reader trusts the trees it reads: a child cycle loops forever, malformed trees crash,
a negative feature index reads out of bounds, a huge num_class allocates without bound and
``objective=custom`` serves raw scores as "probabilities" (issue 22). The format is lines of
``key=value`` (a header, then one block per tree, then ``end of trees``; layout in LightGBM's
``gbdt_model_text.cpp`` and ``tree.cpp``). No other reader exists, so the rule is: every line
LightGBM will see is one this module checked. ``canonical`` returns only the checked header keys
and tree blocks, each value matched by a strict pattern and range-checked against metadata.json
(``model_files.Expected``); the sections after the trees (importances, parameters,
``pandas_categorical``, which LightGBM's Python side decodes as JSON) are dropped, and
``tree_sizes`` (offsets LightGBM would jump by) is left out, so LightGBM finds each tree by its line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .model_files import Expected, UnsafeModelError, read_model_file
from .tree_checks import Refused, binary_tree, floats, ints

# What this project's estimators write (model.build_estimator): the objective's name and the
# parameters LightGBM appends to it. A custom objective serves raw scores: never.
OBJECTIVES = {
    "binary": "binary",
    "multiclass": "multiclass",
    "regression": "regression",
    "ranking": "lambdarank",  # LGBMRanker (model.py): one score per row
}
MAX_TREES, MAX_LEAVES = 1_000_000, 131_072  # LightGBM's own num_leaves limit
NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
NUMBERS = re.compile(rf"^{NUMBER}(?: {NUMBER})*$")
THRESHOLDS = re.compile(rf"^(?:{NUMBER}|-?inf)(?: (?:{NUMBER}|-?inf))*$")
INTEGERS = re.compile(r"^-?\d+(?: -?\d+)*$")
FEATURE_INFO = re.compile(rf"^(?:none|\[{NUMBER}:{NUMBER}\]|-?\d+(?::-?\d+)*)$")
NAME = re.compile(r"^[^\s=]+$")
HEADER = ("version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx",
          "objective", "feature_names", "feature_infos")  # fmt: skip
OPTIONAL_HEADER = {"tree_sizes"}  # checked for shape, not written
TREE_NUMBERS = ("split_gain", "threshold", "leaf_value", "leaf_weight", "internal_value",
                "internal_weight", "shrinkage")  # fmt: skip
TREE_INTEGERS = ("num_leaves", "num_cat", "split_feature", "decision_type", "left_child", "right_child",
                 "leaf_count", "internal_count", "is_linear", "cat_boundaries", "cat_threshold")  # fmt: skip
TREE_ORDER = ("num_leaves", "num_cat", "split_feature", "split_gain", "threshold", "decision_type",
              "left_child", "right_child", "leaf_value", "leaf_weight", "leaf_count", "internal_value",
              "internal_weight", "internal_count", "cat_boundaries", "cat_threshold", "is_linear", "shrinkage")  # fmt: skip


def canonical(path: Path, expected: Expected) -> str:
    """The model at ``path`` checked and re-written; raises UnsafeModelError naming the cause."""
    raw = read_model_file(path)
    try:
        text = raw.decode("ascii")
        header, trees = _sections(text.replace("\r\n", "\n").split("\n"))
        lines = ["tree", *_header(header, expected, len(trees)), ""]
        for index, tree in enumerate(trees):
            lines += [f"Tree={index}", *_tree(tree, index, expected), ""]
        return "\n".join([*lines, "", "end of trees", "", "pandas_categorical:null", ""])
    except UnicodeDecodeError:
        raise UnsafeModelError(f"{path}: not a LightGBM text model (not ASCII text)") from None
    except Refused as error:
        raise UnsafeModelError(f"{path}: refusing the LightGBM model: {error}") from None


def _pairs(lines: list[str], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in lines:
        key, equals, value = line.partition("=")
        if not equals or not NAME.match(key):
            raise Refused(f"{what}: line {line[:60]!r} is not key=value")
        if key in pairs:
            raise Refused(f"{what}: {key} appears twice")
        pairs[key] = value
    return pairs


def _sections(lines: list[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The header's and each tree's key=value pairs, up to ``end of trees``; nothing else is kept."""
    if not lines or lines[0] != "tree":
        raise Refused("the first line is not 'tree'")
    blocks: list[list[str]] = [[]]
    for line in lines[1:]:
        if line == "end of trees":
            break
        if line.startswith("Tree="):
            if len(blocks) > MAX_TREES:
                raise Refused(f"more than {MAX_TREES:,} trees")
            blocks.append([line])
        elif line:
            blocks[-1].append(line)
    else:
        raise Refused("no 'end of trees' line")
    header = _pairs(blocks[0], "header")
    trees = []
    for index, block in enumerate(blocks[1:]):
        if block[0] != f"Tree={index}":
            raise Refused(f"tree {index} is headed {block[0][:30]!r}")
        trees.append(_pairs(block[1:], f"tree {index}"))
    return header, trees


def _header(header: dict[str, str], expected: Expected, n_trees: int) -> list[str]:
    unknown = set(header) - set(HEADER) - OPTIONAL_HEADER
    missing = set(HEADER) - set(header)
    if unknown or missing:
        raise Refused(f"header keys: unknown {sorted(unknown)[:5]}, missing {sorted(missing)}")
    per_iteration = expected.n_classes if expected.task == "multiclass" else 1
    want = {
        "version": "v4",
        "num_class": str(per_iteration),
        "num_tree_per_iteration": str(per_iteration),
        "label_index": "0",
        "max_feature_idx": str(expected.n_features - 1),
    }
    for key, value in want.items():
        if header[key] != value:
            raise Refused(f"{key}={header[key][:40]!r}, expected {value!r} (metadata.json)")
    if not n_trees or n_trees % per_iteration:
        raise Refused(f"{n_trees} trees is not a positive multiple of {per_iteration} per iteration")
    _objective(header["objective"], expected)
    for key, pattern in (("feature_names", NAME), ("feature_infos", FEATURE_INFO)):
        values = header[key].split(" ")
        if len(values) != expected.n_features or not all(pattern.match(v) for v in values):
            raise Refused(f"{key} must hold {expected.n_features} well-formed entries")
    if "tree_sizes" in header:
        ints(_integers(header["tree_sizes"], "tree_sizes"), "tree_sizes", length=n_trees, low=1)
    return [f"{key}={header[key]}" for key in HEADER]


def _objective(value: str, expected: Expected) -> None:
    """The objective this project trains for the problem type, with LightGBM's own parameters."""
    name, *parameters = value.split(" ")
    if name != OBJECTIVES[expected.task]:
        raise Refused(
            f"objective {name[:40]!r}: a {expected.task} model serves "
            f"{OBJECTIVES[expected.task]!r} (lightgbm_text.OBJECTIVES)"
        )
    allowed = {"binary": {"sigmoid"}, "multiclass": {"num_class"}, "regression": set(), "ranking": set()}[
        expected.task
    ]
    seen = dict(p.partition(":")[::2] for p in parameters)
    if set(seen) != allowed or len(seen) != len(parameters):
        raise Refused(f"objective parameters {parameters[:4]}: expected {sorted(allowed)}")
    if "num_class" in seen and seen["num_class"] != str(expected.n_classes):
        raise Refused(
            f"objective num_class:{seen['num_class'][:20]} is not the metadata's {expected.n_classes}"
        )
    if "sigmoid" in seen:
        sigmoid = floats([_number(seen["sigmoid"], "sigmoid")], "objective sigmoid")
        if sigmoid[0] <= 0:
            raise Refused("objective sigmoid must be positive")


def _number(text: str, what: str) -> float:
    if not re.fullmatch(NUMBER, text):
        raise Refused(f"{what} {text[:30]!r} is not a number")
    return float(text)


def _integers(text: str, what: str) -> list[int]:
    if text and not INTEGERS.match(text):
        raise Refused(f"{what} must be integers separated by spaces")
    return [int(v) for v in text.split(" ")] if text else []


def _numbers(text: str, what: str, pattern: re.Pattern[str] = NUMBERS) -> list[float]:
    if text and not pattern.match(text):
        raise Refused(f"{what} must be numbers separated by spaces")
    return [float(v) for v in text.split(" ")] if text else []


def _tree(tree: dict[str, str], index: int, expected: Expected) -> list[str]:
    what = f"tree {index}"
    needed = set(TREE_ORDER) - {"cat_boundaries", "cat_threshold"}
    if set(tree) - set(TREE_ORDER) or needed - set(tree):
        raise Refused(
            f"{what} keys: unknown {sorted(set(tree) - set(TREE_ORDER))[:5]}, missing {sorted(needed - set(tree))}"
        )
    leaves = ints(
        _integers(tree["num_leaves"], f"{what} num_leaves"), f"{what} num_leaves", 1, 1, MAX_LEAVES + 1
    )[0]
    n = int(leaves) - 1  # interior nodes
    num_cat = int(ints(_integers(tree["num_cat"], f"{what} num_cat"), f"{what} num_cat", 1, 0, n + 1)[0])
    ints(
        _integers(tree["is_linear"], f"{what} is_linear"),
        f"{what} is_linear (linear trees are not served)",
        1,
        0,
        1,
    )
    for key in ("split_gain", "internal_value", "internal_weight"):
        floats(_numbers(tree[key], f"{what} {key}"), f"{what} {key}", n)
    # A split that sends every number one way and missing values the other has threshold inf.
    floats(
        _numbers(tree["threshold"], f"{what} threshold", THRESHOLDS), f"{what} threshold", n, infinite=True
    )
    floats(_numbers(tree["leaf_value"], f"{what} leaf_value"), f"{what} leaf_value", int(leaves))
    weights = _numbers(tree["leaf_weight"], f"{what} leaf_weight")  # a one-leaf tree writes none
    floats(weights, f"{what} leaf_weight", 0 if n == 0 and not weights else int(leaves))
    floats(_numbers(tree["shrinkage"], f"{what} shrinkage"), f"{what} shrinkage", 1)
    ints(_integers(tree["leaf_count"], f"{what} leaf_count"), f"{what} leaf_count", int(leaves))
    ints(_integers(tree["internal_count"], f"{what} internal_count"), f"{what} internal_count", n)
    features = ints(_integers(tree["split_feature"], f"{what} split_feature"), f"{what} split_feature", n,
                    high=expected.n_features)  # fmt: skip
    # decision_type bits: 1 categorical, 2 default left, 4-8 missing type (0 none, 1 zero, 2 NaN).
    decisions = ints(
        _integers(tree["decision_type"], f"{what} decision_type"), f"{what} decision_type", n, high=12
    )
    left = ints(
        _integers(tree["left_child"], f"{what} left_child"), f"{what} left_child", n, low=-int(leaves), high=n
    )
    right = ints(
        _integers(tree["right_child"], f"{what} right_child"),
        f"{what} right_child",
        n,
        low=-int(leaves),
        high=n,
    )
    if n:
        binary_tree(left, right, what, leaves=int(leaves))
    _categorical(tree, what, n, num_cat, decisions, features, expected)
    return [f"{key}={tree[key]}" for key in TREE_ORDER if key in tree]


def _categorical(
    tree: dict[str, str], what: str, n: int, num_cat: int, decisions: np.ndarray, features: np.ndarray,
    expected: Expected,
) -> None:  # fmt: skip
    """Categorical splits: each names a bitset of cat_threshold words through cat_boundaries."""
    categorical = np.flatnonzero(decisions & 1)
    if not num_cat:
        if categorical.size or "cat_boundaries" in tree or "cat_threshold" in tree:
            raise Refused(f"{what}: categorical splits or bitsets with num_cat=0")
        return
    words = ints(_integers(tree.get("cat_threshold", ""), f"{what} cat_threshold"), f"{what} cat_threshold",
                 high=1 << 32)  # fmt: skip
    bounds = ints(_integers(tree.get("cat_boundaries", ""), f"{what} cat_boundaries"), f"{what} cat_boundaries",
                  num_cat + 1, high=len(words) + 1)  # fmt: skip
    if bounds[0] != 0 or bounds[-1] != len(words) or (np.diff(bounds) < 0).any():
        raise Refused(f"{what}: cat_boundaries must rise from 0 to the number of cat_threshold words")
    thresholds = np.asarray(_numbers(tree["threshold"], f"{what} threshold", THRESHOLDS))[categorical]
    if (thresholds != np.floor(thresholds)).any() or (thresholds < 0).any() or (thresholds >= num_cat).any():
        raise Refused(f"{what}: a categorical split names no bitset 0..{num_cat - 1}")
    if not set(features[categorical].tolist()) <= set(expected.categories):
        raise Refused(f"{what}: a categorical split on a numeric feature")
