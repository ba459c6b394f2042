"""The SageMaker /opt/ml contract in one place.

SageMaker mounts everything under /opt/ml. ``OPT_ML_ROOT`` re-roots the tree so the same code
runs in tests and in the process runtime against a plain folder.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html
"""

from __future__ import annotations

import os
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


def output_data_dir() -> Path:
    return output_dir() / "data"


def failure_file() -> Path:
    return output_dir() / "failure"


def processing_dir() -> Path:
    """Processing jobs mount their inputs and outputs below /opt/ml/processing."""
    return root() / "processing"
