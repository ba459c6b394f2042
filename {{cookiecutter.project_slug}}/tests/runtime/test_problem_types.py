"""The baked problem type and library end to end in process, on data unlike the sample.

tests/support/datasets.py builds it: text labels ("yes"/"no", iris species) or a continuous target, text
feature columns, missing cells, and a holdout category training never saw. The real training
entrypoint runs on an /opt/ml tree; evaluate gates the archive it wrote on the type's metric.
"""

from __future__ import annotations

import json
import math
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from datasets import UNSEEN, for_problem, write

from {{ cookiecutter.package_name }} import data, metrics, model
from {{ cookiecutter.package_name }}.drift import data_drift, schema
from {{ cookiecutter.package_name }}.drift.profile import load_profile
from {{ cookiecutter.package_name }}.predictor import Predictor
from {{ cookiecutter.package_name }}.serving import compiled
from {{ cookiecutter.package_name }}.settings import GATE_METRIC, GATE_MINIMUM, LABEL_COLUMN, PROBLEM_TYPE
from {{ cookiecutter.package_name }}.steps import evaluate, train

CLASSES = {
    "binary": ["no", "yes"],
    "multiclass": ["setosa", "versicolor", "virginica"],
    "regression": [],
    "ranking": [],
}
CATEGORICAL = {"binary": "clinic", "multiclass": "lab", "regression": "region", "ranking": "market"}[
    PROBLEM_TYPE
]
# Ranking predicts one score per row, as regression predicts a value: the same shape of answer.
ONE_NUMBER = PROBLEM_TYPE in ("regression", "ranking")
HIGHER = metrics.higher_is_better(GATE_METRIC)


@pytest.fixture(scope="module")
def tables() -> tuple[data.Table, data.Table]:
    return for_problem(PROBLEM_TYPE)


@pytest.fixture(scope="module")
def trained(tables, tmp_path_factory) -> dict[str, Path]:
    """train.main() on an /opt/ml tree with the data set in the train and validation channels."""
    root = tmp_path_factory.mktemp("opt_ml")
    files = write(tmp_path_factory.mktemp("data"), *tables)
    (root / "input" / "config").mkdir(parents=True)
    shutil.copytree(files["train"].parent, root / "input" / "data" / "train")
    shutil.copytree(files["holdout"].parent, root / "input" / "data" / "validation")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPT_ML_ROOT", str(root))
        assert train.main() == 0
    archive = tmp_path_factory.mktemp("candidate") / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "model", arcname=".")
    return {"model": root / "model", "archive": archive, **files}


@pytest.fixture(autouse=True)
def opt_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPT_ML_ROOT", str(tmp_path / "opt_ml"))
    return tmp_path / "opt_ml"


def test_training_writes_the_model_folder_of_this_library(trained):
    # Exactly the model's files, and the compiled copy when it verified (next test).
    assert {p.name for p in trained["model"].iterdir()} - {compiled.COMPILED_FILE} == {
        "metadata.json",
        "profile.json",
        model.MODEL_FILE,
    }
    predictor = Predictor.load(trained["model"])
    assert (predictor.problem_type, predictor.library, predictor.classes) == (
        PROBLEM_TYPE,
        model.LIBRARY,
        CLASSES[PROBLEM_TYPE],
    )
    assert predictor.feature_kinds[predictor.feature_names.index(CATEGORICAL)] == "categorical"
    assert UNSEEN not in predictor.categories[CATEGORICAL]
    assert LABEL_COLUMN not in predictor.feature_names
    if PROBLEM_TYPE == "binary":
        assert (predictor.positive_class, predictor.threshold) == ("yes", 0.5)
    else:
        assert (predictor.positive_class, predictor.threshold) == (None, None)


