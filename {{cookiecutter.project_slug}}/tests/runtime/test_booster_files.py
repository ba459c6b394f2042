"""Crafted XGBoost and LightGBM files never reach the library's parser (issue 22).

The review crashed, hung, read out of bounds and allocated without bound in both libraries with
hand-edited trees, and served negative "probabilities" from ``objective=custom``. Each attack class
is rebuilt here from a real trained model, then loaded by the project's loader
(``Predictor.load``, what evaluate and serving use without a compiled copy) in a child process
under memory and time limits: each must end in one line naming the file and the cause. Runs in the
booster bakes (``settings.MODEL_LIBRARY``); the checks' rules are in xgboost_json / lightgbm_text.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sandbox import load_in_child

from {{ cookiecutter.package_name }} import model, model_files
from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.settings import MODEL_LIBRARY, PROBLEM_TYPE

BOOSTERS = ("xgboost", "lightgbm")
pytestmark = pytest.mark.skipif(
    MODEL_LIBRARY not in BOOSTERS, reason="booster model files: the booster bakes"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A model folder of this bake's booster, with categorical splits (no compiled copy: the
    native file is what gets loaded)."""
    import datasets

    train, _ = datasets.for_problem(PROBLEM_TYPE)
    folder = tmp_path_factory.mktemp("booster") / "model"
    Predictor.fit(train, {}).save(folder)
    return folder


