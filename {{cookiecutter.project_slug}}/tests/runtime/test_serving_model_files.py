"""The serving launcher checks /opt/ml/model against the gate's MODEL_FILES_SHA256 (issue 22).

A model folder as the train step writes it (model.skops, the verified model.onnx, metadata.json,
profile.json), served by ``python -m <package>.steps.serve --no-nginx`` in a subprocess, as the
process runtime and the image run it. A refusal must come from the manifest check, before any
loader: one line naming both digests, no library imported, nothing parsed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from {{ cookiecutter.package_name }} import model_digest
from {{ cookiecutter.package_name }}_emulator.runtimes import free_port
from {{ cookiecutter.package_name }}_emulator.runtimes.process import wait_healthy

PACKAGE = "{{ cookiecutter.package_name }}"
pytestmark = pytest.mark.slow
# Libraries that read model files: none may be imported when the launcher refuses.
LOADERS = ("onnxruntime", "onnx", "skops", "sklearn", "xgboost", "lightgbm")
# Run the launcher in this interpreter, then report its exit code and which loaders it imported.
LAUNCH = f"""
import json, sys
from {PACKAGE}.steps import serve
code = serve.main(["--no-nginx", "--host", "127.0.0.1", "--port", "1"])
loaded = sorted(name for name in sys.modules if name.split(".")[0] in {LOADERS!r})
print(json.dumps(dict(code=code, loaded=loaded)))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, sample_data, project_root) -> Path:
    """/opt/ml/model as the train step leaves it (the folder model.tar.gz is made of)."""
    root = tmp_path_factory.mktemp("opt_ml")
    shutil.copytree(sample_data["train"].parent, root / "input" / "data" / "train")
    env = {**os.environ, "OPT_ML_ROOT": str(root), "PYTHONPATH": str(project_root / "src")}
    result = subprocess.run(
        [sys.executable, "-m", f"{PACKAGE}.steps.train"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return root / "model"


def opt_ml(
    trained: Path, tmp_path: Path, project_root: Path, expected: str | None
) -> tuple[Path, dict[str, str]]:
    """A copy of the trained folder as /opt/ml/model, and the serving environment for it."""
    shutil.copytree(trained, tmp_path / "model")
    env = {**os.environ, "OPT_ML_ROOT": str(tmp_path), "PYTHONPATH": str(project_root / "src")}
    env.pop(model_digest.MANIFEST_ENV, None)
    if expected is not None:
        env[model_digest.MANIFEST_ENV] = expected
    return tmp_path / "model", env


def serves(env: dict[str, str]) -> str:
    """Start the server, wait for /ping 200, stop it; its stderr."""
    port = free_port()
    command = [sys.executable, "-m", f"{PACKAGE}.steps.serve", "--no-nginx", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, 60)
        assert requests.get(f"http://127.0.0.1:{port}/ping", timeout=5).status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    return stderr


def refused(env: dict[str, str]) -> tuple[dict, str]:
    """Run the launcher to its refusal: ({"code", "loaded"}, the one line it printed)."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return json.loads(done.stdout), lines[0]


def test_matching_files_serve_and_say_so(trained: Path, tmp_path: Path, project_root: Path) -> None:
    _, manifest = model_digest.folder_manifest(trained)
    folder, env = opt_ml(trained, tmp_path, project_root, manifest)
    stderr = serves(env)
    count = len(model_digest.file_digests(folder))
    assert f"serve: the {count} model files in {folder} match MODEL_FILES_SHA256 {manifest}" in stderr


def test_without_the_variable_it_serves_unverified_and_says_so(
    trained: Path, tmp_path: Path, project_root: Path
) -> None:
    folder, env = opt_ml(trained, tmp_path, project_root, None)
    stderr = serves(env)
    assert (
        f"serve: the model files in {folder} are not verified against a gate record "
        "(MODEL_FILES_SHA256 is not set)"
    ) in stderr


@pytest.mark.parametrize("tamper", ["one byte of model.onnx", "model.skops replaced with garbage"])
def test_changed_files_are_refused_before_any_loader(
    trained: Path, tmp_path: Path, project_root: Path, tamper: str
) -> None:
    assert {"model.onnx", "model.skops"} <= set(model_digest.file_digests(trained)), (
        "the default bake's model"
    )
    _, manifest = model_digest.folder_manifest(trained)
    folder, env = opt_ml(trained, tmp_path, project_root, manifest)
    if tamper.startswith("one byte"):
        data = bytearray((folder / "model.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / "model.onnx").write_bytes(bytes(data))
    else:
        (folder / "model.skops").write_bytes(b"not a zip, not a model")
    files, actual = model_digest.folder_manifest(folder)
    outcome, line = refused(env)
    assert outcome == {"code": 2, "loaded": []}, "refused before any model library was imported"
    assert line.startswith(
        f"serve: the model files in {folder} have manifest sha256 {actual}, not {manifest} "
        "(MODEL_FILES_SHA256, what the gate scored): refusing to serve; found "
    )
    for name, sha in files.items():
        assert f"{name} {sha}" in line
    assert "Traceback" not in line and "skops" not in line.split("found")[0]


def test_a_symlink_in_the_model_folder_is_refused(trained: Path, tmp_path: Path, project_root: Path) -> None:
    _, manifest = model_digest.folder_manifest(trained)
    folder, env = opt_ml(trained, tmp_path, project_root, manifest)
    (folder / "model.skops").unlink()
    (folder / "model.skops").symlink_to(trained / "model.skops")
    outcome, line = refused(env)
    assert outcome["code"] == 2 and outcome["loaded"] == []
    assert line == (
        f"serve: {folder / 'model.skops'}: a symbolic link in the model folder {folder}; "
        "model files must be regular files: refusing to serve"
    )


@pytest.mark.parametrize("value", ["", "not-a-digest", "A" * 64])
def test_a_malformed_variable_is_refused(
    trained: Path, tmp_path: Path, project_root: Path, value: str
) -> None:
    _, env = opt_ml(trained, tmp_path, project_root, value)
    outcome, line = refused(env)
    assert outcome["code"] == 2 and outcome["loaded"] == []
    assert line == (
        f"serve: MODEL_FILES_SHA256={value!r} is not 64 lowercase hex characters: "
        "refusing to serve files nothing vouches for"
    )
