"""The model's input shown as an image: `?preview=true` answers with what the model actually saw.

Pure (numpy + OpenCV): the normalised input is mapped back to the [0, 1] canvas with the model's
own mean/std, so the picture is exactly the preprocessing's output, not a re-rendering of the upload.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np

from app.schemas.predict import Preview
from contract.preprocessing import PreprocessConfig


def input_to_canvas(x: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Model input (1×S×S or S×S, `(canvas - mean) / std`) → the S×S canvas in [0, 1], ink = 1."""
    canvas = np.asarray(x, dtype=np.float64) * cfg.std + cfg.mean
    return np.clip(canvas.reshape(canvas.shape[-2:]), 0.0, 1.0)


def encode_png(canvas: np.ndarray) -> bytes:
    """[0, 1] canvas → 8-bit greyscale PNG, as the model sees it: white ink on black."""
    pixels = np.round(np.clip(canvas, 0.0, 1.0) * 255.0).astype(np.uint8)
    ok, png = cv2.imencode(".png", pixels)
    if not ok:  # cv2 reports failure by a flag; a uint8 2-D array always encodes
        raise ValueError(f"could not encode a {pixels.shape} canvas as PNG")
    return png.tobytes()


def preview_of(x: np.ndarray, cfg: PreprocessConfig) -> Preview:
    canvas = input_to_canvas(x, cfg)
    height, width = canvas.shape
    png = base64.b64encode(encode_png(canvas)).decode("ascii")
    return Preview(png_base64=png, width=width, height=height)
