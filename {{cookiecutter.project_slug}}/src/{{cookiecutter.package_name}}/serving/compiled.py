"""The compiled predictor: the trained model exported to ONNX at training time, served by ONNX Runtime.

Why (measured, docs/decisions.md "Compiled predictor"): scikit-learn spends ~1 ms per 1-row call
in its own input checks and ColumnTransformer plumbing; the same pipeline in ONNX Runtime takes
~6 us. Trees gain less (XGBoost ~80 -> ~5 us, LightGBM ~16 -> ~6 us).

- ``export(predictor, table, directory)`` (training, once): converts the fitted estimator with
  skl2onnx (scikit-learn) or onnxmltools (XGBoost, LightGBM), checks and rewrites it canonically
  with the ``onnx`` library (``onnx_file.canonical``), then predicts ``table`` (the validation
  channel, else the training rows) both ways. ``model.onnx`` is written, and its SHA-256 recorded
  in metadata.json, only if every score, probability or value is within 1e-6 of the library's and
  every label is the same; otherwise, or when the model cannot be converted, one training-log line
  says why and serving uses the library. Precisions are tried in the order of ``precisions``: the
  one the library computes in first (scikit-learn and LightGBM: float64; XGBoost casts features to
  float32), so a feature near the float32 limit (1e38) means to the compiled model what it means to
  the library (issue 22). Regression on targets in the hundreds misses 1e-6 in float32 (~3e-5): for
  scikit-learn through ``double_imputer`` (ONNX ML's Imputer is float32 only) and for boosters
  through ``tree_ensemble`` (ONNX ML's TreeEnsembleRegressor answers in float32).
- ``load(directory)`` (serving, evaluate): the folder and metadata checks of
  ``predictor.read_metadata`` first, always; then, when metadata.json records a compiled copy and
  ONNX Runtime is installed, its digest is verified (``onnx_file.read_verified``) and a Predictor
  whose estimator is the ONNX model is built: the native model is never read, and serving imports
  neither the library nor SciPy (start-up, issue 13). A ``model.onnx`` that metadata.json does not
  record, or whose digest differs, is refused. Else ``Predictor.load``, the library.
  The Predictor still encodes features and decides labels: only the estimator call changes.

ONNX Runtime reads the verified bytes as ONNX explicitly (never as its ORT flatbuffer format, which
it would otherwise pick by a marker in the bytes), with external data confined to an empty folder,
and its session's input and outputs are checked against metadata.json. It is imported, and its
session (and any thread it starts) created, lazily in the process that predicts, so never in
gunicorn's master. A float32 model of a library that computes with feature values in float64
(OVERFLOW_SENSITIVE) answers rows whose features or outputs overflow float32 through the library
instead (``CompiledModel.fallback``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import model_files
from ..data import Table
from ..feature_layout import Layout
from ..predictor import ModelFolderError, Predictions, Predictor, read_metadata, record_compiled
from . import double_imputer, onnx_file, tree_ensemble

COMPILED_FILE = "model.onnx"
TOLERANCE = 1e-6
PRECISIONS = ("float32", "float64")
# The precision each library computes in: tried first (see ``precisions``).
NATIVE_PRECISION = {"scikit-learn": "float64", "lightgbm": "float64", "xgboost": "float32"}
# Libraries whose compiled model computes with feature values (scikit-learn's scalers and linear
# models): in float32 a feature near 1e38 overflows to inf and the answer to NaN, where the
# library answers (issue 22). Trees only compare features, and inf compares as 1e39 does.
OVERFLOW_SENSITIVE = frozenset({"scikit-learn"})
# Booster regression through tree_ensemble, in the precision each booster computes in.
TREE_ENSEMBLE = {("lightgbm", "float64"), ("xgboost", "float32")}
# ai.onnx opset for skl2onnx; onnxmltools' tree converters support up to 15.
SKLEARN_OPSET, TREES_OPSET = 18, 15
FLOAT32_MAX = float(np.finfo(np.float32).max)
# ONNX Runtime session configuration keys (onnxruntime_session_options_config_keys.h).
LOAD_FORMAT = "session.load_model_format"
EXTERNAL_DATA_FOLDER = "session.model_external_initializers_file_folder_path"


def precisions(library: str) -> tuple[str, ...]:
    """PRECISIONS in the order export tries them: the library's own precision first."""
    first = NATIVE_PRECISION.get(library, PRECISIONS[0])
    return (first, *[p for p in PRECISIONS if p != first])


