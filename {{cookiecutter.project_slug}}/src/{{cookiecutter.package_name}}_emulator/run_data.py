"""The data a local-pipeline run trains on: the built-in sample, or your own (``--data PATH``).

``prepare`` runs before moto starts and refuses bad data with one line (``DataRefused``):
unreadable CSV, no label column, one class, too few rows for the split, a column role that cannot
hold (``column_roles``). It accepts a folder with ``train/`` and ``holdout/`` CSVs, or one CSV that
it splits deterministically, following the data's columns (``split_following``):

- a timestamp column: the latest 20% of the rows are the holdout, ties at the cut included, so no
  holdout row is older than the newest training row (a model is judged on the future it serves);
- else a group column: whole groups on one side, about 20% of the rows in the holdout (seeded), so
  no group's rows are judged by a model that trained on the same group;
- else 80/20 at random (seeded), stratified by label for classification (each class on both sides).

It prints the role detections and the split used, in one line each (``DataSet.split``). It writes
``<run>/data/{train,holdout,drifted}/`` with the label column named as the project expects
(``settings.LABEL_COLUMN``; ``--label-column`` names it in your files), and ``drifted/`` made by
``drift_injection.inject`` from your training rows.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from {{ cookiecutter.package_name }} import column_roles, data, settings
from {{ cookiecutter.package_name }}.column_roles import RoleError, Roles
from {{ cookiecutter.package_name }}.data import DataError, Table

from . import drift_injection

PROBLEM_TYPE = getattr(settings, "PROBLEM_TYPE", "binary")
HOLDOUT_SHARE = 0.2
MIN_TRAIN_ROWS = 20
MIN_HOLDOUT_ROWS = 5
SEED = 42
SAMPLE = "built-in sample"


class DataRefused(ValueError):
    """The data cannot make a run; the message is the one line to show."""


@dataclass(frozen=True)
class DataSet:
    train: Path  # CSV files, label column = settings.LABEL_COLUMN
    holdout: Path
    drifted: Path
    source: str  # what the person gave (SAMPLE or the path)
    rows: tuple[int, int]  # train, holdout
    split: str = ""  # how train and holdout were made, one line ("split: by time on ...")
    detected: tuple[str, ...] = ()  # column_roles' detection lines

    @property
    def own(self) -> bool:
        """The person's data: a refusal by the gate is then an outcome, not a broken run."""
        return self.source != SAMPLE


