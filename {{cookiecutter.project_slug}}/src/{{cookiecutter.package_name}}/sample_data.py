"""Write the sample dataset: scikit-learn's bundled breast-cancer table (no download), as CSV.

    python -m {{ cookiecutter.package_name }}.sample_data --out data [--drift]

Writes train/train.csv (80%) and holdout/holdout.csv (20%), split with a fixed seed. ``--drift``
also writes drifted/train.csv: the same rows with data drift (features shifted and scaled) and
concept drift (labels flipped in one region), so `--inject-drift` shows validation flag the data and
the gate block the retrained model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

from .data import Table, write_csv
from .settings import LABEL_COLUMN

DRIFTED_FEATURES = ("mean_radius", "mean_texture", "worst_area", "mean_smoothness")
CONCEPT_FEATURE = "worst_concave_points"


def load_table() -> Table:
    bunch = load_breast_cancer()
    names = [n.replace(" ", "_") for n in bunch.feature_names]
    data = {n: bunch.data[:, i].astype(np.float64) for i, n in enumerate(names)}
    data[LABEL_COLUMN] = bunch.target.astype(np.float64)
    return Table([*names, LABEL_COLUMN], data)


def drift(table: Table, seed: int = 7) -> Table:
    """Data drift and concept drift together, as when an upstream source changes.

    Data drift: a few features shifted and widened. Concept drift: where ``worst_concave_points``
    is high, 60% of the labels are flipped, so a model trained on this copy is clearly worse on
    the clean holdout and the gate blocks it even when the drift policy lets training go on.
    """
    rng = np.random.default_rng(seed)
    out = table.take(slice(None))
    for name in DRIFTED_FEATURES:
        column = out.data[name]
        out.data[name] = column * 1.6 + column.std() * (1.0 + 0.3 * rng.standard_normal(len(column)))
    concave = out.data[CONCEPT_FEATURE]
    flip = (concave > np.median(concave)) & (rng.random(len(concave)) < 0.6)
    out.data[LABEL_COLUMN] = np.where(flip, 1.0 - out.data[LABEL_COLUMN], out.data[LABEL_COLUMN])
    return out


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
