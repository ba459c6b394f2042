"""The compiled model is data, checked by the parser that runs it (issue 22).

- At export the real ``onnx`` library parses the converter's bytes, refuses what reaches outside the
  file or the standard operator sets, checks the graph against metadata.json, and writes the model
  back canonically; its digest goes into metadata.json.
- At load nothing parses the file before its size, type and digest are verified; then ONNX Runtime
  reads it as ONNX explicitly, with external data confined to an empty folder.
Each payload is first shown live (ONNX Runtime, unguarded, runs it), then refused, the load side
in a child process under memory and time limits. Serving imports no model library and not ``onnx``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sandbox import load_in_child

from {{ cookiecutter.package_name }}.predictor import METADATA_FILE, ModelFolderError, Predictor
from {{ cookiecutter.package_name }}.serving import compiled, onnx_file
from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE

ort = pytest.importorskip("onnxruntime", reason="the compiled predictor needs onnxruntime")
onnx = pytest.importorskip("onnx", reason="building tampered models needs onnx")
from onnx import TensorProto, helper  # noqa: E402

SECRET = np.array([3.0, 1.0, 4.0, 1.0], dtype=np.float32)
FOUR = onnx_file.Expected(n_features=4, n_classes=0)  # the toy graphs below: X of 4 columns, one value


# ---- payloads -----------------------------------------------------------------------------------


def _model(nodes, inputs, outputs, initializers=(), domains=(("", 18),), **extra) -> bytes:
    graph = helper.make_graph(nodes, "tampered", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid(domain, version) for domain, version in domains]
    return helper.make_model(graph, opset_imports=opsets, ir_version=9, **extra).SerializeToString()


def _matrix(name: str, columns: int = 4) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", columns])


def identity_model(**extra) -> bytes:
    """Y = X @ ones(4, 1): a valid regressor of 4 features."""
    ones = helper.make_tensor("W", TensorProto.FLOAT, [4, 1], [1.0] * 4)
    node = helper.make_node("MatMul", ["X", "W"], ["Y"])
    return _model([node], [_matrix("X")], [_matrix("Y", 1)], [ones], **extra)


def _external(weight_name: str = "W", location: str = "secret.bin") -> TensorProto:
    weight = TensorProto(
        name=weight_name, data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL
    )
    entry = weight.external_data.add()
    entry.key, entry.value = "location", location
    return weight


def external_data_model() -> bytes:
    """Y = X + W, W 'stored' in secret.bin: ONNX Runtime reads that file and adds its bytes."""
    node = helper.make_node("Add", ["X", "W"], ["Y"])
    return _model([node], [_matrix("X")], [_matrix("Y")], [_external()])


def duplicated_field_model() -> bytes:
    """An initializer whose data_location is written twice, DEFAULT then EXTERNAL: protobuf keeps the
    last, so a reader that keeps the first sees an inline tensor (the hand parser's blind spot)."""
    inline = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4])
    entry = inline.external_data.add()
    entry.key, entry.value = "location", "secret.bin"
    tensor = inline.SerializeToString() + bytes([14 << 3, TensorProto.EXTERNAL])  # field 14, varint
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "W"], ["Y"])], "g", [_matrix("X")], [_matrix("Y")]
    )
    graph_bytes = graph.SerializeToString() + _field(5, tensor)  # field 5: initializer
    model = helper.make_model(helper.make_graph([], "g", [], []), opset_imports=[helper.make_opsetid("", 18)])
    model.ClearField("graph")
    return model.SerializeToString() + _field(7, graph_bytes)  # field 7: graph


def _varint(value: int) -> bytes:
    out = b""
    while True:
        out += bytes([(value & 0x7F) | (0x80 if value > 0x7F else 0)])
        value >>= 7
        if not value:
            return out


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, as the wire format spells it."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def hidden_fields_model() -> bytes:
    """A valid model with fields onnx.proto does not name (at the top and inside the graph)."""
    model = onnx.ModelProto.FromString(identity_model())
    graph = model.graph.SerializeToString() + _field(999, b"hidden")
    model.ClearField("graph")
    return model.SerializeToString() + _field(7, graph) + _field(1000, b"also hidden")


