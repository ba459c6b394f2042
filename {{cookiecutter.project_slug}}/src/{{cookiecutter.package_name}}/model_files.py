"""Reading native model files as data, never as code: every check runs before a library parses them.

- skops (scikit-learn): a zip of ``schema.json`` and ``.npy`` arrays. Its schema names every
  type to import and how to build it (the node's ``__loader__``). The file is refused unless every
  member name, every loader and every ``module.Class`` is on an exact allow-list; only then is
  ``skops.io.load`` called, trusting exactly those types. skops' own default trust list (any
  scikit-learn estimator, ``builtins`` functions behind a ``ReduceNode``) is never relied on,
  since a tampered file could otherwise import and call whatever it names:
  https://skops.readthedocs.io/en/stable/persistence.html#security
  The archive's sizes are bounded from its central directory before anything is inflated, and
  ``schema.json`` (parsed whole into Python objects, ~25x its size) to ``MAX_SKOPS_SCHEMA_BYTES``.
- XGBoost (JSON) and LightGBM (text): the library parsers crash, hang, read out of bounds or
  allocate without bound on crafted trees (issue 22), so the whole model is checked first against
  metadata.json (``Expected``) and rewritten canonically; the library only parses that rewrite
  (``xgboost_json``, ``lightgbm_text``). Serving and evaluate read neither when a verified
  compiled copy exists (serving/compiled.py).
No pickle anywhere: numpy arrays are read with ``allow_pickle=False`` (skops does so itself).

Thread pools are pinned to one thread when a model is loaded (``pin_threads``): a serving worker
answers one request at a time, and an OpenMP pool started before gunicorn forks hangs the workers.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .feature_layout import Layout

# A model file larger than this is refused before it is read (the sample's is ~10 KB).
MAX_MODEL_BYTES = 512 * 1024 * 1024
# skops' schema.json is parsed whole: a 61 KB zip of ~60 MB of dense JSON drove memory to 1.5 GB
# (issue 22). Arrays live in the .npy members, but every tree of a forest adds ~21 KB of schema
# and 5 members: the default pipeline's is ~20 KB, a 500-tree random forest's 10.5 MB, and one
# at the member limit (~2,000 trees) ~42 MB. The schema limit follows the member limit.
MAX_SKOPS_MEMBERS = 10_000
MAX_SKOPS_SCHEMA_BYTES = 64 * 1024 * 1024
# skops loaders that only rebuild data: containers, arrays, dtypes, plain objects set from a dict.
# Left out unless model.SKOPS_NODE_KINDS declares them: ReduceNode/LossNode (call a constructor
# with arguments), FunctionNode, PartialNode (return callables), and others. Declared or not, every
# class and function a node names must be in model.SKOPS_TYPES, exactly: a declared FunctionNode
# can only name the functions listed there (issue 23: HistGradientBoosting* needs check_array).
SKOPS_LOADERS = frozenset(
    {
        "CachedNode",
        "DictNode",
        "DTypeNode",
        "JsonNode",
        "ListNode",
        "NdArrayNode",
        "ObjectNode",
        "SliceNode",
        "TupleNode",
        "TypeNode",
    }
)
SKOPS_MEMBER = re.compile(r"^(schema\.json|[0-9]+\.npy)$")
# skops' TreeNode always builds sklearn.tree._tree.Tree from data, whatever the file names, so it
# cannot call anything else. It is allowed only when that type is on the project's list (tree
# estimators): skops does not trust it by default because a crafted node array can crash the
# process at predict time (https://github.com/scikit-learn/scikit-learn/pull/34558).
TREE_TYPE = "sklearn.tree._tree.Tree"
# Loaders whose __reduce__ builds their own listed class (a tree, a loss), not a callable the file names.
CONSTRUCTING_LOADERS = frozenset({"TreeNode", "LossNode"})


class UnsafeModelError(ValueError):
    """A model file refused before any library read it; the message names the file and the cause."""


@dataclass(frozen=True)
class Expected:
    """What metadata.json says the native model is: ``n_features`` columns, ``n_classes`` classes
    (0 for regression) and, per categorical column index, its number of categories (codes 0..n-1).
    Booster files are checked against it before the library reads them."""

    n_features: int
    n_classes: int
    categories: dict[int, int]
    ranking: bool = False  # a ranker: one score per row, like regression, with a ranking objective

    @property
    def task(self) -> str:
        """What the booster was trained as: two classes make a binary model whatever the problem
        type says (XGBClassifier and LGBMClassifier pick the logistic objective for them)."""
        if self.ranking:
            return "ranking"
        return "regression" if not self.n_classes else "binary" if self.n_classes == 2 else "multiclass"

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> Expected:
        """From metadata already checked by ``predictor.read_metadata``."""
        layout = Layout.of_metadata(metadata)
        regression = metadata["problem_type"] in ("regression", "ranking")
        return cls(
            n_features=layout.width,
            n_classes=0 if regression else len(metadata["classes"]),
            categories={i: len(metadata["categories"][layout.plain[i]]) for i in layout.categorical},
            ranking=metadata["problem_type"] == "ranking",
        )


def check_size(path: Path) -> None:
    """A regular file (not a symlink) of at most MAX_MODEL_BYTES."""
    if path.is_symlink():
        raise UnsafeModelError(f"{path}: a symlink, not a model file")
    if not path.is_file():
        raise UnsafeModelError(f"{path}: no such model file")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise UnsafeModelError(f"{path}: {size} bytes is more than the limit of {MAX_MODEL_BYTES}")


def read_model_file(path: Path) -> bytes:
    """The bytes of a regular model file of at most MAX_MODEL_BYTES; a symlink is refused by the
    open itself (O_NOFOLLOW), so no check can be raced."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        raise UnsafeModelError(f"{path}: cannot be opened as a regular file ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeModelError(f"{path}: not a regular file")
        data = handle.read(MAX_MODEL_BYTES + 1)
    if len(data) > MAX_MODEL_BYTES:
        raise UnsafeModelError(f"{path}: more than the limit of {MAX_MODEL_BYTES} bytes")
    return data


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every dict of the schema tree (iteratively: a deeply nested file must not recurse)."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def skops_schema(path: Path) -> dict[str, Any]:
    """The schema of a skops file after checking the archive's members and sizes."""
    check_size(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _skops_members(archive, path)
            schema = json.loads(_read_schema(archive, members["schema.json"], path))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise UnsafeModelError(f"{path}: not a skops model file ({error})") from None
    if not isinstance(schema, dict):
        raise UnsafeModelError(f"{path}: not a skops model file (schema is not an object)")
    return schema


def _skops_members(archive: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, from its central directory: names, count and inflated sizes
    are checked before a byte is inflated (zipfile never inflates a member past its listed size)."""
    members = archive.infolist()
    if len(members) > MAX_SKOPS_MEMBERS:
        raise UnsafeModelError(f"{path}: more than {MAX_SKOPS_MEMBERS} members in the skops archive")
    bad = [m.filename for m in members if not SKOPS_MEMBER.match(m.filename)]
    if bad:
        raise UnsafeModelError(f"{path}: unexpected member(s) in the skops archive: {bad[:3]}")
    names = [m.filename for m in members]
    if len(set(names)) != len(names):
        raise UnsafeModelError(f"{path}: a member name appears twice in the skops archive")
    if sum(m.file_size for m in members) > MAX_MODEL_BYTES:
        raise UnsafeModelError(f"{path}: skops archive unpacks to more than {MAX_MODEL_BYTES} bytes")
    by_name = {m.filename: m for m in members}
    if "schema.json" not in by_name:
        raise UnsafeModelError(f"{path}: not a skops model file (no schema.json)")
    return by_name


def _read_schema(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path) -> bytes:
    """schema.json, refused from its listed size and again from what actually inflates."""
    if member.file_size > MAX_SKOPS_SCHEMA_BYTES:
        raise UnsafeModelError(
            f"{path}: schema.json unpacks to {member.file_size:,} bytes, over the limit of "
            f"{MAX_SKOPS_SCHEMA_BYTES:,} (model_files.MAX_SKOPS_SCHEMA_BYTES)"
        )
    with archive.open(member) as handle:
        text = handle.read(MAX_SKOPS_SCHEMA_BYTES + 1)
    if len(text) > MAX_SKOPS_SCHEMA_BYTES:
        raise UnsafeModelError(f"{path}: schema.json is over the limit of {MAX_SKOPS_SCHEMA_BYTES:,} bytes")
    return text


def skops_types(schema: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(``module.Class`` names, loader names) a skops schema refers to."""
    types, loaders = set(), set()
    for node in _nodes(schema):
        if "__loader__" in node:
            loaders.add(str(node["__loader__"]))
        if "__module__" in node or "__class__" in node:
            types.add(f"{node.get('__module__')}.{node.get('__class__')}")
        if "__reduce__" in node and node.get("__loader__") not in CONSTRUCTING_LOADERS:
            loaders.add("__reduce__")  # a constructor called with arguments the file chooses
    return types, loaders


def allowed_loaders(
    allowed_types: frozenset[str], node_kinds: frozenset[str] = frozenset()
) -> frozenset[str]:
    """The data-only node kinds, TreeNode when the project lists the Tree type, and the kinds
    ``model.SKOPS_NODE_KINDS`` declares."""
    declared = node_kinds - {"__reduce__"}  # a constructor the file names: never, declared or not
    return SKOPS_LOADERS | ({"TreeNode"} if TREE_TYPE in allowed_types else frozenset()) | declared


def load_skops(path: Path, allowed_types: frozenset[str], node_kinds: frozenset[str] = frozenset()) -> Any:
    """Load a skops file whose every type and loader is on the allow-lists; refuse it otherwise."""
    schema = skops_schema(path)
    types, loaders = skops_types(schema)
    refused = sorted(types - allowed_types)
    refused_loaders = sorted(loaders - allowed_loaders(allowed_types, node_kinds))
    if refused or refused_loaders:
        raise UnsafeModelError(
            f"{path}: refusing type(s) {refused} and skops node kind(s) {refused_loaders} (types must be in "
            "model.SKOPS_TYPES, node kinds in model.SKOPS_NODE_KINDS: add one only if your own estimator "
            "needs it; python -m <package>.skops_types lists them)"
        )
    import skops.io as sio  # only now: the file has been checked

    return sio.load(path, trusted=sorted(types))


def pin_threads() -> None:
    """One thread for BLAS and OpenMP pools already loaded (call after importing the library)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


class BoosterModel:
    """The scikit-learn predict API over a booster's raw predictions (XGBoost or LightGBM).

    ``raw`` returns P(class 1) for binary models (n,), per-class probabilities (n, k) for
    multiclass ones and values (n,) for regression and ranking, as both libraries' ``predict`` do.
    """

    def __init__(self, raw: Callable[[np.ndarray], np.ndarray], booster: Any):
        self._raw = raw
        self.booster = booster

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = np.asarray(self._raw(X), dtype=np.float64)
        return p if p.ndim == 2 else np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._raw(X), dtype=np.float64)
