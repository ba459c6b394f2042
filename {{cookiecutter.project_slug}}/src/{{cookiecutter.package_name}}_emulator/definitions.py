"""What the emulator does to a state machine definition before moto's parser sees it.

Two things, both on the definition's JSON, never on moto's objects:

- ``problems(definition)``: rules Step Functions applies at CreateStateMachine that moto's parser
  lacks (partial variable assignment, $states.result outside a Task/Map/Parallel's Output and
  Assign, Retry/Catch on other states, ItemBatcher outside a Distributed Map). Each is reported as AWS words it, ``SCHEMA_VALIDATION_FAILED: ... at /States/<name>/<field>``,
  and ``integrations`` answers InvalidDefinition with them.
- ``rewritten(definition)``: fields AWS accepts and moto's grammar cannot parse, re-expressed in
  fields it can (the runtime side is in ``map_state``): a Map state's ``ItemBatcher`` travels in
  the state's ``Comment``; an ``ItemSelector`` that is one JSONata expression is wrapped in an
  object of one reserved key; a JSONata Map state without ``Items`` gets the expression ``$states.input``.

Documents:
- VARIABLES: "Passing data between states with variables"
  https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html
- JSONATA: "Transforming data with JSONata in Step Functions"
  https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
- MAP: "Map workflow state" https://docs.aws.amazon.com/step-functions/latest/dg/state-map.html
- BATCHER: "ItemBatcher (Map)" https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

BATCHER_COMMENT = "emulator:ItemBatcher:"  # the Comment prefix that carries an ItemBatcher
SELECTOR_KEY = "emulator:ItemSelector"  # the one key wrapping an ItemSelector expression
MAX_VARIABLE_NAME = 80  # VARIABLES, "Variable names"
# JSONATA, "Reserved variable : $states": $states.result exists in the Output and Assign of the
# states that have a result (Task, Map, Parallel).
RESULT_STATES = {"Task", "Map", "Parallel"}
OPEN, CLOSE = "{" + "%", "%" + "}"  # JSONata delimiters, spelt so Jinja leaves this file alone
_STATES_RESULT = re.compile(r"\$states\.result\b")
_QUOTED = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"")


class InvalidDefinitionText(ValueError):
    """The definition is not JSON: moto's parser reports that itself."""


def _states(machine: dict[str, Any], language: str, where: str) -> Iterator[tuple[str, dict, str]]:
    """(path, state, query language) of every state, nested ones (Parallel, Map) included."""
    language = machine.get("QueryLanguage", language)
    for name, state in (machine.get("States") or {}).items():
        if not isinstance(state, dict):
            continue
        path, own = f"{where}/States/{name}", state.get("QueryLanguage", language)
        yield path, state, own
        for index, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                yield from _states(branch, own, f"{path}/Branches[{index}]")
        for field in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(field), dict):
                yield from _states(state[field], own, f"{path}/{field}")


def _load(definition: str) -> dict[str, Any]:
    try:
        machine = json.loads(definition)
    except json.JSONDecodeError as error:
        raise InvalidDefinitionText(str(error)) from None
    if not isinstance(machine, dict):
        raise InvalidDefinitionText("the definition is not a JSON object")
    return machine


# -- creation-time rules ---------------------------------------------------------------------------
def problems(definition: str) -> list[str]:
    """AWS's reasons to refuse ``definition`` that moto does not check (empty when none)."""
    try:
        machine = _load(definition)
    except InvalidDefinitionText:
        return []
    found: list[str] = []
    for path, state, language in _states(machine, "JSONPath", ""):
        for where, assign in _assigns(path, state):
            found += _assign_problems(where, assign, language)
        if language == "JSONata":
            found += _result_problems(path, state)
        found += _batcher_problems(path, state) + _error_handling_problems(path, state)
    return found


def _assigns(path: str, state: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    if "Assign" in state:
        yield f"{path}/Assign", state["Assign"]
    for index, rule in enumerate(state.get("Choices") or []):
        if isinstance(rule, dict) and "Assign" in rule:
            yield f"{path}/Choices[{index}]/Assign", rule["Assign"]
    for index, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict) and "Assign" in catcher:
            yield f"{path}/Catch[{index}]/Assign", catcher["Assign"]


