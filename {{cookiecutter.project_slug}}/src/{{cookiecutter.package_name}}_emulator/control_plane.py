"""The offline AWS control plane: a moto server holding the project's real stack.

``ControlPlane`` starts moto in this process (``ThreadedMotoServer`` on a free port) or uses the
server at ``MOTO_ENDPOINT_URL``, turns on moto's ASL interpreter, installs the hooks of
``integrations``, deploys ``infra/template.yaml`` with the deploy CLI's own functions and uploads
the sample data. Everything a run touches (S3, SageMaker jobs and endpoints, the state machine,
the Lambda, SNS) then lives in moto, so the ASL, the Lambda, the deploy CLI and a person with the
AWS CLI see the same state.

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
import re
import threading
import time
import urllib.parse
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import cfn, clients, inputs, polling, stack

from . import integrations, jsonata, patches

LOG = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# A plain local image name: an ECR-like name makes SageMaker local mode try to pull it.
LOCAL_IMAGE_URI = f"{settings.PROJECT_SLUG}:{settings.IMAGE_TAG}"
_ROLE_ARN = "arn:aws:iam::123456789012:role/local-emulator"
_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class ControlPlaneError(RuntimeError):
    """The control plane could not start or deploy; the message says which step and why."""


@dataclass
class Stack:
    """What the emulator needs to know about the deployed stack."""

    name: str
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    state_machine_arn: str
    definition: str  # the rendered ASL the state machine runs
    timings: dict[str, float] = field(default_factory=dict)  # seconds per deploy step


class ControlPlane:
    # moto keeps its state in module globals: two in-process servers would share (and reset) it.
    _active: ControlPlane | None = None

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        region: str = settings.AWS_REGION,
        endpoint_url: str | None = None,
        project_root: Path = PROJECT_ROOT,
    ) -> None:
        """``host``: where an in-process server binds. 127.0.0.1 serves host processes only;
        containers (SageMaker local mode) need "0.0.0.0" and ``container_endpoint_url``. moto's own
        clients always call ``localhost:$MOTO_PORT``, so binding only the bridge address would
        break them."""
        self.host = host
        self.region = region
        self.project_root = project_root
        self._external_url = endpoint_url or os.environ.get("MOTO_ENDPOINT_URL") or None
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self.port: int | None = None
        self.stack: Stack | None = None
        # One boto3 session for this control plane (sessions are not thread-safe: creation is
        # locked) and one client per service: creating a client reads its service model, which
        # costs 5-150 ms, and the emulator asks for a client at every step.
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> ControlPlane:
        if self.port is not None:
            return self
        if self._external_url:
            parsed = urllib.parse.urlsplit(self._external_url)
            if not parsed.port:
                raise ControlPlaneError(f"MOTO_ENDPOINT_URL={self._external_url!r} has no port")
            self.port = parsed.port
            LOG.info(
                "using the moto server at %s (hooks must be installed in that process)", self._external_url
            )
        else:
            from moto.server import ThreadedMotoServer

            other = ControlPlane._active
            if other is not None:
                raise ControlPlaneError(
                    f"another ControlPlane (port {other.port}) runs in this process and moto's state is "
                    "per process: reuse that instance or stop it first"
                )
            # Port 0: the OS picks a free port at bind time (no probe-then-bind race).
            self._server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
            self._server.start()
            ControlPlane._active = self
            self.port = self._server.get_host_and_port()[1]
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
        try:
            # moto's ASL interpreter and Lambda hook reach the server through MOTO_PORT. Dummy
            # credentials: the deploy CLI's clients use the default chain, which must never find real ones.
            self._set_env("MOTO_PORT", str(self.port))
            for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
                self._set_env(name, value)
            self._set_env("AWS_EC2_METADATA_DISABLED", "true")
            self._set_env("AWS_SESSION_TOKEN", None)
            for component in patch_components():
                patches.install(component)
            self.configure(execute_state_machine=True)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the in-process server (frees the port), reset its state, restore the environment."""
        if self.port is None:
            return
        if self._server is not None:
            try:
                self.configure(execute_state_machine=False)
                requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=30)
            finally:
                self._server.stop()
                self._server = None
                ControlPlane._active = None
                patches.uninstall_all()  # moto as it was: the next ControlPlane installs afresh
        with self._clients_lock:
            self._clients.clear()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        self.port = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_env(self, name: str, value: str | None) -> None:
        """Set (or with None, remove) a variable until stop() restores it."""
        self._saved_env.setdefault(name, os.environ.get(name))
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

    def configure(self, **stepfunctions: bool) -> dict[str, Any]:
        """Set moto's Step Functions options, e.g. ``execute_state_machine=True``."""
        response = requests.post(
            f"{self.endpoint_url}/moto-api/config", json={"stepfunctions": stepfunctions}, timeout=30
        )
        response.raise_for_status()
        return response.json()

    # -- addresses and clients ------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise ControlPlaneError(
                "the control plane is not started: call start() or use it as a context manager"
            )
        if self._external_url:
            return self._external_url.rstrip("/")
        return f"http://127.0.0.1:{self.port}"

    @property
    def container_endpoint_url(self) -> str:
        """The URL a container on the default Docker bridge uses to reach this server."""
        if self._external_url or self.host not in ("0.0.0.0", docker_host_address()):
            raise ControlPlaneError(
                f"moto listens on {self.host}, which containers cannot reach: start ControlPlane(host='0.0.0.0')"
            )
        return f"http://{docker_host_address()}:{self.port}"

    def client(self, service: str, config: Config | None = None) -> Any:
        """A client of the moto server: the same one per service, a new one for a given ``config``."""
        endpoint_url = self.endpoint_url
        with self._clients_lock:
            client = None if config is not None else self._clients.get(service)
            if client is None:
                if self._session is None:
                    self._session = boto3.session.Session()
                client = self._session.client(
                    service,
                    endpoint_url=endpoint_url,
                    region_name=self.region,
                    config=config or Config(retries={"max_attempts": 2}),
                    **DUMMY_CREDENTIALS,
                )
                if config is None:
                    self._clients[service] = client
        return client

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
        from {{ cookiecutter.package_name }}_deploy.definition import render_definition

        template = cfn.load_template(self.project_root / template_file)
        logical_id, resource = next(
            (name, body)
            for name, body in template["Resources"].items()
            if body["Type"] == "AWS::StepFunctions::StateMachine"
        )
        properties = resource["Properties"]
        resolver = _Resolver(self, stack, template)
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
        self,
        name: str,
        payload: dict[str, Any] | None = None,
        arn: str | None = None,
        *,
        execution_input: dict[str, Any] | None = None,
    ) -> str:
        """Start ``name`` with ``execution_input`` (``payload`` is its older name)."""
        payload = execution_input if execution_input is not None else payload
        state_machine = arn or (self.stack.state_machine_arn if self.stack else None)
        if not state_machine:
            raise ControlPlaneError("no state machine: deploy() first or pass arn=")
        response = self.client("stepfunctions").start_execution(
            stateMachineArn=state_machine, name=name, input=json.dumps(payload or {})
        )
        return response["executionArn"]

    def wait_for_execution(
        self, execution_arn: str, timeout_s: float = 3600, poll_s: float = 0.2
    ) -> dict[str, Any]:
        """DescribeExecution once the execution is no longer RUNNING."""
        sfn = self.client("stepfunctions")
        try:
            return polling.wait_until(
                lambda: sfn.describe_execution(executionArn=execution_arn),
                lambda described: described["status"] in _TERMINAL,
                timeout_s,
                poll_s,
            )
        except polling.WaitTimeout as error:
            status = error.last["status"]  # type: ignore[index]
            raise TimeoutError(f"{execution_arn} still {status} after {timeout_s:.0f} s") from None

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


