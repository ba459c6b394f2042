"""The service layer's functions: those the project's ``inference.py`` defines, and how to call them.

SageMaker's convention (the inference toolkit behind AWS's framework containers): a user module
may define ``input_fn(request_body, content_type)``, ``predict_fn(data, model)`` and
``output_fn(prediction, accept)``, each with an optional last ``context`` parameter, and the
server uses the default for each one it does not define.
https://github.com/aws/sagemaker-inference-toolkit (transformer.py: defaults, the context argument,
an output_fn result of ``(body, content_type)``)

Here ``Handlers.of(module)`` finds them once, at start-up; ``serving/app.py`` calls the defaults
directly for the others, so an undefined function costs nothing. ``model_fn`` and ``transform_fn``
are refused: the model is always loaded by the project's checked loader (``serving/compiled.py``,
``Predictor.load``), never by user code.

Errors: a ``ServingError`` keeps its status; a ``ValueError`` from ``input_fn`` or ``output_fn``
is a 400 with its message (bad input the user's code noticed); anything else is a
``UserCodeError``: a 500 to the client and one log record naming the function and line, with
the traceback of the user's own frames only (``log_text``; ``user_traceback`` finds the last one
in a server log, for the offline run).
"""

from __future__ import annotations

import inspect
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..predictor import Predictor
from . import codecs
from .errors import BadRequest, ServingError

NAMES = ("input_fn", "predict_fn", "output_fn")
REFUSED = ("model_fn", "transform_fn")
# The first line of the log record of a failed user function (user_traceback looks for it).
LOG_MARKER = "inference.py: "
_TRACEBACK_HEADER = "Traceback of your code (most recent call last):"
MAX_MESSAGE = 300  # a ValueError's message may quote a whole client cell: bounded in the answer


@dataclass(frozen=True)
class Context:
    """What the service functions may read besides their arguments (their optional last parameter).

    model    the ``Predictor`` (feature_names, classes, threshold, predict)
    schema   the feature names and kinds, for ``codecs.decode`` / ``codecs.decode_records``
    encoder  the default answer: ``encoder.records(prediction)``, ``encoder.encode(prediction, accept)``
    """

    model: Predictor
    schema: codecs.Schema
    encoder: codecs.Encoder

    @classmethod
    def of(cls, model: Predictor) -> Context:
        return cls(
            model,
            codecs.Schema(
                tuple(model.feature_names), tuple(model.feature_kinds), frozenset(model.other_columns())
            ),
            codecs.Encoder(model.problem_type, model.classes),
        )


class UserCodeError(Exception):
    """A service function failed with something other than a client error: a 500 naming it."""

    def __init__(self, handler: Handler, error: BaseException):
        super().__init__(f"{handler.name}: {type(error).__name__}")
        self.handler, self.error = handler, error

    @property
    def client_message(self) -> str:
        return f"internal error in {self.handler.name}: {type(self.error).__name__}"

    def log_text(self) -> str:
        """``inference.py: <function> failed at line N: <error>``, then the user's frames only."""
        frames = _user_frames(self.error, self.handler.file)
        line = frames[-1].lineno if frames else self.handler.line
        error = "".join(traceback.format_exception_only(type(self.error), self.error)).strip()
        head = error.splitlines()[0] if error else type(self.error).__name__
        lines = [f"{LOG_MARKER}{self.handler.name} failed at line {line} ({self.handler.file}): {head}"]
        if frames:
            lines += [_TRACEBACK_HEADER, "".join(traceback.format_list(frames)).rstrip("\n"), error]
        return "\n".join(lines)


_LIBRARIES = {sysconfig.get_paths()[name] for name in ("stdlib", "purelib", "platlib")}


def _user_frames(error: BaseException, user_file: str) -> list[traceback.FrameSummary]:
    """The frames from the user's function down, without Python's and the libraries' own."""
    frames = traceback.extract_tb(error.__traceback__)
    start = next((i for i, f in enumerate(frames) if f.filename == user_file), len(frames))
    return [
        frame
        for frame in frames[start:]
        if frame.filename == user_file or not frame.filename.startswith(tuple(_LIBRARIES))
    ]


