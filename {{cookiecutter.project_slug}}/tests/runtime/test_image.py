"""The image itself, built offline (debootstrapped base + wheelhouse): train, serve, non-root.

Builds like `make build-offline` (the base image and the wheels are reused when present; docker's
layer cache makes a rebuild quick), then runs the image the way SageMaker does: `train` with
/opt/ml mounted, `serve` with the model mounted read-only, HTTP on port 8080. The image always
serves through nginx, which holds slow clients so the gunicorn workers never wait for one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
import serving_stack

from {{ cookiecutter.package_name }}.data import read_csv
from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.serving import compiled
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN, PROBLEM_TYPE
from {{ cookiecutter.package_name }}.steps.serve import HEAVY_IN_FLIGHT_PER_WORKER, IN_FLIGHT_PER_WORKER

IMAGE = os.environ.get("IMAGE", "{{ cookiecutter.project_slug }}:latest")
BASE_IMAGE = os.environ.get("OFFLINE_BASE_IMAGE", "{{ cookiecutter.project_slug }}-base:bookworm")
pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )


@pytest.fixture(scope="module")
def docker_client():
    docker = pytest.importorskip("docker")
    return docker.from_env()


@pytest.fixture(scope="module")
def image(docker_client, project_root):
    _run(["sh", "container/offline/build_base_image.sh", BASE_IMAGE], project_root)
    requirements = (project_root / "container" / "requirements.txt").read_text()
    wanted = sum(1 for line in requirements.splitlines() if "==" in line and not line.startswith("#"))
    if len(list((project_root / "container" / "wheelhouse").glob("*.whl"))) < wanted:
        _run(["sh", "container/offline/build_wheelhouse.sh"], project_root)
    started = time.monotonic()
    _run(
        [
            "docker", "build", "-f", "container/Dockerfile", "-t", IMAGE,
            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", "PIP_OFFLINE=1", ".",
        ],
        project_root,
    )  # fmt: skip
    built = docker_client.images.get(IMAGE)
    print(
        f"\nimage {IMAGE}: {built.attrs['Size'] / 1e6:.0f} MB, docker build {time.monotonic() - started:.1f} s"
    )
    return built


@pytest.fixture
def opt_ml(tmp_path, sample_data) -> Path:
    root = tmp_path / "opt_ml"
    shutil.copytree(sample_data["train"].parent, root / "input" / "data" / "train")
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps({}))
    return root


def csv_body(holdout: Path, limit: int | None = None) -> str:
    """The holdout's feature columns as a client sends them (the label column dropped)."""
    lines = holdout.read_text().splitlines()
    label = lines[0].split(",").index(LABEL_COLUMN)
    rows = [
        ",".join(c for i, c in enumerate(line.split(",")) if i != label)
        for line in lines[1 : limit and limit + 1]
    ]
    return "\n".join(rows) + "\n"


def expected(predictor: Predictor, holdout: Path, limit: int | None = None) -> list[list[str]]:
    """What the library itself answers for those rows, as CSV cells (interfaces.md, 4)."""
    table = read_csv(holdout)
    X = predictor.features(table)[:limit]
    result = predictor.predict(X)
    if PROBLEM_TYPE == "regression":
        return [[v] for v in result.values.tolist()]
    labels = [str(label) for label in result.labels.tolist()]
    if PROBLEM_TYPE == "binary":
        return [[label, score] for label, score in zip(labels, result.scores.tolist(), strict=True)]
    return [[label, *row] for label, row in zip(labels, result.probabilities.tolist(), strict=True)]


def assert_answers(reply_text: str, wanted: list[list], tolerance: float = 1e-9) -> None:
    lines = reply_text.splitlines()
    if PROBLEM_TYPE == "multiclass":
        lines = lines[1:]  # the header line: label,<class 1>,...
    got = [line.split(",") for line in lines]
    assert len(got) == len(wanted)
    for cells, want in zip(got, wanted, strict=True):
        numbers = [c for c in want if isinstance(c, float)]
        assert [c for c in want if not isinstance(c, float)] == cells[: len(want) - len(numbers)]
        assert [float(c) for c in cells[len(want) - len(numbers) :]] == pytest.approx(numbers, abs=tolerance)


