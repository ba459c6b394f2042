"""The WSGI app: ``create_app()`` loads the predictor once and serves the SageMaker inference contract.

Only /ping, /invocations and /execution-parameters exist. Bad input gets a 4xx with a message that
names the row and feature at fault; nothing a client sends may cause a 500 or kill a worker.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html

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
from pathlib import Path

import orjson
from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException

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

    def predict(self, body: bytes, content_type: str, accept: str) -> bytes:
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


def _accept(req: Request, content_type: str) -> str:
    """The response type: the request's own type unless the client asks for the other one."""
    header = req.headers.get("Accept")
    if not header or header == "*/*":  # the common cases, without parsing the header
        return content_type
    other = codecs.JSON if content_type == codecs.CSV else codecs.CSV
    best = req.accept_mimetypes.best_match([content_type, other])  # */* picks the first
    if best is None:
        raise NotAcceptable(f"cannot produce {header!r}; supported: {', '.join(codecs.CONTENT_TYPES)}")
    return best


def _error_type(req: Request) -> str:
    """Errors follow Accept (CSV clients get a text line), else JSON."""
    accept = req.accept_mimetypes
    if accept and accept.best_match([codecs.JSON, codecs.CSV]) == codecs.CSV:
        return codecs.CSV
    return codecs.JSON


def _body(req: Request) -> bytes:
    length = req.content_length
    if length is not None and length > MAX_PAYLOAD_BYTES:  # refuse before reading the body
        raise PayloadTooLarge(
            f"request body is {length} bytes; the limit is {MAX_PAYLOAD_BYTES} ({MAX_PAYLOAD_MB} MB)"
        )
    body = req.stream.read(MAX_PAYLOAD_BYTES + 1)  # chunked bodies have no Content-Length
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"request body exceeds the limit of {MAX_PAYLOAD_BYTES} bytes ({MAX_PAYLOAD_MB} MB)"
        )
    return body


def create_app(model_dir: Path | None = None, predictor: Predictor | None = None) -> Flask:
    """The app with its predictor loaded; gunicorn --preload calls this once in the master process.

    Nothing here predicts: see the module docstring for where the warm-up runs.
    """
    imports.install()  # before the first prediction: optional-package probes miss only once
    if predictor is None:
        directory = model_dir or paths.model_dir()
        # The ONNX export training verified, if there is one (serving/compiled.py): same answers
        # within 1e-6, ~1 ms less per scikit-learn call.
        predictor = compiled.attach(Predictor.load(directory), directory)
    service = Service(predictor)
    if "sklearn" in sys.modules:  # the model uses scikit-learn (not imported just for this)
        # The codecs already refuse infinities and non-numbers (NaN stays: the model imputes it),
        # so scikit-learn's own per-call finiteness check is redundant: ~60 us of a ~1 ms request.
        sys.modules["sklearn"].set_config(assume_finite=True)
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

    @app.post("/invocations")
    def invocations() -> Response:
        content_type = request.mimetype
        if content_type not in codecs.CONTENT_TYPES:
            raise UnsupportedMediaType(
                f"unsupported content type {content_type or '(none)'!r}; send {' or '.join(codecs.CONTENT_TYPES)}"
            )
        accept = _accept(request, content_type)
        return Response(service.predict(_body(request), content_type, accept), mimetype=accept)

    @app.errorhandler(ServingError)
    def serving_error(error: ServingError) -> Response:
        kind = _error_type(request)
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
        log.exception("prediction failed")  # a bug, not bad input: keep the worker alive, log it
        kind = _error_type(request)
        return Response(
            codecs.encode_error(f"internal error: {type(error).__name__}", 500, kind),
            status=500,
            mimetype=kind,
        )

    return app
