"""Untrusted upload bytes → a uint8 image array, or a clear domain error.

Pure (Pillow + numpy). The type is sniffed from magic bytes, never taken from the client, and
Pillow is restricted to that one decoder. Size caps are checked on the header, before any pixel
is decoded, so a small file that claims a huge image costs nothing.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.config import Settings
from app.errors import (
    DecodeBudgetExceeded,
    EmptyUpload,
    ImageTooLarge,
    PayloadTooLarge,
    ServiceError,
    UnsupportedImage,
)
from app.service.jpeg_scan import without_end_marker

SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")

# What Pillow raises on malformed data; decoders are C and Python, so more than OSError.
_DECODE_ERRORS = (
    OSError,  # truncated data, decoder errors (UnidentifiedImageError is one)
    SyntaxError,  # malformed PNG/GIF chunks
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
    ZeroDivisionError,
)

# Modes that map onto RGB(A) by Pillow's own conversion (colour spaces, palettes, bilevel…).
_WITH_ALPHA = {"RGBA", "RGBa", "LA", "La", "PA"}


def sniff_format(data: bytes) -> str | None:
    """The Pillow format name for the file's magic bytes, or None if it is not a supported image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(b"BM"):
        return "BMP"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_size(width: int, height: int, max_pixels: int, max_side: int) -> None:
    if width <= 0 or height <= 0:
        raise UnsupportedImage(f"image has invalid dimensions {width}x{height}")
    if max(width, height) > max_side:
        raise ImageTooLarge(f"image is {width}x{height}; each side must be at most {max_side} pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels"
        )


