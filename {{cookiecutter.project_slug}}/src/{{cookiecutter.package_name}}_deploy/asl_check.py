"""Static checks of the state machine definition against the CloudFormation template.

``python -m <package>_deploy.asl_check pipeline/state_machine.asl.json infra/template.yaml`` (``make lint``)
prints one line per problem and exits 1, or prints a summary and exits 0. It catches what Step
Functions would refuse at deploy time or hit only at run time: dangling transitions, unreachable
states, dead ends, ``${Name}`` tokens without a DefinitionSubstitutions entry (and unused entries),
malformed ``.$`` paths or unknown intrinsic functions, and Tasks without Retry or Catch.
In JSONata states it also checks the workflow variables: every ``$name`` an expression reads must
be assigned on every path from StartAt to that state (Assign values are visible from the next
state on), JSONPath-only fields are refused, ``$eval`` is refused, and, when jsonata-python is
installed (the ``local`` extra), every expression must parse.
https://states-language.net/spec.html
https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html
"""

from __future__ import annotations

import json
import re
import sys
from collections import deque
from pathlib import Path
from typing import Any

from . import cfn
from .definition import MODEL_TOKENS, PLACEHOLDER, placeholders

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


# Fields a JSONata state may not have ("Transforming data with JSONata": five JSONPath fields
# become Arguments and Output).
JSONPATH_ONLY = ("InputPath", "Parameters", "ResultSelector", "ResultPath", "OutputPath", "ItemsPath")
# Names an expression may read without an Assign: $states, JSONata's own functions and the ones
# Step Functions adds (https://docs.jsonata.org/overview.html and the Step Functions guide).
JSONATA_FUNCTIONS = set(
    [
        "sum",
        "count",
        "max",
        "min",
        "average",
        "string",
        "substring",
        "substringBefore",
        "substringAfter",
        "lowercase",
        "uppercase",
        "length",
        "trim",
        "pad",
        "contains",
        "split",
        "join",
        "match",
        "replace",
        "eval",
        "base64encode",
        "base64decode",
        "encodeUrlComponent",
        "encodeUrl",
        "decodeUrlComponent",
        "decodeUrl",
        "formatNumber",
        "formatBase",
        "formatInteger",
        "parseInteger",
        "number",
        "abs",
        "floor",
        "ceil",
        "power",
        "sqrt",
        "round",
        "random",
        "boolean",
        "not",
        "exists",
        "append",
        "sort",
        "reverse",
        "shuffle",
        "distinct",
        "zip",
        "keys",
        "lookup",
        "spread",
        "merge",
        "sift",
        "each",
        "error",
        "assert",
        "type",
        "map",
        "filter",
        "single",
        "reduce",
        "now",
        "millis",
        "fromMillis",
        "toMillis",
        "clone",
        "partition",
        "range",
        "hash",
        "uuid",
        "parse",
    ]
)
RESERVED_VARIABLES = {"states"}
_STRING_OR_REGEX = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|/(?:\\.|[^/\\\n])+/[a-z]*")
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_LOCAL_BINDING = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*:=")
_PARAMETERS = re.compile(r"function\s*\(([^)]*)\)")


# A JSONata field value: the expression between these delimiters (spelt apart: this file is Jinja).
OPEN, CLOSE = "{" + "%", "%" + "}"


