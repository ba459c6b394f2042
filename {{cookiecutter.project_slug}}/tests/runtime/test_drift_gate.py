"""The gate rule, prediction drift, and reading model artifacts from folders, archives and S3."""

from __future__ import annotations

import math
import tarfile
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }} import artifacts, gate
from {{ cookiecutter.package_name }}.drift.profile import numeric_profile

GOOD = {"roc_auc": 0.95, "accuracy": 0.9, "f1": 0.9}


def _with(auc: float) -> dict[str, float]:
    return {**GOOD, "roc_auc": auc}


@pytest.mark.parametrize(
    ("candidate", "production", "promote", "reason"),
    [
        (0.95, None, True, "first run"),
        (0.75, None, False, "below the minimum 0.8000"),
        (0.96, 0.94, True, "within tolerance"),
        (0.935, 0.94, True, "within tolerance"),  # worse, but by less than the 0.01 tolerance
        (0.93, 0.94, True, "within tolerance"),  # exactly at the tolerance
        (0.90, 0.94, False, "worse than production 0.9400 by 0.0400"),
        (0.79, 0.70, False, "below the minimum"),  # better than production is not enough
        (math.nan, None, False, "undefined"),
    ],
)
def test_gate_rule(candidate: float, production: float | None, promote: bool, reason: str):
    decision = gate.decide(
        _with(candidate), None if production is None else _with(production), "roc_auc", 0.8, 0.01
    )
    assert decision.promote is promote
    assert any(reason in r for r in decision.reasons), decision.reasons


def test_gate_rejects_an_unknown_metric():
    with pytest.raises(ValueError, match="unknown gate metric 'auc'"):
        gate.decide(GOOD, None, "auc", 0.8, 0.01)


def test_prediction_drift_of_scores():
    rng = np.random.default_rng(0)
    reference = numeric_profile(rng.beta(2, 5, size=2000))
    same = gate.prediction_drift(reference, rng.beta(2, 5, size=500))
    moved = gate.prediction_drift(reference, rng.beta(5, 2, size=500))
    assert same["psi"] < 0.1 and same["p_value"] > 0.01
    assert moved["psi"] > 1.0 and moved["p_value"] < 1e-6
    assert gate.prediction_drift(None, np.ones(3)) is None


# ---- artifacts ----


def _model_files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("model.skops", "metadata.json", "profile.json"):
        (folder / name).write_text(name)
    return folder


def _archive(files: Path, archive: Path, arcname: str = ".") -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(files, arcname=arcname)
    return archive


def test_none_means_no_model():
    with artifacts.open_model("none") as folder:
        assert folder is None


def test_unpacked_folder_is_used_in_place(tmp_path: Path):
    files = _model_files(tmp_path / "m")
    with artifacts.open_model(files) as folder:
        assert folder == files


@pytest.mark.parametrize("arcname", [".", "model"], ids=["flat", "wrapped in a folder"])
def test_archive_and_folder_holding_an_archive(tmp_path: Path, arcname: str):
    (tmp_path / "in").mkdir()
    archive = _archive(_model_files(tmp_path / "m"), tmp_path / "in" / "model.tar.gz", arcname)
    for source in (archive, archive.parent):
        with artifacts.open_model(source) as folder:
            assert (folder / "metadata.json").read_text() == "metadata.json"
        assert not folder.exists()  # the extraction is temporary


def test_unsafe_archive_is_refused(tmp_path: Path):
    evil = tmp_path / "evil.tar.gz"
    (tmp_path / "x").write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(tmp_path / "x", arcname="../escaped")
    with pytest.raises(artifacts.ArtifactError), artifacts.open_model(evil):
        pass
    assert not (tmp_path.parent / "escaped").exists()


def test_missing_or_foreign_locations_are_named(tmp_path: Path):
    with (
        pytest.raises(artifacts.ArtifactError, match="no such file"),
        artifacts.open_model(tmp_path / "nope"),
    ):
        pass
    (tmp_path / "empty").mkdir()
    with (
        pytest.raises(artifacts.ArtifactError, match=r"no metadata\.json"),
        artifacts.open_model(tmp_path / "empty"),
    ):
        pass


def test_s3_archive_is_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    moto = pytest.importorskip("moto")
    import boto3

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    archive = _archive(_model_files(tmp_path / "m"), tmp_path / "model.tar.gz")
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        s3.upload_file(str(archive), "models", "runs/r1/output/model.tar.gz")
        with artifacts.open_model("s3://models/runs/r1/output/model.tar.gz") as folder:
            assert (folder / "profile.json").read_text() == "profile.json"
        with (
            pytest.raises(artifacts.ArtifactError, match="cannot download"),
            artifacts.open_model("s3://models/missing.tar.gz"),
        ):
            pass
