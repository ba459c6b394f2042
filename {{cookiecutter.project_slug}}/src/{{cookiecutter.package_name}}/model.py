"""The algorithm: the one file to edit when you swap it (between the REPLACE THIS fences below).

Everything else (training, evaluate and the gate, serving, prediction drift, the tuning job's
ranges) goes through ``predictor.Predictor``, which only uses what this file defines:

- ``HYPERPARAMETERS``: each hyperparameter's type, default, range and search scale;
- ``build_estimator()``: a scikit-learn-API estimator (``fit``, ``predict``, ``predict_proba``);
- ``save_native()`` / ``load_native()``: the library's own file format, read as data, never code;
- ``DISTRIBUTED_TRAINING``: whether several training hosts train one model together (True only
  for an estimator ``distributed.py`` can join to its library's collective; False refuses
  ``training_instance_count`` > 1).

The estimator sees a float64 matrix (``feature_layout.py``): numeric columns as they are (NaN =
missing), each categorical column as integer codes 0..n-1 of its training categories (NaN =
missing, or a category never seen in training), listed in ``categorical``, and after them each
free-text column as a block of TF-IDF columns, one per vocabulary word, listed in ``text``
(passed only when there is a text column). Which columns are features, ids, timestamps, groups
or weights is settings.COLUMN_ROLES's business, not this file's (``column_roles.py``). Labels are
class indices 0..k-1 for classification, numbers for regression and relevance grades (numbers >= 0,
higher = more relevant) for ranking.

Ranking: ``FIT_GROUP`` says how the group column (settings.COLUMN_ROLES, role "group") reaches
``fit``. ``Predictor.fit`` sorts the rows by group (stable) and then passes ``group=<rows per
group, in order>`` for "group" (LightGBM's LGBMRanker), ``qid=<group code per row>`` for "qid"
(XGBoost's XGBRanker), and nothing for None (a pointwise model, which prints one line saying so).
The estimator's ``predict`` returns one score per row; higher = ranked first within its group.

Import the library inside the functions, not at the top: serving with the compiled model
(``serving/compiled.py``) reads only ``LIBRARY`` and ``MODEL_FILE`` from here, so the endpoint
starts without importing the library at all (scikit-learn and SciPy alone take ~2.6 s, issue 13).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import {% if cookiecutter.model_library == "scikit-learn" %}TYPE_CHECKING, {% endif %}Any
{% if cookiecutter.model_library == "scikit-learn" %}
from . import model_files
from .params import Param

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# ---- REPLACE THIS WITH YOUR OWN MODEL ----
LIBRARY = "scikit-learn"
MODEL_FILE = "model.skops"
# One host only: this pipeline has no collective to train one model over several hosts' rows.
DISTRIBUTED_TRAINING = False

HYPERPARAMETERS: tuple[Param, ...] = (
    Param("C", "float", 1.0, 1e-4, 1e4, scale="log", help="inverse regularisation (Ridge: alpha = 1/C)"),
    Param("max_iter", "int", 1000, 10, 100_000, tune=False, help="solver iterations"),
{%- if cookiecutter.problem_type not in ["regression", "ranking"] %}
    Param("class_weight", "categorical", "none", values=("none", "balanced"), help="reweight rare classes"),
{%- endif %}
)

# The exact types a skops file of this pipeline may contain (see model_files.load_skops). Swapping the
# estimator? Train once, run `python -m <package>.skops_types model/model.skops`, and add what it
# lists: the estimator's own classes here, and skops node kinds beyond plain data in SKOPS_NODE_KINDS
# (HistGradientBoosting* needs LossNode, PartialNode, FunctionNode and RandomGeneratorNode; its
# FunctionNode names sklearn.utils.validation.check_array, listed here like a class: a file can
# only name what is listed, so list no function that runs code, such as builtins.eval).
SKOPS_TYPES = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "numpy.dtype",
        "numpy.float64",
        "numpy.ndarray",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.impute._base.SimpleImputer",
{%- if cookiecutter.problem_type in ["regression", "ranking"] %}
        "sklearn.linear_model._ridge.Ridge",
{%- else %}
        "sklearn.linear_model._logistic.LogisticRegression",
{%- endif %}
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
    }
)
SKOPS_NODE_KINDS: frozenset[str] = frozenset()
# Ranking: scikit-learn has no ranker; Ridge regression on the relevance grades (pointwise) ignores groups.
FIT_GROUP = None


def build_estimator(
    hyperparameters: dict[str, Any],
    problem_type: str,
    categorical: list[int],
    n_features: int,
    text: Sequence[int] = (),
) -> Pipeline:
    """Impute and scale numbers, one-hot encode categories, TF-IDF as it is, then a linear model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    prepare: Any = numbers
    if categorical or text:  # ColumnTransformer costs ~0.5 ms a call: only when there is something to split
        numeric = [i for i in range(n_features) if i not in {*categorical, *text}]
        prepare = ColumnTransformer(
            [
                ("numeric", numbers, numeric),
                # Codes seen in training get a column each; NaN (missing, unseen) gets none or its own.
                ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
                # TF-IDF rows are already of unit length: scaling each word column would let rare
                # words dominate (holdout AUC 0.77 against 0.87 unscaled, docs/decisions.md). An
                # imputer that never fires (TF-IDF has no NaN) passes them on: "passthrough" would
                # store a FunctionTransformer, a type that can name code, in the skops file.
                ("text", SimpleImputer(strategy="constant", fill_value=0.0), list(text)),
            ]
        )
    hp = hyperparameters
    if problem_type in ("regression", "ranking"):  # ranking: pointwise, the grades regressed
        final: Any = Ridge(alpha=1.0 / hp["C"], max_iter=hp["max_iter"])
    else:
        weight = None if hp["class_weight"] == "none" else hp["class_weight"]
        final = LogisticRegression(C=hp["C"], max_iter=hp["max_iter"], class_weight=weight)
    return Pipeline([("prepare", prepare), ("estimate", final)])


