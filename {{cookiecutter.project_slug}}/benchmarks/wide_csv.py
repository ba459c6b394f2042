"""Wide data: reading a CSV, its schema check and the dataset split must grow linearly.

    .venv/bin/python benchmarks/wide_csv.py [--columns 10000 50000] [--rows 20] [--classes 2000 10000]

For each width, a CSV of ``--rows`` rows of random numbers and a label is written once, then read
by ``data.read_csv`` (the header's duplicate check ran ``list.count`` per column: 6.7 s at 10,000
columns, 127 s at 50,000) and checked by ``drift.schema.check`` against a profile of itself. The
emulator's split (``run_data.split``, stratified by class) runs on two rows per class at each
``--classes`` count (it built one mask per class: rows x classes comparisons). Each figure is the
best of ``--repeats`` rounds that interleave the sizes; the ratio of the last size to the first is ~5 when linear (5x the size),
~25 when quadratic. The load average is printed beside: the machine is shared.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "support")]

import numpy as np  # noqa: E402
from growth import interleaved_best  # noqa: E402  (the growth tests' timing loop)

from {{ cookiecutter.package_name }} import data  # noqa: E402
from {{ cookiecutter.package_name }}.drift import profile, schema  # noqa: E402
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN  # noqa: E402
from {{ cookiecutter.package_name }}_emulator import run_data  # noqa: E402


def write_wide_csv(path: Path, columns: int, rows: int) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"f{i}" for i in range(columns)), LABEL_COLUMN])
        for _ in range(rows):
            writer.writerow([*np.round(rng.random(columns), 4).tolist(), int(rng.integers(2))])
    return path


def wide_inputs(columns: int, rows: int, folder: Path) -> tuple[Path, data.Table, dict]:
    """The CSV at this width, its table, and the table's own profile (the reference)."""
    path = write_wide_csv(folder / f"wide-{columns}.csv", columns, rows)
    table = data.read_csv(path)
    return path, table, profile.build_profile(table, [c for c in table.columns if c != LABEL_COLUMN])


def classes_table(classes: int) -> data.Table:
    labels = np.repeat(np.arange(classes), 2).astype(str)
    return data.Table(["x", LABEL_COLUMN], {"x": np.arange(len(labels), dtype=float), LABEL_COLUMN: labels})


def report(what: str, sizes: list[int], seconds: list[float]) -> None:
    for size, value in zip(sizes, seconds, strict=True):
        print(f"{what} at {size:>6}: {value:8.3f} s")
    print(f"{what}: ratio {seconds[-1] / seconds[0]:.1f} for {sizes[-1] / sizes[0]:.0f}x the size")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--classes", type=int, nargs="+", default=[2_000, 10_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        inputs = {n: wide_inputs(n, args.rows, Path(folder)) for n in args.columns}
        reads = {n: (lambda path=path: data.read_csv(path)) for n, (path, _, _) in inputs.items()}
        report("read_csv", args.columns, interleaved_best(reads, args.repeats))
    checks = {n: (lambda t=table, r=ref: schema.check(r, t)) for n, (_, table, ref) in inputs.items()}
    report("schema.check", args.columns, interleaved_best(checks, args.repeats))
    tables = {k: classes_table(k) for k in args.classes}
    splits = {
        k: (lambda t=table: run_data.split(t, LABEL_COLUMN, "multiclass")) for k, table in tables.items()
    }
    report("split", args.classes, interleaved_best(splits, args.repeats))
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