def _assign_problems(where: str, assign: Any, language: str) -> list[str]:
    """VARIABLES: Assign names whole variables. A name with a dot (``"a.b"``) would assign part
    of one, which Step Functions refuses; names are identifiers of at most 80 characters."""
    if not isinstance(assign, dict):
        return []
    found = []
    for key in assign:
        name = key[:-2] if language == "JSONPath" and key.endswith(".$") else key
        if not name.isidentifier() or len(name) > MAX_VARIABLE_NAME:
            found.append(
                f"SCHEMA_VALIDATION_FAILED: The variable name '{name}' is invalid: variables are assigned "
                f"whole, by identifiers of at most {MAX_VARIABLE_NAME} characters (no '.' or path) at {where}"
            )
    return found


def _expressions(node: Any) -> Iterator[str]:
    if isinstance(node, str) and node.startswith(OPEN) and node.endswith(CLOSE):
        yield node[2:-2]
    elif isinstance(node, dict):
        for value in node.values():
            yield from _expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _expressions(value)


def _reads_result(node: Any) -> bool:
    return any(_STATES_RESULT.search(_QUOTED.sub("''", text)) for text in _expressions(node))


def _result_problems(path: str, state: dict[str, Any]) -> list[str]:
    """JSONATA: ``$states.result`` only in the Output and Assign of a Task, Map or Parallel state
    (and their Catch blocks, which this check leaves alone); anywhere else the definition is invalid."""
    allowed = {"Output", "Assign"} if state.get("Type") in RESULT_STATES else set()
    skipped = {"Catch", "Branches", "ItemProcessor", "Iterator"}  # nested states are checked on their own
    return [
        f"SCHEMA_VALIDATION_FAILED: The JSONata expression uses $states.result, which is only available "
        f"in the Output and Assign of Task, Map and Parallel states at {path}/{field}"
        for field, value in state.items()
        if field not in allowed | skipped and _reads_result(value)
    ]


def _error_handling_problems(path: str, state: dict[str, Any]) -> list[str]:
    """Amazon States Language: Retry and Catch belong to Task, Parallel and Map states only
    ("Handling errors in Step Functions workflows")."""
    return [
        f"SCHEMA_VALIDATION_FAILED: Field '{field}' is not supported by state type '{state.get('Type')}' at {path}"
        for field in ("Retry", "Catch")
        if field in state and state.get("Type") not in RESULT_STATES
    ]


def _batcher_problems(path: str, state: dict[str, Any]) -> list[str]:
    """BATCHER: ItemBatcher belongs to a Distributed Map and needs a batch size or byte limit."""
    batcher = state.get("ItemBatcher")
    if batcher is None:
        return []
    processor = state.get("ItemProcessor") or {}
    mode = (processor.get("ProcessorConfig") or {}).get("Mode", "INLINE")
    if mode != "DISTRIBUTED":
        return [f"SCHEMA_VALIDATION_FAILED: ItemBatcher is only supported in a Distributed Map at {path}"]
    limits = {
        "MaxItemsPerBatch",
        "MaxItemsPerBatchPath",
        "MaxInputBytesPerBatch",
        "MaxInputBytesPerBatchPath",
    }
    if not isinstance(batcher, dict) or not limits & set(batcher):
        return [
            "SCHEMA_VALIDATION_FAILED: ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch "
            f"at {path}/ItemBatcher"
        ]
    return []


# -- fields moto's grammar lacks -------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def rewritten(definition: str) -> str:
    """``definition`` with ItemBatcher, expression ItemSelectors and implicit JSONata Items
    re-expressed for moto's parser; the text itself when there is nothing to rewrite."""
    try:
        machine = _load(definition)
    except InvalidDefinitionText:
        return definition
    changed = False
    for _, state, language in _states(machine, "JSONPath", ""):
        if state.get("Type") != "Map":
            continue
        if "ItemBatcher" in state:
            batcher = state.pop("ItemBatcher")
            note = {"ItemBatcher": batcher, "Comment": state.get("Comment")}
            state["Comment"] = BATCHER_COMMENT + json.dumps(note, separators=(",", ":"))
            changed = True
        if language == "JSONata" and isinstance(state.get("ItemSelector"), str):
            state["ItemSelector"] = {SELECTOR_KEY: state["ItemSelector"]}
            changed = True
        if language == "JSONata" and "Items" not in state and "ItemReader" not in state:
            state["Items"] = (
                f"{OPEN} $states.input {CLOSE}"  # MAP: without Items, the state input is the array
            )
            changed = True
    return json.dumps(machine) if changed else definition


def batcher_of(comment: str | None) -> dict[str, Any] | None:
    """The ItemBatcher ``rewritten`` put in a Map state's Comment, None if there is none."""
    if not comment or not comment.startswith(BATCHER_COMMENT):
        return None
    return json.loads(comment[len(BATCHER_COMMENT) :])["ItemBatcher"]
