"""The generic side of the model contract: nobody edits this file to swap the algorithm.

``Predictor`` wraps whatever ``model.py`` builds. It owns what every algorithm needs the same way:
the feature order and kinds, the categories of each text column (as integer codes for the
estimator; an unseen category counts as missing), the classes and their order, the positive
class and the decision threshold (binary), predictions per problem type, and the model folder:

    metadata.json   data only: features, categories, classes, threshold, hyperparameters, metrics
    <model file>    the library's native format, written and read by model.save_native/load_native
    profile.json    the drift reference (written by training, read by validate and evaluate)

``load`` checks the folder before any library reads anything: only known file names, strict JSON
metadata of the expected shape, this project's library and problem type. The native loader then
checks the model file itself (``native``).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import column_roles, data, hyperparameters, model, settings
from .feature_layout import Layout
from .text_features import MAX_TERMS, Vocabulary

METADATA_FILE = "metadata.json"
PROFILE_FILE = "profile.json"
# A compiled copy training may add next to the native file; metadata.json records its SHA-256.
COMPILED_FILES = frozenset({"model.onnx"})
COMPILED_PRECISIONS = ("float32", "float64")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
METADATA_VERSION = 1
MAX_METADATA_BYTES = 16 * 1024 * 1024
# A categorical feature keeps its most frequent levels only: a column of thousands of distinct values
# is never silently one-hot encoded (issue 23); the rest read as unseen (missing) categories.
MAX_CATEGORY_LEVELS = 200
MAX_NATIVE_GRADE = 30  # LightGBM's default label_gain covers grades 0..30


class ModelFolderError(ValueError):
    """A model folder refused before any library read it; the message names the file and cause."""


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray | None = None  # classification: original label values (str/int/float), (n,)
    scores: np.ndarray | None = None  # binary: positive-class probability, (n,)
    probabilities: np.ndarray | None = None  # classification: (n, k), columns in Predictor.classes order
    values: np.ndarray | None = None  # regression: (n,); ranking: the score, higher = ranked first


def label_key(value: object) -> str:
    """One spelling per label or category: 1.0, 1 and "1" are the same value."""
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return str(int(value))
    return str(value).strip()


def _json_label(value: object) -> Any:
    """A label as JSON-native data: integral numbers as int, other numbers as float, else str."""
    if isinstance(value, float | np.floating | int | np.integer) and not isinstance(value, bool):
        number = float(value)
        return int(number) if number.is_integer() else number
    return str(value).strip()


@dataclass
class Predictor:
    problem_type: str
    library: str
    feature_names: list[str]
    feature_kinds: list[str]  # "numeric" | "categorical" | "text", same order
    classes: list[Any]  # JSON-native labels, [] for regression
    positive_class: Any | None  # binary only
    threshold: float | None  # binary only
    estimator: Any
    categories: dict[str, list[str]] = field(default_factory=dict)  # categorical column -> codes order
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    example: list[Any] = field(default_factory=list)  # one raw training row in feature order
    text: dict[str, Vocabulary] = field(default_factory=dict)  # text feature -> its TF-IDF vocabulary
    columns: dict[str, Any] = field(default_factory=dict)  # the other roles: column_roles.Roles.to_json()
    training: dict[str, Any] = field(default_factory=dict)  # rows seen: {"rows": n, "rows_per_host": {...}}

    def __post_init__(self) -> None:
        self._codes = {name: {c: float(i) for i, c in enumerate(v)} for name, v in self.categories.items()}
        sizes = {name: len(vocabulary.terms) for name, vocabulary in self.text.items()}
        self.layout = Layout.of(self.feature_names, self.feature_kinds, sizes)
        self._categorical = list(self.layout.categorical)
        where = {name: i for i, name in enumerate(self.feature_names)}
        self._plain = [where[name] for name in self.layout.plain]
        self._positive_index = None if self.positive_class is None else self.class_index(self.positive_class)
        self._labels = np.asarray(self.classes, dtype=object)

    def other_columns(self) -> list[str]:
        """The id, timestamp, group and weight columns the model was trained beside (not features)."""
        columns = self.columns or {}
        return [
            *columns.get("id", []),
            *(columns.get(k) for k in ("timestamp", "group", "weight") if columns.get(k)),
        ]

    # ---- training -------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        table: data.Table,
        hyperparameters_: Mapping[str, Any],
        rows: np.ndarray | None = None,
        estimator_params: Mapping[str, Any] | None = None,
    ) -> Predictor:
        """Train on the feature columns of ``table`` (column_roles.py): every column but the label
        (``settings.LABEL_COLUMN``) and the id, timestamp, group and weight columns.

        Several hosts (distributed.py): the encoders (categories, vocabularies, classes) are fitted
        on the whole ``table``, identical on every host; the estimator sees only ``rows`` (this
        host's share) and gets ``estimator_params`` (how it joins the others)."""
        problem_type = settings.PROBLEM_TYPE
        hp = hyperparameters.parse(hyperparameters_, problem_type)
        label = settings.LABEL_COLUMN
        if label not in table.data:
            raise data.DataError(f"no label column {label!r} (columns: {', '.join(table.columns)})")
        if len(table.columns) < 2:
            raise data.DataError(f"no feature columns besides the label {label!r}")
        roles = column_roles.resolve(table, label)
        for line in roles.detected:
            print(line, flush=True)
        names, kinds = list(roles.features), list(roles.features.values())
        categories = {n: _levels(n, table.data[n]) for n, k in roles.features.items() if k == "categorical"}
        text = {n: Vocabulary.fit(table.data[n].tolist()) for n, k in roles.features.items() if k == "text"}
        classes, y = _targets(problem_type, table.data[label], label)
        positive = threshold = None
        if problem_type == "binary":
            positive = _positive_class(hp["positive_class"], classes)
            threshold = float(hp["threshold"])
        predictor = cls(
            problem_type=problem_type,
            library=model.LIBRARY,
            feature_names=names,
            feature_kinds=kinds,
            classes=classes,
            positive_class=positive,
            threshold=threshold,
            estimator=None,
            categories=categories,
            hyperparameters=hp,
            text=text,
            columns=roles.to_json(),
        )
        if rows is not None:
            table, y = table.take(rows), y[rows]
        X = predictor.encode(predictor.features(table))
        own = {k: v for k, v in hp.items() if k in hyperparameters.model_names()}
        layout = predictor.layout
        # text= only when there is text: a model.py written before text columns existed still works.
        extra = (
            {"text": [i for start, stop in layout.text.values() for i in range(start, stop)]} if text else {}
        )
        predictor.estimator = model.build_estimator(
            own, problem_type, predictor._categorical, layout.width, **extra
        )
        if estimator_params:
            predictor.estimator.set_params(**estimator_params)
        weight = None if roles.weight is None else table.data[roles.weight]
        if problem_type == "ranking":
            _fit_ranking(predictor.estimator, X, y, weight, _group_column(table, roles.group))
        else:
            _fit(predictor.estimator, X, y, weight)
        predictor.example = _example(table, names)
        for name, vocabulary in text.items():  # a text may be personal: the warm-up row gets words
            predictor.example[names.index(name)] = " ".join(vocabulary.terms[:10]) or None
        return predictor

    # ---- model input ----------------------------------------------------------------------------

    def features(self, table: data.Table) -> np.ndarray:
        """The model input for a table: float64 if every feature is numeric, else object (str/None)."""
        missing = [c for c in self.feature_names if c not in table.data]
        if missing:
            raise data.DataError(f"missing column(s): {', '.join(missing)}")
        if not self._categorical and not self.text:
            return table.matrix(self.feature_names)
        X = np.empty((table.n_rows, len(self.feature_names)), dtype=object)
        for i, (name, kind) in enumerate(zip(self.feature_names, self.feature_kinds, strict=True)):
            column = table.data[name]
            if kind == "numeric":
                X[:, i] = table.matrix([name])[:, 0]
            elif kind == "text":
                X[:, i] = [None if data.is_missing(v) else str(v) for v in column.tolist()]
            else:
                X[:, i] = [None if data.is_missing(v) else label_key(v) for v in column.tolist()]
        return X

    def encode(self, X: np.ndarray) -> np.ndarray:
        """The estimator's float64 matrix (feature_layout.py): categories as codes, unknown or
        missing ones as NaN; each text feature as its TF-IDF block."""
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise data.DataError(f"expected {len(self.feature_names)} feature columns, got shape {X.shape}")
        if X.dtype == np.float64:
            if self._categorical or self.text:
                first = (
                    self.layout.plain[self._categorical[0]] if self._categorical else next(iter(self.text))
                )
                raise data.DataError(f"column {first!r} is not numeric: pass an object array")
            return X
        out = np.empty((X.shape[0], self.layout.width), dtype=np.float64)
        for name, (start, stop) in self.layout.text.items():
            out[:, start:stop] = self.text[name].transform(X[:, self.feature_names.index(name)].tolist())
        for j, (i, name) in enumerate(zip(self._plain, self.layout.plain, strict=True)):
            column = X[:, i]
            codes = self._codes.get(name)
            if codes is not None:
                out[:, j] = [math.nan if v is None else codes.get(v, math.nan) for v in column.tolist()]
            else:
                out[:, j] = [math.nan if v is None else v for v in column.tolist()]
        return out

    # ---- predictions ----------------------------------------------------------------------------

    def predict(self, X: np.ndarray) -> Predictions:
        encoded = self.encode(X)
        if self.problem_type in ("regression", "ranking"):
            return Predictions(
                values=np.asarray(self.estimator.predict(encoded), dtype=np.float64).reshape(-1)
            )
        probabilities = np.asarray(self.estimator.predict_proba(encoded), dtype=np.float64)
        # Boosters compute in float32: rows sum to 1 within 1e-7 only; make them exact for callers.
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        labels = self._labels
        if self.problem_type == "binary":
            assert self._positive_index is not None and self.threshold is not None
            scores = probabilities[:, self._positive_index]
            negative = 1 - self._positive_index
            picked = np.where(scores >= self.threshold, self._positive_index, negative)
            return Predictions(labels=labels[picked], scores=scores, probabilities=probabilities)
        return Predictions(labels=labels[np.argmax(probabilities, axis=1)], probabilities=probabilities)

    def class_index(self, value: Any) -> int:
        keys = [label_key(c) for c in self.classes]
        try:
            return keys.index(label_key(value))
        except ValueError:
            raise ValueError(f"{value!r} is not a class of the model (classes {keys})") from None

    def drift_scores(self, predictions: Predictions) -> np.ndarray:
        """One number per row for prediction drift: the positive-class score, the top-class
        probability (multiclass) or the predicted value (regression, ranking's score)."""
        if predictions.values is not None:
            return predictions.values
        if predictions.scores is not None:
            return predictions.scores
        assert predictions.probabilities is not None
        return predictions.probabilities.max(axis=1)

    # ---- the model folder -----------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        file_name = model.save_native(self.estimator, directory)
        metadata = {
            "version": METADATA_VERSION,
            "problem_type": self.problem_type,
            "library": self.library,
            "model_file": file_name,
            "feature_names": self.feature_names,
            "feature_kinds": self.feature_kinds,
            "categories": self.categories,
            "classes": self.classes,
            "positive_class": self.positive_class,
            "threshold": self.threshold,
            "hyperparameters": self.hyperparameters,
            "metrics": {k: (None if math.isnan(v) else v) for k, v in self.metrics.items()},
            "example": self.example,
            "columns": self.columns,
            "text": {name: vocabulary.to_json() for name, vocabulary in self.text.items()},
            "training": self.training,
        }
        text = json.dumps(metadata, indent=2, allow_nan=False) + "\n"
        size = len(text.encode("utf-8"))
        if size > MAX_METADATA_BYTES:  # refused when saving, so that a model that saves always loads
            raise data.DataError(
                f"{METADATA_FILE} would be {size} bytes, above the {MAX_METADATA_BYTES}-byte limit that "
                "loading enforces (very many or very long feature names or categories?)"
            )
        (directory / METADATA_FILE).write_text(text)

    @classmethod
    def load(cls, directory: Path) -> Predictor:
        """Every check before any library loads anything; then the native loader's own checks."""
        directory = Path(directory)
        metadata = read_metadata(directory)
        return cls.from_metadata(metadata, model.load_native(directory, metadata))

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], estimator: Any) -> Predictor:
        """The predictor of checked metadata (``read_metadata``) around an estimator already loaded:
        the native one, or a compiled copy (serving/compiled.py)."""
        return cls(
            problem_type=metadata["problem_type"],
            library=metadata["library"],
            feature_names=metadata["feature_names"],
            feature_kinds=metadata["feature_kinds"],
            classes=metadata["classes"],
            positive_class=metadata["positive_class"],
            threshold=metadata["threshold"],
            estimator=estimator,
            categories=metadata["categories"],
            hyperparameters=metadata["hyperparameters"],
            metrics={k: (math.nan if v is None else float(v)) for k, v in metadata["metrics"].items()},
            example=metadata["example"],
            text={name: Vocabulary.from_json(entry) for name, entry in metadata.get("text", {}).items()},
            columns=metadata.get("columns", {}),
        )


