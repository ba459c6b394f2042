"""Update the endpoint to a new image by blue/green deployment with auto-rollback alarms."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from . import polling
from .clients import DeployError, Progress, say
from .inputs import EndpointUpdateRequest

ENDPOINT_BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack"}


def blue_green_config(alarm_names: Sequence[str]) -> dict[str, Any]:
    """Same DeploymentConfig as the state machine's UpdateEndpoint: all at once, alarms roll back."""
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "TerminationWaitInSeconds": 600,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarm_names]},
    }


def default_alarm_names(stack_name: str) -> list[str]:
    # Named in infra/template.yaml as ${AWS::StackName}-endpoint-5xx / -endpoint-latency.
    return [f"{stack_name}-endpoint-5xx", f"{stack_name}-endpoint-latency"]


def wait_for_endpoint(
    sagemaker: Any,
    endpoint_name: str,
    progress: Progress = say,
    poll_seconds: float = 30,
    timeout: float = 5400,
) -> dict[str, Any]:
    start = time.monotonic()
    try:
        return polling.wait_until(
            lambda: sagemaker.describe_endpoint(EndpointName=endpoint_name),
            lambda endpoint: endpoint["EndpointStatus"] not in ENDPOINT_BUSY,
            timeout,
            poll_seconds,
            on_poll=lambda e: progress(
                f"endpoint {endpoint_name}: {e['EndpointStatus']} ({time.monotonic() - start:.0f} s)"
            ),
        )
    except polling.WaitTimeout as error:
        status = error.last["EndpointStatus"]  # type: ignore[index]
        raise DeployError(f"endpoint {endpoint_name} still {status} after {timeout:.0f} s") from None


def update_endpoint(sagemaker: Any, request: EndpointUpdateRequest, progress: Progress = say) -> str:
    """Serve the production model's artifact with a new image; returns the new endpoint config name.

    SageMaker rolls a failed blue/green update back silently (the endpoint is InService again, with
    the old config), so success is checked on the config name, not only on the status.
    """
    endpoint_name, image_uri = request.endpoint_name, request.image_uri
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if "Could not find endpoint" in str(error):
            raise DeployError(
                f"endpoint {endpoint_name} does not exist: the pipeline creates it on its first promoted run"
            ) from error
        raise
    if endpoint["EndpointStatus"] != "InService":
        raise DeployError(
            f"endpoint {endpoint_name} is {endpoint['EndpointStatus']}, not InService: not updating"
        )
    old_config_name = endpoint["EndpointConfigName"]
    old_config = sagemaker.describe_endpoint_config(EndpointConfigName=old_config_name)
    variant = old_config["ProductionVariants"][0]
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    container = dict(model.get("PrimaryContainer") or model["Containers"][0])
    # Unique, short and traceable: time stamp plus a hash of the image (names allow 63 characters).
    suffix = f"ci-{datetime.now(UTC):%Y%m%d%H%M%S}-{hashlib.sha256(image_uri.encode()).hexdigest()[:8]}"
    model_name, config_name = f"model-{suffix}", f"config-{suffix}"
    new_container = {"Image": image_uri, "ModelDataUrl": container["ModelDataUrl"]}
    if container.get("Environment"):
        new_container["Environment"] = container["Environment"]
    sagemaker.create_model(
        ModelName=model_name, ExecutionRoleArn=model["ExecutionRoleArn"], PrimaryContainer=new_container
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[
            {
                "VariantName": variant["VariantName"],
                "ModelName": model_name,
                "InstanceType": variant["InstanceType"],
                "InitialInstanceCount": variant["InitialInstanceCount"],
                "InitialVariantWeight": variant.get("InitialVariantWeight", 1.0),
            }
        ],
    )
    progress(f"updating endpoint {endpoint_name}: {old_config_name} -> {config_name} (image {image_uri})")
    sagemaker.update_endpoint(
        EndpointName=endpoint_name,
        EndpointConfigName=config_name,
        DeploymentConfig=blue_green_config(request.alarm_names),
    )
    final = wait_for_endpoint(sagemaker, endpoint_name, progress, request.poll_seconds)
    if final["EndpointStatus"] != "InService":
        raise DeployError(
            f"endpoint {endpoint_name} is {final['EndpointStatus']}: {final.get('FailureReason', 'no reason given')}"
        )
    if final["EndpointConfigName"] != config_name:
        raise DeployError(
            f"endpoint {endpoint_name} rolled back: it still runs {final['EndpointConfigName']}, not {config_name} "
            f"(an alarm fired or the new containers failed their health check). "
            f"{final.get('FailureReason', '')}".strip()
        )
    progress(f"endpoint {endpoint_name} now runs {config_name}")
    return config_name
