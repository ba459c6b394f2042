"""The execution input drives the one state machine (Init state): defaults, overrides, refusals.

Two layers: the Init state's expression evaluated directly by the offline JSONata engine (every
rule, fast), and whole executions in the process runtime through the emulator API (slow), each
checked on what SageMaker was asked to do, not only on the final status.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from {{ cookiecutter.package_name }} import hyperparameters, model, settings
from {{ cookiecutter.package_name }}_deploy import definition
from {{ cookiecutter.package_name }}_deploy.definition import placeholders, render_definition, render_model_tokens
from {{ cookiecutter.package_name }}_emulator import jsonata
from {{ cookiecutter.package_name }}_emulator.run import Emulator

BUCKET = "bucket-under-test"
INSTANCE = "ml.m5.large"


# ------------------------------------------------------------------ the Init state, evaluated
def rendered_init(project_root: Path) -> str:
    """The Init state's JSONata expression, with the model's tokens as deployment fills them."""
    text = render_model_tokens((project_root / "pipeline" / "state_machine.asl.json").read_text())
    stand_ins = {"DataBucket": BUCKET, "TrainingInstanceType": INSTANCE}
    machine = json.loads(render_definition(text, {t: stand_ins.get(t, "1") for t in placeholders(text)}))
    return machine["States"]["Init"]["Assign"]["run"][2:-2].strip()


@pytest.fixture(scope="module")
def init_expression(project_root: Path) -> str:
    return rendered_init(project_root)


def init(expression: str, execution_input: Any) -> dict[str, Any]:
    return jsonata.evaluate(expression, {"states": {"input": execution_input}})


def numeric_param() -> dict[str, Any]:
    """A tunable numeric hyperparameter of this project's model, whatever model.py holds."""
    return next(p for p in hyperparameters.spec() if p["kind"] in ("float", "int") and p["high"] is not None)


def test_empty_input_takes_every_default(init_expression: str) -> None:
    run = init(init_expression, {})
    assert run["tune"] is settings.ENABLE_HPO and run["dry_run"] is False
    assert run["data"] == {"train": f"s3://{BUCKET}/data/train/", "holdout": f"s3://{BUCKET}/data/holdout/"}
    assert run["training_instance_type"] == INSTANCE and run["training_instance_count"] == 1
    assert (run["volume_size_gb"], run["max_runtime_seconds"], run["training_input_mode"]) == (
        definition.VOLUME_SIZE_GB,
        definition.MAX_RUNTIME_SECONDS,
        definition.TRAINING_INPUT_MODE,
    )
    assert run["hyperparameters"] == hyperparameters.defaults()
    assert run["parameter_ranges"] == hyperparameters.tuning_ranges()


def test_overrides_merge_over_defaults_as_strings_and_leave_the_search(init_expression: str) -> None:
    param = numeric_param()
    value = param["low"] if param["kind"] == "float" else int(param["low"])
    run = init(init_expression, {"tune": True, "hyperparameters": {param["name"]: value}})
    assert run["hyperparameters"] == {**hyperparameters.defaults(), param["name"]: json.dumps(value)}
    # A value the input fixes is no longer searched: SageMaker refuses a name both static and ranged.
    ranged = [r["Name"] for ranges in run["parameter_ranges"].values() for r in ranges]
    assert param["name"] not in ranged
    assert run["static_hyperparameters"][param["name"]] == json.dumps(value)
    assert set(run["static_hyperparameters"]).isdisjoint(ranged)


def test_other_data_prefix_and_instances(init_expression: str) -> None:
    data = {
        "train": f"s3://{BUCKET}/other/2026-11/train/",
        "holdout": f"s3://{BUCKET}/other/2026-11/holdout/",
    }
    run = init(
        init_expression,
        {
            "data": data,
            "training_instance_type": "ml.c5.xlarge",
            "training_instance_count": 1,
            "dry_run": True,
        },
    )
    assert run["data"] == data and run["dry_run"] is True
    assert (run["training_instance_type"], run["training_instance_count"]) == ("ml.c5.xlarge", 1)


# Bounds from the API references; one value goes to every job, so the narrowest range applies.
# VolumeSizeInGB: ProcessingClusterConfig 1-16384 (ResourceConfig allows 0; a processing job needs 1).
# MaxRuntimeInSeconds: ProcessingStoppingCondition 1-777600 (training allows more).
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingClusterConfig.html
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProcessingStoppingCondition.html
SIZE_BOUNDS = {"volume_size_gb": (1, 16384), "max_runtime_seconds": (1, 777600)}


