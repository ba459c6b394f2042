"""Deploy helpers: the poller and the one CloudFormation loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}_deploy import cfn, polling

PROJECT = Path(__file__).resolve().parents[2]


def test_poller_returns_the_first_done_description_and_names_what_timed_out() -> None:
    states = iter(["Creating", "Creating", "InService"])
    slept: list[float] = []
    assert polling.wait_until(
        lambda: next(states), lambda s: s == "InService", 10, 0.5, sleep=slept.append
    ) == ("InService")
    assert slept == [0.5, 0.5]
    with pytest.raises(polling.WaitTimeout, match="endpoint x not done after 0 s") as caught:
        polling.wait_until(lambda: "Creating", lambda s: False, 0, 0.1, what="endpoint x")
    assert caught.value.last == "Creating"


def test_cfn_loader_gives_the_long_form_of_short_tags() -> None:
    template = cfn.loads(
        "Resources:\n  A:\n    Type: X\n    Properties:\n"
        "      R: !Ref B\n      G: !GetAtt B.Arn\n      S: !Sub '${B}-x'\n      J: !Join ['-', [a, !Ref B]]\n"
    )
    props = template["Resources"]["A"]["Properties"]
    assert props == {
        "R": {"Ref": "B"},
        "G": {"Fn::GetAtt": ["B", "Arn"]},
        "S": {"Fn::Sub": "${B}-x"},
        "J": {"Fn::Join": ["-", ["a", {"Ref": "B"}]]},
    }


def test_cfn_loader_reads_the_project_template() -> None:
    template = cfn.load_template(PROJECT / "infra" / "template.yaml")
    assert cfn.resources_of_type(template, "AWS::StepFunctions::StateMachine")
