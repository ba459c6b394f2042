"""Tabular data in and out: CSV with a header row, read with the csv module into numpy columns.

No pandas: the container stays small and the serving path fast. Numeric columns become float64
(empty cells are NaN); a column with any non-numeric cell stays as strings (categorical).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MISSING = {"", "na", "nan", "null", "none"}


def is_missing(value: object) -> bool:
    """A missing cell: None, NaN, or one of the MISSING spellings."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return str(value).strip().lower() in MISSING


def is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


class DataError(ValueError):
    """Malformed data; the message names the file, line or column at fault."""


@dataclass
class Table:
    columns: list[str]
    data: dict[str, np.ndarray]

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0

    def is_numeric(self, column: str) -> bool:
        return self.data[column].dtype.kind == "f"

    def matrix(self, columns: Sequence[str]) -> np.ndarray:
        """The given columns as one float64 matrix; fails naming the first missing or text column."""
        missing = [c for c in columns if c not in self.data]
        if missing:
            raise DataError(f"missing column(s): {', '.join(missing)}")
        for column in columns:
            if not self.is_numeric(column):
                bad = next(v for v in self.data[column] if _to_float(v) is None)
                raise DataError(f"column {column!r} is not numeric (value {bad!r})")
        return np.column_stack([self.data[c] for c in columns]).astype(np.float64, copy=False)

    def take(self, rows: np.ndarray | slice) -> Table:
        return Table(list(self.columns), {c: v[rows] for c, v in self.data.items()})


def _to_float(value: str) -> float | None:
    if value.strip().lower() in MISSING:
        return math.nan
    try:
        return float(value)
    except ValueError:
        return None


def csv_files(path: Path) -> list[Path]:
    """A CSV file, or every *.csv below a channel directory (SageMaker copies S3 prefixes as trees)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    files = sorted(p for p in path.rglob("*.csv") if p.is_file())
    if not files:
        raise DataError(f"{path}: no .csv files found")
    return files


def _columns(header: list[str], source: str) -> list[str]:
    columns = [h.strip() for h in header]
    if not columns or any(not c for c in columns):
        raise DataError(f"{source}: header row has an empty column name")
    # One count over the header (list.count per column was quadratic: 127 s at 50,000 columns).
    duplicates = sorted(name for name, seen in Counter(columns).items() if seen > 1)
    if duplicates:
        raise DataError(f"{source}: duplicate column(s) {', '.join(duplicates)}")
    return columns


def read_csv(path: Path) -> Table:
    """Read one CSV file or all CSV files of a directory (they must share a header)."""
    columns: list[str] | None = None
    cells: list[list[str]] = []
    for file in csv_files(Path(path)):
        try:
            with file.open(newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                if header is None:
                    raise DataError(f"{file}: file is empty (expected a header row)")
                file_columns = _columns(header, str(file))
                if columns is None:
                    columns = file_columns
                elif file_columns != columns:
                    raise DataError(
                        f"{file}: header differs from the first file's ({len(file_columns)} vs {len(columns)} columns)"
                    )
                for row in reader:
                    if not row:
                        continue
                    if len(row) != len(columns):
                        raise DataError(
                            f"{file}:{reader.line_num}: expected {len(columns)} fields, got {len(row)}"
                        )
                    cells.append(row)
        except UnicodeDecodeError as error:
            raise DataError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except csv.Error as error:
            raise DataError(f"{file}: malformed CSV ({error})") from None
    assert columns is not None
    if not cells:
        raise DataError(f"{path}: no data rows")
    return Table(columns, {c: _column(c, [row[i] for row in cells]) for i, c in enumerate(columns)})


def _column(name: str, values: list[str]) -> np.ndarray:
    floats = [_to_float(v) for v in values]
    if all(f is not None for f in floats):
        return np.asarray(floats, dtype=np.float64)
    return np.asarray([v.strip() for v in values], dtype=object)


def write_csv(path: Path, table: Table, rows: Iterable[int] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    indices = range(table.n_rows) if rows is None else rows
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        for i in indices:
            writer.writerow(_cell(table.data[c][i]) for c in table.columns)


def _cell(value: object) -> str:
    if isinstance(value, float):  # np.float64 too; repr() of a plain float round-trips exactly
        return "" if math.isnan(value) else repr(float(value))
    return str(value)
