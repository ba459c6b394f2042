"""What a local-pipeline run does and expects, as data: scenarios of steps, checks as small functions.

A ``Scenario`` is a list of ``Step``s. A step uploads one of the run's training sets (``train``,
``drifted`` or ``one-class``), optionally arms a fault for the new fleet of its endpoint update
(``fault``: a model that fails after an update), runs one execution and hands what happened (an
``Observation``) to its checks. A check is a function ``Observation -> list[str]`` of problems; none means the expected
outcome happened. Your data (``--data``) changes the data sets, not the scenarios.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from {{ cookiecutter.package_name }} import settings

from .blue_green import FleetFault


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
    endpoint_polls: int = 0  # DescribeEndpoint states entered: the wait loop's turns


Check = Callable[[Observation], list[str]]


@dataclass(frozen=True)
class Step:
    prefix: str  # execution name prefix: create, update, drift
    training_set: str  # which prepared training set is data/train/ during the execution
    checks: tuple[Check, ...]
    fault: FleetFault | None = None  # injected into the new fleet of this step's endpoint update


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


def rolled_back(o: Observation) -> list[str]:
    """The update was deployed, rolled back by SageMaker, and the state machine said so."""
    problems = []
    if o.status != "FAILED" or not o.error.startswith("EndpointRolledBack"):
        problems.append(
            f"{o.name}: expected FAILED with EndpointRolledBack, got {o.status} {o.error}".strip()
        )
    if "EndpointRolledBack" not in o.states:
        problems.append(f"{o.name}: the state machine's rolled-back branch (EndpointRolledBack) did not run")
    if not o.new_configs or o.after != o.before:
        problems.append(f"{o.name}: expected a new config rolled back to {o.before}, got {o.after}")
    return problems


def waited_for_the_endpoint(o: Observation) -> list[str]:
    """The wait loop (WaitForEndpoint -> DescribeEndpoint -> EndpointReady) ran more than once."""
    if o.endpoint_polls >= 2:
        return []
    return [
        f"{o.name}: DescribeEndpoint ran {o.endpoint_polls} time(s): the endpoint changed faster than the wait loop"
    ]


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
DEPLOYED = (succeeded, endpoint_changed, answers_match, waited_for_the_endpoint)
# The old model keeps serving after the rollback, and the run failure is notified.
ROLLED_BACK = (rolled_back, notified("failed"), answers_match, waited_for_the_endpoint)
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
    **{
        f"fail-update-{fault.value}": Scenario(
            f"fail-update-{fault.value}", (CREATE, Step("update", "train", ROLLED_BACK, fault))
        )
        for fault in FleetFault
    },
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
