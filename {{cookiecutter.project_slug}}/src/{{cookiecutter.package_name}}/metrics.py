"""Metrics per problem type, each with its direction; shared by training (logged for SageMaker),
the tuning job's objective and the model gate.

Every metric is computed from a ``Predictions`` (the model contract's output), never from a
library's own objects, so any estimator behind ``model.py`` is scored the same way. A metric that
is undefined on a sample (AUC with one class present) is NaN, which the gate treats as a failure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn import metrics as sk

from . import settings

if TYPE_CHECKING:
    from .predictor import Predictions

METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "accuracy", "f1", "log_loss"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "log_loss"),
    "regression": ("rmse", "mae", "r2", "mape"),
    "ranking": ("ndcg_at_10", "map_at_10", "mrr"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape"})
# Metrics bounded to [0, 1]: the gate's minimum (or maximum) must lie in that range too.
UNIT_INTERVAL = frozenset(
    {"roc_auc", "pr_auc", "accuracy", "f1", "macro_f1", "weighted_f1", "ndcg_at_10", "map_at_10", "mrr"}
)
# The cut-off of ndcg_at_10 and map_at_10: the top of each group's list that a reader sees.
RANK_CUTOFF = 10


def higher_is_better(name: str) -> bool:
    if not any(name in names for names in METRICS.values()):
        raise ValueError(f"unknown metric {name!r}")
    return name not in LOWER_IS_BETTER


def class_indices(y_true: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Indices into ``classes`` for raw label values; fails naming labels the model does not know."""
    from .predictor import label_key  # lazy: predictor imports this module

    index = {label_key(c): i for i, c in enumerate(classes)}
    keys = [label_key(v) for v in np.asarray(y_true).tolist()]
    unknown = sorted({k for k in keys if k not in index})
    if unknown:
        raise ValueError(
            f"label value(s) {', '.join(unknown[:5])} are not classes of the model "
            f"(classes {', '.join(map(str, index))})"
        )
    return np.asarray([index[k] for k in keys], dtype=np.int64)


def _binary(
    y: np.ndarray, predictions: Predictions, classes: Sequence[Any], positive: Any
) -> dict[str, float]:
    from .predictor import label_key

    assert predictions.scores is not None and predictions.labels is not None
    positive_index = [label_key(c) for c in classes].index(label_key(positive))
    truth = (y == positive_index).astype(int)
    predicted = np.asarray([label_key(v) == label_key(positive) for v in predictions.labels], dtype=int)
    scores = predictions.scores
    both = len(np.unique(truth)) == 2
    return {
        "roc_auc": float(sk.roc_auc_score(truth, scores)) if both else math.nan,
        "pr_auc": float(sk.average_precision_score(truth, scores)) if both else math.nan,
        "accuracy": float(sk.accuracy_score(truth, predicted)),
        "f1": float(sk.f1_score(truth, predicted, zero_division=0)),
        "log_loss": float(sk.log_loss(truth, scores, labels=[0, 1])),
    }