def _levels(name: str, column: np.ndarray) -> list[str]:
    """A categorical feature's levels, sorted: its MAX_CATEGORY_LEVELS most frequent ones."""
    counts: dict[str, int] = {}
    for value in column.tolist():
        if not data.is_missing(value):
            key = label_key(value)
            counts[key] = counts.get(key, 0) + 1
    if len(counts) <= MAX_CATEGORY_LEVELS:
        return sorted(counts)
    kept = sorted(counts, key=lambda k: (-counts[k], k))[:MAX_CATEGORY_LEVELS]
    print(
        f"column {name!r}: {len(counts)} categories, the {MAX_CATEGORY_LEVELS} most frequent kept and the "
        "rest read as unseen; declare it text or id in settings.COLUMN_ROLES if it is one",
        flush=True,
    )
    return sorted(kept)


def _fit(estimator: Any, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
    """fit(X, y), with the weight column as sample_weight (a Pipeline routes it to its last step)."""
    if weight is None:
        estimator.fit(X, y)
        return
    steps = getattr(estimator, "steps", None)
    key = f"{steps[-1][0]}__sample_weight" if steps else "sample_weight"
    estimator.fit(X, y, **{key: weight})


def _group_column(table: data.Table, group: str | None) -> np.ndarray:
    """The ranking group (query) of each row: a ranking model orders rows within their group."""
    if group is None:
        raise data.DataError(
            "a ranking problem needs a group column: declare it as 'name': 'group' in settings.COLUMN_ROLES"
        )
    return np.asarray([label_key(v) for v in table.data[group].tolist()], dtype=object)


def _fit_ranking(
    estimator: Any, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, groups: np.ndarray
) -> None:
    """fit with the rows sorted by group (stable) and the group passed as model.FIT_GROUP says:
    "group" = rows per group in order (LightGBM), "qid" = a group code per row (XGBoost), None =
    pointwise (the grades regressed, groups unused)."""
    how = getattr(model, "FIT_GROUP", None)
    if how is None:
        # One training-log line (stderr, like the compiled predictor's): stdout holds the metric lines.
        print(
            "ranking: pointwise model (regression on the relevance grades; groups not used in fit)",
            file=sys.stderr,
            flush=True,
        )
        _fit(estimator, X, y, weight)
        return
    # LambdaMART's gains are 2^grade - 1 looked up by whole grade: LightGBM's label_gain has 31
    # entries, XGBoost's ndcg refuses grades above 31; a decimal grade failed inside the library.
    if not np.all((y == np.round(y)) & (y <= MAX_NATIVE_GRADE)):
        bad = next(v for v in y.tolist() if v != round(v) or v > MAX_NATIVE_GRADE)
        raise data.DataError(
            f"relevance grade {bad:g}: {model.LIBRARY}'s ranker needs whole-number grades from 0 to "
            f"{MAX_NATIVE_GRADE} (or FIT_GROUP = None in model.py for a pointwise model)"
        )
    _, codes = np.unique(groups, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    X, y, codes = X[order], y[order], codes[order]
    extra: dict[str, Any] = {}
    if weight is not None:
        extra["sample_weight"] = np.asarray(weight)[order]
    if how == "group":
        extra["group"] = np.bincount(codes)[np.unique(codes)]
    elif how == "qid":
        extra["qid"] = codes
    else:
        raise ValueError(f"model.FIT_GROUP must be 'group', 'qid' or None, not {how!r}")
    estimator.fit(X, y, **extra)


def _targets(problem_type: str, column: np.ndarray, label: str) -> tuple[list[Any], np.ndarray]:
    """(classes, y): class indices for classification, float targets for regression, relevance
    grades (numbers >= 0) for ranking."""
    if problem_type == "ranking":
        if column.dtype.kind != "f" or not np.all(np.isfinite(column) & (column >= 0)):
            bad = next(
                (v for v in column.tolist() if not data.is_number(v) or not float(v) >= 0), column.tolist()[0]
            )
            raise data.DataError(
                f"label column {label!r} holds {bad!r}; ranking needs relevance grades (numbers >= 0)"
            )
        return [], column.astype(np.float64)
    if problem_type == "regression":
        if column.dtype.kind != "f":
            bad = next(v for v in column.tolist() if not data.is_number(v))
            raise data.DataError(
                f"label column {label!r} is not numeric (value {bad!r}); regression needs numbers"
            )
        y = column.astype(np.float64)
        # The regression analogue of one class: nothing to learn, and r2 is undefined on it.
        if len(y) and np.all(y == y[0]):
            raise data.DataError(
                f"label column {label!r} has one value ({y[0]:g}) in every row; regression needs targets that vary"
            )
        return [], y
    keys = [label_key(v) for v in column.tolist()]
    distinct = sorted(set(keys), key=_sort_key)
    if len(distinct) < 2 or (problem_type == "binary" and len(distinct) != 2):
        kind = "exactly two" if problem_type == "binary" else "at least two"
        raise data.DataError(
            f"label column {label!r} has {len(distinct)} class(es) {distinct[:5]}; "
            f"a {problem_type} model needs {kind}"
        )
    index = {k: i for i, k in enumerate(distinct)}
    first = {}
    for key, value in zip(keys, column.tolist(), strict=True):
        first.setdefault(key, value)
    classes = [_json_label(first[k]) for k in distinct]
    return classes, np.asarray([index[k] for k in keys], dtype=np.int64)


def _sort_key(key: str) -> tuple[int, float, str]:
    """Numbers in numeric order (2 before 10), then text in text order."""
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)


def _positive_class(chosen: str, classes: list[Any]) -> Any:
    if chosen == "":
        return classes[1]
    keys = [label_key(c) for c in classes]
    if label_key(chosen) not in keys:
        raise hyperparameters.HyperparameterError(
            f"hyperparameter positive_class={chosen!r}: not a class of the label (classes: {', '.join(keys)})"
        )
    return classes[keys.index(label_key(chosen))]


def _example(table: data.Table, names: list[str]) -> list[Any]:
    """The first complete row (else the first row), JSON-native, for a serving warm-up."""

    def row(i: int) -> list[Any]:
        return [_cell(table.data[n][i]) for n in names]

    for i in range(table.n_rows):
        cells = row(i)
        if all(c is not None for c in cells):
            return cells
    return row(0)


def _cell(value: object) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return None if data.is_missing(value) else label_key(value)


# ---- metadata: strict shape checks before anything else is read ---------------------------------


def _reject(path: Path, message: str) -> None:
    raise ModelFolderError(f"{path}: {message}")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def check_files(directory: Path, model_file: str) -> None:
    """Only the files a model folder holds: anything else (a pickle, a script, a symlink) is refused."""
    allowed = {METADATA_FILE, PROFILE_FILE, model_file, *COMPILED_FILES}
    if not directory.is_dir():
        _reject(directory, "no such model folder")
    unknown = sorted(
        p.name for p in directory.iterdir() if p.name not in allowed or p.is_symlink() or not p.is_file()
    )
    if unknown:
        _reject(directory, f"refusing unknown file(s) in the model folder: {', '.join(unknown[:5])}")


def read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / METADATA_FILE
    if not path.is_file():
        _reject(directory, f"no {METADATA_FILE} (not a model of this project)")
    if path.stat().st_size > MAX_METADATA_BYTES:
        _reject(path, f"larger than {MAX_METADATA_BYTES} bytes")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as error:
        _reject(path, f"not valid JSON ({error})")
    if not isinstance(metadata, dict):
        _reject(path, "not a JSON object")
    _check_shape(path, metadata)
    check_files(directory, metadata["model_file"])
    return metadata


def record_compiled(directory: Path, file_name: str, sha256: str, precision: str) -> None:
    """Add the compiled copy's entry to metadata.json: serving verifies the file against it."""
    path = Path(directory) / METADATA_FILE
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata["compiled"] = {"file": file_name, "sha256": sha256, "precision": precision}
    path.write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")


def _check_compiled(path: Path, metadata: dict[str, Any]) -> None:
    """The optional ``compiled`` entry: the compiled file's name, SHA-256 and precision."""
    record = metadata.get("compiled")
    if record is None:
        return
    if (
        not isinstance(record, dict)
        or set(record) != {"file", "sha256", "precision"}
        or record["file"] not in COMPILED_FILES
        or not isinstance(record["sha256"], str)
        or not SHA256.match(record["sha256"])
        or record["precision"] not in COMPILED_PRECISIONS
    ):
        _reject(path, "field 'compiled' must be {file: model.onnx, sha256: 64 hex digits, precision}")


def _check_shape(path: Path, metadata: dict[str, Any]) -> None:
    if metadata.get("version") != METADATA_VERSION:
        _reject(
            path, f"unsupported metadata version {metadata.get('version')!r} (expected {METADATA_VERSION})"
        )
    expected: dict[str, type | tuple[type, ...]] = {
        "problem_type": str,
        "library": str,
        "model_file": str,
        "feature_names": list,
        "feature_kinds": list,
        "categories": dict,
        "classes": list,
        "hyperparameters": dict,
        "metrics": dict,
        "example": list,
    }
    for key, kind in expected.items():
        if not isinstance(metadata.get(key), kind):
            _reject(path, f"field {key!r} missing or not a {getattr(kind, '__name__', kind)}")
    if metadata["library"] != model.LIBRARY:
        _reject(path, f"model was trained with {metadata['library']!r}; this project loads {model.LIBRARY!r}")
    if metadata["problem_type"] != settings.PROBLEM_TYPE:
        _reject(
            path,
            f"model is for problem type {metadata['problem_type']!r}; this project is {settings.PROBLEM_TYPE!r}",
        )
    if metadata["model_file"] != model.MODEL_FILE:
        _reject(path, f"model file {metadata['model_file']!r} is not this project's {model.MODEL_FILE!r}")
    names, kinds = metadata["feature_names"], metadata["feature_kinds"]
    if not names or len(names) != len(kinds) or not all(isinstance(n, str) for n in names):
        _reject(path, "feature_names must be a non-empty list of names, one kind each")
    if set(kinds) - {"numeric", "categorical", "text"}:
        _reject(path, "feature_kinds must be 'numeric', 'categorical' or 'text'")
    categorical = {n for n, k in zip(names, kinds, strict=True) if k == "categorical"}
    categories = metadata["categories"]
    if set(categories) != categorical or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in categories.values()
    ):
        _reject(path, "categories must list the text values of each categorical feature")
    _check_classes(path, metadata)
    _check_compiled(path, metadata)
    _check_text(path, metadata)
    _check_columns(path, metadata)


