"""What `store_images=true` keeps of an upload: its decoded pixels, re-encoded as PNG, bounded.

Never the upload's own bytes: a valid image may carry anything after its end or in its metadata
(an audit stored 99 MB of trailing bytes in 1.5 s). Nor the decoded pixels at full size: as PNG a
40-Mpx photo can take more than the 10 MB upload did. The longer side is cut to STORED_MAX_SIDE,
far more than any model's preprocessing keeps of one character (28 or 64 px canvases), so a
stored character can still be enrolled again with another model.
Pure (Pillow + numpy).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

STORED_MAX_SIDE = 1024


def storable_png(image: np.ndarray) -> bytes:
    """A decoded upload (`app.service.images.decode_image`: uint8 grey, RGB or RGBA) → PNG bytes,
    its longer side at most STORED_MAX_SIDE (aspect kept; smaller images untouched)."""
    picture = Image.fromarray(image)
    picture.thumbnail((STORED_MAX_SIDE, STORED_MAX_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
