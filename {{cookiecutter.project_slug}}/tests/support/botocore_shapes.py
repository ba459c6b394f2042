"""botocore's service models as the judge of what the offline control plane answers.

``Recorder`` hooks botocore's ``before-parse`` event of the clients it makes, so it sees every
response body as the server sent it (botocore's parser would silently drop unknown names and
nulls). ``mismatches`` walks a body against the operation's output shape and reports:

- ``missing``: a required member absent or null;
- ``unknown``: a member name the shape does not have (``VolumeSizeInGb`` for ``VolumeSizeInGB``);
- ``null``: an optional member sent as JSON null (AWS leaves it out);
- ``type``: a value of the wrong JSON type, or a string outside the member's enum;
- ``status``: the call failed with HTTP 5xx (an operation the server does not implement).

Bodies of JSON protocols (json, rest-json) are walked in full; XML and query bodies are parsed by
botocore and checked for required members only (their parser cannot show names it drops).

    recorder = Recorder()
    sm = recorder.client(cp, "sagemaker")
    sm.describe_training_job(TrainingJobName="x")
    print(recorder.table())
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.model import Shape

JSON_PROTOCOLS = {"json", "rest-json"}


@dataclass(frozen=True)
class Mismatch:
    operation: str  # "sagemaker.DescribeTrainingJob"
    kind: str  # missing, unknown, null, type, status
    path: str  # where in the answer, e.g. "DataCaptureConfig.DestinationS3Uri"
    detail: str = ""


def _members(shape: Shape, rename: Callable[[str], str] | None) -> dict[str, tuple[str, Shape]]:
    """Members by the name they carry: in an API body, the wire name (headers and status codes
    left out); with ``rename`` (a task output, where every member is data), the renamed member name."""
    if rename is not None:
        return {rename(name): (name, member) for name, member in shape.members.items()}
    return {
        member.serialization.get("name", name): (name, member)
        for name, member in shape.members.items()
        if not member.serialization.get("location")
    }


def _type_problem(shape: Shape, value: Any) -> str | None:
    expected = {
        "structure": dict,
        "map": dict,
        "list": list,
        "string": str,
        "blob": str,
        "boolean": bool,
        "integer": int,
        "long": int,
        "float": (int, float),
        "double": (int, float),
        "timestamp": (int, float, str),
    }.get(shape.type_name)
    if expected is None:
        return None
    if isinstance(value, bool) and shape.type_name not in ("boolean",):
        return f"{shape.type_name} expected, got a boolean"
    if not isinstance(value, expected):
        return f"{shape.type_name} expected, got {type(value).__name__}"
    enum = shape.enum if shape.type_name == "string" else []
    if enum and value not in enum:
        return f"{value!r} is not one of {shape.name}'s values"
    return None


def mismatches(
    operation: str, shape: Shape | None, body: Any, path: str = "", rename: Callable[[str], str] | None = None
) -> Iterator[Mismatch]:
    """Every way ``body`` differs from ``shape`` (see the module docstring for the kinds).

    ``rename``: None for an API answer (members by wire name); for a Step Functions task output,
    the member name as the output spells it (aws-sdk outputs capitalise the first letter).
    """
    if shape is None or body is None:
        return
    problem = _type_problem(shape, body)
    if problem:
        yield Mismatch(operation, "type", path or "(body)", problem)
        return
    if shape.type_name == "list":
        for item in body:
            yield from mismatches(operation, shape.member, item, f"{path}[]", rename)
    elif shape.type_name == "map":
        for item in body.values():
            yield from mismatches(operation, shape.value, item, f"{path}.*", rename)
    elif shape.type_name == "structure":
        yield from _structure(operation, shape, body, path, rename)


def _structure(
    operation: str, shape: Shape, body: dict[str, Any], path: str, rename: Callable[[str], str] | None
) -> Iterator[Mismatch]:
    members = _members(shape, rename)
    wire_names = {name: wire for wire, (name, _) in members.items()}
    for required in shape.required_members:
        wire = wire_names.get(required)
        if wire is not None and body.get(wire) is None:
            yield Mismatch(operation, "missing", _join(path, wire))
    lowered = {wire.lower(): wire for wire in members}
    for key, value in body.items():
        where = _join(path, key)
        if key not in members:
            hint = lowered.get(key.lower())
            yield Mismatch(operation, "unknown", where, f"AWS spells it {hint}" if hint else "")
        elif value is None:
            if members[key][0] not in shape.required_members:
                yield Mismatch(operation, "null", where)
        else:
            yield from mismatches(operation, members[key][1], value, where, rename)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@dataclass
class Recorder:
    """Clients whose every response is checked against botocore's output shape."""

    found: list[Mismatch] = field(default_factory=list)
    called: set[str] = field(default_factory=set)  # "sagemaker.DescribeTrainingJob"

    def client(self, cp: Any, service: str) -> Any:
        """A new client of the control plane (not the shared one), recorded."""
        client = cp.client(service, config=Config(retries={"max_attempts": 1}))
        client.meta.events.register(
            f"before-parse.{client.meta.service_model.service_id.hyphenize()}", self._on_response
        )
        return client

    def _on_response(self, operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        service = operation_model.service_model
        operation = f"{service.service_name}.{operation_model.name}"
        self.called.add(operation)
        status = response_dict.get("status_code", 200)
        if status >= 500:
            self.found.append(Mismatch(operation, "status", "(call)", f"HTTP {status}"))
            return
        if status >= 300 or operation_model.output_shape is None:
            return  # an error answer is judged by the test that expects it
        if operation_model.has_streaming_output or operation_model.output_shape.serialization.get("payload"):
            return  # the body is the payload (Invoke, GetObject): nothing to walk
        if service.protocol in JSON_PROTOCOLS:
            body = json.loads(response_dict["body"] or b"{}")
            self.found.extend(mismatches(operation, operation_model.output_shape, body))
            return
        parsed = _parse(service.protocol, operation_model, response_dict)
        self.found.extend(
            m for m in mismatches(operation, operation_model.output_shape, parsed) if m.kind == "missing"
        )

    def table(self) -> str:
        """One line per mismatch, grouped by operation."""
        lines = [
            f"{m.operation:55s} {m.kind:8s} {m.path} {m.detail}".rstrip()
            for m in sorted(set(self.found), key=str)
        ]
        return "\n".join(lines) or "(no mismatches)"


def _parse(protocol: str, operation_model: Any, response_dict: dict[str, Any]) -> dict[str, Any]:
    from botocore.parsers import create_parser

    return create_parser(protocol).parse(response_dict, operation_model.output_shape)


@functools.cache
def service_model(service: str) -> Any:
    """botocore's model of ``service`` (loaded once: each load reads and parses a large JSON file)."""
    return botocore.session.get_session().get_service_model(service)


def output_shape(service: str, operation: str) -> Shape | None:
    """botocore's output shape of ``service``'s ``operation`` (its API name, e.g. DescribeTrainingJob)."""
    return service_model(service).operation_model(operation).output_shape


def operation_name(service: str, action: str) -> str:
    """``describeTrainingJob`` or ``describe_training_job`` -> ``DescribeTrainingJob``."""
    model = service_model(service)
    wanted = action.replace("_", "").lower()
    return next(name for name in model.operation_names if name.lower() == wanted)
