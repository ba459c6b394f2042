"""The reference profile: a compact JSON summary of the training data, stored next to the model.

Validation compares new data with this profile, so the old raw data is never needed again. Per
column it keeps what the drift tests and the schema checks use (a few KB per feature):

- numeric: row and missing counts, min/max/mean/std, the reference CDF at its percentiles
  (``points`` and ``cum`` = rows <= point, for KS) and decile bin ``edges`` with bin ``counts``
  (for PSI);
- categorical: counts of the ``MAX_CATEGORIES`` most frequent values, the rest as ``other``;
- text (free text, issue 23): row and missing counts; ``counts`` of the reference's ``MAX_TERMS``
  most frequent words (``text_features.words``) and ``other`` = all its other tokens, the bins of
  the token PSI (``other`` / ``tokens`` is the reference's own out-of-vocabulary share, so the new
  data's can be compared); ``length``: the numeric profile of words per row (missing rows as
  missing). Single words only, never a whole text: a few KB whatever the row count;
- the label column: class counts for classification (label drift and the class set), the
  numeric profile for regression (the target is a number, drift-tested as one), and optionally
  the model's per-row scores on the same rows (``prediction``: the reference for prediction drift
  in the gate; the positive-class score, the top-class probability, or the predicted value).

Counts, not shares, are stored: the tests are two-sample tests and need the reference size.
``roles`` (``column_roles.Roles.to_json()``: ids, timestamp, group, weight) names the columns that
are in the data but not features: validate accepts them in new data and never drift-tests them
(an id is unique per row and a timestamp trends by design; neither is drift). Profiles written
before text and roles (no ``"text"`` type, no ``roles``) read as before.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .. import data
from ..settings import LABEL_COLUMN, PROBLEM_TYPE
from ..text_features import words

PROFILE_FILE = "profile.json"
PROFILE_VERSION = 1
# PSI bins: reference deciles, the usual choice (fewer bins hide shifts, more are noisy at ~500 rows).
N_BINS = 10
# KS: the reference CDF is kept at its percentiles (0..100), enough to resolve shifts of ~1% of mass.
N_QUANTILES = 100
MAX_CATEGORIES = 100
# Text: the words kept with their counts. 100 words of at most 64 characters keep a column's profile
# at a few KB; more bins would make the token PSI noisier without seeing a vocabulary swap better.
MAX_TERMS = 100
KINDS = ("numeric", "categorical", "text")


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file."""


def parallel_map(function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """Map over columns on all cores: numpy's sort and searchsorted release the GIL."""
    workers = min(len(items), os.cpu_count() or 1)
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def category_key(value: object) -> str:
    """One spelling per category: numbers read as floats (1.0) match their text form ("1")."""
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value).strip()


def _inverted_cdf_index(probabilities: np.ndarray, size: int) -> np.ndarray:
    # Quantiles that are actual data values (numpy's "inverted_cdf"), so ties stay exact.
    return np.clip(np.ceil(probabilities * size).astype(np.int64) - 1, 0, size - 1)


def numeric_profile(values: np.ndarray) -> dict[str, Any]:
    n = len(values)
    missing = int(np.count_nonzero(np.isnan(values)))
    present = np.sort(values)[: n - missing]  # np.sort puts NaN last
    profile: dict[str, Any] = {"type": "numeric", "n": n, "missing": missing}
    if present.size == 0:
        return {**profile, "min": None, "max": None, "mean": None, "std": None}
    size = present.size
    points = np.unique(present[_inverted_cdf_index(np.arange(N_QUANTILES + 1) / N_QUANTILES, size)])
    edges = np.unique(present[_inverted_cdf_index(np.arange(1, N_BINS) / N_BINS, size)])
    below_edges = np.searchsorted(present, edges, side="right")
    return {
        **profile,
        "min": float(present[0]),
        "max": float(present[-1]),
        "mean": float(present.mean()),
        "std": float(present.std()),
        "points": points.tolist(),
        "cum": np.searchsorted(present, points, side="right").tolist(),
        "edges": edges.tolist(),
        "counts": np.diff(np.concatenate([[0], below_edges, [size]])).tolist(),
    }


def count_categories(values: np.ndarray) -> tuple[dict[str, int], int]:
    """Counts per category key, most frequent first, and the number of missing cells."""
    counts: Counter[str] = Counter()
    missing = 0
    if values.dtype.kind == "f":
        present = ~np.isnan(values)
        missing = len(values) - int(np.count_nonzero(present))
        uniques, frequencies = np.unique(values[present], return_counts=True)
        counts.update({category_key(u): int(c) for u, c in zip(uniques, frequencies, strict=True)})
    else:
        # Counter over a list is ~20x faster than np.unique on an object array.
        for value, count in Counter(values.tolist()).items():
            key = category_key(value)
            if key.lower() in data.MISSING:
                missing += count
            else:
                counts[key] += count
    return dict(counts.most_common()), missing


def categorical_profile(values: np.ndarray) -> dict[str, Any]:
    counts, missing = count_categories(values)
    kept = dict(list(counts.items())[:MAX_CATEGORIES])
    return {
        "type": "categorical",
        "n": len(values),
        "missing": missing,
        "counts": kept,
        "other": sum(counts.values()) - sum(kept.values()),
    }


def text_cells(values: np.ndarray) -> list[str | None]:
    """Each cell as text, None when missing (the spellings of ``data.MISSING``, or NaN)."""
    cells: list[str | None] = []
    for value in values.tolist():
        key = "" if isinstance(value, float) and math.isnan(value) else category_key(value)
        cells.append(None if key.lower() in data.MISSING else key)
    return cells


