"""Which model serves production? The state machine asks before validating and before deploying.

Event ``{"EndpointName": "..."}`` -> ``{"exists", "status", "endpoint_config_name", "model_name",
"model_data_url"}``; ``model_data_url`` is ``"none"`` without an endpoint, which the validate and
evaluate steps read as "no production model yet". Only ``describe_*`` calls, never an unpaged list.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.exceptions import ClientError

NO_MODEL = "none"


class InvalidEvent(ValueError):
    """The event does not name an endpoint."""


def _missing_endpoint(error: ClientError) -> bool:
    # SageMaker answers DescribeEndpoint of an unknown name with a ValidationException,
    # not a ResourceNotFound: "Could not find endpoint ...".
    details = error.response.get("Error", {})
    return details.get("Code") == "ValidationException" and "Could not find endpoint" in details.get(
        "Message", ""
    )


def find_production(sagemaker: Any, endpoint_name: str) -> dict[str, Any]:
    """Follow endpoint -> endpoint config -> first production variant's model -> model artifact."""
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as error:
        if _missing_endpoint(error):
            return {
                "exists": False,
                "status": None,
                "endpoint_config_name": None,
                "model_name": None,
                "model_data_url": NO_MODEL,
            }
        raise
    config_name = endpoint["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    model_name = config["ProductionVariants"][0]["ModelName"]
    model = sagemaker.describe_model(ModelName=model_name)
    # A single-container model has PrimaryContainer; a multi-container one lists Containers.
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return {
        "exists": True,
        "status": endpoint["EndpointStatus"],
        "endpoint_config_name": config_name,
        "model_name": model_name,
        "model_data_url": container.get("ModelDataUrl") or NO_MODEL,
    }


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    endpoint_name = event.get("EndpointName") if isinstance(event, dict) else None
    if not isinstance(endpoint_name, str) or not endpoint_name:
        raise InvalidEvent(f"expected an event with an EndpointName string, got {event!r}")
    # Created per call (not at import) so moto's mock intercepts it in tests; Lambda sets AWS_REGION.
    sagemaker = boto3.client("sagemaker", region_name=os.environ.get("AWS_REGION"))
    return find_production(sagemaker, endpoint_name)
