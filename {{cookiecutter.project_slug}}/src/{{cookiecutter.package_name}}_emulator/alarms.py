"""CloudWatch alarms on an endpoint, evaluated on the invocations the data plane proxies.

SageMaker publishes per-invocation metrics in ``AWS/SageMaker`` with the dimensions ``EndpointName``
and ``VariantName`` (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html):
``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors`` (0 or 1 per invocation) and
``ModelLatency`` (microseconds). ``Metrics`` records them as the data plane forwards requests;
``evaluate`` decides an alarm as deployed (``AlarmSpec.of_moto``: DescribeAlarms' fields) the way
CloudWatch does (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html):
the last ``EvaluationPeriods`` complete periods, ``DatapointsToAlarm`` of them breaching, missing
periods per ``TreatMissingData``. Metric math supports the functions the template uses (``IF``,
``FILL``, ``ABS``) with arithmetic, comparisons, ``AND``/``OR``; anything else raises
``UnsupportedAlarm`` naming it, so an alarm the emulator cannot judge is reported, never passed.

Times are the data plane's AWS clock (seconds since the epoch, compressed offline: ``EndpointClock``).

    metrics = Metrics()
    metrics.record("ep", "AllTraffic", at=clock.now(), status=500, latency_us=1200)
    state = evaluate(AlarmSpec.of_moto(alarm), metrics, now=clock.now())  # AlarmState("ALARM", ...)
"""

from __future__ import annotations

import ast
import math
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "AWS/SageMaker"
Series = dict[float, float]  # period start -> value (missing periods absent)


class UnsupportedAlarm(ValueError):
    """The emulator cannot evaluate this alarm; the message says which part."""


@dataclass(frozen=True)
class Query:
    """One ``Metrics`` entry of a metric-math alarm (or the alarm's own metric, as ``m``)."""

    id: str
    expression: str = ""
    namespace: str = ""
    metric_name: str = ""
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = ""
    period: int = 60
    return_data: bool = True


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    queries: tuple[Query, ...]
    comparison: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str

    @property
    def period(self) -> int:
        return min(q.period for q in self.queries if not q.expression)

    @classmethod
    def of_moto(cls, alarm: Any) -> AlarmSpec:
        """From moto's CloudWatch ``Alarm`` model (what PutMetricAlarm stored)."""
        if alarm.metric_data_queries:
            queries = tuple(_query_of_moto(q) for q in alarm.metric_data_queries)
        else:
            dimensions = tuple((d.name, d.value) for d in alarm.dimensions)
            stat = alarm.statistic or alarm.extended_statistic or ""
            queries = (
                Query("m", "", alarm.namespace, alarm.metric_name, dimensions, stat, int(alarm.period)),
            )
        periods = int(alarm.evaluation_periods)
        return cls(
            name=alarm.name,
            queries=queries,
            comparison=alarm.comparison_operator,
            threshold=float(alarm.threshold),
            evaluation_periods=periods,
            datapoints_to_alarm=int(alarm.datapoints_to_alarm or periods),
            treat_missing_data=alarm.treat_missing_data or "missing",
        )


def _query_of_moto(query: Any) -> Query:
    stat = query.metric_stat
    if stat is None:
        return Query(query.id, query.expression or "", return_data=str(query.return_data).lower() != "false")
    metric = stat.metric
    return Query(
        id=query.id,
        namespace=metric.namespace,
        metric_name=metric.metric_name,
        dimensions=tuple((d.name, d.value) for d in metric.dimensions),
        stat=stat.stat,
        period=int(stat.period),
        return_data=str(query.return_data).lower() == "true",
    )


@dataclass(frozen=True)
class AlarmState:
    value: str  # OK, ALARM or INSUFFICIENT_DATA
    reason: str


@dataclass
class Metrics:
    """SageMaker's invocation metrics of the endpoints the data plane serves (thread-safe)."""

    _samples: dict[tuple[str, str, str], list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self, endpoint: str, variant: str, *, at: float, status: int, latency_us: float | None
    ) -> None:
        samples = {
            "Invocations": 1.0,
            "Invocation4XXErrors": float(400 <= status < 500),
            "Invocation5XXErrors": float(status >= 500),
        }
        if latency_us is not None:
            samples["ModelLatency"] = latency_us
        with self._lock:
            for metric, value in samples.items():
                self._samples[(endpoint, variant, metric)].append((at, value))

    def series(self, query: Query, start: float, end: float) -> Series:
        """The query's statistic per period in [start, end) (periods without samples are missing)."""
        if query.namespace != NAMESPACE:
            raise UnsupportedAlarm(
                f"metric {query.namespace}/{query.metric_name}: only {NAMESPACE} is recorded"
            )
        dimensions = dict(query.dimensions)
        if set(dimensions) != {"EndpointName", "VariantName"}:
            raise UnsupportedAlarm(
                f"metric {query.metric_name}: dimensions must be EndpointName and VariantName"
            )
        key = (dimensions["EndpointName"], dimensions["VariantName"], query.metric_name)
        with self._lock:
            samples = list(self._samples.get(key, ()))
        buckets: dict[float, list[float]] = defaultdict(list)
        for at, value in samples:
            if start <= at < end:
                buckets[at - (at - start) % query.period].append(value)
        aggregate = _statistic(query.stat)
        return {period: aggregate(values) for period, values in buckets.items()}


def _statistic(stat: str) -> Callable[[list[float]], float]:
    simple: dict[str, Callable[[list[float]], float]] = {
        "Sum": sum,
        "Average": lambda v: sum(v) / len(v),
        "Minimum": min,
        "Maximum": max,
        "SampleCount": lambda v: float(len(v)),
    }
    if stat in simple:
        return simple[stat]
    match = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
    if match:  # nearest-rank percentile
        share = float(match.group(1)) / 100
        return lambda v: sorted(v)[max(0, math.ceil(share * len(v)) - 1)]
    raise UnsupportedAlarm(f"statistic {stat}")


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


