"""Per-feature drift of new data against the reference profile: PSI plus a two-sample test.

PSI (population stability index) = sum over bins of (cur - ref) * ln(cur / ref), on shares.
Numeric bins are the reference deciles plus a bin for missing values; categorical bins are the
reference categories plus "other" (unseen or rare values) and missing. A bin empty on one side
would make ln(0) infinite, so shares are floored at ``PSI_EPSILON`` = 1e-4 (one row in 10,000):
an unseen category taking 5% of the rows then scores 0.05 * ln(0.05 / 1e-4) = 0.31 (drift at
the usual 0.2 threshold) while one stray row in 450 scores 0.007 (no drift).

Tests (p-values):
- numeric: two-sample Kolmogorov-Smirnov. The raw reference is not kept, only its exact CDF at
  its percentiles, so D is the largest CDF gap over those points (and over "missing", counted
  as a value below every number, so a rising missing rate moves the CDF too). A maximum over a
  subset of points is never larger than the full two-sample D, so the p-value from the two-sample
  KS distribution (``scipy.stats.kstwo`` at n*m/(n+m), as ``scipy.stats.ks_2samp`` does
  asymptotically) is conservative: under no drift P(p < alpha) <= alpha. The price is a little
  power (a gap inside one percentile bin is seen only at its edges).
- categorical: chi-squared test of homogeneity (``scipy.stats.chi2_contingency``) on the
  reference counts vs the current counts, which accounts for sampling noise on both sides.

Many features mean many tests: at alpha 0.01, 30 independent features flag at least one of
them in 26% of identical samples. The p-values are Holm-adjusted (family-wise error rate <=
alpha over all features and the label), and a feature drifts when PSI > threshold or its
*adjusted* p-value < alpha. Both the raw and the adjusted p-value are reported.

PSI has no sample-size correction: with 10 bins and 100 rows a side, identical data averages
PSI 0.18. Since PSI * n_ref*n_cur/(n_ref+n_cur) is about chi-squared(bins - 1) under no drift,
PSI counts only when it also exceeds ``PSI_NOISE_FACTOR`` times that mean (no effect at the
default threshold from about 270 rows a side); the report warns when samples are smaller.

Free text (issue 23) is profiled by its words, not as categories (a column of distinct texts as
categories is all "other": a swapped vocabulary scored PSI 0.047). A text column drifts when
- its token PSI, over the reference's top words plus "other" (token shares, not row shares),
  exceeds the threshold; the out-of-vocabulary share (tokens outside those words) is reported
  next to the reference's own, with the PSI of that two-bin split, to name the cause;
- or its words per row moved: PSI over the reference deciles above the threshold, or the KS test
  on words per row (its p-value, Holm-adjusted with the others, is the column's p-value: rows
  are independent, tokens within a row are not, so no test is run on token counts).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from .. import data
from .profile import count_categories, count_words, finite_or_none, parallel_map

PSI_EPSILON = 1e-4
KS_LARGE_N = 10_000
# PSI counts only above this multiple of its no-drift mean (P < 0.2% for 10 bins): it matters
# below about 270 rows a side, where noise alone comes near the usual 0.2 threshold.
PSI_NOISE_FACTOR = 3.0


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """PSI of two count vectors over the same bins (shares floored at ``epsilon``)."""
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    ref = np.maximum(ref / max(ref.sum(), 1.0), epsilon)
    cur = np.maximum(cur / max(cur.sum(), 1.0), epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks_pvalue(statistic: float, n_reference: int, n_current: int) -> float:
    """Asymptotic two-sample KS p-value (the method of ``scipy.stats.ks_2samp(method="asymp")``).

    Above ``KS_LARGE_N`` effective rows the limiting Kolmogorov distribution replaces ``kstwo``:
    within 1-2% of it there and slightly larger (conservative), while ``kstwo.sf`` can take a
    second per call at n = 500,000.
    """
    effective_n = max(1, round(n_reference * n_current / (n_reference + n_current)))
    if effective_n > KS_LARGE_N:
        return float(stats.kstwobign.sf(statistic * np.sqrt(effective_n)))
    return float(stats.kstwo.sf(statistic, effective_n))


def chi2_pvalue(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    table = np.vstack([reference_counts, current_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]  # a category absent on both sides carries no information
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 1.0
    return float(stats.chi2_contingency(table).pvalue)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (controls the family-wise error rate)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


@dataclass
class TextDrift:
    """What a text column adds to its token PSI: words per row and the out-of-vocabulary share."""

    length: FeatureDrift  # words per row, tested as a numeric column
    oov_rate: float  # share of the new tokens outside the reference's top words
    reference_oov_rate: float  # the same share in the reference itself
    oov_psi: float  # PSI of the split in-vocabulary / other
    reasons: list[str] = field(default_factory=list)  # why it drifted, filled by compare


@dataclass
class FeatureDrift:
    name: str
    kind: str  # "numeric" | "categorical" | "text"
    psi: float  # text: over token shares
    p_value: float
    test: str  # "ks" | "chi2" | "ks-length" (text: KS on words per row)
    bins: list[str]  # bin labels, for the report
    reference_counts: list[int]
    current_counts: list[int]
    missing_rate: float
    reference_missing_rate: float
    p_adjusted: float = 1.0
    drifted: bool = False
    new_categories: list[str] = field(default_factory=list)
    text: TextDrift | None = None

    @property
    def psi_noise(self) -> float:
        """Mean PSI of two samples from one distribution: PSI * n_eff is about chi-squared(bins - 1)."""
        used = sum(1 for r, c in zip(self.reference_counts, self.current_counts, strict=True) if r or c)
        n_ref, n_cur = max(sum(self.reference_counts), 1), max(sum(self.current_counts), 1)
        return max(used - 1, 0) * (1 / n_ref + 1 / n_cur)

    def as_json(self) -> dict[str, Any]:
        entry = {
            "psi": round(self.psi, 6),
            "p_value": finite_or_none(self.p_value),
            "p_adjusted": finite_or_none(self.p_adjusted),
            "test": self.test,
            "drifted": self.drifted,
            "missing_rate": round(self.missing_rate, 6),
        }
        if self.new_categories:
            entry["new_categories"] = self.new_categories
        if self.text is not None:
            entry |= {
                "length_psi": round(self.text.length.psi, 6),
                "oov_rate": round(self.text.oov_rate, 6),
                "reference_oov_rate": round(self.text.reference_oov_rate, 6),
                "oov_psi": round(self.text.oov_psi, 6),
                "reasons": self.text.reasons,
            }
        return entry


@dataclass
class DriftResult:
    features: dict[str, FeatureDrift]
    label: FeatureDrift | None
    psi_threshold: float
    alpha: float

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, f in self.features.items() if f.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def drift_detected(self) -> bool:
        return bool(self.drifted_features) or bool(self.label and self.label.drifted)

    def small_sample_note(self) -> str | None:
        """A warning when sampling noise alone brings PSI near the threshold."""
        noise = max((f.psi_noise for f in self.features.values()), default=0.0)
        if noise <= self.psi_threshold / 4:
            return None
        return (
            f"small sample: identical data would already give PSI around {noise:.2f} (threshold "
            f"{self.psi_threshold}), so PSI only counts above {PSI_NOISE_FACTOR:g}x that; the KS / chi-squared tests are unaffected"
        )


def _interval_labels(edges: list[float]) -> list[str]:
    bounds = ["-inf", *(f"{e:.4g}" for e in edges), "+inf"]
    return [f"({lo}, {hi}]" for lo, hi in itertools.pairwise(bounds)]


def numeric_drift(name: str, ref: dict[str, Any], values: np.ndarray) -> FeatureDrift:
    points = np.asarray(ref.get("points", []), dtype=np.float64)
    # Index i counts values in (points[i-1], points[i]]; the +inf point separates NaN (sorted last).
    index = np.searchsorted(np.append(points, np.inf), values)
    per_point = np.bincount(index, minlength=len(points) + 2)
    missing = int(per_point[-1])
    present = len(values) - missing
    cum = np.cumsum(per_point[: len(points)])  # current rows <= each reference point
    n_ref, ref_missing = ref["n"], ref["missing"]

    # KS over "missing" (the lowest value) and the reference percentiles.
    ref_cdf = (ref_missing + np.concatenate([[0], ref.get("cum", [])])) / n_ref
    cur_cdf = (missing + np.concatenate([[0], cum])) / len(values)
    statistic = float(np.max(np.abs(ref_cdf - cur_cdf)))

    # PSI bins: missing, then the reference deciles; decile edges are among the points.
    edges = ref.get("edges", [])
    at_edges = cum[np.searchsorted(points, edges)] if edges else np.zeros(0, dtype=np.int64)
    current = np.concatenate([[missing], np.diff(np.concatenate([[0], at_edges, [present]]))])
    reference = np.asarray([ref_missing, *ref.get("counts", [ref["n"] - ref_missing])])
    return FeatureDrift(
        name=name,
        kind="numeric",
        psi=psi(reference, current),
        p_value=ks_pvalue(statistic, n_ref, len(values)),
        test="ks",
        bins=["missing", *_interval_labels(edges)],
        reference_counts=reference.tolist(),
        current_counts=current.tolist(),
        missing_rate=missing / len(values),
        reference_missing_rate=ref_missing / n_ref,
    )


def categorical_drift(name: str, ref: dict[str, Any], values: np.ndarray) -> FeatureDrift:
    counts, missing = count_categories(values)
    known = ref["counts"]
    unseen = [key for key in counts if key not in known]
    other = sum(counts[key] for key in unseen)
    reference = np.asarray([*known.values(), ref["other"], ref["missing"]])
    current = np.asarray([*(counts.get(key, 0) for key in known), other, missing])
    return FeatureDrift(
        name=name,
        kind="categorical",
        psi=psi(reference, current),
        p_value=chi2_pvalue(reference, current),
        test="chi2",
        bins=[*known, "other", "missing"],
        reference_counts=reference.tolist(),
        current_counts=current.tolist(),
        missing_rate=missing / len(values),
        reference_missing_rate=ref["missing"] / ref["n"],
        new_categories=unseen[:10] if ref["other"] == 0 else [],
    )


def text_drift(name: str, ref: dict[str, Any], values: np.ndarray) -> FeatureDrift:
    tokens, lengths = count_words(values)
    known = ref["counts"]
    in_vocabulary = sum(tokens.get(word, 0) for word in known)
    other = sum(tokens.values()) - in_vocabulary
    reference = np.asarray([*known.values(), ref["other"]])
    current = np.asarray([*(tokens.get(word, 0) for word in known), other])
    length = numeric_drift(name, ref["length"], lengths)
    ref_in = int(reference.sum()) - ref["other"]
    return FeatureDrift(
        name=name,
        kind="text",
        psi=psi(reference, current),
        p_value=length.p_value,
        test="ks-length",
        bins=[*known, "other"],
        reference_counts=reference.tolist(),
        current_counts=current.tolist(),
        missing_rate=length.missing_rate,
        reference_missing_rate=length.reference_missing_rate,
        text=TextDrift(
            length=length,
            oov_rate=other / max(in_vocabulary + other, 1),
            reference_oov_rate=ref["other"] / max(int(reference.sum()), 1),
            # No new tokens at all (every cell missing): no split to compare; words per row drift.
            oov_psi=psi(np.asarray([ref_in, ref["other"]]), np.asarray([in_vocabulary, other]))
            if in_vocabulary + other
            else 0.0,
        ),
    )


def feature_drift(name: str, ref: dict[str, Any], values: np.ndarray) -> FeatureDrift:
    if ref["type"] == "numeric":
        return numeric_drift(name, ref, values)
    if ref["type"] == "text":
        return text_drift(name, ref, values)
    return categorical_drift(name, ref, values)


def _psi_limit(result: FeatureDrift, psi_threshold: float) -> float:
    return max(psi_threshold, PSI_NOISE_FACTOR * result.psi_noise)


def _text_drifted(result: FeatureDrift, psi_threshold: float, alpha: float) -> bool:
    """Fill the text column's reasons; True when words per row moved (the token PSI is tested apart).

    The out-of-vocabulary split is reported, not tested on its own: it is the token bins merged
    into two, and merging bins never raises PSI (a symmetrised Kullback-Leibler divergence obeys
    the data-processing inequality), so a threshold on it would add no alarm. The ``PSI_EPSILON``
    floor can lift the merged PSI only when a bin is all but empty on one side, where the token
    PSI is far above any threshold already. It names the cause when the new share is higher:
    new words, not known words re-weighted.
    """
    text = result.text
    if text is None:
        return False
    limit, length_limit = _psi_limit(result, psi_threshold), _psi_limit(text.length, psi_threshold)
    reasons = []
    if result.psi > limit:
        reasons.append(f"token PSI {result.psi:.3f} > {limit:.3g}")
    if text.oov_rate > text.reference_oov_rate and text.oov_psi > limit:
        reasons.append(
            f"{text.oov_rate:.0%} of the words are outside the reference's top words "
            f"(reference {text.reference_oov_rate:.0%}, PSI {text.oov_psi:.3f})"
        )
    moved = text.length.psi > length_limit
    if moved:
        reasons.append(f"words per row PSI {text.length.psi:.3f} > {length_limit:.3g}")
    if result.p_adjusted < alpha:
        reasons.append(f"words per row KS adjusted p {result.p_adjusted:.2g} < {alpha:g}")
    text.reasons = reasons
    return moved


def compare(profile: dict[str, Any], table: data.Table, psi_threshold: float, alpha: float) -> DriftResult:
    """Drift of every profiled feature (and the label) of ``table``; run ``schema.check`` first."""
    names = profile["feature_names"]
    columns = profile["columns"]
    results = parallel_map(lambda name: feature_drift(name, columns[name], table.data[name]), names)
    label = None
    label_profile = profile.get("label")
    if label_profile and label_profile["column"] in table.data:
        # feature_drift picks KS for a numeric (regression) label and chi-squared for classes.
        label = feature_drift(label_profile["column"], label_profile, table.data[label_profile["column"]])
    tested = [*results, *([label] if label else [])]
    for result, adjusted in zip(tested, holm(np.asarray([r.p_value for r in tested])), strict=True):
        result.p_adjusted = float(adjusted)
        result.drifted = result.psi > _psi_limit(result, psi_threshold) or result.p_adjusted < alpha
        if result.text is not None:
            result.drifted = _text_drifted(result, psi_threshold, alpha) or result.drifted
    return DriftResult({r.name: r for r in results}, label, psi_threshold, alpha)
