"""The offline AWS control plane: the moto server with the project's real stack deployed.

``ControlPlane`` (a ``moto_server.MotoServer``) deploys ``infra/template.yaml`` with the deploy CLI's
own functions, uploads the sample data and runs executions. Everything a run touches (S3,
SageMaker jobs and endpoints, the state machine, the Lambda, SNS) then lives in moto, so the ASL,
the Lambda, the deploy CLI and a person with the AWS CLI see the same state.

moto's CloudFormation gaps are patched here and only here: the state machine's definition
(``_install_state_machine``), the resources moto lists but never creates (bucket policy, the
bucket's public access block, versioning and ownership controls, CloudWatch alarms, the OIDC
provider: ``_create_missing_resources``) and the stack's resource listing (``CloudFormationGaps``).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import cfn, clients, executions, inputs, stack
from {{ cookiecutter.package_name }}_deploy.definition import render_definition

from . import bucket_policy, identity_policies, patches, principals
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
    limits: list[str] = field(default_factory=list)  # what the emulator does not enforce for this stack


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
        template = cfn.load_template(self.project_root / stack.TEMPLATE_FILE)
        deployed.limits = self._create_missing_resources(deployed, template)
        timings["missing_resources"] = time.monotonic() - started
        started = time.monotonic()
        deployed.definition = self._install_state_machine(deployed, stack.TEMPLATE_FILE)
        timings["state_machine"] = time.monotonic() - started
        self.stack = deployed
        return deployed

    def _create_missing_resources(self, deployed: Stack, template: dict[str, Any]) -> list[str]:
        """moto gap: its CloudFormation lists some resources with blank ids but never creates them
        (``AWS::S3::BucketPolicy``, ``AWS::CloudWatch::Alarm``, ``AWS::IAM::OIDCProvider``) and
        ignores bucket properties. Create each from the template as deployed (intrinsics resolved
        against the stack, conditions as moto evaluated them), record it in moto's stack so
        ListStackResources shows its physical id, and evaluate bucket policies per principal.
        Returns what the emulator still does not enforce (for the run's output)."""
        patches.install(CloudFormationGaps)
        moto_stack = _moto_stack(self.region, deployed.name)
        resolver = cfn.Intrinsics.of_stack(
            template, deployed.name, deployed.resources, self.region, self.client
        )
        for logical_id, body in template["Resources"].items():
            if not _condition_holds(moto_stack, body):
                continue
            if body["Type"] == "AWS::S3::Bucket":
                properties = resolved(body.get("Properties") or {}, resolver)
                self._apply_bucket_properties(deployed.resources[logical_id], properties)
            creator = _CREATORS.get(body["Type"])
            if creator is not None and logical_id not in _created(moto_stack):
                physical_id = creator(self.client, resolved(body.get("Properties") or {}, resolver))
                _record(moto_stack, logical_id, physical_id, body["Type"])
                deployed.resources[logical_id] = physical_id
        # The state machine's task integrations sign as its role (principals), and bucket
        # policies are evaluated per principal from now on.
        principals.reset()
        state_machine = cfn.resources_of_type(template, "AWS::StepFunctions::StateMachine")
        for body in state_machine.values():
            principals.register(principals.INTERPRETER_KEY, resolver.value(body["Properties"]["RoleArn"]))
        patches.install(bucket_policy)
        # Identity policies: every request a stack role signs is decided as IAM would.
        patches.install(identity_policies)
        account = _account(moto_stack)
        identity_policies.enforce(
            f"arn:aws:iam::{account}:role/{deployed.resources[logical_id]}"
            for logical_id in cfn.resources_of_type(template, "AWS::IAM::Role")
            if logical_id in deployed.resources
        )
        return self._limits(moto_stack)

    def _apply_bucket_properties(self, bucket: str, properties: dict[str, Any]) -> None:
        """moto's AWS::S3::Bucket applies only BucketEncryption and Tags."""
        s3 = self.client("s3")
        if "PublicAccessBlockConfiguration" in properties:
            s3.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
            )
        if "VersioningConfiguration" in properties:
            s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration=properties["VersioningConfiguration"]
            )
        if "OwnershipControls" in properties:
            s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=properties["OwnershipControls"])

    def _limits(self, moto_stack: Any) -> list[str]:
        limits = [
            *bucket_policy.LIMITS,
            principals.LIMITS.format(unattributed=principals.unattributed(_account(moto_stack))),
        ]
        s3 = self.client("s3")
        for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
            try:
                policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
            except s3.exceptions.ClientError:
                continue
            for operator in sorted(bucket_policy.unsupported_conditions(policy)):
                limits.append(f"s3://{bucket} policy: condition operator {operator} is not evaluated offline")
        not_created = [
            r.logical_resource_id for r in moto_stack.stack_resources if not r.physical_resource_id
        ]
        if not_created:
            limits.append(
                f"not created offline (moto has no CloudFormation support): {', '.join(not_created)}"
            )
        return limits

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


