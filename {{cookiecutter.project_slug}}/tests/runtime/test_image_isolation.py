"""The image trains and serves the way an isolated SageMaker job runs it (issue 15).

``EnableNetworkIsolation`` gives the container no network at all; here that is ``--network none``
(https://docs.aws.amazon.com/sagemaker/latest/dg/mkt-algo-model-internet-free.html). On top: a
read-only root filesystem (only /opt/ml and a /tmp tmpfs writable) and every capability dropped but
the three the entrypoint needs to hand /opt/ml to the model user and drop to it (CHOWN, SETUID,
SETGID). Requests reach the isolated server from inside its own network namespace (loopback), the
way SageMaker's front end is the only thing that can reach an isolated endpoint.

Data unlike the sample: string labels, other column names, categorical columns (tests/support/datasets.py).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import time
from pathlib import Path

import datasets
import pytest

from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN, PROBLEM_TYPE

IMAGE = os.environ.get("IMAGE", "{{ cookiecutter.project_slug }}:latest")
CAPABILITIES = ["CHOWN", "SETUID", "SETGID"]
ISOLATED = {
    "network_mode": "none",
    "read_only": True,
    "tmpfs": {"/tmp": "rw,size=256m"},
    "cap_drop": ["ALL"],
    "cap_add": CAPABILITIES,
    "security_opt": ["no-new-privileges"],
}
pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Run inside the serving container: poll /ping, then POST the body; prints one JSON line.
CLIENT = """
import json, sys, time, urllib.request
base = "http://127.0.0.1:8080"
deadline = time.monotonic() + 90
while True:
    try:
        if urllib.request.urlopen(base + "/ping", timeout=2).status == 200:
            break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
request = urllib.request.Request(base + "/invocations", data=sys.argv[1].encode(),
                                 headers={"Content-Type": "text/csv", "Accept": "text/csv"})
with urllib.request.urlopen(request, timeout=30) as reply:
    print(json.dumps({"status": reply.status, "body": reply.read().decode()}))
"""


@pytest.fixture(scope="module")
def docker_client():
    docker = pytest.importorskip("docker")
    return docker.from_env()


@pytest.fixture(scope="module")
def image(docker_client, project_root):
    """The offline build (`make build-offline`); docker's layer cache makes an unchanged rebuild quick."""
    result = subprocess.run(
        ["make", "build-offline", f"IMAGE={IMAGE}"], cwd=project_root, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return docker_client.images.get(IMAGE)


@pytest.fixture(scope="module")
def tables():
    return datasets.for_problem(PROBLEM_TYPE)  # string labels (classification), categorical columns


@pytest.fixture(scope="module")
def trained(docker_client, image, tables, tmp_path_factory) -> tuple[Path, dict]:
    """/opt/ml after an isolated `train`, and the container's HostConfig."""
    train, _ = tables
    root = tmp_path_factory.mktemp("isolated") / "opt_ml"
    datasets.write(root / "channels", train, tables[1])
    (root / "input" / "data").mkdir(parents=True)
    (root / "channels" / "train").rename(root / "input" / "data" / "train")
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text("{}")
    container = docker_client.containers.run(
        image.id, "train", volumes={str(root): {"bind": "/opt/ml", "mode": "rw"}}, detach=True, **ISOLATED
    )
    try:
        status = container.wait(timeout=600)["StatusCode"]
        container.reload()
        assert status == 0, container.logs().decode()[-3000:]
        return root, container.attrs["HostConfig"]
    finally:
        container.remove(force=True)


def check_answers(body: str, train, rows: int) -> None:
    """The CSV answer shape of docs/architecture.md for the project's problem type."""
    answers = list(csv.reader(io.StringIO(body)))
    if PROBLEM_TYPE == "regression":
        assert len(answers) == rows and all(math.isfinite(float(value)) for (value,) in answers)
        return
    classes = {str(c) for c in train.data[LABEL_COLUMN].tolist()}
    if PROBLEM_TYPE == "multiclass":
        header, answers = answers[0], answers[1:]
        assert header[0] == "label" and set(header[1:]) == classes
    assert len(answers) == rows
    for label, *scores in answers:
        assert label in classes and all(0.0 <= float(p) <= 1.0 for p in scores)


def _cell(value) -> str:
    """A CSV cell as a client would send it: missing (None or NaN) as an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def test_isolated_training_writes_the_model(trained):
    root, host_config = trained
    assert host_config["NetworkMode"] == "none" and host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"] and sorted(host_config["CapAdd"]) == sorted(CAPABILITIES)
    metadata = json.loads((root / "model" / "metadata.json").read_text())
    assert LABEL_COLUMN not in metadata["feature_names"]
    assert not (root / "output" / "failure").exists()


def test_isolated_serving_answers_from_inside_its_namespace(docker_client, image, trained, tables):
    root, _ = trained
    feature_names = json.loads((root / "model" / "metadata.json").read_text())["feature_names"]
    _, holdout = tables
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    for i in range(3):
        writer.writerow([_cell(holdout.data[name][i]) for name in feature_names])
    container = docker_client.containers.run(
        image.id,
        "serve",
        volumes={str(root / "model"): {"bind": "/opt/ml/model", "mode": "ro"}},
        detach=True,
        **ISOLATED,
    )
    try:
        started = time.monotonic()
        code, output = container.exec_run(["python3", "-c", CLIENT, rows.getvalue()], user="model")
        assert code == 0, output.decode()[-3000:] + container.logs().decode()[-3000:]
        print(f"\nisolated endpoint answered after {time.monotonic() - started:.1f} s")
        reply = json.loads(output.decode().strip().splitlines()[-1])
        assert reply["status"] == 200
        check_answers(reply["body"], tables[0], rows=3)
        # No network but loopback, and the root filesystem refuses writes, even to root.
        code, output = container.exec_run(
            ["python3", "-c", "import os; print(sorted(os.listdir('/sys/class/net')))"]
        )
        assert (code, output.decode().strip()) == (0, "['lo']")
        code, _ = container.exec_run(["sh", "-c", "touch /usr/local/escaped"], user="root")
        assert code != 0
    finally:
        container.remove(force=True)
