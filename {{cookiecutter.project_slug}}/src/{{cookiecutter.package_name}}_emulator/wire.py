"""moto's SageMaker wire, corrected and routed to the data plane: the thin layer, no state.

Each patch parses the request, lets moto validate and record it where moto can, and hands the
rest to ``plane`` (``data_plane.DataPlane``), which owns the state. "Where is moto
corrected?" for SageMaker: here (for the ASL interpreter and S3: ``integrations``). Patched, all
through one ``patches.Patches`` (reversible, pinned to moto 5.2.5):

- CreateTrainingJob / CreateProcessingJob / CreateHyperParameterTuningJob: moto records the job
  as already Completed; the plane starts it for real. Hooked at the response layer because moto
  drops ``Environment`` and rewrites ``MetricDefinitions`` before its backend sees them.
- CreateEndpoint: refuses an existing name, as AWS does (moto silently replaces it).
- UpdateEndpoint: missing in moto (HTTP 500); emulated by the plane as SageMaker's blue/green
  deployment with auto-rollback (``blue_green``), DeploymentConfig included.
- DeleteEndpoint: also stops what serves it.
- sagemaker-runtime InvokeEndpoint: forwarded to the serving process or container.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .patches import MOTO_PINS, Patches, private

if TYPE_CHECKING:
    from .data_plane import DataPlane

PATCHES = Patches("sagemaker-wire", pins=MOTO_PINS)


def install(plane: DataPlane) -> None:
    response = private("moto.sagemaker.responses", "SageMakerResponse")
    backend_class = private("moto.sagemaker.models", "SageMakerModelBackend")
    runtime_response = private("moto.sagemakerruntime.responses", "SageMakerRuntimeResponse")
    validation_error = private("moto.sagemaker.exceptions", "ValidationError")
    action_result = private("moto.core.responses", "ActionResult")

    def after_create(action: str, start: Any) -> Any:
        original = getattr(response, action)

        def handler(self: Any) -> Any:
            result = original(self)  # moto validates and records the resource
            start(self.sagemaker_backend, json.loads(self.body or "{}"))
            return result

        return handler

    original_create_endpoint = response.create_endpoint

    def create_endpoint(self: Any) -> Any:
        backend, name = self.sagemaker_backend, self._get_param("EndpointName")
        if name in backend.endpoints:
            raise validation_error(
                message=f'Cannot create already existing endpoint "{plane.endpoint_arn(backend, name)}".'
            )
        result = original_create_endpoint(self)
        plane.start_endpoint(backend, name)
        return result

    def update_endpoint(self: Any) -> Any:
        endpoint = plane.update_endpoint(
            self.sagemaker_backend,
            self._get_param("EndpointName"),
            self._get_param("EndpointConfigName"),
            self._get_param("DeploymentConfig"),
            bool(self._get_param("RetainDeploymentConfig")),
        )
        return action_result({"EndpointArn": endpoint.arn})

    original_delete = backend_class.delete_endpoint

    def delete_endpoint(backend: Any, endpoint_name: str) -> None:
        original_delete(backend, endpoint_name)
        plane.stop_endpoint(backend, endpoint_name)

    for action, start in (
        ("create_training_job", plane.start_training),
        ("create_processing_job", plane.start_processing),
        ("create_hyper_parameter_tuning_job", plane.start_tuning),
    ):
        PATCHES.replace(response, action, after_create(action, start))
    PATCHES.replace(response, "create_endpoint", create_endpoint)
    PATCHES.replace(response, "update_endpoint", update_endpoint, must_exist=False)  # not in moto
    PATCHES.replace(
        backend_class,
        "update_endpoint",
        lambda backend, name, config, deployment_config=None: plane.update_endpoint(
            backend, name, config, deployment_config
        ),
        must_exist=False,
    )
    PATCHES.replace(backend_class, "delete_endpoint", delete_endpoint)
    PATCHES.replace(runtime_response, "invoke_endpoint", lambda self: plane.invoke(self))


def uninstall() -> None:
    PATCHES.undo()