class CompiledModel:
    """The scikit-learn predict API (what Predictor calls) over an ONNX Runtime session.

    ``expected`` (metadata.json's feature and class counts) is checked against the session's input
    and outputs when the session is made. ``fallback`` (optional) loads the library's model: a
    float32 session answers rows whose features or outputs overflow float32 through it.
    """

    def __init__(
        self,
        model: bytes,
        problem_type: str,
        expected: onnx_file.Expected | None = None,
        fallback: Callable[[], Any] | None = None,
    ):
        self.model = model
        self.problem_type = problem_type
        self.expected = expected
        self.fallback = fallback
        self._native: Any = None
        self._session: Any = None
        self._outputs: list[str] = []
        self._dtype: type = np.float32
        self._pid: int | None = None

    def _run(self, X: np.ndarray, output: int) -> np.ndarray:
        if self._pid != os.getpid():  # first call in this process (e.g. a freshly forked worker)
            self._session, self._pid = _session(self.model), os.getpid()
            if self.expected is not None:
                _check_session(self._session, self.expected)
            self._outputs = [o.name for o in self._session.get_outputs()]
            double = self._session.get_inputs()[0].type == "tensor(double)"
            self._dtype = np.float64 if double else np.float32
        # Only the output asked for: the label tensor of a classifier is never converted.
        with np.errstate(over="ignore"):  # overflow is handled below, row by row
            features = np.asarray(X, dtype=self._dtype)
        answer = self._session.run([self._outputs[output]], {"X": features})[0]
        if self._dtype is np.float32 and self.fallback is not None:
            answer = self._overflow_to_library(X, answer, output)
        return answer

    def _overflow_to_library(self, X: np.ndarray, answer: np.ndarray, output: int) -> np.ndarray:
        """Rows with a finite feature beyond float32's range, or a non-finite answer, through the
        library: float32 would have made them inf or NaN, which the library does not (issue 22)."""
        X = np.asarray(X, dtype=np.float64)
        values = np.asarray(answer, dtype=np.float64).reshape(len(X), -1)
        rows = (np.isfinite(X) & (np.abs(X) > FLOAT32_MAX)).any(axis=1) | ~np.isfinite(values).all(axis=1)
        if not rows.any():
            return answer
        if self._native is None:
            assert self.fallback is not None
            self._native = self.fallback()
        method = self._native.predict_proba if output == 1 else self._native.predict
        values[rows] = np.asarray(method(X[rows]), dtype=np.float64).reshape(int(rows.sum()), -1)
        return values.reshape(np.shape(answer)) if output == 0 else values

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._run(X, 1), dtype=np.float64)  # outputs: label, probabilities

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._run(X, 0), dtype=np.float64).reshape(-1)