def _is_jsonata(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(OPEN) and value.endswith(CLOSE)


def _expressions(node: Any, where: str) -> list[tuple[str, str]]:
    """(where, expression) of every JSONata string in a JSON value."""
    if _is_jsonata(node):
        return [(where, node[2:-2].strip())]
    if isinstance(node, dict):
        return [found for key, value in node.items() for found in _expressions(value, f"{where}.{key}")]
    if isinstance(node, list):
        return [
            found for index, value in enumerate(node) for found in _expressions(value, f"{where}[{index}]")
        ]
    return []


def variables_read(expression: str) -> set[str]:
    """Workflow variables an expression reads: ``$name`` outside string and regex literals, minus
    names it binds itself (``$x := ...``, function parameters) and the built-in functions."""
    code = _STRING_OR_REGEX.sub("''", PLACEHOLDER.sub("0", expression))
    local = set(_LOCAL_BINDING.findall(code))
    for parameters in _PARAMETERS.findall(code):
        local.update(_VARIABLE.findall(parameters))
    return set(_VARIABLE.findall(code)) - local - JSONATA_FUNCTIONS - RESERVED_VARIABLES


def _compile_problem(expression: str) -> str | None:
    """The engine's syntax error for an expression, or None (also None without the engine)."""
    try:
        import jsonata  # the local extra's jsonata-python
    except ImportError:
        return None
    try:
        jsonata.Jsonata(PLACEHOLDER.sub("0", expression))
    except Exception as error:  # JException: the engine's syntax errors
        return str(error)
    return None


def _assign_edges(state: dict[str, Any]) -> list[tuple[str, set[str]]]:
    """(target, variables assigned on the way) for every transition of a JSONata state.

    Next and Default carry the state's own Assign; a Choice rule its rule's Assign; a Catch its
    catcher's Assign only (the state failed, its own Assign did not apply).
    """
    own = set(state.get("Assign") or {})
    edges = []
    if "Next" in state:
        edges.append((state["Next"], own))
    if "Default" in state:
        edges.append((state["Default"], own))
    for rule in state.get("Choices", []):
        if "Next" in rule:
            edges.append((rule["Next"], set(rule.get("Assign") or {})))
    for catch in state.get("Catch", []):
        if "Next" in catch:
            edges.append((catch["Next"], set(catch.get("Assign") or {})))
    return edges


def check_variables(
    machine: dict[str, Any], scope: str = "", outer: frozenset[str] = frozenset()
) -> list[str]:
    """Every variable a JSONata expression reads is assigned on every path from StartAt to it.

    A must-analysis over the graph: the variables definitely assigned on entry to a state are
    the intersection, over its incoming transitions, of what the source had plus what that
    transition assigns. ``outer`` holds the enclosing scope's (Parallel and Map branches).
    """
    states = machine.get("States") or {}
    start = machine.get("StartAt")
    universe = set(outer)
    for state in states.values():
        for _, assigned in _assign_edges(state):
            universe |= assigned
    entry: dict[str, set[str]] = {name: set(universe) for name in states}
    if start in entry:
        entry[start] = set(outer)
    changed = True
    while changed:
        changed = False
        incoming: dict[str, set[str] | None] = {name: None for name in states}
        if start in incoming:
            incoming[start] = set(outer)
        for name, state in states.items():
            for target, assigned in _assign_edges(state):
                if target in incoming:
                    arriving = entry[name] | assigned
                    current = incoming[target]
                    incoming[target] = arriving if current is None else current & arriving
        for name in states:
            new = incoming[name] if incoming[name] is not None else set(universe)
            if new != entry[name]:
                entry[name], changed = new, True
    problems = []
    for name, state in states.items():
        for where, expression in _expressions(state, f"{scope}{name}"):
            for variable in sorted(variables_read(expression) - entry[name]):
                if variable in universe:
                    problems.append(
                        f"{where}: ${variable} is not assigned on every path from StartAt to here"
                    )
                else:
                    problems.append(f"{where}: ${variable} is never assigned (no Assign sets it)")
        for index, branch in enumerate(state.get("Branches", [])):
            problems += check_variables(branch, f"{scope}{name}.Branches[{index}].", frozenset(entry[name]))
        for field in ("Iterator", "ItemProcessor"):
            if field in state:
                problems += check_variables(state[field], f"{scope}{name}.{field}.", frozenset(entry[name]))
    return problems


# Workflow variable names: a letter or underscore, then letters, digits, underscores; at most 80
# characters; "states" is reserved ("Passing data between states with variables").
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,79}$")


