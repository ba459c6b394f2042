"""The default and the tune input end to end on Docker (SageMaker local mode, the built image).

A module of its own: moto's state is per process, so these runs need the process-runtime emulator of
test_pipeline_inputs.py (module-scoped) to have stopped first; pytest tears module fixtures down at
the module boundary.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_pipeline_inputs import endpoint_model, execute

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_emulator.run import Emulator
from {{ cookiecutter.package_name }}_emulator.runtimes import image_exists


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize(
    "execution_input", [{}, {"tune": True, "max_jobs": 2, "max_parallel_jobs": 1}], ids=["train", "tune"]
)
def test_default_and_tune_on_docker(
    tmp_path: Path, project_root: Path, execution_input: dict[str, Any]
) -> None:
    image = os.environ.get("IMAGE", f"{settings.PROJECT_SLUG}:latest")  # the Makefile's variable
    if not image_exists(image):
        subprocess.run(["make", "build-offline"], cwd=project_root, check=True, timeout=1800)
    emulator = Emulator("docker", tmp_path, Console(file=io.StringIO()), image)
    try:
        emulator.start()
        outcome, output, notified = execute(emulator, "docker-run", execution_input)
        assert outcome.status == "SUCCEEDED", outcome.error
        assert output["outcome"] == "deployed"
        assert endpoint_model(emulator) == output["model_data_url"]
        assert output["run"]["tune"] is execution_input.get("tune", settings.ENABLE_HPO)
        assert [n["Subject"] for n in notified] == ["ML pipeline: new model deployed"]
    finally:
        emulator.close()
