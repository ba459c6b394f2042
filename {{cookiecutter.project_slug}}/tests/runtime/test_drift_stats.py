"""Drift statistics: hand-computed PSI, false-positive rate on identical data, known shifts flagged."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from {{ cookiecutter.package_name }}.data import Table
from {{ cookiecutter.package_name }}.drift import data_drift
from {{ cookiecutter.package_name }}.drift.profile import build_profile

EPS = data_drift.PSI_EPSILON
PSI_THRESHOLD, ALPHA = 0.2, 0.01  # the template's default answers


def _table(**columns: np.ndarray) -> Table:
    return Table(list(columns), dict(columns))


def _compare(reference: Table, current: Table, names: list[str] | None = None) -> data_drift.DriftResult:
    names = names or [c for c in reference.columns if c != "target"]
    return data_drift.compare(build_profile(reference, names), current, PSI_THRESHOLD, ALPHA)


def _hand_psi(ref_shares: list[float], cur_shares: list[float]) -> float:
    return sum((c - r) * math.log(c / r) for r, c in zip(ref_shares, cur_shares, strict=True))


def test_psi_of_explicit_counts():
    # shares 0.5/0.3/0.2 -> 0.4/0.3/0.3
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.3 - 0.2) * math.log(0.3 / 0.2)
    assert data_drift.psi(np.array([50, 30, 20]), np.array([40, 30, 30])) == pytest.approx(
        expected, rel=1e-12
    )
    assert expected == pytest.approx(0.062861, abs=1e-6)


def test_psi_floors_empty_bins_at_epsilon():
    expected = (EPS - 0.5) * math.log(EPS / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert data_drift.psi(np.array([50, 50]), np.array([0, 100])) == pytest.approx(expected, rel=1e-12)
    assert data_drift.psi(np.array([50, 50, 0]), np.array([50, 50, 0])) == 0.0


def test_numeric_psi_uses_reference_deciles():
    # Reference 1..100: deciles 10, 20, ..., 90, ten values per bin.
    reference = _table(x=np.arange(1.0, 101.0))
    # Current: 20 values in (-inf, 10], 10 in each middle bin, 5 in (80, 90] and 5 in (90, inf).
    per_bin = [20, 10, 10, 10, 10, 10, 10, 10, 5, 5]
    lows = [0.0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    current = _table(x=np.concatenate([np.full(n, low + 0.5) for n, low in zip(per_bin, lows, strict=True)]))
    result = _compare(reference, current).features["x"]
    assert result.reference_counts == [0, *[10] * 10]  # the first bin counts missing values
    assert result.current_counts == [0, *per_bin]
    expected = _hand_psi([0.1] * 10, [n / 100 for n in per_bin])
    assert expected == pytest.approx(2 * 0.05 * math.log(2) + 0.1 * math.log(2))
    assert result.psi == pytest.approx(expected, rel=1e-9)


def test_categorical_psi_and_chi2_by_category():
    reference = _table(c=np.asarray(["a"] * 50 + ["b"] * 30 + ["c"] * 20, dtype=object))
    current = _table(c=np.asarray(["a"] * 40 + ["b"] * 30 + ["c"] * 30, dtype=object))
    result = _compare(reference, current).features["c"]
    assert result.bins == ["a", "b", "c", "other", "missing"]
    assert result.psi == pytest.approx(_hand_psi([0.5, 0.3, 0.2], [0.4, 0.3, 0.3]), rel=1e-9)
    expected_p = stats.chi2_contingency(np.array([[50, 30, 20], [40, 30, 30]])).pvalue
    assert result.test == "chi2"
    assert result.p_value == pytest.approx(expected_p)


def test_holm_adjustment_by_hand():
    adjusted = data_drift.holm(np.array([0.01, 0.04, 0.03, 0.005]))
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


@pytest.mark.parametrize("seed", range(5))
def test_binned_ks_is_never_more_significant_than_the_full_test(seed: int):
    """The CDF gap over the reference percentiles is <= the full D: the p-value is conservative."""
    rng = np.random.default_rng(seed)
    reference, current = rng.normal(size=455), rng.normal(0.15, 1.1, size=400)
    result = _compare(_table(x=reference), _table(x=current)).features["x"]
    full = stats.ks_2samp(reference, current, method="asymp")
    assert result.p_value >= full.pvalue * (1 - 1e-9)
    assert result.p_value <= 1.0


def _mixed_table(rng: np.random.Generator, rows: int, features: int) -> Table:
    """Normal, skewed, discrete (many ties) and categorical features, plus a label."""
    columns: dict[str, np.ndarray] = {}
    for j in range(features):
        kind = j % 4
        if kind == 0:
            columns[f"f{j}"] = rng.normal(size=rows)
        elif kind == 1:
            columns[f"f{j}"] = rng.lognormal(0.0, 1.0, size=rows)
        elif kind == 2:
            columns[f"f{j}"] = rng.poisson(3, size=rows).astype(np.float64)
        else:
            columns[f"f{j}"] = np.asarray(
                rng.choice(list("abcd"), rows, p=[0.4, 0.3, 0.2, 0.1]), dtype=object
            )
    columns["target"] = (rng.random(rows) < 0.4).astype(np.float64)
    return Table(list(columns), columns)


@pytest.mark.parametrize("rows", [455, 5000])
def test_identical_distributions_are_not_flagged(rows: int):
    """50 seeds x 20 features drawn twice from the same distributions, at the default thresholds."""
    flagged_features, flagged_runs, raw_rejections = [], [], []
    for seed in range(50):
        rng = np.random.default_rng(seed)
        result = _compare(_mixed_table(rng, rows, 20), _mixed_table(rng, rows, 20))
        flagged_features += [f.drifted for f in result.features.values()]
        raw_rejections += [f.p_value < ALPHA for f in result.features.values()]
        flagged_runs.append(result.drift_detected)
    feature_rate, run_rate = np.mean(flagged_features), np.mean(flagged_runs)
    print(
        f"rows={rows}: raw p<alpha {np.mean(raw_rejections):.4f}, features flagged {feature_rate:.4f}, runs flagged {run_rate:.3f}"
    )
    assert feature_rate < 0.05
    assert run_rate < 0.05  # Holm keeps "any feature drifted" at about alpha
    assert np.mean(raw_rejections) < 2 * ALPHA  # each test alone is (conservatively) at alpha


def _single_shift(rng: np.random.Generator, rows: int, change: str) -> tuple[Table, Table, str]:
    reference = _mixed_table(rng, rows, 8)
    current = _mixed_table(rng, rows, 8)
    if change == "mean shift":
        current.data["f0"] = current.data["f0"] + 0.4
        return reference, current, "f0"
    if change == "variance change":
        current.data["f4"] = current.data["f4"] * 2.0
        return reference, current, "f4"
    if change == "new category":
        values = current.data["f3"].copy()
        values[rng.random(rows) < 0.1] = "e"
        current.data["f3"] = values
        return reference, current, "f3"
    values = current.data["f1"].copy()  # rising missing rate: 0% -> 15%
    values[rng.random(rows) < 0.15] = np.nan
    current.data["f1"] = values
    return reference, current, "f1"


@pytest.mark.parametrize("change", ["mean shift", "variance change", "new category", "rising missing rate"])
def test_known_shifts_are_flagged(change: str):
    rng = np.random.default_rng(11)
    reference, current, shifted = _single_shift(rng, 455, change)
    result = _compare(reference, current)
    assert result.drifted_features == [shifted]
    assert result.drift_detected
    if change == "new category":
        assert result.features[shifted].new_categories == ["e"]
    if change == "rising missing rate":
        assert result.features[shifted].missing_rate == pytest.approx(0.15, abs=0.04)


def test_label_drift_is_reported_apart_from_features():
    rng = np.random.default_rng(3)
    reference = _table(x=rng.normal(size=500), target=(rng.random(500) < 0.3).astype(float))
    current = _table(x=rng.normal(size=500), target=(rng.random(500) < 0.7).astype(float))
    result = _compare(reference, current, ["x"])
    assert result.drifted_features == []
    assert result.label is not None and result.label.drifted
    assert result.drift_detected
    assert result.share_drifted == 0.0


def test_psi_noise_floor_keeps_small_identical_samples_unflagged():
    flagged = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        result = _compare(_table(x=rng.lognormal(size=455)), _table(x=rng.lognormal(size=60)))
        flagged.append(result.features["x"].drifted)
    # Without the floor PSI > 0.2 in about 40% of these (noise alone averages 0.17).
    assert np.mean(flagged) < 0.05


def test_small_samples_get_a_psi_warning():
    rng = np.random.default_rng(0)
    small = _compare(_table(x=rng.normal(size=455)), _table(x=rng.normal(size=40)))
    large = _compare(_table(x=rng.normal(size=455)), _table(x=rng.normal(size=455)))
    assert "small sample" in (small.small_sample_note() or "")
    assert large.small_sample_note() is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 1000), min_size=2, max_size=12).flatmap(
        lambda ref: st.tuples(
            st.just(ref), st.lists(st.integers(0, 1000), min_size=len(ref), max_size=len(ref))
        )
    )
)
def test_psi_is_a_symmetric_nonnegative_divergence(counts: tuple[list[int], list[int]]):
    reference, current = (np.asarray(c) for c in counts)
    value = data_drift.psi(reference, current)
    assert value >= 0.0
    assert value == pytest.approx(data_drift.psi(current, reference), rel=1e-9, abs=1e-12)
    assert data_drift.psi(reference, reference) == 0.0


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(pvalues: list[float]):
    raw = np.asarray(pvalues)
    adjusted = data_drift.holm(raw)
    assert np.all(adjusted >= raw) and np.all(adjusted <= 1.0)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= 0)