def to_array(image: Image.Image) -> np.ndarray:
    """A loaded Pillow image → uint8 HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA)."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        return wide_grey_to_uint8(np.asarray(image))
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(image, dtype=np.uint8)
    if mode in ("1", "F"):
        return np.asarray(image.convert("L"), dtype=np.uint8)
    has_alpha = mode in _WITH_ALPHA or (mode in ("P", "L") and "transparency" in image.info)
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8)


def wide_grey_to_uint8(wide: np.ndarray, rows_per_block: int = 256) -> np.ndarray:
    """16-bit (or 32-bit int) grey → uint8, keeping the top 8 bits of the 16-bit range.

    Block by block into one uint8 array: converting the whole image at once made int64 copies
    of it, and a 40 Mpx 16-bit PNG (a 100 kB upload) took a worker from 130 to 900 MB.
    """
    out = np.empty(wide.shape, np.uint8)
    for start in range(0, wide.shape[0], rows_per_block):
        block = wide[start : start + rows_per_block]
        if block.dtype.kind == "i":  # mode "I": signed, may lie outside 0..65535
            block = np.clip(block, 0, 65535)
        out[start : start + rows_per_block] = block >> 8
    return out


def reduce_jpeg_decoding(image: Image.Image, min_side: int) -> None:
    """Let the JPEG decoder scale by 1/2, 1/4 or 1/8 while the longer side stays ≥ `min_side`,
    and decode colour straight to grey (JPEG's own luma, what `to_gray` computes from RGB).

    A 12-MP photo then decodes in a tenth of the time and memory; the pixels dropped are ones
    preprocessing would average away anyway.
    """
    width, height = image.size
    scale = min_side / max(width, height)
    requested = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
    image.draft("L" if image.mode == "RGB" else image.mode, requested)


def decode_image(data: bytes, max_pixels: int, max_side: int, reduce_to: int | None = None) -> np.ndarray:
    """Upload bytes → uint8 image array (first frame, EXIF orientation applied).

    `reduce_to`: JPEGs may come out smaller, their longer side no less than this (or their own).
    Raises EmptyUpload, UnsupportedImage (not an image, or corrupt/truncated) or ImageTooLarge.
    """
    if not data:
        raise EmptyUpload("the uploaded file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImage(f"not a supported image; send one of {', '.join(SUPPORTED_FORMATS)}")
    if fmt == "JPEG":
        # A scan cut short must make the decoder run out of data, not meet an appended FFD9.
        data = without_end_marker(data)
    try:
        # Lazy: reads the header only. `formats` keeps Pillow to the decoder we sniffed.
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (2 x MAX_IMAGE_PIXELS) fires inside open(), before our check.
        raise ImageTooLarge(f"image is far too large; the limit is {max_pixels} pixels") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImage(f"the file starts like a {fmt} image but its header is invalid") from exc
    except _DECODE_ERRORS as exc:
        raise UnsupportedImage(f"corrupt {fmt} image: {exc}") from exc
    with image:
        check_size(*image.size, max_pixels=max_pixels, max_side=max_side)
        try:
            if reduce_to is not None and fmt == "JPEG":
                reduce_jpeg_decoding(image, reduce_to)
            # Animated / multi-page files: Pillow opens on frame 0, which is what we classify.
            image.load()
            # In place: no second full-size copy of an upright image (a 40 Mpx photo is 120 MB).
            ImageOps.exif_transpose(image, in_place=True)
            return np.ascontiguousarray(to_array(image))
        except _DECODE_ERRORS as exc:
            raise UnsupportedImage(f"corrupt or truncated {fmt} image: {exc}") from exc


def decode_upload(data: bytes, settings: Settings, reduce_to: int | None = None) -> np.ndarray:
    """The one way an upload's bytes become pixels in this service: sniffed, checked against the
    pixel and side caps from its header, decoded (a JPEG reduced while its longer side stays at
    least `reduce_to`). Raises EmptyUpload, UnsupportedImage or ImageTooLarge."""
    return decode_image(data, max_pixels=settings.max_pixels, max_side=settings.max_side, reduce_to=reduce_to)


def decode_cost(data: bytes, max_pixels: int, max_side: int) -> int:
    """What decoding `data` costs, from its header alone: width × height × bytes per pixel, the
    bytes the decoder and the conversion to grey/RGB/RGBA write. 0 for a file that will never be
    decoded (not an image, a header that does not parse, over the per-file caps): its own
    answer comes when it is opened for decoding.

    The full declared size is counted, a JPEG that will decode reduced included: the budget is
    an upper bound on the work, and a reduced JPEG still reads every coefficient."""
    fmt = sniff_format(data)
    if fmt is None:
        return 0
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombError, *_DECODE_ERRORS):
        return 0
    with image:
        width, height = image.size
        try:
            check_size(width, height, max_pixels=max_pixels, max_side=max_side)
        except ServiceError:
            return 0
        return width * height * bytes_per_pixel(image, data, fmt)


def bytes_per_pixel(image: Image.Image, data: bytes, fmt: str) -> int:
    """Bytes per pixel of an opened (not loaded) image, as decoded and as `to_array` makes it:
    16-bit samples count 2 bytes (Pillow reports a 48-bit PNG as "RGB"), a palette 3 or 4."""
    mode = image.mode
    if mode.startswith("I;16"):
        return 2
    if mode in ("I", "F"):
        return 4
    has_alpha = mode in _WITH_ALPHA or (mode in ("P", "L") and "transparency" in image.info)
    if has_alpha:
        return 4 * sample_bytes(image, data, fmt)  # converted to RGBA
    if mode == "P":
        return 3  # converted to RGB
    return len(image.getbands()) * sample_bytes(image, data, fmt)


def sample_bytes(image: Image.Image, data: bytes, fmt: str) -> int:
    """2 for 16-bit samples, read from the header where Pillow's mode hides them, else 1."""
    if fmt == "PNG" and len(data) > 24:
        return 2 if data[24] == 16 else 1  # IHDR's bit depth, at a fixed offset
    if fmt == "TIFF":
        bits = getattr(image, "tag_v2", {}).get(258)  # BitsPerSample
        values = bits if isinstance(bits, tuple) else (bits,)
        if any(isinstance(value, int) and value > 8 for value in values):
            return 2
    return 1


def check_decode_budget(files: Sequence[bytes], budget: int, max_pixels: int, max_side: int) -> None:
    """DecodeBudgetExceeded unless the files of one request together cost at most `budget`
    (`decode_cost`), checked before any of them is decoded: the per-file caps bound one image,
    this bounds how long one request holds its worker."""
    costs = [decode_cost(data, max_pixels, max_side) for data in files]
    total = sum(costs)
    if total > budget:
        raise DecodeBudgetExceeded(
            f"the {len(files)} images of this request would decode to {total} bytes (width × height × "
            f"bytes per pixel, summed); the decode budget per request is {budget} bytes: send fewer "
            f"or smaller images per request"
        )


def read_capped(stream: BinaryIO, max_bytes: int) -> bytes:
    """The whole file-like object, or PayloadTooLarge once it holds more than `max_bytes`.

    One read of at most one byte past the cap: one copy of the upload, never more than that read.
    """
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge.over(max_bytes)
    return data
