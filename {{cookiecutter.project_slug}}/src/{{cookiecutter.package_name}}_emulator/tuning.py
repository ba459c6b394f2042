"""Hyperparameter tuning as a pure search: candidates, metrics from logs, the best trial.

No moto here: ``DataPlane`` runs each candidate as a training job and hands the finished trials
back; the tests call these functions directly. SageMaker's documented behaviour followed:
candidates from ``ParameterRanges`` (Grid enumerates the categorical product; Random, and Bayesian
which it stands in for, sample with a fixed seed), the objective read from the logs with the
``MetricDefinitions`` regexes, the best trial by the objective's direction, and a tuning job that
fails when no trial reports the objective, with its failed training jobs' reasons
(https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html).
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass
from typing import Any

# Generic `prefix:name=value;` metric lines (metrics.format_for_logs) when no MetricDefinitions match.
METRIC_LINE = re.compile(r"(\w+:\w+)=(-?[0-9.]+(?:[eE][-+]?\d+)?);")


def parse_metrics(logs: str, definitions: list[dict[str, str]] | None = None) -> dict[str, float]:
    """Final value of each metric, found in the logs the way SageMaker MetricDefinitions do."""
    found: dict[str, float] = {}
    for name, value in METRIC_LINE.findall(logs):
        found[name] = float(value)
    for definition in definitions or []:
        matches = re.findall(definition["Regex"], logs)
        if matches:
            last = matches[-1]
            found[definition["Name"]] = float(last[0] if isinstance(last, tuple) else last)
    return {k: v for k, v in found.items() if math.isfinite(v)}


def sample_hyperparameters(
    ranges: dict[str, Any], count: int, strategy: str = "Random", seed: int = 0
) -> list[dict[str, str]]:
    """Hyperparameter sets from a tuning job's ParameterRanges (values as strings, as SageMaker sends them).

    Grid enumerates the categorical product; every other strategy samples at random with a fixed
    seed (Bayesian search needs a model of the objective; random search is its documented baseline).
    """
    if strategy == "Grid":
        names = [r["Name"] for r in ranges.get("CategoricalParameterRanges", [])]
        values = [r["Values"] for r in ranges.get("CategoricalParameterRanges", [])]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)][:count]
    rng = random.Random(seed)

    def scaled(low: float, high: float, scaling: str) -> float:
        if scaling in ("Logarithmic", "Auto") and low > 0:
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        return rng.uniform(low, high)

    sets = []
    for _ in range(count):
        values: dict[str, str] = {}
        for r in ranges.get("ContinuousParameterRanges", []):
            values[r["Name"]] = (
                f"{scaled(float(r['MinValue']), float(r['MaxValue']), r.get('ScalingType', 'Auto')):.6g}"
            )
        for r in ranges.get("IntegerParameterRanges", []):
            low, high = int(r["MinValue"]), int(r["MaxValue"])
            values[r["Name"]] = str(
                min(high, max(low, round(scaled(low, high, r.get("ScalingType", "Linear")))))
            )
        for r in ranges.get("CategoricalParameterRanges", []):
            values[r["Name"]] = rng.choice(r["Values"])
        sets.append(values)
    return sets


@dataclass(frozen=True)
class Trial:
    """One training job of a tuning job, as it ended."""

    job_name: str
    hyperparameters: dict[str, str]
    succeeded: bool
    objective: float | None  # None: failed or no objective metric in its logs
    failure_reason: str = ""


def best(trials: list[Trial], maximize: bool) -> Trial | None:
    scored = [t for t in trials if t.succeeded and t.objective is not None]
    if not scored:
        return None
    return (max if maximize else min)(scored, key=lambda t: t.objective)  # type: ignore[arg-type,return-value]


def counters(trials: list[Trial], in_progress: int = 0) -> dict[str, int]:
    """TrainingJobStatusCounters of DescribeHyperParameterTuningJob."""
    completed = sum(1 for t in trials if t.succeeded and t.objective is not None)
    return {
        "Completed": completed,
        "InProgress": in_progress,
        "RetryableError": 0,
        "NonRetryableError": len(trials) - completed,
        "Stopped": 0,
    }


def failure_reason(trials: list[Trial], metric: str) -> str:
    """Why no trial counts, carrying the failed training jobs' own reasons (first three)."""
    reasons = [
        f"{t.job_name}: {t.failure_reason or f'no {metric} in its logs'}"
        for t in trials
        if not (t.succeeded and t.objective is not None)
    ]
    shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    return f"All {len(trials)} training jobs failed or reported no {metric}: {shown}"[:1024]
