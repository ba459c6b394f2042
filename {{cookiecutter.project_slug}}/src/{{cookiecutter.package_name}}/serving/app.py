"""The WSGI app: ``create_app()`` loads the predictor once and serves the SageMaker inference contract.

Only /ping, /invocations and /execution-parameters exist. Bad input gets a 4xx with a message that
names the row and feature at fault; nothing a client sends may cause a 500 or kill a worker.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html

/invocations is answered from the WSGI environ by ``invocations()`` (the per-request path: parse,
predict, encode, nothing else); Flask serves the other routes and the errors of unknown paths.

The service layer is the project's ``inference.py`` (SageMaker's ``input_fn`` / ``predict_fn`` /
``output_fn``, serving/handlers.py): ``Service.answer`` calls the functions it defines, and the
codecs and ``Predictor.predict`` directly for the others. With none defined (the template as
shipped) the path is exactly ``Service.predict``: the defaults cost no extra call.

Readiness: /ping answers 200 only once the model is loaded and a warm-up prediction on the stored
example row (``Predictor.example``) has succeeded in this process. gunicorn ``--preload`` builds the
app in the master; the warm-up must not run there, because a library thread pool (OpenMP in
LightGBM/XGBoost) started before fork hangs the forked workers (issue 11). So it runs in each worker:
from gunicorn's ``post_worker_init`` hook (in ``server``, which calls ``app.warm_up()``) before the
worker accepts a connection, or else lazily on the worker's first /ping.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_accept_header, parse_options_header
from werkzeug.wsgi import get_content_length, get_input_stream

from .. import paths
from ..predictor import Predictor
from . import MAX_PAYLOAD_BYTES, MAX_PAYLOAD_MB, codecs, compiled, imports
from .errors import (
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    ServingError,
)
from .handlers import Context, Handlers, UserCodeError

log = logging.getLogger(__name__)


def workers() -> int:
    return int(os.environ.get("MODEL_SERVER_WORKERS") or os.cpu_count() or 1)


class Service:
    """One predictor behind the service functions: everything per request that can be built once is
    built here. ``handlers``: the functions of the project's inference.py (default: none, all defaults)."""

    def __init__(self, predictor: Predictor, handlers: Handlers | None = None):
        self.predictor = predictor
        self.context = Context.of(predictor)
        self.schema, self.encoder = self.context.schema, self.context.encoder
        self.handlers = handlers or Handlers()
        # Ranking: the group column whose values, when a request carries them, get ranks within groups.
        self._group = (predictor.columns or {}).get("group") if predictor.problem_type == "ranking" else None
        # Settled once: the per-request path reads a bool, not the handlers.
        self._custom = self.handlers.custom
        self._own_input = self.handlers.input_fn is not None
        self._own_output = self.handlers.output_fn is not None
        self.ready = False
        self.pid: int | None = None  # the process the warm-up succeeded in (a fork starts unready)
        self._lock = threading.Lock()
        self._thread = threading.local()  # per-thread library settings (gthread workers serve in a thread)

    def predict(self, body: bytes, content_type: str, accept: str) -> bytes:
        if not getattr(self._thread, "configured", False):
            _configure_thread()
            self._thread.configured = True
        if self._group is not None and content_type != codecs.CSV:
            return self._ranked(body, content_type, accept)
        X = codecs.decode(body, content_type, self.schema)
        return self.encoder.encode(self.predictor.predict(X), accept)

    def _ranked(self, body: bytes, content_type: str, accept: str) -> bytes:
        """Ranking, JSON or JSON Lines: scores, and each row's rank in its group when the records
        carry the group column (CSV rows are features only: scores only)."""
        if not body.strip():
            raise codecs.BadRequest("empty request body")
        try:
            records = codecs.load_records(body, content_type)
            X = codecs.decode_records(records, self.schema)
        except RecursionError:
            raise codecs.BadRequest("the body is nested too deeply") from None
        groups = codecs.group_values(records, self._group)
        return self.encoder.encode(self.predictor.predict(X), accept, groups)

    def answer(self, body: bytes, content_type: str, accept: str) -> tuple[str, bytes]:
        """(content type, body) of the answer, through the service functions."""
        if not self._custom:
            return accept, self.predict(body, content_type, accept)
        if not getattr(self._thread, "configured", False):
            _configure_thread()
            self._thread.configured = True
        handlers, context = self.handlers, self.context
        if handlers.input_fn is None:
            data = codecs.decode(body, content_type, self.schema)
        else:
            data = handlers.input_fn(body, content_type, context)
        if handlers.predict_fn is None:
            prediction = self.predictor.predict(data)
        else:
            prediction = handlers.predict_fn(data, self.predictor, context)
        if handlers.output_fn is None:
            return accept, self.encoder.encode(prediction, accept)
        return handlers.output_fn.answer(prediction, accept, context)

    def negotiate(self, content_type: str, accept_header: str | None) -> str:
        """The type to answer in; 415 for a body type the default input_fn cannot read, 406 for an
        Accept nothing here can produce (a user's input_fn or output_fn decides for itself)."""
        if not self._own_input and content_type not in codecs.CONTENT_TYPES:
            raise codecs.unsupported(content_type)
        return _accept(accept_header, content_type, self._own_output)

    def respond(
        self, body: bytes | Callable[[], bytes], content_type: str, accept_header: str | None
    ) -> tuple[int, str, bytes]:
        """(status, content type, body) of one request, errors included: what /invocations
        answers. ``body`` may be a callable, read only once the types are accepted."""
        try:
            if not self._custom:  # the defaults: the path /invocations took before inference.py existed
                if content_type not in codecs.CONTENT_TYPES:
                    raise codecs.unsupported(content_type)
                accept = _accept(accept_header, content_type)
                return 200, accept, self.predict(body() if callable(body) else body, content_type, accept)
            accept = self.negotiate(content_type, accept_header)
            kind, answer = self.answer(body() if callable(body) else body, content_type, accept)
            return 200, kind, answer
        except ServingError as error:
            kind = _error_type(accept_header)
            return error.status, kind, codecs.encode_error(error.message, error.status, kind)
        except UserCodeError as error:
            log.error(error.log_text())  # the user's frames only: their code, their line
            kind = _error_type(accept_header)
            return 500, kind, codecs.encode_error(error.client_message, 500, kind)
        except Exception as error:
            log.exception("prediction failed")  # a bug, not bad input: keep the worker alive, log it
            kind = _error_type(accept_header)
            return 500, kind, codecs.encode_error(f"internal error: {type(error).__name__}", 500, kind)

    def is_ready(self) -> bool:
        return self.ready and self.pid == os.getpid()

    def warm_up(self) -> None:
        """Predict the stored example row through the whole path (decode, predict, encode), once
        per process; raises if it fails, so a broken model never reports ready. The default
        functions only: inference.py's may expect fields (an id) that the example row lacks."""
        with self._lock:
            if self.is_ready():
                return
            body = orjson.dumps([list(self.predictor.example)])
            for accept in codecs.CONTENT_TYPES:
                self.predict(body, codecs.JSON, accept)
            self.ready, self.pid = True, os.getpid()


