"""Model files are data, never code: tampered artifacts are refused before anything in them runs.

Each payload would leave a marker file if any of it ran. The "live" tests prove that: loaded the
trusting way (plain skops trusting the types the file names, or plain pickle) the marker appears.
Then the project's own loader must refuse the same file, and the marker must not exist.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from sandbox import load_in_child

from {{ cookiecutter.package_name }} import data, model, model_files
from {{ cookiecutter.package_name }}.predictor import METADATA_FILE, ModelFolderError, Predictor
from {{ cookiecutter.package_name }}.settings import PROBLEM_TYPE
from {{ cookiecutter.package_name }}.steps import evaluate

SKOPS = model.LIBRARY == "scikit-learn"
needs_skops = pytest.mark.skipif(not SKOPS, reason="skops is the scikit-learn projects' model format")
_ids = itertools.count(1)


# ---- payloads -----------------------------------------------------------------------------------


def _node(module: str, name: str, loader: str, **fields: object) -> dict:
    return {"__class__": name, "__module__": module, "__loader__": loader, "__id__": next(_ids), **fields}


def _json(value: object) -> dict:
    return _node("builtins", type(value).__name__, "JsonNode", content=json.dumps(value), is_json=True)


def _tuple(*items: dict) -> dict:
    return _node("builtins", "tuple", "TupleNode", content=list(items))


def _empty_dict() -> dict:
    return _node(
        "builtins",
        "dict",
        "DictNode",
        content={},
        key_types=_node("builtins", "list", "ListNode", content=[]),
    )


def _call(module: str, name: str, *args: dict) -> dict:
    """A reduce-style node: skops calls ``module.name(*args)`` while loading."""
    return _node(module, name, "LossNode", content=_empty_dict(), **{"__reduce__": {"args": _tuple(*args)}})


def _skops_file(path: Path, payload: dict) -> Path:
    """A skops archive whose only content is ``payload`` (as a tampered model file would be)."""
    schema = {**payload, "protocol": 2, "_skops_version": "0.16.0"}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return path


class Payload:
    """Unpickling this runs exec: the classic pickle exploit."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps(Payload(marker)))
    return path


def skops_payloads(tmp: Path, marker: Path) -> dict[str, dict]:
    """builtins.exec; numpy.load(..., allow_pickle=True) of a pickle; a scipy function with a side
    effect; and an import of a module that is not a library (it runs on import)."""
    evil = _pickle(tmp / "evil.pkl", marker)
    (tmp / "evil_payload_module.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return {
        "builtins.exec": _call("builtins", "exec", _json(f"open({str(marker)!r}, 'w').write('ran')")),
        "numpy.load": _call("numpy", "load", _json(str(evil)), _json("r"), _json(True)),
        "scipy.io.savemat": _call("scipy.io", "savemat", _json(str(marker)), _empty_dict()),
        "evil_payload_module.Thing": _node(
            "evil_payload_module", "Thing", "ObjectNode", content=_empty_dict()
        ),
    }


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))  # where the evil module lives
    return tmp_path / "marker"


