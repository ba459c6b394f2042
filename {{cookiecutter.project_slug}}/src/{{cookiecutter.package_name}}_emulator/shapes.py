"""moto's answers in AWS's shapes: members, paging and order as botocore's service models and the
AWS API references have them, and the task outputs the state machine's expressions read.

Installed with the other corrections (``patches.install(shapes)``, from ``moto_server``);
tests/emulator/test_shapes.py walks every answer the project reads against botocore's output
shapes, so a mismatch found later is one line in its table. What is corrected, by where it shows:

- SageMaker Describe*/List*: no JSON null and no empty structure (``DataCaptureConfig: {}`` lacks
  its required members; AWS leaves an unset structure out); ``OutputDataConfig.KmsKeyId`` always
  present ("" when none; the SageMaker SDK's ``Estimator.attach`` reads it); ``TuningJobArn`` on
  the training jobs a tuning job launched; CreateModel keeps ``EnableNetworkIsolation``;
  ListTrainingJobs filters, then sorts (SortBy/SortOrder) and pages (MaxResults, default 10);
  ListTrainingJobsForHyperParameterTuningJob and ListContexts exist (moto: HTTP 500).
  DescribeHyperParameterTuningJob lists SageMaker's reserved ``_tuning_objective_metric`` static
  hyperparameter (the SDK's ``HyperparameterTuner.attach`` removes it, so it fails without it).
- Lambda GetFunctionConfiguration/CreateFunction and CloudWatch Logs: no JSON null members.
- Step Functions StartExecution without a name gets a UUID name; StopExecution answers its stopDate.
- Step Functions GetExecutionHistory: pages of ``maxResults`` events (default 100) with nextToken,
  ``reverseOrder`` newest first.
- Task outputs: aws-sdk integrations keep the API's member names (``VolumeSizeInGB``,
  ``ChecksumCRC32``, only the first letter upper-cased); ``lambda:invoke`` and ``sns:publish``
  return the SDK's HTTP metadata, and ``lambda:invoke`` its ``ExecutedVersion``.
"""

from __future__ import annotations

import base64
import datetime
import functools
import importlib
import json
import re
import uuid
from typing import Any

from .patches import MOTO_PINS, Patches, private

PATCHES = Patches("shapes", pins=MOTO_PINS)
_SFN = "moto.stepfunctions.parser.asl"
_TASK = f"{_SFN}.component.state.exec.state_task"
HISTORY_PAGE, HISTORY_MAX = 100, 1000  # GetExecutionHistory maxResults: default 100, at most 1000
SAGEMAKER_PAGE = 10  # SageMaker List* MaxResults default
PARAMETER_RANGES = ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")


def install() -> None:
    """Install every shape correction (through ``patches.install(shapes)``: reversible)."""
    if PATCHES.active:
        return
    PATCHES.check_pins()
    for fix in (
        _fix_sagemaker_empty_members,
        _fix_training_job_members,
        _fix_model_network_isolation,
        _fix_training_job_listings,
        _add_list_contexts,
        _fix_tuning_job_reserved_hyperparameter,
        _fix_lambda_configuration_nulls,
        _fix_logs_nulls,
        _fix_execution_names_and_stop_date,
        _fix_execution_history_paging,
        _fix_aws_sdk_member_names,
        _fix_lambda_invoke_output,
        _fix_sns_publish_output,
    ):
        fix()


def uninstall() -> None:
    PATCHES.undo()


