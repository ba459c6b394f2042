"""The one CloudFormation YAML loader, and the intrinsic functions a client must evaluate itself.

Used by the ASL checker, the offline control plane and tests.

Short-form tags become the long form CloudFormation itself uses in JSON templates:
``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``,
``!Sub ...`` -> ``{"Fn::Sub": ...}`` (every other ``!Tag`` likewise ``Fn::Tag``), per "Intrinsic
function reference" (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html).
A SafeLoader subclass: no arbitrary Python objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _construct)


def loads(text: str) -> dict[str, Any]:
    """A template's text as data (long-form intrinsics)."""
    return yaml.load(text, Loader=_Loader)


def load_template(path: Path | str) -> dict[str, Any]:
    """``infra/template.yaml`` (or any CloudFormation YAML file) as data."""
    return loads(Path(path).read_text())


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: body
        for name, body in (template.get("Resources") or {}).items()
        if body.get("Type") == resource_type
    }


class IntrinsicError(ValueError):
    """An intrinsic function the resolver cannot evaluate; the message names it."""


class Intrinsics:
    """``Ref``, ``Fn::GetAtt`` (``Arn``) and ``Fn::Sub`` of a template, evaluated against a deployed stack.

    For what CloudFormation itself resolves but a client must reproduce (e.g. a state machine's
    ``DefinitionSubstitutions`` when moto drops them). ``client(service)`` returns a boto3 client
    of the account the stack lives in; ARNs that only the service knows (IAM roles, Lambda
    functions) are read through it.

        intrinsics = Intrinsics.of_stack(template, "my-stack", resources, region, client)
        intrinsics.value({"Fn::Sub": "arn:aws:s3:::${Bucket}/*"})
    """

    def __init__(
        self,
        template: dict[str, Any],
        *,
        stack_name: str,
        resources: dict[str, str],
        parameters: dict[str, str],
        region: str,
        account: str,
        client: Callable[[str], Any],
    ) -> None:
        self.template, self.stack_name, self.resources = template, stack_name, resources
        self.parameters, self.region, self.account, self.client = parameters, region, account, client

    @classmethod
    def of_stack(
        cls,
        template: dict[str, Any],
        stack_name: str,
        resources: dict[str, str],
        region: str,
        client: Callable,
    ) -> Intrinsics:
        """Parameters and account read from DescribeStacks (template defaults for parameters not given)."""
        described = client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
        defaults = {
            name: str(spec.get("Default", "")) for name, spec in (template.get("Parameters") or {}).items()
        }
        given = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}
        return cls(
            template,
            stack_name=stack_name,
            resources=resources,
            parameters=defaults | given,
            region=region,
            account=described["StackId"].split(":")[4],
            client=client,
        )

    def value(self, node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and "Ref" in node:
            return self.ref(node["Ref"])
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            return self.get_att(*node["Fn::GetAtt"])
        if isinstance(node, dict) and "Fn::Sub" in node and isinstance(node["Fn::Sub"], str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub_name(m.group(1)), node["Fn::Sub"])
        raise IntrinsicError(
            f"cannot resolve {node!r}: only !Ref, !GetAtt X.Arn and a simple !Sub are supported"
        )

    def _sub_name(self, name: str) -> str:
        if "." in name and not name.startswith("AWS::"):
            return self.get_att(*name.split(".", 1))
        return self.ref(name)

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        for table in (pseudo, self.parameters, self.resources):
            if name in table:
                return table[name]
        raise IntrinsicError(f"Ref {name}: neither a parameter nor a resource of stack {self.stack_name}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource_type = self.template["Resources"][logical_id]["Type"]
        physical = self.ref(logical_id)
        if attribute != "Arn":
            raise IntrinsicError(f"GetAtt {logical_id}.{attribute}: only Arn is supported")
        if resource_type == "AWS::IAM::Role":
            return self.client("iam").get_role(RoleName=physical)["Role"]["Arn"]
        if resource_type == "AWS::Lambda::Function":
            return self.client("lambda").get_function_configuration(FunctionName=physical)["FunctionArn"]
        if resource_type == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{physical}"
        if resource_type == "AWS::ECR::Repository":
            return f"arn:aws:ecr:{self.region}:{self.account}:repository/{physical}"
        if physical.startswith("arn:"):
            return physical  # SNS topics, state machines: the physical id is the ARN
        raise IntrinsicError(f"GetAtt {logical_id}.Arn: no rule for {resource_type}")
