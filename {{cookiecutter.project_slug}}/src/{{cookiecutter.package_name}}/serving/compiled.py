"""The compiled predictor: the trained model exported to ONNX at training time, served by ONNX Runtime.

Why (measured, docs/decisions.md "Compiled predictor"): scikit-learn spends ~1 ms per 1-row call
in its own input checks and ColumnTransformer plumbing; the same pipeline in ONNX Runtime takes
~6 us. Trees gain less (XGBoost ~80 -> ~5 us, LightGBM ~16 -> ~6 us).

- ``export(predictor, table, directory)`` (training, once): converts the fitted estimator with
  skl2onnx (scikit-learn) or onnxmltools (XGBoost, LightGBM), then predicts ``table`` (the
  validation channel, else the training rows) both ways. ``model.onnx`` is written only if every
  score, probability or value is within 1e-6 of the library's and every label is the same;
  otherwise, or when the model cannot be converted, one training-log line says why and serving
  uses the library. float32 is tried first (ONNX ML's kernels; classifiers pass in it), then
  float64: regression on targets in the hundreds misses 1e-6 in float32 (~3e-5) and passes in
  float64, for scikit-learn through ``double_imputer`` (ONNX ML's Imputer is float32 only) and for
  LightGBM through ``tree_ensemble`` (ONNX ML's TreeEnsembleRegressor answers in float32). XGBoost
  regression passes in float32 through ``tree_ensemble`` too, its base score summed first as
  XGBoost does.
- ``load(directory)`` (serving): the folder and metadata checks of ``predictor.read_metadata``
  first, always; then, when ``model.onnx`` is there and ONNX Runtime is installed, a Predictor
  whose estimator is the ONNX model, and the native model is never read: serving then imports
  neither the library nor SciPy (start-up, issue 13). Else ``Predictor.load``, the library.
  The Predictor still encodes features and decides labels: only the estimator call changes.

An ONNX file is a protobuf graph of operators, read as data (no pickle, no code); ``onnx_file.check``
refuses any other operator domain and any tensor stored outside the file before ONNX Runtime sees
it, at export and at load. The file name is on the Predictor's model-folder allow-list. ONNX Runtime is imported, and its session
(and any thread it starts) created, lazily in the process that predicts, so never in gunicorn's master.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Table
from ..predictor import ModelFolderError, Predictions, Predictor, read_metadata
from . import double_imputer, onnx_file, tree_ensemble

COMPILED_FILE = "model.onnx"
TOLERANCE = 1e-6
# Tried in this order; the first that answers as the library within TOLERANCE is written.
PRECISIONS = ("float32", "float64")
# Booster regression through tree_ensemble, in the precision each booster computes in.
TREE_ENSEMBLE = {("lightgbm", "float64"), ("xgboost", "float32")}
# ai.onnx opset for skl2onnx; onnxmltools' tree converters support up to 15.
SKLEARN_OPSET, TREES_OPSET = 18, 15


class CompiledModel:
    """The scikit-learn predict API (what Predictor calls) over an ONNX Runtime session."""

    def __init__(self, model: bytes, problem_type: str):
        self.model = model
        self.problem_type = problem_type
        self._session: Any = None
        self._outputs: list[str] = []
        self._dtype: type = np.float32
        self._pid: int | None = None

    def _run(self, X: np.ndarray, output: int) -> np.ndarray:
        if self._pid != os.getpid():  # first call in this process (e.g. a freshly forked worker)
            self._session, self._pid = _session(self.model), os.getpid()
            self._outputs = [o.name for o in self._session.get_outputs()]
            double = self._session.get_inputs()[0].type == "tensor(double)"
            self._dtype = np.float64 if double else np.float32
        # Only the output asked for: the label tensor of a classifier is never converted.
        return self._session.run([self._outputs[output]], {"X": np.asarray(X, dtype=self._dtype)})[0]

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
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def convert(predictor: Predictor, precision: str = "float32") -> bytes:
    """The fitted estimator as ONNX bytes taking ``precision`` input; raises ImportError or the
    converter's error."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    n, double = len(predictor.feature_names), precision == "float64"
    classifier = predictor.problem_type != "regression"
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
    """Write ``model.onnx`` next to the native model if it predicts ``table`` as the library does,
    in the first of PRECISIONS that does. Never fails training: the outcome is one training-log line.
    """
    library = predictor.library
    tried: list[str] = []
    reference: tuple[Any, Predictions] | None = None  # (features, the library's answers), made once
    for precision in PRECISIONS:
        try:
            model = convert(predictor, precision)
            onnx_file.check(model)  # what serving would refuse is not exported
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
    """Serving's predictor: the compiled model when training verified one, else the library's."""
    directory = Path(directory)
    metadata = read_metadata(directory)  # the folder allow-list and strict metadata, before anything
    path = directory / COMPILED_FILE
    if not path.is_file():
        return Predictor.load(directory)
    if not _runtime_installed():
        _log(f"{path} ignored: onnxruntime is not installed; serving uses {metadata['library']}")
        return Predictor.load(directory)
    model = path.read_bytes()
    try:
        onnx_file.check(model)
    except onnx_file.OnnxRefused as error:  # tampered or foreign: refuse, as for a native model
        raise ModelFolderError(f"{path}: {error}") from None
    return Predictor.from_metadata(metadata, CompiledModel(model, metadata["problem_type"]))


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
