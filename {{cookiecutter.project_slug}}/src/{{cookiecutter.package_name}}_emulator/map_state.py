"""The Map state as AWS documents it, where moto's interpreter differs (the runtime half of
``definitions.rewritten``, which re-expresses the fields moto's grammar cannot parse).

- An ``ItemSelector`` given as one JSONata expression (a string, not an object) yields that expression's
  value for each item, with ``$states.context.Map.Item.Index``/``Value`` bound (MAP, JSONATA).
- ``ItemBatcher`` (Distributed Map): each child execution gets ``{"Items": [...], "BatchInput": ...}``
  with at most ``MaxItemsPerBatch`` items and ``MaxInputBytesPerBatch`` bytes; ItemSelector applies
  to each item before batching (BATCHER). Items read by an ``ItemReader`` from S3 are not batched
  offline (the pipeline has none).

Documents:
- MAP: "Map workflow state" https://docs.aws.amazon.com/step-functions/latest/dg/state-map.html
- BATCHER: "ItemBatcher (Map)" https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html
- JSONATA: "Transforming data with JSONata" https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from . import definitions, jsonata
from .patches import MOTO_PINS, Patches

_SFN = "moto.stepfunctions.parser.asl"
_MAP = f"{_SFN}.component.state.exec.state_map"
PATCHES = Patches("map-state", pins=MOTO_PINS)


def install() -> None:
    """Install the Map corrections (through ``patches.install(map_state)``: reversible)."""
    if PATCHES.active:
        return
    PATCHES.check_pins()
    _fix_item_selector_expression()
    _fix_item_batcher()


def uninstall() -> None:
    PATCHES.undo()


def _fix_item_selector_expression() -> None:
    """An ItemSelector that is one expression is that expression's value, not an object."""
    selector = importlib.import_module(f"{_MAP}.item_selector").ItemSelector
    original = selector._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        original(self, env)
        value = env.stack[-1]
        if isinstance(value, dict) and list(value) == [definitions.SELECTOR_KEY]:
            env.stack[-1] = value[definitions.SELECTOR_KEY]

    PATCHES.replace(selector, "_eval_body", _eval_body)


def _fix_item_batcher() -> None:
    state_map = importlib.import_module(f"{_MAP}.state_map").StateMap
    original = state_map._eval_execution

    def _eval_execution(self: Any, env: Any) -> None:
        batcher = definitions.batcher_of(self.comment.comment if self.comment else None)
        if batcher is None:
            return original(self, env)
        component, map_input = self.iteration_component, env.states.get_input()

        def eval_batched(inner_env: Any) -> None:
            eval_input = inner_env.stack[-1]
            if eval_input.input_items is not None:  # None: an ItemReader reads them (not batched)
                items = _selected(inner_env, eval_input.item_selector, eval_input.input_items, map_input)
                eval_input.input_items = _batches(inner_env, self, batcher, items, map_input)
                eval_input.item_selector = None
            type(component).eval(component, inner_env)

        component.eval = eval_batched  # this execution's own component (built afresh per parse)
        try:
            original(self, env)
        finally:
            del component.eval

    PATCHES.replace(state_map, "_eval_execution", _eval_execution)


def _selected(env: Any, selector: Any, items: list[Any], map_input: Any) -> list[Any]:
    """Each item through the ItemSelector, as the iteration would see it (MAP: Map.Item context)."""
    if selector is None:
        return list(items)
    map_data = importlib.import_module(f"{_SFN}.eval.states")
    selected = []
    for index, item in enumerate(items):
        frame = env.open_frame()
        try:
            frame.states.context_object.context_object_data["Map"] = map_data.MapData(
                Item=map_data.ItemData(Index=index, Value=item)
            )
            frame.states.reset(input_value=map_input)
            frame.stack.append(map_input)
            selector.eval(frame)
            selected.append(frame.stack[-1])
        finally:
            env.delete_frame(frame)
    return selected


def _batches(env: Any, state: Any, batcher: dict[str, Any], items: list[Any], map_input: Any) -> list[Any]:
    """BATCHER: consecutive items, each batch within both limits (a lone item larger than the byte
    limit still gets its own batch); BatchInput, when given, goes with every batch."""
    max_items = _limit(env, state, batcher, "MaxItemsPerBatch", map_input)
    max_bytes = _limit(env, state, batcher, "MaxInputBytesPerBatch", map_input)
    extra = (
        {"BatchInput": _batch_input(env, state, batcher["BatchInput"], map_input)}
        if "BatchInput" in batcher
        else {}
    )
    batches: list[dict[str, Any]] = []
    for item in items:
        if batches and _fits(batches[-1], item, max_items, max_bytes):
            batches[-1]["Items"].append(item)
        else:
            batches.append({"Items": [item], **extra})
    return batches


def _fits(batch: dict[str, Any], item: Any, max_items: int | None, max_bytes: int | None) -> bool:
    if max_items is not None and len(batch["Items"]) >= max_items:
        return False
    if max_bytes is None:
        return True
    grown = {**batch, "Items": [*batch["Items"], item]}
    return len(json.dumps(grown, separators=(",", ":")).encode("utf-8")) <= max_bytes


def _limit(env: Any, state: Any, batcher: dict[str, Any], field: str, map_input: Any) -> int | None:
    """A positive integer limit from ``field``, ``field`` as a JSONata expression or ``fieldPath``."""
    if f"{field}Path" in batcher:
        value = _path(batcher[f"{field}Path"], map_input)
    elif field in batcher:
        value = _template(env, state, batcher[field], map_input)
    else:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise jsonata.failure(
            env,
            "States.Runtime" if state._is_language_query_jsonpath() else "States.QueryEvaluationError",
            f"The ItemBatcher field '{field}' must be a positive integer, but was: {json.dumps(value)}",
        )
    return value


def _batch_input(env: Any, state: Any, template: Any, map_input: Any) -> Any:
    if state._is_language_query_jsonpath() and isinstance(template, dict):
        return {
            key[:-2] if key.endswith(".$") else key: _path(value, map_input) if key.endswith(".$") else value
            for key, value in template.items()
        }
    return _template(env, state, template, map_input)


def _template(env: Any, state: Any, node: Any, map_input: Any) -> Any:
    """A JSONata template (its expression strings evaluate) or, in JSONPath states, the value itself."""
    if state._is_language_query_jsonpath():
        return node
    if isinstance(node, str) and node.startswith(definitions.OPEN) and node.endswith(definitions.CLOSE):
        return jsonata.evaluate_in(env, node[2:-2].strip())
    if isinstance(node, dict):
        return {key: _template(env, state, value, map_input) for key, value in node.items()}
    if isinstance(node, list):
        return [_template(env, state, value, map_input) for value in node]
    return node


def _path(path: str, data: Any) -> Any:
    extract_json = importlib.import_module(f"{_SFN}.utils.json_path").extract_json
    return extract_json(path, data)
