"""The reference profile written at training time, and the schema checks run against it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }} import data
from {{ cookiecutter.package_name }}.drift import data_drift, schema
from {{ cookiecutter.package_name }}.drift import profile as prof
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN, PROBLEM_TYPE
from {{ cookiecutter.package_name }}_emulator import sample_data as samples


@pytest.fixture(scope="module")
def train() -> data.Table:
    """The breast-cancer table (30 numeric features, classes 0/1), whatever the baked problem type."""
    return samples.load_table("binary")


@pytest.fixture(scope="module")
def profile(train: data.Table) -> dict:
    return prof.build_profile(train, [c for c in train.columns if c != LABEL_COLUMN], numeric_label=False)


def test_profile_of_the_sample_data(train: data.Table, profile: dict):
    assert profile["n_rows"] == train.n_rows
    assert len(profile["feature_names"]) == 30
    radius = profile["columns"]["mean_radius"]
    values = train.data["mean_radius"]
    assert radius["type"] == "numeric"
    assert (radius["min"], radius["max"]) == (values.min(), values.max())
    assert radius["missing"] == 0
    assert sum(radius["counts"]) == train.n_rows
    assert len(radius["edges"]) == prof.N_BINS - 1
    # cum = rows <= each point, exact, so the KS test sees the true reference CDF there
    assert radius["cum"] == [int(np.sum(values <= p)) for p in radius["points"]]
    assert radius["cum"][-1] == train.n_rows
    labels = profile["label"]
    assert labels["column"] == LABEL_COLUMN
    assert sum(labels["counts"].values()) == train.n_rows
    assert set(labels["counts"]) == {"0", "1"}
    assert profile["prediction"] is None


def test_profile_is_compact_and_round_trips(tmp_path: Path, profile: dict):
    path = tmp_path / "model" / prof.PROFILE_FILE
    prof.save_profile(profile, path)
    assert path.stat().st_size < 100_000  # a few KB per feature, whatever the row count
    assert prof.load_profile(path) == json.loads(json.dumps(profile))


def test_profile_keeps_scores_for_prediction_drift(train: data.Table):
    scores = np.linspace(0, 1, train.n_rows)
    built = prof.build_profile(train, ["mean_radius"], scores=scores)
    assert built["prediction"]["n"] == train.n_rows
    assert built["prediction"]["max"] == 1.0


def test_categorical_and_missing_columns():
    text = np.asarray([f"c{i % 150}" for i in range(600)] + ["", "NA"], dtype=object)
    numbers = np.concatenate([np.arange(600.0), [np.nan, np.nan]])
    table = data.Table(["t", "n", "empty"], {"t": text, "n": numbers, "empty": np.full(602, np.nan)})
    built = prof.build_profile(table, ["t", "n", "empty"])
    t = built["columns"]["t"]
    assert t["type"] == "categorical"
    assert t["missing"] == 2
    assert len(t["counts"]) == prof.MAX_CATEGORIES
    assert sum(t["counts"].values()) + t["other"] == 600
    assert built["columns"]["n"]["missing"] == 2
    assert built["columns"]["empty"] == {
        "type": "numeric",
        "n": 602,
        "missing": 602,
        "min": None,
        "max": None,
        "mean": None,
        "std": None,
    }
    assert built["label"] is None  # no label column in this table


def test_category_keys_match_numbers_and_text():
    assert prof.category_key(1.0) == "1"
    assert prof.category_key(np.float64(2.5)) == "2.5"
    assert prof.category_key(" a ") == "a"


def test_load_profile_rejects_unknown_versions(tmp_path: Path):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(prof.ProfileError, match="unsupported profile version 99"):
        prof.load_profile(path)
    path.write_text("{not json")
    with pytest.raises(prof.ProfileError, match="cannot read"):
        prof.load_profile(path)


def test_build_profile_names_a_missing_column(train: data.Table):
    with pytest.raises(data.DataError, match="no_such_column"):
        prof.build_profile(train, ["mean_radius", "no_such_column"])


# ---- schema checks ----


def _copy(table: data.Table) -> data.Table:
    return data.Table(list(table.columns), {c: v.copy() for c, v in table.data.items()})


def test_the_training_data_and_the_drifted_copy_pass_the_schema(sample_data):
    """The baked problem type's sample: its splits and its drifted copy are drift, not broken feeds."""
    train = data.read_csv(sample_data["train"])
    reference = prof.build_profile(train, [c for c in train.columns if c != LABEL_COLUMN])
    numeric = PROBLEM_TYPE in ("regression", "ranking")  # ranking: relevance grades
    assert reference["label"]["type"] == ("numeric" if numeric else "categorical")
    for name in ("train", "holdout", "drifted"):
        assert schema.check(reference, data.read_csv(sample_data[name])) == []


