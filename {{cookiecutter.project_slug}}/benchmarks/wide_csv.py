"""Wide data: reading a CSV, its schema check and the dataset split must grow linearly.

    .venv/bin/python benchmarks/wide_csv.py [--columns 10000 50000] [--rows 20] [--classes 2000 10000]

For each width, a CSV of ``--rows`` rows of random numbers and a label is written once, then read
by ``data.read_csv`` (the header's duplicate check ran ``list.count`` per column: 6.7 s at 10,000
columns, 127 s at 50,000) and checked by ``drift.schema.check`` against a profile of itself. The
emulator's split (``run_data.split``, stratified by class) runs on two rows per class at each
``--classes`` count (it built one mask per class: rows x classes comparisons). Each figure is the
best of ``--repeats``; the ratio of the last size to the first is ~5 when linear (5x the size),
~25 when quadratic. The load average is printed beside: the machine is shared.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

import numpy as np  # noqa: E402

from {{ cookiecutter.package_name }} import data  # noqa: E402
from {{ cookiecutter.package_name }}.drift import profile, schema  # noqa: E402
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN  # noqa: E402
from {{ cookiecutter.package_name }}_emulator import run_data  # noqa: E402


def best_seconds(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def write_wide_csv(path: Path, columns: int, rows: int) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"f{i}" for i in range(columns)), LABEL_COLUMN])
        for _ in range(rows):
            writer.writerow([*np.round(rng.random(columns), 4).tolist(), int(rng.integers(2))])
    return path


def wide(columns: int, rows: int, repeats: int, folder: Path) -> tuple[float, float]:
    """(read_csv seconds, schema.check seconds) at this width."""
    path = write_wide_csv(folder / f"wide-{columns}.csv", columns, rows)
    table = data.read_csv(path)
    reference = profile.build_profile(table, [c for c in table.columns if c != LABEL_COLUMN])
    return (
        best_seconds(lambda: data.read_csv(path), repeats),
        best_seconds(lambda: schema.check(reference, table), repeats),
    )


def classes_table(classes: int) -> data.Table:
    labels = np.repeat(np.arange(classes), 2).astype(str)
    return data.Table(["x", LABEL_COLUMN], {"x": np.arange(len(labels), dtype=float), LABEL_COLUMN: labels})


def split_seconds(classes: int, repeats: int) -> float:
    table = classes_table(classes)
    return best_seconds(lambda: run_data.split(table, LABEL_COLUMN, "multiclass"), repeats)


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
        figures = [wide(n, args.rows, args.repeats, Path(folder)) for n in args.columns]
    report("read_csv", args.columns, [f[0] for f in figures])
    report("schema.check", args.columns, [f[1] for f in figures])
    report("split", args.classes, [split_seconds(k, args.repeats) for k in args.classes])
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