# ----
# The library's own file format, read as data: change these only with LIBRARY (the checks in
# model_files.py run before the library parses a byte).


def save_native(estimator: Pipeline, directory: Path) -> str:
    import skops.io as sio

    sio.dump(estimator, directory / MODEL_FILE)
    return MODEL_FILE


def load_native(directory: Path, metadata: dict[str, Any]) -> Pipeline:
    estimator = model_files.load_skops(directory / metadata["model_file"], SKOPS_TYPES, SKOPS_NODE_KINDS)
    model_files.pin_threads()
    return estimator
{%- elif cookiecutter.model_library == "xgboost" %}
import numpy as np

from . import model_files, xgboost_json
from .params import Param

# ---- REPLACE THIS WITH YOUR OWN MODEL ----
LIBRARY = "xgboost"
# XGBoost's JSON model (chosen by the extension): https://xgboost.readthedocs.io/en/stable/tutorials/saving_model.html
MODEL_FILE = "model.json"
# Several hosts train one model together (xgboost.collective; see distributed.py).
DISTRIBUTED_TRAINING = True

HYPERPARAMETERS: tuple[Param, ...] = (
    Param("n_estimators", "int", 200, 10, 2000, help="boosting rounds"),
    Param("max_depth", "int", 4, 1, 12, help="depth of each tree"),
    Param("learning_rate", "float", 0.1, 1e-3, 1.0, scale="log", help="shrinkage per round"),
    Param("subsample", "float", 1.0, 0.5, 1.0, help="share of rows per tree"),
    Param("reg_lambda", "float", 1.0, 1e-3, 100.0, scale="log", help="L2 regularisation of leaf weights"),
)
# Ranking: XGBRanker takes each row's query as fit(qid=...) (rows sorted by it).
FIT_GROUP = "qid"


def build_estimator(
    hyperparameters: dict[str, Any],
    problem_type: str,
    categorical: list[int],
    n_features: int,
    text: Sequence[int] = (),
) -> Any:
    """Gradient-boosted trees; categorical codes split natively, NaN goes the learned default way,
    TF-IDF columns (``text``) are plain numbers."""
    import xgboost as xgb

    settings = {
        **hyperparameters,
        "tree_method": "hist",
        "enable_categorical": bool(categorical),
        "feature_types": ["c" if i in categorical else "q" for i in range(n_features)],
        "random_state": 0,
    }
    if problem_type == "ranking":
        # LambdaMART optimising NDCG (the gate's ndcg_at_10), one score per row.
        return xgb.XGBRanker(**settings, objective="rank:ndcg", eval_metric="ndcg@10")
    if problem_type == "regression":
        return xgb.XGBRegressor(**settings)
    return xgb.XGBClassifier(**settings)


