"""The WSGI app: ``create_app()`` loads the predictor once and serves the SageMaker inference contract.

Only /ping, /invocations and /execution-parameters exist. Bad input gets a 4xx with a message that
names the row and feature at fault; nothing a client sends may cause a 500 or kill a worker.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html

/invocations is answered from the WSGI environ by ``invocations()`` (the per-request path: parse,
predict, encode, nothing else); Flask serves the other routes and the errors of unknown paths.

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
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)


def workers() -> int:
    return int(os.environ.get("MODEL_SERVER_WORKERS") or os.cpu_count() or 1)


class Service:
    """One predictor behind the codecs: everything per request that can be built once is built here."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.schema = codecs.Schema(tuple(predictor.feature_names), tuple(predictor.feature_kinds))
        self.encoder = codecs.Encoder(predictor.problem_type, predictor.classes)
        self.ready = False
        self.pid: int | None = None  # the process the warm-up succeeded in (a fork starts unready)
        self._lock = threading.Lock()
        self._thread = threading.local()  # per-thread library settings (gthread workers serve in a thread)

    def predict(self, body: bytes, content_type: str, accept: str) -> bytes:
        if not getattr(self._thread, "configured", False):
            _configure_thread()
            self._thread.configured = True
        X = codecs.decode(body, content_type, self.schema)
        return self.encoder.encode(self.predictor.predict(X), accept)

    def is_ready(self) -> bool:
        return self.ready and self.pid == os.getpid()

    def warm_up(self) -> None:
        """Predict the stored example row through the whole path (decode, predict, encode), once
        per process; raises if it fails, so a broken model never reports ready."""
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


def _accept(header: str | None, content_type: str) -> str:
    """The response type: the request's own type unless the client asks for the other one."""
    if not header or header == "*/*":  # the common cases, without parsing the header
        return content_type
    if header in codecs.CONTENT_TYPES:  # one exact type, as the SDKs send it: same answer, no parse
        return header
    other = codecs.JSON if content_type == codecs.CSV else codecs.CSV
    best = parse_accept_header(header, MIMEAccept).best_match([content_type, other])  # */* picks the first
    if best is None:
        raise NotAcceptable(f"cannot produce {header!r}; supported: {', '.join(codecs.CONTENT_TYPES)}")
    return best


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
_CONTENT_TYPE_HEADER = {codecs.CSV: "text/csv; charset=utf-8", codecs.JSON: codecs.JSON}
_STATUS = {200: "200 OK", 400: "400 BAD REQUEST", 405: "405 METHOD NOT ALLOWED", 406: "406 NOT ACCEPTABLE",
           413: "413 REQUEST ENTITY TOO LARGE", 415: "415 UNSUPPORTED MEDIA TYPE", 500: "500 INTERNAL SERVER ERROR"}  # fmt: skip


def invocations(service: Service, environ: dict[str, Any]) -> tuple[int, str, bytes]:
    """POST /invocations as (status, content type, body), straight from the WSGI environ.

    The hot path skips Flask's request and response objects, context and routing (~0.1-0.2 ms of a
    1-row request on this machine); every other route goes through Flask.
    """
    accept_header = environ.get("HTTP_ACCEPT")
    try:
        if environ.get("REQUEST_METHOD") != "POST":
            raise MethodNotAllowed(f"{environ.get('REQUEST_METHOD')} /invocations: only POST is allowed")
        content_type = _mimetype(environ)
        if content_type not in codecs.CONTENT_TYPES:
            raise UnsupportedMediaType(
                f"unsupported content type {content_type or '(none)'!r}; send {' or '.join(codecs.CONTENT_TYPES)}"
            )
        accept = _accept(accept_header, content_type)
        return 200, accept, service.predict(_body(environ), content_type, accept)
    except ServingError as error:
        kind = _error_type(accept_header)
        return error.status, kind, codecs.encode_error(error.message, error.status, kind)
    except Exception as error:
        log.exception("prediction failed")  # a bug, not bad input: keep the worker alive, log it
        kind = _error_type(accept_header)
        return 500, kind, codecs.encode_error(f"internal error: {type(error).__name__}", 500, kind)


def _with_invocations(service: Service, flask_app: Callable[..., Any]) -> Callable[..., Any]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/invocations":
            return flask_app(environ, start_response)
        status, kind, body = invocations(service, environ)
        headers = [("Content-Type", _CONTENT_TYPE_HEADER[kind]), ("Content-Length", str(len(body)))]
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(_STATUS.get(status, f"{status} ERROR"), headers)
        return [body]

    return wsgi


def create_app(model_dir: Path | None = None, predictor: Predictor | None = None) -> Flask:
    """The app with its predictor loaded; gunicorn --preload calls this once in the master process.

    Nothing here predicts: see the module docstring for where the warm-up runs.
    """
    imports.install()  # before the first prediction: optional-package probes miss only once
    if predictor is None:
        directory = model_dir or paths.model_dir()
        # The ONNX export training verified, if there is one (serving/compiled.py): same answers
        # within 1e-6, a fraction of the library's time per call, and no library import at start.
        predictor = compiled.load(directory)
    service = Service(predictor)
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
