"""What each column of your data is: a feature (numeric, categorical or text), an id, a timestamp,
a group or a sample weight. Declared in ``settings.COLUMN_ROLES``; detected when undeclared.

Only features reach the estimator. An id is never a feature (and never profiled for drift); a
timestamp orders the offline run's split and is not a feature (a trend is not drift); a group keeps
each of its values on one side of the split; a weight is the estimator's ``sample_weight``.

Detection, for columns ``settings.COLUMN_ROLES`` does not name, in this order (issue 23):

- ``timestamp``: ISO dates or datetimes (``2026-03-01``, ``2026-03-01T10:00:00Z``) in at least
  95% of the filled cells;
- ``id``: every row filled and distinct, with whole numbers, or short strings without spaces;
- ``text``: text whose values are mostly distinct (at least half) and multi-word (a median of 3
  words or more);
- otherwise ``numeric`` when every cell is a number, else ``categorical``.

Each detection is printed once, in one line that names the column and the rule. Declare a role
(``"numeric"``, ``"categorical"``, ...) to overrule one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import data, settings

FEATURE_KINDS = ("numeric", "categorical", "text")
ROLES = (*FEATURE_KINDS, "id", "timestamp", "group", "weight")
SINGLE_ROLES = ("timestamp", "group", "weight")  # at most one column each
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$")
TIMESTAMP_SHARE = 0.95
TEXT_DISTINCT_SHARE = 0.5
TEXT_MEDIAN_WORDS = 3
ID_MAX_CHARS = 40
MIN_DETECTION_ROWS = 20  # below this, a column of distinct values says nothing


class RoleError(data.DataError):
    """A declaration that cannot hold for the data; the message names the column."""


@dataclass(frozen=True)
class Roles:
    """Every column's role, in the data's column order; the label has none."""

    features: dict[str, str]  # name -> "numeric" | "categorical" | "text", in column order
    ids: tuple[str, ...] = ()
    timestamp: str | None = None
    group: str | None = None
    weight: str | None = None
    detected: tuple[str, ...] = field(default=(), compare=False)  # one line per detection

    def to_json(self) -> dict[str, Any]:
        """Metadata's ``columns`` entry: the roles that are not features."""
        return {"id": list(self.ids), "timestamp": self.timestamp, "group": self.group, "weight": self.weight}

    def not_features(self) -> list[str]:
        return [*self.ids, *(c for c in (self.timestamp, self.group, self.weight) if c)]


def declared(roles: Mapping[str, str] | None = None) -> dict[str, str]:
    """``settings.COLUMN_ROLES`` checked: known roles, one column per single role."""
    table = dict(getattr(settings, "COLUMN_ROLES", {}) if roles is None else roles)
    for column, role in table.items():
        if role not in ROLES:
            raise RoleError(f"column {column!r}: unknown role {role!r} (roles: {', '.join(ROLES)})")
    for role in SINGLE_ROLES:
        named = [c for c, r in table.items() if r == role]
        if len(named) > 1:
            raise RoleError(f"columns {', '.join(map(repr, named))}: at most one {role} column")
    return table


def resolve(table: data.Table, label: str, roles: Mapping[str, str] | None = None) -> Roles:
    """The roles of ``table``'s columns: declared ones checked against the data, the rest detected."""
    given = declared(roles)
    if label in given:
        raise RoleError(f"column {label!r} is the label; it takes no role in settings.COLUMN_ROLES")
    absent = [c for c in given if c not in table.data]
    if absent:
        raise RoleError(
            f"column {absent[0]!r} is declared in settings.COLUMN_ROLES but not in the data "
            f"(columns: {', '.join(table.columns[:8])}{', ...' if len(table.columns) > 8 else ''})"
        )
    found: dict[str, str] = {}
    lines: list[str] = []
    for column in table.columns:
        if column == label:
            continue
        if column in given:
            found[column] = given[column]
            _check_declared(column, given[column], table.data[column])
            continue
        role, rule = detect(table.data[column])
        found[column] = role
        if rule:
            lines.append(f"column {column!r}: {role} ({rule}); declare it in settings.COLUMN_ROLES to change")
    features = {c: r for c, r in found.items() if r in FEATURE_KINDS}
    if not features:
        raise RoleError(f"no feature columns besides the label {label!r} (roles: {found})")
    single = {role: next((c for c, r in found.items() if r == role), None) for role in SINGLE_ROLES}
    return Roles(
        features=features,
        ids=tuple(c for c, r in found.items() if r == "id"),
        timestamp=single["timestamp"],
        group=single["group"],
        weight=single["weight"],
        detected=tuple(lines),
    )


