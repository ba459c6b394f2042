"""What a local-pipeline run does and expects, as data: scenarios of steps, checks as small functions.

A ``Scenario`` is a list of ``Step``s. A step uploads one of the run's training sets (``train``,
``drifted`` or ``one-class``), runs one execution and hands what happened (an ``Observation``) to
its checks. A check is a function ``Observation -> list[str]`` of problems; none means the expected
outcome happened. Your data (``--data``) changes the data sets, not the scenarios.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from {{ cookiecutter.package_name }} import settings


@dataclass
class Observation:
    """One step as the emulator saw it (filled by ``run.run_step``)."""

    name: str
    status: str
    error: str = ""
    validation: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    states: list[str] = field(default_factory=list)
    before: tuple[str, str] | None = None  # (endpoint config, model URL) before the execution
    after: tuple[str, str] | None = None
    new_configs: set[str] = field(default_factory=set)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    answers_match: bool | None = None  # None: no endpoint to ask


Check = Callable[[Observation], list[str]]


@dataclass(frozen=True)
class Step:
    prefix: str  # execution name prefix: create, update, drift
    training_set: str  # which prepared training set is data/train/ during the execution
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]


# -- checks ------------------------------------------------------------------------------------
def succeeded(o: Observation) -> list[str]:
    return (
        [] if o.status == "SUCCEEDED" else [f"{o.name}: expected SUCCEEDED, got {o.status} {o.error}".strip()]
    )


def failed(o: Observation) -> list[str]:
    return (
        []
        if o.status == "FAILED"
        else [f"{o.name}: expected FAILED (training cannot fit a single class or value), got {o.status}"]
    )


def notified(word: str) -> Check:
    def check(o: Observation) -> list[str]:
        if any(word in n.get("Subject", "").lower() for n in o.notifications):
            return []
        return [f"{o.name}: no '{word}' notification was published to the SNS topic"]

    check.__name__ = f"notified_{word}"
    return check


def no_endpoint(o: Observation) -> list[str]:
    return [] if o.after is None else [f"{o.name}: an endpoint exists although the run failed"]


def endpoint_changed(o: Observation) -> list[str]:
    if o.after is None or o.after == o.before:
        return [f"{o.name}: the endpoint was not created or updated (before {o.before}, after {o.after})"]
    return []


def answers_match(o: Observation) -> list[str]:
    if o.answers_match:
        return []
    return [f"after {o.name}: the endpoint does not answer as inference.py does in process on its model"]


def drift_reported(o: Observation) -> list[str]:
    if (o.validation or {}).get("drift_detected") is True:
        return []
    return [f"{o.name}: the drifted training set was not reported as drifted"]


def gate_blocked_under_retrain(o: Observation) -> list[str]:
    """``retrain`` lets training go on: the gate must then reject the concept-drifted candidate."""
    if settings.DRIFT_POLICY != "retrain":
        return []
    if o.evaluation is not None and not o.evaluation.get("promote"):
        return []
    return [f"{o.name}: the gate promoted a model trained on concept-drifted data"]


def production_unchanged(o: Observation) -> list[str]:
    if o.new_configs or o.after != o.before:
        return [f"{o.name}: the run should have been blocked, but it deployed {sorted(o.new_configs)}"]
    return []


# -- scenarios ---------------------------------------------------------------------------------
DEPLOYED = (succeeded, endpoint_changed, answers_match)
BLOCKED = (
    succeeded,
    drift_reported,
    gate_blocked_under_retrain,
    production_unchanged,
    notified("blocked"),
    answers_match,
)
CREATE = Step("create", "train", DEPLOYED)
SCENARIOS = {
    "normal": Scenario("normal", (CREATE, Step("update", "train", DEPLOYED))),
    "inject-drift": Scenario(
        "inject-drift",
        (
            CREATE,
            Step(
                "drift",
                "drifted",
                BLOCKED,
            ),
        ),
    ),
    "fail-training": Scenario(
        "fail-training",
        (
            Step("create", "one-class", (failed, notified("failed"), no_endpoint)),
            Step("create", "train", DEPLOYED),
        ),
    ),
}


def run_checks(step: Step, observation: Observation) -> list[str]:
    return [problem for check in step.checks for problem in check(observation)]


# -- after every scenario ------------------------------------------------------------------------
EXPECTED_ARTIFACTS = ("model.tar.gz", "validation/decision.json", "evaluation/decision.json")


def artifacts_present(keys: list[str], bucket: str = settings.S3_BUCKET) -> list[str]:
    """Each kind of artifact a run leaves in S3 is there at least once."""
    return [
        f"no *{suffix} in s3://{bucket}"
        for suffix in EXPECTED_ARTIFACTS
        if not any(key.endswith(suffix) for key in keys)
    ]
