"""Data sets unlike the sample, for tests: other column names, string labels, categorical columns.

Built from scikit-learn's shipped sets (no download), split 80/20 with a fixed seed:

- ``binary()``: breast cancer as "yes"/"no" (malignant = "yes"), with a ``clinic`` column (text,
  noise) and a ``size_band`` column (text, binned from the tumour area: informative);
- ``multiclass()``: iris with the species names as labels and a ``petal_band`` text column;
- ``regression()``: diabetes with ``sex`` as "female"/"male" and a ``region`` text column.

The label is always ``settings.LABEL_COLUMN`` (the project reads it from there). A few cells are
missing, and the holdout holds a category never seen in training (``unseen=True``), which the
model must still answer for. ``write()`` puts a pair in train/ and holdout/ CSV folders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import datasets

from {{ cookiecutter.package_name }}.data import Table, write_csv
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN

UNSEEN = "elsewhere"


def _split(columns: dict[str, np.ndarray], seed: int, unseen: str | None) -> tuple[Table, Table]:
    table = Table(list(columns), dict(columns))
    order = np.random.default_rng(seed).permutation(table.n_rows)
    cut = int(0.8 * table.n_rows)
    train, holdout = table.take(order[:cut]), table.take(order[cut:])
    if unseen is not None:  # a category of the holdout that training never saw
        column = holdout.data[unseen].copy()
        column[::7] = UNSEEN
        holdout.data[unseen] = column
    return train, holdout


def _text(values: list[str]) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _missing(column: np.ndarray, rng: np.random.Generator, share: float = 0.03) -> np.ndarray:
    out = column.copy()
    holes = rng.random(len(out)) < share
    out[holes] = np.nan if out.dtype.kind == "f" else ""
    return out


def binary(
    string_labels: bool = True, categorical: bool = True, seed: int = 0, unseen: bool = True
) -> tuple[Table, Table]:
    bunch = datasets.load_breast_cancer()
    rng = np.random.default_rng(seed)
    columns = {f"cell_{n.replace(' ', '_')}": bunch.data[:, i] for i, n in enumerate(bunch.feature_names)}
    columns["cell_mean_texture"] = _missing(columns["cell_mean_texture"], rng)
    if categorical:
        area = bunch.data[:, list(bunch.feature_names).index("worst area")]
        bands = np.digitize(area, np.quantile(area, [1 / 3, 2 / 3]))
        columns["size_band"] = _missing(_text([("small", "medium", "large")[b] for b in bands]), rng)
        columns["clinic"] = _text(rng.choice(["north", "south", "east"], len(area)).tolist())
    target = bunch.target.astype(np.float64)
    columns[LABEL_COLUMN] = _text(["no" if t else "yes" for t in target]) if string_labels else target
    return _split(columns, seed, "clinic" if categorical and unseen else None)


def multiclass(
    string_labels: bool = True, categorical: bool = True, seed: int = 0, unseen: bool = True
) -> tuple[Table, Table]:
    bunch = datasets.load_iris()
    rng = np.random.default_rng(seed)
    names = ["sepal_len", "sepal_wid", "petal_len", "petal_wid"]
    columns = {n: bunch.data[:, i] for i, n in enumerate(names)}
    if categorical:
        columns["petal_band"] = _text(["long" if v > 4.0 else "short" for v in bunch.data[:, 2]])
        columns["lab"] = _text(rng.choice(["a", "b"], len(bunch.target)).tolist())
    species = [str(bunch.target_names[t]) for t in bunch.target]
    columns[LABEL_COLUMN] = _text(species) if string_labels else bunch.target.astype(np.float64)
    return _split(columns, seed, "lab" if categorical and unseen else None)


def regression(categorical: bool = True, seed: int = 0, unseen: bool = True) -> tuple[Table, Table]:
    bunch = datasets.load_diabetes(scaled=False)
    rng = np.random.default_rng(seed)
    names = ["age", "sex", "bmi", "blood_pressure", "tc", "ldl", "hdl", "tch", "ltg", "glucose"]
    columns = {n: bunch.data[:, i] for i, n in enumerate(names)}
    columns["bmi"] = _missing(columns["bmi"], rng)
    if categorical:
        columns["sex"] = _text(["female" if v == 1 else "male" for v in bunch.data[:, 1]])
        columns["region"] = _text(rng.choice(["coast", "inland", "hills"], len(bunch.target)).tolist())
    columns[LABEL_COLUMN] = bunch.target.astype(np.float64)
    return _split(columns, seed, "region" if categorical and unseen else None)


def write(folder: Path, train: Table, holdout: Table) -> dict[str, Path]:
    """train/train.csv and holdout/holdout.csv under ``folder``; returns both paths."""
    paths = {"train": folder / "train" / "train.csv", "holdout": folder / "holdout" / "holdout.csv"}
    write_csv(paths["train"], train)
    write_csv(paths["holdout"], holdout)
    return paths


BUILDERS = {"binary": binary, "multiclass": multiclass, "regression": regression}


def for_problem(problem_type: str, **options: bool) -> tuple[Table, Table]:
    """The data set of ``problem_type`` (string labels and categorical columns by default)."""
    return BUILDERS[problem_type](**options)
