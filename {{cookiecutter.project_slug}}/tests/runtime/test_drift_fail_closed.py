"""An unusable reference profile never lets drift pass unchecked silently (issue 15).

Under ``drift_policy=block`` validation blocks with the reason; under ``retrain`` it proceeds and
says so in decision.json (``reference_usable: false`` + ``reference_problem``) and in the report.
Data unlike the sample (tests/support/datasets.py for the project's problem type): other column names,
string labels, categorical columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import datasets
import pytest

from {{ cookiecutter.package_name }} import settings
from {{ cookiecutter.package_name }}.drift.profile import PROFILE_FILE, build_profile
from {{ cookiecutter.package_name }}.predictor import METADATA_FILE
from {{ cookiecutter.package_name }}.steps import validate


@pytest.fixture(scope="module")
def tables():
    return datasets.for_problem(settings.PROBLEM_TYPE)  # string labels and categorical columns


@pytest.fixture(scope="module")
def data_dirs(tables, tmp_path_factory) -> dict[str, Path]:
    train, holdout = tables
    return datasets.write(tmp_path_factory.mktemp("data"), train, holdout)


@pytest.fixture(scope="module")
def profile(tables) -> dict:
    train, _ = tables
    features = [c for c in train.columns if c != settings.LABEL_COLUMN]
    return build_profile(train, features)


@pytest.fixture(autouse=True)
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPT_ML_ROOT", str(tmp_path / "opt_ml"))
    return tmp_path / "opt_ml"


def reference(folder: Path, profile_text: str | None) -> Path:
    """A reference model folder: validation reads only its profile (the model itself is not loaded)."""
    folder.mkdir(parents=True)
    (folder / METADATA_FILE).write_text("{}")
    if profile_text is not None:
        (folder / PROFILE_FILE).write_text(profile_text)
    return folder


def run(data_dir: Path, model: Path | str, output: Path, *extra: str) -> tuple[int, dict, str]:
    code = validate.main(
        ["--data", str(data_dir), "--reference-model", str(model), "--output", str(output), *extra]
    )
    return code, json.loads((output / "decision.json").read_text()), (output / "report.html").read_text()


def _without(key: str) -> Callable[[dict], dict]:
    return lambda p: {k: v for k, v in p.items() if k != key}


def _numeric(profile: dict) -> str:
    return next(n for n, c in profile["columns"].items() if c["type"] == "numeric")


def _categorical(profile: dict) -> str:
    return next(n for n, c in profile["columns"].items() if c["type"] == "categorical")


def _drop_field(kind: Callable[[dict], str], field: str) -> Callable[[dict], dict]:
    def damage(p: dict) -> dict:
        p = json.loads(json.dumps(p))
        del p["columns"][kind(p)][field]
        return p

    return damage


def _cut_cum(p: dict) -> dict:
    p = json.loads(json.dumps(p))
    p["columns"][_numeric(p)]["cum"].pop()
    return p


# (id, profile text built from the good profile, a word the reason must contain)
DAMAGE = [
    ("unparseable", lambda p: json.dumps(p)[:-40], "cannot read"),
    ("not-an-object", lambda p: "[1, 2, 3]", "unsupported profile version"),
    ("old-version", lambda p: json.dumps({**p, "version": 0}), "unsupported profile version 0"),
    ("no-feature-names", lambda p: json.dumps(_without("feature_names")(p)), "feature_names"),
    ("no-rows", lambda p: json.dumps(_without("n_rows")(p)), "n_rows"),
    ("numeric-without-edges", lambda p: json.dumps(_drop_field(_numeric, "edges")(p)), "edges"),
    ("categorical-without-counts", lambda p: json.dumps(_drop_field(_categorical, "counts")(p)), "counts"),
    ("inconsistent-cdf", lambda p: json.dumps(_cut_cum(p)), "inconsistent"),
    ("no-profile-file", None, "has no profile.json"),
]


@pytest.mark.parametrize(("damage", "word"), [(d, w) for _, d, w in DAMAGE], ids=[i for i, _, _ in DAMAGE])
def test_block_policy_blocks_on_an_unusable_profile(data_dirs, profile, tmp_path, damage, word):
    model = reference(tmp_path / "model", None if damage is None else damage(profile))
    code, decision, html = run(data_dirs["train"], model, tmp_path / "out", "--policy", "block")
    assert code == 0  # a block is a decision (the state machine notifies it), not a crash
    assert decision["decision"] == "block" and decision["policy"] == "block"
    assert decision["reference_usable"] is False
    assert word in decision["reference_problem"]
    assert any("drift not checked" in r and word in r for r in decision["reasons"])
    assert "BLOCKED: reference profile unusable" in html


@pytest.mark.parametrize(("damage", "word"), [(d, w) for _, d, w in DAMAGE], ids=[i for i, _, _ in DAMAGE])
def test_retrain_policy_proceeds_but_says_drift_was_not_checked(data_dirs, profile, tmp_path, damage, word):
    model = reference(tmp_path / "model", None if damage is None else damage(profile))
    code, decision, html = run(data_dirs["train"], model, tmp_path / "out", "--policy", "retrain")
    assert (code, decision["decision"], decision["drift_detected"]) == (0, "proceed", False)
    assert decision["reference_usable"] is False and word in decision["reference_problem"]
    assert any("training goes on without a drift check" in r for r in decision["reasons"])
    assert "PROCEED: drift NOT checked" in html and "PROCEED: no drift" not in html


@pytest.mark.parametrize(("policy", "expected"), [("block", "block"), ("retrain", "proceed")])
def test_the_policy_comes_from_settings(data_dirs, profile, tmp_path, monkeypatch, policy, expected):
    monkeypatch.setattr(settings, "DRIFT_POLICY", policy)
    model = reference(tmp_path / "model", json.dumps({**profile, "version": 0}))
    _, decision, _ = run(data_dirs["train"], model, tmp_path / "out")  # no --policy flag
    assert (decision["policy"], decision["decision"]) == (policy, expected)


@pytest.mark.parametrize("policy", ["block", "retrain"])
def test_a_usable_profile_is_checked(data_dirs, profile, tmp_path, policy):
    model = reference(tmp_path / "model", json.dumps(profile))
    code, decision, html = run(data_dirs["holdout"], model, tmp_path / "out", "--policy", policy)
    assert code == 0
    assert decision["reference_usable"] is True and decision["reference_problem"] is None
    assert set(decision["features"]) == set(profile["feature_names"])  # every feature was compared
    assert "NOT checked" not in html


@pytest.mark.parametrize("policy", ["block", "retrain"])
def test_the_first_run_proceeds_under_both_policies(data_dirs, tmp_path, policy):
    """No production model: nothing for drift to protect (the gate's minimum still applies)."""
    code, decision, _ = run(data_dirs["train"], "none", tmp_path / "out", "--policy", policy)
    assert (code, decision["decision"], decision["reference_usable"]) == (0, "proceed", False)
    assert decision["reference_problem"] == validate.FIRST_RUN


def test_a_damaged_label_profile_is_unusable_too(data_dirs, profile, tmp_path):
    damaged = json.loads(json.dumps(profile))
    damaged["label"] = {"type": "categorical", "n": 10}  # no column name, no counts
    model = reference(tmp_path / "model", json.dumps(damaged))
    _, decision, _ = run(data_dirs["train"], model, tmp_path / "out", "--policy", "block")
    assert decision["decision"] == "block" and "label" in decision["reference_problem"]


def test_an_unreadable_model_archive_still_fails_the_step(data_dirs, tmp_path, opt_ml):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"not a tar archive")
    code = validate.main(["--data", str(data_dirs["train"]), "--reference-model", str(archive),
                          "--output", str(tmp_path / "out"), "--policy", "retrain"])  # fmt: skip
    assert code == 1
    assert "unreadable input" in (opt_ml / "output" / "failure").read_text()