@pytest.fixture(scope="module")
def trained(sample_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trained") / "model"
    Predictor.fit(data.read_csv(sample_data["train"]), {}).save(folder)
    return folder


def _copy(trained: Path, tmp: Path) -> Path:
    folder = tmp / "model"
    shutil.copytree(trained, folder)
    return folder


# ---- skops: the exact allow-list ----------------------------------------------------------------


@needs_skops
@pytest.mark.parametrize(
    "name", ["builtins.exec", "numpy.load", "scipy.io.savemat", "evil_payload_module.Thing"]
)
def test_payload_is_live_when_trusted_the_old_way(tmp_path: Path, marker: Path, name: str):
    import skops.io as sio

    path = _skops_file(tmp_path / "model.skops", skops_payloads(tmp_path, marker)[name])
    assert name in sio.get_untrusted_types(file=path) or name.startswith("evil")
    with contextlib.suppress(Exception):  # the object built may be junk; what matters is that code ran
        sio.load(path, trusted=[*sio.get_untrusted_types(file=path), name])
    assert marker.exists(), f"{name}: the payload must run when trusted, or this test proves nothing"


@needs_skops
@pytest.mark.parametrize(
    "name", ["builtins.exec", "numpy.load", "scipy.io.savemat", "evil_payload_module.Thing"]
)
def test_predictor_refuses_each_payload_before_it_runs(
    trained: Path, tmp_path: Path, marker: Path, name: str
):
    folder = _copy(trained, tmp_path)
    _skops_file(folder / model.MODEL_FILE, skops_payloads(tmp_path, marker)[name])
    with pytest.raises(model_files.UnsafeModelError) as error:
        Predictor.load(folder)
    assert "refusing type(s)" in str(error.value) and f"'{name}'" in str(error.value)
    assert not marker.exists()


@needs_skops
def test_evaluate_refuses_a_tampered_candidate_archive(
    trained: Path, sample_data, tmp_path: Path, marker: Path
):
    folder = _copy(trained, tmp_path)
    _skops_file(folder / model.MODEL_FILE, skops_payloads(tmp_path, marker)["builtins.exec"])
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    with tarfile.open(candidate / "model.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname=".")
    code = evaluate.main(
        [
            "--model",
            str(candidate),
            "--holdout",
            str(sample_data["holdout"]),
            "--output",
            str(tmp_path / "out"),
        ]
    )
    decision = json.loads((tmp_path / "out" / "decision.json").read_text())
    assert (code, decision["decision"], decision["promote"]) == (1, "fail", False)
    assert "refusing" in decision["reasons"][0] and "builtins.exec" in decision["reasons"][0]
    assert not marker.exists()


@needs_skops
def test_allow_list_is_exactly_what_the_pipeline_needs_and_names_classes_only(tmp_path: Path):
    """With numeric, missing and categorical inputs, the saved pipeline uses every allowed type."""
    import importlib

    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    X[:, 2] = rng.integers(0, 3, 60)
    X[0, 0] = np.nan
    y = {
        "binary": (X[:, 1] > 0).astype(int),
        "multiclass": rng.integers(0, 3, 60),
        "regression": X[:, 1] * 3.0,
        "ranking": rng.integers(0, 4, 60).astype(float),  # grades: the pointwise Ridge fits them as numbers
    }
    hp = {p.name: p.default for p in model.HYPERPARAMETERS}
    estimator = model.build_estimator(hp, PROBLEM_TYPE, [2], 3).fit(X, y[PROBLEM_TYPE])
    name = model.save_native(estimator, tmp_path)
    types, loaders = model_files.skops_types(model_files.skops_schema(tmp_path / name))
    kinds = model.SKOPS_NODE_KINDS
    assert types == model.SKOPS_TYPES and loaders <= model_files.allowed_loaders(model.SKOPS_TYPES, kinds)
    containers = {"builtins.dict", "builtins.list", "builtins.slice", "builtins.str", "builtins.tuple"}
    for qualified in model.SKOPS_TYPES:
        module, _, name = qualified.rpartition(".")
        listed = getattr(importlib.import_module(module), name)
        # Classes; a function only where a declared FunctionNode needs it (HistGradientBoosting's check_array).
        assert isinstance(listed, type) or ("FunctionNode" in kinds and callable(listed)), qualified
        assert not module.startswith("builtins") or qualified in containers, qualified


@needs_skops
@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"schema.json": "{}", "payload.pkl": "x"}, "unexpected member(s)"),
        ({"other.json": "{}"}, "unexpected member(s)"),
        ({"schema.json": "[1]"}, "schema is not an object"),
        ({"schema.json": "{not json"}, "not a skops model file"),
    ],
)
def test_skops_archive_shape_is_checked(tmp_path: Path, members: dict[str, str], message: str):
    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    with pytest.raises(model_files.UnsafeModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model_files.load_skops(path, model.SKOPS_TYPES)


def _skops_bomb(path: Path, schema: bytes) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("schema.json", schema)
    return path


@needs_skops
@pytest.mark.parametrize(
    ("schema", "cause"),
    [
        # ~70 MB of dense JSON in ~70 KB of zip: ~60 MB of it, parsed whole, drove memory to 1.5 GB
        # (issue 22). Refused from the listed size, before a byte is inflated (512 MB child).
        (b"[" + b"0," * (35 * 1024**2) + b"0]", "schema.json unpacks to 73,400,323 bytes, over the limit"),
        # under the size limit, nested past any parser's stack
        (b"[" * (2 * 1024**2) + b"]" * (2 * 1024**2), "not a skops model file"),
    ],
    ids=["zip-bomb", "deep-nesting"],
)
def test_a_skops_bomb_is_refused_in_a_limited_child(trained: Path, tmp_path: Path, schema: bytes, cause: str):
    folder = _copy(trained, tmp_path)
    path = _skops_bomb(folder / model.MODEL_FILE, schema)
    assert path.stat().st_size < 200 * 1024
    load_in_child("native", folder, memory=512 * 1024**2).assert_refused(f"{path}: {cause}")


@needs_skops
def test_a_skops_member_whose_listed_size_lies_is_refused(tmp_path: Path):
    """The central directory says 10 bytes; zipfile never inflates past that, and the CRC fails."""
    path = _skops_bomb(tmp_path / "model.skops", b"{" + b" " * (8 * 1024**2) + b"}")
    data = bytearray(path.read_bytes())
    listed = data.rfind(b"PK\x01\x02")  # the central directory entry: uncompressed size at +24
    data[listed + 24 : listed + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(model_files.UnsafeModelError, match="not a skops model file"):
        model_files.load_skops(path, model.SKOPS_TYPES)


# HistGradientBoosting* (issue 23): what `python -m <package>.skops_types` lists for it, declared in
# model.py; its skops file calls check_array through a partial, so it needs callables by name.
HGB_TYPES = frozenset(
    {
        "functools.partial",
        "numpy.random._generator.Generator",
        "numpy.uint64",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.preprocessing._encoders.OrdinalEncoder",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.utils.validation.check_array",
    }
)
HGB_KINDS = frozenset({"FunctionNode", "LossNode", "PartialNode", "RandomGeneratorNode"})


@pytest.fixture(scope="module")
def hgb_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SKOPS:
        pytest.skip("skops is the scikit-learn projects' model format")
    import numpy as np
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    X[:, 3] = rng.integers(0, 4, 300)
    X[::9, 1] = np.nan
    estimator = HistGradientBoostingClassifier(max_iter=15, categorical_features=[3], random_state=0)
    fitted = Pipeline([("estimate", estimator)]).fit(X, (X[:, 0] > 0).astype(int))
    path = tmp_path_factory.mktemp("hgb") / "model.skops"
    sio.dump(fitted, path)
    return path


def _allowed(types: frozenset[str]) -> frozenset[str]:
    return model.SKOPS_TYPES | types


@needs_skops
def test_hist_gradient_boosting_loads_with_its_declared_types_and_kinds_only(hgb_file: Path):
    with pytest.raises(model_files.UnsafeModelError, match="FunctionNode"):
        model_files.load_skops(hgb_file, _allowed(HGB_TYPES))  # kinds not declared
    with pytest.raises(model_files.UnsafeModelError, match="check_array"):
        model_files.load_skops(
            hgb_file, _allowed(HGB_TYPES - {"sklearn.utils.validation.check_array"}), HGB_KINDS
        )
    loaded = model_files.load_skops(hgb_file, _allowed(HGB_TYPES), HGB_KINDS)
    assert type(loaded.steps[-1][1]).__name__ == "HistGradientBoostingClassifier"


def _rewrite_schema(source: Path, target: Path, edit) -> Path:
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return target


def _function_nodes(node: object) -> list[dict]:
    if isinstance(node, dict):
        own = [node] if node.get("__loader__") == "FunctionNode" else []
        return own + [n for value in node.values() for n in _function_nodes(value)]
    if isinstance(node, list):
        return [n for value in node for n in _function_nodes(value)]
    return []


@needs_skops
@pytest.mark.parametrize(
    ("module", "function"),
    [("builtins", "eval"), ("os", "system"), ("sklearn.utils.validation", "check_X_y")],
)
def test_a_declared_function_node_can_only_name_the_listed_functions(
    hgb_file: Path, tmp_path: Path, module: str, function: str
):
    def swap(schema: dict) -> None:
        nodes = _function_nodes(schema)
        assert nodes, "the HistGradientBoosting file no longer holds a FunctionNode"
        for node in nodes:
            node["__module__"], node["__class__"] = module, function

    crafted = _rewrite_schema(hgb_file, tmp_path / "model.skops", swap)
    # The crafted bytes meet the loader in a child under the memory and time caps (sandbox.py).
    declared = json.dumps([sorted(_allowed(HGB_TYPES)), sorted(HGB_KINDS)])
    load_in_child("skops", crafted, extra=declared).assert_refused(f"{module}.{function}")
    # The file unchanged loads in the same child: the refusal is the crafted name's, not the setup's.
    untouched = load_in_child("skops", hgb_file, extra=declared)
    assert untouched.returncode == 0 and "LOADED" in untouched.stdout, untouched.stderr[-1500:]


@needs_skops
def test_a_constructor_named_by_the_file_is_never_allowed_even_when_declared():
    assert "__reduce__" not in model_files.allowed_loaders(
        model.SKOPS_TYPES, frozenset({"__reduce__", "ReduceNode"})
    )


# ---- every library: the folder and the model file ---------------------------------------------


def test_pickle_payload_is_live(tmp_path: Path, marker: Path):
    pickle.loads(_pickle(tmp_path / "p.pkl", marker).read_bytes())
    assert marker.exists()


def test_a_pickle_inside_the_tarball_is_refused(trained: Path, sample_data, tmp_path: Path, marker: Path):
    folder = _copy(trained, tmp_path)
    _pickle(folder / "model.pkl", marker)
    candidate = tmp_path / "candidate.tar.gz"
    with tarfile.open(candidate, "w:gz") as tar:
        tar.add(folder, arcname=".")
    code = evaluate.main(
        [
            "--model",
            str(candidate),
            "--holdout",
            str(sample_data["holdout"]),
            "--output",
            str(tmp_path / "out"),
        ]
    )
    failure = json.loads((tmp_path / "out" / "decision.json").read_text())["reasons"][0]
    assert code == 1 and "refusing unknown file(s) in the model folder: model.pkl" in failure
    assert not marker.exists()


def test_a_pickle_as_the_model_file_is_refused(trained: Path, tmp_path: Path, marker: Path):
    folder = _copy(trained, tmp_path)
    _pickle(folder / model.MODEL_FILE, marker)
    with pytest.raises(model_files.UnsafeModelError, match="not "):
        Predictor.load(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"library": "other-lib"}, "model was trained with 'other-lib'"),
        (
            {"problem_type": "survival" if PROBLEM_TYPE == "ranking" else "ranking"},
            "model is for problem type '" + ("survival" if PROBLEM_TYPE == "ranking" else "ranking") + "'",
        ),
        ({"model_file": "model.pkl"}, "model file 'model.pkl' is not this project's"),
        ({"version": 0}, "unsupported metadata version 0"),
        ({"feature_kinds": ["code"]}, "feature_names must be a non-empty list of names, one kind each"),
        ({"classes": "abc"}, "field 'classes' missing or not a list"),
    ],
)
def test_tampered_metadata_is_refused(trained: Path, tmp_path: Path, change: dict, message: str):
    folder = _copy(trained, tmp_path)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    (folder / METADATA_FILE).write_text(json.dumps({**metadata, **change}))
    with pytest.raises(ModelFolderError, match=message.replace("(", r"\(")):
        Predictor.load(folder)