def test_the_compiled_copy_is_there_exactly_when_it_answers_as_the_library(trained, tables, tmp_path):
    """This data set has a categorical column: some converters refuse it, and regression does not
    verify in float32; then the library serves. Either way, what serving loads answers as the library."""
    train, holdout = tables
    native = Predictor.load(trained["model"])
    # The loaded model of a booster is not the fitted estimator the converters take: fit the same
    # (seeded) model again and export that, as training did.
    refit = Predictor.fit(train, native.hyperparameters)
    refit.save(tmp_path)  # export records its digest in the saved model's metadata.json
    verifies = compiled.export(refit, holdout, tmp_path)
    assert (trained["model"] / compiled.COMPILED_FILE).is_file() == verifies
    served = compiled.load(trained["model"])
    assert isinstance(served.estimator, compiled.CompiledModel) == verifies
    want, got = native.predict(native.features(holdout)), served.predict(served.features(holdout))
    assert compiled.difference(want, got) <= compiled.TOLERANCE


def test_holdout_predictions_have_the_shape_of_the_problem_type(trained, tables):
    predictor = Predictor.load(trained["model"])
    holdout = tables[1]
    predictions = predictor.predict(predictor.features(holdout))
    n = holdout.n_rows
    if ONE_NUMBER:
        assert predictions.values.shape == (n,) and np.isfinite(predictions.values).all()
        assert predictions.labels is None and predictions.probabilities is None
        return
    probabilities = predictions.probabilities
    assert probabilities.shape == (n, len(CLASSES[PROBLEM_TYPE]))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    assert set(predictions.labels.tolist()) <= set(CLASSES[PROBLEM_TYPE])
    if PROBLEM_TYPE == "binary":
        assert np.array_equal(predictions.scores, probabilities[:, 1])
        assert np.array_equal(predictions.labels == "yes", predictions.scores >= 0.5)
    else:
        assert predictions.scores is None
        assert np.array_equal(
            predictions.labels, np.asarray(CLASSES[PROBLEM_TYPE], dtype=object)[probabilities.argmax(axis=1)]
        )


def test_an_unseen_category_predicts_as_a_missing_one(trained, tables):
    predictor = Predictor.load(trained["model"])
    X = predictor.features(tables[1])
    column = predictor.feature_names.index(CATEGORICAL)
    rows = np.flatnonzero(X[:, column] == UNSEEN)
    assert len(rows) > 0
    as_missing = X[rows].copy()
    as_missing[:, column] = None
    unseen, missing = predictor.predict(X[rows]), predictor.predict(as_missing)
    field = "values" if ONE_NUMBER else "probabilities"
    assert np.array_equal(getattr(unseen, field), getattr(missing, field))


def test_logged_metrics_are_the_problem_types(trained):
    predictor = Predictor.load(trained["model"])
    names = metrics.METRICS[PROBLEM_TYPE]
    assert set(predictor.metrics) == {
        f"{split}_{name}" for split in ("train", "validation") for name in names
    }
    assert all(math.isfinite(v) for v in predictor.metrics.values())


def _evaluate(candidate: Path, production: Path | str, holdout: Path, output: Path, *extra: str) -> dict:
    argv = ["--model", str(candidate), "--production-model", str(production)]
    code = evaluate.main([*argv, "--holdout", str(holdout), "--output", str(output), *extra])
    assert code == 0
    return json.loads((output / "decision.json").read_text())


