"""infra/template.yaml: cfn-lint, the security properties the pipeline relies on, and a moto deploy."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_deploy import cfn, clients, inputs, stack

# Resource types moto 5.2.5's CloudFormation skips with a warning (the stack still completes).
# The offline emulator does not need them; the list changes only with a moto upgrade.
MOTO_SKIPS = {
    "AWS::S3::BucketPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::IAM::OIDCProvider",
    "AWS::SNS::Subscription",
}


@pytest.fixture(scope="module")
def template_text(project_root: Path) -> str:
    return (project_root / "infra" / "template.yaml").read_text()


@pytest.fixture(scope="module")
def template(template_text) -> dict:
    return cfn.loads(template_text)


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


def statements(role: dict) -> list[dict]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


@pytest.mark.slow  # ~10 s; `make lint` runs cfn-lint on every change as well
def test_cfn_lint_reports_no_errors_or_warnings(template_text):
    from cfnlint.api import lint_all

    found = [str(match) for match in lint_all(template_text) if match.rule.id[0] in "EW"]
    assert found == []


def test_parameter_defaults_are_the_baked_answers(template):
    params = template["Parameters"]
    assert params["DataBucketName"]["Default"] == settings.S3_BUCKET
    assert params["ArtifactBucketName"]["Default"] == settings.ARTIFACT_BUCKET
    assert params["ImageRepositoryName"]["Default"] == settings.ECR_REPOSITORY
    assert params["EndpointName"]["Default"] == settings.ENDPOINT_NAME
    assert params["ScheduleExpression"]["Default"] == settings.SCHEDULE_EXPRESSION
    assert params["InferenceInstanceType"]["Default"] == settings.INFERENCE_INSTANCE_TYPE
    assert params["InitialInstanceCount"]["Default"] == settings.INITIAL_INSTANCE_COUNT
    assert params["GitLabProjectPath"]["Default"] == settings.GITLAB_PROJECT_PATH
    assert "Stage" not in params


def test_data_bucket_is_encrypted_versioned_private_and_tls_only(resources):
    props = resources["DataBucket"]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"
    ]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    policy = {s["Sid"]: s for s in resources["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    deny = policy["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_image_repository_scans_and_expires(resources):
    props = resources["ImageRepository"]["Properties"]
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    rules = json.loads(props["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert {r["selection"]["tagStatus"] for r in rules} == {"untagged", "any"}


def test_pass_role_only_for_the_sagemaker_roles_to_sagemaker(resources):
    expected = {
        "StateMachineRole": {"TrainingRole.Arn", "ValidateRole.Arn", "EvaluateRole.Arn", "HostingRole.Arn"},
        "CiRole": {"HostingRole.Arn"},
    }  # fmt: skip
    for name, roles in expected.items():
        passes = [s for s in statements(resources[name]) if s["Action"] == "iam:PassRole"]
        to_sagemaker = [
            s
            for s in passes
            if s["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
        ]
        (statement,) = to_sagemaker
        assert {".".join(r["Fn::GetAtt"]) for r in statement["Resource"]} == roles, name
        for statement in passes:
            assert "Condition" in statement and statement["Resource"] != "*", name


def test_wildcard_resources_only_where_the_api_has_none(resources):
    # These actions have no resource-level permissions (or are condition-scoped).
    allowed = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "cloudformation:ValidateTemplate",
               "application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingPolicies",
               "application-autoscaling:DescribeScalingActivities"}  # fmt: skip
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in statements(resource):
            if statement["Resource"] == "*" and statement["Effect"] == "Allow":  # a Deny on "*" is fine
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                assert set(actions) <= allowed, (name, actions)


def test_ci_role_trusts_one_project_on_its_default_branch(resources, template):
    (trust,) = resources["CiRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    condition = trust["Condition"]["StringEquals"]
    assert condition["gitlab.com:aud"] == "sts.amazonaws.com"
    assert condition["gitlab.com:sub"] == {
        "Fn::Sub": "project_path:${GitLabProjectPath}:ref_type:branch:ref:${GitLabDefaultBranch}"
    }
    assert resources["GitLabOidcProvider"]["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    # No static keys anywhere.
    assert not [r for r in resources.values() if r["Type"] in {"AWS::IAM::AccessKey", "AWS::IAM::User"}]


def test_substitution_values_stay_resolvable_offline(template):
    """Plain !Ref, !GetAtt X.Arn or a !Sub over parameters/pseudo parameters: the emulator resolves them."""
    names = (
        set(template["Parameters"])
        | set(template["Resources"])
        | {"AWS::Region", "AWS::StackName", "AWS::AccountId"}
    )
    for key, value in template["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"].items():
        ((tag, arg),) = value.items()
        if tag == "Ref":
            assert arg in names, key
        elif tag == "Fn::GetAtt":
            assert arg[1] == "Arn" and arg[0] in template["Resources"], key
        else:
            assert tag == "Fn::Sub" and isinstance(arg, str), key


def test_schedule_starts_the_state_machine_with_its_own_role(resources):
    (target,) = resources["ScheduleRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "StateMachine"}
    assert resources["ScheduleRule"]["Properties"]["ScheduleExpression"] == {"Ref": "ScheduleExpression"}
    (start,) = statements(resources["ScheduleRole"])
    assert start == {
        "Effect": "Allow",
        "Action": "states:StartExecution",
        "Resource": {"Ref": "StateMachine"},
    }


def test_optional_parts_have_conditions(resources):
    assert resources["NotificationSubscription"]["Condition"] == "HasNotificationEmail"
    assert resources["EndpointScalableTarget"]["Condition"] == "EnableAutoscaling"
    assert resources["GitLabOidcProvider"]["Condition"] == "CreateOidcProvider"


def test_stack_deploys_into_moto(project_root, monkeypatch):
    moto = pytest.importorskip("moto")
    from botocore.client import BaseClient

    calls: dict[str, dict] = {}
    original = BaseClient._make_api_call

    def record(client, operation, params):
        calls.setdefault(operation, params)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    request = inputs.InfraRequest(
        project_root,
        image_uri="local/image:latest",
        poll_seconds=0.05,
        parameters={"NotificationEmail": "ops@example.com", "EnableEndpointAutoscaling": "false"},
    )
    from {{ cookiecutter.package_name }}_emulator.integrations import s3_corrections

    # s3_corrections: moto denies TLS requests under a TLS-only bucket policy; AWS does not.
    with warnings.catch_warnings(record=True) as caught, moto.mock_aws(), s3_corrections():
        warnings.simplefilter("always")
        aws = clients.Aws(region=settings.AWS_REGION)
        outputs = stack.deploy_infra(aws, request, progress=lambda _: None)
        cfn = aws.client("cloudformation")
        created = {
            r["LogicalResourceId"]: r["ResourceType"]
            for r in cfn.list_stack_resources(StackName=settings.STACK_NAME)["StackResourceSummaries"]
        }
        lambda_config = aws.client("lambda").get_function(FunctionName=outputs["CheckEndpointFunctionName"])
        machine = aws.client("stepfunctions").describe_state_machine(
            stateMachineArn=outputs["StateMachineArn"]
        )
    skipped = {
        m.group(1)
        for w in caught
        if (m := re.search(r"Tried to parse (\S+) but it's not supported", str(w.message)))
    }
    assert skipped == MOTO_SKIPS
    assert {"DataBucket", "ImageRepository", "NotificationTopic", "CheckEndpointFunction", "StateMachine",
            "ScheduleRule", "CiRole", "TrainingRole", "ValidateRole", "EvaluateRole", "HostingRole",
            "PermissionsBoundary"} <= set(created)  # fmt: skip
    assert set(outputs) >= {
        "DataBucketName", "ArtifactBucketName", "ImageRepositoryUri", "StateMachineArn", "NotificationTopicArn",
        "StateMachineRoleArn", "CheckEndpointFunctionName", "CheckEndpointFunctionArn",
        "EndpointName", "EndpointErrorsAlarmName", "EndpointLatencyAlarmName", "CiRoleArn", "CloudFormationRoleArn",
        "TrainingRoleArn", "ValidateRoleArn", "EvaluateRoleArn", "HostingRoleArn", "PermissionsBoundaryArn",
    }  # fmt: skip
    assert outputs["DataBucketName"] == settings.S3_BUCKET
    # Every role is named: CloudFormation refuses CAPABILITY_IAM alone for named IAM resources.
    assert calls["CreateStack"]["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert outputs["EndpointErrorsAlarmName"] == f"{settings.STACK_NAME}-endpoint-5xx"
    assert lambda_config["Configuration"]["Handler"] == "handler.handler"
    # Known moto gap: DefinitionS3Location is not read; the emulator renders and sets the definition.
    assert machine["name"] == f"{settings.STACK_NAME}-pipeline"


# ---------------------------------------------------------------- the auto-rollback alarm


def _metric_math(expression: str, values: dict[str, float | None]) -> float | None:
    """CloudWatch's IF/FILL over one datapoint per metric (None = no datapoint), for this expression only.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html"""
    python = re.sub(r"\bIF\(", "_if(", re.sub(r"\bFILL\(", "_fill(", expression))
    if re.search(r"[^\w\s()*/+<>=.,-]", python):
        raise NotImplementedError(expression)

    def _if(condition, yes, no):
        return yes if condition else no

    def _fill(value, default):
        return default if value is None else value

    try:
        return eval(
            python, {"__builtins__": {}, "_if": _if, "_fill": _fill}, dict(values)
        )  # only names, numbers, IF/FILL
    except TypeError:  # arithmetic on a missing datapoint: no result for that minute
        return None