def _check_text(path: Path, metadata: dict[str, Any]) -> None:
    """``text``: one capped vocabulary per text feature, words and positive finite IDF values."""
    text = metadata.get("text", {})
    names = {
        n for n, k in zip(metadata["feature_names"], metadata["feature_kinds"], strict=True) if k == "text"
    }
    if not isinstance(text, dict) or set(text) != names:
        _reject(path, "field 'text' must hold one vocabulary per text feature")
    for name, entry in text.items():
        ok = isinstance(entry, dict) and set(entry) == {"terms", "idf"}
        terms, idf = (entry.get("terms"), entry.get("idf")) if ok else (None, None)
        ok = ok and isinstance(terms, list) and isinstance(idf, list) and len(terms) == len(idf) <= MAX_TERMS
        ok = ok and all(isinstance(t, str) for t in terms) and len(set(terms)) == len(terms)
        ok = ok and all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in idf)
        if not ok:
            _reject(
                path, f"text feature {name!r}: expected at most {MAX_TERMS} distinct terms, one IDF > 0 each"
            )


def _check_columns(path: Path, metadata: dict[str, Any]) -> None:
    """``columns``: the id, timestamp, group and weight columns, none of them a feature."""
    columns = metadata.get("columns", {})
    if not columns:
        return
    single = ("timestamp", "group", "weight")
    if not isinstance(columns, dict) or set(columns) != {"id", *single}:
        _reject(path, "field 'columns' must be {id: [...], timestamp, group, weight}")
    named = [c for c in (columns["timestamp"], columns["group"], columns["weight"]) if c is not None]
    ids = columns["id"]
    if not isinstance(ids, list) or not all(isinstance(c, str) for c in [*ids, *named]):
        _reject(path, "field 'columns' must name columns as strings")
    if set(ids + named) & set(metadata["feature_names"]):
        _reject(path, "field 'columns' names a feature: an id, timestamp, group or weight column is not one")


def _check_classes(path: Path, metadata: dict[str, Any]) -> None:
    classes = metadata["classes"]
    if not all(isinstance(c, str | int | float) and not isinstance(c, bool) for c in classes):
        _reject(path, "classes must be strings or numbers")
    if metadata["problem_type"] in ("regression", "ranking"):
        if classes:
            _reject(path, f"a {metadata['problem_type']} model has no classes")
        return
    if len(classes) < 2:
        _reject(path, "a classifier needs at least two classes")
    if metadata["problem_type"] == "binary":
        threshold = metadata.get("threshold")
        if len(classes) != 2 or metadata.get("positive_class") not in classes:
            _reject(path, "a binary model needs two classes and a positive_class among them")
        if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
            _reject(path, "threshold must be a number in [0, 1]")
