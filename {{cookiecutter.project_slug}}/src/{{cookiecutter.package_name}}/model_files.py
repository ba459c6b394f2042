"""Reading native model files as data, never as code: every check runs before a library parses them.

- skops (scikit-learn): a zip of ``schema.json`` and ``.npy`` arrays. Its schema names every
  type to import and how to build it (the node's ``__loader__``). The file is refused unless every
  member name, every loader and every ``module.Class`` is on an exact allow-list; only then is
  ``skops.io.load`` called, trusting exactly those types. skops' own default trust list (any
  scikit-learn estimator, ``builtins`` functions behind a ``ReduceNode``) is never relied on,
  since a tampered file could otherwise import and call whatever it names:
  https://skops.readthedocs.io/en/stable/persistence.html#security
- XGBoost: UBJSON (or JSON) model files, parsed by XGBoost's own reader, which builds trees only.
- LightGBM: the text model format, parsed by LightGBM's own reader.
No pickle anywhere: numpy arrays are read with ``allow_pickle=False`` (skops does so itself).

Thread pools are pinned to one thread when a model is loaded (``pin_threads``): a serving worker
answers one request at a time, and an OpenMP pool started before gunicorn forks hangs the workers.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

# A model file larger than this is refused before it is read (the sample's is ~10 KB).
MAX_MODEL_BYTES = 512 * 1024 * 1024
# skops loaders that only rebuild data: containers, arrays, dtypes, plain objects set from a dict.
# Left out on purpose: ReduceNode/TreeNode/LossNode (call a constructor with arguments),
# FunctionNode, MethodNode, PartialNode, OperatorFuncNode (return callables), and others.
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


class UnsafeModelError(ValueError):
    """A model file refused before any library read it; the message names the file and the cause."""


def check_size(path: Path) -> None:
    if not path.is_file():
        raise UnsafeModelError(f"{path}: no such model file")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise UnsafeModelError(f"{path}: {size} bytes is more than the limit of {MAX_MODEL_BYTES}")


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
            members = archive.infolist()
            bad = [m.filename for m in members if not SKOPS_MEMBER.match(m.filename)]
            if bad:
                raise UnsafeModelError(f"{path}: unexpected member(s) in the skops archive: {bad[:3]}")
            if sum(m.file_size for m in members) > MAX_MODEL_BYTES:
                raise UnsafeModelError(f"{path}: skops archive unpacks to more than {MAX_MODEL_BYTES} bytes")
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnsafeModelError(f"{path}: not a skops model file ({error})") from None
    if not isinstance(schema, dict):
        raise UnsafeModelError(f"{path}: not a skops model file (schema is not an object)")
    return schema


def skops_types(schema: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(``module.Class`` names, loader names) a skops schema refers to."""
    types, loaders = set(), set()
    for node in _nodes(schema):
        if "__loader__" in node:
            loaders.add(str(node["__loader__"]))
        if "__module__" in node or "__class__" in node:
            types.add(f"{node.get('__module__')}.{node.get('__class__')}")
        if "__reduce__" in node and node.get("__loader__") != "TreeNode":
            loaders.add("__reduce__")  # a constructor called with arguments the file chooses
    return types, loaders


def allowed_loaders(allowed_types: frozenset[str]) -> frozenset[str]:
    """The data-only node kinds, plus TreeNode when the project lists the Tree type."""
    return SKOPS_LOADERS | ({"TreeNode"} if TREE_TYPE in allowed_types else frozenset())


def load_skops(path: Path, allowed_types: frozenset[str]) -> Any:
    """Load a skops file whose every type and loader is on the allow-lists; refuse it otherwise."""
    schema = skops_schema(path)
    types, loaders = skops_types(schema)
    refused = sorted(types - allowed_types)
    refused_loaders = sorted(loaders - allowed_loaders(allowed_types))
    if refused or refused_loaders:
        raise UnsafeModelError(
            f"{path}: refusing type(s) {refused} and skops node kind(s) {refused_loaders} (types must be "
            "in model.SKOPS_TYPES: add one there only if your own estimator needs it and it cannot run code)"
        )
    import skops.io as sio  # only now: the file has been checked

    return sio.load(path, trusted=sorted(types))


def check_prefix(path: Path, prefixes: tuple[bytes, ...], kind: str) -> None:
    """Refuse a file that does not start the way ``kind`` files do (a pickle starts with 0x80)."""
    check_size(path)
    with path.open("rb") as handle:
        head = handle.read(16)
    if not head.startswith(prefixes):
        raise UnsafeModelError(f"{path}: not {kind} (starts with {head[:8]!r})")


def pin_threads() -> None:
    """One thread for BLAS and OpenMP pools already loaded (call after importing the library)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


class BoosterModel:
    """The scikit-learn predict API over a booster's raw predictions (XGBoost or LightGBM).

    ``raw`` returns P(class 1) for binary models (n,), per-class probabilities (n, k) for
    multiclass ones and values (n,) for regression, as both libraries' ``predict`` do.
    """

    def __init__(self, raw: Callable[[np.ndarray], np.ndarray], booster: Any):
        self._raw = raw
        self.booster = booster

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = np.asarray(self._raw(X), dtype=np.float64)
        return p if p.ndim == 2 else np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._raw(X), dtype=np.float64)
