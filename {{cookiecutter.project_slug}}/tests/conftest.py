"""Shared fixtures and the Docker marker policy.

Tests marked ``docker`` need a daemon. Without one they skip with the reason, except under
``CI=true``: there a missing daemon fails them, so a green CI run means they really ran.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@cache
def docker_available() -> tuple[bool, str]:
    try:
        result = subprocess.run(["docker", "version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"docker CLI not usable: {error}"
    if result.returncode != 0:
        return (
            False,
            f"no Docker daemon: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'docker info failed'}",
        )
    return True, ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ok, reason = (
        docker_available() if any(item.get_closest_marker("docker") for item in items) else (True, "")
    )
    if ok:
        return
    in_ci = os.environ.get("CI", "").lower() == "true"
    for item in items:
        if item.get_closest_marker("docker"):
            if in_ci:
                item.add_marker(pytest.mark.usefixtures("_docker_required_in_ci"))
            else:
                item.add_marker(pytest.mark.skip(reason=f"Docker test skipped: {reason}"))


@pytest.fixture
def _docker_required_in_ci() -> None:
    pytest.fail("CI=true but no Docker daemon answers: Docker tests must run in CI")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def local_image(project_root: Path) -> str:
    """The project's image for Docker tests (the Makefile's IMAGE, default <slug>:latest), built once
    per session by `make build-offline` when absent: no registry here, and the test order must not
    decide whether a Docker test finds it."""
    from {{ cookiecutter.package_name }} import settings
    from {{ cookiecutter.package_name }}_emulator.runtimes import image_exists

    image = os.environ.get("IMAGE", f"{settings.PROJECT_SLUG}:latest")
    if not image_exists(image):
        subprocess.run(
            ["make", "build-offline", f"IMAGE={image}"], cwd=project_root, check=True, timeout=1800
        )
    return image


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample dataset written once per session: train, holdout and a drifted train copy."""
    from {{ cookiecutter.package_name }}_emulator import sample_data as sd

    return sd.write(tmp_path_factory.mktemp("data"), with_drift=True)


@pytest.fixture(scope="session")
def trained_model(sample_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """The default model trained on the sample training set, saved and loaded back once per session."""
    from {{ cookiecutter.package_name }}.data import read_csv
    from {{ cookiecutter.package_name }}.predictor import Predictor

    model_dir = tmp_path_factory.mktemp("trained-model")
    Predictor.fit(read_csv(sample_data["train"]), {}).save(model_dir)
    return Predictor.load(model_dir)


@pytest.fixture(scope="module")
def cp():
    """A moto control plane per module with the role the emulator tests' resources use (moto state
    is global, so one at a time: module scope tears it down before the next module starts one)."""
    from {{ cookiecutter.package_name }}_emulator.control_plane import ControlPlane

    with ControlPlane() as control_plane:
        control_plane.client("iam").create_role(RoleName="local-emulator", AssumeRolePolicyDocument="{}")
        yield control_plane


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory):
    """(predictor, holdout Table, model folder) for this bake's problem type, trained on the
    tests/support/datasets.py set (string labels, categorical columns, an unseen category in the holdout)."""
    import datasets

    from {{ cookiecutter.package_name }}.predictor import Predictor
    from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE

    train, holdout = datasets.for_problem(PROBLEM_TYPE)
    model_dir = tmp_path_factory.mktemp("served-model")
    Predictor.fit(train, {}).save(model_dir)
    return Predictor.load(model_dir), holdout, model_dir
