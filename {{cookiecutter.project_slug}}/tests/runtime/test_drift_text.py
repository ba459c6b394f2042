"""Drift sees free text, and ids and timestamps are never drift-tested (issue 23).

Seeded texts written here: each row 5-30 words drawn from a Zipf-like vocabulary, so the texts are
nearly all distinct, as descriptions are.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }} import data
from {{ cookiecutter.package_name }}.drift import data_drift, schema
from {{ cookiecutter.package_name }}.drift import profile as prof
from {{ cookiecutter.package_name }}.predictor import METADATA_FILE
from {{ cookiecutter.package_name }}.reports import pages
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN, PSI_THRESHOLD
from {{ cookiecutter.package_name }}.steps import validate

ALPHA = 0.01
ROWS = 2000
ROLES = {"id": ["row_id"], "timestamp": "created", "group": None, "weight": None}


def _vocabulary(prefix: str, size: int = 400) -> np.ndarray:
    return np.asarray([f"{prefix}{i:03d}" for i in range(size)], dtype=object)


def _texts(rng: np.random.Generator, vocabulary: np.ndarray, rows: int) -> np.ndarray:
    """``rows`` texts of 5-30 words, word i of the vocabulary drawn with weight 1/(i+1)."""
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    lengths = rng.integers(5, 31, size=rows)
    drawn = rng.choice(vocabulary, size=int(lengths.sum()), p=weights / weights.sum())
    return np.asarray([" ".join(row) for row in np.split(drawn, np.cumsum(lengths)[:-1])], dtype=object)


def _swap(texts: np.ndarray, old: str, new: str) -> np.ndarray:
    """The same texts, word for word, in another vocabulary: same lengths, same frequencies."""
    return np.asarray([t.replace(old, new) for t in texts], dtype=object)


def _table(**columns: np.ndarray) -> data.Table:
    return data.Table(list(columns), dict(columns))


@pytest.fixture(scope="module")
def reference() -> data.Table:
    rng = np.random.default_rng(23)
    return _table(
        row_id=np.arange(ROWS, dtype=np.float64),
        created=np.asarray([f"2026-01-{1 + i % 28:02d}T10:00:00Z" for i in range(ROWS)], dtype=object),
        description=_texts(rng, _vocabulary("alpha"), ROWS),
        x=rng.normal(size=ROWS),
        **{LABEL_COLUMN: rng.integers(0, 2, size=ROWS).astype(np.float64)},
    )


@pytest.fixture(scope="module")
def profile(reference: data.Table) -> dict:
    return prof.build_profile(
        reference, ["description", "x"], kinds=["text", "numeric"], roles=ROLES, numeric_label=False
    )


def _with(table: data.Table, **columns: np.ndarray) -> data.Table:
    changed = {**table.data, **columns}
    return data.Table([*table.columns, *(c for c in columns if c not in table.data)], changed)


def _validate(profile: dict, table: data.Table, folder: Path) -> tuple[dict, data_drift.DriftResult]:
    """validate.run on ``table`` against a reference model folder that holds ``profile``."""
    model = folder / "model"
    model.mkdir()
    (model / METADATA_FILE).write_text("{}")  # validation reads only the profile
    prof.save_profile(profile, model / prof.PROFILE_FILE)
    data.write_csv(folder / "new" / "new.csv", table)
    argv = ["--data", str(folder / "new"), "--reference-model", str(model), "--output", str(folder / "out")]
    return validate.run(validate.parse_args(argv))


def _text_result(profile: dict, table: data.Table) -> data_drift.FeatureDrift:
    return data_drift.compare(profile, table, PSI_THRESHOLD, ALPHA).features["description"]


def test_a_text_column_is_profiled_by_its_words(profile: dict, reference: data.Table):
    text = profile["columns"]["description"]
    assert text["type"] == "text" and (text["n"], text["missing"]) == (ROWS, 0)
    assert len(text["counts"]) == prof.MAX_TERMS
    assert list(text["counts"])[:2] == ["alpha000", "alpha001"]  # most frequent first
    total = sum(len(t.split()) for t in reference.data["description"])
    assert sum(text["counts"].values()) + text["other"] == text["tokens"] == total
    assert text["length"]["type"] == "numeric" and 5 <= text["length"]["mean"] <= 30
    assert profile["roles"] == ROLES
    assert "row_id" not in profile["columns"] and "created" not in profile["columns"]


def test_a_swapped_vocabulary_drifts_and_reshuffled_texts_do_not(profile: dict, reference: data.Table):
    omega = _swap(reference.data["description"], "alpha", "omega")
    swapped = _text_result(profile, _with(reference, description=omega))
    assert swapped.kind == "text" and swapped.drifted
    assert swapped.psi > 10 * PSI_THRESHOLD
    assert swapped.text.oov_rate == 1.0 and swapped.text.reference_oov_rate < 0.5
    assert swapped.text.length.psi == pytest.approx(0.0, abs=1e-12)  # the lengths did not move
    assert any("outside the reference's top words" in r for r in swapped.text.reasons)
    entry = swapped.as_json()
    assert entry["oov_rate"] == 1.0 and entry["test"] == "ks-length" and entry["drifted"]

    reshuffled = np.random.default_rng(5).permutation(reference.data["description"])
    shuffled = _text_result(profile, _with(reference, description=reshuffled))
    assert not shuffled.drifted and shuffled.text.reasons == []
    assert shuffled.psi == pytest.approx(0.0, abs=1e-12)
    assert shuffled.text.oov_rate == pytest.approx(shuffled.text.reference_oov_rate)


def test_fresh_texts_from_the_same_vocabulary_do_not_drift(profile: dict):
    fresh = _texts(np.random.default_rng(99), _vocabulary("alpha"), ROWS)
    result = _text_result(profile, _table(description=fresh, x=np.random.default_rng(1).normal(size=ROWS)))
    assert not result.drifted and result.psi < PSI_THRESHOLD / 4


def test_three_times_longer_texts_drift_by_words_per_row(profile: dict, reference: data.Table):
    tripled = np.asarray([" ".join([t] * 3) for t in reference.data["description"]], dtype=object)
    result = _text_result(profile, _with(reference, description=tripled))
    assert result.psi == pytest.approx(0.0, abs=1e-12)  # same words, same shares
    assert result.drifted and result.text.length.psi > PSI_THRESHOLD
    assert any(r.startswith("words per row PSI") for r in result.text.reasons)


def test_id_and_timestamp_columns_are_accepted_not_profiled_and_extras_still_noted(
    profile: dict, reference: data.Table, tmp_path: Path
):
    later = _with(
        reference,
        row_id=reference.data["row_id"] + 1_000_000,  # new ids: every value unseen
        created=np.asarray([f"2026-06-{1 + i % 28:02d}T10:00:00Z" for i in range(ROWS)], dtype=object),
    )
    assert schema.check(profile, later) == []
    extra = _with(later, brand_new=np.ones(ROWS))
    note = "new column(s) not in the reference, not checked for drift: brand_new"
    assert schema.check(profile, extra) == [note]
    decision, _ = _validate(profile, extra, tmp_path)
    assert set(decision["features"]) == {"description", "x"}
    assert decision["drift_detected"] is False and decision["decision"] == "proceed"
    assert decision["reasons"][-1] == note
    assert "oov_rate" in decision["features"]["description"]
    json.dumps(decision, allow_nan=False)  # decision.json stays strict JSON


def test_validate_names_the_text_test_that_fired(profile: dict, reference: data.Table, tmp_path: Path):
    swapped = _with(reference, description=_swap(reference.data["description"], "alpha", "omega"))
    decision, result = _validate(profile, swapped, tmp_path)
    assert decision["drifted_features"] == ["description"]
    assert any(r.startswith("text column 'description': token PSI") for r in decision["reasons"])
    assert "description" in pages.validation_page(decision, result)  # the report renders a text column


def test_the_profile_of_70000_distinct_texts_is_small_and_holds_no_text():
    rng = np.random.default_rng(70)
    texts = _texts(rng, _vocabulary("word", 5000), 70_000)
    texts = np.asarray([f"{t} ticket{i}" for i, t in enumerate(texts)], dtype=object)  # all distinct
    assert len(set(texts.tolist())) == 70_000
    built = prof.build_profile(_table(description=texts), ["description"], kinds=["text"])
    dumped = json.dumps(built, separators=(",", ":"))
    assert len(dumped.encode()) < 64_000
    assert len(built["columns"]["description"]["counts"]) == prof.MAX_TERMS
    assert not any(t in dumped for t in texts[:2000].tolist())  # single words only, never a text


def test_an_old_profile_without_kinds_or_roles_still_reads(tmp_path: Path, reference: data.Table):
    """What train.py writes today (no kinds, no roles): dtype decides, as before issue 23."""
    old = prof.build_profile(reference, ["description", "x"], numeric_label=False)
    assert "roles" not in old and old["version"] == 1
    assert old["columns"]["description"]["type"] == "categorical"
    path = tmp_path / prof.PROFILE_FILE
    prof.save_profile(old, path)
    loaded = prof.load_profile(path)
    assert validate.profile_problem(loaded) is None
    assert schema.check(loaded, reference) == [
        "new column(s) not in the reference, not checked for drift: row_id, created"
    ]
    assert not data_drift.compare(loaded, reference, PSI_THRESHOLD, ALPHA).drift_detected


def test_a_damaged_text_profile_or_roles_is_named(profile: dict):
    damaged = json.loads(json.dumps(profile))
    del damaged["columns"]["description"]["length"]
    assert validate.profile_problem(damaged) == "column 'description': missing field(s) length"
    damaged = json.loads(json.dumps(profile))
    damaged["roles"]["id"] = "row_id"
    assert validate.profile_problem(damaged) == "'roles': 'id' is not a list of column names"


def test_kinds_are_checked_and_overrule_the_dtype(reference: data.Table):
    with pytest.raises(data.DataError, match="one kind per feature"):
        prof.build_profile(reference, ["description", "x"], kinds=["text"])
    with pytest.raises(data.DataError, match="'description' is numeric but holds text"):
        prof.build_profile(reference, ["description"], kinds=["numeric"])
    with pytest.raises(data.DataError, match="cannot be a feature and a role"):
        prof.build_profile(reference, ["x", "row_id"], roles=ROLES)
    codes = prof.build_profile(reference, ["x"], kinds=["categorical"])["columns"]["x"]
    assert codes["type"] == "categorical"
