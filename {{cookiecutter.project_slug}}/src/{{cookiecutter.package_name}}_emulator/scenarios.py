"""What a local-pipeline run does and expects, as data: scenarios of steps, checks as small functions.

A ``Scenario`` is a list of ``Step``s. A step uploads one of the run's training sets (``train``,
``drifted`` or ``one-class``), optionally arms a fault for the new fleet of its endpoint update
(``fault``: a model that fails after an update), runs one execution and hands what happened (an
``Observation``) to its checks. A check is a function ``Observation -> list[str]`` of problems; none means the expected
outcome happened. Your data (``--data``) changes the data sets, not the scenarios, with one
exception: when the gate refuses a candidate a step meant to deploy, that is an answer about your
data, not a broken emulator. The run then ends there (``judge``), with exit code 3 and
one line (``verdict``). The built-in sample must still deploy: there a refusal is a problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from {{ cookiecutter.package_name }} import settings

from .blue_green import FleetFault

if TYPE_CHECKING:
    from .observe import PipelineResult

# Exit codes of make local-pipeline (2, refused data or runtime, is decided before any run).
EXIT_OK, EXIT_BROKEN, EXIT_REFUSED, EXIT_KEPT = 0, 1, 2, 3


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


def still_serving(o: Observation) -> list[str]:
    """After a refusal: the endpoint, if there was one, still answers with its model."""
    return [] if o.before is None else answers_match(o)


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


# -- a refusal by the gate on your data ------------------------------------------------------------
# What must still hold when the gate refused: the run ended as blocked, production did not change,
# the refusal was notified, and a production endpoint kept answering.
KEPT = (succeeded, production_unchanged, notified("blocked"), still_serving)


def gate_refused(o: Observation) -> str | None:
    """The gate's reasons when the execution ended at the ModelGate's blocked branch, else None."""
    evaluation = o.evaluation or {}
    if "ModelGate" not in o.states or "Blocked" not in o.states or evaluation.get("promote") is not False:
        return None
    reasons = [" ".join(str(r).split()) for r in evaluation.get("reasons") or []]  # one line
    return "; ".join(reasons) or "no reason given"


def judge(step: Step, o: Observation, own_data: bool) -> tuple[list[str], str | None]:
    """(problems, the gate's reason when it kept production on your data, else None).

    Only a step meant to deploy (or to roll a deployment back) is judged by ``KEPT`` when the gate
    refused on your data; a step expecting a block, and any step on the sample, by its own checks."""
    reason = gate_refused(o) if own_data else None
    if reason is None or not any(c in step.checks for c in (endpoint_changed, rolled_back)):
        return run_checks(step, o), None
    return [problem for check in KEPT for problem in check(o)], reason


def verdict(result: PipelineResult) -> tuple[int, str]:
    """The run's exit code and its last line."""
    if result.problems:
        return EXIT_BROKEN, f"{len(result.problems)} expected outcome(s) did not happen (listed above)"
    if result.kept_production:
        return EXIT_KEPT, f"the gate kept production: {result.kept_production}"
    return EXIT_OK, "All expected outcomes happened."


# -- after every scenario ------------------------------------------------------------------------
EXPECTED_ARTIFACTS = ("model.tar.gz", "validation/decision.json", "evaluation/decision.json")


def artifacts_present(keys: list[str], bucket: str = settings.S3_BUCKET) -> list[str]:
    """Each kind of artifact a run leaves in S3 is there at least once."""
    return [
        f"no *{suffix} in s3://{bucket}"
        for suffix in EXPECTED_ARTIFACTS
        if not any(key.endswith(suffix) for key in keys)
    ]
