"""Domain exceptions and the one table that maps them to HTTP.

Pure (no web framework), so the pure modules can raise them; `app.main` installs the handlers
that turn any `ServiceError` into `{"error": {"code": ..., "message": ...}}` with `status_code`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ServiceError(Exception):
    """A failure the client caused or can act on; never a stack trace, never a 500.
    `headers` go out with the response (e.g. `Retry-After`)."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class UnsupportedImage(ServiceError):
    status_code = 415
    code = "unsupported_image"


class EmptyUpload(ServiceError):
    status_code = 422
    code = "empty_file"


class ImageTooLarge(ServiceError):
    status_code = 413
    code = "image_too_large"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"

    @classmethod
    def over(cls, max_upload_bytes: int) -> PayloadTooLarge:
        """The one answer of the byte cap, whether the stream or a file passed it."""
        return cls(f"the upload exceeds the limit of {max_upload_bytes} bytes")


class DecodeBudgetExceeded(ServiceError):
    """The images of one request would together decode to more than `max_decode_cost` bytes.

    413, like `image_too_large`: the request is too large to process, judged from the headers
    before any pixel is decoded, and the client can act on it by sending fewer or smaller images
    per request (a 422 would say the request means something wrong, which it does not)."""

    status_code = 413
    code = "decode_budget_exceeded"


class NoInk(ServiceError):
    """Raised in place of `contract.preprocessing.NoInkError`: a blank or flat image."""

    status_code = 422
    code = "no_ink"


class InvalidParameter(ServiceError):
    status_code = 422
    code = "invalid_parameter"


class TooManyCharacters(ServiceError):
    """`POST /read`: far more separate marks than any word, code or number (a texture, a photo)."""

    status_code = 422
    code = "too_many_characters"


class TooManyPieces(ServiceError):
    """`POST /read`: more candidate characters than `read_max_pieces` (the work is bounded)."""

    status_code = 422
    code = "too_many_pieces"


class InternalError(ServiceError):
    """A bug met while serving one file of several (its cause chained): that file alone is
    answered as the last-resort handler answers a request."""

    status_code = 500
    code = "internal_error"


class UnknownWriter(ServiceError):
    status_code = 404
    code = "unknown_writer"


class WritersDisabled(ServiceError):
    """HWR_WRITERS_ENABLED=false: this deployment offers no writer identification (and stores no
    enrolments), by its operator's choice: not a fault to retry, hence 404."""

    status_code = 404
    code = "writers_disabled"


class WriterStoreUnavailable(ServiceError):
    status_code = 503
    code = "writer_store_unavailable"


class WriterStoreFull(ServiceError):
    """HWR_WRITER_MAX_WRITERS reached: a state the client can change (delete a writer), hence 409."""

    status_code = 409
    code = "writer_store_full"


class CorsRefused(ServiceError):
    """A CORS preflight from an origin, or for a method or header, not allowed."""

    status_code = 400
    code = "cors_refused"


class UnknownTask(ServiceError):
    status_code = 404
    code = "unknown_task"


class ModelNotReady(ServiceError):
    status_code = 503
    code = "model_not_ready"


class Unauthorized(ServiceError):
    """Missing or wrong bearer token (only when a token is configured)."""

    status_code = 401
    code = "unauthorized"


class BodyTimeout(ServiceError):
    """The client did not finish sending its body in time."""

    status_code = 408
    code = "request_timeout"


class Overloaded(ServiceError):
    """Too many predictions in flight; answered at once, with Retry-After, instead of queueing."""

    status_code = 503
    code = "overloaded"


class ServerTimeout(ServiceError):
    """The request was not served in time (waiting for a worker, or the work itself)."""

    status_code = 503
    code = "timeout"


# Codes for errors that Starlette/FastAPI raise themselves (routing, body parsing).
HTTP_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    408: "request_timeout",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
