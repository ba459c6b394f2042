"""A real JSONata engine for moto's ASL interpreter, and the JSONata semantics moto gets wrong.

moto 5.2.5 parses ``QueryLanguage: JSONata`` states and workflow variables, but its evaluator is a
stub (``moto.stepfunctions.parser.asl.jsonata.jsonata._eval_jsonata`` is None: LocalStack runs the
Java reference implementation in a JVM there). ``install()`` plugs in ``jsonata-python`` (a port of
that reference implementation; the choice is in docs/decisions.md) and corrects, each against the
AWS documentation it cites, what moto does differently. Every correction is tested on the
documentation's own example in tests/emulator/test_asl_semantics_jsonata.py.

Documents relied on:
- JSONATA: "Transforming data with JSONata in Step Functions"
  https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
- VARIABLES: "Passing data between states with variables"
  https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html
- ERRORS: "Handling errors in Step Functions workflows"
  https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
- CHOICE: "Choice workflow state" https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html
"""

from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import importlib
import json
import math
import random
import uuid
from typing import Any

import jsonata as engine
from jsonata.utils import Utils

from .patches import MOTO_PINS, Patches

ENGINE_VERSION = "0.7.1"  # pinned in pyproject.toml, extra "local"
_SFN = "moto.stepfunctions.parser.asl"
# VARIABLES, "Variable limits": one variable, and all variables of one Assign, at most 256 KiB.
MAX_VARIABLE_BYTES = 256 * 1024
MAX_ASSIGN_BYTES = 256 * 1024
HASH_ALGORITHMS = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}

PATCHES = Patches("jsonata", pins={**MOTO_PINS, "jsonata-python": ENGINE_VERSION})


class QueryEvaluationError(Exception):
    """A JSONata expression failed: Step Functions reports ``States.QueryEvaluationError`` (ERRORS)."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


# ---------------------------------------------------------------------------------------------
# The engine: expressions evaluate against bindings, never against text with values pasted in
# ---------------------------------------------------------------------------------------------
def _to_engine(value: Any) -> Any:
    """JSON data as the engine reads it: JSON null is its NULL_VALUE (None means undefined)."""
    if value is None:
        return Utils.NULL_VALUE
    if isinstance(value, dict):
        return {k: _to_engine(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_engine(v) for v in value]
    if isinstance(value, datetime.datetime):
        return _iso(value)
    return value


def _from_engine(value: Any) -> Any:
    if value is Utils.NULL_VALUE:
        return None
    if isinstance(value, dict):
        return {k: _from_engine(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_engine(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # JSON has one number type; 3.0 prints as 3 on AWS too
    return value


def _iso(moment: datetime.datetime) -> str:
    utc = moment.astimezone(datetime.UTC) if moment.tzinfo else moment
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _integer(function: str, value: Any) -> int:
    """JSONATA, "JSONata functions provided by Step Functions": functions that take integers round
    any non-integer number down (so $partition(a, 2.9) chunks by 2 and $random(1.5) is $random(1))."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise QueryEvaluationError(f"{function}: expected a number, got {json.dumps(_from_engine(value))}")
    return math.floor(value)


def _sfn_partition(array: Any, size: Any) -> list:
    """JSONATA: ``$partition(array, chunkSize)``: consecutive chunks, the last one may be shorter."""
    items = list(array) if isinstance(array, list) else [array]
    chunk = _integer("$partition", size)
    if chunk < 1:
        raise QueryEvaluationError("$partition: the chunk size must be a positive integer")
    return [items[i : i + chunk] for i in range(0, len(items), chunk)]


def _sfn_range(first: Any, last: Any, step: Any) -> list:
    """JSONATA: ``$range(start, end, step)``: from start to end inclusive, e.g. $range(0, 10, 2)."""
    start, end, delta = (_integer("$range", value) for value in (first, last, step))
    if not delta:
        raise QueryEvaluationError("$range: the step must not be zero")
    return list(range(start, end + (1 if delta > 0 else -1), delta))


