"""The process runtime end to end: ``train`` then ``serve --no-nginx`` as subprocesses over HTTP.

The same modules the image runs, against a folder tree re-rooted with OPT_ML_ROOT, so the
contract (files in, model out, predictions over HTTP) is checked without Docker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from {{ cookiecutter.package_name }}.data import read_csv
from {{ cookiecutter.package_name }}.metrics import METRICS
from {{ cookiecutter.package_name }}.model import HYPERPARAMETERS
from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.serving.compiled import TOLERANCE
from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE
from {{ cookiecutter.package_name }}_emulator.runtimes.process import wait_healthy

PACKAGE = "{{ cookiecutter.package_name }}"
pytestmark = pytest.mark.slow
# The first numeric hyperparameter of model.py, set to its upper bound for the run.
PARAM = next(p for p in HYPERPARAMETERS if p.kind != "categorical")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_ping(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """The process runtime's own health check, with the server's stderr when it fails."""
    try:
        wait_healthy(url, process, timeout)
    except RuntimeError as error:
        stderr = process.stderr.read() if process.poll() is not None and process.stderr else ""
        raise AssertionError(f"{error}\n{stderr}") from None


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sample_data, project_root) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("opt_ml")
    shutil.copytree(sample_data["train"].parent, root / "input" / "data" / "train")
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps({PARAM.name: str(PARAM.high)}))
    env = {**os.environ, "OPT_ML_ROOT": str(root), "PYTHONPATH": str(project_root / "src")}
    result = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.steps.train"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"train:{METRICS[PROBLEM_TYPE][0]}=")
    return root, env


@pytest.fixture(scope="module")
def server(trained):
    _, env = trained
    port = free_port()
    command = [sys.executable, "-m", f"{PACKAGE}.steps.serve", "--no-nginx", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_ping(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def test_training_wrote_the_model_the_server_loads(trained):
    root, _ = trained
    assert Predictor.load(root / "model").hyperparameters[PARAM.name] == PARAM.high


def _numbers(reply: requests.Response) -> list[float]:
    """The per-row number of a CSV answer: the score (binary) or the value (regression)."""
    return [float(line.split(",")[-1]) for line in reply.text.splitlines()]


def test_http_predictions_equal_the_model(server, trained, sample_data):
    """The library's answers, or those of the ONNX copy training verified to within TOLERANCE."""
    url, _ = server
    predictor = Predictor.load(trained[0] / "model")
    X = read_csv(sample_data["holdout"]).matrix(predictor.feature_names)
    expected = predictor.predict(X)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in X)
    reply = requests.post(f"{url}/invocations", data=body, headers={"Content-Type": "text/csv"}, timeout=30)
    assert reply.status_code == 200, reply.text
    answer = requests.post(f"{url}/invocations", json={"instances": X[:3].tolist()}, timeout=30).json()
    rows = answer["predictions"]
    if PROBLEM_TYPE == "binary":
        assert _numbers(reply) == pytest.approx(expected.scores.tolist(), abs=TOLERANCE)
        assert [p["label"] for p in rows] == expected.labels[:3].tolist()
    elif PROBLEM_TYPE == "multiclass":
        header, *lines = reply.text.splitlines()
        assert header.split(",") == ["label", *map(str, predictor.classes)]
        probabilities = [[float(v) for v in line.split(",")[1:]] for line in lines]
        assert np.asarray(probabilities) == pytest.approx(expected.probabilities, abs=TOLERANCE)
        assert [p["label"] for p in rows] == expected.labels[:3].tolist()
    else:
        assert _numbers(reply) == pytest.approx(expected.values.tolist(), abs=TOLERANCE)
        assert [p["value"] for p in rows] == pytest.approx(expected.values[:3].tolist(), abs=TOLERANCE)


def test_bad_input_is_a_4xx_and_the_workers_survive(server, trained):
    url, process = server
    reply = requests.post(
        f"{url}/invocations", data="1,2,x", headers={"Content-Type": "text/csv"}, timeout=30
    )
    n_features = len(Predictor.load(trained[0] / "model").feature_names)
    assert (
        reply.status_code == 400 and reply.json()["error"] == f"row 1: expected {n_features} features, got 3"
    )
    assert requests.get(f"{url}/execution-parameters", timeout=5).json()["MaxConcurrentTransforms"] == 2
    assert process.poll() is None and requests.get(f"{url}/ping", timeout=5).status_code == 200


def test_sigterm_stops_the_server_cleanly(trained):
    _, env = trained
    port = free_port()
    command = [sys.executable, "-m", f"{PACKAGE}.steps.serve", "--no-nginx", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    wait_for_ping(f"http://127.0.0.1:{port}", process)
    process.send_signal(signal.SIGTERM)  # what SageMaker sends when it stops an endpoint
    assert process.wait(timeout=30) == 0
