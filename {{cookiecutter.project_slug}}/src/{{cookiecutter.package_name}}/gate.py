"""The model gate and the production model's prediction drift.

Gate: the candidate and the production model are scored on the same recent labelled holdout.
Promote only if the candidate reaches ``minimum`` on ``metric`` and is not worse than production
by more than ``tolerance``; with no production model (first run) the minimum alone decides. For a
metric where lower is better (rmse, mae, mape, log_loss) the minimum is a maximum and "worse"
means higher.

Prediction drift: the production model's scores on the holdout against its scores on its own
training rows, which training stores in the profile (``profile["prediction"]``): the positive-class
score (binary), the top-class probability (multiclass) or the predicted value (regression). Both are
scores of the same fixed model, so a shift means its inputs moved in the directions the model
is sensitive to - the drift that matters for its predictions, whatever the per-feature tests say.
Same PSI and conservative binned KS as the data drift (``data_drift``). In-sample scores are
close to out-of-sample ones for a regularised linear model, less so for boosted trees, which fit
their training rows more tightly; so it is reported, not gated on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import metrics
from .drift import data_drift


@dataclass
class GateDecision:
    promote: bool
    metric: str
    minimum: float
    tolerance: float
    candidate: dict[str, float]
    production: dict[str, float] | None
    reasons: list[str] = field(default_factory=list)
    higher_is_better: bool = True


def decide(
    candidate: dict[str, float],
    production: dict[str, float] | None,
    metric: str,
    minimum: float,
    tolerance: float,
    higher_is_better: bool | None = None,
) -> GateDecision:
    """Promote or block. When lower is better (rmse, log_loss, ...) ``minimum`` is a maximum and
    the candidate may be at most ``tolerance`` above production."""
    if metric not in candidate:
        raise ValueError(f"unknown gate metric {metric!r} (known: {', '.join(candidate)})")
    higher = metrics.higher_is_better(metric) if higher_is_better is None else higher_is_better
    # Compare in "higher is better" space: negate lower-is-better values, then one rule serves both.
    sign = 1.0 if higher else -1.0
    score = candidate[metric]
    bound = "minimum" if higher else "maximum"
    reasons: list[str] = []
    promote = True
    # A tiny slack so that a candidate exactly at a boundary is not blocked by rounding.
    slack = 1e-12
    if math.isnan(score):
        promote = False
        reasons.append(f"candidate {metric} is undefined on the holdout (only one class present?)")
    elif sign * score + slack < sign * minimum:
        promote = False
        side = "below" if higher else "above"
        reasons.append(f"candidate {metric} {score:.4f} is {side} the {bound} {minimum:.4f}")
    else:
        reasons.append(f"candidate {metric} {score:.4f} meets the {bound} {minimum:.4f}")
    if production is None:
        reasons.append(f"no production model: first run, the {bound} alone decides")
    else:
        current = production[metric]
        if math.isnan(current):
            reasons.append(f"production {metric} is undefined on the holdout; not compared")
        elif not math.isnan(score) and sign * score + slack < sign * current - tolerance:
            promote = False
            reasons.append(
                f"candidate {metric} {score:.4f} is worse than production {current:.4f} "
                f"by {abs(current - score):.4f} (tolerance {tolerance:.4f}, "
                f"{'higher' if higher else 'lower'} is better)"
            )
        elif not math.isnan(score):
            reasons.append(
                f"candidate {metric} {score:.4f} vs production {current:.4f}: "
                f"within tolerance {tolerance:.4f} or better"
            )
    return GateDecision(promote, metric, minimum, tolerance, candidate, production, reasons, higher)


def prediction_drift(reference: dict[str, Any] | None, scores: np.ndarray) -> dict[str, Any] | None:
    """PSI and KS p-value of ``scores`` against a numeric score profile (None without one)."""
    if not reference:
        return None
    result = data_drift.numeric_drift("score", reference, np.asarray(scores, dtype=np.float64))
    return {
        "psi": round(result.psi, 6),
        "p_value": result.p_value,
        "test": "ks",
        "n_reference": reference["n"],
    }
