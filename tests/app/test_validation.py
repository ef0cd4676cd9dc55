from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.errors import EmptyUpload, ImageTooLarge, PayloadTooLarge, UnsupportedImage
from app.validation import decode_image, read_capped, sniff_format

CAPS = {"max_pixels": 40_000_000, "max_side": 20_000}


def decode(data: bytes, **caps: int) -> np.ndarray:
    return decode_image(data, **{**CAPS, **caps})


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("PNG", {}), ("JPEG", {}), ("GIF", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})],
)
def test_every_supported_format_is_sniffed_and_decoded(images, letter_rgb, fmt, params):
    data = images.encode(letter_rgb, fmt, **params)
    assert sniff_format(data) == fmt
    array = decode(data)
    assert array.dtype == np.uint8
    assert array.shape[:2] == letter_rgb.shape[:2]


def test_grey_png_stays_two_dimensional(images, letter_rgb):
    grey = np.asarray(Image.fromarray(letter_rgb).convert("L"))
    array = decode(images.encode(grey))
    assert array.shape == grey.shape
    np.testing.assert_array_equal(array, grey)


def test_sixteen_bit_png_becomes_eight_bit(images):
    array = decode(images.gray16_png())
    assert array.dtype == np.uint8 and array.ndim == 2
    # Values were v * 257, so the top byte is v again: white paper stays 255, ink stays dark.
    assert array.max() == 255 and array.min() < 64


def test_palette_png_becomes_rgb(images):
    array = decode(images.palette_png())
    assert array.shape[2] == 3


def test_transparent_png_keeps_its_alpha(images):
    array = decode(images.transparent_rgba_png())
    assert array.shape[2] == 4
    assert array[..., 3].min() == 0 and array[..., 3].max() == 255


def test_cmyk_jpeg_becomes_rgb(images):
    array = decode(images.cmyk_jpeg())
    assert array.ndim == 3 and array.shape[2] == 3
    assert array.min() < 100 and array.max() > 200  # ink and paper survive the colour conversion


def test_animated_gif_gives_its_first_frame(images):
    array = decode(images.animated_gif())
    assert array.min() < 100  # frame 0 has the letter; frame 1 is blank


def test_exif_orientation_is_applied(images):
    data, upright = images.exif_rotated_jpeg()
    assert Image.open(io.BytesIO(data)).size == (200, 120)  # stored wide
    assert decode(data).shape[:2] == upright


def test_not_an_image_is_unsupported():
    with pytest.raises(UnsupportedImage, match="not a supported image"):
        decode(b"hello, I am text pretending to be a PNG")


def test_type_comes_from_magic_bytes_not_the_name(images, letter_rgb):
    # A JPEG is a JPEG whatever the client calls it; sniffing ignores names and content types.
    assert sniff_format(images.encode(letter_rgb, "JPEG")) == "JPEG"


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_png_is_unsupported(letter_png, keep):
    with pytest.raises(UnsupportedImage, match="PNG"):
        decode(letter_png[: int(len(letter_png) * keep)])


def test_truncated_jpeg_is_unsupported(letter_jpeg):
    with pytest.raises(UnsupportedImage, match="JPEG"):
        decode(letter_jpeg[: len(letter_jpeg) // 2])


def test_header_only_png_is_unsupported(letter_png):
    with pytest.raises(UnsupportedImage):
        decode(letter_png[:12])


def test_empty_upload():
    with pytest.raises(EmptyUpload):
        decode(b"")


@pytest.mark.parametrize("side", [8_000, 20_000])
def test_pixel_cap_is_checked_before_decoding(images, side):
    # side x side claimed by a ~100-byte file whose pixel data is truncated: only a header check
    # can answer "too large" rather than "corrupt". (20000² also trips Pillow's own bomb guard.)
    data = images.huge_header_png(side, side)
    assert len(data) < 200
    with pytest.raises(ImageTooLarge):
        decode(data)


def test_side_cap(images):
    with pytest.raises(ImageTooLarge, match="side"):
        decode(images.huge_header_png(30_000, 1))


def test_small_pixel_cap(letter_png):
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode(letter_png, max_pixels=100 * 100)


def test_read_capped_stops_at_the_cap():
    class Counting(io.BytesIO):
        calls = 0

        def read(self, size: int | None = -1) -> bytes:
            Counting.calls += 1
            return super().read(size)

    stream = Counting(b"x" * 1_000_000)
    with pytest.raises(PayloadTooLarge):
        read_capped(stream, max_bytes=100_000, chunk_size=10_000)
    assert Counting.calls == 11  # stopped right after passing the cap, not at the end of the stream
    assert read_capped(io.BytesIO(b"abc"), max_bytes=3) == b"abc"