@dataclass(frozen=True)
class Handler:
    """One function of the user's module, its arity settled once (SageMaker's optional context)."""

    name: str
    function: Callable[..., Any]
    takes_context: bool
    file: str
    line: int

    def __call__(self, first: Any, second: Any, context: Context) -> Any:
        try:
            if self.takes_context:
                return self.function(first, second, context)
            return self.function(first, second)
        except ServingError:
            raise
        except ValueError as error:
            if self.name == "predict_fn":  # the input was accepted: a failing model call is a bug
                raise UserCodeError(self, error) from error
            message = str(error) or type(error).__name__
            raise BadRequest(message[:MAX_MESSAGE]) from None
        except Exception as error:
            raise UserCodeError(self, error) from error

    def answer(self, prediction: Any, accept: str, context: Context) -> tuple[str, bytes]:
        """output_fn's result as (content type, body): bytes or str in ``accept``, or a
        ``(body, content_type)`` pair as the inference toolkit allows."""
        result = self(prediction, accept, context)
        body, content_type = result if isinstance(result, tuple) and len(result) == 2 else (result, accept)
        if isinstance(body, str):
            body = body.encode()
        elif isinstance(body, bytearray | memoryview):
            body = bytes(body)
        if not isinstance(body, bytes) or not _header_safe(content_type):
            raise UserCodeError(
                self,
                TypeError(
                    f"{self.name} returned {type(result).__name__}: return bytes, str or (body, content_type)"
                    " with a content type of printable ASCII"
                ),
            )
        return content_type, body


def _header_safe(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and value.isascii() and value.isprintable()


@dataclass(frozen=True)
class Handlers:
    """The service functions the project defines (None: the default, which app.py calls directly)."""

    input_fn: Handler | None = None
    predict_fn: Handler | None = None
    output_fn: Handler | None = None

    @property
    def custom(self) -> bool:
        return any(getattr(self, name) is not None for name in NAMES)

    @property
    def defined(self) -> tuple[str, ...]:
        return tuple(name for name in NAMES if getattr(self, name) is not None)

    @classmethod
    def of(cls, module: ModuleType | object) -> Handlers:
        """The functions ``module`` defines, checked: two parameters or three (the last the
        context), no model_fn or transform_fn. Raises TypeError naming the function otherwise."""
        for name in REFUSED:
            if getattr(module, name, None) is not None:
                raise TypeError(
                    f"inference.py defines {name}: not supported here; the model is loaded by the project's"
                    " checked loader (serving/compiled.py), and input_fn / predict_fn / output_fn serve it"
                )
        found = {}
        for name in NAMES:
            function = getattr(module, name, None)
            if function is not None:
                found[name] = _handler(name, function)
        return cls(**found)

    @classmethod
    def project(cls) -> Handlers:
        """The functions of this project's ``inference.py`` (imported here, at start-up)."""
        import importlib

        return cls.of(importlib.import_module(f"{__package__.rpartition('.')[0]}.inference"))


def _handler(name: str, function: Any) -> Handler:
    if not callable(function):
        raise TypeError(f"inference.py: {name} is a {type(function).__name__}, not a function")
    code = getattr(function, "__code__", None)
    line = code.co_firstlineno if code else 0
    count = len(inspect.signature(function).parameters)
    if count not in (2, 3):
        raise TypeError(
            f"inference.py: {name} (line {line}) takes {count} parameters; SageMaker's {name} takes two,"
            " or three with the context last"
        )
    file = code.co_filename if code else getattr(inspect.getmodule(function), "__file__", None) or ""
    return Handler(name, function, count == 3, file, line)


def user_traceback(logs: str) -> str:
    """The last failed-function record of a server log (``UserCodeError.log_text``), else ''."""
    lines = logs.splitlines()
    starts = [i for i, line in enumerate(lines) if LOG_MARKER in line and " failed at line " in line]
    if not starts:
        return ""
    first = lines[starts[-1]]
    block = [first[first.index(LOG_MARKER) :]]
    rest = lines[starts[-1] + 1 :]
    if rest and rest[0].endswith(_TRACEBACK_HEADER):
        block.append(_TRACEBACK_HEADER)
        for line in rest[1:]:
            block.append(line)
            if not line.startswith(" "):  # the exception line closes the record
                break
    return "\n".join(block)