@pytest.mark.parametrize("field", sorted(SIZE_BOUNDS))
def test_size_fields_are_accepted_at_their_bounds(init_expression: str, field: str) -> None:
    for value in SIZE_BOUNDS[field]:
        assert init(init_expression, {field: value})[field] == value


@pytest.mark.parametrize("mode", ["File", "FastFile"])
def test_training_input_mode_takes_file_or_fastfile(init_expression: str, mode: str) -> None:
    assert init(init_expression, {"training_input_mode": mode})["training_input_mode"] == mode


def test_one_training_host_is_always_accepted(init_expression: str) -> None:
    assert init(init_expression, {"training_instance_count": 1})["training_instance_count"] == 1


@pytest.mark.parametrize("distributed", [False, True])
def test_several_training_hosts_need_a_data_parallel_model(
    project_root: Path, monkeypatch: pytest.MonkeyPatch, distributed: bool
) -> None:
    monkeypatch.setattr(model, "DISTRIBUTED_TRAINING", distributed, raising=False)
    expression = rendered_init(project_root)
    if distributed:
        assert init(expression, {"training_instance_count": 2})["training_instance_count"] == 2
        return
    with pytest.raises(jsonata.QueryEvaluationError) as refused:
        init(expression, {"training_instance_count": 2})
    assert refused.value.cause == (
        f'execution input: "training_instance_count" must be 1: {model.LIBRARY} trains on one host '
        "(declare DISTRIBUTED_TRAINING in model.py for a data-parallel estimator), got 2"
    )


def test_the_baked_model_decides_whether_several_hosts_are_accepted(init_expression: str) -> None:
    # No monkeypatch: what this bake's model.py declares (scikit-learn: one host; xgboost, lightgbm:
    # data-parallel once model.py says DISTRIBUTED_TRAINING = True).
    if getattr(model, "DISTRIBUTED_TRAINING", False):
        assert init(init_expression, {"training_instance_count": 3})["training_instance_count"] == 3
    else:
        with pytest.raises(jsonata.QueryEvaluationError, match=f"{model.LIBRARY} trains on one host"):
            init(init_expression, {"training_instance_count": 3})


def bad_inputs() -> list[tuple[dict[str, Any], str]]:
    param = numeric_param()
    high = param["high"]
    return [
        ({"tune": "yes"}, '"tune" must be true or false'),
        ({"dry_run": 1}, '"dry_run" must be true or false'),
        ({"max_jobs": 0}, '"max_jobs" must be an integer from 1 to 100'),
        ({"max_jobs": 2.5}, '"max_jobs" must be an integer'),
        ({"max_jobs": 2, "max_parallel_jobs": 3}, '"max_parallel_jobs" must be an integer from 1 to 2'),
        ({"training_instance_count": 0}, '"training_instance_count" must be an integer'),
        ({"volume_size_gb": 0}, '"volume_size_gb" must be an integer from 1 to 16384, got 0'),
        ({"volume_size_gb": 16385}, '"volume_size_gb" must be an integer from 1 to 16384, got 16385'),
        ({"volume_size_gb": 10.5}, '"volume_size_gb" must be an integer from 1 to 16384, got 10.5'),
        ({"volume_size_gb": "10"}, '"volume_size_gb" must be an integer from 1 to 16384, got 10'),
        ({"max_runtime_seconds": 0}, '"max_runtime_seconds" must be an integer from 1 to 777600, got 0'),
        (
            {"max_runtime_seconds": 777601},
            '"max_runtime_seconds" must be an integer from 1 to 777600, got 777601',
        ),
        ({"training_input_mode": "Pipe"}, '"training_input_mode" must be File or FastFile, got Pipe'),
        ({"training_input_mode": "file"}, '"training_input_mode" must be File or FastFile, got file'),
        ({"training_input_mode": 1}, '"training_input_mode" must be File or FastFile, got 1'),
        (
            {"training_instance_type": "m5.large"},
            '"training_instance_type" must be a SageMaker instance type',
        ),
        ({"data": "s3://x/"}, '"data" must be an object'),
        (
            {"data": {"train": "s3://another-bucket/train/"}},
            f'"data.train" must be an S3 prefix ending in / under s3://{BUCKET}/',
        ),
        ({"data": {"holdout": f"s3://{BUCKET}/holdout"}}, '"data.holdout" must be an S3 prefix ending in /'),
        ({"data": {"holdout": f"s3://{BUCKET}/../x/"}}, '"data.holdout" must be an S3 prefix'),
        ({"data": {"test": f"s3://{BUCKET}/t/"}}, '"data.test" is not a data channel'),
        ({"hyperparameters": ["a=1"]}, '"hyperparameters" must be an object'),
        (
            {"hyperparameters": {"no_such_parameter": 1}},
            '"hyperparameters.no_such_parameter" is not a hyperparameter',
        ),
        ({"hyperparameters": {param["name"]: "abc"}}, f'"hyperparameters.{param["name"]}" must be a number'),
        (
            {"hyperparameters": {param["name"]: high * 10 + 1}},
            f'"hyperparameters.{param["name"]}" must be at most',
        ),
        (
            {"hyperparameters": {param["name"]: True}},
            f'"hyperparameters.{param["name"]}" must be a number or a string',
        ),
        # Gate thresholds and the endpoint name belong to the project, not to a run.
        ({"gate_minimum": 0.1}, '"gate_minimum" is not a field of the execution input'),
        ({"endpoint_name": "other"}, '"endpoint_name" is not a field of the execution input'),
        ([], "must be a JSON object"),
    ]