def _sfn_hash(value: Any, algorithm: Any) -> str:
    """JSONATA: ``$hash(value, algorithm)``, hex digest; MD5, SHA-1, SHA-256, SHA-384, SHA-512."""
    if algorithm not in HASH_ALGORITHMS:
        raise QueryEvaluationError(
            f"$hash: algorithm {algorithm!r} is not one of {', '.join(HASH_ALGORITHMS)}"
        )
    text = value if isinstance(value, str) else json.dumps(_from_engine(value), separators=(",", ":"))
    return hashlib.new(HASH_ALGORITHMS[algorithm], text.encode("utf-8")).hexdigest()


def _sfn_random(seed: Any = None) -> float:
    """JSONATA: ``$random([seed])``: in [0, 1); the same seed gives the same number."""
    if seed is None or seed is Utils.NULL_VALUE:
        return random.random()
    return random.Random(_integer("$random", seed)).random()


def _sfn_uuid() -> str:
    """JSONATA: ``$uuid()``: a version 4 UUID."""
    return str(uuid.uuid4())


def _sfn_parse(text: Any) -> Any:
    """JSONATA: ``$parse(jsonString)``: JSON text to data (use it instead of ``$eval``)."""
    try:
        return _to_engine(json.loads(text))
    except (TypeError, json.JSONDecodeError) as error:
        raise QueryEvaluationError(f"$parse: the argument is not a JSON string: {error}") from error


def _sfn_eval(*_: Any) -> Any:
    """JSONATA: ``$eval`` is not available in Step Functions."""
    raise QueryEvaluationError("The function $eval is not supported by Step Functions; use $parse")


# Bound in every evaluation; JLambda is the engine's wrapper for a Python callable.
FUNCTIONS = {
    name: engine.Jsonata.JLambda(function)
    for name, function in {
        "partition": _sfn_partition,
        "range": _sfn_range,
        "hash": _sfn_hash,
        "random": _sfn_random,
        "uuid": _sfn_uuid,
        "parse": _sfn_parse,
        "eval": _sfn_eval,
    }.items()
}


def _short(expression: str, limit: int = 120) -> str:
    return expression if len(expression) <= limit else expression[: limit - 3] + "..."


@functools.lru_cache(maxsize=1024)
def _compile(expression: str) -> Any:
    try:
        compiled = engine.Jsonata(expression)
        compiled.set_output_convert_nulls(False)  # keep JSON null apart from undefined
        return compiled
    except Exception as error:  # the engine raises JException for syntax errors
        raise QueryEvaluationError(f"The JSONata expression '{expression}' is invalid: {error}") from error


def evaluate(expression: str, bindings: dict[str, Any]) -> Any:
    """Evaluate one JSONata expression with ``$name`` bound to ``bindings[name]`` (JSON data).

    Raises QueryEvaluationError on an engine error or an undefined result (JSON cannot hold
    undefined, JSONATA: "Expressions must produce a defined value").
    """
    compiled = _compile(expression)
    # Bindings go in a new frame per evaluation (the compiled expression is cached and shared).
    frame = {**FUNCTIONS, **{name: _to_engine(value) for name, value in bindings.items()}}
    try:
        result = compiled.evaluate(None, frame)
    except QueryEvaluationError:
        raise
    except Exception as error:
        if getattr(error, "error", None) == "D3137":  # $error(message): the message is the cause
            raise QueryEvaluationError(str(error)) from error
        raise QueryEvaluationError(f"{error} (in the JSONata expression '{_short(expression)}')") from error
    if result is None:
        raise QueryEvaluationError(
            f"The JSONata expression '{_short(expression)}' returned nothing (undefined)."
        )
    return _from_engine(result)


