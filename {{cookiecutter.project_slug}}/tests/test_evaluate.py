"""The evaluate entrypoint (model gate) in process, with real small models on the sample data."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }} import data
from {{ cookiecutter.package_name }}.drift import evaluate
from {{ cookiecutter.package_name }}.drift.profile import PROFILE_FILE, build_profile, save_profile
from {{ cookiecutter.package_name }}.model import Model
from {{ cookiecutter.package_name }}.settings import LABEL_COLUMN

CONTRACT_KEYS = {
    "step",
    "promote",
    "metric",
    "minimum",
    "tolerance",
    "candidate",
    "production",
    "reasons",
    "prediction_drift",
}


@pytest.fixture(scope="module")
def models(sample_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """good: all features; weak: one feature (clearly worse, AUC > 0.7); noise: shuffled labels."""
    table = data.read_csv(sample_data["train"])
    features = [c for c in table.columns if c != LABEL_COLUMN]
    labels = table.data[LABEL_COLUMN]
    root = tmp_path_factory.mktemp("models")
    recipes = {
        "good": (features, labels),
        "weak": (["mean_texture"], labels),  # holdout AUC about 0.76
        "noise": (features, np.random.default_rng(0).permutation(labels)),
    }
    folders = {}
    for name, (columns, y) in recipes.items():
        X = table.matrix(columns)
        model = Model(columns).fit(X, y)
        model.save(root / name)
        profile = build_profile(table, columns, scores=model.predict_proba(X))
        save_profile(profile, root / name / PROFILE_FILE)
        folders[name] = root / name
    return folders


@pytest.fixture(autouse=True)
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPT_ML_ROOT", str(tmp_path / "opt_ml"))
    return tmp_path / "opt_ml"


def _run(
    candidate: Path, production: Path | str, holdout: Path, output: Path, *extra: str
) -> tuple[int, dict]:
    argv = [
        "--model",
        str(candidate),
        "--holdout",
        str(holdout),
        "--production-model",
        str(production),
        "--output",
        str(output),
        *extra,
    ]
    code = evaluate.main(argv)
    return code, json.loads((output / "decision.json").read_text())


def _as_training_output(model: Path, folder: Path) -> Path:
    """A processing input of a training job's output: a folder holding model.tar.gz."""
    folder.mkdir(parents=True)
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        tar.add(model, arcname=".")
    return folder


def test_first_run_promotes(models, sample_data, tmp_path: Path):
    candidate = _as_training_output(models["good"], tmp_path / "candidate")
    code, decision = _run(candidate, "none", sample_data["holdout"], tmp_path / "out")
    assert code == 0
    assert decision.keys() >= CONTRACT_KEYS
    assert decision["step"] == "evaluate"
    assert decision["promote"] is True
    assert decision["production"] is None and decision["prediction_drift"] is None
    assert decision["candidate"]["roc_auc"] > 0.95
    assert any("first run" in r for r in decision["reasons"])


def test_better_candidate_promotes(models, sample_data, tmp_path: Path):
    code, decision = _run(
        models["good"], models["weak"], sample_data["holdout"], tmp_path / "out", "--minimum", "0.5"
    )
    assert code == 0 and decision["promote"] is True
    assert decision["candidate"]["roc_auc"] > decision["production"]["roc_auc"]
    drift = decision["prediction_drift"]
    assert drift is not None and 0 <= drift["psi"] < 0.5 and 0 < drift["p_value"] <= 1


def test_clearly_worse_candidate_is_blocked(models, sample_data, tmp_path: Path):
    # --minimum 0.5 so that only the comparison with production can block it
    code, decision = _run(
        models["weak"], models["good"], sample_data["holdout"], tmp_path / "out", "--minimum", "0.5"
    )
    assert code == 0 and decision["promote"] is False
    assert 0.7 < decision["candidate"]["roc_auc"] < decision["production"]["roc_auc"] - 0.1
    assert any("worse than production" in r for r in decision["reasons"])


def test_candidate_below_minimum_is_blocked(models, sample_data, tmp_path: Path):
    code, decision = _run(models["noise"], "none", sample_data["holdout"], tmp_path / "out")
    assert code == 0 and decision["promote"] is False
    assert decision["candidate"]["roc_auc"] < 0.8
    assert any("below the minimum" in r for r in decision["reasons"])


def test_gate_settings_come_from_flags(models, sample_data, tmp_path: Path):
    _, decision = _run(
        models["good"],
        "none",
        sample_data["holdout"],
        tmp_path / "out",
        "--metric",
        "f1",
        "--minimum",
        "0.999",
    )
    assert (decision["metric"], decision["minimum"], decision["promote"]) == ("f1", 0.999, False)


def test_unreadable_candidate_fails(sample_data, tmp_path: Path, opt_ml: Path):
    (tmp_path / "empty").mkdir()
    code, decision = _run(tmp_path / "empty", "none", sample_data["holdout"], tmp_path / "out")
    assert (code, decision["decision"], decision["promote"]) == (1, "fail", False)
    assert "no metadata.json" in (opt_ml / "output" / "failure").read_text()


def test_holdout_without_a_model_feature_fails(models, sample_data, tmp_path: Path, opt_ml: Path):
    table = data.read_csv(sample_data["holdout"])
    table.columns.remove("mean_area")
    data.write_csv(tmp_path / "holdout" / "holdout.csv", table)
    code, _ = _run(models["good"], "none", tmp_path / "holdout", tmp_path / "out")
    assert code == 1
    assert "mean_area" in (opt_ml / "output" / "failure").read_text()


def test_broken_production_profile_does_not_fail_the_gate(models, sample_data, tmp_path: Path):
    production = tmp_path / "production"
    shutil.copytree(models["good"], production)
    (production / PROFILE_FILE).write_text('{"version": 0}')
    code, decision = _run(models["good"], production, sample_data["holdout"], tmp_path / "out")
    assert (code, decision["promote"], decision["prediction_drift"]) == (0, True, None)
    assert any("unsupported profile version 0" in r for r in decision["reasons"])
