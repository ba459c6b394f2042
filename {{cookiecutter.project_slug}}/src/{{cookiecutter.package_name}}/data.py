"""Tabular data in and out: CSV files (a header row) and Parquet files, as numpy columns.

No pandas: the container stays small and the serving path fast. Numeric columns are float64
(missing cells are NaN); a column with any non-numeric cell stays text (categorical): an object
array of stripped strings. ``read_csv`` reads through pyarrow (``readers``, imported on first use,
so serving never loads it); the rules the reader keeps are listed there.
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
SUFFIXES = (".csv", ".parquet")


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
        present = set(self.data)
        missing = [c for c in columns if c not in present]
        if missing:
            raise DataError(f"missing column(s): {', '.join(missing)}")
        for column in columns:
            if not self.is_numeric(column):
                bad = next(v for v in self.data[column] if to_float(v) is None)
                raise DataError(f"column {column!r} is not numeric (value {bad!r})")
        out = np.empty((self.n_rows, len(columns)), dtype=np.float64)
        for j, column in enumerate(columns):
            out[:, j] = self.data[column]
        return out

    def take(self, rows: np.ndarray | slice) -> Table:
        return Table(list(self.columns), {c: v[rows] for c, v in self.data.items()})


def to_float(value: str) -> float | None:
    """A cell as a number (NaN if missing), or None for text: the rule every reader follows."""
    if value.strip().lower() in MISSING:
        return math.nan
    try:
        return float(value)
    except ValueError:
        return None


def data_files(path: Path) -> list[Path]:
    """A data file, or every *.csv and *.parquet below a channel directory (SageMaker copies S3
    prefixes as trees), in path order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{path}: no .csv or .parquet files found")
    return files


def duplicates(names: Iterable[str]) -> list[str]:
    """Names that occur more than once, sorted (one pass: 50,000 columns in milliseconds)."""
    return sorted(name for name, count in Counter(names).items() if count > 1)


def header_columns(header: list[str], source: str) -> list[str]:
    """The stripped names of a header row; an empty or duplicate name is refused."""
    columns = [h.strip() for h in header]
    if not columns or any(not c for c in columns):
        raise DataError(f"{source}: header row has an empty column name")
    repeated = duplicates(columns)
    if repeated:
        raise DataError(f"{source}: duplicate column(s) {', '.join(repeated)}")
    return columns


def read_csv(path: Path) -> Table:
    """Read one CSV or Parquet file, or all of a directory's (they must share a header)."""
    from . import readers  # pyarrow: only where data files are read

    columns, data = readers.read(Path(path))
    return Table(columns, data)


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