def test_evaluate_gates_the_archive_on_the_type_metric(trained, tables, tmp_path: Path):
    decision = _evaluate(trained["archive"], "none", trained["holdout"], tmp_path / "out")
    # The gate scores what the endpoint answers with: the compiled copy when training recorded one.
    predictor = compiled.load(trained["model"])
    holdout = tables[1]
    expected = metrics.compute(
        PROBLEM_TYPE,
        holdout.data[LABEL_COLUMN],
        predictor.predict(predictor.features(holdout)),
        predictor.classes,
        predictor.positive_class,
        groups=holdout.data["query_id"] if PROBLEM_TYPE == "ranking" else None,
    )
    assert decision["candidate"] == pytest.approx({k: round(v, 6) for k, v in expected.items()}, abs=1e-6)
    assert (decision["metric"], decision["higher_is_better"]) == (GATE_METRIC, HIGHER)
    meets = expected[GATE_METRIC] >= GATE_MINIMUM if HIGHER else expected[GATE_METRIC] <= GATE_MINIMUM
    assert meets, f"the data set must pass the default gate ({GATE_METRIC} {expected[GATE_METRIC]})"
    assert decision["promote"] is True and decision["decision"] == "promote"
    assert decision["candidate_sha256"] and decision["candidate_artifact"] == str(trained["archive"])
    if ONE_NUMBER:
        assert "confusion_matrix" not in decision
    else:
        confusion = decision["confusion_matrix"]
        assert confusion["classes"] == CLASSES[PROBLEM_TYPE]
        assert np.asarray(confusion["counts"]).sum() == holdout.n_rows
    report = (tmp_path / "out" / "report.html").read_text()
    assert ("Predicted vs actual" if ONE_NUMBER else "Confusion matrix") in report
    if PROBLEM_TYPE == "ranking":  # the gate metric per query: how many, and the worst ones
        queries = decision["queries"]
        assert queries["count"] == len(set(holdout.data["query_id"].tolist())) == 60
        assert queries["scored"] + queries["skipped"] == queries["count"] and len(queries["worst"]) == 5
        worst = [q[GATE_METRIC] for q in queries["worst"]]
        assert worst == sorted(worst) and worst[0] <= expected[GATE_METRIC]
        assert "Per query" in report and queries["worst"][0]["group"] in report


def test_a_model_trained_on_broken_labels_is_blocked_against_production(trained, tables, tmp_path: Path):
    train = tables[0].take(slice(None))
    train.data[LABEL_COLUMN] = np.random.default_rng(1).permutation(train.data[LABEL_COLUMN])
    Predictor.fit(train, {}).save(tmp_path / "broken")
    decision = _evaluate(tmp_path / "broken", trained["archive"], trained["holdout"], tmp_path / "out")
    assert decision["promote"] is False
    candidate, production = decision["candidate"][GATE_METRIC], decision["production"][GATE_METRIC]
    assert (candidate < production) if HIGHER else (candidate > production)
    assert any("worse than production" in r for r in decision["reasons"])
    assert decision["prediction_drift"] is not None  # the production profile has a score reference


def test_the_label_is_profiled_and_drift_tested_as_its_kind(trained, tables):
    profile = load_profile(trained["model"] / "profile.json")
    kind = "numeric" if ONE_NUMBER else "categorical"
    assert profile["label"]["type"] == kind
    holdout = tables[1]
    assert schema.check(profile, holdout) == []  # fresh rows of the same source pass the schema
    result = data_drift.compare(profile, holdout, 0.2, 0.01)
    assert result.label is not None and result.label.test == ("ks" if kind == "numeric" else "chi2")
    assert not result.label.drifted
    if ONE_NUMBER:  # a target far outside the reference range is a broken feed
        broken = holdout.take(slice(None))
        broken.data[LABEL_COLUMN] = broken.data[LABEL_COLUMN] * 1000.0
        with pytest.raises(schema.SchemaError, match=f"column '{LABEL_COLUMN}'"):
            schema.check(profile, broken)


@pytest.mark.skipif(PROBLEM_TYPE != "binary", reason="positive class and threshold are binary settings")
def test_positive_class_and_threshold_from_hyperparameters(tables):
    predictor = Predictor.fit(tables[0], {"positive_class": "no", "threshold": "0.8"})
    predictions = predictor.predict(predictor.features(tables[1]))
    assert (predictor.positive_class, predictor.threshold) == ("no", 0.8)
    assert np.array_equal(predictions.scores, predictions.probabilities[:, 0])  # P("no")
    assert np.array_equal(predictions.labels == "no", predictions.scores >= 0.8)
