"""The service's own errors and the one table that turns each into an HTTP status with a JSON body
`{"error": "<what was wrong>"}`.

BentoML answers some requests itself, before the service sees them, in the same JSON shape: a body
that fails the request schema (400, with pydantic's `detail` list), more than `max_concurrency`
requests at once (429 `{"error": "Too many requests"}`), a request over the 30 s timeout (504).
Starlette answers unknown routes (404) and methods (405) in plain text.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import JSONResponse


class ServiceError(Exception):
    """An error the client is told about; its message says what was wrong."""


class BadRequest(ServiceError):
    """The schema let the request through but the model cannot serve it (top_k above the label count)."""


class PayloadTooLarge(ServiceError):
    """The body is longer than the largest valid request (found before it is read)."""


class UnsupportedMediaType(ServiceError):
    """The body is not sent as JSON."""


class ModelNotReady(ServiceError):
    """The model is still loading, or failed to load (the log and /readyz say so)."""


class Overloaded(ServiceError):
    """A request waited for the model past the batch deadline (max_latency_ms)."""


STATUS: dict[type[ServiceError], HTTPStatus] = {
    BadRequest: HTTPStatus.BAD_REQUEST,
    PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    ModelNotReady: HTTPStatus.SERVICE_UNAVAILABLE,
    Overloaded: HTTPStatus.SERVICE_UNAVAILABLE,
}


def error_response(error: ServiceError) -> JSONResponse:
    return JSONResponse({"error": str(error)}, status_code=STATUS[type(error)])
