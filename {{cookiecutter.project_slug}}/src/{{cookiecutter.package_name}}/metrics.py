"""Binary-classification metrics shared by training (logged for SageMaker) and the model gate."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as sk

METRICS = ("roc_auc", "accuracy", "f1")


def compute_all(y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """All gate metrics from labels (0/1) and positive-class scores."""
    labels = (scores >= threshold).astype(int)
    both_classes = len(np.unique(y_true)) == 2
    return {
        # AUC is undefined on a one-class sample: report NaN rather than crash the gate.
        "roc_auc": float(sk.roc_auc_score(y_true, scores)) if both_classes else float("nan"),
        "accuracy": float(sk.accuracy_score(y_true, labels)),
        "f1": float(sk.f1_score(y_true, labels, zero_division=0)),
    }


def format_for_logs(values: dict[str, float], prefix: str) -> str:
    """`prefix:name=value;` pairs, one regex away for SageMaker MetricDefinitions and tuning."""
    return " ".join(f"{prefix}:{name}={value:.6f};" for name, value in values.items())
