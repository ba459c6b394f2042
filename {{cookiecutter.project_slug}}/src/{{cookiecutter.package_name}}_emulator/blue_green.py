"""UpdateEndpoint's blue/green deployment with auto-rollback: the rules and the clock, offline.

What SageMaker does (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-all-at-once.html):
it provisions the new (green) fleet while the old (blue) one serves, checks the new containers'
``/ping``, shifts all traffic to green, then bakes for ``TerminationWaitInSeconds`` while the
``AutoRollbackConfiguration`` alarms watch the endpoint; an alarm in ALARM rolls traffic back to
blue, otherwise blue is terminated. The endpoint is ``Updating`` throughout (``RollingBack`` while
traffic returns to blue) and ends ``InService`` on the new config, or on the old one with a
``FailureReason``; ``LastDeploymentConfig`` is the request's DeploymentConfig.

``Policy.of_request`` validates a DeploymentConfig as UpdateEndpoint does (ranges from botocore's
model, alarms that must exist); ``EndpointClock`` maps SageMaker's times to the emulator's: AWS
seconds run ``speedup`` times faster offline (provisioning, baking, alarm periods alike), so a
600 s baking period and 60 s alarm periods keep their proportions; ``EndpointClock.now`` is the AWS
time metrics and alarms are stamped with. ``FleetFault`` is a fault injected into the next new
fleet (``make local-pipeline --fail-update``), labelled as such wherever it shows.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from moto.sagemaker.exceptions import ValidationError

from .patches import private

# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html
TERMINATION_WAIT_RANGE = (0, 3600)
MAXIMUM_EXECUTION_RANGE = (600, 28800)
TRAFFIC_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
# SageMaker's FailureReason when new containers fail their health check.
PING_FAILED = (
    "The primary container for production variant {variant} did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)


class FleetFault(enum.Enum):
    """A fault injected into the next new fleet an UpdateEndpoint starts (a stand-in for a bad model)."""

    PING = "ping"  # its containers never answer /ping: the update fails before traffic moves
    INVOCATIONS_5XX = "5xx"  # it answers /invocations with HTTP 500: the 5xx alarm fires while baking


@dataclass
class EndpointClock:
    """SageMaker's endpoint timings offline: ``speedup`` AWS seconds pass per real second.

    ``provisioning_s`` is how long (AWS seconds) instances take before a fleet's containers start:
    the time an endpoint stays Creating/Updating besides its own start-up and baking;
    ``rollback_s`` how long it stays RollingBack while traffic returns and the new fleet ends (or
    Updating, while a fleet that failed its health check is released).
    """

    speedup: float = 60.0
    provisioning_s: float = 180.0
    rollback_s: float = 60.0
    _wall0: float = field(default_factory=time.time, repr=False)
    _mono0: float = field(default_factory=time.monotonic, repr=False)

    def now(self) -> float:
        """AWS time (epoch seconds) as the emulator's metrics and alarms see it."""
        return self._wall0 + (time.monotonic() - self._mono0) * self.speedup

    def real(self, aws_seconds: float) -> float:
        return aws_seconds / self.speedup

    def sleep(self, aws_seconds: float, stop: threading.Event) -> bool:
        """Wait ``aws_seconds`` of AWS time; False when ``stop`` was set meanwhile."""
        return not stop.wait(self.real(aws_seconds)) if aws_seconds > 0 else not stop.is_set()


@dataclass
class DeploymentTimer:
    """The AWS time a deployment has taken: its waits (provisioning, baking) at AWS scale, its real
    work (starting containers, health checks) at real speed, since that work is not compressed:
    a container that takes 3 s to start offline took 3 s, not 3 s times the speedup."""

    clock: EndpointClock
    waited_s: float = 0.0  # AWS seconds waited
    _started: float = field(default_factory=time.monotonic, repr=False)

    def wait(self, aws_seconds: float, stop: threading.Event) -> bool:
        self.waited_s += aws_seconds
        return self.clock.sleep(aws_seconds, stop)

    def elapsed_s(self) -> float:
        work = time.monotonic() - self._started - self.clock.real(self.waited_s)
        return self.waited_s + max(0.0, work)