# -- moto's CloudFormation gaps ---------------------------------------------------------------
Clients = Callable[[str], Any]  # service name -> boto3 client of the account


def _create_bucket_policy(client: Clients, properties: dict[str, Any]) -> str:
    client("s3").put_bucket_policy(
        Bucket=properties["Bucket"], Policy=json.dumps(properties["PolicyDocument"])
    )
    return properties["Bucket"]  # CloudFormation's physical id of a bucket policy is its bucket


def _create_alarm(client: Clients, properties: dict[str, Any]) -> str:
    cloudwatch = client("cloudwatch")
    shape = cloudwatch.meta.service_model.operation_model("PutMetricAlarm").input_shape
    cloudwatch.put_metric_alarm(**_coerced(properties, shape))  # the template's names are the API's
    return properties["AlarmName"]


def _create_oidc_provider(client: Clients, properties: dict[str, Any]) -> str:
    request = {"Url": properties["Url"], "ClientIDList": properties.get("ClientIdList", [])}
    if properties.get("ThumbprintList"):
        request["ThumbprintList"] = properties["ThumbprintList"]
    if properties.get("Tags"):
        request["Tags"] = properties["Tags"]
    return client("iam").create_open_id_connect_provider(**request)["OpenIDConnectProviderArn"]


# Resource type -> create it from its resolved properties, return its physical id (as CloudFormation's Ref).
_CREATORS = {
    "AWS::S3::BucketPolicy": _create_bucket_policy,
    "AWS::CloudWatch::Alarm": _create_alarm,
    "AWS::IAM::OIDCProvider": _create_oidc_provider,
}


def create_template_resource(client: Clients, body: dict[str, Any], resolver: cfn.Intrinsics) -> str:
    """Create one template resource of a type moto's CloudFormation skips; its physical id."""
    return _CREATORS[body["Type"]](client, resolved(body.get("Properties") or {}, resolver))


@dataclass
class _Listed:
    """A stack resource as moto's ListStackResources/DescribeStackResources read it."""

    logical_resource_id: str
    physical_resource_id: str
    cf_resource_type: str


CFN_PATCHES = patches.Patches("cloudformation-gaps")


class CloudFormationGaps:
    """moto lists every resource of the template, created or not, with blank ids for those it skipped.
    AWS lists the resources it created: none whose condition is false, every other one with its
    type and physical id (a type the emulator cannot create stays listed, without a physical id)."""

    @staticmethod
    def install() -> None:
        stack_class = patches.private("moto.cloudformation.models", "Stack")

        def stack_resources(moto_stack: Any) -> list[Any]:
            resource_map, listed = moto_stack.resource_map, []
            for logical_id, body in resource_map._resource_json_map.items():
                if not _condition_holds(moto_stack, body):
                    continue
                created = resource_map._parsed_resources.get(logical_id)
                listed.append(created if created is not None else _Listed(logical_id, "", body["Type"]))
            return listed

        CFN_PATCHES.replace(stack_class, "stack_resources", property(stack_resources))

    @staticmethod
    def uninstall() -> None:
        CFN_PATCHES.undo()


def _moto_stack(region: str, name: str) -> Any:
    backends = patches.private("moto.cloudformation.models", "cloudformation_backends")
    for account in list(backends):
        for stack_ in list(backends[account][region].stacks.values()):
            if stack_.name == name and stack_.status != "DELETE_COMPLETE":
                return stack_
    raise ControlPlaneError(
        f"stack {name} is not in this process's moto (MOTO_ENDPOINT_URL points elsewhere?)"
    )


def _account(moto_stack: Any) -> str:
    return str(moto_stack.stack_id.split(":")[4])


def _condition_holds(moto_stack: Any, body: dict[str, Any]) -> bool:
    condition = body.get("Condition")
    return not condition or bool(moto_stack.resource_map.lazy_condition_map[condition])


def _created(moto_stack: Any) -> set[str]:
    return {k for k, v in moto_stack.resource_map._parsed_resources.items() if isinstance(v, _Listed)}


def _record(moto_stack: Any, logical_id: str, physical_id: str, resource_type: str) -> None:
    moto_stack.resource_map._parsed_resources[logical_id] = _Listed(logical_id, physical_id, resource_type)


def resolved(node: Any, resolver: cfn.Intrinsics) -> Any:
    """``node`` with every intrinsic function resolved (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``)."""
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)) in ("Ref", "Fn::GetAtt", "Fn::Sub"):
            return resolver.value(node)
        return {key: resolved(value, resolver) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(value, resolver) for value in node]
    return node


def _coerced(value: Any, shape: Any) -> Any:
    """Template values as the API's types (CloudFormation passes a !Ref of a Number parameter as text)."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _coerced(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_coerced(v, shape.member) for v in value]
    if kind in ("integer", "long") and isinstance(value, str):
        return int(value)
    if kind in ("double", "float") and isinstance(value, (str, int)):
        return float(value)
    if kind == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    return value


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