def contrib_op_model() -> bytes:
    """ONNX Runtime's own com.microsoft kernels: not what the exporters write."""
    node = helper.make_node("Gelu", ["X"], ["Y"], domain="com.microsoft")
    return _model([node], [_matrix("X")], [_matrix("Y")], domains=(("", 18), ("com.microsoft", 1)))


def local_function_model(domain: str = "local") -> bytes:
    body = helper.make_node("Identity", ["a"], ["b"])
    function = helper.make_function(domain, "Twin", ["a"], ["b"], [body], [helper.make_opsetid("", 18)])
    node = helper.make_node("Twin", ["X"], ["Y"], domain=domain)
    domains = (("", 18),) if domain == "" else (("", 18), (domain, 1))
    return _model([node], [_matrix("X")], [_matrix("Y", 1)], domains=domains, functions=[function])


def training_info_model() -> bytes:
    model = onnx.ModelProto.FromString(identity_model())
    model.training_info.add().algorithm.CopyFrom(helper.make_graph([], "train", [], []))
    return model.SerializeToString()


def huge_tensor_model() -> bytes:
    """A constant that declares 2^40 elements: whoever trusts dims allocates terabytes."""
    big = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    node = helper.make_node("Add", ["X", "W"], ["Y"])
    return _model([node], [_matrix("X")], [_matrix("Y")], [big])


def polyglot_model() -> bytes:
    """Valid ONNX whose bytes 4-8 are 'ORTM', the marker by which ONNX Runtime picks its own
    flatbuffer format: unguarded, the same bytes go to a second parser the export never checked."""
    model = identity_model(producer_name="ORTM-polyglot")
    assert model[4:8] == b"ORTM"
    return model


PAYLOADS = {
    "external-data": (external_data_model, "tensor 'W' is stored as external data"),
    "duplicated-field": (duplicated_field_model, "tensor 'W' is stored as external data"),
    "contrib-op": (contrib_op_model, "operator domain 'com.microsoft'"),
    "local-function": (local_function_model, "model-local functions"),
    "standard-domain-function": (lambda: local_function_model(""), "model-local functions"),
    "training-info": (training_info_model, "training information"),
    "huge-tensor": (huge_tensor_model, "over 16,777,216 elements"),
    "garbage": (lambda: b"\xff\xff\xff onnx", "not an ONNX model"),
    "truncated": (lambda: identity_model()[:-7], "not an ONNX model"),
}


# ---- the payloads are live against ONNX Runtime unguarded ----------------------------------------


def _unguarded(model: bytes) -> object:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def test_the_external_data_payload_is_live_unguarded(tmp_path, monkeypatch):
    (tmp_path / "secret.bin").write_bytes(SECRET.tobytes())
    monkeypatch.chdir(tmp_path)  # bytes have no folder: the location resolves against the cwd
    for build in (external_data_model, duplicated_field_model):
        leaked = _unguarded(build()).run(None, {"X": np.zeros((1, 4), np.float32)})[0]
        assert leaked.tolist() == [SECRET.tolist()]  # the other file's bytes came back as an answer


def test_the_contrib_op_payload_is_live_unguarded():
    assert _unguarded(contrib_op_model()).run(None, {"X": SECRET.reshape(1, 4)})[0].shape == (1, 4)


def test_the_polyglot_is_read_as_another_format_unguarded():
    with pytest.raises(Exception, match="ORT model verification failed"):  # not parsed as the ONNX it is
        ort.InferenceSession(polyglot_model(), providers=["CPUExecutionProvider"])