def _mimetype(environ: dict[str, Any]) -> str:
    value = environ.get("CONTENT_TYPE", "")
    return value if value in codecs.CONTENT_TYPES else parse_options_header(value)[0].lower()


def _configure_thread() -> None:
    """Library settings for the calling thread (scikit-learn keeps its config per thread)."""
    if "sklearn" in sys.modules:  # the model uses scikit-learn (not imported just for this)
        # The codecs already refuse infinities and non-numbers (NaN stays: the model imputes it),
        # so scikit-learn's own per-call finiteness check is redundant: ~60 us of a ~1 ms request.
        sys.modules["sklearn"].set_config(assume_finite=True)


def _accept(header: str | None, content_type: str, custom_output: bool = False) -> str:
    """The response type: the request's own type unless the client asks for another one. With a
    user's output_fn any media type the client names is passed on (the function answers or refuses it)."""
    own = content_type in codecs.CONTENT_TYPES or (custom_output and bool(_MEDIA_TYPE.match(content_type)))
    if not header or header == "*/*":  # the common cases, without parsing the header
        return content_type if own else codecs.JSON
    if header in codecs.CONTENT_TYPES:  # one exact type, as the SDKs send it: same answer, no parse
        return header
    others = [t for t in codecs.CONTENT_TYPES if t != content_type]
    accepted = parse_accept_header(header, MIMEAccept)
    best = accepted.best_match([content_type, *others] if own else others)  # */* picks the first
    if best is None and custom_output:
        best = next((v for v, quality in accepted if quality > 0 and _MEDIA_TYPE.match(v)), None)
    if best is None:
        raise NotAcceptable(f"cannot produce {header!r}; supported: {', '.join(codecs.CONTENT_TYPES)}")
    return best


# A concrete media type (no wildcard, no parameters): what a user's output_fn may be asked for.
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*\Z", re.ASCII)


def _error_type(header: str | None) -> str:
    """Errors follow Accept (CSV clients get a text line), else JSON."""
    if header and parse_accept_header(header, MIMEAccept).best_match([codecs.JSON, codecs.CSV]) == codecs.CSV:
        return codecs.CSV
    return codecs.JSON


def _body(environ: dict[str, Any]) -> bytes:
    length = get_content_length(environ)
    if length is not None and length > MAX_PAYLOAD_BYTES:  # refuse before reading the body
        raise PayloadTooLarge(
            f"request body is {length} bytes; the limit is {MAX_PAYLOAD_BYTES} ({MAX_PAYLOAD_MB} MB)"
        )
    if length is not None and not environ.get("wsgi.input_terminated"):
        # The usual request (nginx always sends a Content-Length): read exactly that, unwrapped.
        return environ["wsgi.input"].read(length)
    # Chunked bodies have no Content-Length: gunicorn de-chunks them and sets wsgi.input_terminated.
    body = get_input_stream(environ).read(MAX_PAYLOAD_BYTES + 1)
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"request body exceeds the limit of {MAX_PAYLOAD_BYTES} bytes ({MAX_PAYLOAD_MB} MB)"
        )
    return body