# ---------------------------------------------------------------------------------------------
# Plugging the engine into moto
# ---------------------------------------------------------------------------------------------
def failure(env: Any, error: str, cause: str) -> Exception:
    """The interpreter's failure for ``error``, recorded as an EvaluationFailed event as AWS records
    it: naming the state (``state`` is a required member of EvaluationFailedEventDetails) and, in
    the cause, the id of the event that entered it ("... (entered at the event id #2). ...")."""
    failure_event = importlib.import_module(f"{_SFN}.component.common.error_name.failure_event")
    custom = importlib.import_module(f"{_SFN}.component.common.error_name.custom_error_name")
    states = importlib.import_module(f"{_SFN}.component.common.error_name.states_error_name")
    event_detail = importlib.import_module(f"{_SFN}.eval.event.event_detail")
    api = importlib.import_module("moto.stepfunctions.parser.api")
    name = (
        states.StatesErrorName.from_name(error)
        if error.startswith("States.")
        else custom.CustomErrorName(error)
    )
    # Built before the EvaluationFailed event is added: it takes the latest event id as the one that
    # entered the state (moto's own order made every such cause name the next id).
    event = failure_event.FailureEvent(
        env=env,
        error_name=name,
        event_type=api.HistoryEventType.TaskFailed,
        event_details=event_detail.EventDetails(
            taskFailedEventDetails=api.TaskFailedEventDetails(error=error, cause=cause)
        ),
    )
    state = (env.states.context_object.context_object_data.get("State") or {}).get("Name")
    if state:
        decorated = (
            f"An error occurred while executing the state '{state}' "
            f"(entered at the event id #{event.source_event_id}). {cause}"
        )
        details = api.EvaluationFailedEventDetails(error=error, cause=decorated, state=state)
    else:
        details = api.EvaluationFailedEventDetails(error=error, cause=cause)
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=api.HistoryEventType.EvaluationFailed,
        event_details=event_detail.EventDetails(evaluationFailedEventDetails=details),
    )
    return failure_event.FailureEventException(event)


def _variables(env: Any) -> dict[str, Any]:
    store = env.variable_store
    return {**store._outer_scope, **store._inner_scope}


def _states(env: Any) -> dict[str, Any]:
    data = copy.copy(env.states._states_data)
    data["context"] = env.states.context_object.context_object_data
    return data


def evaluate_in(env: Any, expression: str) -> Any:
    """VARIABLES: ``$states`` and every variable in scope, bound by value (no text substitution)."""
    try:
        return evaluate(expression, {**_variables(env), "states": _states(env)})
    except QueryEvaluationError as error:
        raise failure(env, "States.QueryEvaluationError", error.cause) from None


def _install_engine() -> None:
    """Evaluate JSONata expressions with the engine, with variables as bindings.

    moto pastes every variable into the expression text as ``$name:="value";``, without escaping
    string values, so a variable holding a quote or a backslash breaks the expression (JSONATA:
    variables are JSON values). Bindings avoid text altogether.
    """
    jsonata_module = importlib.import_module(f"{_SFN}.jsonata.jsonata")
    string_expression = importlib.import_module(f"{_SFN}.component.common.string.string_expression")

    def eval_text(expression: str) -> Any:  # moto's own callers (composed text, no variables)
        try:
            return evaluate(expression, {})
        except QueryEvaluationError as error:
            raise jsonata_module.JSONataException("States.QueryEvaluationError", error.cause) from None

    PATCHES.replace(jsonata_module, "_eval_jsonata", eval_text)

    def string_jsonata_eval_body(self: Any, env: Any) -> None:
        env.stack.append(evaluate_in(env, self.expression))

    PATCHES.replace(string_expression.StringJSONata, "_eval_body", string_jsonata_eval_body)


