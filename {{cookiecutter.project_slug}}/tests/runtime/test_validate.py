"""The validate entrypoint in process: decision.json, report.html, failure file, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }} import data
from {{ cookiecutter.package_name }}.drift.profile import PROFILE_FILE, build_profile, save_profile
from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.settings import COLUMN_ROLES, LABEL_COLUMN, PROBLEM_TYPE
from {{ cookiecutter.package_name }}.steps import validate
from {{ cookiecutter.package_name }}_emulator.sample_data import DRIFTED_FEATURES

CONTRACT_KEYS = {
    "step",
    "decision",
    "drift_detected",
    "policy",
    "share_drifted",
    "drifted_features",
    "features",
    "reasons",
    "reference",
}


@pytest.fixture(scope="module")
def features(sample_data: dict[str, Path]) -> list[str]:
    """This bake's sample features (breast cancer, wine, diabetes or search results), in CSV order:
    not the label, nor a column settings.COLUMN_ROLES declares (ranking's query column)."""
    return [c for c in data.read_csv(sample_data["train"]).columns if c not in (LABEL_COLUMN, *COLUMN_ROLES)]


@pytest.fixture(scope="module")
def reference_model(sample_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on the sample training data, with its profile, as training writes it."""
    table = data.read_csv(sample_data["train"])
    folder = tmp_path_factory.mktemp("reference") / "model"
    predictor = Predictor.fit(table, {})
    predictor.save(folder)
    profile = build_profile(table, predictor.feature_names, roles=predictor.columns or None)
    save_profile(profile, folder / PROFILE_FILE)
    return folder


@pytest.fixture(autouse=True)
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPT_ML_ROOT", str(tmp_path / "opt_ml"))
    return tmp_path / "opt_ml"


def _run(data_path: Path, reference: Path | str, output: Path, *extra: str) -> tuple[int, dict]:
    code = validate.main(
        ["--data", str(data_path), "--reference-model", str(reference), "--output", str(output), *extra]
    )
    return code, json.loads((output / "decision.json").read_text())


def test_same_data_proceeds(sample_data, features, reference_model: Path, tmp_path: Path, opt_ml: Path):
    code, decision = _run(sample_data["train"].parent, reference_model, tmp_path / "out")
    assert code == 0
    assert decision.keys() >= CONTRACT_KEYS
    assert decision["step"] == "validate"
    assert decision["decision"] == "proceed"
    assert decision["drift_detected"] is False
    assert decision["drifted_features"] == []
    assert decision["share_drifted"] == 0.0
    assert sorted(decision["features"]) == sorted(features)
    first = decision["features"][features[0]]
    assert first == {
        **first,
        "psi": 0.0,
        "test": "ks",
        "drifted": False,
    }
    assert decision["reference"] == str(reference_model)
    assert (tmp_path / "out" / "report.html").read_text().startswith("<!doctype html>")
    assert not (opt_ml / "output" / "failure").exists()


@pytest.mark.parametrize(("policy", "expected"), [("retrain", "proceed"), ("block", "block")])
def test_drifted_data_is_detected(
    sample_data, features, reference_model: Path, tmp_path: Path, policy: str, expected: str
):
    code, decision = _run(sample_data["drifted"], reference_model, tmp_path / "out", "--policy", policy)
    assert code == 0  # a block is a decision, not an error
    assert decision["decision"] == expected
    assert decision["policy"] == policy
    assert decision["drift_detected"] is True
    assert set(DRIFTED_FEATURES) <= set(decision["drifted_features"])
    assert decision["share_drifted"] == pytest.approx(
        len(decision["drifted_features"]) / len(features), abs=1e-6
    )
    assert any("features drifted" in reason for reason in decision["reasons"])


def test_label_change_is_named_for_the_problem_type(sample_data, reference_model: Path, tmp_path: Path):
    """Only the label moves: classes re-weighted (classification) or the target shifted (regression)."""
    table = data.read_csv(sample_data["train"])
    label = table.data[LABEL_COLUMN]
    if PROBLEM_TYPE in ("regression", "ranking"):  # ranking: the relevance grades, a number
        table.data[LABEL_COLUMN] = label + float(np.std(label))
        expected = f"label {LABEL_COLUMN!r} label distribution changed"
    else:  # every row of the first class three times over: its share of the rows moves a lot
        first = np.flatnonzero(label == np.unique(label)[0])
        table = table.take(np.concatenate([np.arange(table.n_rows), first, first]))
        expected = f"label {LABEL_COLUMN!r} class balance changed"
    shifted = tmp_path / "shifted" / "train.csv"
    data.write_csv(shifted, table)
    code, decision = _run(shifted.parent, reference_model, tmp_path / "out")
    assert code == 0
    assert decision["label"]["drifted"] is True, decision["label"]
    said = [r for r in decision["reasons"] if r.startswith("label ")]
    assert len(said) == 1 and said[0].startswith(f"{expected} (PSI "), decision["reasons"]


def test_reference_as_archive(sample_data, reference_model: Path, tmp_path: Path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(reference_model, arcname=".")
    code, decision = _run(sample_data["drifted"], archive, tmp_path / "out", "--policy", "block")
    assert (code, decision["decision"]) == (0, "block")


def test_first_run_has_no_reference(sample_data, tmp_path: Path):
    code, decision = _run(sample_data["train"], "none", tmp_path / "out")
    assert code == 0
    assert decision["decision"] == "proceed"
    assert decision["reference"] == "none"
    assert "first run" in decision["reasons"][0]


def test_thresholds_come_from_flags(sample_data, reference_model: Path, tmp_path: Path):
    # Thresholds no data can cross: the drifted copy then passes.
    code, decision = _run(
        sample_data["drifted"],
        reference_model,
        tmp_path / "out",
        "--psi-threshold",
        "1000",
        "--ks-pvalue",
        "0",
    )
    assert (code, decision["decision"], decision["drift_detected"]) == (0, "proceed", False)
    assert decision["thresholds"] == {"psi": 1000.0, "p_value": 0.0}


def test_schema_violation_fails_naming_the_column(
    sample_data, features, reference_model: Path, tmp_path: Path, opt_ml: Path
):
    table = data.read_csv(sample_data["train"])
    missing = features[-1]
    table.columns.remove(missing)
    bad = tmp_path / "bad" / "train.csv"
    data.write_csv(bad, table)
    code, decision = _run(bad.parent, reference_model, tmp_path / "out")
    assert code == 1
    assert decision["decision"] == "fail"
    assert decision.keys() >= CONTRACT_KEYS
    failure = (opt_ml / "output" / "failure").read_text()
    assert "schema violation" in failure and f"'{missing}'" in failure
    assert decision["reasons"] == [failure.strip()]
    assert (opt_ml / "output" / "message").read_text() == failure  # the processing job's ExitMessage
    assert missing in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize("which", ["data", "reference"])
def test_unreadable_input_fails(sample_data, reference_model: Path, tmp_path: Path, opt_ml: Path, which: str):
    missing = tmp_path / "does-not-exist"
    args = (missing, reference_model) if which == "data" else (sample_data["train"], missing)
    code, decision = _run(*args, tmp_path / "out")
    assert (code, decision["decision"]) == (1, "fail")
    assert "unreadable input" in (opt_ml / "output" / "failure").read_text()
    assert str(missing) in decision["reasons"][0]


@pytest.mark.slow
def test_module_entrypoint_exit_codes(sample_data, reference_model: Path, tmp_path: Path):
    """`python -m` as the container runs it: exit 0 on a drift block, 1 on a schema failure."""
    env = {**os.environ, "OPT_ML_ROOT": str(tmp_path / "opt_ml"), "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package_name }}.steps.validate",
        "--reference-model",
        str(reference_model),
    ]
    blocked = subprocess.run(
        [
            *command,
            "--data",
            str(sample_data["drifted"]),
            "--output",
            str(tmp_path / "a"),
            "--policy",
            "block",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert blocked.returncode == 0, blocked.stderr
    assert "validate: block" in blocked.stdout
    failed = subprocess.run(
        [*command, "--data", str(tmp_path / "nothing-here"), "--output", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert failed.returncode == 1
    assert "unreadable input" in failed.stderr
    assert "Traceback" not in failed.stderr  # an expected failure is one clear line, not a stack


def test_reference_without_a_usable_profile_skips_drift(sample_data, reference_model: Path, tmp_path: Path):
    """Under retrain: proceed and say why (under block it blocks: tests/runtime/test_drift_fail_closed.py)."""
    old = tmp_path / "old-model"
    shutil.copytree(reference_model, old)
    (old / PROFILE_FILE).write_text('{"version": 0}')
    code, decision = _run(sample_data["drifted"], old, tmp_path / "out", "--policy", "retrain")
    assert (code, decision["decision"], decision["drift_detected"]) == (0, "proceed", False)
    assert "unsupported profile version 0" in decision["reasons"][0]
    (old / PROFILE_FILE).unlink()
    code, decision = _run(sample_data["drifted"], old, tmp_path / "out2", "--policy", "retrain")
    assert (code, decision["decision"]) == (0, "proceed")
    assert "has no profile.json" in decision["reasons"][0]