def count_words(values: np.ndarray) -> tuple[Counter[str], np.ndarray]:
    """Token counts over all rows and the words per row (NaN for a missing cell)."""
    tokens: Counter[str] = Counter()
    lengths = np.full(len(values), np.nan)
    for row, cell in enumerate(text_cells(values)):
        if cell is not None:
            found = words(cell)
            tokens.update(found)
            lengths[row] = len(found)
    return tokens, lengths


def text_profile(values: np.ndarray) -> dict[str, Any]:
    tokens, lengths = count_words(values)
    # Most frequent first, ties by word: the same vocabulary whatever the row order.
    top = sorted(tokens, key=lambda w: (-tokens[w], w))[:MAX_TERMS]
    kept = {w: tokens[w] for w in top}
    return {
        "type": "text",
        "n": len(values),
        "missing": int(np.count_nonzero(np.isnan(lengths))),
        "tokens": sum(tokens.values()),
        "counts": kept,
        "other": sum(tokens.values()) - sum(kept.values()),
        "length": numeric_profile(lengths),
    }


def column_profile(values: np.ndarray, kind: str | None = None) -> dict[str, Any]:
    """Profile by ``kind``; without one, by dtype (numbers numeric, anything else categorical)."""
    kind = kind or ("numeric" if values.dtype.kind == "f" else "categorical")
    if kind == "text":
        return text_profile(values)
    if kind == "categorical":
        return categorical_profile(values)
    return numeric_profile(values)


def build_profile(
    table: data.Table,
    feature_names: list[str],
    *,
    label_column: str = LABEL_COLUMN,
    scores: np.ndarray | None = None,
    numeric_label: bool | None = None,
    kinds: Sequence[str] | None = None,
    roles: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Profile ``feature_names`` (and the label, if present) of ``table``.

    ``kinds``: each feature's kind, aligned with ``feature_names`` (``Predictor.feature_kinds``:
    "numeric", "categorical" or "text"); default by dtype, as before text. ``roles``: the
    non-feature columns (``Roles.to_json()``), stored so validate accepts them in new data.

    ``scores``: the trained model's per-row scores on the same rows; stored as the reference for
    the gate's prediction drift check (optional, left out when None). ``numeric_label``: profile
    the label as a number (default: when the project's problem type is regression).
    """
    if numeric_label is None:
        numeric_label = PROBLEM_TYPE in ("regression", "ranking")  # ranking: relevance grades
    missing = [name for name in feature_names if name not in table.data]
    if missing:
        raise data.DataError(f"cannot profile missing column(s): {', '.join(missing)}")
    kinds = _check_kinds(table, feature_names, kinds)
    pairs = list(zip(feature_names, kinds, strict=True))
    columns = parallel_map(lambda pair: column_profile(table.data[pair[0]], pair[1]), pairs)
    label = None
    if label_column in table.data:
        values = table.data[label_column]
        if numeric_label and values.dtype.kind != "f":
            raise data.DataError(f"label column {label_column!r} is not numeric; a regression target must be")
        profiled = numeric_profile(values) if numeric_label else categorical_profile(values)
        label = {"column": label_column, **profiled}
    return {
        "version": PROFILE_VERSION,
        "n_rows": table.n_rows,
        "feature_names": list(feature_names),
        "columns": dict(zip(feature_names, columns, strict=True)),
        "label": label,
        "prediction": None if scores is None else numeric_profile(np.asarray(scores, dtype=np.float64)),
        **({} if roles is None else {"roles": _roles(roles, feature_names)}),
    }


def _check_kinds(table: data.Table, names: list[str], kinds: Sequence[str] | None) -> list[str | None]:
    if kinds is None:
        return [None] * len(names)
    if len(kinds) != len(names):
        raise data.DataError(f"{len(kinds)} kinds for {len(names)} features: one kind per feature")
    for name, kind in zip(names, kinds, strict=True):
        if kind not in KINDS:
            raise data.DataError(f"column {name!r}: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
        if kind == "numeric" and table.data[name].dtype.kind != "f":
            raise data.DataError(f"column {name!r} is numeric but holds text")
    return list(kinds)


def _roles(roles: dict[str, Any], features: list[str]) -> dict[str, Any]:
    """``Roles.to_json()`` as stored: ids a list, the single roles a name or None."""
    stored = {"id": [str(c) for c in roles.get("id") or []]}
    stored |= {key: roles.get(key) for key in ("timestamp", "group", "weight")}
    both = [c for c in role_columns(stored) if c in features]
    if both:
        raise data.DataError(f"column(s) {', '.join(map(repr, both))} cannot be a feature and a role")
    return stored


def role_columns(roles: dict[str, Any] | None) -> list[str]:
    """The column names a profile's ``roles`` lists (none for a profile written before roles)."""
    if not isinstance(roles, dict):
        return []
    singles = [roles.get(key) for key in ("timestamp", "group", "weight")]
    return [*(roles.get("id") or []), *(c for c in singles if isinstance(c, str))]


def save_profile(profile: dict[str, Any], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: a NaN would make the file unreadable by strict JSON parsers.
    path.write_text(json.dumps(profile, allow_nan=False, separators=(",", ":")))


def load_profile(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        profile = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ProfileError(f"{path}: cannot read the reference profile ({error})") from None
    if not isinstance(profile, dict) or profile.get("version") != PROFILE_VERSION:
        found = profile.get("version") if isinstance(profile, dict) else type(profile).__name__
        raise ProfileError(f"{path}: unsupported profile version {found!r} (expected {PROFILE_VERSION})")
    for key in ("feature_names", "columns"):
        if key not in profile:
            raise ProfileError(f"{path}: profile has no {key!r}")
    return profile


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: undefined statistics are written as null."""
    return None if value is None or not math.isfinite(value) else float(value)
