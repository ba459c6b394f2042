"""Schema checks of new data against the reference profile: violations fail the step.

These catch broken feeds, not drift: a missing column, text in a numeric column, a column
mostly empty, a unit or sentinel change (values far outside anything seen), an unknown label.
Drift tests would only report such data as "drifted", and training on it would be wrong.

Ranges are deliberately loose so that real drift still reaches the drift tests: a value fails
only beyond the reference range widened by ``range_margin`` times its width on each side (a
x1000 unit change or a -999 sentinel is caught, a mean shift is not), or below zero in a column
that was never negative.

A text column is checked for its missing rate only: any string is a valid text (numbers too),
and a new word is drift, not a broken feed. The columns the profile's ``roles`` names (ids,
timestamp, group, weight: column_roles.py) may come with new data: accepted, never drift-tested.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import data
from .profile import count_categories, role_columns, text_cells

MAX_MISSING_RATE = 0.5
# Three widths: x10 unit changes and sentinels fail, a x1.6 rescale (drift, not a broken feed) passes.
RANGE_MARGIN = 3.0


class SchemaError(ValueError):
    """New data breaks the reference schema; ``column`` names the column at fault."""

    def __init__(self, column: str, message: str):
        super().__init__(f"column {column!r}: {message}")
        self.column = column


def _check_numeric(
    name: str, ref: dict[str, Any], values: np.ndarray, max_missing_rate: float, margin: float
) -> None:
    if values.dtype.kind != "f":
        bad = next((v for v in values if _not_number(v)), values[0])
        raise SchemaError(name, f"expected numbers (as in the reference) but found text such as {bad!r}")
    missing_rate = float(np.count_nonzero(np.isnan(values))) / len(values)
    _check_missing(name, ref, missing_rate, max_missing_rate)
    if ref["min"] is None or missing_rate == 1.0:
        return
    low, high = float(np.fmin.reduce(values)), float(np.fmax.reduce(values))  # fmin/fmax skip NaN
    if ref["min"] >= 0 and low < 0:
        raise SchemaError(
            name, f"negative value {low:g}, but the reference was never negative (min {ref['min']:g})"
        )
    width = (ref["max"] - ref["min"]) or max(abs(ref["min"]), abs(ref["max"]), 1.0)
    allowed = (ref["min"] - margin * width, ref["max"] + margin * width)
    for value in (low, high):
        if not allowed[0] <= value <= allowed[1]:
            raise SchemaError(
                name,
                f"value {value:g} is far outside the reference range [{ref['min']:g}, {ref['max']:g}] "
                f"(allowed [{allowed[0]:g}, {allowed[1]:g}]): a unit change or a sentinel value?",
            )


def _not_number(value: object) -> bool:
    text = str(value).strip()
    if text.lower() in data.MISSING:
        return False
    try:
        float(text)
    except ValueError:
        return True
    return False


def _check_missing(name: str, ref: dict[str, Any], missing_rate: float, max_missing_rate: float) -> None:
    reference_rate = ref["missing"] / ref["n"]
    if missing_rate > max(max_missing_rate, reference_rate):
        raise SchemaError(
            name,
            f"{missing_rate:.1%} of the values are missing (limit {max_missing_rate:.0%}, "
            f"reference {reference_rate:.1%})",
        )


def _check_label(name: str, ref: dict[str, Any], values: np.ndarray, margin: float) -> None:
    if ref["type"] == "numeric":  # a regression target: a number in every row, in a sane range
        if values.dtype.kind != "f":
            bad = next((v for v in values if _not_number(v)), values[0])
            raise SchemaError(name, f"the label must be a number (as in the reference) but found {bad!r}")
        missing = int(np.count_nonzero(np.isnan(values)))
        if missing:
            raise SchemaError(name, f"the label is missing in {missing} row(s)")
        _check_numeric(name, ref, values, 0.0, margin)
        return
    counts, missing = count_categories(values)
    if missing:
        raise SchemaError(name, f"the label is missing in {missing} row(s)")
    unknown = sorted(key for key in counts if key not in ref["counts"])
    if unknown and ref["other"] == 0:
        known = ", ".join(ref["counts"])
        raise SchemaError(
            name, f"label value(s) {', '.join(unknown[:5])} not among the reference classes ({known})"
        )


def check(
    profile: dict[str, Any],
    table: data.Table,
    max_missing_rate: float = MAX_MISSING_RATE,
    range_margin: float = RANGE_MARGIN,
) -> list[str]:
    """Raise ``SchemaError`` on the first violation; return notes on harmless differences."""
    label = profile.get("label")
    expected = [*profile["feature_names"], *([label["column"]] if label else [])]
    absent = [name for name in expected if name not in table.data]
    if absent:
        raise SchemaError(absent[0], f"missing from the data (expected columns: {', '.join(absent)} absent)")
    for name in profile["feature_names"]:
        ref = profile["columns"][name]
        values = table.data[name]
        if ref["type"] == "numeric":
            _check_numeric(name, ref, values, max_missing_rate, range_margin)
        elif ref["type"] == "text":
            missing = sum(cell is None for cell in text_cells(values))
            _check_missing(name, ref, missing / len(values), max_missing_rate)
        else:
            _, missing = count_categories(values)
            _check_missing(name, ref, missing / len(values), max_missing_rate)
    if label:
        _check_label(label["column"], label, table.data[label["column"]], range_margin)
    known = {*expected, *role_columns(profile.get("roles"))}
    extra = [name for name in table.columns if name not in known]
    return [f"new column(s) not in the reference, not checked for drift: {', '.join(extra)}"] if extra else []
