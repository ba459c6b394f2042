"""Static checks of the state machine definition against the CloudFormation template.

``python -m <package>.asl_check pipeline/state_machine.asl.json infra/template.yaml`` (``make lint``)
prints one line per problem and exits 1, or prints a summary and exits 0. It catches what Step
Functions would refuse at deploy time or hit only at run time: dangling transitions, unreachable
states, dead ends, ``${Name}`` tokens without a DefinitionSubstitutions entry (and unused entries),
malformed ``.$`` paths or unknown intrinsic functions, and Tasks without Retry or Catch.
https://states-language.net/spec.html
"""

from __future__ import annotations

import json
import re
import sys
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from .definition import placeholders

STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}
TERMINAL_TYPES = {"Succeed", "Fail"}
INTRINSICS = {
    "States.Array",
    "States.ArrayContains",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayPartition",
    "States.ArrayRange",
    "States.ArrayUnique",
    "States.Base64Decode",
    "States.Base64Encode",
    "States.Format",
    "States.Hash",
    "States.JsonMerge",
    "States.JsonToString",
    "States.MathAdd",
    "States.MathRandom",
    "States.StringSplit",
    "States.StringToJson",
    "States.UUID",
}
# Fields whose value is a reference path (null allowed for ResultPath/InputPath/OutputPath).
PATH_FIELDS = (
    "InputPath",
    "OutputPath",
    "ResultPath",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
)
# $ alone, $.field..., $$.Context..., $[..]: what the JSONPath subset of ASL accepts.
PATH = re.compile(r"^\$\$?(\.[A-Za-z_][\w-]*|\[[^\]]+\])*$|^\$$")
INTRINSIC_NAME = re.compile(r"States\.[A-Za-z0-9]+(?=\s*\()")


def _check_path(where: str, value: Any, problems: list[str]) -> None:
    if not isinstance(value, str) or not PATH.match(value):
        problems.append(f"{where}: {value!r} is not a path ($, $.field, $$.Context.field)")


def _check_intrinsic(where: str, value: str, problems: list[str]) -> None:
    for name in INTRINSIC_NAME.findall(value):
        if name not in INTRINSICS:
            problems.append(f"{where}: unknown intrinsic function {name}")
    # Parentheses must balance outside quoted string arguments.
    depth, quoted, escaped = 0, False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
            if depth < 0:
                break
    if depth != 0 or quoted:
        problems.append(f"{where}: unbalanced parentheses or quotes in {value!r}")


def _check_dynamic(where: str, node: Any, problems: list[str]) -> None:
    """Every ``key.$`` in a payload template is a path or an intrinsic function call."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}"
            if key.endswith(".$"):
                if isinstance(value, str) and value.startswith("States."):
                    _check_intrinsic(here, value, problems)
                else:
                    _check_path(here, value, problems)
            else:
                _check_dynamic(here, value, problems)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _check_dynamic(f"{where}[{index}]", item, problems)


def _choice_rules(rule: dict[str, Any], where: str, problems: list[str]) -> None:
    for key, value in rule.items():
        if key == "Variable" or (key.endswith("Path") and key not in PATH_FIELDS):
            _check_path(f"{where}.{key}", value, problems)
        elif key in ("And", "Or"):
            for index, sub in enumerate(value):
                _choice_rules(sub, f"{where}.{key}[{index}]", problems)
        elif key == "Not":
            _choice_rules(value, f"{where}.Not", problems)


def _transitions(state: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, target) pairs of every transition a state can take."""
    targets = []
    if "Next" in state:
        targets.append(("Next", state["Next"]))
    if "Default" in state:
        targets.append(("Default", state["Default"]))
    for index, choice in enumerate(state.get("Choices", [])):
        if "Next" in choice:
            targets.append((f"Choices[{index}].Next", choice["Next"]))
    for index, catch in enumerate(state.get("Catch", [])):
        if "Next" in catch:
            targets.append((f"Catch[{index}].Next", catch["Next"]))
    return targets


