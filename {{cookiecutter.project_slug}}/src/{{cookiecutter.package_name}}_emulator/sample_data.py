"""Write the sample dataset for the project's problem type, as CSV (bundled with scikit-learn, no download).

    python -m {{ cookiecutter.package_name }}_emulator.sample_data --out data [--drift]

binary: breast cancer (569 rows, 30 features); multiclass: wine (178 rows, 13 features, 3
classes); regression: diabetes (442 rows, 10 features, a disease-progression score); ranking:
synthetic search results (300 queries x 10 documents, 8 features, relevance grades 0-3, the query
in ``query_id``, generated with a fixed seed). Writes train/train.csv (80%) and
holdout/holdout.csv (20%), split with a fixed seed (ranking: whole queries on one side), the label
in ``settings.LABEL_COLUMN``. ``--drift`` also writes drifted/train.csv: the same rows with data
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
# Ranking: the query column (settings.COLUMN_ROLES names it "group") and the documents' features.
QUERY_COLUMN = "query_id"
RANKING_FEATURES = (
    "text_match",
    "title_match",
    "freshness",
    "popularity",
    "click_rate",
    "price_gap",
    "doc_length",
    "noise",
)
# Among the features drift_injection shifts (the first third of the numeric ones), for tests.
DRIFTED_FEATURES = {
    "binary": ("mean_radius", "mean_texture", "mean_area", "mean_smoothness"),
    "multiclass": ("alcohol", "malic_acid", "ash", "magnesium"),
    "regression": ("age", "sex", "bmi", "bp"),
    "ranking": ("text_match", "title_match", "freshness"),
}[PROBLEM_TYPE]


def ranking_table(n_queries: int = 300, per_query: int = 10, seed: int = 0) -> Table:
    """Search results: a hidden relevance from the features (non-linear terms, a query-wide offset
    that no order within the query can use, noise), cut into grades 0-3 (about 50/30/15/5%)."""
    rng = np.random.default_rng(seed)
    n = n_queries * per_query
    X = rng.normal(size=(n, len(RANKING_FEATURES)))
    query = np.repeat(np.arange(n_queries), per_query)
    offset = rng.normal(scale=0.5, size=n_queries)[query]
    # A ranker's trees find the product and the |x| terms, which a linear pointwise model cannot
    # (holdout NDCG@10 ~0.90 against ~0.86; a random order scores ~0.63: every list has 10 rows).
    latent = (
        1.0 * X[:, 0] + 0.6 * X[:, 1] + 0.8 * X[:, 2] * X[:, 3] + 0.8 * np.abs(X[:, 4]) - 0.5 * X[:, 5]
        + offset + rng.normal(scale=1.0, size=n)
    )  # fmt: skip
    grades = np.digitize(latent, np.quantile(latent, [0.5, 0.8, 0.95])).astype(np.float64)
    data = {name: X[:, i] for i, name in enumerate(RANKING_FEATURES)}
    data[QUERY_COLUMN] = np.asarray([f"q{q:04d}" for q in query], dtype=object)
    data[LABEL_COLUMN] = grades
    return Table([QUERY_COLUMN, *RANKING_FEATURES, LABEL_COLUMN], data)


def load_table(problem_type: str | None = None) -> Table:
    if (problem_type or PROBLEM_TYPE) == "ranking":
        return ranking_table()
    bunch = LOADERS[problem_type or PROBLEM_TYPE]()
    names = [n.replace(" ", "_").replace("/", "_") for n in bunch.feature_names]
    data = {n: bunch.data[:, i].astype(np.float64) for i, n in enumerate(names)}
    data[LABEL_COLUMN] = bunch.target.astype(np.float64)
    return Table([*names, LABEL_COLUMN], data)


def drift(table: Table, seed: int = 7) -> Table:
    """Data drift and concept drift together, as when an upstream source changes (see drift_injection)."""
    keep = (QUERY_COLUMN,) if PROBLEM_TYPE == "ranking" else ()
    return inject(table, LABEL_COLUMN, PROBLEM_TYPE, seed, keep=keep)


def write(out: Path, with_drift: bool = False, seed: int = 42) -> dict[str, Path]:
    table = load_table()
    order = np.random.default_rng(seed).permutation(table.n_rows)
    cut = int(0.8 * table.n_rows)
    if PROBLEM_TYPE == "ranking":  # whole queries on one side: 80% of the queries, in a seeded order
        queries = np.unique(table.data[QUERY_COLUMN])
        held = np.random.default_rng(seed).permutation(queries)[int(0.8 * len(queries)) :]
        in_holdout = np.isin(table.data[QUERY_COLUMN], held)
        order = np.concatenate([np.flatnonzero(~in_holdout), np.flatnonzero(in_holdout)])
        cut = int((~in_holdout).sum())
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
