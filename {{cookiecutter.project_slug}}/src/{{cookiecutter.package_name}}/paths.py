"""The SageMaker /opt/ml contract in one place.

SageMaker mounts everything under /opt/ml. ``OPT_ML_ROOT`` re-roots the tree so the same code
runs in tests and in the process runtime against a plain folder.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def root() -> Path:
    return Path(os.environ.get("OPT_ML_ROOT", "/opt/ml"))


def input_config() -> Path:
    return root() / "input" / "config"


def hyperparameters_file() -> Path:
    return input_config() / "hyperparameters.json"


def input_data_config_file() -> Path:
    return input_config() / "inputdataconfig.json"


def resource_config_file() -> Path:
    return input_config() / "resourceconfig.json"


def channel(name: str) -> Path:
    return root() / "input" / "data" / name


def model_dir() -> Path:
    return root() / "model"


def output_dir() -> Path:
    return root() / "output"


def failure_file() -> Path:
    return output_dir() / "failure"


def write_failure(reason: str) -> None:
    """Leave ``reason`` where SageMaker reads it: ``/opt/ml/output/failure`` (a job's FailureReason)
    and ``/opt/ml/output/message`` (a processing job's ExitMessage, first 1 KB).
    https://docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html

    A folder that cannot be written is reported on stderr; the caller still exits non-zero.
    """
    for target in (failure_file(), output_dir() / "message"):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(reason + "\n", encoding="utf-8")
        except OSError as error:
            print(f"warning: cannot write {target}: {error}", file=sys.stderr)