def check_graph(machine: dict[str, Any], scope: str = "") -> list[str]:
    """Structure, transitions, reachability, dead ends and paths of one (possibly nested) machine."""
    problems: list[str] = []
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        return [f"{scope}States: missing or empty"]
    start = machine.get("StartAt")
    if start not in states:
        problems.append(f"{scope}StartAt: {start!r} is not a state")

    edges: dict[str, set[str]] = {name: set() for name in states}
    terminal: set[str] = set()
    for name, state in states.items():
        where = f"{scope}{name}"
        kind = state.get("Type")
        if kind not in STATE_TYPES:
            problems.append(f"{where}: unknown Type {kind!r}")
            continue
        for field, target in _transitions(state):
            if target not in states:
                problems.append(f"{where}.{field}: {target!r} is not a state")
            else:
                edges[name].add(target)
        if kind in TERMINAL_TYPES or state.get("End") is True:
            terminal.add(name)
        elif kind == "Choice":
            if not state.get("Choices"):
                problems.append(f"{where}: a Choice needs Choices")
        elif "Next" not in state:
            problems.append(f"{where}: needs Next or End: true")
        if kind == "Task":
            if not state.get("Retry"):
                problems.append(f"{where}: a Task needs Retry (throttling and transient errors)")
            if not any("States.ALL" in catch.get("ErrorEquals", []) for catch in state.get("Catch", [])):
                problems.append(f"{where}: a Task needs a Catch on States.ALL (failure notification)")
        for field in PATH_FIELDS:
            value = state.get(field)
            if field in ("ErrorPath", "CausePath") and isinstance(value, str) and value.startswith("States."):
                _check_intrinsic(f"{where}.{field}", value, problems)  # a Fail state may use intrinsics here
            elif value is not None:
                _check_path(f"{where}.{field}", value, problems)
        for field in ("Parameters", "ResultSelector", "ItemSelector"):
            if field in state:
                _check_dynamic(f"{where}.{field}", state[field], problems)
        for index, rule in enumerate(state.get("Choices", [])):
            _choice_rules(rule, f"{where}.Choices[{index}]", problems)
        for index, branch in enumerate(state.get("Branches", [])):
            problems += check_graph(branch, f"{where}.Branches[{index}].")
        for field in ("Iterator", "ItemProcessor"):
            if field in state:
                problems += check_graph(state[field], f"{where}.{field}.")

    # Reachable from StartAt (forward search)...
    seen, queue = set(), deque([start] if start in states else [])
    while queue:
        name = queue.popleft()
        if name not in seen:
            seen.add(name)
            queue.extend(edges[name])
    for name in states:
        if name not in seen:
            problems.append(f"{scope}{name}: unreachable from StartAt")
    # ...and able to reach an end (backward search from the terminal states).
    reverse: dict[str, set[str]] = {name: set() for name in states}
    for name, targets in edges.items():
        for target in targets:
            reverse[target].add(name)
    ends, queue = set(), deque(terminal)
    while queue:
        name = queue.popleft()
        if name not in ends:
            ends.add(name)
            queue.extend(reverse[name])
    for name in states:
        if name not in ends:
            problems.append(f"{scope}{name}: no terminal state (Succeed, Fail, End) reachable from here")
    return problems


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as plain data."""


_CfnLoader.add_multi_constructor(
    "!",
    lambda loader, tag, node: {
        tag: (
            loader.construct_scalar(node)
            if isinstance(node, yaml.ScalarNode)
            else loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)
        )
    },
)


def definition_substitutions(template_text: str) -> dict[str, Any]:
    """The DefinitionSubstitutions of the template's state machine resource(s)."""
    template = yaml.load(template_text, Loader=_CfnLoader)
    found: dict[str, Any] = {}
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") == "AWS::StepFunctions::StateMachine":
            found.update(resource.get("Properties", {}).get("DefinitionSubstitutions") or {})
    return found


def check_substitutions(asl_text: str, substitutions: set[str]) -> list[str]:
    used = placeholders(asl_text)
    problems = [
        "${" + name + "}: not defined in DefinitionSubstitutions" for name in sorted(used - substitutions)
    ]
    problems += [
        f"DefinitionSubstitutions.{name}: not used by the definition" for name in sorted(substitutions - used)
    ]
    return problems


def check(asl_text: str, template_text: str | None = None) -> list[str]:
    """Every problem found; an empty list means the definition passes."""
    try:
        machine = json.loads(asl_text)
    except json.JSONDecodeError as error:
        return [f"not valid JSON: {error}"]
    if not isinstance(machine, dict):
        return ["the definition must be a JSON object"]
    problems = check_graph(machine)
    if template_text is not None:
        problems += check_substitutions(asl_text, set(definition_substitutions(template_text)))
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m <package>.asl_check STATE_MACHINE.asl.json [TEMPLATE.yaml]", file=sys.stderr)
        return 2
    asl_path = Path(args[0])
    template_text = Path(args[1]).read_text() if len(args) == 2 else None
    problems = check(asl_path.read_text(), template_text)
    for problem in problems:
        print(f"{asl_path}: {problem}")
    if problems:
        return 1
    states = json.loads(asl_path.read_text())["States"]
    print(f"{asl_path}: OK ({len(states)} states)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
