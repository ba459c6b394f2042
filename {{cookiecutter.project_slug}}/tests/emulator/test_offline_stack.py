"""The deployed stack offline as on AWS: its resources, blue/green rollbacks, the schedule.

One stack, deployed as ``make local-pipeline`` deploys it, with an endpoint serving a trained model
(process runtime), for three groups of tests:

- what CloudFormation creates exists offline (moto skips it): the bucket policy (enforced per
  principal), the public access block, the alarms, the OIDC provider; resources whose condition is
  false are not listed;
- rollbacks: each test runs the state machine's states from UpdateEndpoint on, as rendered at deploy
(UpdateEndpoint, the WaitForEndpoint -> DescribeEndpoint -> EndpointReady loop, EndpointRolledBack,
NotifyFailure, Failed), after one Pass state that sets the variables the earlier states set.
  Endpoint times run 60x faster than SageMaker's (provisioning 120 s -> 2 s, the 600 s baking
  period -> 10 s, an alarm period -> 1 s), so the wait loop, polling every second, turns several times;
- the schedule fires through the template's rule, its target input and its role.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import cfn
from {{ cookiecutter.package_name }}_emulator import endpoint_check, principals, schedule
from {{ cookiecutter.package_name }}_emulator.blue_green import EndpointClock, FleetFault
from {{ cookiecutter.package_name }}_emulator.control_plane import ControlPlane, resolved
from {{ cookiecutter.package_name }}_emulator.data_plane import DataPlane
from {{ cookiecutter.package_name }}_emulator.runtimes.process import ProcessRuntime
from {{ cookiecutter.package_name }}_emulator.traffic import ProductionTraffic

# Updating lasts provisioning_s + rollback_s (3 s here) against a 1 s poll: the wait loop turns
# more than once even on a loaded CI machine (CI saw one poll with provisioning_s alone).
CLOCK = EndpointClock(speedup=60.0, provisioning_s=120.0, rollback_s=60.0)
BUCKET, ENDPOINT = settings.S3_BUCKET, settings.ENDPOINT_NAME


def tarball(folder: Path | None = None, junk: bytes = b"") -> bytes:
    """model.tar.gz of ``folder``'s files, or of one junk model file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if folder is not None:
            for path in sorted(folder.iterdir()):
                tar.add(path, arcname=path.name)
        else:
            info = tarfile.TarInfo("metadata.json")
            info.size = len(junk)
            tar.addfile(info, io.BytesIO(junk))
    return buffer.getvalue()


