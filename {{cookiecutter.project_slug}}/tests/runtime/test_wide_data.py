"""Wide data reads and checks in linear time (benchmarks/wide_csv.py has the figures).

The header's duplicate check counted each column over the whole header: 6.7 s at 10,000 columns,
127 s at 50,000, on every read. These tests time each call at one width and at four times it in
one run (tests/support/growth.py): linear ~4x, quadratic ~16x.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from growth import LINEAR_LIMIT, growth

from {{ cookiecutter.package_name }} import data
from {{ cookiecutter.package_name }}.drift import profile, schema
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN


def wide_csv(folder: Path, columns: int, rows: int = 3) -> Path:
    path = folder / f"wide-{columns}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"f{i}" for i in range(columns)), LABEL_COLUMN])
        writer.writerows([*(str(r + i % 7) for i in range(columns)), str(r % 2)] for r in range(rows))
    return path


def test_reading_grows_linearly_with_the_columns(tmp_path: Path) -> None:
    def read_at(columns: int) -> Callable[[], object]:
        path = wide_csv(tmp_path, columns)
        return lambda: data.read_csv(path)

    assert growth(read_at, 5_000) < LINEAR_LIMIT


def wide_profile(table: data.Table) -> dict:
    """The reference profile of ``table``, built on one feature and copied to the others: profiling
    20,000 columns would take longer than the check this test times."""
    names = [c for c in table.columns if c != LABEL_COLUMN]
    narrow = data.Table([names[0], LABEL_COLUMN], {c: table.data[c] for c in (names[0], LABEL_COLUMN)})
    reference = profile.build_profile(narrow, names[:1])
    column = reference["columns"][names[0]]
    return {**reference, "feature_names": names, "columns": dict.fromkeys(names, column)}


def test_the_schema_check_grows_linearly_with_the_columns(tmp_path: Path) -> None:
    def check_at(columns: int) -> Callable[[], object]:
        table = data.read_csv(wide_csv(tmp_path, columns))
        reference = wide_profile(table)
        assert schema.check(reference, table) == []  # every column checked, none extra
        return lambda: schema.check(reference, table)

    assert growth(check_at, 5_000) < LINEAR_LIMIT


def test_duplicate_columns_are_still_named_once_each_in_order(tmp_path: Path) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text("b,a,b,c,a,b\n1,2,3,4,5,6\n")
    with pytest.raises(data.DataError, match=r"dupes.csv: duplicate column\(s\) a, b$"):
        data.read_csv(path)