# ---- export: the onnx library checks, then the canonical rewrite --------------------------------


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_export_refuses_each_payload(name):
    build, cause = PAYLOADS[name]
    with pytest.raises(onnx_file.OnnxRefused, match=re.escape(cause)):
        onnx_file.canonical(build(), FOUR)


def test_export_drops_unknown_fields_and_writes_one_encoding():
    crafted = hidden_fields_model()
    canonical = onnx_file.canonical(crafted, FOUR)
    assert b"hidden" in crafted and b"hidden" not in canonical
    assert onnx_file.canonical(canonical, FOUR) == canonical  # a fixed point: nothing left to drop
    assert canonical == onnx.ModelProto.FromString(canonical).SerializeToString()


@pytest.mark.parametrize(
    ("expected", "cause"),
    [
        (onnx_file.Expected(n_features=5, n_classes=0), "graph input X is [None, 4]"),
        (onnx_file.Expected(n_features=4, n_classes=3), "graph outputs [('Y', [None, 1])]"),
    ],
)
def test_export_checks_the_graph_against_the_metadata(expected, cause):
    with pytest.raises(onnx_file.OnnxRefused, match=re.escape(cause)):
        onnx_file.canonical(identity_model(), expected)


def test_export_refuses_a_second_input():
    graph = [helper.make_node("Add", ["X", "Z"], ["Y"])]
    with pytest.raises(onnx_file.OnnxRefused, match=r"graph inputs \['X', 'Z'\]"):
        onnx_file.canonical(_model(graph, [_matrix("X"), _matrix("Z")], [_matrix("Y")]), FOUR)


# ---- load: size, type and digest before ONNX Runtime reads a byte -------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Predictor, Path]:
    """A fitted predictor and its model folder with a verified model.onnx."""
    import datasets

    train, holdout = datasets.for_problem(PROBLEM_TYPE, categorical=False)
    predictor = Predictor.fit(train, {})
    folder = tmp_path_factory.mktemp("exported") / "model"
    predictor.save(folder)
    if not compiled.export(predictor, holdout, folder):
        pytest.skip(f"no verified ONNX export for {PROBLEM_TYPE} x {predictor.library}")
    return predictor, folder


