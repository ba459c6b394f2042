"""The one patching mechanism: reversible, pinned, and the emulator leaves moto as it found it."""

from __future__ import annotations

import types

import pytest

from {{ cookiecutter.package_name }}_emulator import integrations, patches


class Owner:
    inherited = "base"


class Child(Owner):
    own = "own"


def test_replace_and_undo_restore_own_inherited_and_mapping_values() -> None:
    module = types.SimpleNamespace(function=len)
    table = {"s3": "s3"}
    p = patches.Patches("demo", pins={})
    assert p.replace(module, "function", max) is len
    assert p.replace(Child, "inherited", "patched") == "base"
    p.replace(Child, "own", "patched")
    p.replace_item(table, "s3", "S3")
    p.replace_item(table, "sagemaker", "SageMaker")
    assert (module.function, Child.inherited, Child.own, table) == (
        max,
        "patched",
        "patched",
        {"s3": "S3", "sagemaker": "SageMaker"},
    )
    p.undo()
    assert module.function is len
    assert "inherited" not in vars(Child) and Child.inherited == "base"
    assert Child.own == "own"
    assert table == {"s3": "s3"}
    assert not p.active


def test_replace_refuses_a_missing_symbol_by_name() -> None:
    with pytest.raises(patches.MotoInternalsChanged, match="no attribute 'nope'"):
        patches.Patches("demo").replace(Owner, "nope", 1)


def test_private_names_the_symbol_and_the_pin() -> None:
    with pytest.raises(patches.MotoInternalsChanged, match=r"moto\.nope\.thing is missing .*moto==5\.2\.5"):
        patches.private("moto.nope", "thing")


def test_a_failing_install_leaves_nothing_patched() -> None:
    target = types.SimpleNamespace(value=1)
    p = patches.Patches("broken", pins={})

    def install() -> None:
        p.replace(target, "value", 2)
        raise RuntimeError("half way")

    component = types.SimpleNamespace(install=install, uninstall=p.undo)
    with pytest.raises(RuntimeError, match="half way"):
        patches.install(component)
    assert target.value == 1 and component not in patches._installed


def test_integrations_uninstall_restores_every_moto_symbol() -> None:
    from moto.awslambda.models import LambdaFunction
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
    from moto.stepfunctions.parser.asl.utils import json_path

    originals = (
        state_task_factory.state_task_service_for,
        vars(LambdaFunction)["_invoke_lambda"],
        json_path.extract_json,
    )
    was_active = integrations.PATCHES.active
    integrations.uninstall()
    clean = (
        state_task_factory.state_task_service_for,
        vars(LambdaFunction)["_invoke_lambda"],
        json_path.extract_json,
    )
    integrations.install()
    assert state_task_factory.state_task_service_for is not clean[0]
    assert vars(LambdaFunction)["_invoke_lambda"] is not clean[1]
    integrations.uninstall()
    assert (
        state_task_factory.state_task_service_for,
        vars(LambdaFunction)["_invoke_lambda"],
        json_path.extract_json,
    ) == clean
    if was_active:
        integrations.install()
        assert state_task_factory.state_task_service_for is not clean[0]
    else:
        assert clean == originals