# ---------------------------------------------------------------------------------------------
# Corrections
# ---------------------------------------------------------------------------------------------
def _fix_assign_output_order() -> None:
    """Assign and Output of one state both see the variables as they were when the state began.

    VARIABLES, "Evaluation of Assign and Output": Step Functions evaluates both fields with the
    values from before the state; a value assigned in a state is visible from the next state on.
    moto sets variables while it goes, so the state's own Output already sees the new values.
    Here Assign only computes its values; they are stored once the state's output is done.
    """
    assign_module = importlib.import_module(f"{_SFN}.component.common.assign.assign_decl")
    state_module = importlib.import_module(f"{_SFN}.component.state.state")
    choice_module = importlib.import_module(f"{_SFN}.component.state.choice.state_choice")
    catcher_module = importlib.import_module(f"{_SFN}.component.common.catch.catcher_decl")

    def assign_eval_body(self: Any, env: Any) -> None:
        declarations: dict[str, Any] = {}
        for binding in self.declaration_bindings:
            binding.eval(env=env)
            declarations.update(env.stack.pop())
        _check_sizes(env, declarations)
        pending = env.__dict__.setdefault("_pending_assign", {})
        pending.update(declarations)

    def flush(env: Any) -> None:
        for name, value in env.__dict__.pop("_pending_assign", {}).items():
            env.variable_store.set(variable_identifier=name, variable_value=value)

    def flushing(original: Any) -> Any:
        @functools.wraps(original)
        def wrapper(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, env, *args, **kwargs)
            flush(env)
            return result

        return wrapper

    PATCHES.replace(assign_module.AssignDecl, "_eval_body", assign_eval_body)
    for owner, name in (
        (state_module.CommonStateField, "_eval_state_output"),
        (choice_module.StateChoice, "_eval_state_output"),
        (catcher_module.CatcherDecl, "_eval_body"),
    ):
        PATCHES.replace(owner, name, flushing(getattr(owner, name)))


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _check_sizes(env: Any, declarations: dict[str, Any]) -> None:
    """VARIABLES, "Variable limits": 256 KiB per variable and per Assign; exceeding fails the state."""
    for name, value in declarations.items():
        if _size(value) > MAX_VARIABLE_BYTES:
            raise failure(
                env, "States.QueryEvaluationError", f"The variable '{name}' exceeds the 256 KiB size limit."
            )
    if _size(declarations) > MAX_ASSIGN_BYTES:
        raise failure(
            env, "States.QueryEvaluationError", "The variables of one Assign exceed the 256 KiB size limit."
        )


def _fix_choice_no_match() -> None:
    """A Choice evaluates its rules once; no match and no Default is ``States.NoChoiceMatched``.

    CHOICE: the first rule whose Condition is true is taken (its Assign and Output apply); if none
    is true the Default is taken, with the state's own Assign and Output; with no Default the
    execution fails with States.NoChoiceMatched (ERRORS). moto fails with States.Runtime; the JSONPath correction in integrations.py checks by
    evaluating every rule a second time, which for JSONata rules runs their Assign and Output twice
    (the second Condition then reads the first Output as $states.input).
    """
    choice_module = importlib.import_module(f"{_SFN}.component.state.choice.state_choice")

    def choice_eval_state(self: Any, env: Any) -> None:
        for rule in self.choices_decl.rules:
            rule.eval(env)
            if env.stack.pop() is True:
                env.stack.append(rule.next_stmt.name)
                return
        if self.default_state is None:
            raise failure(env, "States.NoChoiceMatched", f"No Choice rule matched in state '{self.name}'")
        env.__dict__["_choice_took_default"] = True
        env.stack.append(self.default_state.state_name)

    def choice_eval_state_output(self: Any, env: Any) -> None:
        # The state's own Assign and Output apply when the Default is taken, which moto infers
        # from the next state's name: a rule whose Next equals the Default got them too.
        next_state_name = env.stack.pop()
        if env.__dict__.pop("_choice_took_default", False):
            if self.assign_decl:
                self.assign_decl.eval(env=env)
            if self.output:
                self.output.eval(env=env)
        if self._is_language_query_jsonpath():
            if self.output_path:
                self.output_path.eval(env=env)
            else:
                env.states.reset(input_value=env.stack.pop())
        env.next_state_name = next_state_name

    PATCHES.replace(choice_module.StateChoice, "_eval_state", choice_eval_state)
    PATCHES.replace(choice_module.StateChoice, "_eval_state_output", choice_eval_state_output)


