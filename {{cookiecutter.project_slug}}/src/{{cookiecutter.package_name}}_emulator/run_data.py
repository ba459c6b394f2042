"""The data a local-pipeline run trains on: the built-in sample, or your own (``--data PATH``).

``prepare`` runs before moto starts and refuses bad data with one line (``DataRefused``):
unreadable CSV, no label column, one class, too few rows for the split. It accepts a folder with
``train/`` and ``holdout/`` CSVs, or one CSV that it splits deterministically (80/20, seeded;
stratified by label for classification, so every class is on both sides). It writes
``<run>/data/{train,holdout,drifted}/`` with the label column named as the project expects
(``settings.LABEL_COLUMN``; ``--label-column`` names it in your files), and ``drifted/`` made by
``drift_injection.inject`` from your training rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from {{ cookiecutter.package_name }} import data, settings
from {{ cookiecutter.package_name }}.data import DataError, Table

from . import drift_injection

PROBLEM_TYPE = getattr(settings, "PROBLEM_TYPE", "binary")
HOLDOUT_SHARE = 0.2
MIN_TRAIN_ROWS = 20
MIN_HOLDOUT_ROWS = 5
SEED = 42


class DataRefused(ValueError):
    """The data cannot make a run; the message is the one line to show."""


@dataclass(frozen=True)
class DataSet:
    train: Path  # CSV files, label column = settings.LABEL_COLUMN
    holdout: Path
    drifted: Path
    source: str  # what the person gave ("built-in sample" or the path)
    rows: tuple[int, int]  # train, holdout


def prepare(
    source: Path | None,
    out: Path,
    label_column: str = settings.LABEL_COLUMN,
    problem_type: str = PROBLEM_TYPE,
) -> DataSet:
    """Validate and lay out the run's data under ``out``; DataRefused with the reason otherwise."""
    if source is None:
        train, holdout = _sample()
        label_column, name = settings.LABEL_COLUMN, "built-in sample"
    else:
        train, holdout = _read(Path(source), label_column, problem_type)
        name = str(source)
    for part, table in (("train", train), ("holdout", holdout)):
        _check(table, label_column, problem_type, f"{name} ({part})")
    train, holdout = _renamed(train, label_column), _renamed(holdout, label_column)
    drifted = drift_injection.inject(train, settings.LABEL_COLUMN, problem_type)
    paths = {part: out / part / f"{part}.csv" for part in ("train", "holdout")}
    paths["drifted"] = out / "drifted" / "train.csv"
    for part, table in (("train", train), ("holdout", holdout), ("drifted", drifted)):
        data.write_csv(paths[part], table)
    return DataSet(paths["train"], paths["holdout"], paths["drifted"], name, (train.n_rows, holdout.n_rows))


def _sample() -> tuple[Table, Table]:
    from . import sample_data  # scikit-learn: only when the sample is used

    table = sample_data.load_table() if hasattr(sample_data, "load_table") else sample_data.load()
    order = np.random.default_rng(SEED).permutation(table.n_rows)
    cut = int((1 - HOLDOUT_SHARE) * table.n_rows)
    return table.take(order[:cut]), table.take(order[cut:])


def _load(path: Path) -> Table:
    try:
        return data.read_csv(path)
    except DataError as error:
        raise DataRefused(f"unreadable CSV: {error}") from None


def _read(source: Path, label_column: str, problem_type: str) -> tuple[Table, Table]:
    if source.is_dir():
        parts = {p: source / p for p in ("train", "holdout")}
        missing = [p for p, path in parts.items() if not path.exists()]
        if missing:
            raise DataRefused(
                f"{source}: a data folder needs train/ and holdout/ CSVs (missing: {', '.join(missing)}); "
                "or pass one CSV file to split"
            )
        return _load(parts["train"]), _load(parts["holdout"])
    if not source.is_file():
        raise DataRefused(f"{source}: no such file or folder")
    table = _load(source)
    _check_label(table, label_column, str(source))
    return split(table, label_column, problem_type, str(source))