def detect(column: np.ndarray) -> tuple[str, str]:
    """(role, the rule that chose it): the rule is "" for plain numeric and categorical columns."""
    numeric = column.dtype.kind == "f"
    filled = (
        column[~np.isnan(column)] if numeric else column[[not data.is_missing(v) for v in column.tolist()]]
    )
    n = len(column)
    if numeric:
        whole = len(filled) == n and bool(np.all(filled == np.round(filled)))
        if n >= MIN_DETECTION_ROWS and whole and len(np.unique(filled)) == n:
            return "id", "every row a distinct whole number"
        return "numeric", ""
    values = [str(v) for v in filled.tolist()]
    if values and sum(bool(ISO_TIME.match(v)) for v in values) >= TIMESTAMP_SHARE * len(values):
        return "timestamp", "ISO dates or datetimes"
    short = all(len(v) <= ID_MAX_CHARS and not any(ch.isspace() for ch in v) for v in values)
    if n >= MIN_DETECTION_ROWS and len(values) == n and len(set(values)) == n and short:
        return "id", f"every row a distinct string of at most {ID_MAX_CHARS} characters without spaces"
    if len(values) >= MIN_DETECTION_ROWS and len(set(values)) >= TEXT_DISTINCT_SHARE * len(values):
        words = np.median([len(v.split()) for v in values])
        if words >= TEXT_MEDIAN_WORDS:
            return (
                "text",
                f"{len(set(values)) / len(values):.0%} distinct values, a median of {words:g} words",
            )
    return "categorical", ""


def _check_declared(column: str, role: str, values: np.ndarray) -> None:
    if role == "numeric" and values.dtype.kind != "f":
        bad = next(v for v in values.tolist() if not data.is_number(v))
        raise RoleError(f"column {column!r} is declared numeric but holds {bad!r}")
    bad_weight = values.dtype.kind != "f" or not np.all(np.isfinite(values) & (values >= 0))
    if role == "weight" and bad_weight:
        raise RoleError(f"column {column!r} is declared weight: it needs a finite number >= 0 in every row")
    if role == "timestamp" and values.dtype.kind != "f":
        bad = next(
            (v for v in values.tolist() if not data.is_missing(v) and not ISO_TIME.match(str(v))), None
        )
        if bad is not None:
            raise RoleError(f"column {column!r} is declared timestamp but holds {bad!r} (expected ISO 8601)")


def order_key(values: np.ndarray) -> np.ndarray:
    """Sortable values of a timestamp column: numbers as they are, ISO text as UTC nanoseconds."""
    if values.dtype.kind == "f":
        return values
    return np.asarray([_iso_ns(str(v)) for v in values.tolist()], dtype=np.float64)


def _iso_ns(text: str) -> float:
    if data.is_missing(text):
        return np.nan
    stamp = text.strip().replace(" ", "T").replace("Z", "+00:00")
    offset = re.search(r"[+-]\d{2}:?\d{2}$", stamp) if "T" in stamp else None
    moment = np.datetime64(stamp[: offset.start()] if offset else stamp, "ns")
    value = float(moment.astype(np.int64))
    if offset:
        sign = 1 if offset.group()[0] == "+" else -1
        digits = offset.group()[1:].replace(":", "")
        value -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * 1e9
    return value
