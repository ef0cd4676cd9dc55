"""Structured logs: one JSON object per line on stderr, each stamped with the request's id.

What a line may hold is decided where it is logged: messages and the `extra` fields the service
passes — never request bodies, so never image bytes. Tracebacks go to the log, not to clients.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
import warnings
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
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

# A logged traceback is bounded (each 500 once wrote 12.8 KB, most of it the server's and
# middlewares' frames, and an exception's message can carry any amount of data). The innermost
# frames, where the bug is, are kept; the outer ones are the same on every request.
MAX_TRACEBACK_FRAMES = 12  # per exception of a chain
MAX_TRACEBACK_PIECE_CHARS = 1000  # a frame's lines, or an exception's message
MAX_TRACEBACK_CHARS = 8000  # the whole, chained exceptions included; beyond, its end is kept


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
    def formatException(self, ei: ExcInfo) -> str:
        return bounded_traceback(ei)

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


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def bounded_traceback(exc_info: ExcInfo) -> str:
    """The traceback of `exc_info`, at most MAX_TRACEBACK_CHARS: the innermost frames of each
    exception, each frame and message cut to MAX_TRACEBACK_PIECE_CHARS."""
    _, value, tb = exc_info
    if value is None:  # `exc_info=True` outside an exception
        return "NoneType: None"
    # A negative limit keeps the last (innermost) frames, for the chained exceptions too.
    summary = traceback.TracebackException.from_exception(value, limit=-MAX_TRACEBACK_FRAMES)
    left_out = sum(1 for _ in traceback.walk_tb(tb)) - len(summary.stack)
    pieces = [_cut(piece, MAX_TRACEBACK_PIECE_CHARS) for piece in summary.format()]
    if left_out > 0:
        # Said under the exception raised last, the one `tb` belongs to, printed last in a chain.
        headers = [i for i, piece in enumerate(pieces) if "Traceback (most recent call last):" in piece]
        header = headers[-1] if headers else -1
        pieces.insert(header + 1, f"  [{left_out} outer frames left out]\n")
    text = "".join(pieces).rstrip("\n")
    if len(text) > MAX_TRACEBACK_CHARS:
        kept = text[len(text) - MAX_TRACEBACK_CHARS + 100 :]  # room for the note
        text = f"[{len(text) - len(kept)} characters of the traceback's start left out]\n{kept}"
    return text


def _cut(piece: str, limit: int) -> str:
    if len(piece) <= limit:
        return piece
    return f"{piece[:limit]}[... {len(piece) - limit} characters left out]\n"


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