def _fix_parser_scope_state() -> None:
    """Each definition is parsed with its own query-language scope stack.

    moto keeps that stack in a class attribute of its Preprocessor: a definition refused halfway
    (e.g. by a creation-time check) leaves its scopes on it, and every later CreateStateMachine in
    the process then parses with the wrong QueryLanguage. AWS validates each definition on its own.
    """
    preprocessor = importlib.import_module(f"{_SFN}.parse.preprocessor").Preprocessor
    original = preprocessor.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._query_language_per_scope = []  # one parser per definition (asl_parser.py): its own stack

    PATCHES.replace(preprocessor, "__init__", __init__)


def _fix_string_literals() -> None:
    """String values of the definition are JSON strings: ``\\u00ed``, ``\\"`` and ``\\/`` decode.

    The definition is JSON; every string in it means its decoded value (JSONATA's conversion
    example assigns "María"). moto's parser strips the quotes and keeps the escapes for Assign
    literals and names (``"Mar\\u00eda"`` stays six characters of escape), and decodes the others
    with Python's rules, which differ from JSON's for ``\\/``.
    """
    preprocessor = importlib.import_module(f"{_SFN}.parse.preprocessor")
    lexer = importlib.import_module(f"{_SFN}.antlr.runtime.ASLLexer").ASLLexer
    utils = importlib.import_module(f"{_SFN}.antlt4utils.antlr4utils")

    def decode(text: str) -> str:
        if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return text[1:-1]
        return text

    def inner_string_of(parser_rule_context: Any) -> str | None:
        if utils.is_terminal(parser_rule_context, lexer.NULL):
            return None
        return decode(parser_rule_context.getText())

    def from_string_literal(parser_rule_context: Any) -> str | None:
        return decode(parser_rule_context.getText())

    PATCHES.replace(preprocessor.Preprocessor, "_inner_string_of", staticmethod(inner_string_of))
    PATCHES.replace(preprocessor, "from_string_literal", from_string_literal)
    PATCHES.replace(utils, "from_string_literal", from_string_literal)


def _fix_aws_sdk_casing() -> None:
    """aws-sdk tasks take and give PascalCase member names, whatever the service's own casing.

    "AWS SDK service integrations": Step Functions maps the task's parameter names onto the API
    (``aws-sdk:sfn:listExecutions`` takes ``StateMachineArn``, which Step Functions' own API spells
    ``stateMachineArn``) and returns the response with PascalCase keys (``Executions[].StartDate``).
    https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
    moto's port leaves both steps out (``_normalise_parameters``/``_normalise_response`` are empty),
    so a camelCase service such as Step Functions refuses the call. The mapping uses the botocore
    service model, as LocalStack's interpreter (which moto's is a port of) does.
    """
    aws_sdk = importlib.import_module(
        f"{_SFN}.component.state.exec.state_task.service.state_task_service_aws_sdk"
    ).StateTaskServiceAwsSdk
    botocore_session = importlib.import_module("botocore.session")

    @functools.lru_cache(maxsize=128)
    def operation(service: str, action: str) -> Any:
        model = botocore_session.get_session().get_service_model(service)
        name = next(op for op in model.operation_names if op.lower() == action.replace("_", "").lower())
        return model.operation_model(name)

    def normalise_parameters(
        self: Any, parameters: dict, boto_service_name=None, service_action_name=None
    ) -> None:
        model = operation(
            self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
        )
        if model.input_shape is not None:
            self._to_boto_request(parameters, model.input_shape)

    def normalise_response(
        self: Any, response: Any, boto_service_name=None, service_action_name=None
    ) -> None:
        model = operation(
            self._get_boto_service_name(boto_service_name), self._get_boto_service_action(service_action_name)
        )
        if model.output_shape is not None:
            self._from_boto_response(response, model.output_shape)

    PATCHES.replace(aws_sdk, "_normalise_parameters", normalise_parameters)
    PATCHES.replace(aws_sdk, "_normalise_response", normalise_response)


