"""Array and tree-shape checks shared by the booster file checks (``xgboost_json``, ``lightgbm_text``).

Each check takes decoded values, refuses with ``Refused(cause)`` and returns a numpy array that the
canonical rewrite is built from, so the library reads only numbers that were checked. Checks are
vectorised: a model of a million nodes is checked in well under a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Refused(ValueError):
    """A booster model that breaks a structural rule; the caller adds the file name."""


def ints(
    values: Any, what: str, length: int | None = None, low: int = 0, high: int | None = None
) -> np.ndarray:
    """``values`` as int64 if it is a list of integers (no bools, no floats) in [low, high)."""
    if not isinstance(values, list) or any(type(v) is not int for v in values):
        raise Refused(f"{what} must be a list of integers")
    if length is not None and len(values) != length:
        raise Refused(f"{what} has {len(values)} entries, expected {length}")
    try:
        array = np.asarray(values, dtype=np.int64).reshape(-1)
    except OverflowError:
        raise Refused(f"{what} holds an integer beyond 64 bits") from None
    if array.size and (array.min() < low or (high is not None and array.max() >= high)):
        bound = f"[{low}, {high})" if high is not None else f">= {low}"
        raise Refused(f"{what} holds {int(array.min())}..{int(array.max())}, outside {bound}")
    return array


def floats(values: Any, what: str, length: int | None = None, infinite: bool = False) -> np.ndarray:
    """``values`` as float64 if it is a list of finite numbers (no bools); ``infinite``: +-inf too."""
    if not isinstance(values, list) or any(type(v) not in (int, float) for v in values):
        raise Refused(f"{what} must be a list of numbers")
    if length is not None and len(values) != length:
        raise Refused(f"{what} has {len(values)} entries, expected {length}")
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.isnan(array).any() or not (infinite or np.isfinite(array).all()):
        raise Refused(f"{what} holds a value that is not finite")
    return array


def binary_tree(left: np.ndarray, right: np.ndarray, what: str, leaves: int | None = None) -> None:
    """Refuse unless ``left``/``right`` (child per node; -1 or, with ``leaves``, a negative leaf
    code) form one binary tree rooted at node 0 that every node belongs to.

    Children are numbered after their parent (both libraries create nodes that way), and every
    node but the root is the child of exactly one node: so no cycle, no self-reference, no node
    shared or unreachable, and walking from the root ends at a leaf in at most len(left) steps.
    """
    n = len(left)
    parents = np.arange(n)
    interior = left >= 0
    if leaves is None:  # XGBoost: -1 marks a leaf, both children or neither
        if not np.array_equal(interior, right >= 0) or ((left < -1) | (right < -1)).any():
            raise Refused(f"{what}: a node has one child, or a child index below -1")
        children = np.concatenate([left[interior], right[interior]])
        owners = np.concatenate([parents[interior], parents[interior]])
    else:  # LightGBM: >= 0 an interior node, < 0 the leaf ~child
        children = np.concatenate([left[left >= 0], right[right >= 0]])
        owners = np.concatenate([parents[left >= 0], parents[right >= 0]])
    if children.size and (children.max() >= n or (children <= owners).any()):
        raise Refused(f"{what}: a child index is out of range or not after its parent (a cycle)")
    if leaves is not None:
        leaf_codes = np.concatenate([~left[left < 0], ~right[right < 0]])
        if leaf_codes.size != leaves or not np.array_equal(np.sort(leaf_codes), np.arange(leaves)):
            raise Refused(f"{what}: every leaf 0..{leaves - 1} must be the child of exactly one node")
    counts = np.bincount(children, minlength=n) if n else np.zeros(0, dtype=np.int64)
    if n and (counts[0] != 0 or (counts[1:] != 1).any()):
        raise Refused(f"{what}: a node is the child of no node or of several (not one tree)")
