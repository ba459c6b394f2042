"""Data sets unlike the sample, for tests: other column names, string labels, categorical columns.

Built from scikit-learn's shipped sets (no download), split 80/20 with a fixed seed:

- ``binary()``: breast cancer as "yes"/"no" (malignant = "yes"), with a ``clinic`` column (text,
  noise) and a ``size_band`` column (text, binned from the tumour area: informative);
- ``multiclass()``: iris with the species names as labels and a ``petal_band`` text column;
- ``regression()``: diabetes with ``sex`` as "female"/"male" and a ``region`` text column;
- ``ranking()``: the emulator's synthetic search results (300 queries x 10 documents, grades 0-3,
  the query in ``query_id``) with a ``market`` text column (noise); split by query, so no query
  is on both sides.

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


def ranking(
    categorical: bool = True, seed: int = 0, unseen: bool = True, string_labels: bool = False
) -> tuple[Table, Table]:
    """Grades are numbers whatever ``string_labels`` says (accepted so callers stay generic)."""
    from {{ cookiecutter.package_name }}_emulator.sample_data import QUERY_COLUMN, ranking_table

    table = ranking_table(seed=seed)
    rng = np.random.default_rng(seed)
    columns = dict(table.data)
    columns["text_match"] = _missing(columns["text_match"], rng)
    if categorical:
        columns["market"] = _text(rng.choice(["uk", "de", "fr"], table.n_rows).tolist())
    names = [c for c in table.columns if c != LABEL_COLUMN] + (["market"] if categorical else [])
    table = Table([*names, LABEL_COLUMN], {n: columns[n] for n in [*names, LABEL_COLUMN]})
    queries = np.unique(table.data[QUERY_COLUMN])
    held = np.isin(
        table.data[QUERY_COLUMN], np.random.default_rng(seed).permutation(queries)[: len(queries) // 5]
    )
    train, holdout = table.take(np.flatnonzero(~held)), table.take(np.flatnonzero(held))
    if categorical and unseen:
        column = holdout.data["market"].copy()
        column[::7] = UNSEEN
        holdout.data["market"] = column
    return train, holdout


def write(folder: Path, train: Table, holdout: Table) -> dict[str, Path]:
    """train/train.csv and holdout/holdout.csv under ``folder``; returns both paths."""
    paths = {"train": folder / "train" / "train.csv", "holdout": folder / "holdout" / "holdout.csv"}
    write_csv(paths["train"], train)
    write_csv(paths["holdout"], holdout)
    return paths


BUILDERS = {"binary": binary, "multiclass": multiclass, "regression": regression, "ranking": ranking}


def for_problem(problem_type: str, **options: bool) -> tuple[Table, Table]:
    """The data set of ``problem_type`` (string labels and categorical columns by default)."""
    return BUILDERS[problem_type](**options)


def listings(n: int, seed: int = 0, problem_type: str | None = None, vocabulary: str = "w") -> Table:
    """A marketplace's listings, shuffled in time: ``listing_id`` (distinct whole numbers),
    ``listed_at`` (ISO datetimes), ``description`` (5-30 words, unique per row; the signal is in a
    few of its words), ``price`` (a weak signal) and ``rooms`` (noise). ``vocabulary`` prefixes every
    word: another prefix is another language with the same structure (drift tests).
    """
    from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE

    problem = problem_type or PROBLEM_TYPE
    rng = np.random.default_rng(seed)
    classes = 3 if problem == "multiclass" else 2
    y = rng.integers(0, classes, n)
    neutral = [f"{vocabulary}{i}" for i in range(1500)]
    signal = [[f"{vocabulary}s{c}x{i}" for i in range(40)] for c in range(classes)]
    texts = []
    for i in range(n):
        words = list(rng.choice(neutral, rng.integers(5, 31)))
        hits = rng.binomial(3, 0.6)
        words[:hits] = list(rng.choice(signal[y[i]], hits)) if hits else []
        rng.shuffle(words)
        texts.append(" ".join(words) + f" ref{i}")
    days = rng.permutation(n)
    columns = {
        "listing_id": (rng.permutation(n) + 10_000).astype(np.float64),
        "listed_at": np.asarray(
            [
                str(np.datetime64("2025-01-01T00:00:00") + np.timedelta64(int(d) * 3600, "s")) + "Z"
                for d in days
            ],
            dtype=object,
        ),
        "description": np.asarray(texts, dtype=object),
        "price": rng.normal(100, 20, n) + 8 * y,
        "rooms": rng.integers(1, 6, n).astype(np.float64),
    }
    if problem == "regression":
        columns[LABEL_COLUMN] = 50.0 + 40.0 * y + rng.normal(0, 5, n)
    elif problem == "ranking":  # relevance grades (these listings have no query column)
        columns[LABEL_COLUMN] = y.astype(np.float64)
    elif problem == "binary":
        columns[LABEL_COLUMN] = np.asarray(["yes" if v else "no" for v in y], dtype=object)
    else:
        columns[LABEL_COLUMN] = np.asarray([["house", "flat", "studio"][v] for v in y], dtype=object)
    return Table(list(columns), columns)
