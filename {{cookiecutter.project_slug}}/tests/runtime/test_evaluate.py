"""The evaluate entrypoint (model gate) in process, with real small models on the sample data."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }} import data, metrics
from {{ cookiecutter.package_name }}.drift.profile import PROFILE_FILE, build_profile, save_profile
from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.settings import GATE_METRIC, LABEL_COLUMN, PROBLEM_TYPE
from {{ cookiecutter.package_name }}.steps import evaluate

CONTRACT_KEYS = {
    "step",
    "promote",
    "metric",
    "higher_is_better",
    "minimum",
    "tolerance",
    "candidate",
    "production",
    "candidate_sha256",
    "model_files",
    "model_files_sha256",
    "candidate_artifact",
    "reasons",
    "prediction_drift",
}
# A single feature that carries some signal but much less than all of them, per sample data set.
WEAK_FEATURE = {"binary": "mean_texture", "multiclass": "ash", "regression": "s1", "ranking": "title_match"}[
    PROBLEM_TYPE
]
# Ranking: the query column goes with every model's table (a ranker needs its groups).
GROUP = ["query_id"] if PROBLEM_TYPE == "ranking" else []
HIGHER = metrics.higher_is_better(GATE_METRIC)
# Bounds every model passes, so that only the comparison with production decides.
LENIENT = ["--minimum", "0" if HIGHER else "1e9"]


def better(a: float, b: float, margin: float = 0.0) -> bool:
    """a is better than b by more than margin, in the gate metric's direction."""
    return a > b + margin if HIGHER else a < b - margin