def test_metadata_must_be_strict_json(trained: Path, tmp_path: Path):
    folder = _copy(trained, tmp_path)
    text = (folder / METADATA_FILE).read_text().replace('"version": 1', '"version": NaN', 1)
    (folder / METADATA_FILE).write_text(text)
    with pytest.raises(ModelFolderError, match="NaN is not valid JSON"):
        Predictor.load(folder)


@pytest.mark.parametrize("extra", ["run.sh", ".hidden", "code"])
def test_unknown_files_and_folders_are_refused(trained: Path, tmp_path: Path, extra: str):
    folder = _copy(trained, tmp_path)
    if extra == "code":
        (folder / extra).mkdir()
    else:
        (folder / extra).write_text("echo hi")
    with pytest.raises(ModelFolderError, match=f"refusing unknown file\\(s\\) in the model folder: {extra}"):
        Predictor.load(folder)


def test_a_compiled_copy_is_the_one_extra_file_allowed(trained: Path, tmp_path: Path, sample_data):
    folder = _copy(trained, tmp_path)
    (folder / "model.onnx").write_bytes(b"onnx")
    predictor = Predictor.load(folder)
    holdout = data.read_csv(sample_data["holdout"])
    predictions = predictor.predict(predictor.features(holdout))
    assert math.isfinite(
        float((predictions.values if predictions.values is not None else predictions.probabilities).sum())
    )


def test_oversized_model_file_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "big"
    path.write_bytes(b"{" + b" " * 100)
    monkeypatch.setattr(model_files, "MAX_MODEL_BYTES", 50)
    with pytest.raises(model_files.UnsafeModelError, match="more than the limit of 50"):
        model_files.check_size(path)


def test_no_pickle_in_the_model_code(project_root: Path):
    """The contract's own modules never import pickle, joblib or cloudpickle, nor allow_pickle=True."""
    package = project_root / "src" / "{{ cookiecutter.package_name }}"
    for name in ("model.py", "predictor.py", "model_files.py", "steps/train.py"):
        text = (package / name).read_text()
        assert not any(
            word in text for word in ("import pickle", "joblib", "cloudpickle", "allow_pickle=True")
        )
