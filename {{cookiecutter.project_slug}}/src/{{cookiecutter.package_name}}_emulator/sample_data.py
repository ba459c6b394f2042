"""Write the sample dataset for the project's problem type, as CSV (bundled with scikit-learn, no download).

    python -m {{ cookiecutter.package_name }}_emulator.sample_data --out data [--drift]

binary: breast cancer (569 rows, 30 features); multiclass: wine (178 rows, 13 features, 3
classes); regression: diabetes (442 rows, 10 features, a disease-progression score). Writes
train/train.csv (80%) and holdout/holdout.csv (20%), split with a fixed seed, the label in
``settings.LABEL_COLUMN``. ``--drift`` also writes drifted/train.csv: the same rows with data
drift and concept drift from ``drift_injection.inject``, so `--inject-drift` shows validation flag
the data and the gate block the retrained model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn import datasets

from {{ cookiecutter.package_name }}.data import Table, write_csv
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN, PROBLEM_TYPE

from .drift_injection import inject

LOADERS = {
    "binary": datasets.load_breast_cancer,
    "multiclass": datasets.load_wine,
    "regression": datasets.load_diabetes,
}
# Among the features drift_injection shifts (the first third of the numeric ones), for tests.
DRIFTED_FEATURES = {
    "binary": ("mean_radius", "mean_texture", "mean_area", "mean_smoothness"),
    "multiclass": ("alcohol", "malic_acid", "ash", "magnesium"),
    "regression": ("age", "sex", "bmi", "bp"),
}[PROBLEM_TYPE]


def load_table(problem_type: str | None = None) -> Table:
    bunch = LOADERS[problem_type or PROBLEM_TYPE]()
    names = [n.replace(" ", "_").replace("/", "_") for n in bunch.feature_names]
    data = {n: bunch.data[:, i].astype(np.float64) for i, n in enumerate(names)}
    data[LABEL_COLUMN] = bunch.target.astype(np.float64)
    return Table([*names, LABEL_COLUMN], data)


def drift(table: Table, seed: int = 7) -> Table:
    """Data drift and concept drift together, as when an upstream source changes (see drift_injection)."""
    return inject(table, LABEL_COLUMN, PROBLEM_TYPE, seed)


def write(out: Path, with_drift: bool = False, seed: int = 42) -> dict[str, Path]:
    table = load_table()
    order = np.random.default_rng(seed).permutation(table.n_rows)
    cut = int(0.8 * table.n_rows)
    paths = {"train": out / "train" / "train.csv", "holdout": out / "holdout" / "holdout.csv"}
    write_csv(paths["train"], table, order[:cut])
    write_csv(paths["holdout"], table, order[cut:])
    if with_drift:
        paths["drifted"] = out / "drifted" / "train.csv"
        write_csv(paths["drifted"], drift(table), order[:cut])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"))
    parser.add_argument("--drift", action="store_true", help="also write a drifted copy of the training set")
    args = parser.parse_args()
    for name, path in write(args.out, args.drift).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
