"""Swapping the algorithm touches model.py alone: the README's "Swap the algorithm" as a test.

A baked scikit-learn project gets a random forest, or scikit-learn's HistGradientBoostingClassifier
(whose skops file needs node kinds beyond plain data, issue 23), instead of the logistic
regression, by editing only its model.py (estimator, hyperparameter spec, skops type list); then
its own training, evaluate, problem-type and artifact-safety tests run unchanged, and the model it
trains is the swapped estimator, stored and reloaded through the same contract.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE, lock_venv, summary_counts

pytestmark = pytest.mark.slow

# (old, new) text edits in the generated model.py; each old text must occur exactly once.
FOREST = [
    (
        "    from sklearn.compose import ColumnTransformer\n",
        "    from sklearn.compose import ColumnTransformer\n    from sklearn.ensemble import RandomForestClassifier\n",
    ),
    (
        "    from sklearn.linear_model import LogisticRegression, Ridge\n",
        "    from sklearn.linear_model import Ridge\n",
    ),
    (
        '    Param("C", "float", 1.0, 1e-4, 1e4, scale="log", help="inverse regularisation (Ridge: alpha = 1/C)"),\n'
        '    Param("max_iter", "int", 1000, 10, 100_000, tune=False, help="solver iterations"),\n',
        '    Param("n_estimators", "int", 60, 10, 500, help="trees in the forest"),\n'
        '    Param("max_depth", "int", 6, 1, 30, help="depth of each tree"),\n',
    ),
    (
        '        final: Any = Ridge(alpha=1.0 / hp["C"], max_iter=hp["max_iter"])\n',
        "        final: Any = Ridge()\n",
    ),
    (
        '        final = LogisticRegression(C=hp["C"], max_iter=hp["max_iter"], class_weight=weight)\n',
        "        final = RandomForestClassifier(\n"
        '            n_estimators=hp["n_estimators"], max_depth=hp["max_depth"], class_weight=weight, random_state=0\n'
        "        )\n",
    ),
    (
        '        "sklearn.linear_model._logistic.LogisticRegression",\n',
        '        "numpy.int64",\n'
        '        "sklearn.ensemble._forest.RandomForestClassifier",\n'
        '        "sklearn.tree._classes.DecisionTreeClassifier",\n'
        '        "sklearn.tree._tree.Tree",\n',
    ),
]
# What `python -m <package>.skops_types model/model.skops` listed after the swap, added as it says.
HGB = [
    (
        "    from sklearn.compose import ColumnTransformer\n",
        "    from sklearn.compose import ColumnTransformer\n    from sklearn.ensemble import HistGradientBoostingClassifier\n",
    ),
    FOREST[1],
    (
        FOREST[2][0],
        '    Param("max_iter", "int", 100, 10, 1000, help="boosting iterations"),\n'
        '    Param("learning_rate", "float", 0.1, 1e-3, 1.0, scale="log", help="shrinkage per iteration"),\n',
    ),
    FOREST[3],
    (
        FOREST[4][0],
        "        final = HistGradientBoostingClassifier(\n"
        '            max_iter=hp["max_iter"], learning_rate=hp["learning_rate"], class_weight=weight, random_state=0\n'
        "        )\n",
    ),
    (
        FOREST[5][0],
        '        "numpy.random._generator.Generator",\n'
        '        "numpy.uint64",\n'
        '        "sklearn._loss._loss.CyHalfBinomialLoss",\n'
        '        "sklearn._loss.link.Interval",\n'
        '        "sklearn._loss.link.LogitLink",\n'
        '        "sklearn._loss.loss.HalfBinomialLoss",\n'
        '        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",\n'
        '        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",\n'
        '        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",\n'
        '        "sklearn.preprocessing._label.LabelEncoder",\n',
    ),
    (
        "SKOPS_NODE_KINDS: frozenset[str] = frozenset()\n",
        'SKOPS_NODE_KINDS: frozenset[str] = frozenset({"LossNode", "RandomGeneratorNode"})\n',
    ),
]
# swap -> (edits, training hyperparameters, what the stored estimator must show)
SWAPS = {
    "forest": (FOREST, {"n_estimators": "25"}, ("RandomForestClassifier", "n_estimators", 25)),
    "hist-gradient-boosting": (HGB, {"max_iter": "25"}, ("HistGradientBoostingClassifier", "max_iter", 25)),
}
TESTS = [
    "tests/runtime/test_training.py",
    "tests/runtime/test_evaluate.py",
    "tests/runtime/test_hyperparameters.py",
    "tests/runtime/test_problem_types.py",
    "tests/runtime/test_models_security.py",
]


@pytest.fixture(scope="module", params=list(SWAPS))
def swapped(request, tmp_path_factory) -> tuple[Path, Path]:
    from cookiecutter.main import cookiecutter

    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path_factory.mktemp("swap")),
            extra_context={"problem_type": "binary", "model_library": "scikit-learn"},
        )
    )
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    model = project / "src" / project.name.replace("-", "_") / "model.py"
    text = model.read_text()
    for old, new in SWAPS[request.param][0]:
        assert text.count(old) == 1, f"the generated model.py no longer contains: {old!r}"
        text = text.replace(old, new)
    model.write_text(text)
    changed = [p for p in project.rglob("*") if p.is_file() and before.get(p) != p.read_bytes()]
    assert changed == [model]
    return project, lock_venv(project, tmp_path_factory.mktemp("venv")), request.param


def test_the_swapped_model_py_is_clean(swapped) -> None:
    project, _, _ = swapped
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "src"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_the_project_suite_passes_with_the_swapped_estimator(swapped) -> None:
    project, venv, _ = swapped
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    counts = summary_counts(result.stdout)
    assert counts.get("passed", 0) >= 60 and not counts.get("failed"), counts


def test_training_stores_the_swapped_estimator_through_the_same_contract(swapped, tmp_path: Path) -> None:
    project, venv, swap = swapped
    package = project.name.replace("-", "_")
    _, hyperparameters, (name, parameter, value) = SWAPS[swap]
    script = f"""
import json, sys
from pathlib import Path
from {package} import data
from {package}_emulator import sample_data
from {package}.predictor import Predictor
out = Path(sys.argv[1])
paths = sample_data.write(out / "data")
Predictor.fit(data.read_csv(paths["train"]), {hyperparameters!r}).save(out / "model")
loaded = Predictor.load(out / "model")
final = loaded.estimator.steps[-1][1]
print(json.dumps({{"estimator": type(final).__name__, "value": final.get_params()[{parameter!r}],
                  "hyperparameters": loaded.hyperparameters}}))
"""
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, str(tmp_path)],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert (facts["estimator"], facts["value"]) == (name, value)
    assert "C" not in facts["hyperparameters"]
