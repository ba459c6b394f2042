"""The model gate and the production model's prediction drift.

Gate: the candidate and the production model are scored on the same recent labelled holdout.
Promote only if the candidate reaches ``minimum`` on ``metric`` and is not worse than production
by more than ``tolerance``; with no production model (first run) the minimum alone decides.

Prediction drift: the production model's scores on the holdout against its scores on its own
training rows, which training stores in the profile (``profile["prediction"]``). Both are
scores of the same fixed model, so a shift means its inputs moved in the directions the model
is sensitive to - the drift that matters for its predictions, whatever the per-feature tests say.
Same PSI and conservative binned KS as the data drift (``data_drift``). In-sample scores of a
regularised linear model are close to out-of-sample ones; it is reported, not gated on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import data_drift


@dataclass
class GateDecision:
    promote: bool
    metric: str
    minimum: float
    tolerance: float
    candidate: dict[str, float]
    production: dict[str, float] | None
    reasons: list[str] = field(default_factory=list)


def decide(
    candidate: dict[str, float],
    production: dict[str, float] | None,
    metric: str,
    minimum: float,
    tolerance: float,
) -> GateDecision:
    if metric not in candidate:
        raise ValueError(f"unknown gate metric {metric!r} (known: {', '.join(candidate)})")
    score = candidate[metric]
    reasons: list[str] = []
    promote = True
    # A tiny slack so that a candidate exactly at a boundary is not blocked by rounding.
    slack = 1e-12
    if math.isnan(score):
        promote = False
        reasons.append(f"candidate {metric} is undefined on the holdout (only one class present?)")
    elif score + slack < minimum:
        promote = False
        reasons.append(f"candidate {metric} {score:.4f} is below the minimum {minimum:.4f}")
    else:
        reasons.append(f"candidate {metric} {score:.4f} meets the minimum {minimum:.4f}")
    if production is None:
        reasons.append("no production model: first run, the minimum alone decides")
    else:
        current = production[metric]
        if math.isnan(current):
            reasons.append(f"production {metric} is undefined on the holdout; not compared")
        elif not math.isnan(score) and score + slack < current - tolerance:
            promote = False
            reasons.append(
                f"candidate {metric} {score:.4f} is worse than production {current:.4f} "
                f"by {current - score:.4f} (tolerance {tolerance:.4f})"
            )
        elif not math.isnan(score):
            reasons.append(
                f"candidate {metric} {score:.4f} vs production {current:.4f}: "
                f"within tolerance {tolerance:.4f} or better"
            )
    return GateDecision(promote, metric, minimum, tolerance, candidate, production, reasons)


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
