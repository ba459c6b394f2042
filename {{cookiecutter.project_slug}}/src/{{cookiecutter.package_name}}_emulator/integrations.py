"""Hooks into moto's ASL interpreter so the real state machine runs offline as it does on AWS.

Everything moto-private lives here, in one module, behind ``install()``:

1. ``arn:aws:states:::sagemaker:<action>[.sync]``: moto refuses the SageMaker optimised
   integration. ``SageMakerIntegration`` calls the SageMaker API of the moto server (so the job,
   model and endpoint state stays in moto, where the data plane runs them) and, for ``.sync``,
   polls ``Describe*`` until the job is terminal.
2. Lambda tasks: moto runs Lambda code in Docker images pulled from a registry. ``_invoke_lambda``
   is replaced by ``lambda_runner.run_zip``: the deployed zip, in a subprocess, boto3 on moto.
3. Corrections where moto's interpreter deviates from the AWS semantics the template relies on;
   each one cites the AWS document it restores and is tested in tests/emulator/test_asl_semantics_jsonpath.py
   (documented examples) or tests/emulator/test_integrations.py.
4. Waiting and parsing that cost seconds offline and change nothing an execution shows: the ANTLR
   parse of a definition is kept (moto re-parses the same text at every StartExecution), and a
   ``.sync`` task ends as soon as the data plane finishes its job (``jobs.wait_for_change``)
   instead of at moto's next 0.5 s check.

moto is pinned (==5.2.5): every private name is looked up through ``patches.private`` so a moto
upgrade fails here with a message naming the missing symbol, not deep inside an execution, and every
change goes through ``PATCHES`` (``<package>_emulator/patches.py``), so ``uninstall()`` restores moto exactly.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from . import definitions, jobs, lambda_runner
from .patches import MOTO_PINS, MotoInternalsChanged, Patches, private

LOG = logging.getLogger(__name__)
MOTO_VERSION = MOTO_PINS["moto"]
_SFN = "moto.stepfunctions.parser.asl"
_STATE_TASK = f"{_SFN}.component.state.exec.state_task"
PATCHES = Patches("integrations", pins=MOTO_PINS)


def install() -> None:
    """Install every hook (through ``patches.install(integrations)``: once per process, reversible)."""
    if PATCHES.active:
        return
    PATCHES.check_pins()
    for hook in _HOOKS.values():
        hook()


def uninstall() -> None:
    """Put every moto symbol back as it was."""
    PATCHES.undo()


def moto_endpoint_url() -> str:
    """The moto server as processes on this host reach it (moto's own clients use the same)."""
    port = private("moto.settings", "moto_server_port")()
    return f"http://127.0.0.1:{port}"


def _json_safe(value: Any) -> Any:
    """Describe* responses as Step Functions returns them: timestamps as epoch milliseconds."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# 1. SageMaker optimised integration
# ---------------------------------------------------------------------------------------------
# The optimised SageMaker APIs and which of them support "Run a Job (.sync)":
# https://docs.aws.amazon.com/step-functions/latest/dg/connect-sagemaker.html
# action -> (describe call, name parameter, status field) for the .sync ones, None otherwise.
SAGEMAKER_ACTIONS: dict[str, tuple[str, str, str] | None] = {
    "createEndpoint": None,
    "createEndpointConfig": None,
    "createModel": None,
    "updateEndpoint": None,
    "createTrainingJob": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "createProcessingJob": ("describe_processing_job", "ProcessingJobName", "ProcessingJobStatus"),
    "createTransformJob": ("describe_transform_job", "TransformJobName", "TransformJobStatus"),
    "createHyperParameterTuningJob": (
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
    ),
}
_JOB_SUCCEEDED = "Completed"
# Seconds: a .sync resolver describes the job when the data plane reports a change, at the latest
# every SYNC_POLL, and hands back to moto's loop (which checks for StopExecution) after SYNC_WAIT;
# moto's own pause between resolver calls becomes SYNC_CHECK (0.5 s in moto).
SYNC_POLL, SYNC_WAIT, SYNC_CHECK = 0.5, 2.0, 0.02
_JOB_FAILED = {"Failed", "Stopped"}


def _sagemaker_integration_class() -> type:
    callback_base = private(f"{_STATE_TASK}.service.state_task_service_callback", "StateTaskServiceCallback")
    resource_condition = private(f"{_STATE_TASK}.service.resource", "ResourceCondition")
    boto_client_for = private(f"{_SFN}.utils.boto_client", "boto_client_for")
    failure_event = private(f"{_SFN}.component.common.error_name.failure_event", "FailureEvent")
    failure_exception = private(f"{_SFN}.component.common.error_name.failure_event", "FailureEventException")
    custom_error = private(f"{_SFN}.component.common.error_name.custom_error_name", "CustomErrorName")
    states_error = private(f"{_SFN}.component.common.error_name.states_error_name", "StatesErrorName")
    states_error_type = private(
        f"{_SFN}.component.common.error_name.states_error_name_type", "StatesErrorNameType"
    )
    event_details = private(f"{_SFN}.eval.event.event_detail", "EventDetails")
    api = importlib.import_module("moto.stepfunctions.parser.api")
    client_error = importlib.import_module("botocore.exceptions").ClientError

    class SageMakerIntegration(callback_base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            # AWS has no .waitForTaskToken for SageMaker (refused below), but moto's .sync path
            # dereferences the task-token endpoint, which only exists when the pattern is listed.
            patterns = {resource_condition.Sync, resource_condition.WaitForTaskToken}
            super().__init__(supported_integration_patterns=patterns)

        def _get_supported_parameters(self) -> set[str] | None:
            # None makes moto refuse the definition, as AWS refuses an unknown action.
            return set() if self.resource.api_action in SAGEMAKER_ACTIONS else None

        def _validate_service_integration_is_supported(self) -> None:
            if self._get_supported_parameters() is None:
                raise ValueError(
                    f"The resource provided {self.resource.resource_arn} not recognized: "
                    f"optimised SageMaker actions are {sorted(SAGEMAKER_ACTIONS)}"
                )
            condition = self.resource.condition
            if condition and (
                condition != resource_condition.Sync or not SAGEMAKER_ACTIONS[self.resource.api_action]
            ):
                raise ValueError(
                    f"{self.resource.resource_arn}: .{condition} is not supported for this action"
                )

        def _client(self, region: str, credentials: Any) -> Any:
            return boto_client_for(region=region, service="sagemaker", state_credentials=credentials)

        def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
            client = self._client(resource_runtime_part.region, state_credentials)
            response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
            env.stack.append(_json_safe(response))

        def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials):
            env.stack.pop()  # the Create* response; .sync returns the final Describe* instead
            describe, name_field, status_field = SAGEMAKER_ACTIONS[self.resource.api_action]
            client = self._client(resource_runtime_part.region, state_credentials)
            name = normalised_parameters[name_field]

            def resolve() -> dict | None:
                # Woken by the data plane when a job changes (jobs.wait_for_change), so the task
                # ends within milliseconds of its job, which offline jobs of 1-3 s notice; the
                # status always comes from Describe*, as on AWS.
                deadline = time.monotonic() + SYNC_WAIT
                while True:
                    seen = jobs.changes()
                    described = _json_safe(getattr(client, describe)(**{name_field: name}))
                    if (
                        described.get(status_field) in {_JOB_SUCCEEDED, *_JOB_FAILED}
                        or time.monotonic() > deadline
                        or not env.is_running()
                    ):
                        break
                    jobs.wait_for_change(seen, SYNC_POLL)
                status = described.get(status_field)
                if status == _JOB_SUCCEEDED:
                    return described
                if status in _JOB_FAILED:
                    # A failed or stopped job fails the task with States.TaskFailed and the full
                    # Describe* output as Cause (what AWS reports for .sync jobs), so a Catch can
                    # read FailureReason with States.StringToJson($.Cause).
                    error = states_error_type.StatesTaskFailed.to_name()
                    raise failure_exception(
                        failure_event(
                            env=env,
                            error_name=states_error(typ=states_error_type.StatesTaskFailed),
                            event_type=api.HistoryEventType.TaskFailed,
                            event_details=event_details(
                                taskFailedEventDetails=api.TaskFailedEventDetails(
                                    resource=self._get_sfn_resource(),
                                    resourceType=self._get_sfn_resource_type(),
                                    error=error,
                                    cause=json.dumps(described, separators=(",", ":")),
                                )
                            ),
                        )
                    )
                return None  # InProgress / Stopping: poll again

            return resolve

        def _from_error(self, env, ex):
            # Every SageMaker API error of the optimised integration surfaces as
            # SageMaker.AmazonSageMakerException with the service message as Cause (what AWS
            # shows; e.g. aws-step-functions-data-science-sdk-python issue 191 for throttling).
            if isinstance(ex, client_error):
                error = "SageMaker.AmazonSageMakerException"
                metadata = ex.response.get("ResponseMetadata", {})
                cause = (
                    f"{ex.response['Error'].get('Message', '')} (Service: AmazonSageMaker; "
                    f"Status Code: {metadata.get('HTTPStatusCode')}; "
                    f"Error Code: {ex.response['Error'].get('Code')}; "
                    f"Request ID: {metadata.get('RequestId')}; Proxy: null)"
                )
                return failure_event(
                    env=env,
                    error_name=custom_error(error_name=error),
                    event_type=api.HistoryEventType.TaskFailed,
                    event_details=event_details(
                        taskFailedEventDetails=api.TaskFailedEventDetails(
                            error=error,
                            cause=cause,
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    ),
                )
            return super()._from_error(env=env, ex=ex)

    return SageMakerIntegration


def _install_sagemaker() -> None:
    factory_module = importlib.import_module(f"{_STATE_TASK}.state_task_factory")
    original = private(f"{_STATE_TASK}.state_task_factory", "state_task_service_for")
    integration = _sagemaker_integration_class()

    @functools.wraps(original)
    def state_task_service_for(service_name: str):
        if service_name == "sagemaker":
            return integration()
        return original(service_name=service_name)

    # state_task_for() looks the name up in its own module's globals at call time.
    PATCHES.replace(factory_module, "state_task_service_for", state_task_service_for)
    # The pause between two resolver calls (read from the module at call time).
    callback = importlib.import_module(f"{_STATE_TASK}.service.state_task_service_callback")
    PATCHES.replace(callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", SYNC_CHECK)


# ---------------------------------------------------------------------------------------------
# 2. Lambda: run the deployed zip in a subprocess
# ---------------------------------------------------------------------------------------------
def _install_lambda() -> None:
    function_class = private("moto.awslambda.models", "LambdaFunction")
    if not hasattr(function_class, "_invoke_lambda"):
        raise MotoInternalsChanged(
            f"moto.awslambda.models.LambdaFunction._invoke_lambda is missing: written for moto=={MOTO_VERSION}"
        )

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        # Same contract as moto's Docker path: (payload, errored, logs), logs saved to CloudWatch.
        self.logs_backend.ensure_log_group(self.logs_group_name)
        result = lambda_runner.run_zip(
            self.code_bytes,
            self.handler,
            {} if event is None else event,
            endpoint_url=moto_endpoint_url(),
            region=self.region,
            function_name=self.function_name,
            environment={k: str(v) for k, v in (self.environment_vars or {}).items()},
            timeout_s=float(self.timeout or 3),
        )
        self.save_logs(result.logs or "(no output)")
        return result.payload, result.errored, result.logs

    PATCHES.replace(function_class, "_invoke_lambda", _invoke_lambda)


# ---------------------------------------------------------------------------------------------
# 3. AWS semantics moto gets wrong (tests: test_local_asl_semantics.py, test_local_integrations.py)
# ---------------------------------------------------------------------------------------------
def _fail(env: Any, error: str, cause: str) -> Exception:
    """A ``States.*`` failure as the interpreter reports it (execution error + cause)."""
    failure_event = private(f"{_SFN}.component.common.error_name.failure_event", "FailureEvent")
    failure_exception = private(f"{_SFN}.component.common.error_name.failure_event", "FailureEventException")
    states_error = private(f"{_SFN}.component.common.error_name.states_error_name", "StatesErrorName")
    event_details = private(f"{_SFN}.eval.event.event_detail", "EventDetails")
    api = importlib.import_module("moto.stepfunctions.parser.api")
    details = api.ExecutionFailedEventDetails(error=error, cause=cause)
    return failure_exception(
        failure_event(
            env=env,
            error_name=states_error.from_name(error),
            event_type=api.HistoryEventType.ExecutionFailed,
            event_details=event_details(executionFailedEventDetails=details),
        )
    )


def _is_definite(expression: Any) -> bool:
    """True for a JsonPath naming one node: only fields and single indexes, no *, slice, filter, ..."""
    from jsonpath_ng.jsonpath import Child, Fields, Index, Root, This

    if isinstance(expression, Root | This):
        return True
    if isinstance(expression, Child):
        return _is_definite(expression.left) and _is_definite(expression.right)
    if isinstance(expression, Fields):
        return len(expression.fields) == 1 and expression.fields[0] != "*"
    if isinstance(expression, Index):
        return len(expression.indices) == 1
    return False


def _fix_definite_paths() -> None:
    """``$.items[0].name`` is the value, not a one-element list.

    AWS: a "definite" path (no wildcards, slices, filters) refers to a single node and yields it;
    only indefinite paths yield arrays ("Paths", Step Functions developer guide:
    https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-paths.html).
    moto wraps any match below an index into a list (its fix for moto issue 7825).
    """
    json_path = importlib.import_module(f"{_SFN}.utils.json_path")
    original = private(f"{_SFN}.utils.json_path", "extract_json")
    parse = importlib.import_module("jsonpath_ng.ext").parse

    def extract_json(path: str, data: Any) -> Any:
        expression = parse(path)
        if not _is_definite(expression):
            return original(path, data)
        matches = expression.find(data)
        if not matches:
            raise json_path.NoSuchJsonPathError(json_path=path, data=data)
        return matches[0].value

    PATCHES.replace(json_path, "extract_json", extract_json)
    # Modules imported earlier hold their own reference ("from ... import extract_json").
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "extract_json", None) is original:
            PATCHES.replace(module, "extract_json", extract_json)


def _fix_choice() -> None:
    """Choice: a missing Variable fails the execution; no match without Default is NoChoiceMatched.

    AWS: a comparison on a path absent from the input fails with States.Runtime ("Invalid path
    ... The choice state's condition path references an invalid value"); only IsPresent tests for
    absence. With no matching rule and no Default the error is States.NoChoiceMatched ("Error
    names", https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
    moto takes the Default branch on a missing variable and fails with States.Runtime otherwise.
    """
    base = f"{_SFN}.component.state.choice"
    comparison_variable = private(f"{base}.comparison.comparison_variable", "ComparisonVariable")
    no_such_variable = private(f"{base}.comparison.variable", "NoSuchVariable")
    operator_type = private(f"{base}.comparison.comparison_operator_type", "ComparisonOperatorType")
    state_choice = private(f"{base}.state_choice", "StateChoice")

    def comparison_eval_body(self: Any, env: Any) -> None:
        self.variable.eval(env)
        if isinstance(env.stack[-1], no_such_variable) and self.comparison_function.operator_type != (
            operator_type.IsPresent
        ):
            path = self.variable.string_sampler.literal_value
            raise _fail(
                env,
                "States.Runtime",
                f"Invalid path '{path}': The choice state's condition path references an invalid value.",
            )
        self.comparison_function.eval(env)

    original_eval_state = state_choice._eval_state

    def choice_eval_state(self: Any, env: Any) -> None:
        if self.default_state is None and not _any_rule_matches(self, env):
            raise _fail(env, "States.NoChoiceMatched", f"No Choice rule matched in state '{self.name}'")
        original_eval_state(self, env)

    def _any_rule_matches(self: Any, env: Any) -> bool:
        for rule in self.choices_decl.rules:
            rule.eval(env)
            if env.stack.pop() is True:
                return True
        return False

    PATCHES.replace(comparison_variable, "_eval_body", comparison_eval_body)
    PATCHES.replace(state_choice, "_eval_state", choice_eval_state)


def _fix_context_start_time() -> None:
    """``$$.Execution.StartTime`` is an ISO 8601 string, e.g. "2019-03-26T20:14:13.192Z".

    AWS: "Context object" (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html).
    moto puts a datetime there, which then breaks DescribeExecution (HTTP 500) once it reaches the output.
    """
    details = private(f"{_SFN}.eval.evaluation_details", "ExecutionDetails")
    original_init = details.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if isinstance(self.start_time, datetime.datetime):
            utc = self.start_time.astimezone(datetime.UTC)
            self.start_time = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"

    PATCHES.replace(details, "__init__", __init__)


def _fix_execution_output() -> None:
    """DescribeExecution ``output`` is always JSON text: a string result comes back quoted.

    AWS: DescribeExecution output is "the JSON output data of the execution"
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html).
    moto returns a string result bare and fails (HTTP 500) on timestamps from aws-sdk tasks.
    """
    comm = private("moto.stepfunctions.parser.backend.execution", "BaseExecutionWorkerCommunication")
    to_json_str = private(f"{_SFN}.utils.encoding", "to_json_str")
    original = comm._reflect_execution_status

    def _reflect_execution_status(self: Any) -> None:
        original(self)
        if self.execution.output is not None and self.execution.exec_status == "SUCCEEDED":
            self.execution.output = to_json_str(self.execution.output, separators=(",", ":"))

    PATCHES.replace(comm, "_reflect_execution_status", _reflect_execution_status)


def _fix_aws_sdk_error_names() -> None:
    """aws-sdk task errors are ``<Service>.<Exception>`` with AWS's spelling of the service.

    AWS: e.g. ``S3.NoSuchKeyException`` for getObject on a missing key, and
    ``SageMaker.SageMakerException`` for SageMaker errors without a modelled exception
    ("Handling errors" for AWS SDK integrations,
    https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html).
    moto knows the spelling only for DynamoDB and SFN and yields ``s3.NoSuchKeyException`` and
    ``sagemaker.sagemakerException``, which no Retry/Catch of the template matches.
    """
    names = private(f"{_STATE_TASK}.service.state_task_service_aws_sdk", "_SERVICE_ERROR_NAMES")
    PATCHES.replace_item(names, "s3", "S3")
    PATCHES.replace_item(names, "sagemaker", "SageMaker")


def _fix_aws_sdk_streaming_body() -> None:
    """aws-sdk ``s3:getObject`` returns ``Body`` as text, which ``States.StringToJson`` can parse.

    AWS: the getObject integration puts the object's content in ``Body`` as a string (the S3
    example of "AWS SDK service integrations", limited to 256 KiB of state data). moto leaves
    botocore's stream object there; StringToJson then fails with States.Runtime.
    """
    aws_sdk = private(f"{_STATE_TASK}.service.state_task_service_aws_sdk", "StateTaskServiceAwsSdk")
    streaming_body = importlib.import_module("botocore.response").StreamingBody
    original = aws_sdk._eval_service_task

    def _eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        response = env.stack[-1]
        if isinstance(response, dict):
            for key, value in response.items():
                if isinstance(value, streaming_body):
                    response[key] = value.read().decode("utf-8")

    PATCHES.replace(aws_sdk, "_eval_service_task", _eval_service_task)


def _fix_fail_state_rethrow() -> None:
    """A Fail state may re-throw a caught ``States.*`` error through ``ErrorPath``.

    AWS: ``ErrorPath``/``CausePath`` exist to report a caught error from the Fail state, such as
    ``States.TaskFailed`` ("Fail workflow state",
    https://docs.aws.amazon.com/step-functions/latest/dg/state-fail.html). moto validates the
    runtime value as a *custom* error name and turns the failure into States.Runtime.
    """
    state_fail = importlib.import_module(f"{_SFN}.component.state.fail.state_fail")
    custom_error = private(f"{_SFN}.component.common.error_name.custom_error_name", "CustomErrorName")
    error_name = private(f"{_SFN}.component.common.error_name.error_name", "ErrorName")
    if state_fail.CustomErrorName is not custom_error:
        raise MotoInternalsChanged("StateFail no longer builds its error with CustomErrorName")

    class FailStateErrorName(error_name):  # type: ignore[misc, valid-type]
        """Any name, States.* included: the Fail state reports what it was given."""

    def build(name: str | None) -> Any:
        if name is not None and name.startswith("States."):
            return FailStateErrorName(error_name=name)
        return custom_error(name)

    PATCHES.replace(state_fail, "CustomErrorName", build)


def _secure_transport_only(statement: dict[str, Any]) -> bool:
    """A Deny whose only condition is ``aws:SecureTransport == false`` (the TLS-only policy)."""
    condition = statement.get("Condition") or {}
    return statement.get("Effect") == "Deny" and condition == {"Bool": {"aws:SecureTransport": "false"}}


def _fix_bucket_policy_conditions(patches: Patches = PATCHES) -> None:
    """A TLS-only bucket policy does not deny requests that use TLS.

    AWS: ``"Condition": {"Bool": {"aws:SecureTransport": "false"}}`` matches only plain-HTTP requests
    (S3 user guide, "Enforce encryption of data in transit"). moto evaluates bucket policies without
    their Condition blocks, so that Deny refuses every request. Offline requests stand for the TLS
    requests of AWS: the statement is dropped before moto evaluates the policy.
    """
    fake_bucket = private("moto.s3.models", "FakeBucket")
    original = fake_bucket.get_permission

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return original(self, action, resource)
        policy = json.loads(self.policy)
        statements = policy.get("Statement") or []
        kept = [s for s in statements if not _secure_transport_only(s)]
        if len(kept) == len(statements):
            return original(self, action, resource)
        saved, self.policy = self.policy, json.dumps({**policy, "Statement": kept}).encode()
        try:
            return (
                original(self, action, resource)
                if kept
                else private("moto.iam.access_control", "PermissionResult").NEUTRAL
            )
        finally:
            self.policy = saved

    patches.replace(fake_bucket, "get_permission", get_permission)


def _fix_choice_rule_assign() -> None:
    """A JSONPath Choice rule's own ``Assign`` applies when that rule matches.

    AWS: "Assign" is allowed in each Choice rule and at the Choice state's top level; a matching
    rule's Assign applies, the top-level one only with Default ("Passing data between states with
    variables", https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html).
    moto parses a JSONPath rule (``Variable`` + comparison) with ``assign=None``, dropping it.
    """
    preprocessor = private(f"{_SFN}.parse.preprocessor", "Preprocessor")
    choice_rule = private(f"{_SFN}.component.state.choice.choice_rule", "ChoiceRule")
    assign_decl = private(f"{_SFN}.component.common.assign.assign_decl", "AssignDecl")
    original = preprocessor.visitChoice_rule_comparison_variable

    @functools.wraps(original)
    def visit(self: Any, ctx: Any) -> Any:
        rule = original(self, ctx)
        if rule.assign is not None:
            return rule
        assign = next((c for c in map(self.visit, ctx.children) if isinstance(c, assign_decl)), None)
        if assign is None:
            return rule
        return choice_rule(
            comparison=rule.comparison,
            next_stmt=rule.next_stmt,
            comment=rule.comment,
            assign=assign,
            output=rule.output,
        )

    PATCHES.replace(preprocessor, "visitChoice_rule_comparison_variable", visit)


def _iso_milliseconds(text: str) -> str:
    moment = datetime.datetime.fromisoformat(text).astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fix_state_entered_time() -> None:
    """``$$.State.EnteredTime`` is ISO 8601 with milliseconds and Z, e.g. "2019-03-26T20:14:13.192Z".

    AWS: "Context object" (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html).
    moto writes Python's isoformat(): microseconds and "+00:00".
    """
    state_module = importlib.import_module(f"{_SFN}.component.state.state")
    original = private(f"{_SFN}.component.state.state", "StateData")

    def state_data(**fields: Any) -> Any:
        if isinstance(fields.get("EnteredTime"), str):
            fields["EnteredTime"] = _iso_milliseconds(fields["EnteredTime"])
        return original(**fields)

    PATCHES.replace(state_module, "StateData", state_data)


# Intrinsic function literals: the escapes of "Reserved characters in intrinsic functions" and
# the null literal, hidden from moto's lexer (which knows neither) in private-use characters.
_INTRINSIC_ESCAPES = {"'": "\ue002", "{": "\ue000", "}": "\ue001", "\\": "\ue003"}
_INTRINSIC_NULL = "\ue004"
_IDENTIFIER = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$.")


def _encode_intrinsic(source: str) -> str:
    """``\\'``, ``\\{``, ``\\}``, ``\\\\`` inside '...' literals and a bare ``null`` argument as characters moto's
    lexer accepts; ``_decode_intrinsic`` turns them back into what they mean."""
    out, index, quoted = [], 0, False
    while index < len(source):
        char = source[index]
        if quoted and char == "\\" and source[index + 1 : index + 2] in _INTRINSIC_ESCAPES:
            out.append(_INTRINSIC_ESCAPES[source[index + 1]])
            index += 2
            continue
        if char == "'":
            quoted = not quoted
        elif (
            not quoted
            and source.startswith("null", index)
            and (index == 0 or source[index - 1] not in _IDENTIFIER)
            and (index + 4 == len(source) or source[index + 4] not in _IDENTIFIER)
        ):
            out.append(f"'{_INTRINSIC_NULL}'")
            index += 4
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _decode_intrinsic(text: str, keep_braces: bool = False) -> str:
    for char, code in _INTRINSIC_ESCAPES.items():
        if not (keep_braces and char in "{}"):
            text = text.replace(code, char)
    return text


def _fix_intrinsic_literals() -> None:
    """Escapes in intrinsic string literals, and ``null`` as an argument.

    AWS ("Intrinsic functions", Reserved characters: https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html):
    ``\\'`` is ', ``\\{`` and ``\\}`` are literal braces (not a States.Format placeholder), ``\\\\`` is \\;
    ``States.Array('a', null)`` is ["a", null]. moto's lexer knows no escapes (the literal breaks
    into garbage) and no null (the argument is dropped).
    """
    parser = private(f"{_SFN}.parse.intrinsic.intrinsic_parser", "IntrinsicParser")
    literal = private(f"{_SFN}.component.intrinsic.argument.argument", "ArgumentLiteral")
    string_format = private(
        f"{_SFN}.component.intrinsic.function.statesfunction.generic.string_format", "StringFormat"
    )
    original_parse, original_value, original_format_init = (
        parser.parse,
        literal._eval_argument,
        string_format.__init__,
    )

    def parse(source: str) -> Any:
        # moto hands over the JSON text between the quotes (escapes still JSON-encoded).
        with contextlib.suppress(json.JSONDecodeError):  # else: already decoded text
            source = json.loads(f'"{source}"')
        return original_parse(_encode_intrinsic(source))

    def eval_argument(self: Any, env: Any) -> Any:
        value = original_value(self, env)
        if value == _INTRINSIC_NULL:
            return None
        if isinstance(value, str):
            return _decode_intrinsic(value, keep_braces=getattr(self, "format_template", False))
        return value

    def format_init(self: Any, argument_list: Any) -> None:
        original_format_init(self, argument_list)
        first = argument_list.arguments[0]
        if isinstance(first, literal):
            first.format_template = True  # escaped braces stay apart from the {} placeholders

    def format_body(self: Any, env: Any) -> None:
        self.argument_list.eval(env=env)
        template, *values = env.stack.pop()
        pieces = template.split("{}")
        if len(pieces) - 1 > len(values):
            raise ValueError(f"States.Format: {len(pieces) - 1} placeholders but {len(values)} values")
        text = pieces[0] + "".join(self._to_str_repr(v) + p for v, p in zip(values, pieces[1:], strict=False))
        env.stack.append(_decode_intrinsic(text))

    PATCHES.replace(parser, "parse", staticmethod(parse))
    PATCHES.replace(literal, "_eval_argument", eval_argument)
    PATCHES.replace(string_format, "__init__", format_init)
    PATCHES.replace(string_format, "_eval_body", format_body)


def _string_matches(value: Any, pattern: Any) -> bool:
    """Choice "StringMatches": ``*`` is any run of characters, ``\\*`` a literal star, ``\\\\`` a
    backslash; nothing else is special ("Choice workflow state", Choice Rules,
    https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html)."""
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    regex, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and pattern[index + 1 : index + 2] in ("*", "\\"):
            regex.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        regex.append(".*" if char == "*" else re.escape(char))
        index += 1
    return re.fullmatch("".join(regex), value, flags=re.DOTALL) is not None


def _fix_string_matches() -> None:
    """moto matches with ``fnmatch``: ``\\*`` is not an escape there and ``?``/``[...]`` are wildcards."""
    operator = private(
        f"{_SFN}.component.state.choice.comparison.operator.implementations.string_operators", "StringMatches"
    )
    PATCHES.replace(operator, "_compare", staticmethod(_string_matches))


def _fix_definition_validation() -> None:
    """CreateStateMachine/UpdateStateMachine refuse an invalid definition with InvalidDefinition.

    AWS: the error code is InvalidDefinition ("CreateStateMachine", Errors:
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html) and
    the rules moto lacks are in ``definitions.problems`` (partial variable assignment, $states.result
    outside a Task/Map/Parallel's Output and Assign, ItemBatcher outside a Distributed Map).
    moto's InvalidDefinition reaches the client with an empty error code.
    """
    backend = private("moto.stepfunctions.parser.models", "StepFunctionsParserBackend")
    aws_error = private("moto.core.exceptions", "AWSError")
    parser = private(f"{_SFN}.parse.asl_parser", "AmazonStateLanguageParser")

    def refuse(reasons: list[str]) -> Exception:
        return aws_error(f"Invalid State Machine Definition: '{', '.join(reasons)}'", "InvalidDefinition")

    def _validate_definition(definition: str) -> None:
        found = definitions.problems(definition)
        if found:
            raise refuse(found)
        try:
            parser.parse(definition)
        except Exception as error:
            raise refuse([f"SCHEMA_VALIDATION_FAILED: {error}"]) from None

    PATCHES.replace(backend, "_validate_definition", staticmethod(_validate_definition))


# ---------------------------------------------------------------------------------------------
# 4. Parse once
# ---------------------------------------------------------------------------------------------
PARSE_CACHE_SIZE = 16


def _cache_parse_trees() -> None:
    """moto parses a definition with ANTLR at CreateStateMachine and again at every StartExecution
    (0.3 s for the pipeline's ASL on an idle core, a second on a busy one). The syntax tree of the
    same text is the same: keep it, and build the evaluation components from it afresh each time
    (``Preprocessor``), so no execution shares state with another. Syntax errors are not cached."""
    parser_module = f"{_SFN}.parse.asl_parser"
    parser_class = private(parser_module, "AmazonStateLanguageParser")
    lexer = private(f"{_SFN}.antlr.runtime.ASLLexer", "ASLLexer")
    asl_parser = private(f"{_SFN}.antlr.runtime.ASLParser", "ASLParser")
    preprocessor = private(f"{_SFN}.parse.preprocessor", "Preprocessor")
    listener = private(parser_module, "SyntaxErrorListener")
    parser_error = private(parser_module, "ASLParserException")
    antlr4 = importlib.import_module("antlr4")

    @functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
    def tree_of(definition: str) -> Any:
        errors = listener()
        parser = asl_parser(antlr4.CommonTokenStream(lexer(antlr4.InputStream(definition))))
        parser.removeErrorListeners()
        parser.addErrorListener(errors)
        tree = parser.state_machine()
        if errors.errors:
            raise parser_error(errors=errors.errors)
        return tree

    def parse(definition: str) -> tuple[Any, Any]:
        tree = tree_of(definitions.rewritten(definition))
        return preprocessor().visit(tree), tree

    PATCHES.replace(parser_class, "parse", staticmethod(parse))


S3_PATCHES = Patches("integrations-s3", pins=MOTO_PINS)


def s3_corrections() -> Any:
    """Only the S3 correction, for tests that use ``mock_aws`` without the emulator (a context manager)."""

    @contextlib.contextmanager
    def corrected() -> Any:
        _fix_bucket_policy_conditions(S3_PATCHES)
        try:
            yield
        finally:
            S3_PATCHES.undo()

    return corrected()


_HOOKS: dict[str, Callable[[], None]] = {
    "bucket-policy-conditions": _fix_bucket_policy_conditions,
    "sagemaker": _install_sagemaker,
    "lambda": _install_lambda,
    "definite-paths": _fix_definite_paths,
    "choice": _fix_choice,
    "context-start-time": _fix_context_start_time,
    "execution-output": _fix_execution_output,
    "aws-sdk-error-names": _fix_aws_sdk_error_names,
    "aws-sdk-streaming-body": _fix_aws_sdk_streaming_body,
    "fail-state-rethrow": _fix_fail_state_rethrow,
    "parse-trees": _cache_parse_trees,
    "choice-rule-assign": _fix_choice_rule_assign,
    "state-entered-time": _fix_state_entered_time,
    "intrinsic-literals": _fix_intrinsic_literals,
    "string-matches": _fix_string_matches,
    "definition-validation": _fix_definition_validation,
}