# ----
# The library's own file format, read as data: change these only with LIBRARY (the checks in
# model_files.py run before the library parses a byte).


def save_native(estimator: Any, directory: Path) -> str:
    estimator.get_booster().save_model(str(directory / MODEL_FILE))
    return MODEL_FILE


def load_native(directory: Path, metadata: dict[str, Any]) -> model_files.BoosterModel:
    # The whole model checked against the metadata, then XGBoost reads the checked rewrite only.
    checked = xgboost_json.canonical(directory / metadata["model_file"], model_files.Expected.of(metadata))
    import xgboost as xgb

    booster = xgb.Booster(params={"nthread": 1})
    booster.load_model(bytearray(checked))
    model_files.pin_threads()

    def raw(X: np.ndarray) -> np.ndarray:
        return booster.inplace_predict(X)

    return model_files.BoosterModel(raw, booster)
{%- elif cookiecutter.model_library == "lightgbm" %}
import numpy as np

from . import lightgbm_text, model_files
from .params import Param

# ---- REPLACE THIS WITH YOUR OWN MODEL ----
LIBRARY = "lightgbm"
# LightGBM's text model format: https://lightgbm.readthedocs.io/en/stable/Python-API.html
MODEL_FILE = "model.txt"
# Several hosts train one model together (the data-parallel tree learner; see distributed.py).
DISTRIBUTED_TRAINING = True

HYPERPARAMETERS: tuple[Param, ...] = (
    Param("n_estimators", "int", 200, 10, 2000, help="boosting rounds"),
    Param("num_leaves", "int", 15, 2, 256, help="leaves per tree"),
    Param("learning_rate", "float", 0.1, 1e-3, 1.0, scale="log", help="shrinkage per round"),
    Param("min_child_samples", "int", 10, 1, 200, help="rows a leaf needs at least"),
    Param("reg_lambda", "float", 1e-3, 1e-3, 100.0, scale="log", help="L2 regularisation of leaf weights"),
)
# Ranking: LGBMRanker takes the rows per query as fit(group=[sizes]) (rows sorted by query).
FIT_GROUP = "group"


def build_estimator(
    hyperparameters: dict[str, Any],
    problem_type: str,
    categorical: list[int],
    n_features: int,
    text: Sequence[int] = (),
) -> Any:
    """Gradient-boosted trees with leaf-wise growth; categorical codes split natively, TF-IDF
    columns (``text``) are plain numbers."""
    import lightgbm as lgb

    # "categorical_column" is the alias LightGBM's C++ side reads from the estimator's params
    # (the Python "categorical_feature" one is a fit() argument only).
    settings = {**hyperparameters, "categorical_column": categorical, "random_state": 0, "verbose": -1}
    if problem_type == "ranking":
        # LambdaMART optimising NDCG (the gate's ndcg_at_10), one score per row.
        return lgb.LGBMRanker(**settings, objective="lambdarank")
    if problem_type == "regression":
        return lgb.LGBMRegressor(**settings)
    return lgb.LGBMClassifier(**settings)


# ----
# The library's own file format, read as data: change these only with LIBRARY (the checks in
# model_files.py run before the library parses a byte).


def save_native(estimator: Any, directory: Path) -> str:
    estimator.booster_.save_model(str(directory / MODEL_FILE))
    return MODEL_FILE


def load_native(directory: Path, metadata: dict[str, Any]) -> model_files.BoosterModel:
    # The whole model checked against the metadata, then LightGBM reads the checked rewrite only.
    checked = lightgbm_text.canonical(directory / metadata["model_file"], model_files.Expected.of(metadata))
    import lightgbm as lgb

    booster = lgb.Booster(model_str=checked)  # threads: per predict call below
    model_files.pin_threads()

    def raw(X: np.ndarray) -> np.ndarray:
        return booster.predict(X, num_threads=1)

    return model_files.BoosterModel(raw, booster)
{%- endif %}
