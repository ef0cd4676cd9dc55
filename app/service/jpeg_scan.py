"""A JPEG's first scan, ended without its closing marker, so that a scan cut short is refused.

libjpeg (Pillow's decoder) takes a marker met inside the entropy-coded data for the end of the
data: it paints the rest of the image grey and emits a warning, which Pillow discards. So a JPEG
cut short and given back its end-of-image marker (FFD9) decoded as a whole image. Without that
marker the decoder has to ask for the missing bytes, and Pillow raises "image file is
truncated" (`ImageFile.LOAD_TRUNCATED_IMAGES` stays off).
"""

from __future__ import annotations

import re

# A marker ends the entropy-coded data: 0xFF followed by anything but a stuffed zero, a restart
# marker (RST0–7, which sits inside the scan) or another 0xFF (fill before a marker).
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS = 0xDA
_EOI = 0xD9
# Markers without a length field between the start of image and the first scan.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# libjpeg reads ahead of the bits it decodes (up to 8 bytes past the last block of a whole
# scan), so a whole scan needs a few bytes after it; zeros decode as data, and 16 bytes cannot
# stand in for more than the end of one block.
READ_AHEAD_PADDING = b"\x00" * 16


def without_end_marker(data: bytes) -> bytes:
    """`data` up to where its first scan ends, padded for libjpeg's read-ahead, when that scan is
    closed by the end-of-image marker (a sequential JPEG); else `data` unchanged.

    Bytes after the marker (camera trailers) are dropped: no decoder reads them. A progressive
    JPEG's first scan ends with another marker, so it is left as it is."""
    end = _first_scan_end(data)
    if end is None or data[end + 1] != _EOI:
        return data
    return data[:end] + READ_AHEAD_PADDING


def _first_scan_end(data: bytes) -> int | None:
    """Where the marker that ends the first scan starts; None if the segments cannot be walked."""
    pos = 2  # after SOI
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        if marker == _SOS:
            hit = _SCAN_END.search(data, pos + 2 + length)
            return hit.start() if hit else None
        pos += 2 + length
    return None