def evaluate(alarm: AlarmSpec, metrics: Metrics, now: float) -> AlarmState:
    """The alarm's state after the last complete period before ``now``."""
    compare = _COMPARISONS.get(alarm.comparison)
    if compare is None:
        raise UnsupportedAlarm(f"alarm {alarm.name}: comparison {alarm.comparison}")
    period = alarm.period
    end = now - now % period  # the last complete period ends here
    start = end - alarm.evaluation_periods * period
    values = _alarm_series(alarm, metrics, start, end)
    breaching, present, shown = 0, 0, []
    for index in range(alarm.evaluation_periods):
        value = values.get(start + index * period)
        if value is None:
            breaching += alarm.treat_missing_data == "breaching"
            continue
        present += 1
        breaching += compare(value, alarm.threshold)
        shown.append(f"{value:g}")
    if breaching >= alarm.datapoints_to_alarm:
        return AlarmState(
            "ALARM",
            f"Threshold Crossed: {breaching} out of the last {alarm.evaluation_periods} datapoints "
            f"[{', '.join(shown)}] were {_words(alarm.comparison)} the threshold ({alarm.threshold:g})",
        )
    if not present and alarm.treat_missing_data in ("missing", "ignore"):
        return AlarmState("INSUFFICIENT_DATA", "no datapoints in the evaluation range")
    return AlarmState("OK", f"{breaching} of the last {alarm.evaluation_periods} datapoints breaching")


def _words(comparison: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r" \1", comparison.removesuffix("Threshold")).lower()


def _alarm_series(alarm: AlarmSpec, metrics: Metrics, start: float, end: float) -> Series:
    series = {q.id: metrics.series(q, start, end) for q in alarm.queries if not q.expression}
    returned = [q for q in alarm.queries if q.return_data]
    if len(returned) != 1:
        raise UnsupportedAlarm(f"alarm {alarm.name}: exactly one query must return data")
    target = returned[0]
    if not target.expression:
        return series[target.id]
    periods = sorted({p for values in series.values() for p in values} | set(_grid(start, end, alarm.period)))
    tree = _parse(target.expression, alarm.name)
    result = {}
    for period in periods:
        value = _eval(tree, {k: v.get(period) for k, v in series.items()}, alarm.name)
        if value is not None:
            result[period] = value
    return result


def _grid(start: float, end: float, period: int) -> list[float]:
    return [start + i * period for i in range(int((end - start) // period))]


def _parse(expression: str, alarm: str) -> ast.expr:
    # CloudWatch metric math -> a Python expression tree (same precedence), then walked below.
    text = re.sub(r"\bAND\b|&&", " and ", expression)
    text = re.sub(r"\bOR\b|\|\|", " or ", text).replace("^", "**")
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError as error:
        raise UnsupportedAlarm(f"alarm {alarm}: cannot parse expression {expression!r}") from error


Value = float | None


def _eval(node: ast.expr, names: dict[str, Value], alarm: str) -> Value:
    """One period's value of a metric-math expression; None is a missing datapoint."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise UnsupportedAlarm(f"alarm {alarm}: expression names unknown metric {node.id}")
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _eval(node.operand, names, alarm)
        return None if value is None else -value
    if isinstance(node, ast.BinOp):
        return _binary(node, _eval(node.left, names, alarm), _eval(node.right, names, alarm), alarm)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = _eval(node.left, names, alarm), _eval(node.comparators[0], names, alarm)
        return None if left is None or right is None else float(_compare(node.ops[0], left, right, alarm))
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, names, alarm) for v in node.values]
        if any(v is None for v in values):
            return None
        combine = all if isinstance(node.op, ast.And) else any
        return float(combine(bool(v) for v in values))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _function(node.func.id, node.args, names, alarm)
    raise UnsupportedAlarm(f"alarm {alarm}: expression part {ast.unparse(node)!r} is not supported offline")


def _binary(node: ast.BinOp, left: Value, right: Value, alarm: str) -> Value:
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    if isinstance(node.op, ast.Div):
        return None if right == 0 else left / right  # CloudWatch drops a division by zero
    if isinstance(node.op, ast.Pow):
        return float(left**right)
    raise UnsupportedAlarm(f"alarm {alarm}: operator {type(node.op).__name__}")


def _compare(op: ast.cmpop, left: float, right: float, alarm: str) -> bool:
    tests: dict[type, Callable[[float, float], bool]] = {
        ast.Gt: lambda a, b: a > b,
        ast.GtE: lambda a, b: a >= b,
        ast.Lt: lambda a, b: a < b,
        ast.LtE: lambda a, b: a <= b,
        ast.Eq: lambda a, b: a == b,
        ast.NotEq: lambda a, b: a != b,
    }
    if type(op) not in tests:
        raise UnsupportedAlarm(f"alarm {alarm}: comparison {type(op).__name__}")
    return tests[type(op)](left, right)


def _function(name: str, args: list[ast.expr], names: dict[str, Value], alarm: str) -> Value:
    values = [_eval(a, names, alarm) for a in args]
    if name == "FILL" and len(values) == 2:
        return values[1] if values[0] is None else values[0]
    if name == "IF" and len(values) in (2, 3):
        condition = values[0]
        if condition is None:
            return None
        if condition:
            return values[1]
        return values[2] if len(values) == 3 else None
    if name == "ABS" and len(values) == 1:
        return None if values[0] is None else abs(values[0])
    raise UnsupportedAlarm(f"alarm {alarm}: metric math function {name} is not evaluated offline")
