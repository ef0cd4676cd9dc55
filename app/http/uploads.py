"""The one file of an upload to `POST /predict/{task}` or `/read/{task}`, split out of the body in one
pass when it can be.

The form parser behind FastAPI's `UploadFile` (Starlette's on python-multipart: a Python state
machine over the part headers, a spooled file per part, the parameter's validation) costs CPU
per request that shows in the throughput (docs/speed.md, measured in paired bursts). So a body small enough
to be held in memory anyway (`max_in_memory`, HWR_UPLOAD_MEMORY_BYTES) that is well-formed
multipart is split here with a few `bytes.find`s, and only the file is kept. Any other body
(larger, without a Content-Length, malformed, lacking the field or repeating it) goes to
Starlette's parser, whose answers (400, 422) it keeps.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, BinaryIO

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive


def file_part(
    body: bytes, boundary: bytes, field: str, divert: frozenset[bytes] = frozenset()
) -> bytes | None:
    """The content of the one part named `field`, a file (it carries a filename), in a
    well-formed multipart body; None for anything else, which the general parser then answers,
    and for a body that has a part named in `divert` (text fields the caller reads from the form).

    Every part is read, not only up to the file: a second part of that name must reach the
    general parser, which refuses it, so that the body gets the same answer whichever path
    it takes (this split once took the first `file`, Starlette's form the last)."""
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + b"\r\n"):
        return None
    separator = b"\r\n" + delimiter
    start = len(delimiter) + 2
    found: tuple[int, int] | None = None
    while True:
        headers_end = body.find(b"\r\n\r\n", start)
        if headers_end < 0:
            return None
        content_end = body.find(separator, headers_end + 4)
        if content_end < 0:
            return None
        disposition = part_disposition(body[start:headers_end])
        if disposition is None:
            return None  # headers that do not parse: the general parser's to answer
        name, is_file = disposition
        if name in divert:
            return None
        if name == field.encode():
            if found is not None or not is_file:
                return None  # repeated, or a text field: the general parser refuses both
            found = (headers_end + 4, content_end)
        after = content_end + len(separator)
        ending = body[after : after + 2]
        if ending == b"--":  # the closing delimiter
            return body[found[0] : found[1]] if found is not None else None
        if ending != b"\r\n":
            return None  # not multipart
        start = after + 2


def part_disposition(headers: bytes) -> tuple[bytes, bool] | None:
    """A part's form field name and whether it is a file (has a filename); None when a line is
    not a header or the part names no form field (Starlette's form answers those 400)."""
    disposition = None
    for line in headers.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        if name.strip().lower() == b"content-disposition":
            disposition = value.strip()  # the last one counts, as in Starlette's form
    if disposition is None:
        return None
    kind, options = parse_options_header(disposition)
    field = options.get(b"name")
    if kind != b"form-data" or field is None:
        return None
    return field, b"filename" in options


@asynccontextmanager
async def uploaded_file(request: Request, field: str, max_in_memory: int) -> AsyncIterator[BinaryIO]:
    """The file uploaded in multipart field `field`, open until the block ends."""
    async with uploaded_form(request, field, max_in_memory) as (file, _):
        yield file


@asynccontextmanager
async def uploaded_form(
    request: Request, field: str, max_in_memory: int, text_fields: tuple[str, ...] = ()
) -> AsyncIterator[tuple[BinaryIO, dict[str, str]]]:
    """The file uploaded in multipart field `field`, open until the block ends, and those of
    `text_fields` the form has (each at most once)."""
    try:
        async with _uploaded_form(request, field, max_in_memory, text_fields) as form:
            yield form
    except ClientDisconnect as exc:
        # Never reaches anyone: the client left, or the byte cap has already answered 413.
        raise HTTPException(400, "the request body ended before it was complete") from exc


@asynccontextmanager
async def _uploaded_form(
    request: Request, field: str, max_in_memory: int, text_fields: tuple[str, ...]
) -> AsyncIterator[tuple[BinaryIO, dict[str, str]]]:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    length = request.headers.get("content-length", "")
    small = length.isdigit() and int(length) <= max_in_memory
    if small and content_type == b"multipart/form-data" and b"boundary" in options:
        # Not `request.body()`, which would keep the whole body for as long as the request lasts.
        body = b"".join([piece async for piece in request.stream()])
        divert = frozenset(name.encode() for name in text_fields)
        content = file_part(body, options[b"boundary"], field, divert)
        if content is not None:
            del body  # from here on only the file is held, while the request waits and computes
            yield io.BytesIO(content), {}
            return
        request = Request(request.scope, replaying(body))
    # Starlette's parser: it spools large files, and its 400 for a broken body is the answer.
    async with request.form() as form:
        uploads = form.getlist(field)
        if len(uploads) > 1:
            # One image per request; which of several was meant is not for the server to guess.
            error = {"type": "too_many", "loc": ("body", field), "msg": f"send one file, not {len(uploads)}"}
            raise RequestValidationError([error])
        upload = uploads[0] if uploads else None
        if not isinstance(upload, UploadFile):
            missing: dict[str, Any] = {"type": "missing", "loc": ("body", field), "msg": "Field required"}
            raise RequestValidationError([missing])
        texts = {}
        for name in text_fields:
            values = form.getlist(name)
            if len(values) > 1 or any(not isinstance(v, str) for v in values):
                error = {"type": "value_error", "loc": ("body", name), "msg": "send one text field"}
                raise RequestValidationError([error])
            if values:
                texts[name] = str(values[0])
        yield upload.file, texts


def replaying(body: bytes) -> Receive:
    """An ASGI `receive` that hands over `body`, already read, as the whole request body."""

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


# The form field both single-image endpoints read.
IMAGE_FIELD = "file"
