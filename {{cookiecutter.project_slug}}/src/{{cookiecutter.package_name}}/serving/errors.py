"""Client errors of the inference API, each with the HTTP status SageMaker passes back to callers.

Every bad request maps to one of these (never a 500): the handler turns them into
``{"error": message, "code": status}`` (or a text line when the client accepts CSV).
"""

from __future__ import annotations


class ServingError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ServingError):
    status = 400


class NotFound(ServingError):
    status = 404


class MethodNotAllowed(ServingError):
    status = 405


class NotAcceptable(ServingError):
    status = 406


class PayloadTooLarge(ServingError):
    status = 413


class UnsupportedMediaType(ServingError):
    status = 415


class ServiceUnavailable(ServingError):
    """Not a client error: /ping before the warm-up prediction has succeeded in this worker."""

    status = 503