def _assigns(state: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"{where}.Assign", state.get("Assign") or {})]
    found += [
        (f"{where}.Choices[{i}].Assign", r.get("Assign") or {})
        for i, r in enumerate(state.get("Choices", []))
    ]
    found += [
        (f"{where}.Catch[{i}].Assign", c.get("Assign") or {}) for i, c in enumerate(state.get("Catch", []))
    ]
    return found


def _check_jsonata_state(where: str, state: dict[str, Any], problems: list[str]) -> None:
    for place, assign in _assigns(state, where):
        for name in assign:
            if not VARIABLE_NAME.match(name) or name in RESERVED_VARIABLES:
                problems.append(
                    f"{place}.{name}: not a variable name (letter or _, then letters, digits, _; 80 at most; not states)"
                )
    for field in JSONPATH_ONLY:
        if field in state:
            problems.append(
                f"{where}.{field}: not allowed in a JSONata state (use Arguments, Output, Assign)"
            )
    for place, expression in _expressions(state, where):
        if re.search(r"\$eval\s*\(", _STRING_OR_REGEX.sub("''", expression)):
            problems.append(f"{place}: $eval is not available in Step Functions (use $parse)")
        error = _compile_problem(expression)
        if error:
            problems.append(f"{place}: JSONata syntax error: {error}")
    for key in state.get("Arguments") or {}:
        if isinstance(key, str) and key.endswith(".$"):
            problems.append(f"{where}.Arguments.{key}: JSONata states take no .$ keys")


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


def check_graph(machine: dict[str, Any], scope: str = "", language: str = "JSONPath") -> list[str]:
    """Structure, transitions, reachability, dead ends and paths of one (possibly nested) machine."""
    problems: list[str] = []
    language = machine.get("QueryLanguage", language)
    if language not in ("JSONPath", "JSONata"):
        problems.append(f"{scope}QueryLanguage: {language!r} is not JSONPath or JSONata")
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
        state_language = state.get("QueryLanguage", language)
        if state_language == "JSONata":
            _check_jsonata_state(where, state, problems)
        for field in PATH_FIELDS if state_language == "JSONPath" else ():
            value = state.get(field)
            if field in ("ErrorPath", "CausePath") and isinstance(value, str) and value.startswith("States."):
                _check_intrinsic(f"{where}.{field}", value, problems)  # a Fail state may use intrinsics here
            elif value is not None:
                _check_path(f"{where}.{field}", value, problems)
        for field in ("Parameters", "ResultSelector", "ItemSelector") if state_language == "JSONPath" else ():
            if field in state:
                _check_dynamic(f"{where}.{field}", state[field], problems)
        for index, rule in enumerate(state.get("Choices", []) if state_language == "JSONPath" else ()):
            _choice_rules(rule, f"{where}.Choices[{index}]", problems)
        for index, rule in enumerate(state.get("Choices", []) if state_language == "JSONata" else ()):
            if not _is_jsonata(rule.get("Condition")):
                problems.append(f"{where}.Choices[{index}]: a JSONata rule needs a Condition expression")
        for index, branch in enumerate(state.get("Branches", [])):
            problems += check_graph(branch, f"{where}.Branches[{index}].", state_language)
        for field in ("Iterator", "ItemProcessor"):
            if field in state:
                problems += check_graph(state[field], f"{where}.{field}.", state_language)

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


def definition_substitutions(template_text: str) -> dict[str, Any]:
    """The DefinitionSubstitutions of the template's state machine resource(s)."""
    template = cfn.loads(template_text)  # the one CloudFormation loader
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
    if isinstance(machine.get("States"), dict):
        problems += check_variables(machine)
    if template_text is not None:
        # The model's tokens are filled before upload (definition.render_model_tokens), the rest by
        # CloudFormation.
        problems += check_substitutions(
            asl_text,
            set(definition_substitutions(template_text)) | set(MODEL_TOKENS) & placeholders(asl_text),
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print(
            "usage: python -m <package>_deploy.asl_check STATE_MACHINE.asl.json [TEMPLATE.yaml]",
            file=sys.stderr,
        )
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
