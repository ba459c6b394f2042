"""The offline control plane: the real stack deployed to moto, its state machine run by the hooks.

No data plane is attached here, so SageMaker jobs are moto's records that complete at once: the
tests drive the pipeline's ASL through its branches by placing the decision files the validate and
evaluate steps would write.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from {{ cookiecutter.package_name }} import model_digest, settings, tarballs
from {{ cookiecutter.package_name }}_deploy.definition import render_definition, render_model_tokens
from {{ cookiecutter.package_name }}_emulator import principals
from {{ cookiecutter.package_name }}_emulator import sample_data as samples
from {{ cookiecutter.package_name }}_emulator.control_plane import LOCAL_IMAGE_URI, ControlPlane
from {{ cookiecutter.package_name }}_emulator.moto_server import ControlPlaneError


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, project_root: Path):
    with ControlPlane(project_root=project_root) as cp:
        started = time.monotonic()
        stack = cp.deploy()
        print(f"\nstack deployed in {time.monotonic() - started:.2f} s: {stack.timings}")
        cp.upload_sample_data(tmp_path_factory.mktemp("sample"))
        yield cp, stack


def test_stack_is_created_with_the_local_image(deployed) -> None:
    cp, stack = deployed
    described = cp.client("cloudformation").describe_stacks(StackName=stack.name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
    assert parameters["ImageUri"] == LOCAL_IMAGE_URI == f"{settings.PROJECT_SLUG}:latest"
    assert stack.outputs["DataBucketName"] == settings.S3_BUCKET
    assert stack.state_machine_arn == stack.outputs["StateMachineArn"]


def test_state_machine_runs_the_rendered_definition(deployed, project_root: Path) -> None:
    cp, stack = deployed
    described = cp.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)
    assert described["definition"] == stack.definition
    definition = json.loads(described["definition"])
    assert "${" not in described["definition"], "every DefinitionSubstitutions token is filled"

    # Same result as rendering the project's file with values read back from the services.
    function_arn = cp.client("lambda").get_function_configuration(
        FunctionName=stack.outputs["CheckEndpointFunctionName"]
    )["FunctionArn"]
    topic_arn = cp.client("sns").list_topics()["Topics"][0]["TopicArn"]
    states = definition["States"]
    assert states["FindProduction"]["Arguments"]["FunctionName"] == function_arn
    assert (
        states["NotifyFailure"]["Arguments"]["TopicArn"] == topic_arn == stack.outputs["NotificationTopicArn"]
    )
    assert states["ValidateData"]["Arguments"]["AppSpecification"]["ImageUri"] == LOCAL_IMAGE_URI
    assert states["ValidateData"]["Arguments"]["RoleArn"] == stack.outputs["ValidateRoleArn"]
    assert states["Evaluate"]["Arguments"]["RoleArn"] == stack.outputs["EvaluateRoleArn"]
    # The model spec's tokens are filled at upload (deploy), CloudFormation's from the stack.
    asl = render_model_tokens((project_root / "pipeline" / "state_machine.asl.json").read_text())
    verify_arn = cp.client("lambda").get_function_configuration(FunctionName=f"{stack.name}-verify-artifact")[
        "FunctionArn"
    ]
    substitutions = {
        "DataBucket": settings.S3_BUCKET,
        "ImageUri": LOCAL_IMAGE_URI,
        "Region": settings.AWS_REGION,
        "TrainingRoleArn": stack.outputs["TrainingRoleArn"],
        "ValidateRoleArn": stack.outputs["ValidateRoleArn"],
        "EvaluateRoleArn": stack.outputs["EvaluateRoleArn"],
        "HostingRoleArn": stack.outputs["HostingRoleArn"],
        "CheckEndpointFunctionArn": function_arn,
        "VerifyArtifactFunctionArn": verify_arn,
        "NotificationTopicArn": topic_arn,
        "EndpointName": settings.ENDPOINT_NAME,
        "TrainingInstanceType": settings.TRAINING_INSTANCE_TYPE,
        "ProcessingInstanceType": settings.TRAINING_INSTANCE_TYPE,
        "InferenceInstanceType": settings.INFERENCE_INSTANCE_TYPE,
        "InitialInstanceCount": settings.INITIAL_INSTANCE_COUNT,
        "EndpointPollSeconds": 1,
        "ErrorsAlarmName": stack.outputs["EndpointErrorsAlarmName"],
        "LatencyAlarmName": stack.outputs["EndpointLatencyAlarmName"],
    }
    assert definition == json.loads(render_definition(asl, substitutions))


def test_lambda_answers_that_there_is_no_endpoint_yet(deployed) -> None:
    cp, stack = deployed
    response = cp.client("lambda").invoke(
        FunctionName=stack.outputs["CheckEndpointFunctionName"],
        Payload=json.dumps({"EndpointName": settings.ENDPOINT_NAME}).encode(),
    )
    assert "FunctionError" not in response, response["Payload"].read()
    assert json.loads(response["Payload"].read()) == {
        "exists": False,
        "status": None,
        "endpoint_config_name": None,
        "model_name": None,
        "model_data_url": "none",
    }


def test_sample_data_is_in_the_bucket(deployed, tmp_path: Path) -> None:
    cp, _ = deployed
    s3 = cp.client("s3")

    def rows(key: str) -> list[dict[str, str]]:
        body = s3.get_object(Bucket=settings.S3_BUCKET, Key=key)["Body"].read().decode()
        return list(csv.DictReader(io.StringIO(body)))

    train, holdout = rows("data/train/train.csv"), rows("data/holdout/holdout.csv")
    # The whole sample set of this bake's problem type (breast cancer, wine or diabetes).
    assert len(train) + len(holdout) == samples.load_table().n_rows
    assert settings.LABEL_COLUMN in train[0]

    cp.upload_sample_data(tmp_path, drifted=True)
    drifted = rows("data/train/train.csv")
    assert len(drifted) == len(train)
    shifted = samples.DRIFTED_FEATURES[0]
    assert drifted[0][shifted] != train[0][shifted]
    cp.upload_sample_data(tmp_path)  # back to the plain data for the other tests


@pytest.mark.slow
def test_one_control_plane_per_process_and_stop_frees_the_port(deployed, project_root: Path) -> None:
    # moto's state is process-global: a second in-process server would share and reset it.
    with pytest.raises(ControlPlaneError, match="another ControlPlane"):
        ControlPlane(project_root=project_root).start()
    # Start/stop in a fresh interpreter (this one's moto state belongs to the fixture).
    port = fresh_interpreter(
        project_root,
        """
        import os
        from {{ cookiecutter.package_name }}_emulator.control_plane import ControlPlane

        cp = ControlPlane().start()
        port = cp.port
        assert os.environ["MOTO_PORT"] == str(port)
        cp.stop()
        assert "MOTO_PORT" not in os.environ
        print(port)
        """,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", int(port.split()[-1])))  # free again


# -- The pipeline's own ASL through its branches (moto's SageMaker records, no containers) -----
# The training state of this variant, and the moto class whose status the failure test sets.
TRAIN_STATE = "Tune" if settings.ENABLE_HPO else "Train"


@pytest.fixture(scope="module", autouse=True)
def _best_training_job(deployed) -> None:
    """moto's own tuning job names "FakeTrainingJobName" as its best job: make that job exist so
    DescribeBestTrainingJob works (the data plane's tuning jobs run real ones)."""
    if settings.ENABLE_HPO:
        cp, stack = deployed
        cp.client("sagemaker").create_training_job(
            TrainingJobName="FakeTrainingJobName",
            RoleArn=stack.outputs["TrainingRoleArn"],
            AlgorithmSpecification={"TrainingImage": LOCAL_IMAGE_URI, "TrainingInputMode": "File"},
            OutputDataConfig={"S3OutputPath": f"s3://{settings.S3_BUCKET}/runs/hpo/training"},
            ResourceConfig={"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 600},
        )


# The role that writes each step's outputs (the bucket policy lets no other principal write there).
STEP_ROLES = {"validation": "ValidateRoleArn", "evaluation": "EvaluateRoleArn", "training": "TrainingRoleArn"}


def s3_as_role(cp: ControlPlane, step: str) -> Any:
    """An S3 client that signs as the step's job role, as SageMaker moves a job's data."""
    role = cp.stack.outputs[STEP_ROLES[step]]
    return boto3.client(
        "s3",
        endpoint_url=cp.endpoint_url,
        region_name=cp.region,
        aws_access_key_id=principals.key_for(role),
        aws_secret_access_key="testing",  # pragma: allowlist secret (moto dummy)
    )


def put_decision(cp: ControlPlane, execution: str, step: str, decision: dict) -> None:
    key = f"runs/{execution}/{step}/decision.json"
    s3_as_role(cp, step).put_object(Bucket=settings.S3_BUCKET, Key=key, Body=json.dumps(decision).encode())


def run_pipeline(cp: ControlPlane, name: str) -> tuple[dict, list[str]]:
    arn = cp.start_execution(name)
    described = cp.wait_for_execution(arn, timeout_s=120)
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in cp.history(arn) if "stateEnteredEventDetails" in e
    ]
    return described, entered


def test_missing_validation_decision_fails_through_notify_failure(deployed) -> None:
    cp, _ = deployed
    described, entered = run_pipeline(cp, "no-decision")
    assert entered == [
        "Init",
        "CheckOtherRuns",
        "OnlyRun",
        "FindProduction",
        "ValidateData",
        "ReadValidation",
        "NotifyFailure",
        "Failed",
    ]
    # The Fail state re-raises the caught error (States.* ones as PipelineFailed), with
    # "<state>: <caught error>: <cause>".
    assert (described["status"], described["error"]) == ("FAILED", "S3.NoSuchKeyException")
    assert described["cause"].startswith("ReadValidation: S3.NoSuchKeyException: ")


def test_drift_block_is_a_successful_blocked_run(deployed) -> None:
    cp, _ = deployed
    put_decision(
        cp,
        "drift-block",
        "validation",
        {"step": "validate", "decision": "block", "reasons": ["mean_radius drifted"]},
    )
    described, entered = run_pipeline(cp, "drift-block")
    assert described["status"] == "SUCCEEDED"
    assert entered[-3:] == ["DriftGate", "NotifyBlocked", "Blocked"]
    assert json.loads(described["output"]) == {
        "outcome": "blocked",
        "step": "validate",
        "reasons": ["mean_radius drifted"],
    }


def test_gate_block_stops_before_deploying(deployed) -> None:
    cp, _ = deployed
    put_decision(cp, "gate-block", "validation", {"decision": "proceed", "reasons": []})
    put_decision(cp, "gate-block", "evaluation", {"promote": False, "reasons": ["roc_auc 0.70 < 0.80"]})
    described, entered = run_pipeline(cp, "gate-block")
    assert described["status"] == "SUCCEEDED"
    assert TRAIN_STATE in entered
    assert entered[-3:] == ["ModelGate", "NotifyBlocked", "Blocked"]
    assert "CreateModel" not in entered


def candidate_key(cp: ControlPlane, execution: str) -> str:
    """Where the run's candidate is read from: its training job's output, or with tuning the best
    job's, moto's "FakeTrainingJobName" (``_best_training_job``)."""
    if settings.ENABLE_HPO:
        job = cp.client("sagemaker").describe_training_job(TrainingJobName="FakeTrainingJobName")
        return job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix(f"s3://{settings.S3_BUCKET}/")
    run_id = hashlib.md5(execution.encode()).hexdigest()
    return f"runs/{execution}/training/train-{run_id}/output/model.tar.gz"


def place_candidate(cp: ControlPlane, execution: str, folder: Path) -> dict[str, str]:
    """moto's training job writes nothing: put a candidate model.tar.gz where the run's training
    job would, and return its digests as Evaluate records them (archive and files manifest)."""
    (folder / "metadata.json").parent.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.json").write_text('{"a candidate": true}')
    (folder / "model.onnx").write_bytes(b"candidate model bytes")
    archive = tarballs.create(folder, folder.parent / f"{folder.name}.tar.gz").read_bytes()
    s3_as_role(cp, "training").put_object(
        Bucket=settings.S3_BUCKET, Key=candidate_key(cp, execution), Body=archive
    )
    return {
        "candidate_sha256": hashlib.sha256(archive).hexdigest(),
        "model_files_sha256": model_digest.folder_manifest(folder)[1],
    }


def test_a_promoting_decision_without_a_files_digest_is_invalid(deployed, tmp_path: Path) -> None:
    """Issue 22: the gate's files digest is what serving checks; without it nothing is promoted."""
    cp, _ = deployed
    digests = place_candidate(cp, "no-files-digest", tmp_path / "model")
    put_decision(cp, "no-files-digest", "validation", {"decision": "proceed", "reasons": []})
    decision = {"promote": True, "reasons": [], "candidate_sha256": digests["candidate_sha256"]}
    put_decision(cp, "no-files-digest", "evaluation", decision)
    described, entered = run_pipeline(cp, "no-files-digest")
    assert entered[-4:] == ["ReadEvaluation", "ModelGate", "NotifyFailure", "Failed"]
    assert (described["status"], described["error"]) == ("FAILED", "InvalidDecision")
    assert described["cause"] == (
        "ModelGate: InvalidDecision: evaluation/decision.json promotes a candidate without a "
        "model_files_sha256 of 64 hex characters: nothing to verify the deployed model against"
    )


@pytest.mark.slow
def test_promoted_model_creates_the_endpoint(deployed, tmp_path: Path) -> None:
    cp, _ = deployed
    # The candidate where training would write it, and its digests in the decision as Evaluate
    # records them (the promotion step verifies the copy against both).
    run_id = hashlib.md5(b"promote").hexdigest()
    digests = place_candidate(cp, "promote", tmp_path / "model")
    put_decision(cp, "promote", "validation", {"decision": "proceed", "reasons": []})
    sha = digests["candidate_sha256"]
    put_decision(cp, "promote", "evaluation", {"promote": True, "reasons": [], **digests})
    described, entered = run_pipeline(cp, "promote")
    assert described["status"] == "SUCCEEDED", f"{described.get('error')}: {described.get('cause')}"
    for state in (
        "CreateModel",
        "CreateEndpointConfig",
        "PromoteCandidate",
        "VerifyArtifact",
        "CheckProduction",
        "CreateEndpoint",
        "DescribeEndpoint",
        "EndpointReady",
        "NotifySuccess",
    ):
        assert state in entered
    output = json.loads(described["output"])
    assert output["model_data_url"] == f"s3://{settings.S3_BUCKET}/models/{sha}/model.tar.gz"
    assert output["model_files_sha256"] == digests["model_files_sha256"]
    endpoint = cp.client("sagemaker").describe_endpoint(EndpointName=settings.ENDPOINT_NAME)
    assert endpoint["EndpointConfigName"] == f"config-{run_id}"
    # The serving container gets the gated files' digest from this execution's decision.
    model = cp.client("sagemaker").describe_model(ModelName=f"model-{run_id}")
    assert model["PrimaryContainer"]["Environment"] == {
        "PIPELINE_EXECUTION": "promote",
        "MODEL_FILES_SHA256": digests["model_files_sha256"],
    }


def test_a_files_digest_that_is_not_the_archives_fails_before_any_model(deployed, tmp_path: Path) -> None:
    """A decision whose model_files_sha256 does not describe the gated archive (forged, or a broken
    evaluate) fails VerifyArtifact: no model, no endpoint change, the copy kept (it is the archive)."""
    cp, _ = deployed
    digests = place_candidate(cp, "files-mismatch", tmp_path / "model")
    forged = hashlib.sha256(b"some other folder").hexdigest()
    put_decision(cp, "files-mismatch", "validation", {"decision": "proceed", "reasons": []})
    decision = {"promote": True, "reasons": [], **digests, "model_files_sha256": forged}
    put_decision(cp, "files-mismatch", "evaluation", decision)
    described, entered = run_pipeline(cp, "files-mismatch")
    assert (described["status"], described["error"]) == ("FAILED", "ModelFilesMismatch")
    assert f"manifest sha256 is {digests['model_files_sha256']}, not {forged}" in described["cause"]
    assert "VerifyArtifact" in entered and "CreateModel" not in entered


def test_failed_training_job_fails_the_run_with_its_reason(deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    # A failed .sync job is States.TaskFailed with the job description (FailureReason included)
    # as Cause, as AWS reports it; Train's Catch -> NotifyFailure -> Fail passes both on.
    from moto.sagemaker import models

    job_class, status = (
        (models.HyperParameterTuningJob, "hyper_parameter_tuning_job_status")
        if settings.ENABLE_HPO
        else (models.FakeTrainingJob, "training_job_status")
    )
    original = job_class.__init__

    def failing(self, *args, **kwargs):
        original(self, *args, **kwargs)
        setattr(self, status, "Failed")
        self.failure_reason = "AlgorithmError: needs two classes"

    monkeypatch.setattr(job_class, "__init__", failing)
    cp, _ = deployed
    put_decision(cp, "train-fails", "validation", {"decision": "proceed", "reasons": []})
    described, entered = run_pipeline(cp, "train-fails")
    assert entered[-3:] == [TRAIN_STATE, "NotifyFailure", "Failed"]
    assert (described["status"], described["error"]) == ("FAILED", "PipelineFailed")
    state, _, rest = described["cause"].partition(": ")
    error, _, cause = rest.partition(": ")
    assert (state, error) == (TRAIN_STATE, "States.TaskFailed")
    assert json.loads(cause)["FailureReason"] == "AlgorithmError: needs two classes"


@pytest.mark.docker
def test_containers_reach_moto_through_the_bridge_address(project_root: Path, local_image: str) -> None:
    # SageMaker local mode hands containers AWS_ENDPOINT_URL_S3: it must be an address a
    # container on the default bridge can reach.
    seen = fresh_interpreter(
        project_root,
        """
        import subprocess
        from {{ cookiecutter.package_name }}_emulator.control_plane import ControlPlane

        LIST = "import boto3; print(*(b['Name'] for b in boto3.client('s3').list_buckets()['Buckets']))"
        with ControlPlane(host="0.0.0.0") as cp:
            location = {"LocationConstraint": cp.region}
            cp.client("s3").create_bucket(Bucket="seen-from-a-container", CreateBucketConfiguration=location)
            env = {"AWS_ENDPOINT_URL": cp.container_endpoint_url, "AWS_DEFAULT_REGION": cp.region,
                   "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
            flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
            command = ["docker", "run", "--rm", "--entrypoint", "python3", *flags, IMAGE, "-c", LIST]
            print(subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout)
        """.replace("IMAGE", repr(local_image)),
    )
    assert "seen-from-a-container" in seen.split()


def fresh_interpreter(project_root: Path, script: str) -> str:
    """Run ``script`` in a new Python process (its own moto state); return its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "MOTO_PORT"}
    env["PYTHONPATH"] = str(project_root / "src")
    command = [sys.executable, "-c", textwrap.dedent(script)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout
