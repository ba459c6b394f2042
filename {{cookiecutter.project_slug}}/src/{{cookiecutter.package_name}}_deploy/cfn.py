"""The one CloudFormation YAML loader (used by the ASL checker, the offline control plane and tests).

Short-form tags become the long form CloudFormation itself uses in JSON templates:
``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``,
``!Sub ...`` -> ``{"Fn::Sub": ...}`` (every other ``!Tag`` likewise ``Fn::Tag``), per "Intrinsic
function reference" (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html).
A SafeLoader subclass: no arbitrary Python objects.
"""

from __future__ import annotations

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