def run(docker_client, image, command: str, opt_ml: Path, **options) -> tuple[int, str]:
    container = docker_client.containers.run(
        image.id, command, volumes={str(opt_ml): {"bind": "/opt/ml", "mode": "rw"}}, detach=True, **options
    )
    try:
        status = container.wait(timeout=300)["StatusCode"]
        return status, container.logs().decode()
    finally:
        container.remove(force=True)


def serve(docker_client, image, model_dir: Path, **options):
    """`serve` the way SageMaker does: model mounted read-only, port 8080 published on loopback."""
    return docker_client.containers.run(
        image.id,
        "serve",
        volumes={str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"}},
        ports={"8080/tcp": ("127.0.0.1", None)},
        detach=True,
        **options,
    )


def wait_for_ping(container, timeout: float = 60) -> tuple[str, float]:
    """The endpoint URL once /ping answers 200, and the seconds that took."""
    started = time.monotonic()
    container.reload()
    url = f"http://127.0.0.1:{container.attrs['NetworkSettings']['Ports']['8080/tcp'][0]['HostPort']}"
    while True:
        assert time.monotonic() - started < timeout, container.logs().decode()
        try:
            if requests.get(f"{url}/ping", timeout=1).status_code == 200:
                return url, time.monotonic() - started
        except requests.ConnectionError:
            pass
        time.sleep(0.05)


def test_image_has_labels_and_runs_without_an_entrypoint(image):
    config = image.attrs["Config"]
    assert config["Entrypoint"] is None  # SageMaker passes `train` / `serve` as the command
    assert config["Labels"]["org.opencontainers.image.title"] == "{{ cookiecutter.project_slug }}"
    assert config["ExposedPorts"] == {"8080/tcp": {}}


SLIM_CHECK = """
import importlib.util, sys
import boto3
boto3.client("s3", region_name="eu-west-1")  # botocore keeps the S3 model and the credential chain's
boto3.client("sts", region_name="eu-west-1")
spec = importlib.util.find_spec("{{ cookiecutter.package_name }}.serving.app")
print(importlib.util.cache_from_source(spec.origin))
import {{ cookiecutter.package_name }}.serving.app
print("sklearn", importlib.util.find_spec("sklearn") is not None, "pip", importlib.util.find_spec("pip") is not None)
"""


PACKAGE_LIST = """
import pkgutil, sys
sys.path[:0] = ["/opt/program/src"]
names = sorted(m.name for m in pkgutil.iter_modules(["/opt/program/src"]))
print(" ".join(names))
import {{ cookiecutter.package_name }}
print(" ".join(sorted(m.name for m in pkgutil.walk_packages({{ cookiecutter.package_name }}.__path__, "{{ cookiecutter.package_name }}."))))
"""


def test_the_image_carries_the_runtime_package_only(docker_client, image, project_root):
    """Neither the deploy tooling nor the emulator is in the image: src/ holds the runtime alone,
    module for module the same as the project's runtime package (docs/architecture.md)."""
    logs = docker_client.containers.run(
        image.id, ["python3", "-c", PACKAGE_LIST], user="model", remove=True, stderr=True
    ).decode()
    top, modules = logs.strip().splitlines()[-2:]
    assert top.split() == ["{{ cookiecutter.package_name }}"]
    src = project_root / "src" / "{{ cookiecutter.package_name }}"
    local = {
        "{{ cookiecutter.package_name }}." + ".".join(p.relative_to(src).with_suffix("").parts)
        for p in src.rglob("*.py")
        if p.name != "__init__.py"
    } | {
        "{{ cookiecutter.package_name }}." + ".".join(p.parent.relative_to(src).parts)
        for p in src.rglob("__init__.py")
        if p.parent != src
    }
    assert set(modules.split()) == local
    print("modules in the image:", modules)


def test_slimmed_image_keeps_what_the_entrypoints_need(docker_client, image, tmp_path):
    """pip and unused API models are gone; S3/STS clients still build; serving has bytecode."""
    logs = docker_client.containers.run(
        image.id, ["python3", "-c", SLIM_CHECK], user="model", remove=True, stderr=True
    ).decode()
    cached, libraries = logs.strip().splitlines()[-2:]
    assert libraries == "sklearn True pip False", logs
    check = docker_client.containers.run(image.id, ["test", "-f", cached], remove=True, user="model")
    assert check == b""  # exit 0: the serving module's bytecode was written at build time


def test_train_and_serve_like_sagemaker(docker_client, image, opt_ml, sample_data):
    status, logs = run(docker_client, image, "train", opt_ml)
    assert status == 0, logs
    assert "train:" in logs
    model_dir = opt_ml / "model"
    assert all(path.stat().st_uid != 0 for path in model_dir.iterdir())  # written by the model user
    predictor = Predictor.load(model_dir)

    container = serve(docker_client, image, model_dir)
    try:
        url, first_ping = wait_for_ping(container)
        print(f"\nfirst /ping 200 after {first_ping:.2f} s")
        reply = requests.post(
            f"{url}/invocations",
            data=csv_body(sample_data["holdout"]),
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        # What serving loads (the compiled model when training verified one), exactly; and the
        # library's own answers: same labels, numbers within the export's tolerance.
        assert_answers(reply.text, expected(compiled.load(model_dir), sample_data["holdout"]))
        assert_answers(reply.text, expected(predictor, sample_data["holdout"]), compiled.TOLERANCE)

        # nginx's own limits and routes answer in the same JSON shape as the app.
        too_big = requests.post(
            f"{url}/invocations",
            data=b"1," * (3 * 1024 * 1024 + 1),
            headers={"Content-Type": "text/csv"},
            timeout=30,
        )
        assert too_big.status_code == 413 and too_big.json()["code"] == 413
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 404

        processes = container.top(ps_args="-o pid,uid,comm")["Processes"]  # docker needs the pid column
        assert {comm for _, _, comm in processes} >= {"nginx", "python"}, processes
        assert all(uid != "0" for _, uid, _ in processes), processes
    finally:
        container.remove(force=True)


SLOW = 32  # stalled client connections: 16x the workers


def test_slow_and_short_body_clients_never_reach_a_worker(docker_client, image, opt_ml, sample_data):
    """nginx holds stalled headers and bodies shorter than their Content-Length; probes still pass."""
    status, logs = run(docker_client, image, "train", opt_ml)
    assert status == 0, logs
    container = serve(docker_client, image, opt_ml / "model", environment={"MODEL_SERVER_WORKERS": "2"})
    try:
        url, _ = wait_for_ping(container)
        port = int(url.rsplit(":", 1)[1])
        head = "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        stalled = [head.encode(), (head + "Content-Length: 100000\r\n\r\n1,2\n").encode()]
        held = []
        for i in range(SLOW):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(stalled[i % 2])
            held.append(sock)
        try:
            answered = 0
            for _ in range(8):
                answered += requests.get(f"{url}/ping", timeout=2).status_code == 200
            reply = requests.post(
                f"{url}/invocations",
                data=csv_body(sample_data["holdout"], 1),
                headers={"Content-Type": "text/csv", "Accept": "text/csv"},
                timeout=5,
            )
            print(f"\nprobes answered while {SLOW} slow connections are held (nginx): {answered}/8")
            assert answered == 8 and reply.status_code == 200
        finally:
            for sock in held:
                sock.close()
    finally:
        container.remove(force=True)


def test_health_holds_under_the_largest_valid_requests(docker_client, image, opt_ml, sample_data):
    """Issue 22 in the image: 2x the workers of 6 MB all-missing bodies in flight, /ping p99 < 2 s
    (nginx answers it), no 5xx, every row answered (tests/support/serving_stack.py)."""
    status, logs = run(docker_client, image, "train", opt_ml)
    assert status == 0, logs
    workers = 2
    container = serve(
        docker_client, image, opt_ml / "model", environment={"MODEL_SERVER_WORKERS": str(workers)}
    )
    try:
        url, _ = wait_for_ping(container)
        width = len(sample_data["holdout"].read_text().splitlines()[0].split(",")) - 1  # without the label
        port = int(url.rsplit(":", 1)[1])
        result = serving_stack.assert_health_under_heavy_load(port, width, workers, PROBLEM_TYPE)
        print(f"\nimage, {2 * workers} clients x 2 bodies of 6 MB all missing, {workers} workers:")
        print(result.summary())
    finally:
        container.remove(force=True)


def test_nginx_answers_ping_sheds_overload_and_refuses_unknown_codings(docker_client, image, tmp_path):
    """The image's nginx and launcher in front of a gated stand-in app (``serve --app``): /ping 503
    until the warm-up succeeded, then 200 within 2 s while the worker is held and the queue is full;
    429 beyond the queue; 400 for an unknown Transfer-Encoding."""
    app, gates = serving_stack.gated_app(tmp_path)
    tmp_path.chmod(0o755)  # the model user reads the mounted app
    (tmp_path / "gatedapp.py").chmod(0o644)
    container = docker_client.containers.run(
        image.id,
        ["serve", "--app", app],
        volumes={str(tmp_path): {"bind": "/stub", "mode": "ro"}},
        environment={
            "MODEL_SERVER_WORKERS": "1",
            "PYTHONPATH": "/opt/program/src:/stub",
            **gates.env(Path("/stub")),
        },
        ports={"8080/tcp": ("127.0.0.1", None)},
        detach=True,
    )
    try:
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
        serving_stack.wait_until(lambda: _answers(port), timeout=60)
        serving_stack.assert_ping_503_until_warm(port, gates)
        serving_stack.assert_overload_shed(port, gates, HEAVY_IN_FLIGHT_PER_WORKER, IN_FLIGHT_PER_WORKER)
        for coding in serving_stack.UNKNOWN_CODINGS:
            serving_stack.assert_unknown_transfer_encoding_refused(port, coding)
    except BaseException:
        print(container.logs().decode()[-3000:])
        raise
    finally:
        container.remove(force=True)


def _answers(port: int) -> bool:
    try:
        serving_stack.request(port, "GET", "/ping", timeout=1)
        return True
    except OSError:
        return False


def test_the_image_refuses_to_serve_without_nginx_on_a_public_address(docker_client, image, tmp_path):
    status, logs = run(docker_client, image, "serve --no-nginx --host 0.0.0.0", tmp_path)
    assert status == 2
    assert "--no-nginx serves on loopback only (got --host 0.0.0.0)" in logs


def test_training_failure_reaches_the_failure_file(docker_client, image, opt_ml):
    # No label column: a failure for every problem type (one class would be fine for regression).
    (opt_ml / "input" / "data" / "train" / "train.csv").write_text("a,b\n1,2\n3,4\n")
    status, logs = run(docker_client, image, "train", opt_ml)
    assert status == 1
    reason = (opt_ml / "output" / "failure").read_text().splitlines()[0]
    assert reason == f"channel 'train' has no label column '{LABEL_COLUMN}' (columns: a, b)"
    assert "Traceback" in logs


def test_read_only_root_filesystem(docker_client, image, opt_ml, sample_data):
    """Hardened run: read-only root, only /opt/ml and a /tmp tmpfs writable; train, then serve."""
    hardened = {"read_only": True, "tmpfs": {"/tmp": "rw,size=256m"}, "cap_drop": ["ALL"]}
    # Dropping to the model user needs three capabilities: chown of the mounts, setuid and setgid.
    hardened["cap_add"] = ["CHOWN", "SETUID", "SETGID"]
    status, logs = run(docker_client, image, "train", opt_ml, **hardened)
    assert status == 0, logs
    model_dir = opt_ml / "model"
    predictor = Predictor.load(model_dir)
    container = serve(docker_client, image, model_dir, **hardened)
    try:
        url, _ = wait_for_ping(container)
        reply = requests.post(
            f"{url}/invocations",
            data=csv_body(sample_data["holdout"], 3),
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text + container.logs().decode()
        assert_answers(reply.text, expected(compiled.load(model_dir), sample_data["holdout"], 3))
        assert_answers(reply.text, expected(predictor, sample_data["holdout"], 3), compiled.TOLERANCE)
    finally:
        container.remove(force=True)
