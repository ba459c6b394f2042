"""The compiled model is data: serving refuses an ONNX file that reaches outside itself (another
operator domain, a tensor read from another file, model-local functions) or is not a well-formed
model, before ONNX Runtime reads it. Each payload is first shown live: ONNX Runtime, unguarded,
runs it. And serving the compiled model imports no model library at all (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.predictor import ModelFolderError, Predictor
from {{ cookiecutter.package_name }}.serving import compiled, onnx_file
from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE

ort = pytest.importorskip("onnxruntime", reason="the compiled predictor needs onnxruntime")
onnx = pytest.importorskip("onnx", reason="building tampered models needs onnx")
from onnx import TensorProto, helper  # noqa: E402

SECRET = np.array([3.0, 1.0, 4.0, 1.0], dtype=np.float32)


def _model(nodes, inputs, outputs, initializers=(), domains=(("", 18),), **extra) -> bytes:
    graph = helper.make_graph(nodes, "tampered", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid(domain, version) for domain, version in domains]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9, **extra).SerializeToString()


def _vector(name: str) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [4])


def identity_model() -> bytes:
    return _model([helper.make_node("Identity", ["X"], ["Y"])], [_vector("X")], [_vector("Y")])


def external_data_model() -> bytes:
    """Its weight is 'stored' in secret.bin: ONNX Runtime reads that file and returns its bytes."""
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "secret.bin"
    return _model([helper.make_node("Identity", ["W"], ["Y"])], [], [_vector("Y")], [weight])


def contrib_op_model() -> bytes:
    """ONNX Runtime's own com.microsoft kernels: not what the exporters write."""
    node = helper.make_node("Gelu", ["X"], ["Y"], domain="com.microsoft")
    return _model([node], [_vector("X")], [_vector("Y")], domains=(("", 18), ("com.microsoft", 1)))


def local_function_model() -> bytes:
    body = helper.make_node("Identity", ["a"], ["b"])
    function = helper.make_function("local", "Twin", ["a"], ["b"], [body], [helper.make_opsetid("", 18)])
    node = helper.make_node("Twin", ["X"], ["Y"], domain="local")
    return _model(
        [node], [_vector("X")], [_vector("Y")], domains=(("", 18), ("local", 1)), functions=[function]
    )


def test_the_external_data_payload_is_live_unguarded(tmp_path):
    (tmp_path / "secret.bin").write_bytes(SECRET.tobytes())
    (tmp_path / "model.onnx").write_bytes(external_data_model())
    leaked = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {}
    )
    assert leaked[0].tolist() == SECRET.tolist()  # the other file's bytes came back as an answer


def test_the_contrib_op_payload_is_live_unguarded():
    session = ort.InferenceSession(contrib_op_model(), providers=["CPUExecutionProvider"])
    assert session.run(None, {"X": SECRET})[0].shape == (4,)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (external_data_model, "a tensor is stored as external data"),
        (contrib_op_model, "node Gelu uses operator domain 'com.microsoft'"),
        (local_function_model, "node Twin uses operator domain 'local'"),
        (lambda: b"onnx", "malformed protobuf|not an ONNX model"),
        (lambda: identity_model()[:-7], "malformed protobuf"),
        (lambda: b"", "not an ONNX model"),
    ],
    ids=["external-data", "contrib-op", "local-function", "garbage", "truncated", "empty"],
)
def test_tampered_onnx_is_refused_before_the_runtime_reads_it(build, reason, fitted_folder, monkeypatch):
    opened = []
    monkeypatch.setattr(compiled, "_session", lambda model: opened.append(model))
    (fitted_folder / compiled.COMPILED_FILE).write_bytes(build())
    with pytest.raises(ModelFolderError, match=f"model.onnx: .*({reason})"):
        compiled.load(fitted_folder)
    assert opened == []


def test_model_local_functions_are_refused_even_in_the_standard_domain():
    body = helper.make_node("Identity", ["a"], ["b"])
    function = helper.make_function("", "Twin", ["a"], ["b"], [body], [helper.make_opsetid("", 18)])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["Y"])], "g", [_vector("X")], [_vector("Y")]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], functions=[function])
    with pytest.raises(onnx_file.OnnxRefused, match="model-local functions"):
        onnx_file.check(model.SerializeToString())
    onnx_file.check(identity_model())  # the same model without the function passes


@pytest.fixture
def fitted(tmp_path) -> tuple[Predictor, Path]:
    """A freshly fitted predictor (the converters take the fitted estimator, not a loaded booster)
    and its saved model folder."""
    import datasets

    train, _ = datasets.for_problem(PROBLEM_TYPE, categorical=False)
    predictor = Predictor.fit(train, {})
    folder = tmp_path / "model"
    predictor.save(folder)
    return predictor, folder


@pytest.fixture
def fitted_folder(fitted) -> Path:
    return fitted[1]


def test_every_export_of_this_project_passes_the_check(fitted):
    predictor, _ = fitted
    onnx_file.check(compiled.convert(predictor))  # raises if the exporters wrote anything refused


SERVE_AND_LIST_IMPORTS = """
import json, sys
from {{ cookiecutter.package_name }}.serving.app import create_app
app = create_app(sys.argv[1])
app.warm_up()
reply = app.test_client().post("/invocations", data=sys.argv[2], content_type="text/csv")
print(json.dumps({"status": reply.status_code,
                  "estimator": type(app.extensions["serving"].predictor.estimator).__name__,
                  "modules": sorted(sys.modules)}))
"""


def test_serving_the_compiled_model_imports_no_model_library(fitted, tmp_path):
    import datasets

    predictor, fitted_folder = fitted
    _, holdout = datasets.for_problem(PROBLEM_TYPE, categorical=False)
    if not compiled.export(predictor, holdout, fitted_folder):
        pytest.skip(f"no verified ONNX export for {PROBLEM_TYPE} x {predictor.library}")
    row = ",".join(str(v) for v in predictor.example)
    out = subprocess.run([sys.executable, "-c", SERVE_AND_LIST_IMPORTS, str(fitted_folder), row],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    result = json.loads(out.splitlines()[-1])
    assert (result["status"], result["estimator"]) == (200, "CompiledModel")
    roots = {name.split(".")[0] for name in result["modules"]}
    assert not roots & {"sklearn", "scipy", "xgboost", "lightgbm", "skops", "onnx", "skl2onnx", "onnxmltools"}
    assert "onnxruntime" in roots