@pytest.fixture
def folder(exported, tmp_path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(exported[1], copy)
    return copy


def test_the_export_is_recorded_and_served(folder):
    record = json.loads((folder / METADATA_FILE).read_text())["compiled"]
    assert record["sha256"] == onnx_file.digest((folder / compiled.COMPILED_FILE).read_bytes())
    assert load_in_child("serving", folder).stdout.startswith("ANSWER ")


@pytest.mark.parametrize("name", [*sorted(PAYLOADS), "hidden-fields", "polyglot"])
def test_serving_refuses_a_swapped_model_onnx_in_a_limited_child(folder, name):
    build = {"hidden-fields": hidden_fields_model, "polyglot": polyglot_model}.get(name) or PAYLOADS[name][0]
    (folder / compiled.COMPILED_FILE).write_bytes(build())
    (folder.parent / "secret.bin").write_bytes(SECRET.tobytes())
    load_in_child("serving", folder).assert_refused(
        f"{folder / compiled.COMPILED_FILE}: its SHA-256 is not the one training recorded"
    )


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_a_swapped_model_onnx_never_reaches_onnx_runtime(folder, name, monkeypatch):
    opened = []
    monkeypatch.setattr(compiled, "_session", lambda model: opened.append(model))
    (folder / compiled.COMPILED_FILE).write_bytes(PAYLOADS[name][0]())
    with pytest.raises(ModelFolderError, match=r"model\.onnx: its SHA-256 is not the one training recorded"):
        predictor = compiled.load(folder)
        predictor.predict(np.array([predictor.example], dtype=object))
    assert opened == []


def test_every_export_of_this_project_passes_the_check(exported):
    """Each precision this project's converters write passes, its graph kept as the converter wrote it."""
    predictor, _ = exported
    checked = 0
    for precision in compiled.precisions(predictor.library):
        try:
            model = compiled.convert(predictor, precision)
        except Exception:  # this library's converter does not take this precision
            continue
        canonical = onnx_file.canonical(model, compiled.expected_of(predictor))
        assert onnx.ModelProto.FromString(canonical).graph == onnx.ModelProto.FromString(model).graph
        checked += 1
    assert checked >= 1


def test_an_unrecorded_model_onnx_is_refused(folder):
    metadata = json.loads((folder / METADATA_FILE).read_text())
    del metadata["compiled"]
    (folder / METADATA_FILE).write_text(json.dumps(metadata))
    load_in_child("serving", folder).assert_refused("model.onnx: not recorded in metadata.json")


def test_a_symlinked_model_onnx_is_refused_unread(folder, monkeypatch):
    target = folder.parent / "elsewhere.onnx"
    (folder / compiled.COMPILED_FILE).rename(target)
    (folder / compiled.COMPILED_FILE).symlink_to(target)
    with pytest.raises(
        ModelFolderError, match=re.escape("refusing unknown file(s) in the model folder: model.onnx")
    ):
        compiled.load(folder)  # the folder check refuses symlinks first
    with pytest.raises(onnx_file.OnnxRefused, match="cannot be opened as a regular file"):
        onnx_file.read_verified(folder / compiled.COMPILED_FILE, "0" * 64, 1 << 20)  # and so does the open


def test_an_oversized_model_onnx_is_refused_unread(folder):
    path = folder / compiled.COMPILED_FILE
    with pytest.raises(onnx_file.OnnxRefused, match="is more than the limit of 100"):
        onnx_file.read_verified(path, onnx_file.digest(path.read_bytes()), 100)


# ---- even with a forged digest, ONNX Runtime reads only ONNX, and no other file -----------------


def test_the_session_confines_external_data_to_an_empty_folder(tmp_path, monkeypatch):
    (tmp_path / "secret.bin").write_bytes(SECRET.tobytes())
    monkeypatch.chdir(tmp_path)
    for build in (external_data_model, duplicated_field_model):
        with pytest.raises(Exception, match="External data path does not exist"):
            compiled._session(build())


def test_the_session_reads_the_polyglot_as_onnx():
    session = compiled._session(polyglot_model())
    assert session.run(None, {"X": SECRET.reshape(1, 4)})[0].tolist() == [[float(SECRET.sum())]]


# ---- start-up: serving imports neither a model library nor onnx ----------------------------------

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


def test_serving_the_compiled_model_imports_no_model_library(exported):
    predictor, folder = exported
    row = ",".join(str(v) for v in predictor.example)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", SERVE_AND_LIST_IMPORTS, str(folder), row],
                         capture_output=True, text=True, check=True, env=env).stdout  # fmt: skip
    result = json.loads(out.splitlines()[-1])
    assert (result["status"], result["estimator"]) == (200, "CompiledModel")
    roots = {name.split(".")[0] for name in result["modules"]}
    assert not roots & {"sklearn", "scipy", "xgboost", "lightgbm", "skops", "onnx", "skl2onnx", "onnxmltools"}
    assert "onnxruntime" in roots


@pytest.mark.parametrize(
    ("expected", "what"),
    [
        (onnx_file.Expected(n_features=5, n_classes=0), "inputs"),
        (onnx_file.Expected(n_features=4, n_classes=2), "outputs"),
    ],
)
def test_the_session_is_checked_against_the_metadata_before_it_answers(expected, what):
    """What ONNX Runtime itself built is compared with metadata.json (a forged digest gets no further)."""
    model = compiled.CompiledModel(identity_model(), "regression", expected)
    with pytest.raises(
        ModelFolderError, match=f"model.onnx: the session's {what} do not match metadata.json"
    ):
        model.predict(np.zeros((1, 4)))