def prepare(
    source: Path | None,
    out: Path,
    label_column: str = settings.LABEL_COLUMN,
    problem_type: str = PROBLEM_TYPE,
    roles: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> DataSet:
    """Validate and lay out the run's data under ``out``, then print its roles and split on
    ``console``; DataRefused with the reason otherwise. ``roles``: settings.COLUMN_ROLES when None."""
    detected: tuple[str, ...] = ()
    if source is None:  # the sample's columns are known: no roles to detect or declare
        train, holdout, how, skip = _sample(problem_type)
        label_column, name = settings.LABEL_COLUMN, SAMPLE
    else:
        train, holdout, how, found = _read(Path(source), label_column, problem_type, roles)
        name, detected, skip = str(source), found.detected, found.not_features()
    for part, table in (("train", train), ("holdout", holdout)):
        _check(table, label_column, problem_type, f"{name} ({part})")
    train, holdout = _renamed(train, label_column), _renamed(holdout, label_column)
    drifted = drift_injection.inject(train, settings.LABEL_COLUMN, problem_type, keep=skip)
    paths = {part: out / part / f"{part}.csv" for part in ("train", "holdout")}
    paths["drifted"] = out / "drifted" / "train.csv"
    for part, table in (("train", train), ("holdout", holdout), ("drifted", drifted)):
        data.write_csv(paths[part], table)
    rows = (train.n_rows, holdout.n_rows)
    dataset = DataSet(paths["train"], paths["holdout"], paths["drifted"], name, rows, how, detected)
    for line in (*dataset.detected, dataset.split):
        (console or Console()).print(line, soft_wrap=True, markup=False, highlight=False)
    return dataset


def _sample(problem_type: str = PROBLEM_TYPE) -> tuple[Table, Table, str, list[str]]:
    """(train, holdout, the split line, the columns drift injection keeps as they are)."""
    from . import sample_data  # scikit-learn: only when the sample is used

    table = sample_data.load_table() if hasattr(sample_data, "load_table") else sample_data.load()
    if problem_type == "ranking":  # whole queries on one side; the query column is never drifted
        train, holdout, how = _by_group(table, sample_data.QUERY_COLUMN, SAMPLE)
        return train, holdout, f"{how} of the {SAMPLE}", [sample_data.QUERY_COLUMN]
    order = np.random.default_rng(SEED).permutation(table.n_rows)
    cut = int((1 - HOLDOUT_SHARE) * table.n_rows)
    return table.take(order[:cut]), table.take(order[cut:]), f"split: random 80/20 of the {SAMPLE}", []


def _load(path: Path) -> Table:
    try:
        return data.read_csv(path)
    except DataError as error:
        raise DataRefused(f"unreadable CSV: {error}") from None


def _roles(table: Table, label_column: str, roles: Mapping[str, str] | None, name: str) -> Roles:
    try:
        return column_roles.resolve(table, label_column, roles)
    except RoleError as error:
        raise DataRefused(f"{name}: {error}") from None


def _read(
    source: Path, label_column: str, problem_type: str, roles: Mapping[str, str] | None
) -> tuple[Table, Table, str, Roles]:
    if source.is_dir():
        parts = {p: source / p for p in ("train", "holdout")}
        missing = [p for p, path in parts.items() if not path.exists()]
        if missing:
            raise DataRefused(
                f"{source}: a data folder needs train/ and holdout/ CSVs (missing: {', '.join(missing)}); "
                "or pass one CSV file to split"
            )
        train, holdout = _load(parts["train"]), _load(parts["holdout"])
        _check_label(train, label_column, f"{source} (train)")
        found = _roles(train, label_column, roles, f"{source} (train)")
        return train, holdout, "split: yours (the train/ and holdout/ folders as given)", found
    if not source.is_file():
        raise DataRefused(f"{source}: no such file or folder")
    table = _load(source)
    _check_label(table, label_column, str(source))
    found = _roles(table, label_column, roles, str(source))
    return (*split_following(table, label_column, problem_type, found, str(source)), found)


def split_following(
    table: Table, label_column: str, problem_type: str, roles: Roles, name: str = "data"
) -> tuple[Table, Table, str]:
    """(train, holdout, the split line): by time, else by group, else ``split``."""
    _enough_rows(table, name)
    if roles.group and problem_type == "ranking":  # a query split in two would be judged on half its list
        return _by_group(table, roles.group, name)
    if roles.timestamp:
        return _by_time(table, roles.timestamp, name)
    if roles.group:
        return _by_group(table, roles.group, name)
    train, holdout = split(table, label_column, problem_type, name)
    how = "" if problem_type in ("regression", "ranking") else f", stratified by {label_column!r}"
    return train, holdout, f"split: random 80/20{how}"


def _by_time(table: Table, column: str, name: str) -> tuple[Table, Table, str]:
    """The latest rows to the holdout; rows at the cut's time too, so none is older than training."""
    when = _times(table, column, name)
    order = np.argsort(when, kind="stable")
    cut = when[order[table.n_rows - max(1, round(table.n_rows * HOLDOUT_SHARE))]]
    later = when >= cut
    first = table.data[column][np.flatnonzero(later)[np.argmin(when[later])]]
    shown = f"{first:g}" if isinstance(first, float) else str(first)
    share = later.mean()
    how = f"split: by time on {column!r} (holdout = the latest {share:.0%}, from {shown})"
    return table.take(np.flatnonzero(~later)), table.take(np.flatnonzero(later)), how


def _times(table: Table, column: str, name: str) -> np.ndarray:
    """The column as sortable numbers; DataRefused naming the first row without a usable time."""
    values = table.data[column]
    try:
        when = column_roles.order_key(values)
    except ValueError:  # ISO-looking but not a date (2026-13-45), or the few non-ISO cells detection allows
        when = np.asarray([_time_or_nan(v) for v in values.tolist()])
    if np.isnan(when).any():
        row = int(np.flatnonzero(np.isnan(when))[0])
        raise DataRefused(
            f"{name}: timestamp column {column!r} has no usable time in data row {row + 1} "
            f"({values[row]!r}): fill it, or drop the row"
        )
    return when


def _time_or_nan(value: object) -> float:
    try:
        return float(column_roles.order_key(np.asarray([value], dtype=object))[0])
    except ValueError:
        return np.nan


def _by_group(table: Table, column: str, name: str) -> tuple[Table, Table, str]:
    """Whole groups to the holdout, in a seeded order, until about HOLDOUT_SHARE of the rows."""
    values = table.data[column]
    keys = np.asarray([f"{v:g}" if isinstance(v, float) else str(v) for v in values.tolist()])
    groups, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    if len(groups) < 2:
        raise DataRefused(
            f"{name}: group column {column!r} has {len(groups)} group, too few for a split by group (need 2)"
        )
    order = np.random.default_rng(SEED).permutation(len(groups))
    filled = np.cumsum(counts[order])[:-1]  # holdout rows with the first k groups, k < all: train keeps one
    k = int(np.argmin(np.abs(filled - HOLDOUT_SHARE * table.n_rows))) + 1
    held = np.isin(inverse, order[:k])
    how = (
        f"split: by group on {column!r} ({len(groups)} groups, {k} in the holdout with "
        f"{held.mean():.0%} of the rows; none on both sides)"
    )
    return table.take(np.flatnonzero(~held)), table.take(np.flatnonzero(held)), how


def split(table: Table, label_column: str, problem_type: str, name: str = "data") -> tuple[Table, Table]:
    """80/20, seeded; stratified by label for classification (each class on both sides)."""
    _enough_rows(table, name)
    rng = np.random.default_rng(SEED)
    if problem_type in ("regression", "ranking"):
        groups = [np.arange(table.n_rows)]
    else:
        groups = _rows_by_class(table.data[label_column].astype(str))
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


def _rows_by_class(labels: np.ndarray) -> list[np.ndarray]:
    """The row numbers of each class, classes sorted, rows ascending: what one mask per class gave,
    from one stable sort instead of rows x classes comparisons."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return np.split(np.argsort(inverse.ravel(), kind="stable"), np.cumsum(counts)[:-1])


def _enough_rows(table: Table, name: str) -> None:
    need = MIN_TRAIN_ROWS + MIN_HOLDOUT_ROWS
    if table.n_rows < need:
        raise DataRefused(
            f"{name}: {table.n_rows} rows, too few for the train/holdout split (need at least {need})"
        )


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
    if problem_type in ("regression", "ranking"):
        if label.dtype.kind != "f":
            raise DataRefused(
                f"{name}: label column {label_column!r} is not numeric ({problem_type} project)"
            )
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