def _fix_creation_time_syntax_check() -> None:
    """A JSONata expression that does not parse is refused by CreateStateMachine.

    JSONATA: expressions are validated with the definition ("a JSONata expression must be valid"
    is a creation-time InvalidDefinition, like any other schema error); moto only meets them when
    a state runs, so a typo surfaced as a failed execution much later.
    """
    preprocessor = importlib.import_module(f"{_SFN}.parse.preprocessor").Preprocessor
    original = preprocessor._inner_jsonata_expr

    @functools.wraps(original)
    def inner_jsonata_expr(self: Any, ctx: Any) -> str:
        expression = original(self, ctx)
        try:
            _compile(expression)
        except QueryEvaluationError as error:
            raise ValueError(f"Invalid JSONata expression: {error.cause}") from None
        return expression

    PATCHES.replace(preprocessor, "_inner_jsonata_expr", inner_jsonata_expr)


MAX_SECONDS = 99_999_999
# moto class (module, name), the field, the smallest value: Wait "Seconds" takes 0 to 99999999
# ("Wait workflow state"); Task "TimeoutSeconds" and "HeartbeatSeconds" take positive integers
# ("Task workflow state"). In JSONata states the expression must evaluate to such an integer.
SECONDS_FIELDS = (
    ("component.state.wait.wait_function.seconds", "SecondsJSONata", "_get_wait_seconds", "Seconds", 0),
    ("component.common.timeouts.timeout", "TimeoutSecondsJSONata", "_eval_seconds", "TimeoutSeconds", 1),
    (
        "component.common.timeouts.heartbeat",
        "HeartbeatSecondsJSONata",
        "_eval_seconds",
        "HeartbeatSeconds",
        1,
    ),
)


def _jsonata_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    names = {str: "string", int: "number", float: "number", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _fix_seconds_fields() -> None:
    """Seconds, TimeoutSeconds and HeartbeatSeconds that evaluate to a non-integer or out of range
    fail the state with States.QueryEvaluationError (ERRORS); moto casts with int(), so "10" waited
    10 s, -1 did not wait, and 'abc' failed as States.Runtime."""

    def checked(field: str, smallest: int) -> Any:
        def seconds(self: Any, env: Any) -> int:
            self.string_jsonata.eval(env=env)
            value, expression = env.stack.pop(), self.string_jsonata.expression
            where = f"The JSONata expression '{_short(expression)}' specified for the field '{field}'"
            if isinstance(value, bool) or not isinstance(value, int):
                raise failure(
                    env,
                    "States.QueryEvaluationError",
                    f"{where} returned an unexpected result type. Expected 'integer', but was "
                    f"'{_jsonata_type(value)}' for value: {json.dumps(value)}",
                )
            if not smallest <= value <= MAX_SECONDS:
                raise failure(
                    env,
                    "States.QueryEvaluationError",
                    f"{where} returned {value}, outside the allowed range {smallest} to {MAX_SECONDS}",
                )
            return value

        return seconds

    for module, name, method, field, smallest in SECONDS_FIELDS:
        owner = getattr(importlib.import_module(f"{_SFN}.{module}"), name)
        PATCHES.replace(owner, method, checked(field, smallest))


def install() -> None:
    """Install the engine and every correction (through ``patches.install(jsonata)``, after
    ``integrations``: the Choice correction here supersedes its JSONPath one)."""
    if PATCHES.active:
        return
    PATCHES.check_pins()
    _install_engine()
    _fix_choice_no_match()  # before the Assign order fix, which wraps its output step
    _fix_assign_output_order()
    _fix_parser_scope_state()
    _fix_string_literals()
    _fix_aws_sdk_casing()
    _fix_creation_time_syntax_check()
    _fix_seconds_fields()


def uninstall() -> None:
    """Put every moto symbol back as it was."""
    PATCHES.undo()