class Deployment:
    """The control plane with the stack, the data plane on the process runtime, the endpoint serving v1."""

    def __init__(self, cp: ControlPlane, plane: DataPlane, hosting_role: str, model_folder: Path) -> None:
        self.cp, self.plane, self.role, self.model_folder = cp, plane, hosting_role, model_folder
        self.sm = cp.client("sagemaker")

    def config(self, run_id: str, model: bytes) -> str:
        """Model and endpoint config ``config-<run_id>``, as the state machine names them."""
        key = f"runs/{run_id}/model.tar.gz"  # outside models/: only the state machine writes there
        self.cp.client("s3").put_object(Bucket=BUCKET, Key=key, Body=model)
        self.sm.create_model(
            ModelName=f"model-{run_id}",
            ExecutionRoleArn=self.role,
            PrimaryContainer={"Image": "local:latest", "ModelDataUrl": f"s3://{BUCKET}/{key}"},
        )
        self.sm.create_endpoint_config(
            EndpointConfigName=f"config-{run_id}",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"model-{run_id}",
                    "InitialInstanceCount": 1,
                    "InstanceType": settings.INFERENCE_INSTANCE_TYPE,
                }
            ],
        )
        return f"config-{run_id}"

    def run_deploy_states(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The rendered definition's states from UpdateEndpoint on; (DescribeExecution, history)."""
        states = json.loads(self.cp.stack.definition)["States"]
        reachable, todo = {}, ["UpdateEndpoint"]
        while todo:
            name = todo.pop()
            if name in reachable:
                continue
            reachable[name] = states[name]
            todo += _next_states(states[name])
        setup = {
            "Type": "Pass",
            "Assign": {"id": run_id, "model_key": f"runs/{run_id}/model.tar.gz", "evaluation": {}, "run": {}},
            "Next": "UpdateEndpoint",
        }
        definition = {"QueryLanguage": "JSONata", "StartAt": "Setup", "States": {"Setup": setup, **reachable}}
        described = self.cp.run_definition(definition, name=f"deploy-{run_id}", timeout_s=300)
        return described, self.cp.history(described["executionArn"])


def _next_states(state: dict[str, Any]) -> list[str]:
    found = [state.get("Next"), state.get("Default")]
    found += [c.get("Next") for c in state.get("Choices", [])]
    found += [c.get("Next") for c in state.get("Catch", [])]
    return [name for name in found if name]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, served: Any) -> Iterator[Deployment]:
    _, _, model_folder = served
    work = tmp_path_factory.mktemp("rollback")
    with ControlPlane() as cp:
        stack = cp.deploy()
        cp.client("iam").create_role(RoleName="local-emulator", AssumeRolePolicyDocument="{}")
        runtime = ProcessRuntime(cp.endpoint_url, cp.region, work)
        with DataPlane(
            runtime, clock=EndpointClock(CLOCK.speedup, CLOCK.provisioning_s, CLOCK.rollback_s)
        ) as plane:
            deployment = Deployment(cp, plane, stack.outputs["HostingRoleArn"], model_folder)
            deployment.sm.create_endpoint(
                EndpointName=ENDPOINT, EndpointConfigName=deployment.config("v1", tarball(model_folder))
            )
            deployment.sm.get_waiter("endpoint_in_service").wait(
                EndpointName=ENDPOINT, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
            yield deployment


def polls(history: list[dict[str, Any]]) -> int:
    return sum(
        1
        for e in history
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "DescribeEndpoint"
    )


def entered(history: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def assert_rolled_back(
    deployed: Deployment, run_id: str, described: dict[str, Any], history: list[dict[str, Any]]
) -> dict[str, Any]:
    assert described["status"] == "FAILED"
    assert described["error"] == "EndpointRolledBack", described.get("cause")
    assert "EndpointRolledBack" in entered(history) and "NotifySuccess" not in entered(history)
    assert polls(history) >= 2  # the wait loop turned more than once
    endpoint = deployed.sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == "config-v1"  # the old config
    assert f"Update to config-{run_id}" in endpoint["FailureReason"]
    assert endpoint["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 600
    assert "config-v1" in described["cause"] and f"config-{run_id}" in described["cause"]
    return endpoint


def test_a_model_that_fails_to_load_is_rolled_back(deployed: Deployment) -> None:
    run_id = uuid.uuid4().hex
    deployed.config(run_id, tarball(junk=b"{not json"))  # the serving stack refuses it: /ping never answers
    described, history = deployed.run_deploy_states(run_id)
    endpoint = assert_rolled_back(deployed, run_id, described, history)
    assert "failed:" in endpoint["FailureReason"]


def test_a_fleet_that_fails_ping_is_rolled_back(deployed: Deployment) -> None:
    run_id = uuid.uuid4().hex
    deployed.config(run_id, tarball(deployed.model_folder))
    deployed.plane.inject(FleetFault.PING)
    described, history = deployed.run_deploy_states(run_id)
    endpoint = assert_rolled_back(deployed, run_id, described, history)
    assert "did not pass the ping health check" in endpoint["FailureReason"]


def test_5xx_during_baking_fires_the_alarm_and_rolls_back(deployed: Deployment, served: Any) -> None:
    _, holdout, _ = served
    run_id = uuid.uuid4().hex
    deployed.config(run_id, tarball(deployed.model_folder))
    deployed.plane.inject(FleetFault.INVOCATIONS_5XX)
    row = endpoint_check.requests_for(holdout, rows=1)[0].body.decode()
    traffic = ProductionTraffic(
        deployed.cp.client, ENDPOINT, row.encode(), per_minute=40, clock=deployed.plane.clock
    )
    with traffic:
        described, history = deployed.run_deploy_states(run_id)
    endpoint = assert_rolled_back(deployed, run_id, described, history)
    alarm = f"{settings.STACK_NAME}-endpoint-5xx"
    assert f"alarm {alarm} went to ALARM during the baking period" in endpoint["FailureReason"]
    cloudwatch = deployed.cp.client("cloudwatch")
    assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "ALARM"
    assert traffic.answers[424] > 0  # production clients saw the new fleet's 500s as ModelError
    # The old model serves again.
    reply = deployed.cp.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, Body=row.encode(), ContentType="text/csv"
    )
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 200


# ------------------------------------------------------------------ what CloudFormation creates


def template_properties(deployed: Deployment, project_root: Path, logical_id: str) -> dict[str, Any]:
    """A resource's properties as CloudFormation renders them for this stack."""
    template = cfn.load_template(project_root / "infra" / "template.yaml")
    stack = deployed.cp.stack
    resolver = cfn.Intrinsics.of_stack(
        template, stack.name, stack.resources, deployed.cp.region, deployed.cp.client
    )
    return dict(resolved(template["Resources"][logical_id]["Properties"], resolver))


def test_bucket_policy_is_the_templates_and_names_the_stack_roles(
    deployed: Deployment, project_root: Path
) -> None:
    policy = json.loads(deployed.cp.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert policy == template_properties(deployed, project_root, "DataBucketPolicy")["PolicyDocument"]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert {"DenyInsecureTransport", "ModelsAreWrittenOnce", "OnlyVerifyArtifactDeletesModels"} <= set(
        statements
    )
    # Each step's prefix names its own role as the only writer (the stack's outputs).
    writers = {
        sid: statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        for sid, statement in statements.items()
        if sid.startswith("Only") and "ArnNotEquals" in statement.get("Condition", {})
    }
    outputs = deployed.cp.stack.outputs
    assert writers["OnlyTrainingWritesTraining"] == outputs["TrainingRoleArn"]
    assert writers["OnlyValidateWritesValidation"] == outputs["ValidateRoleArn"]
    assert writers["OnlyEvaluateWritesEvaluation"] == outputs["EvaluateRoleArn"]
    assert statements["DenyInsecureTransport"]["Resource"] == [
        f"arn:aws:s3:::{BUCKET}",
        f"arn:aws:s3:::{BUCKET}/*",
    ]
    blocked = deployed.cp.client("s3").get_public_access_block(Bucket=BUCKET)[
        "PublicAccessBlockConfiguration"
    ]
    assert blocked == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    assert deployed.cp.client("s3").get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


def _s3_as(deployed: Deployment, access_key: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=deployed.cp.endpoint_url,
        region_name=deployed.cp.region,
        aws_access_key_id=access_key,
        aws_secret_access_key="x",  # pragma: allowlist secret (moto dummy)
    )


def test_only_the_state_machine_writes_models_and_only_it_and_verify_delete(deployed: Deployment) -> None:
    stack, account, region = deployed.cp.stack, "123456789012", deployed.cp.region
    others = deployed.cp.client("s3")  # the emulator's own keys: none of the stack's roles
    with pytest.raises(ClientError) as denied:
        others.put_object(Bucket=BUCKET, Key="models/x/model.tar.gz", Body=b"1")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "s3:PutObject" in str(denied.value) and "explicit deny in a resource-based policy" in str(
        denied.value
    )
    others.put_object(Bucket=BUCKET, Key="data/x.csv", Body=b"1")  # the rest of the bucket is theirs
    machine = _s3_as(deployed, principals.INTERPRETER_KEY)
    with pytest.raises(ClientError, match="AccessDenied"):  # a write that could replace a promoted model
        machine.put_object(Bucket=BUCKET, Key="models/x/model.tar.gz", Body=b"1")
    machine.put_object(Bucket=BUCKET, Key="models/x/model.tar.gz", Body=b"1", IfNoneMatch="*")
    check_endpoint = principals.key_for_function(f"{stack.name}-check-endpoint", region, account)
    with pytest.raises(ClientError, match="AccessDenied"):
        _s3_as(deployed, check_endpoint).delete_object(Bucket=BUCKET, Key="models/x/model.tar.gz")
    verify = principals.key_for_function(f"{stack.name}-verify-artifact", region, account)
    _s3_as(deployed, verify).delete_object(Bucket=BUCKET, Key="models/x/model.tar.gz")


def test_alarms_exist_with_the_templates_metrics_and_thresholds(
    deployed: Deployment, project_root: Path
) -> None:
    cloudwatch = deployed.cp.client("cloudwatch")
    template = cfn.load_template(project_root / "infra" / "template.yaml")
    for logical_id in cfn.resources_of_type(template, "AWS::CloudWatch::Alarm"):
        want = template_properties(deployed, project_root, logical_id)
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[want["AlarmName"]])["MetricAlarms"]
        assert deployed.cp.stack.resources[logical_id] == want["AlarmName"]
        assert alarm["Threshold"] == float(want["Threshold"])
        assert alarm["EvaluationPeriods"] == int(want["EvaluationPeriods"])
        assert alarm["ComparisonOperator"] == want["ComparisonOperator"]
        if "Metrics" in want:
            assert [
                m.get("Expression") or m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"]
            ] == [m.get("Expression") or m["MetricStat"]["Metric"]["MetricName"] for m in want["Metrics"]]
        else:
            assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
                want["Namespace"],
                want["MetricName"],
                want["Statistic"],
            )
    errors = cloudwatch.describe_alarms(AlarmNames=[f"{settings.STACK_NAME}-endpoint-5xx"])["MetricAlarms"][0]
    assert (
        errors["Threshold"] == 5.0 and "IF(FILL(invocations, 0) >= 20" in errors["Metrics"][-1]["Expression"]
    )


def test_oidc_provider_exists_and_false_conditions_are_not_listed(deployed: Deployment) -> None:
    iam, cfn_client = deployed.cp.client("iam"), deployed.cp.client("cloudformation")
    arn = deployed.cp.stack.resources["GitLabOidcProvider"]
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert arn.endswith(":oidc-provider/gitlab.com") and provider["ClientIDList"] == ["sts.amazonaws.com"]
    listed = cfn_client.list_stack_resources(StackName=deployed.cp.stack.name)["StackResourceSummaries"]
    described = cfn_client.describe_stack_resources(StackName=deployed.cp.stack.name)["StackResources"]
    for resources in (listed, described):
        assert all(
            r["LogicalResourceId"] and r["ResourceType"] and r["PhysicalResourceId"] for r in resources
        )
        names = {r["LogicalResourceId"] for r in resources}
        # EnableEndpointAutoscaling "false" and no notification email by default: conditions false.
        assert not names & {"EndpointScalableTarget", "EndpointScalingPolicy", "NotificationSubscription"}
        assert {"DataBucketPolicy", "EndpointErrorsAlarm", "GitLabOidcProvider"} <= names


# ------------------------------------------------------------------ the schedule


def test_the_schedule_starts_the_pipeline_through_its_rule_and_role(deployed: Deployment) -> None:
    target = schedule.scheduled_target(deployed.cp, deployed.cp.stack.name)
    assert target.logical_id == "ScheduleRule" and target.schedule == settings.SCHEDULE_EXPRESSION
    assert target.role_arn.endswith(f"role/{deployed.cp.stack.name}-schedule") and target.input == "{}"
    arn = schedule.fire(deployed.cp, target)
    sfn = deployed.cp.client("stepfunctions")
    try:
        execution = sfn.describe_execution(executionArn=arn)
        assert execution["stateMachineArn"] == deployed.cp.stack.state_machine_arn
        assert json.loads(execution["input"]) == {}
    finally:
        sfn.stop_execution(executionArn=arn)


def test_the_schedule_fails_as_eventbridge_does_without_the_roles_permission(deployed: Deployment) -> None:
    iam = deployed.cp.client("iam")
    target = schedule.scheduled_target(deployed.cp, deployed.cp.stack.name)
    role = target.role_arn.rsplit("/", 1)[-1]

    def allow(action: str) -> None:
        statement = {"Effect": "Allow", "Action": action, "Resource": target.target_arn}
        document = {"Version": "2012-10-17", "Statement": [statement]}
        iam.put_role_policy(RoleName=role, PolicyName="start-pipeline", PolicyDocument=json.dumps(document))

    allow("states:DescribeExecution")  # the template's statement, minus its action
    try:
        with pytest.raises(schedule.ScheduleError, match=r"AccessDenied: .* states:StartExecution"):
            schedule.fire(deployed.cp, target)
    finally:
        allow("states:StartExecution")  # as the template has it
    with pytest.raises(schedule.ScheduleError, match="DISABLED"):
        schedule.fire(deployed.cp, dataclasses.replace(target, state="DISABLED"))
    with pytest.raises(schedule.ScheduleError, match="trust policy"):
        schedule.fire(deployed.cp, target, account="999999999999")  # aws:SourceAccount no longer matches
