"""The default and the tune input end to end on Docker (SageMaker local mode, the built image).

A module of its own: moto's state is per process, so these runs need the process-runtime emulator of
test_pipeline_inputs.py (module-scoped) to have stopped first; pytest tears module fixtures down at
the module boundary.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_pipeline_inputs import endpoint_model, execute

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}_emulator.run import Emulator


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize(
    "execution_input", [{}, {"tune": True, "max_jobs": 2, "max_parallel_jobs": 1}], ids=["train", "tune"]
)
def test_default_and_tune_on_docker(
    tmp_path: Path, local_image: str, execution_input: dict[str, Any]
) -> None:
    emulator = Emulator("docker", tmp_path, Console(file=io.StringIO()), local_image)
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