@pytest.mark.parametrize(("execution_input", "message"), bad_inputs())
def test_bad_input_is_refused_naming_the_field(
    init_expression: str, execution_input: Any, message: str
) -> None:
    with pytest.raises(jsonata.QueryEvaluationError) as refused:
        init(init_expression, execution_input)
    assert refused.value.cause.startswith("execution input: ")
    assert message in refused.value.cause


def test_categorical_overrides_must_be_one_of_the_values(init_expression: str) -> None:
    categorical = [p for p in hyperparameters.spec() if p["kind"] == "categorical" and p["values"]]
    if not categorical:
        pytest.skip("this model has no categorical hyperparameter with a fixed list of values")
    param = categorical[0]
    assert init(init_expression, {"hyperparameters": {param["name"]: param["values"][-1]}})[
        "hyperparameters"
    ][param["name"]] == str(param["values"][-1])
    with pytest.raises(
        jsonata.QueryEvaluationError, match=f'hyperparameters.{param["name"]}" must be one of'
    ):
        init(init_expression, {"hyperparameters": {param["name"]: "not-a-value"}})


# ------------------------------------------------------------------ whole executions (process runtime)
@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator("process", tmp_path_factory.mktemp("pipeline-inputs"), Console(file=io.StringIO()))
    try:
        emulator.start()
        yield emulator
    finally:
        emulator.close()


def execute(emulator: Emulator, name: str, execution_input: dict[str, Any]) -> tuple[Any, dict, list[dict]]:
    outcome = emulator.execute(name, execution_input=execution_input, timeout=900)
    described = emulator.cp.client("stepfunctions").describe_execution(executionArn=outcome.arn)
    output = json.loads(described["output"]) if described.get("output") else {}
    mine = [n for n in emulator.notifications() if f"Execution {name} " in n.get("Message", "")]
    return outcome, output, mine


def training_job(emulator: Emulator, name: str) -> dict[str, Any]:
    sm = emulator.cp.client("sagemaker")
    return sm.describe_training_job(TrainingJobName=name)


def endpoint_model(emulator: Emulator) -> str:
    sm = emulator.cp.client("sagemaker")
    config = sm.describe_endpoint(EndpointName=settings.ENDPOINT_NAME)["EndpointConfigName"]
    model = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
    return sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"]


