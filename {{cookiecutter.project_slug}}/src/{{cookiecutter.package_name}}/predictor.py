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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import data, hyperparameters, model, settings

METADATA_FILE = "metadata.json"
PROFILE_FILE = "profile.json"
# A compiled copy of the model that serving may add next to the native file.
COMPILED_FILES = frozenset({"model.onnx"})
METADATA_VERSION = 1
MAX_METADATA_BYTES = 16 * 1024 * 1024


class ModelFolderError(ValueError):
    """A model folder refused before any library read it; the message names the file and cause."""


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray | None = None  # classification: original label values (str/int/float), (n,)
    scores: np.ndarray | None = None  # binary: positive-class probability, (n,)
    probabilities: np.ndarray | None = None  # classification: (n, k), columns in Predictor.classes order
    values: np.ndarray | None = None  # regression: (n,)


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


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return str(value).strip().lower() in data.MISSING


def distinct(column: np.ndarray) -> tuple[list[Any], np.ndarray]:
    """(values, inverse): the column's distinct cells (text in order of first appearance), and for
    each row the index of its value, so ``values[inverse[i]] == column[i]``. Python then runs once per
    distinct value, not per row. Text goes through Arrow's hash table; numbers through np.unique
    (NaN is one value); a column of mixed Python objects, built by hand, is walked in Python."""
    if column.dtype.kind == "f":
        values, inverse = np.unique(column, return_inverse=True)  # sorted: distinct floats have distinct keys
        return values.tolist(), inverse.reshape(-1)
    import pyarrow as pa  # only where tables are encoded (training, evaluate), never in serving
    import pyarrow.compute as pc

    try:
        cells = pa.array(column, type=pa.string())  # None is null; a float NaN is not a str: below
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        index: dict[Any, int] = {}
        inverse = np.fromiter(
            (index.setdefault(v, len(index)) for v in column.tolist()), np.int64, len(column)
        )
        return list(index), inverse
    values = pc.unique(cells)
    return values.to_pylist(), pc.index_in(cells, value_set=values).to_numpy(zero_copy_only=False)


def _codes_of(cells: np.ndarray, codes: dict[str, float]) -> np.ndarray:
    """Category codes of a request's cells (str or None) by exact match; anything else is NaN.
    A dict lookup per cell: a request holds at most ~14,000 rows (6 MB), and the codecs already
    made a Python object per cell; pyarrow's fixed cost per call was the larger below ~100 rows."""
    return np.fromiter((codes.get(v, math.nan) for v in cells.tolist()), np.float64, len(cells))


@dataclass
class Predictor:
    problem_type: str
    library: str
    feature_names: list[str]
    feature_kinds: list[str]  # "numeric" | "categorical", same order
    classes: list[Any]  # JSON-native labels, [] for regression
    positive_class: Any | None  # binary only
    threshold: float | None  # binary only
    estimator: Any
    categories: dict[str, list[str]] = field(default_factory=dict)  # categorical column -> codes order
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    example: list[Any] = field(default_factory=list)  # one raw training row in feature order

    def __post_init__(self) -> None:
        self._codes = {name: {c: float(i) for i, c in enumerate(v)} for name, v in self.categories.items()}
        self._categorical = [i for i, kind in enumerate(self.feature_kinds) if kind == "categorical"]
        self._numeric = [i for i, kind in enumerate(self.feature_kinds) if kind == "numeric"]
        self._positive_index = None if self.positive_class is None else self.class_index(self.positive_class)
        self._labels = np.asarray(self.classes, dtype=object)

    # ---- training -------------------------------------------------------------------------------

    @classmethod
    def fit(cls, table: data.Table, hyperparameters_: Mapping[str, Any]) -> Predictor:
        """Train on every column of ``table`` but the label (``settings.LABEL_COLUMN``)."""
        problem_type = settings.PROBLEM_TYPE
        hp = hyperparameters.parse(hyperparameters_, problem_type)
        label = settings.LABEL_COLUMN
        if label not in table.data:
            raise data.DataError(f"no label column {label!r} (columns: {', '.join(table.columns)})")
        names = [c for c in table.columns if c != label]
        if not names:
            raise data.DataError(f"no feature columns besides the label {label!r}")
        kinds = ["numeric" if table.is_numeric(c) else "categorical" for c in names]
        categories = {
            n: sorted({label_key(v) for v in distinct(table.data[n])[0] if not _is_missing(v)})
            for n, k in zip(names, kinds, strict=True)
            if k == "categorical"
        }
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
        )
        X = predictor.encode(predictor.features(table))
        own = {k: v for k, v in hp.items() if k in hyperparameters.model_names()}
        predictor.estimator = model.build_estimator(own, problem_type, predictor._categorical, len(names))
        predictor.estimator.fit(X, y)
        predictor.example = _example(table, names)
        return predictor

    # ---- model input ----------------------------------------------------------------------------

    def features(self, table: data.Table) -> np.ndarray:
        """The model input for a table: one float64 matrix in feature order, each categorical column
        as its category codes (an unseen or missing category: NaN). ``predict`` takes it as is.

        Column by column, without Python per cell: numeric columns are copied, categorical ones
        mapped through their distinct values (issue 25: the object matrix this built before was
        most of training's memory and time)."""
        present = set(table.data)
        missing = [c for c in self.feature_names if c not in present]
        if missing:
            raise data.DataError(f"missing column(s): {', '.join(missing)}")
        X = np.empty((table.n_rows, len(self.feature_names)), dtype=np.float64)
        for i, (name, kind) in enumerate(zip(self.feature_names, self.feature_kinds, strict=True)):
            column = table.data[name]
            if kind == "categorical":
                values, inverse = distinct(column)
                codes = self._codes[name]
                lookup = [math.nan if _is_missing(v) else codes.get(label_key(v), math.nan) for v in values]
                X[:, i] = np.asarray(lookup, dtype=np.float64)[inverse]
            elif column.dtype.kind == "f":
                X[:, i] = column
            else:
                X[:, i] = table.matrix([name])[:, 0]  # raises, naming the text cell
        return X

    def encode(self, X: np.ndarray) -> np.ndarray:
        """The estimator's float64 matrix. ``X`` is either ``features``' matrix (float64, returned
        as is) or rows as the serving codecs decode them (object: a float or None per numeric cell,
        a str or None per categorical one); unknown or missing categories become NaN."""
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise data.DataError(f"expected {len(self.feature_names)} feature columns, got shape {X.shape}")
        if X.dtype == np.float64:
            return X
        out = np.empty(X.shape, dtype=np.float64)
        out[:, self._numeric] = X[:, self._numeric].astype(np.float64)  # None -> NaN
        for i in self._categorical:
            out[:, i] = _codes_of(X[:, i], self._codes[self.feature_names[i]])
        return out

    # ---- predictions ----------------------------------------------------------------------------

    def predict(self, X: np.ndarray) -> Predictions:
        encoded = self.encode(X)
        if self.problem_type == "regression":
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
        probability (multiclass) or the predicted value (regression)."""
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
        }
        (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Predictor:
        """Every check before any library loads anything; then the native loader's own checks."""
        directory = Path(directory)
        metadata = read_metadata(directory)
        return cls.from_metadata(metadata, model.load_native(directory, metadata["model_file"]))

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
        )


