"""The WSGI app: ``create_app()`` loads the model once and serves the SageMaker inference contract.

Only /ping, /invocations and /execution-parameters exist. Bad input gets a 4xx with a message that
names the row and feature at fault; nothing a client sends may cause a 500 or kill a worker.
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import orjson
import sklearn
from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException

from .. import paths
from ..model import Model
from . import MAX_PAYLOAD_BYTES, MAX_PAYLOAD_MB, codecs
from .errors import (
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    ServingError,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)


def workers() -> int:
    return int(os.environ.get("MODEL_SERVER_WORKERS") or os.cpu_count() or 1)


def _accept(req: Request, content_type: str) -> str:
    """The response type: the request's own type unless the client asks for the other one."""
    if not req.accept_mimetypes:  # no Accept header: same as the request
        return content_type
    other = codecs.JSON if content_type == codecs.CSV else codecs.CSV
    best = req.accept_mimetypes.best_match([content_type, other])  # */* picks the first
    if best is None:
        raise NotAcceptable(
            f"cannot produce {req.headers.get('Accept')!r}; supported: {', '.join(codecs.CONTENT_TYPES)}"
        )
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


def create_app(model_dir: Path | None = None, model: Model | None = None) -> Flask:
    """The app with its model loaded; gunicorn --preload calls this once in the master process."""
    # codecs already refuse infinities and non-numbers (NaN stays: the model imputes it), so
    # scikit-learn's own per-call finiteness check is redundant here: ~60 us of a ~1 ms request.
    sklearn.set_config(assume_finite=True)
    model = model or Model.load(model_dir or paths.model_dir())
    names = model.feature_names
    negative, positive = model.classes
    app = Flask(__name__)
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
        # The model is loaded before the app exists, so answering at all means ready.
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
        X = codecs.decode(_body(request), content_type, names)
        scores = model.predict_proba(X)
        labels = np.where(scores >= 0.5, positive, negative)
        return Response(codecs.encode(labels, scores, accept), mimetype=accept)

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