def _multiclass(y: np.ndarray, predictions: Predictions, classes: Sequence[Any]) -> dict[str, float]:
    assert predictions.probabilities is not None
    probabilities = predictions.probabilities
    predicted = np.argmax(probabilities, axis=1)
    labels = list(range(len(classes)))
    return {
        "accuracy": float(sk.accuracy_score(y, predicted)),
        "macro_f1": float(sk.f1_score(y, predicted, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(sk.f1_score(y, predicted, labels=labels, average="weighted", zero_division=0)),
        "log_loss": float(sk.log_loss(y, probabilities, labels=labels)),
    }


def _regression(y_true: np.ndarray, predictions: Predictions) -> dict[str, float]:
    assert predictions.values is not None
    y = np.asarray(y_true, dtype=np.float64)
    values = predictions.values
    return {
        "rmse": float(math.sqrt(sk.mean_squared_error(y, values))),
        "mae": float(sk.mean_absolute_error(y, values)),
        # R^2 is undefined for a constant target (sklearn warns and returns 0 or NaN).
        "r2": float(sk.r2_score(y, values)) if len(y) > 1 and np.ptp(y) > 0 else math.nan,
        "mape": float(sk.mean_absolute_percentage_error(y, values)),
    }


def _order(scores: np.ndarray) -> np.ndarray:
    """Rows by descending score; ties keep their row order (stable), so results are reproducible."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def ndcg_at_k(relevance: np.ndarray, scores: np.ndarray, k: int = RANK_CUTOFF) -> float:
    """NDCG@k of one query: DCG = sum over the top k of (2^rel - 1) / log2(rank + 1), divided by the
    DCG of the ideal order. NaN when the ideal DCG is 0 (no relevant row): such queries are skipped
    by the average, since no order can be better or worse than another on them."""
    rel = np.asarray(relevance, dtype=np.float64)
    discount = 1.0 / np.log2(np.arange(2, min(k, len(rel)) + 2))
    ideal = float(np.sum((2.0 ** np.sort(rel)[::-1][:k] - 1.0) * discount))
    if ideal <= 0:
        return math.nan
    return float(np.sum((2.0 ** rel[_order(scores)][:k] - 1.0) * discount)) / ideal


def average_precision_at_k(relevance: np.ndarray, scores: np.ndarray, k: int = RANK_CUTOFF) -> float:
    """AP@k of one query (relevance > 0 = relevant): the mean of precision@i over the relevant rows
    in the top k, divided by min(k, relevant rows). NaN when no row is relevant (skipped)."""
    relevant = np.asarray(relevance, dtype=np.float64) > 0
    total = int(relevant.sum())
    if total == 0:
        return math.nan
    hits = relevant[_order(scores)][:k]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(np.sum(precision * hits)) / min(k, total)


def reciprocal_rank(relevance: np.ndarray, scores: np.ndarray) -> float:
    """1 / the rank of the first relevant row (relevance > 0); NaN when none is relevant (skipped)."""
    hits = np.flatnonzero(np.asarray(relevance, dtype=np.float64)[_order(scores)] > 0)
    return 1.0 / (hits[0] + 1) if len(hits) else math.nan


def per_query(y_true: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> dict[str, dict[str, float]]:
    """Each ranking metric per group (query), keyed by the group's value; NaN where undefined."""
    from .predictor import label_key  # lazy: predictor imports this module

    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    keys = np.asarray([label_key(g) for g in np.asarray(groups).tolist()], dtype=object)
    out: dict[str, dict[str, float]] = {}
    for key in dict.fromkeys(keys.tolist()):  # first-seen order
        rows = keys == key
        out[key] = {
            "ndcg_at_10": ndcg_at_k(y[rows], s[rows]),
            "map_at_10": average_precision_at_k(y[rows], s[rows]),
            "mrr": reciprocal_rank(y[rows], s[rows]),
        }
    return out


def _ranking(y_true: np.ndarray, predictions: Predictions, groups: np.ndarray | None) -> dict[str, float]:
    """Each metric averaged over the queries where it is defined (NaN if none is)."""
    assert predictions.values is not None
    if groups is None:
        raise ValueError("ranking metrics need the group (query) of every row")
    queries = per_query(y_true, predictions.values, groups)
    out = {}
    for name in METRICS["ranking"]:
        values = [q[name] for q in queries.values() if not math.isnan(q[name])]
        out[name] = float(np.mean(values)) if values else math.nan
    return out


def compute(
    problem_type: str,
    y_true: np.ndarray,
    predictions: Predictions,
    classes: Sequence[Any],
    positive_class: Any = None,
    groups: np.ndarray | None = None,
) -> dict[str, float]:
    """All metrics of ``problem_type`` from raw labels (or targets) and the model's predictions.

    Binary metrics score ``positive_class`` (default: the second class) as the positive one.
    Ranking metrics need ``groups``, each row's group (query): they are averaged over the groups.
    """
    if problem_type == "ranking":
        return _ranking(y_true, predictions, groups)
    if problem_type == "regression":
        return _regression(y_true, predictions)
    y = class_indices(y_true, classes)
    if problem_type == "binary":
        return _binary(y, predictions, classes, classes[1] if positive_class is None else positive_class)
    if problem_type == "multiclass":
        return _multiclass(y, predictions, classes)
    raise ValueError(f"unknown problem type {problem_type!r} (known: {', '.join(METRICS)})")


def format_for_logs(values: dict[str, float], prefix: str) -> str:
    """`prefix:name=value;` pairs, one regex away for SageMaker MetricDefinitions and tuning."""
    return " ".join(f"{prefix}:{name}={value:.6f};" for name, value in values.items())


# Matches format_for_logs' numbers (and "nan", which SageMaker then does not record).
NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"


def metric_definitions(problem_type: str | None = None) -> list[dict[str, str]]:
    """CreateTrainingJob AlgorithmSpecification.MetricDefinitions for every logged metric.

    https://docs.aws.amazon.com/sagemaker/latest/dg/training-metrics.html#define-train-metrics
    """
    names = METRICS[problem_type or settings.PROBLEM_TYPE]
    return [
        {"Name": f"{prefix}:{name}", "Regex": f"{prefix}:{name}={NUMBER};"}
        for prefix in ("train", "validation")
        for name in names
    ]


def tuning_objective(metric: str | None = None) -> dict[str, str]:
    """The tuning job's HyperParameterTuningJobObjective: the gate metric on the validation channel."""
    name = metric or settings.GATE_METRIC
    return {"Type": "Maximize" if higher_is_better(name) else "Minimize", "MetricName": f"validation:{name}"}
