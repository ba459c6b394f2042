"""``model.onnx``: checked by the real ``onnx`` library at export, verified by digest at load.

A hand-written protobuf walker used to decide what ONNX Runtime would read, and it decoded some
bytes differently from protobuf C++ inside ONNX Runtime (tag width, repeated singular fields,
enums): a crafted file passed it and made ONNX Runtime read a local file (issue 22). So:

- ``canonical`` (training, where the ``onnx`` package is installed): parses the converter's bytes
  with protobuf, drops every unknown field, refuses what reaches outside the file or the standard
  operator sets (external data, other operator domains, model-local functions, training blocks),
  checks the graph's input and outputs against the model's metadata and every tensor's size, runs
  ``onnx.checker``, and returns the model rebuilt from known fields only, serialised once. Both
  protobuf implementations decode that canonical encoding the same way.
- ``read_verified`` (serving): the file's size, that it is a regular file (not a symlink), and its
  SHA-256 against the digest training recorded in metadata.json, before ONNX Runtime sees a byte.
  Serving never imports ``onnx``: that import costs seconds of a start-up that must stay under
  one (issue 13); hashlib costs ~0.2 ms per MB.

ONNX Runtime then reads the verified bytes as ONNX explicitly, never as its own ORT format, with
external data confined to an empty folder (``compiled._session``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The standard operator sets the exporters write: ai.onnx ('') and ai.onnx.ml.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx.ml"})
# ModelProto's plain fields kept by the rewrite (onnx.proto), besides graph and opset_import.
SCALAR_FIELDS = ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string")
# One tensor's elements: the largest this project exports is features x classes coefficients.
MAX_TENSOR_ELEMENTS = 1 << 24


class OnnxRefused(ValueError):
    """An ONNX file refused before ONNX Runtime read it; the message says why."""


@dataclass(frozen=True)
class Expected:
    """What metadata.json says the graph takes and answers: ``n_features`` input columns, and
    ``n_classes`` probability columns (0: a regressor, one value per row)."""

    n_features: int
    n_classes: int


# ---- export: the onnx library decides --------------------------------------------------------


def canonical(raw: bytes, expected: Expected) -> bytes:
    """``raw`` (a converter's ONNX bytes) checked and rebuilt from known fields; raises OnnxRefused."""
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except DecodeError as error:
        raise OnnxRefused(f"not an ONNX model ({error})") from None
    model.DiscardUnknownFields()  # recursively: nothing the onnx schema does not name survives
    if model.functions:
        raise OnnxRefused("the model carries model-local functions, which the exporters never write")
    if model.training_info:
        raise OnnxRefused("the model carries training information, which the exporters never write")
    clean = onnx.ModelProto()  # the known fields that are set; metadata_props and the rest are dropped
    for name in SCALAR_FIELDS:
        if model.HasField(name):
            setattr(clean, name, getattr(model, name))
    clean.graph.CopyFrom(model.graph)
    clean.opset_import.extend(model.opset_import)
    _check_domains(clean)
    _check_tensors(clean.graph)
    _check_signature(clean.graph, expected)
    try:
        onnx.checker.check_model(clean, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise OnnxRefused(f"onnx.checker: {str(error).splitlines()[0]}") from None
    return clean.SerializeToString()


def _graphs(graph: Any) -> Iterator[Any]:
    """The graph and every graph nested in a node attribute (If/Loop bodies), iteratively."""
    stack = [graph]
    while stack:
        current = stack.pop()
        yield current
        for node in current.node:
            for attribute in node.attribute:
                stack.extend([attribute.g] if attribute.HasField("g") else [])
                stack.extend(attribute.graphs)


def _check_domains(model: Any) -> None:
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise OnnxRefused(f"the model imports operator domain {opset.domain!r}; only '' and 'ai.onnx.ml'")
    for graph in _graphs(model.graph):
        for node in graph.node:
            if node.domain not in ALLOWED_DOMAINS:
                raise OnnxRefused(
                    f"node {node.op_type} uses operator domain {node.domain!r}; only '' and 'ai.onnx.ml'"
                )


def _tensors(graph: Any) -> Iterator[Any]:
    for current in _graphs(graph):
        yield from current.initializer
        for sparse in current.sparse_initializer:
            yield from (sparse.values, sparse.indices)
        for node in current.node:
            for attribute in node.attribute:
                yield from [attribute.t] if attribute.HasField("t") else []
                yield from attribute.tensors
                for sparse in [attribute.sparse_tensor, *attribute.sparse_tensors]:
                    yield from (sparse.values, sparse.indices)


def _check_tensors(graph: Any) -> None:
    import onnx

    for tensor in _tensors(graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise OnnxRefused(f"tensor {tensor.name!r} is stored as external data (a file outside the model)")
        elements = math.prod(tensor.dims)
        if any(d < 0 for d in tensor.dims) or elements > MAX_TENSOR_ELEMENTS:
            raise OnnxRefused(
                f"tensor {tensor.name!r} has dims {list(tensor.dims)[:8]}: over {MAX_TENSOR_ELEMENTS:,} elements"
            )


def _dims(value: Any) -> list[int | None]:
    """A value's shape: a number per known dimension, None per symbolic or unknown one."""
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]


def _check_signature(graph: Any, expected: Expected) -> None:
    """One float input X of n_features columns; a label and n_classes probabilities, or a value."""
    import onnx

    numbers = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE}
    initialized = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initialized]
    if [v.name for v in inputs] != ["X"]:
        raise OnnxRefused(f"graph inputs {[v.name for v in inputs]}: expected exactly ['X']")
    (x,) = inputs
    if x.type.tensor_type.elem_type not in numbers or _dims(x)[1:] != [expected.n_features]:
        raise OnnxRefused(
            f"graph input X is {_dims(x)} of type {x.type.tensor_type.elem_type}: "
            f"expected [rows, {expected.n_features}] floats (metadata.json)"
        )
    outputs = list(graph.output)
    if expected.n_classes:
        ok = (
            len(outputs) == 2
            and outputs[1].type.tensor_type.elem_type in numbers
            and _dims(outputs[1])[1:] == [expected.n_classes]
        )
        want = f"a label and [rows, {expected.n_classes}] probabilities"
    else:
        ok = len(outputs) == 1 and outputs[0].type.tensor_type.elem_type in numbers
        ok = ok and all(d == 1 for d in _dims(outputs[0])[1:])
        want = "one value per row"
    if not ok:
        shapes = [(v.name, _dims(v)) for v in outputs]
        raise OnnxRefused(f"graph outputs {shapes}: expected {want} (metadata.json)")


# ---- load: the digest decides -----------------------------------------------------------------


def digest(model: bytes) -> str:
    return hashlib.sha256(model).hexdigest()


def read_verified(path: Path, sha256: str, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes`` whose SHA-256 is
    ``sha256``; raises OnnxRefused (naming the cause) otherwise, before anything parses it."""
    try:
        # O_NOFOLLOW: a symlink is refused by the open itself, not by a check it could race.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        raise OnnxRefused(f"cannot be opened as a regular file ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OnnxRefused("not a regular file")
        if info.st_size > max_bytes:
            raise OnnxRefused(f"{info.st_size:,} bytes is more than the limit of {max_bytes:,}")
        model = handle.read(max_bytes + 1)
    if len(model) > max_bytes:
        raise OnnxRefused(f"more than the limit of {max_bytes:,} bytes")
    if not hmac.compare_digest(digest(model), sha256):
        raise OnnxRefused(
            "its SHA-256 is not the one training recorded in metadata.json (changed after training)"
        )
    return model