def _session(model: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One request at a time per worker: no intra- or inter-op pool (threads the workers share).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ONNX only: unset, ONNX Runtime reads bytes with the ORT flatbuffer marker as an ORT-format
    # model, a second parser the export never checked (issue 22).
    options.add_session_config_entry(LOAD_FORMAT, "ONNX")
    # Bytes have no folder, so a tensor's external-data location would resolve against the working
    # directory: confine it to an empty private folder, where no file exists to read (measured:
    # "External data path does not exist"). The data is read while the session is made.
    with tempfile.TemporaryDirectory(prefix="onnx-no-external-data-") as empty:
        options.add_session_config_entry(EXTERNAL_DATA_FOLDER, empty)
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _check_session(session: Any, expected: onnx_file.Expected) -> None:
    """The graph ONNX Runtime built takes X of n_features and answers as metadata.json says."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = inputs[0].shape if len(inputs) == 1 else None
    want_outputs = 2 if expected.n_classes else 1
    if shape is None or inputs[0].name != "X" or list(shape[1:]) != [expected.n_features]:
        raise ModelFolderError(f"{COMPILED_FILE}: the session's inputs do not match metadata.json")
    if len(outputs) != want_outputs or (expected.n_classes and outputs[1].shape[1:] != [expected.n_classes]):
        raise ModelFolderError(f"{COMPILED_FILE}: the session's outputs do not match metadata.json")


def expected_of(predictor: Predictor) -> onnx_file.Expected:
    classes = len(predictor.classes) if predictor.problem_type not in ("regression", "ranking") else 0
    return onnx_file.Expected(n_features=predictor.layout.width, n_classes=classes)


def convert(predictor: Predictor, precision: str = "float32") -> bytes:
    """The fitted estimator as ONNX bytes taking ``precision`` input; raises ImportError or the
    converter's error."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    n, double = predictor.layout.width, precision == "float64"
    classifier = predictor.problem_type not in ("regression", "ranking")
    if predictor.library == "scikit-learn":
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
        from sklearn.impute import SimpleImputer

        options = {id(predictor.estimator): {"zipmap": False}} if classifier else None
        model = convert_sklearn(
            predictor.estimator,
            initial_types=[("X", (DoubleTensorType if double else FloatTensorType)([None, n]))],
            options=options,
            target_opset=SKLEARN_OPSET,
            custom_conversion_functions={SimpleImputer: double_imputer.convert},
        )
    elif not classifier and (predictor.library, precision) in TREE_ENSEMBLE:
        # TreeEnsembleRegressor answers in float32 and adds the base score last: opset 5's
        # TreeEnsemble in the booster's own precision and order instead (serving/tree_ensemble.py).
        attrs = tree_ensemble.regressor_attributes(predictor.library, predictor.estimator, n)
        return tree_ensemble.model(attrs, n, np.float64 if double else np.float32)
    elif predictor.library in ("xgboost", "lightgbm"):
        from onnxmltools.convert import convert_lightgbm, convert_xgboost
        from onnxmltools.convert.common.data_types import DoubleTensorType as TreeDouble
        from onnxmltools.convert.common.data_types import FloatTensorType as TreeFloat

        types = [("X", (TreeDouble if double else TreeFloat)([None, n]))]
        if predictor.library == "xgboost":
            model = convert_xgboost(predictor.estimator, initial_types=types, target_opset=TREES_OPSET)
        else:
            model = convert_lightgbm(
                predictor.estimator, initial_types=types, target_opset=TREES_OPSET, zipmap=False
            )
    else:
        raise NotImplementedError(f"no ONNX converter for library {predictor.library!r}")
    return model.SerializeToString()


def difference(want: Predictions, got: Predictions) -> float:
    """Largest absolute difference of the numbers; infinite when any label differs."""
    if want.labels is not None and want.labels.tolist() != got.labels.tolist():
        return float("inf")
    pairs = [(want.values, got.values), (want.scores, got.scores), (want.probabilities, got.probabilities)]
    return max((float(np.max(np.abs(a - b))) for a, b in pairs if a is not None and len(a)), default=0.0)


def export(predictor: Predictor, table: Table, directory: Path) -> bool:
    """Write ``model.onnx`` next to the native model, and record its digest in metadata.json, if it
    predicts ``table`` as the library does, in the first of ``precisions`` that does. Never fails
    training: the outcome is one training-log line."""
    library = predictor.library
    tried: list[str] = []
    reference: tuple[Any, Predictions] | None = None  # (features, the library's answers), made once
    for precision in precisions(library):
        try:
            model = onnx_file.canonical(convert(predictor, precision), expected_of(predictor))
            compiled = dataclasses.replace(predictor, estimator=CompiledModel(model, predictor.problem_type))
            if reference is None:
                X = predictor.features(table)
                reference = X, predictor.predict(X)
            gap = difference(reference[1], compiled.predict(reference[0]))
        except ImportError as error:
            _log(f"not exported ({error.name or error} is not installed); serving uses {library}")
            return False
        except Exception as error:  # an estimator, option or precision the converters do not support
            tried.append(f"{precision}: not converted ({type(error).__name__}: {str(error)[:160]})")
            continue
        if gap <= TOLERANCE:
            (Path(directory) / COMPILED_FILE).write_bytes(model)
            record_compiled(directory, COMPILED_FILE, onnx_file.digest(model), precision)
            _log(
                f"{COMPILED_FILE} written ({precision}, max difference {gap:.3g} on {table.n_rows} rows);"
                " serving uses ONNX Runtime"
            )
            return True
        what = "labels differ" if gap == float("inf") else f"max difference {gap:.3g} > {TOLERANCE:g}"
        tried.append(f"{precision}: {what} on {table.n_rows} rows")
    _log(f"not used ({'; '.join(tried)}); serving uses {library}")
    return False


def load(directory: Path) -> Predictor:
    """The predictor serving builds (evaluate scores the same one): the compiled model training
    verified and recorded, else the library's. Raises ModelFolderError for a compiled file that
    metadata.json does not record or whose digest differs, before ONNX Runtime reads it."""
    directory = Path(directory)
    metadata = read_metadata(directory)  # the folder allow-list and strict metadata, before anything
    path = directory / COMPILED_FILE
    record = metadata.get("compiled")
    if record is None:
        if path.exists() or path.is_symlink():
            raise ModelFolderError(
                f"{path}: not recorded in metadata.json (no digest from training); refusing"
            )
        return Predictor.load(directory)
    if not _runtime_installed():
        _log(f"{path} ignored: onnxruntime is not installed; serving uses {metadata['library']}")
        return Predictor.load(directory)
    try:
        model = onnx_file.read_verified(path, record["sha256"], model_files.MAX_MODEL_BYTES)
    except onnx_file.OnnxRefused as error:  # tampered or foreign: refuse, as for a native model
        raise ModelFolderError(f"{path}: {error}") from None
    classes = len(metadata["classes"]) if metadata["problem_type"] not in ("regression", "ranking") else 0
    expected = onnx_file.Expected(n_features=Layout.of_metadata(metadata).width, n_classes=classes)
    fallback = None
    if record["precision"] == "float32" and metadata["library"] in OVERFLOW_SENSITIVE:
        fallback = lambda: Predictor.load(directory).estimator  # noqa: E731 (loaded on first use only)
    return Predictor.from_metadata(
        metadata, CompiledModel(model, metadata["problem_type"], expected, fallback)
    )


def _runtime_installed() -> bool:
    """Whether ONNX Runtime can be imported, without importing it: this runs in gunicorn's master,
    and an ONNX Runtime imported before fork aborts or hangs the workers at exit (its threads
    belong to the master: "std::system_error: Invalid argument", then SIGABRT; docker stop then
    waited out its 10 s). Workers import it with their first session."""
    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"] is not None  # None: marked absent
    return importlib.util.find_spec("onnxruntime") is not None


def _log(message: str) -> None:
    print(f"compiled predictor: {message}", file=sys.stderr, flush=True)