# ---------------------------------------------------------------------------------------------
# SageMaker
# ---------------------------------------------------------------------------------------------
def without_empty(value: Any, shape: Any) -> Any:
    """``value`` without null members and without structure members that are ``{}``, by ``shape``."""
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            member = shape.members.get(key)
            if item is None or (member is not None and member.type_name == "structure" and item == {}):
                continue
            kept[key] = without_empty(item, member)
        return kept
    if shape.type_name == "list" and isinstance(value, list):
        return [without_empty(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: without_empty(item, shape.value) for key, item in value.items()}
    return value


def _fix_sagemaker_empty_members() -> None:
    """DescribeEndpoint/EndpointConfig/Model/TrainingJob: moto answers ``DataCaptureConfig: {}``,
    ``VpcConfig: {}`` (and CheckpointConfig, DebugHookConfig, TensorBoardOutputConfig) for settings
    nobody made; botocore's shapes make their members required, and AWS leaves them out."""
    responses = importlib.import_module("moto.sagemaker.responses")
    action_result = private("moto.core.responses", "ActionResult")

    class ShapedActionResult(action_result):  # type: ignore[misc, valid-type]
        def execute_result(self, context: Any) -> Any:
            self._result = without_empty(self.result, context.operation_model.output_shape)
            return super().execute_result(context)

    PATCHES.replace(responses, "ActionResult", ShapedActionResult)


def _sagemaker() -> tuple[Any, Any]:
    return private("moto.sagemaker.responses", "SageMakerResponse"), importlib.import_module(
        "moto.sagemaker.responses"
    )


def tuning_job_of(backend: Any, training_job_name: str) -> Any:
    """The tuning job that launched ``training_job_name``, None if none did. AWS names a tuning
    job's training jobs ``<tuning job>-<3 digits>-<8 hex>`` (the data plane does the same)."""
    for name, tuning in backend.hyper_parameter_tuning_jobs.items():
        if re.fullmatch(re.escape(name) + r"-\d\d\d-[0-9a-f]{8}", training_job_name):
            return tuning
    return None


def _fix_training_job_members() -> None:
    """DescribeTrainingJob: ``OutputDataConfig.KmsKeyId`` ("" when none, as AWS answers and the
    SDK's Estimator.attach indexes it), the required ``ModelArtifacts`` before the job has ended,
    and ``TuningJobArn`` on a tuning job's training jobs
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html)."""
    response_class, responses = _sagemaker()
    original = response_class.describe_training_job

    def describe_training_job(self: Any) -> Any:
        answer = dict(original(self).result)
        output = {"KmsKeyId": "", **(answer.get("OutputDataConfig") or {})}
        answer["OutputDataConfig"] = output
        if not answer.get("ModelArtifacts") and output.get("S3OutputPath"):
            # Required in every answer: where the model goes (<S3OutputPath>/<job>/output/model.tar.gz).
            where = f"{output['S3OutputPath'].rstrip('/')}/{answer['TrainingJobName']}/output/model.tar.gz"
            answer["ModelArtifacts"] = {"S3ModelArtifacts": where}
        tuning = tuning_job_of(self.sagemaker_backend, answer["TrainingJobName"])
        if tuning is not None:
            answer["TuningJobArn"] = tuning.arn
        return responses.ActionResult(answer)

    PATCHES.replace(response_class, "describe_training_job", describe_training_job)


def _fix_model_network_isolation() -> None:
    """CreateModel ``EnableNetworkIsolation: true`` is described back as true (moto: always false)."""
    response_class, _ = _sagemaker()
    original = response_class.create_model

    def create_model(self: Any) -> Any:
        result = original(self)
        model = self.sagemaker_backend._models[self._get_param("ModelName")]
        model.enable_network_isolation = bool(self._get_param("EnableNetworkIsolation", False))
        return result

    PATCHES.replace(response_class, "create_model", create_model)


def _epoch(value: Any) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromtimestamp(float(value), tz=datetime.UTC)


def _aware(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _page(self: Any, items: list[Any], default: int = SAGEMAKER_PAGE) -> tuple[list[Any], str | None]:
    """One page of ``items`` for NextToken/MaxResults, and the next token (None at the end)."""
    validation = private("moto.sagemaker.exceptions", "AWSValidationException")
    token, size = self._get_param("NextToken"), self._get_int_param("MaxResults") or default
    try:
        start = int(token) if token else 0
        if not 0 <= start <= len(items):
            raise ValueError(token)
    except ValueError:
        raise validation(f'Invalid pagination token because "{token}".') from None
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def _sorted(items: list[Any], keys: dict[str, Any], sort_by: str, order: str) -> list[Any]:
    return sorted(items, key=keys[sort_by], reverse=order == "Descending")


def _training_summary(job: Any) -> dict[str, Any]:
    summary = {
        "TrainingJobName": job.training_job_name,
        "TrainingJobArn": job.arn,
        "CreationTime": job.creation_time,
        "TrainingEndTime": job.training_end_time,
        "LastModifiedTime": job.last_modified_time,
        "TrainingJobStatus": job.training_job_status,
        "SecondaryStatus": getattr(job, "secondary_status", None),
    }
    return {key: value for key, value in summary.items() if value is not None}


def _fix_training_job_listings() -> None:
    """ListTrainingJobs filters, then sorts by SortBy/SortOrder, then pages (moto pages first and
    never sorts); ListTrainingJobsForHyperParameterTuningJob answers (moto: HTTP 500).
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListTrainingJobs.html
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListTrainingJobsForHyperParameterTuningJob.html
    """
    response_class, responses = _sagemaker()
    original = response_class.list_training_jobs
    keys = {
        "Name": lambda job: job.training_job_name,
        "CreationTime": lambda job: _aware(job.creation_time),
        "Status": lambda job: job.training_job_status,
    }

    def list_training_jobs(self: Any) -> Any:
        original(self)  # moto's parameter validation (its answer is replaced)
        jobs = [job for job in self.sagemaker_backend.training_jobs.values() if _wanted(self, job)]
        ordered = _sorted(
            jobs, keys, self._get_param("SortBy", "CreationTime"), self._get_param("SortOrder", "Ascending")
        )
        page, token = _page(self, ordered)
        answer = {"TrainingJobSummaries": [_training_summary(job) for job in page]}
        return responses.ActionResult({**answer, **({"NextToken": token} if token else {})})

    def list_for_tuning_job(self: Any) -> Any:
        backend, name = self.sagemaker_backend, self._get_param("HyperParameterTuningJobName")
        if name not in backend.hyper_parameter_tuning_jobs:
            not_found = private("moto.sagemaker.exceptions", "ResourceNotFound")
            raise not_found(f"Amazon SageMaker can't find a tuning job with name {name}")
        tuning = backend.hyper_parameter_tuning_jobs[name]
        summaries = [
            _trial_summary(tuning, job)
            for job in backend.training_jobs.values()
            if tuning_job_of(backend, job.training_job_name) is tuning and _wanted(self, job)
        ]
        trial_keys = {
            "Name": lambda s: s["TrainingJobName"],
            "CreationTime": lambda s: _aware(s["CreationTime"]),
            "Status": lambda s: s["TrainingJobStatus"],
            "FinalObjectiveMetricValue": lambda s: s.get(
                "FinalHyperParameterTuningJobObjectiveMetric", {}
            ).get("Value", float("-inf")),
        }
        ordered = _sorted(
            summaries,
            trial_keys,
            self._get_param("SortBy", "Name"),
            self._get_param("SortOrder", "Ascending"),
        )
        page, token = _page(self, ordered)
        return responses.ActionResult(
            {"TrainingJobSummaries": page, **({"NextToken": token} if token else {})}
        )

    PATCHES.replace(response_class, "list_training_jobs", list_training_jobs)
    PATCHES.replace(
        response_class,
        "list_training_jobs_for_hyper_parameter_tuning_job",
        list_for_tuning_job,
        must_exist=False,
    )


def _wanted(self: Any, job: Any) -> bool:
    """The ListTrainingJobs filters: NameContains, StatusEquals, Creation/LastModified time bounds."""
    name, status = self._get_param("NameContains"), self._get_param("StatusEquals")
    if (name and name not in job.training_job_name) or (status and job.training_job_status != status):
        return False
    for field, attribute, after in (
        ("CreationTimeAfter", "creation_time", True),
        ("CreationTimeBefore", "creation_time", False),
        ("LastModifiedTimeAfter", "last_modified_time", True),
        ("LastModifiedTimeBefore", "last_modified_time", False),
    ):
        bound = _epoch(self._get_param(field))
        if bound is not None:
            moment = _aware(getattr(job, attribute))
            if (after and moment <= bound) or (not after and moment >= bound):
                return False
    return True


def _trial_summary(tuning: Any, job: Any) -> dict[str, Any]:
    """A HyperParameterTrainingJobSummary: the tuned hyperparameters and the objective's final value."""
    config = tuning.hyper_parameter_tuning_job_config
    objective = config["HyperParameterTuningJobObjective"]
    ranges = config.get("ParameterRanges") or {}
    tuned_names = {r["Name"] for kind in ranges.values() for r in kind}
    summary: dict[str, Any] = {
        "TrainingJobName": job.training_job_name,
        "TrainingJobArn": job.arn,
        "TuningJobName": tuning.hyper_parameter_tuning_job_name,
        "CreationTime": job.creation_time,
        "TrainingStartTime": getattr(job, "training_start_time", None),
        "TrainingEndTime": job.training_end_time,
        "TrainingJobStatus": job.training_job_status,
        "TunedHyperParameters": {k: v for k, v in (job.hyper_parameters or {}).items() if k in tuned_names},
        "FailureReason": getattr(job, "failure_reason", None),
    }
    final = [m for m in job.final_metric_data_list or [] if m.get("MetricName") == objective["MetricName"]]
    if final:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective["Type"],
            "MetricName": objective["MetricName"],
            "Value": final[-1]["Value"],
        }
        summary["ObjectiveStatus"] = "Succeeded"
    elif job.training_job_status == "Failed":
        summary["ObjectiveStatus"] = "Failed"
    return {key: value for key, value in summary.items() if value is not None}


def _fix_tuning_job_reserved_hyperparameter() -> None:
    """DescribeHyperParameterTuningJob: SageMaker adds the reserved static hyperparameter
    ``_tuning_objective_metric`` (the objective's metric name) to the training job definition and
    answers the defaulted ``TrainingJobEarlyStoppingType`` ("Off") and every kind of parameter
    range (empty lists for the unused ones); the SageMaker SDK's HyperparameterTuner.attach reads
    them all and fails with KeyError when one is absent.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTuningJobConfig.html"""
    response_class, responses = _sagemaker()
    original = response_class.describe_hyper_parameter_tuning_job

    def describe(self: Any) -> Any:
        answer = dict(original(self).result)
        config = {
            "TrainingJobEarlyStoppingType": "Off",
            **(answer.get("HyperParameterTuningJobConfig") or {}),
        }
        config["ParameterRanges"] = {kind: [] for kind in PARAMETER_RANGES} | (
            config.get("ParameterRanges") or {}
        )
        answer["HyperParameterTuningJobConfig"] = config
        definition, objective = (
            answer.get("TrainingJobDefinition"),
            config.get("HyperParameterTuningJobObjective"),
        )
        if isinstance(definition, dict) and objective:
            static = {**(definition.get("StaticHyperParameters") or {})}
            static.setdefault("_tuning_objective_metric", objective["MetricName"])
            answer["TrainingJobDefinition"] = {**definition, "StaticHyperParameters": static}
        return responses.ActionResult(answer)

    PATCHES.replace(response_class, "describe_hyper_parameter_tuning_job", describe)


def _add_list_contexts() -> None:
    """ListContexts (lineage) answers with no contexts: the emulator records none (moto: HTTP 500)."""
    response_class, responses = _sagemaker()

    def list_contexts(self: Any) -> Any:
        return responses.ActionResult({"ContextSummaries": []})

    PATCHES.replace(response_class, "list_contexts", list_contexts, must_exist=False)


# ---------------------------------------------------------------------------------------------
# Lambda and Step Functions APIs
# ---------------------------------------------------------------------------------------------
def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _fix_lambda_configuration_nulls() -> None:
    """GetFunctionConfiguration/CreateFunction: moto sends KMSKeyArn, VpcConfig, SigningJobArn...
    as JSON null; AWS leaves unset members out."""
    function_class = private("moto.awslambda.models", "LambdaFunction")
    original = function_class.get_configuration

    @functools.wraps(original)
    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _without_nulls(original(self, *args, **kwargs))

    PATCHES.replace(function_class, "get_configuration", get_configuration)


def _fix_logs_nulls() -> None:
    """DescribeLogStreams/GetLogEvents/FilterLogEvents: moto sends ``nextToken: null`` at the end."""
    response_class = private("moto.logs.responses", "LogsResponse")

    def without_null_members(original: Any) -> Any:
        @functools.wraps(original)
        def answer(self: Any) -> Any:
            text = original(self)
            return json.dumps(_without_nulls(json.loads(text))) if isinstance(text, str) else text

        return answer

    for name in ("describe_log_streams", "get_log_events", "filter_log_events"):
        PATCHES.replace(response_class, name, without_null_members(getattr(response_class, name)))


def _fix_execution_names_and_stop_date() -> None:
    """StartExecution without ``name`` names the execution with a UUID (moto leaves it null, so
    ListExecutions lacks the required ``name``); StopExecution answers the required ``stopDate``.
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html"""
    backend = private("moto.stepfunctions.parser.models", "StepFunctionsParserBackend")
    response_class = private("moto.stepfunctions.responses", "StepFunctionResponse")
    action_result = private("moto.core.responses", "ActionResult")
    original_start = backend.start_execution

    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        return original_start(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    def stop_execution(self: Any) -> Any:
        execution = self.stepfunction_backend.stop_execution(self._get_param("executionArn"))
        stopped = execution.stop_date or datetime.datetime.now(datetime.UTC)
        return action_result({"stopDate": stopped})

    PATCHES.replace(backend, "start_execution", start_execution)
    PATCHES.replace(response_class, "stop_execution", stop_execution)


def _history_token(execution_arn: str, offset: int, reverse: bool) -> str:
    text = json.dumps({"arn": execution_arn, "offset": offset, "reverse": reverse})
    return base64.urlsafe_b64encode(text.encode()).decode()


def _history_offset(token: str | None, execution_arn: str, reverse: bool) -> int:
    if not token:
        return 0
    invalid = private("moto.stepfunctions.exceptions", "InvalidToken")
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
        if state["arn"] != execution_arn or state["reverse"] != reverse:
            raise ValueError(token)
        return int(state["offset"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise invalid("the token does not continue this history") from None


def _fix_execution_history_paging() -> None:
    """GetExecutionHistory returns ``maxResults`` events (default 100, at most 1000) and a
    ``nextToken`` for the rest; ``reverseOrder`` lists the newest first. moto returns every
    event at once, so a reader that forgets nextToken works offline and loses events on AWS.
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
    """
    response_class = private("moto.stepfunctions.responses", "StepFunctionResponse")
    action_result = private("moto.core.responses", "ActionResult")

    def get_execution_history(self: Any) -> Any:
        arn = self._get_param("executionArn")
        reverse = bool(self._get_param("reverseOrder"))
        size = min(int(self._get_param("maxResults") or HISTORY_PAGE), HISTORY_MAX)
        events = list(self.stepfunction_backend.get_execution_history(arn)["events"])
        if reverse:
            events.reverse()
        start = _history_offset(self._get_param("nextToken"), arn, reverse)
        page, end = events[start : start + size], start + size
        token = {"nextToken": _history_token(arn, end, reverse)} if end < len(events) else {}
        return action_result({"events": page, **token})

    PATCHES.replace(response_class, "get_execution_history", get_execution_history)


# ---------------------------------------------------------------------------------------------
# Task outputs the state machine's expressions read
# ---------------------------------------------------------------------------------------------
def sdk_member_name(name: str) -> str:
    """aws-sdk task outputs: the API's member name with its first letter upper-cased."""
    return name[:1].upper() + name[1:]


def _fix_aws_sdk_member_names() -> None:
    """AWS SDK integrations return the API's member names, first letter upper-cased:
    ``VolumeSizeInGB``, ``ChecksumCRC32``, ``ETag``; sfn's ``executions`` -> ``Executions``
    ("AWS SDK service integrations", https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html).
    moto goes through snake case and back, which spells ``VolumeSizeInGb`` and ``ChecksumCrc32``,
    names an expression written against the API reference never finds."""
    service = private(f"{_TASK}.service.state_task_service", "StateTaskService")
    PATCHES.replace(service, "_to_sfn_cased", staticmethod(sdk_member_name))


# Header names as AWS spells them in SdkHttpMetadata (botocore lower-cases them).
_HEADER_NAMES = {
    "x-amzn-requestid": "x-amzn-RequestId",
    "x-amz-executed-version": "X-Amz-Executed-Version",
    "x-amzn-trace-id": "X-Amzn-Trace-Id",
    "x-amzn-remapped-content-length": "x-amzn-Remapped-Content-Length",
    "x-amz-function-error": "X-Amz-Function-Error",
}
_SERVER_ONLY = {"server", "access-control-allow-origin", "status"}  # moto's own headers


def sdk_metadata(response: dict[str, Any], extra_headers: dict[str, str] | None = None) -> dict[str, Any]:
    """``SdkHttpMetadata`` and ``SdkResponseMetadata`` of an optimised integration's output, from
    botocore's ResponseMetadata (the Java SDK's names for the same data, as AWS returns them)."""
    metadata = response.get("ResponseMetadata") or {}
    request_id = metadata.get("RequestId") or ""
    headers = {
        _HEADER_NAMES.get(name, "-".join(part.capitalize() for part in name.split("-"))): value
        for name, value in (metadata.get("HTTPHeaders") or {}).items()
        if name not in _SERVER_ONLY
    }
    headers = {**headers, "x-amzn-RequestId": request_id, **(extra_headers or {})}
    return {
        "SdkHttpMetadata": {
            "AllHttpHeaders": {name: [value] for name, value in headers.items()},
            "HttpHeaders": dict(sorted(headers.items(), key=lambda item: item[0].lower())),
            "HttpStatusCode": metadata.get("HTTPStatusCode", 200),
        },
        "SdkResponseMetadata": {"RequestId": request_id},
    }


def _fix_lambda_invoke_output() -> None:
    """``arn:aws:states:::lambda:invoke`` returns ExecutedVersion, Payload, SdkHttpMetadata,
    SdkResponseMetadata and StatusCode ("Invoke an AWS Lambda function with Step Functions",
    https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html); moto keeps Payload
    and StatusCode only."""
    utils = importlib.import_module(f"{_TASK}.lambda_eval_utils")
    error_class = private(f"{_TASK}.lambda_eval_utils", "LambdaFunctionErrorException")

    def execute_lambda_function_integration(
        env: Any, parameters: dict, region: str, state_credentials: Any
    ) -> None:
        if env.is_mocked_mode():
            env.stack.append(utils._mocked_invoke_lambda_function(env=env))
            return
        response = utils._invoke_lambda_function(
            parameters=parameters, region=region, state_credentials=state_credentials
        )
        if response.get("FunctionError"):
            raise error_class(
                response["FunctionError"], json.dumps(response["Payload"], separators=(",", ":"))
            )
        version = response.get("ExecutedVersion") or "$LATEST"
        output = {"ExecutedVersion": version, "Payload": response["Payload"]}
        if response.get("LogResult"):
            output["LogResult"] = response["LogResult"]
        output |= sdk_metadata(response, {"X-Amz-Executed-Version": version})
        output["StatusCode"] = response.get("StatusCode", 200)
        env.stack.append(output)

    PATCHES.replace(utils, "execute_lambda_function_integration", execute_lambda_function_integration)


def _fix_sns_publish_output() -> None:
    """``arn:aws:states:::sns:publish`` returns MessageId with SdkHttpMetadata and
    SdkResponseMetadata (as the other optimised integrations); moto drops the metadata."""
    sns = private(f"{_TASK}.service.state_task_service_sns", "StateTaskServiceSns")
    boto_client_for = private(f"{_SFN}.utils.boto_client", "boto_client_for")
    to_json_str = private(f"{_SFN}.utils.encoding", "to_json_str")

    def _eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any
    ) -> None:
        parameters = normalised_parameters
        client = boto_client_for(
            service=self._get_boto_service_name(),
            region=resource_runtime_part.region,
            state_credentials=state_credentials,
        )
        if "Message" in parameters and not isinstance(parameters["Message"], str):
            parameters["Message"] = to_json_str(parameters["Message"])  # the integration stringifies
        response = getattr(client, self._get_boto_service_action())(**parameters)
        answer = {key: value for key, value in response.items() if key != "ResponseMetadata"}
        env.stack.append(answer | sdk_metadata(response))

    PATCHES.replace(sns, "_eval_service_task", _eval_service_task)