@pytest.fixture
def folder(trained, tmp_path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(trained, copy)
    return copy


def test_the_untouched_model_loads_in_the_limited_child_and_answers_as_before(trained):
    outcome = load_in_child("native", trained)
    assert outcome.returncode == 0 and outcome.stdout.startswith("ANSWER "), outcome.stderr[-2000:]


# ---- XGBoost ------------------------------------------------------------------------------------

Mutation = Callable[[dict], None]


def _trees(doc: dict) -> list[dict]:
    return doc["learner"]["gradient_booster"]["model"]["trees"]


def _split_tree(doc: dict, categorical: bool = False) -> dict:
    """The first tree with at least two splits (or a categorical one)."""
    return next(
        t
        for t in _trees(doc)
        if (t["categories_nodes"] if categorical else sum(c != -1 for c in t["left_children"]) >= 2)
    )


def _set(path: tuple, value: object) -> Mutation:
    def change(doc: dict) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _tree_field(field: str, index: int, value: object, categorical: bool = False) -> Mutation:
    def change(doc: dict) -> None:
        _split_tree(doc, categorical)[field][index] = value

    return change


def _second_split(doc: dict) -> int:
    tree = _split_tree(doc)
    return next(i for i in range(1, len(tree["left_children"])) if tree["left_children"][i] != -1)


def _cycle(doc: dict) -> None:
    """The second split's left child is the root: a walk from the root never reaches a leaf."""
    tree = _split_tree(doc)
    tree["left_children"][_second_split(doc)] = 0


def _shared_child(doc: dict) -> None:
    tree = _split_tree(doc)
    tree["right_children"][0] = tree["left_children"][0]


def _huge_category(doc: dict) -> None:
    tree = _split_tree(doc, categorical=True)
    tree["categories"][tree["categories_segments"][0]] = 1 << 30  # a bitset of 2^30 bits


def _model_param(key: str, value: str) -> Mutation:
    return _set(("learner", "learner_model_param", key), value)


XGBOOST_ATTACKS: dict[str, tuple[Mutation, str]] = {
    "node-index-out-of-range": (_tree_field("left_children", 0, 1_000_000), "left_children holds"),
    "negative-node-index": (_tree_field("right_children", 0, -7), "right_children holds -7"),
    "self-referencing-child": (_tree_field("left_children", 0, 0), "not after its parent (a cycle)"),
    "child-cycle": (_cycle, "not after its parent (a cycle)"),
    "shared-child": (_shared_child, "not one tree"),
    "feature-index-out-of-range": (_tree_field("split_indices", 0, 1_000_000), "split_indices holds"),
    "negative-feature-index": (_tree_field("split_indices", 0, -1), "split_indices holds -1"),
    "huge-class-count": (_model_param("num_class", "1000000000"), "num_class is '1000000000'"),
    "huge-node-count": (
        lambda doc: _split_tree(doc)["tree_param"].update(num_nodes="2000000000"),
        "has 2000000000 nodes",
    ),
    "feature-count": (_model_param("num_feature", "100000"), "num_feature is '100000'"),
    "huge-category-code": (_huge_category, "category codes beyond"),
    "unknown-objective": (_set(("learner", "objective", "name"), "survival:cox"), "objective 'survival:cox'"),
    "not-a-number": (_tree_field("split_conditions", 0, "NaN"), "split_conditions must be a list of numbers"),
    "dart-booster": (_set(("learner", "gradient_booster", "name"), "dart"), "only gbtree is served"),
}


@pytest.mark.skipif(MODEL_LIBRARY != "xgboost", reason="XGBoost's model file")
@pytest.mark.parametrize("attack", sorted(XGBOOST_ATTACKS))
def test_crafted_xgboost_trees_are_refused_in_a_limited_child(folder, attack):
    mutate, cause = XGBOOST_ATTACKS[attack]
    path = folder / model.MODEL_FILE
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    load_in_child("native", folder).assert_refused(f"{path}: refusing the XGBoost model: ", cause)


@pytest.mark.skipif(MODEL_LIBRARY != "xgboost", reason="XGBoost's model file")
@pytest.mark.parametrize(
    ("text", "cause"),
    [
        (lambda t: t.replace('"learner":', '"learner":{"x":1},"learner":', 1), "a key appears twice"),
        (lambda t: '{"learner":' + "[" * 200_000 + "]" * 200_000 + "}", "nested too deep"),
        (lambda t: "{L\x07learner{" + t, "not an XGBoost JSON model"),  # UBJSON-looking bytes
        (lambda t: t.replace('"split_conditions":[', '"split_conditions":[NaN,', 1), "NaN is not valid JSON"),
    ],
    ids=["duplicate-key", "parser-stack-overflow", "ubjson", "nan-constant"],
)
def test_malformed_xgboost_json_is_refused_in_a_limited_child(folder, text, cause):
    path = folder / model.MODEL_FILE
    path.write_text(text(path.read_text()))
    load_in_child("native", folder).assert_refused(f"{path}: ", cause)


# ---- LightGBM -----------------------------------------------------------------------------------


def _tree_block(text: str, minimum_leaves: int = 3, categorical: bool = False) -> tuple[int, int]:
    """(start, end) of the first tree block with enough leaves (or a categorical split)."""
    for match in re.finditer(r"Tree=\d+\n(.*?)\n\n", text, flags=re.S):
        block = match.group(1)
        leaves = int(re.search(r"num_leaves=(\d+)", block).group(1))
        if ("num_cat=0" not in block) if categorical else leaves >= minimum_leaves:
            return match.start(1), match.end(1)
    raise AssertionError("no such tree in the trained model")


def _in_tree(
    key: str, change: Callable[[list[str]], list[str]], categorical: bool = False
) -> Callable[[str], str]:
    """Rewrite one key of one tree, its values as a list of tokens."""

    def edit(text: str) -> str:
        start, end = _tree_block(text, categorical=categorical)
        block = text[start:end]
        old = re.search(rf"^{key}=(.*)$", block, flags=re.M)
        new = block[: old.start(1)] + " ".join(change(old.group(1).split(" "))) + block[old.end(1) :]
        return text[:start] + new + text[end:]

    return edit


def _at(index: int, value: str) -> Callable[[list[str]], list[str]]:
    return lambda values: [value if i == index else v for i, v in enumerate(values)]


def _header(key: str, value: str) -> Callable[[str], str]:
    return lambda text: re.sub(rf"^{key}=.*$", f"{key}={value}", text, count=1, flags=re.M)


LIGHTGBM_ATTACKS: dict[str, tuple[Callable[[str], str], str]] = {
    "child-cycle": (_in_tree("right_child", _at(1, "0")), "not after its parent (a cycle)"),
    "self-referencing-child": (_in_tree("left_child", _at(0, "0")), "not after its parent (a cycle)"),
    "leaf-index-out-of-range": (_in_tree("left_child", _at(0, "-100")), "outside"),
    "negative-feature-index": (_in_tree("split_feature", _at(0, "-1")), "split_feature holds -1"),
    "feature-index-out-of-range": (_in_tree("split_feature", _at(0, "100000")), "split_feature holds"),
    "huge-class-count": (_header("num_class", "1000000000"), "num_class='1000000000'"),
    "custom-objective": (_header("objective", "custom"), "objective 'custom'"),
    "arrays-shorter-than-num-leaves": (_in_tree("num_leaves", _at(0, "100000")), "entries, expected"),
    "bitset-out-of-range": (
        _in_tree("cat_boundaries", _at(1, "1000000"), categorical=True),
        "cat_boundaries",
    ),
    "categorical-threshold": (
        _in_tree("threshold", lambda v: ["7"] * len(v), categorical=True),
        "names no bitset",
    ),
    "decision-type": (_in_tree("decision_type", _at(0, "127")), "decision_type holds"),
    "not-a-number": (_in_tree("leaf_value", _at(0, "nan")), "leaf_value must be numbers"),
    "duplicate-key": (lambda t: t.replace("num_cat=0", "num_cat=0\nnum_cat=0", 1), "num_cat appears twice"),
    "no-end-of-trees": (lambda t: t.replace("end of trees", ""), "no 'end of trees' line"),
    "linear-tree": (_in_tree("is_linear", _at(0, "1")), "linear trees are not served"),
}


@pytest.mark.skipif(MODEL_LIBRARY != "lightgbm", reason="LightGBM's model file")
@pytest.mark.parametrize("attack", sorted(LIGHTGBM_ATTACKS))
def test_crafted_lightgbm_trees_are_refused_in_a_limited_child(folder, attack):
    mutate, cause = LIGHTGBM_ATTACKS[attack]
    path = folder / model.MODEL_FILE
    path.write_text(mutate(path.read_text()))
    load_in_child("native", folder).assert_refused(f"{path}: ", cause)


@pytest.mark.skipif(MODEL_LIBRARY != "lightgbm", reason="LightGBM's model file")
def test_lightgbm_reads_only_the_checked_lines(trained):
    """The rewrite keeps the header and trees; offsets, parameters and pandas_categorical are dropped."""
    from {{ cookiecutter.package_name }} import lightgbm_text

    original = (trained / model.MODEL_FILE).read_text()
    metadata = json.loads((trained / "metadata.json").read_text())
    checked = lightgbm_text.canonical(trained / model.MODEL_FILE, model_files.Expected.of(metadata))
    assert "tree_sizes=" in original and "parameters:" in original
    assert "tree_sizes=" not in checked and "parameters:" not in checked
    assert checked.count("\nTree=") == original.count("\nTree=")


@pytest.mark.skipif(MODEL_LIBRARY != "xgboost", reason="XGBoost's model file")
def test_xgboost_reads_the_checked_rewrite(trained):
    from {{ cookiecutter.package_name }} import xgboost_json

    metadata = json.loads((trained / "metadata.json").read_text())
    doc = json.loads((trained / model.MODEL_FILE).read_text())
    doc["learner"]["attributes"] = {"note": "x" * 100}
    (trained.parent / "edited.json").write_text(json.dumps(doc))
    checked = json.loads(
        xgboost_json.canonical(trained.parent / "edited.json", model_files.Expected.of(metadata))
    )
    assert checked["learner"]["attributes"] == {} and _trees(checked) == _trees(
        json.loads((trained / model.MODEL_FILE).read_text())
    )


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_task_loads_through_the_check_and_answers_as_trained(tmp_path, task):
    """Whatever this bake's problem type, the check passes what the library writes for each task
    (missing values: LightGBM writes threshold=inf; categorical splits; two classes as binary)."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    X[:, 4] = rng.integers(0, 4, 300)
    X[::7, 0] = np.nan
    y = {"binary": X[:, 1] > 0, "multiclass": rng.integers(0, 4, 300), "regression": X[:, 1] * 100 + 3}[task]
    hp = {p.name: p.default for p in model.HYPERPARAMETERS}
    estimator = model.build_estimator(hp, task, [4], 5).fit(X, np.asarray(y, dtype=float))
    metadata = {
        "model_file": model.save_native(estimator, tmp_path),
        "feature_names": list("abcde"),
        "feature_kinds": ["numeric"] * 4 + ["categorical"],
        "categories": {"e": ["0", "1", "2", "3"]},
        "problem_type": task,
        "classes": [] if task == "regression" else sorted(set(np.asarray(y, dtype=float).tolist())),
    }
    loaded = model.load_native(tmp_path, metadata)
    if task == "regression":
        assert np.array_equal(loaded.predict(X), estimator.predict(X))
    else:
        assert np.max(np.abs(loaded.predict_proba(X) - estimator.predict_proba(X))) < 1e-7