@pytest.mark.parametrize(
    ("errors", "invocations", "breaching"),
    [
        pytest.param(1, 2, False, id="one-5xx-in-two-calls-is-too-few-to-judge"),
        pytest.param(3, 19, False, id="below-the-minimum-invocations"),
        pytest.param(None, 500, False, id="no-5xx-datapoint-means-no-errors"),
        pytest.param(20, 1000, False, id="2-percent"),
        pytest.param(60, 1000, True, id="6-percent"),
        pytest.param(2, 20, True, id="10-percent-at-the-minimum"),
        pytest.param(None, None, False, id="no-traffic"),
    ],
)
def test_rollback_alarm_is_an_error_rate_over_a_minimum_of_invocations(
    template, errors, invocations, breaching
):
    params = template["Parameters"]
    alarm = template["Resources"]["EndpointErrorsAlarm"]["Properties"]
    (rate,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {"Invocation5XXErrors", "Invocations"}
    assert {s["Stat"] for s in stats.values()} == {"Sum"}
    expression = rate["Expression"]["Fn::Sub"].replace(
        "${ErrorRateMinInvocations}", str(params["ErrorRateMinInvocations"]["Default"])
    )
    threshold = float(params["ErrorRatePercent"]["Default"])
    assert alarm["Threshold"] == {"Ref": "ErrorRatePercent"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 2  # two bad minutes in a row
    value = _metric_math(expression, {"errors": errors, "invocations": invocations})
    assert (value is not None and value > threshold) is breaching
