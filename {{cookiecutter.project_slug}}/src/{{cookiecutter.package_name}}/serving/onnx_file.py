"""Refuse an ONNX file before ONNX Runtime reads it: standard operators only, every tensor inline.

An ONNX model is a protobuf graph (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto), data
rather than code, but two of its features reach outside the file:
- operators of other domains than ``ai.onnx`` and ``ai.onnx.ml`` (ONNX Runtime's own ``com.microsoft``
  contrib kernels, or a custom-op library someone registers), and model-local functions and
  training blocks, which the exporters (skl2onnx, onnxmltools) never write;
- tensors stored as *external data*: ONNX Runtime reads the named file and uses its bytes as
  weights, so a tampered model could pull any readable file into its answers.

``check`` walks the protobuf wire format itself: the ``onnx`` package would do it, but importing it
costs ~1.5 s (ml_dtypes) of a start-up that must stay under 1 s (issue 13), and serving only needs
the fields below (numbers from onnx.proto). Anything it does not recognise as a well-formed model is
refused too.
"""

from __future__ import annotations

from collections.abc import Iterator

ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
# field numbers of onnx.proto
MODEL_IR_VERSION, MODEL_OPSET_IMPORT, MODEL_GRAPH, MODEL_TRAINING_INFO, MODEL_FUNCTIONS = 1, 8, 7, 20, 25
OPSET_DOMAIN = 1
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
NODE_OP_TYPE, NODE_ATTRIBUTE, NODE_DOMAIN = 4, 5, 7
ATTR_TENSOR, ATTR_GRAPH, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE, ATTR_SPARSES = 5, 6, 10, 11, 22, 23
SPARSE_VALUES, SPARSE_INDICES = 1, 2
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION, EXTERNAL = 13, 14, 1
MAX_DEPTH = 32  # nested graphs (If/Loop bodies): the exporters write none


class OnnxRefused(ValueError):
    """An ONNX file refused before any runtime read it; the message says why."""


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise OnnxRefused("malformed protobuf (truncated varint)")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) per field: ints for varints, views for everything else."""
    i = 0
    sizes = {1: 8, 5: 4}
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value
            continue
        if wire == 2:
            length, i = _varint(buf, i)
        elif wire in sizes:
            length = sizes[wire]
        else:  # groups (3, 4) are not in onnx.proto; 6 and 7 do not exist
            raise OnnxRefused(f"malformed protobuf (wire type {wire})")
        if i + length > len(buf):
            raise OnnxRefused("malformed protobuf (field runs past the end)")
        yield number, buf[i : i + length]
        i += length


def _text(value: int | memoryview) -> str:
    if isinstance(value, int):
        raise OnnxRefused("malformed protobuf (a string field holds a number)")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxRefused("malformed protobuf (a string field is not UTF-8)") from None


def _view(value: int | memoryview) -> memoryview:
    if isinstance(value, int):
        raise OnnxRefused("malformed protobuf (a message field holds a number)")
    return value


def _domain(domain: str, where: str) -> None:
    if domain not in ALLOWED_DOMAINS:
        raise OnnxRefused(
            f"{where} uses operator domain {domain!r}; only the standard ONNX domains are served"
        )


def _tensor(buf: memoryview) -> None:
    for number, value in _fields(buf):
        if number == TENSOR_EXTERNAL_DATA or (number == TENSOR_DATA_LOCATION and value == EXTERNAL):
            raise OnnxRefused("a tensor is stored as external data (a file outside the model); refusing")


def _sparse(buf: memoryview) -> None:
    for number, value in _fields(buf):
        if number in (SPARSE_VALUES, SPARSE_INDICES):
            _tensor(_view(value))


def _node(buf: memoryview, depth: int) -> None:
    op_type, domain = "?", ""
    for number, value in _fields(buf):
        if number == NODE_OP_TYPE:
            op_type = _text(value)
        elif number == NODE_DOMAIN:
            domain = _text(value)
        elif number == NODE_ATTRIBUTE:
            _attribute(_view(value), depth)
    _domain(domain, f"node {op_type}")


def _attribute(buf: memoryview, depth: int) -> None:
    for number, value in _fields(buf):
        if number in (ATTR_TENSOR, ATTR_TENSORS):
            _tensor(_view(value))
        elif number in (ATTR_SPARSE, ATTR_SPARSES):
            _sparse(_view(value))
        elif number in (ATTR_GRAPH, ATTR_GRAPHS):
            _graph(_view(value), depth + 1)


def _graph(buf: memoryview, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise OnnxRefused(f"graphs nested deeper than {MAX_DEPTH}")
    for number, value in _fields(buf):
        if number == GRAPH_NODE:
            _node(_view(value), depth)
        elif number == GRAPH_INITIALIZER:
            _tensor(_view(value))
        elif number == GRAPH_SPARSE_INITIALIZER:
            _sparse(_view(value))


def check(model: bytes) -> None:
    """Raise OnnxRefused unless ``model`` is a well-formed ONNX model of standard operators with
    every tensor inside the file."""
    seen: set[int] = set()
    for number, value in _fields(memoryview(model)):
        seen.add(number)
        if number == MODEL_OPSET_IMPORT:
            domain = next((_text(v) for n, v in _fields(_view(value)) if n == OPSET_DOMAIN), "")
            _domain(domain, "the model's opset import")
        elif number == MODEL_GRAPH:
            _graph(_view(value))
        elif number in (MODEL_FUNCTIONS, MODEL_TRAINING_INFO):
            what = "model-local functions" if number == MODEL_FUNCTIONS else "training information"
            raise OnnxRefused(f"the model carries {what}, which the exporters never write; refusing")
    if not {MODEL_IR_VERSION, MODEL_GRAPH} <= seen:
        raise OnnxRefused("not an ONNX model (no IR version or no graph)")