@pytest.fixture(scope="module")
def models(sample_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """good: all features; weak: one feature (clearly worse); noise: shuffled labels."""
    table = data.read_csv(sample_data["train"])
    labels = table.data[LABEL_COLUMN]
    root = tmp_path_factory.mktemp("models")
    weak = data.Table(
        [*GROUP, WEAK_FEATURE, LABEL_COLUMN], {c: table.data[c] for c in [*GROUP, WEAK_FEATURE, LABEL_COLUMN]}
    )
    noise = table.take(slice(None))
    noise.data[LABEL_COLUMN] = np.random.default_rng(0).permutation(labels)
    folders = {}
    for name, recipe in {"good": table, "weak": weak, "noise": noise}.items():
        predictor = Predictor.fit(recipe, {})
        predictor.save(root / name)
        scores = predictor.drift_scores(predictor.predict(predictor.features(recipe)))
        save_profile(
            build_profile(recipe, predictor.feature_names, scores=scores), root / name / PROFILE_FILE
        )
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
    assert decision["step"] == "evaluate" and decision["problem_type"] == PROBLEM_TYPE
    assert (decision["metric"], decision["higher_is_better"]) == (GATE_METRIC, HIGHER)
    assert decision["promote"] is True
    assert decision["production"] is None and decision["prediction_drift"] is None
    assert set(decision["candidate"]) == set(metrics.METRICS[PROBLEM_TYPE])
    assert any("first run" in r for r in decision["reasons"])
    archive = candidate / "model.tar.gz"
    assert decision["candidate_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert decision["candidate_artifact"] == str(candidate)
    holdout = data.read_csv(sample_data["holdout"])
    if PROBLEM_TYPE in ("regression", "ranking"):
        assert "confusion_matrix" not in decision
    else:
        counts = np.asarray(decision["confusion_matrix"]["counts"])
        assert (
            counts.sum() == holdout.n_rows
            and counts.shape == (len(decision["confusion_matrix"]["classes"]),) * 2
        )
        accuracy = np.trace(counts) / counts.sum()
        assert accuracy == pytest.approx(decision["candidate"]["accuracy"], abs=1e-6)


def _independent_digests(folder: Path) -> dict[str, str]:
    """path -> sha256 of every file below ``folder``, computed here, not by model_digest."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_the_decision_records_the_digests_of_the_files_training_wrote(models, sample_data, tmp_path: Path):
    """``model_files`` are the files of the folder training wrote (as evaluate extracted them from
    the archive), ``model_files_sha256`` their manifest: what serving must find (issue 22)."""
    candidate = _as_training_output(models["good"], tmp_path / "candidate")
    _, decision = _run(candidate, "none", sample_data["holdout"], tmp_path / "out")
    expected = _independent_digests(models["good"])
    assert decision["model_files"] == expected and "metadata.json" in expected
    lines = "".join(f"{path}\0{expected[path]}\n" for path in sorted(expected))
    assert decision["model_files_sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    # An unpacked candidate folder is digested as it is: the same files, the same manifest.
    _, unpacked = _run(models["good"], "none", sample_data["holdout"], tmp_path / "out-unpacked")
    assert unpacked["model_files_sha256"] == decision["model_files_sha256"]


def test_a_candidate_with_a_symlink_is_refused_before_scoring(models, sample_data, tmp_path: Path):
    folder = tmp_path / "linked"
    shutil.copytree(models["good"], folder)
    (folder / "notes.txt").symlink_to(sample_data["holdout"])
    code, decision = _run(folder, "none", sample_data["holdout"], tmp_path / "out")
    assert code == 1 and decision["promote"] is False
    assert decision["reasons"] == [
        f"unreadable input: the candidate: {folder / 'notes.txt'}: a symbolic link in the model folder "
        f"{folder}; model files must be regular files"
    ]


def test_unpacked_candidate_has_no_archive_hash(models, sample_data, tmp_path: Path):
    _, decision = _run(models["good"], "none", sample_data["holdout"], tmp_path / "out")
    assert decision["promote"] is True and decision["candidate_sha256"] is None


def test_better_candidate_promotes(models, sample_data, tmp_path: Path):
    code, decision = _run(models["good"], models["weak"], sample_data["holdout"], tmp_path / "out", *LENIENT)
    assert code == 0 and decision["promote"] is True
    assert better(decision["candidate"][GATE_METRIC], decision["production"][GATE_METRIC])
    drift = decision["prediction_drift"]
    assert drift is not None and 0 <= drift["psi"] < 1.0 and 0 <= drift["p_value"] <= 1


def test_clearly_worse_candidate_is_blocked(models, sample_data, tmp_path: Path):
    code, decision = _run(models["weak"], models["good"], sample_data["holdout"], tmp_path / "out", *LENIENT)
    assert code == 0 and decision["promote"] is False
    assert better(decision["production"][GATE_METRIC], decision["candidate"][GATE_METRIC], margin=0.05)
    assert any("worse than production" in r for r in decision["reasons"])


def test_candidate_failing_the_bound_is_blocked(models, sample_data, tmp_path: Path):
    code, decision = _run(models["noise"], "none", sample_data["holdout"], tmp_path / "out")
    assert code == 0 and decision["promote"] is False
    assert not better(decision["candidate"][GATE_METRIC], float(evaluate.settings.GATE_MINIMUM))
    side = "below the minimum" if HIGHER else "above the maximum"
    assert any(side in r for r in decision["reasons"])


def test_gate_settings_come_from_flags(models, sample_data, tmp_path: Path):
    # accuracy (classification) and r2 (regression): higher is better, in [0, 1]
    metric = {"regression": "r2", "ranking": "mrr"}.get(PROBLEM_TYPE, "accuracy")
    _, decision = _run(
        models["good"],
        "none",
        sample_data["holdout"],
        tmp_path / "out",
        "--metric",
        metric,
        "--minimum",
        "0.999",
    )
    assert (decision["metric"], decision["minimum"]) == (metric, 0.999)
    assert decision["promote"] is (decision["candidate"][metric] >= 0.999)


@pytest.mark.skipif(PROBLEM_TYPE == "ranking", reason="every ranking metric is higher-is-better")
def test_a_lower_is_better_metric_gates_with_a_maximum(models, sample_data, tmp_path: Path):
    metric = "rmse" if PROBLEM_TYPE == "regression" else "log_loss"
    _, good = _run(models["good"], "none", sample_data["holdout"], tmp_path / "a", "--metric", metric)
    value = good["candidate"][metric]
    assert good["higher_is_better"] is False
    args = ["--metric", metric, "--tolerance", "0"]
    # a maximum just above the candidate's value passes, just below it blocks
    _, passed = _run(
        models["good"], "none", sample_data["holdout"], tmp_path / "b", *args, "--minimum", str(value * 1.01)
    )
    _, blocked = _run(
        models["good"], "none", sample_data["holdout"], tmp_path / "c", *args, "--minimum", str(value * 0.99)
    )
    assert (passed["promote"], blocked["promote"]) == (True, False)
    assert any("above the maximum" in r for r in blocked["reasons"])
    # against production: lower wins; the tolerance allows that much higher
    _, worse = _run(
        models["weak"], models["good"], sample_data["holdout"], tmp_path / "d", *args, "--minimum", "1e9"
    )
    assert worse["promote"] is False and worse["candidate"][metric] > worse["production"][metric]
    gap = worse["candidate"][metric] - worse["production"][metric]
    _, tolerated = _run(
        models["weak"],
        models["good"],
        sample_data["holdout"],
        tmp_path / "e",
        "--metric",
        metric,
        "--minimum",
        "1e9",
        "--tolerance",
        str(gap * 1.01),
    )
    assert tolerated["promote"] is True


def test_unreadable_candidate_fails(sample_data, tmp_path: Path, opt_ml: Path):
    (tmp_path / "empty").mkdir()
    code, decision = _run(tmp_path / "empty", "none", sample_data["holdout"], tmp_path / "out")
    assert (code, decision["decision"], decision["promote"]) == (1, "fail", False)
    assert "no metadata.json" in (opt_ml / "output" / "failure").read_text()


def test_holdout_without_a_model_feature_fails(models, sample_data, tmp_path: Path, opt_ml: Path):
    table = data.read_csv(sample_data["holdout"])
    table.columns.remove(WEAK_FEATURE)
    data.write_csv(tmp_path / "holdout" / "holdout.csv", table)
    code, _ = _run(models["good"], "none", tmp_path / "holdout", tmp_path / "out")
    assert code == 1
    assert f"missing column(s): {WEAK_FEATURE}" in (opt_ml / "output" / "failure").read_text()


def test_broken_production_profile_does_not_fail_the_gate(models, sample_data, tmp_path: Path):
    production = tmp_path / "production"
    shutil.copytree(models["good"], production)
    (production / PROFILE_FILE).write_text('{"version": 0}')
    code, decision = _run(models["good"], production, sample_data["holdout"], tmp_path / "out")
    assert (code, decision["promote"], decision["prediction_drift"]) == (0, True, None)
    assert any("unsupported profile version 0" in r for r in decision["reasons"])