@pytest.mark.slow
def test_default_input_trains_with_the_defaults_and_deploys(emulator: Emulator) -> None:
    outcome, output, notified = execute(emulator, "inputs-default", {})
    assert outcome.status == "SUCCEEDED", outcome.error
    assert output["outcome"] == "deployed"
    job = training_job(emulator, f"train-{run_id('inputs-default')}")
    assert {k: v for k, v in job["HyperParameters"].items() if k in hyperparameters.defaults()} == (
        hyperparameters.defaults()
    )
    assert job["EnableNetworkIsolation"] is True
    sizes = (definition.VOLUME_SIZE_GB, definition.MAX_RUNTIME_SECONDS, definition.TRAINING_INPUT_MODE)
    assert sizes_of_training(job) == sizes
    for step in ("validate", "evaluate"):
        assert sizes_of_processing(emulator, f"{step}-{run_id('inputs-default')}") == sizes[:2]
    # Production serves the verified copy under models/<sha256>/, not the training output.
    assert endpoint_model(emulator) == output["model_data_url"]
    assert output["model_data_url"].endswith(f"/models/{output['sha256']}/model.tar.gz")
    assert [n["Subject"] for n in notified] == ["ML pipeline: new model deployed"]


def sizes_of_training(job: dict[str, Any]) -> tuple[int, int, str]:
    """(volume GB, runtime limit, input mode) of a training job or a tuning job's definition;
    every channel must carry the job's input mode (a channel's InputMode overrides it)."""
    mode = job["AlgorithmSpecification"]["TrainingInputMode"]
    assert {c["InputMode"] for c in job["InputDataConfig"]} == {mode}
    return job["ResourceConfig"]["VolumeSizeInGB"], job["StoppingCondition"]["MaxRuntimeInSeconds"], mode


def sizes_of_processing(emulator: Emulator, name: str) -> tuple[int, int]:
    job = emulator.cp.client("sagemaker").describe_processing_job(ProcessingJobName=name)
    volume = job["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"]
    return volume, job["StoppingCondition"]["MaxRuntimeInSeconds"]


# Not the defaults: each value must come from the execution input.
RUN_SIZES = {"volume_size_gb": 12, "max_runtime_seconds": 1800, "training_input_mode": "FastFile"}


def run_id(execution: str) -> str:
    """The Init state's $id: the MD5 of the execution name, in every job and resource name."""
    return hashlib.md5(execution.encode()).hexdigest()


@pytest.mark.slow
def test_tune_true_runs_a_tuning_job_over_the_model_spec(emulator: Emulator) -> None:
    execution_input = {"tune": True, "max_jobs": 2, "max_parallel_jobs": 1, **RUN_SIZES}
    outcome, output, notified = execute(emulator, "inputs-tune", execution_input)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert output["outcome"] in ("deployed", "blocked")  # the gate may keep the model already live
    assert "Tune" in [s["name"] for s in outcome.states] and "Train" not in [
        s["name"] for s in outcome.states
    ]
    sm = emulator.cp.client("sagemaker")
    job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=run_id("inputs-tune"))
    config = job["HyperParameterTuningJobConfig"]
    assert config["ResourceLimits"]["MaxNumberOfTrainingJobs"] == 2
    assert config["ResourceLimits"]["MaxParallelTrainingJobs"] == 1
    searched = {k: v for k, v in config["ParameterRanges"].items() if v}
    assert searched == {k: v for k, v in hyperparameters.tuning_ranges().items() if v}
    assert job["TrainingJobDefinition"]["EnableNetworkIsolation"] is True
    assert sizes_of_training(job["TrainingJobDefinition"]) == tuple(RUN_SIZES.values())
    for step in ("validate", "evaluate"):
        assert sizes_of_processing(emulator, f"{step}-{run_id('inputs-tune')}") == (12, 1800)
    assert len(notified) == 1


@pytest.mark.slow
def test_overridden_hyperparameters_reach_the_training_job(emulator: Emulator) -> None:
    param = numeric_param()
    value = param["low"] if param["kind"] == "float" else int(param["low"])
    execution_input = {"hyperparameters": {param["name"]: value}, **RUN_SIZES}
    outcome, _, _ = execute(emulator, "inputs-override", execution_input)
    assert outcome.status == "SUCCEEDED", outcome.error
    job = training_job(emulator, f"train-{run_id('inputs-override')}")
    assert sizes_of_training(job) == tuple(RUN_SIZES.values())  # FastFile: the step reads files alike
    assert job["HyperParameters"][param["name"]] == json.dumps(value)
    others = {k: v for k, v in hyperparameters.defaults().items() if k != param["name"]}
    assert {k: job["HyperParameters"][k] for k in others} == others