def split(table: Table, label_column: str, problem_type: str, name: str = "data") -> tuple[Table, Table]:
    """80/20, seeded; stratified by label for classification (each class on both sides)."""
    need = MIN_TRAIN_ROWS + MIN_HOLDOUT_ROWS
    if table.n_rows < need:
        raise DataRefused(
            f"{name}: {table.n_rows} rows, too few for the train/holdout split (need at least {need})"
        )
    rng = np.random.default_rng(SEED)
    if problem_type == "regression":
        groups = [np.arange(table.n_rows)]
    else:
        # One pass for every class (np.unique's inverse, then a stable sort), not a mask per class.
        _, inverse = np.unique(table.data[label_column].astype(str), return_inverse=True)
        order = np.argsort(inverse.reshape(-1), kind="stable")
        groups = np.split(order, np.cumsum(np.bincount(inverse.reshape(-1)))[:-1])
        small = [str(table.data[label_column][g[0]]) for g in groups if len(g) < 2]
        if small and len(groups) > 1:
            raise DataRefused(
                f"{name}: class {small[0]!r} of {label_column!r} has 1 row, too few for the split "
                "(each class needs a row in train and in holdout)"
            )
    train_rows, holdout_rows = [], []
    for group in groups:
        shuffled = rng.permutation(group)
        cut = max(1, round(len(shuffled) * HOLDOUT_SHARE))
        holdout_rows.append(shuffled[:cut])
        train_rows.append(shuffled[cut:])
    return table.take(np.sort(np.concatenate(train_rows))), table.take(np.sort(np.concatenate(holdout_rows)))


def _check_label(table: Table, label_column: str, name: str) -> None:
    if label_column not in table.data:
        raise DataRefused(
            f"{name}: no label column {label_column!r} (columns: {', '.join(table.columns[:8])}"
            f"{', ...' if len(table.columns) > 8 else ''}); name it with --label-column"
        )


def _check(table: Table, label_column: str, problem_type: str, name: str) -> None:
    _check_label(table, label_column, name)
    if label_column != settings.LABEL_COLUMN and settings.LABEL_COLUMN in table.data:
        raise DataRefused(
            f"{name}: column {settings.LABEL_COLUMN!r} is the project's label name but here a feature: rename it"
        )
    if len(table.columns) < 2:
        raise DataRefused(f"{name}: no feature columns besides the label {label_column!r}")
    minimum = MIN_HOLDOUT_ROWS if name.endswith("(holdout)") else MIN_TRAIN_ROWS
    if table.n_rows < minimum:
        raise DataRefused(f"{name}: {table.n_rows} rows, too few (need at least {minimum})")
    label = table.data[label_column]
    present = label[~np.isnan(label)] if label.dtype.kind == "f" else label[label != ""]
    if len(present) < len(label):
        raise DataRefused(f"{name}: {len(label) - len(present)} row(s) without a label in {label_column!r}")
    if problem_type == "regression":
        if label.dtype.kind != "f":
            raise DataRefused(f"{name}: label column {label_column!r} is not numeric (regression project)")
        if name.endswith("(train)") and np.all(present == present[0]):
            raise DataRefused(
                f"{name}: label column {label_column!r} has one value ({present[0]:g}): a regression needs targets that vary"
            )
        return
    classes = np.unique(present.astype(str))
    if len(classes) < 2 and name.endswith("(train)"):
        raise DataRefused(
            f"{name}: label column {label_column!r} has one class ({str(classes[0])!r}): a classifier needs two or more"
        )


def _renamed(table: Table, label_column: str) -> Table:
    if label_column == settings.LABEL_COLUMN:
        return table
    columns = [settings.LABEL_COLUMN if c == label_column else c for c in table.columns]
    data_ = {settings.LABEL_COLUMN if c == label_column else c: v for c, v in table.data.items()}
    return Table(columns, data_)


def one_class_copy(train_csv: Path, target: Path) -> Path:
    """The training set with every label set to the first row's: valid data, untrainable model."""
    with train_csv.open(newline="") as handle:
        rows = list(csv.reader(handle))
    label = rows[0].index(settings.LABEL_COLUMN)
    first = rows[1][label]
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        csv.writer(handle).writerows([rows[0], *([*r[:label], first, *r[label + 1 :]] for r in rows[1:])])
    return target


def training_sets(dataset: DataSet, data_dir: Path) -> dict[str, Path]:
    """The training sets a scenario step can upload: ``train``, ``drifted`` and ``one-class``."""
    return {
        "train": dataset.train,
        "drifted": dataset.drifted,
        "one-class": one_class_copy(dataset.train, data_dir / "one-class" / "train.csv"),
    }