def _targets(problem_type: str, column: np.ndarray, label: str) -> tuple[list[Any], np.ndarray]:
    """(classes, y): class indices for classification, float targets for regression."""
    if problem_type == "regression":
        if column.dtype.kind != "f":
            bad = next(v for v in column.tolist() if not _is_number(v))
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
    values, inverse = distinct(column)
    keys = [label_key(v) for v in values]
    ordered = sorted(set(keys), key=_sort_key)
    if len(ordered) < 2 or (problem_type == "binary" and len(ordered) != 2):
        kind = "exactly two" if problem_type == "binary" else "at least two"
        raise data.DataError(
            f"label column {label!r} has {len(ordered)} class(es) {ordered[:5]}; "
            f"a {problem_type} model needs {kind}"
        )
    index = {k: i for i, k in enumerate(ordered)}
    first: dict[str, Any] = {}
    for key, value in zip(keys, values, strict=True):
        first.setdefault(key, value)
    classes = [_json_label(first[k]) for k in ordered]
    return classes, np.asarray([index[k] for k in keys], dtype=np.int64)[inverse]


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


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
    complete = np.ones(table.n_rows, dtype=bool)
    for name in names:
        column = table.data[name]
        if column.dtype.kind == "f":
            complete &= ~np.isnan(column)
        else:
            values, inverse = distinct(column)
            complete &= ~np.asarray([_is_missing(v) for v in values], dtype=bool)[inverse]
    row = int(np.argmax(complete)) if complete.any() else 0
    return [_cell(table.data[n][row]) for n in names]


def _cell(value: object) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return None if _is_missing(value) else label_key(value)


# ---- metadata: strict shape checks before anything else is read ---------------------------------


def _reject(path: Path, message: str) -> None:
    raise ModelFolderError(f"{path}: {message}")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def check_files(directory: Path, model_file: str) -> None:
    """Only the files a model folder holds: anything else (a pickle, a script) is refused."""
    allowed = {METADATA_FILE, PROFILE_FILE, model_file, *COMPILED_FILES}
    if not directory.is_dir():
        _reject(directory, "no such model folder")
    unknown = sorted(p.name for p in directory.iterdir() if p.name not in allowed or not p.is_file())
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
    if set(kinds) - {"numeric", "categorical"}:
        _reject(path, "feature_kinds must be 'numeric' or 'categorical'")
    categorical = {n for n, k in zip(names, kinds, strict=True) if k == "categorical"}
    categories = metadata["categories"]
    if set(categories) != categorical or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in categories.values()
    ):
        _reject(path, "categories must list the text values of each categorical feature")
    _check_classes(path, metadata)


def _check_classes(path: Path, metadata: dict[str, Any]) -> None:
    classes = metadata["classes"]
    if not all(isinstance(c, str | int | float) and not isinstance(c, bool) for c in classes):
        _reject(path, "classes must be strings or numbers")
    if metadata["problem_type"] == "regression":
        if classes:
            _reject(path, "a regression model has no classes")
        return
    if len(classes) < 2:
        _reject(path, "a classifier needs at least two classes")
    if metadata["problem_type"] == "binary":
        threshold = metadata.get("threshold")
        if len(classes) != 2 or metadata.get("positive_class") not in classes:
            _reject(path, "a binary model needs two classes and a positive_class among them")
        if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
            _reject(path, "threshold must be a number in [0, 1]")
