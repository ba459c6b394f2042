"""Drift injected into any data set, for ``make local-pipeline --inject-drift``.

``inject(table, label_column, problem_type)`` returns a copy with the three kinds of drift an
upstream change brings, derived from the data itself (no column names or label values assumed):

- numeric features: about a third of them (at least one) shifted by 1.5 standard deviations and
  widened by half (data drift the PSI / KS checks see);
- categorical features: half of the rows moved to the column's rarest category (re-weighting,
  which the chi-squared check sees);
- concept drift: where the feature most related to the label is above its median, 60% of the
  labels become the next class (classification) or are mirrored around the label's mid-range
  (regression), so a model retrained on the copy is clearly worse on the clean holdout and the
  gate blocks it even under the ``retrain`` drift policy.

Columns in ``keep`` (ids, timestamp, group, weight: ``Roles.not_features()``) are copied as they
are: drift in them is not what the checks look at, and a shifted id would take a feature's place.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

from {{ cookiecutter.package_name }}.data import Table

SHIFT_SD = 1.5
WIDEN = 1.5
CATEGORY_SHARE = 0.5
CONCEPT_SHARE = 0.6


def inject(
    table: Table, label_column: str, problem_type: str, seed: int = 7, keep: Collection[str] = ()
) -> Table:
    if label_column not in table.data:
        raise ValueError(f"no label column {label_column!r} in {table.columns}")
    rng = np.random.default_rng(seed)
    out = table.take(slice(None))
    features = [c for c in table.columns if c != label_column and c not in keep]
    numeric = [c for c in features if table.is_numeric(c)]
    for name in numeric[: max(1, math.ceil(len(numeric) / 3))]:
        out.data[name] = _shift(table.data[name])
    for name in (c for c in features if not table.is_numeric(c)):
        out.data[name] = _reweight(table.data[name], rng)
    label = table.data[label_column]
    region = _region(table, numeric, label, rng)
    broken = region & (rng.random(len(label)) < CONCEPT_SHARE)
    out.data[label_column] = np.where(broken, _replaced(label, problem_type), label)
    return out


def _shift(column: np.ndarray) -> np.ndarray:
    mean, sd = np.nanmean(column), np.nanstd(column)
    sd = sd if sd > 0 else 1.0
    return mean + (column - mean) * WIDEN + SHIFT_SD * sd  # NaN (missing) stays missing


def _reweight(column: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    present = np.array([v not in (None, "") for v in column])
    values, counts = np.unique(column[present].astype(str), return_counts=True)
    if len(values) < 2:
        return column
    rarest = values[np.argmin(counts)]
    moved = present & (rng.random(len(column)) < CATEGORY_SHARE)
    out = column.copy()
    out[moved] = rarest
    return out


def _codes(label: np.ndarray) -> np.ndarray:
    """Labels as numbers: themselves when numeric, else the index of their sorted class."""
    if label.dtype.kind == "f":
        return label
    return np.unique(label.astype(str), return_inverse=True)[1].astype(np.float64)


def _region(table: Table, numeric: list[str], label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows above the median of the numeric feature most correlated with the label (random half without one)."""
    codes = _codes(label)
    best, best_corr = None, -1.0
    for name in numeric:
        column = table.data[name]
        ok = ~np.isnan(column) & ~np.isnan(codes)
        if ok.sum() < 3 or np.std(column[ok]) == 0 or np.std(codes[ok]) == 0:
            continue
        corr = abs(float(np.corrcoef(column[ok], codes[ok])[0, 1]))
        if corr > best_corr:
            best, best_corr = name, corr
    if best is None:
        return rng.random(len(label)) < 0.5
    column = table.data[best]
    return np.nan_to_num(column, nan=-np.inf) > np.nanmedian(column)


def _replaced(label: np.ndarray, problem_type: str) -> np.ndarray:
    if problem_type in ("regression", "ranking"):  # ranking: the grades, mirrored
        return np.nanmax(label) + np.nanmin(label) - label  # high becomes low: the relation inverts
    classes = np.unique(label)
    return classes[(np.searchsorted(classes, label) + 1) % len(classes)]  # the next class