def test_a_regression_target_is_profiled_checked_and_drift_tested_as_a_number(train: data.Table):
    features = [c for c in train.columns if c != LABEL_COLUMN]
    table = _copy(train)
    table.data[LABEL_COLUMN] = train.data["mean_area"] / 10.0  # a continuous target
    reference = prof.build_profile(table, features, numeric_label=True)
    label = reference["label"]
    assert (label["type"], label["column"], label["n"]) == ("numeric", LABEL_COLUMN, train.n_rows)
    assert label["min"] == pytest.approx(float(table.data[LABEL_COLUMN].min()))
    assert schema.check(reference, table) == []
    same = data_drift.compare(reference, table, 0.2, 0.01)
    assert (same.label.test, same.label.drifted) == ("ks", False)
    shifted = _copy(table)
    shifted.data[LABEL_COLUMN] = table.data[LABEL_COLUMN] * 1.5
    moved = data_drift.compare(reference, shifted, 0.2, 0.01)
    assert moved.label.test == "ks" and moved.label.drifted and moved.label.p_value < 1e-6
    text = _copy(table)
    text.data[LABEL_COLUMN] = np.asarray(["high"] * table.n_rows, dtype=object)
    with pytest.raises(schema.SchemaError, match=f"'{LABEL_COLUMN}': the label must be a number"):
        schema.check(reference, text)
    sentinel = _copy(table)
    sentinel.data[LABEL_COLUMN][0] = -999.0
    with pytest.raises(schema.SchemaError, match=f"'{LABEL_COLUMN}': negative value -999"):
        schema.check(reference, sentinel)
    with pytest.raises(data.DataError, match="not numeric; a regression target must be"):
        prof.build_profile(text, features, numeric_label=True)


def test_missing_column_is_named(train: data.Table, profile: dict):
    table = _copy(train)
    table.columns.remove("mean_area")
    del table.data["mean_area"]
    with pytest.raises(schema.SchemaError, match="'mean_area'") as error:
        schema.check(profile, table)
    assert error.value.column == "mean_area"


def test_text_in_a_numeric_column_is_named(train: data.Table, profile: dict):
    table = _copy(train)
    values = table.data["mean_texture"].astype(object)
    values[3] = "n/a?"
    table.data["mean_texture"] = values
    with pytest.raises(schema.SchemaError, match=r"'mean_texture'.*expected numbers.*'n/a\?'"):
        schema.check(profile, table)


def test_a_mostly_empty_column_fails(train: data.Table, profile: dict):
    table = _copy(train)
    table.data["worst_area"][: int(0.6 * train.n_rows)] = np.nan
    with pytest.raises(schema.SchemaError, match=r"'worst_area'.*missing"):
        schema.check(profile, table)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v * 1000, "far outside the reference range"),
        (lambda v: np.where(np.arange(len(v)) == 0, -999.0, v), "negative value -999"),
    ],
    ids=["unit change", "sentinel"],
)
def test_out_of_range_values_fail(train: data.Table, profile: dict, change, message: str):
    table = _copy(train)
    table.data["mean_radius"] = change(table.data["mean_radius"])
    with pytest.raises(schema.SchemaError, match=f"'mean_radius'.*{message}"):
        schema.check(profile, table)


def test_unknown_label_value_fails(train: data.Table, profile: dict):
    table = _copy(train)
    table.data[LABEL_COLUMN][0] = 2.0
    with pytest.raises(schema.SchemaError, match=rf"'{LABEL_COLUMN}'.*label value\(s\) 2 not among"):
        schema.check(profile, table)


def test_extra_columns_are_noted_not_failed(train: data.Table, profile: dict):
    table = _copy(train)
    table.columns.append("brand_new")
    table.data["brand_new"] = np.ones(train.n_rows)
    assert schema.check(profile, table) == [
        "new column(s) not in the reference, not checked for drift: brand_new"
    ]