def patch_components() -> list[Any]:
    """Every module that patches moto, in install order (each has install() and uninstall())."""
    return [integrations, jsonata]


def docker_host_address() -> str:
    """The host's address on Docker's default bridge (the gateway containers route through)."""
    import ipaddress

    import docker

    try:
        client = docker.from_env()
        ipam = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    except Exception as error:
        raise ControlPlaneError(f"cannot read Docker's bridge network: {error}") from error
    if ipam.get("Gateway"):
        return ipam["Gateway"]
    # Docker leaves Gateway out of IPAM when it is the default: the subnet's first address.
    return str(next(ipaddress.ip_network(ipam["Subnet"]).hosts()))


class _Resolver:
    """Ref, Fn::GetAtt (Arn) and Fn::Sub against the deployed stack, through moto's APIs."""

    def __init__(self, control_plane: ControlPlane, stack: Stack, template: dict[str, Any]) -> None:
        self.cp = control_plane
        self.stack = stack
        self.template = template
        described = control_plane.client("cloudformation").describe_stacks(StackName=stack.name)["Stacks"][0]
        self.account = described["StackId"].split(":")[4]
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in (template.get("Parameters") or {}).items()
        } | {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}

    def value(self, node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and "Ref" in node:
            return self.ref(node["Ref"])
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            return self.get_att(*node["Fn::GetAtt"])
        if isinstance(node, dict) and "Fn::Sub" in node and isinstance(node["Fn::Sub"], str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: self.sub_name(m.group(1)), node["Fn::Sub"])
        raise ControlPlaneError(
            f"cannot resolve {node!r} offline: keep DefinitionSubstitutions to !Ref, !GetAtt X.Arn or a simple !Sub"
        )

    def sub_name(self, name: str) -> str:
        if "." in name and not name.startswith("AWS::"):
            return self.get_att(*name.split(".", 1))
        return self.ref(name)

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.cp.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.stack.name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.stack.resources:
            return self.stack.resources[name]
        raise ControlPlaneError(f"Ref {name}: neither a parameter nor a resource of stack {self.stack.name}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource_type = self.template["Resources"][logical_id]["Type"]
        physical = self.ref(logical_id)
        if attribute != "Arn":
            raise ControlPlaneError(f"GetAtt {logical_id}.{attribute}: only Arn is resolved offline")
        if resource_type == "AWS::IAM::Role":
            return self.cp.client("iam").get_role(RoleName=physical)["Role"]["Arn"]
        if resource_type == "AWS::Lambda::Function":
            return self.cp.client("lambda").get_function_configuration(FunctionName=physical)["FunctionArn"]
        if resource_type == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{physical}"
        if resource_type == "AWS::ECR::Repository":
            return f"arn:aws:ecr:{self.cp.region}:{self.account}:repository/{physical}"
        if physical.startswith("arn:"):
            return physical  # SNS topics, state machines: the physical id is the ARN
        raise ControlPlaneError(f"GetAtt {logical_id}.Arn: no offline rule for {resource_type}")


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