@pytest.mark.slow
def test_dry_run_does_everything_but_the_endpoint_change(emulator: Emulator) -> None:
    before = endpoint_model(emulator)
    outcome, output, notified = execute(emulator, "inputs-dry-run", {"dry_run": True})
    assert outcome.status == "SUCCEEDED", outcome.error
    assert output["outcome"] in ("dry_run", "blocked")
    assert endpoint_model(emulator) == before
    ran = [s["name"] for s in outcome.states]
    assert "UpdateEndpoint" not in ran and "CreateEndpoint" not in ran
    if output["outcome"] == "dry_run":  # the gate passed: the model and config exist, unused
        sm = emulator.cp.client("sagemaker")
        assert (
            sm.describe_model(ModelName=output["model"])["PrimaryContainer"]["ModelDataUrl"]
            == output["model_data_url"]
        )
        assert notified[0]["Subject"] == "ML pipeline: dry run passed, production unchanged"


@pytest.mark.slow
def test_another_data_prefix_is_what_every_job_reads(emulator: Emulator) -> None:
    s3 = emulator.cp.client("s3")
    prefix = "other/2026-11"
    for channel in ("train", "holdout"):
        for item in s3.list_objects_v2(Bucket=settings.S3_BUCKET, Prefix=f"data/{channel}/").get(
            "Contents", []
        ):
            s3.copy_object(
                Bucket=settings.S3_BUCKET,
                Key=item["Key"].replace("data/", f"{prefix}/", 1),
                CopySource={"Bucket": settings.S3_BUCKET, "Key": item["Key"]},
            )
    # The default prefix is moved away for this run: reading it would fail the run.
    moved = s3.list_objects_v2(Bucket=settings.S3_BUCKET, Prefix="data/").get("Contents", [])
    bodies = {
        item["Key"]: s3.get_object(Bucket=settings.S3_BUCKET, Key=item["Key"])["Body"].read()
        for item in moved
    }
    for key in bodies:
        s3.delete_object(Bucket=settings.S3_BUCKET, Key=key)
    data = {
        "train": f"s3://{settings.S3_BUCKET}/{prefix}/train/",
        "holdout": f"s3://{settings.S3_BUCKET}/{prefix}/holdout/",
    }
    try:
        outcome, output, _ = execute(emulator, "inputs-prefix", {"data": data})
    finally:
        for key, body in bodies.items():
            s3.put_object(Bucket=settings.S3_BUCKET, Key=key, Body=body)
    assert outcome.status == "SUCCEEDED", outcome.error
    assert output["outcome"] in ("deployed", "blocked")  # trained either way; the gate decides
    sm = emulator.cp.client("sagemaker")
    validate = sm.describe_processing_job(ProcessingJobName=f"validate-{run_id('inputs-prefix')}")
    assert validate["ProcessingInputs"][0]["S3Input"]["S3Uri"] == data["train"]
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in training_job(emulator, f"train-{run_id('inputs-prefix')}")["InputDataConfig"]
    }
    assert channels == {"train": data["train"], "validation": data["holdout"]}
    evaluate = sm.describe_processing_job(ProcessingJobName=f"evaluate-{run_id('inputs-prefix')}")
    assert {i["InputName"]: i["S3Input"]["S3Uri"] for i in evaluate["ProcessingInputs"]}["holdout"] == data[
        "holdout"
    ]


def one_per_field() -> list[tuple[Any, str]]:
    """The first bad input of each top-level field (and the unknown-field and non-object cases)."""
    seen, cases = set(), []
    for execution_input, message in bad_inputs():
        field = message.split('"')[1].split(".")[0] if '"' in message else message
        if field not in seen:
            seen.add(field)
            cases.append((execution_input, message))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize(("execution_input", "message"), one_per_field())
def test_a_bad_input_fails_the_execution_at_once(
    emulator: Emulator, execution_input: Any, message: str
) -> None:
    sfn = emulator.cp.client("stepfunctions")
    name = f"inputs-bad-{abs(hash(json.dumps(execution_input))) % 10**8}"
    arn = sfn.start_execution(
        stateMachineArn=emulator.stack.state_machine_arn, name=name, input=json.dumps(execution_input)
    )["executionArn"]
    described = emulator.cp.wait_for_execution(arn, timeout_s=120)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.QueryEvaluationError"
    assert message in described["cause"]
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in emulator.cp.history(arn)
        if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Init"]  # nothing ran: no job, no endpoint change