@dataclass(frozen=True)
class Policy:
    """A validated UpdateEndpoint DeploymentConfig (blue/green, all at once)."""

    termination_wait_s: int = 0
    max_execution_s: int | None = None
    traffic: str = "ALL_AT_ONCE"
    alarms: tuple[str, ...] = ()
    given: dict[str, Any] | None = None  # as requested: DescribeEndpoint's LastDeploymentConfig

    @classmethod
    def of_request(cls, config: dict[str, Any] | None, account: str, region: str) -> Policy:
        """The policy of ``config`` or ValidationException, as UpdateEndpoint answers a bad one."""
        if not config:
            return cls()
        blue_green = config.get("BlueGreenUpdatePolicy") or {}
        routing = blue_green.get("TrafficRoutingConfiguration") or {}
        traffic = routing.get("Type", "ALL_AT_ONCE")
        if traffic not in TRAFFIC_TYPES:
            raise ValidationError(message=_constraint(traffic, "trafficRoutingConfiguration.type", "enum"))
        wait = _in_range(blue_green, "TerminationWaitInSeconds", TERMINATION_WAIT_RANGE, 0)
        maximum = _in_range(blue_green, "MaximumExecutionTimeoutInSeconds", MAXIMUM_EXECUTION_RANGE, None)
        rolling = config.get("RollingUpdatePolicy")
        if rolling:  # one batch: its baking period is the wait interval (the data plane says so)
            traffic, wait = "ROLLING", int(rolling.get("WaitIntervalInSeconds", 0))
            maximum = rolling.get("MaximumExecutionTimeoutInSeconds")
        alarms = tuple(
            a["AlarmName"] for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
        )
        missing = [name for name in alarms if name not in _alarm_models(account, region)]
        if missing:
            # UpdateEndpoint refuses rollback alarms that do not exist (the deployment could not be guarded).
            raise ValidationError(
                message=f"The alarm(s) {', '.join(missing)} in AutoRollbackConfiguration do not exist "
                f"in account {account} region {region}."
            )
        return cls(wait, maximum, traffic, alarms, config)


def _in_range(policy: dict[str, Any], member: str, bounds: tuple[int, int], default: int | None) -> Any:
    if member not in policy:
        return default
    value = int(policy[member])
    low, high = bounds
    if not low <= value <= high:
        path = f"deploymentConfig.blueGreenUpdatePolicy.{member[0].lower()}{member[1:]}"
        raise ValidationError(message=_constraint(str(value), path, f"{low}..{high}"))
    return value


def _constraint(value: str, path: str, rule: str) -> str:
    # The wording of AWS's request validation errors.
    if rule == "enum":
        return (
            f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(TRAFFIC_TYPES)}]"
        )
    low, high = rule.split("..")
    bound = f"greater than or equal to {low}" if int(value) < int(low) else f"less than or equal to {high}"
    return (
        f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: "
        f"Member must have value {bound}"
    )


def _alarm_models(account: str, region: str) -> dict[str, Any]:
    """moto's CloudWatch alarms of the account and region, by name."""
    backends = private("moto.cloudwatch.models", "cloudwatch_backends")
    return dict(backends[account][region].alarms)


def alarm_model(account: str, region: str, name: str) -> Any:
    return _alarm_models(account, region).get(name)


def set_alarm_state(account: str, region: str, name: str, state: str, reason: str) -> None:
    """Show an alarm's state in moto's CloudWatch (DescribeAlarms), as CloudWatch would."""
    backends = private("moto.cloudwatch.models", "cloudwatch_backends")
    backends[account][region].set_alarm_state(name, reason, "{}", state)