# Content-Type values as werkzeug writes them (text types carry the charset).
_CONTENT_TYPE_HEADER = {
    codecs.CSV: "text/csv; charset=utf-8",
    codecs.JSON: codecs.JSON,
    codecs.JSONLINES: codecs.JSONLINES,
}
_STATUS = {200: "200 OK", 400: "400 BAD REQUEST", 404: "404 NOT FOUND", 405: "405 METHOD NOT ALLOWED",
           406: "406 NOT ACCEPTABLE", 413: "413 REQUEST ENTITY TOO LARGE", 415: "415 UNSUPPORTED MEDIA TYPE",
           500: "500 INTERNAL SERVER ERROR", 503: "503 SERVICE UNAVAILABLE"}  # fmt: skip


def invocations(service: Service, environ: dict[str, Any]) -> tuple[int, str, bytes]:
    """POST /invocations as (status, content type, body), straight from the WSGI environ.

    The hot path skips Flask's request and response objects, context and routing (~0.1-0.2 ms of a
    1-row request on this machine); every other route goes through Flask.
    """
    if environ.get("REQUEST_METHOD") != "POST":
        error = MethodNotAllowed(f"{environ.get('REQUEST_METHOD')} /invocations: only POST is allowed")
        kind = _error_type(environ.get("HTTP_ACCEPT"))
        return error.status, kind, codecs.encode_error(error.message, error.status, kind)
    return service.respond(lambda: _body(environ), _mimetype(environ), environ.get("HTTP_ACCEPT"))


def _with_invocations(service: Service, flask_app: Callable[..., Any]) -> Callable[..., Any]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/invocations":
            return flask_app(environ, start_response)
        status, kind, body = invocations(service, environ)
        headers = [("Content-Type", _CONTENT_TYPE_HEADER.get(kind, kind)), ("Content-Length", str(len(body)))]
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(_STATUS.get(status, f"{status} ERROR"), headers)
        return [body]

    return wsgi


def create_app(
    model_dir: Path | None = None, predictor: Predictor | None = None, inference: object | None = None
) -> Flask:
    """The app with its predictor loaded; gunicorn --preload calls this once in the master process.

    ``inference``: the module (or any object) whose input_fn / predict_fn / output_fn serve; by
    default the project's inference.py. Nothing here predicts: see the module docstring for where
    the warm-up runs.
    """
    imports.install()  # before the first prediction: optional-package probes miss only once
    handlers = Handlers.project() if inference is None else Handlers.of(inference)
    if predictor is None:
        directory = model_dir or paths.model_dir()
        # The ONNX export training verified, if there is one (serving/compiled.py): same answers
        # within 1e-6, a fraction of the library's time per call, and no library import at start.
        predictor = compiled.load(directory)
    service = Service(predictor, handlers)
    app = Flask(__name__)
    app.extensions["serving"] = service
    app.warm_up = service.warm_up  # type: ignore[attr-defined]  # server.post_worker_init calls it
    # No MAX_CONTENT_LENGTH: werkzeug would silently truncate a chunked body at the limit; _body checks.
    parameters = orjson.dumps(
        {
            "MaxConcurrentTransforms": workers(),
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": MAX_PAYLOAD_MB,
        }
    )

    @app.get("/ping")
    def ping() -> Response:
        if not service.is_ready():
            try:
                service.warm_up()
            except Exception as error:  # not ready: SageMaker keeps the instance out of service
                log.exception("warm-up prediction failed")
                raise ServiceUnavailable(f"warm-up prediction failed: {type(error).__name__}") from None
        return Response(b"", status=200)

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        return Response(parameters, mimetype=codecs.JSON)

    @app.errorhandler(ServingError)
    def serving_error(error: ServingError) -> Response:
        kind = _error_type(request.headers.get("Accept"))
        return Response(
            codecs.encode_error(error.message, error.status, kind), status=error.status, mimetype=kind
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # Werkzeug's own errors (unknown path, wrong method, oversize body): same shape as ours.
        mapped = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}.get(
            error.code or 400, BadRequest
        )
        message = error.description or error.name
        if error.code == 404:
            message = f"no route {request.path}: only /ping, /invocations and /execution-parameters exist"
        wrapped = mapped(message)
        wrapped.status = error.code or 400
        return serving_error(wrapped)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("request failed")  # a bug, not bad input: keep the worker alive, log it
        kind = _error_type(request.headers.get("Accept"))
        return Response(
            codecs.encode_error(f"internal error: {type(error).__name__}", 500, kind),
            status=500,
            mimetype=kind,
        )

    app.wsgi_app = _with_invocations(service, app.wsgi_app)  # type: ignore[method-assign]
    return app
