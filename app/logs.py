"""Structured logs: one JSON object per line on stderr, each stamped with the request's id.

What a line may hold is decided where it is logged: messages and the `extra` fields the service
passes — never request bodies, so never image bytes. Tracebacks go to the log, not to clients.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# Set by RequestContextMiddleware for the request being served; worker threads inherit it.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# The attributes every LogRecord has; anything else on a record came in through `extra=`
# (uvicorn's `color_message` is its message again, with terminal colour codes).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
_stamping = False


def stamp_request_ids() -> None:
    """Give every log record, whoever logs it, the id of the request it was logged in.

    Stamped when the record is made (in the request's context), not when it is formatted, which
    may happen later or elsewhere. Idempotent: the record factory is wrapped once per process.
    """
    global _stamping
    if _stamping:
        return
    make_record = logging.getLogRecordFactory()

    def stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    logging.setLogRecordFactory(stamped)
    _stamping = True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Extra fields (request_id among them, when there is one).
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES and v is not None)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str) -> None:
    """Route every logger (the app's, uvicorn's) and Python warnings through one JSON handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    # Pillow warns about what it finds in a client's corrupt file (bad EXIF, TIFF tags); the
    # client gets its 415 or its answer, and a log line per upload would let anyone flood the log.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
