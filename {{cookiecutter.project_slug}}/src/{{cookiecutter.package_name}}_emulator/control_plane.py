"""The offline AWS control plane: the moto server with the project's real stack deployed.

``ControlPlane`` (a ``moto_server.MotoServer``) deploys ``infra/template.yaml`` with the deploy CLI's
own functions, uploads the sample data and runs executions. Everything a run touches (S3,
SageMaker jobs and endpoints, the state machine, the Lambda, SNS) then lives in moto, so the ASL,
the Lambda, the deploy CLI and a person with the AWS CLI see the same state.

moto's CloudFormation gaps are patched here and only here (see ``_install_state_machine``).

    with ControlPlane() as cp:
        stack = cp.deploy()
        cp.upload_sample_data(work_dir)
        arn = cp.start_execution("run-1")
        print(cp.wait_for_execution(arn)["status"])
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import cfn, clients, executions, inputs, stack
from {{ cookiecutter.package_name }}_deploy.definition import render_definition

from .moto_server import ControlPlaneError, MotoServer

LOG = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_IMAGE_URI = f"{settings.PROJECT_SLUG}:{settings.IMAGE_TAG}"
_ROLE_ARN = "arn:aws:iam::123456789012:role/local-emulator"


@dataclass
class Stack:
    """What the emulator needs to know about the deployed stack."""

    name: str
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    state_machine_arn: str
    definition: str  # the rendered ASL the state machine runs
    timings: dict[str, float] = field(default_factory=dict)  # seconds per deploy step


class ControlPlane(MotoServer):
    """The moto server with the project's stack deployed (``deploy``), its data and executions."""

    def __init__(self, *, project_root: Path = PROJECT_ROOT, **server: Any) -> None:
        """``server``: ``MotoServer``'s arguments (``host``, ``region``, ``endpoint_url``)."""
        super().__init__(**server)
        self.project_root = project_root
        self.stack: Stack | None = None

    # -- the stack ------------------------------------------------------------------------
    def deploy(
        self,
        *,
        image_uri: str = LOCAL_IMAGE_URI,
        parameters: dict[str, str] | None = None,
        progress: Any = LOG.info,
    ) -> Stack:
        """Deploy ``infra/template.yaml`` exactly as ``deploy deploy-infra`` does, then patch moto's gaps.

        ``parameters`` are extra stack parameters (``EndpointPollSeconds`` defaults to 1 here, since
        local endpoints come up in seconds, not minutes).
        """
        timings: dict[str, float] = {}
        started = time.monotonic()
        request = inputs.InfraRequest(
            project_root=self.project_root,
            image_uri=image_uri,
            parameters={"EndpointPollSeconds": "1", **(parameters or {})},
            poll_seconds=0.1,
        )
        target = clients.Aws(region=self.region, endpoint_url=self.endpoint_url)
        # moto's CloudFormation skips resource types it does not model (alarms, bucket policies, the
        # OIDC provider) with a warning each time it parses the template: nothing offline depends
        # on them, so say it once, quietly.
        moto_cfn_log = logging.getLogger("moto")  # moto.cloudformation.parsing logs as "moto"
        level = moto_cfn_log.level
        moto_cfn_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(record=True) as skipped:
                warnings.simplefilter("always")
                outputs = stack.deploy_infra(target, request, progress=progress)
                resources = {
                    r["LogicalResourceId"]: r["PhysicalResourceId"]
                    for r in self.client("cloudformation").list_stack_resources(StackName=request.stack_name)[
                        "StackResourceSummaries"
                    ]
                }
        except clients.DeployError as error:
            raise ControlPlaneError(f"deploying {stack.TEMPLATE_FILE} to moto failed: {error}") from error
        finally:
            moto_cfn_log.setLevel(level)
        for message in sorted({str(warning.message) for warning in skipped}):
            LOG.info("moto CloudFormation: %s", message)
        timings["stack"] = time.monotonic() - started

        started = time.monotonic()
        deployed = Stack(
            request.stack_name, outputs, resources, outputs.get("StateMachineArn", ""), "", timings
        )
        deployed.definition = self._install_state_machine(deployed, stack.TEMPLATE_FILE)
        timings["state_machine"] = time.monotonic() - started
        self.stack = deployed
        return deployed

    def _install_state_machine(self, stack: Stack, template_file: Path) -> str:
        """moto gap: its CloudFormation ignores ``DefinitionS3Location``/``Definition`` and
        ``DefinitionSubstitutions`` and creates the state machine with an empty definition, in the
        backend that does not execute. Render the definition as CloudFormation would (the ASL at
        DefinitionS3Location, the substitutions resolved from the stack's resources) and put the
        state machine, same name and role, where executions run."""
        template = cfn.load_template(self.project_root / template_file)
        logical_id, resource = next(
            (name, body)
            for name, body in template["Resources"].items()
            if body["Type"] == "AWS::StepFunctions::StateMachine"
        )
        properties = resource["Properties"]
        resolver = cfn.Intrinsics.of_stack(template, stack.name, stack.resources, self.region, self.client)
        location = properties.get("DefinitionS3Location")
        if location:
            body = self.client("s3").get_object(
                Bucket=resolver.value(location["Bucket"]), Key=resolver.value(location["Key"])
            )
            asl_text = body["Body"].read().decode()
        else:
            definition = properties.get("DefinitionString") or properties.get("Definition")
            asl_text = definition if isinstance(definition, str) else json.dumps(definition)
        substitutions = {
            k: resolver.value(v) for k, v in (properties.get("DefinitionSubstitutions") or {}).items()
        }
        rendered = render_definition(asl_text, substitutions)

        sfn = self.client("stepfunctions")
        arn = stack.resources[logical_id]
        name = arn.rsplit(":", 1)[-1]
        role = resolver.value(properties["RoleArn"])
        # The executing backend: create it there (same name -> same ARN as the stack's output)...
        with contextlib.suppress(sfn.exceptions.StateMachineDoesNotExist):
            sfn.delete_state_machine(stateMachineArn=arn)
        created = sfn.create_state_machine(name=name, definition=rendered, roleArn=role)["stateMachineArn"]
        if created != arn:
            raise ControlPlaneError(f"state machine recreated as {created}, expected the stack's {arn}")
        # ...and keep the stack's own record (the non-executing backend) in step with it.
        self.configure(execute_state_machine=False)
        try:
            sfn.update_state_machine(stateMachineArn=arn, definition=rendered)
        finally:
            self.configure(execute_state_machine=True)
        return rendered

    # -- data -----------------------------------------------------------------------------
    def upload_sample_data(self, work_dir: Path, *, drifted: bool = False) -> dict[str, str]:
        """Write the sample data set and put it where the state machine reads it.

        ``drifted`` uploads the drifted copy as ``data/train/`` so the drift check has work to do.
        """
        from . import sample_data  # scikit-learn: imported only when data is written

        paths = sample_data.write(Path(work_dir), with_drift=drifted)
        s3 = self.client("s3")
        uploads = {
            "train": (paths["drifted"] if drifted else paths["train"], "data/train/train.csv"),
            "holdout": (paths["holdout"], "data/holdout/holdout.csv"),
        }
        uris = {}
        for name, (path, key) in uploads.items():
            s3.upload_file(str(path), settings.S3_BUCKET, key)
            uris[name] = f"s3://{settings.S3_BUCKET}/{key}"
        return uris

    # -- executions -----------------------------------------------------------------------
    def start_execution(
        self, name: str, arn: str | None = None, *, execution_input: dict[str, Any] | None = None
    ) -> str:
        """Start ``name`` with ``execution_input`` on the stack's state machine (or ``arn``)."""
        state_machine = arn or (self.stack.state_machine_arn if self.stack else None)
        if not state_machine:
            raise ControlPlaneError("no state machine: deploy() first or pass arn=")
        payload = json.dumps(execution_input or {})
        return executions.start_execution(self.client("stepfunctions"), state_machine, name, payload)

    def wait_for_execution(
        self, execution_arn: str, timeout_s: float = 3600, poll_s: float = 0.2
    ) -> dict[str, Any]:
        """DescribeExecution once the execution is no longer RUNNING (the deploy CLI's own wait)."""
        sfn = self.client("stepfunctions")
        return executions.wait_for_execution(sfn, execution_arn, lambda _: None, poll_s, timeout_s)

    def run_definition(
        self, definition: dict[str, Any] | str, payload: Any = None, *, name: str, timeout_s: float = 120
    ) -> dict[str, Any]:
        """Create a state machine from ``definition``, run it once, return DescribeExecution.

        For trying states in isolation with the same interpreter and hooks as the pipeline.
        """
        sfn = self.client("stepfunctions")
        text = definition if isinstance(definition, str) else json.dumps(definition)
        arn = sfn.create_state_machine(name=name, definition=text, roleArn=_ROLE_ARN)["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload or {}))
        return self.wait_for_execution(execution["executionArn"], timeout_s=timeout_s)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events, token = [], None
        while True:
            page = sfn.get_execution_history(
                executionArn=execution_arn, **({"nextToken": token} if token else {})
            )
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events


def main(argv: list[str] | None = None) -> None:
    """Serve the control plane until Ctrl-C: the stack deployed, the sample data uploaded.

    Other processes (the AWS CLI, a debugger, ``MOTO_ENDPOINT_URL=...``) can then use it; the
    hooks live in this process, so executions run here.
    """
    import argparse
    import signal
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to let containers reach it")
    parser.add_argument("--image-uri", default=LOCAL_IMAGE_URI)
    parser.add_argument("--drifted", action="store_true", help="upload the drifted copy as data/train/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    os.environ.pop("MOTO_ENDPOINT_URL", None)  # this process is the server
    with ControlPlane(host=args.host) as cp, tempfile.TemporaryDirectory() as work:
        stack = cp.deploy(image_uri=args.image_uri)
        cp.upload_sample_data(Path(work), drifted=args.drifted)
        print(f"moto: {cp.endpoint_url}  (stack {stack.name} in {sum(stack.timings.values()):.1f} s)")
        print(f"state machine: {stack.state_machine_arn}")
        credentials = "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
        print(f"try: {credentials} aws --endpoint-url {cp.endpoint_url} s3 ls")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
