from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from app.errors import EmptyUpload, ImageTooLarge, PayloadTooLarge, UnsupportedImage
from app.service.images import decode_image, read_capped, sniff_format, wide_grey_to_uint8

CAPS = {"max_pixels": 40_000_000, "max_side": 20_000}
DATA = Path(__file__).parents[2] / "data"


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
    stream = io.BytesIO(b"x" * 1_000_000)
    with pytest.raises(PayloadTooLarge):
        read_capped(stream, max_bytes=100_000)
    assert stream.tell() == 100_001  # read one byte past the cap, not to the end of the stream
    assert read_capped(io.BytesIO(b"abc"), max_bytes=3) == b"abc"


# --- every input kind the hardening issue lists has a defined outcome --------------------------


def test_progressive_jpeg_is_decoded(images):
    data = images.progressive_jpeg()
    assert Image.open(io.BytesIO(data)).info.get("progressive") == 1
    array = decode(data)
    assert array.shape == (160, 160, 3) and array.min() < 100


@pytest.mark.parametrize("letter_first", [True, False])
def test_multipage_tiff_gives_its_first_page(images, letter_first):
    data = images.multipage_tiff(letter_first=letter_first)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    array = decode(data)
    assert (array.min() < 100) == letter_first  # the letter shows only when it is on page 0


@pytest.mark.parametrize("kind", ["animated_png", "animated_webp"])
def test_other_animations_give_their_first_frame(images, kind):
    data = getattr(images, kind)()
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert decode(data).min() < 100  # frame 0 has the letter; frame 1 is blank


@pytest.mark.parametrize("kind", ["palette_alpha_png", "grey_alpha_png"])
def test_palette_and_grey_with_transparency_keep_their_alpha(images, kind):
    array = decode(getattr(images, kind)())
    assert array.shape == (160, 160, 4)
    assert array[..., 3].min() == 0 and array[..., 3].max() == 255


def test_sixteen_bit_colour_png_becomes_eight_bit(images):
    array = decode(images.rgb48_png())
    assert array.dtype == np.uint8 and array.shape == (160, 160, 3)
    assert array.max() == 255 and array.min() < 64


def test_sixteen_bit_grey_becomes_eight_bit_without_wide_copies():
    # A 40 Mpx 16-bit PNG of 100 kB took a worker from 130 to 900 MB: the conversion made int64
    # copies of the whole image. Now it goes block by block into the uint8 result.
    wide = np.full((2000, 2000), 60_000, np.uint16)
    wide[900:1100, 500:1500] = 300
    data = cv2.imencode(".png", wide)[1].tobytes()
    tracemalloc.start()
    try:
        array = decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert array.dtype == np.uint8 and array.shape == wide.shape
    assert array[0, 0] == 60_000 >> 8 and array[1000, 1000] == 1
    # np.asarray of the 16-bit image (its bytes, then the array: 4 per pixel) + the result (1);
    # the int64 copies took 8 + 8 + 8 more.
    assert peak < 6 * wide.size


def test_wide_grey_keeps_the_top_eight_bits_of_the_sixteen_bit_range():
    signed = np.array([[-5, 0, 255, 256, 65535, 70000]] * 3, np.int32)
    np.testing.assert_array_equal(wide_grey_to_uint8(signed, rows_per_block=2), [[0, 0, 0, 1, 255, 255]] * 3)
    big_endian = np.arange(65536, dtype=">u2").reshape(256, 256)
    np.testing.assert_array_equal(wide_grey_to_uint8(big_endian, 7), big_endian >> 8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation(images, orientation):
    data, _ = images.exif_rotated_jpeg(orientation)
    stored = (120, 200)  # height, width as saved
    # Orientations 5-8 swap the axes; 1-4 keep them.
    expected = stored[::-1] if orientation >= 5 else stored
    assert decode(data).shape[:2] == expected


@pytest.mark.parametrize(("width", "height"), [(100_000, 1), (1, 100_000)])
def test_one_by_a_hundred_thousand_is_refused_by_its_side(images, width, height):
    data = images.strip_png(width, height)
    assert len(data) < 1_000  # a tiny, valid file
    with pytest.raises(ImageTooLarge, match="side"):
        decode(data)


def test_a_long_strip_within_the_side_cap_decodes(images):
    assert decode(images.strip_png(20_000, 1)).shape == (1, 20_000)


def test_a_real_png_bomb_is_refused_from_its_header(images, monkeypatch):
    data = images.png_bomb(8_000)  # 64 MB of pixels in ~60 kB
    assert len(data) < 100_000
    # Refused before a single pixel is decoded: loading would fail this test.
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a bomb"))
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode(data)


def _claim_size(data: bytes, fmt: str, width: int, height: int) -> bytes:
    """The same file with its header claiming width x height (the pixel data left as it was)."""
    buf = bytearray(data)
    if fmt == "JPEG":
        sof = buf.index(b"\xff\xc0")  # baseline start-of-frame: length(2) precision(1) height(2) width(2)
        struct.pack_into(">HH", buf, sof + 5, height, width)
    elif fmt == "GIF":
        struct.pack_into("<HH", buf, 6, width, height)  # the logical screen
    elif fmt == "BMP":
        struct.pack_into("<ii", buf, 18, width, height)
    elif fmt == "TIFF":
        (ifd,) = struct.unpack_from("<I", buf, 4)
        (count,) = struct.unpack_from("<H", buf, ifd)
        for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
            tag, kind = struct.unpack_from("<HH", buf, entry)
            if tag in (256, 257):  # ImageWidth, ImageLength
                struct.pack_into("<H" if kind == 3 else "<I", buf, entry + 8, width if tag == 256 else height)
    elif fmt == "WEBP":
        vp8l = buf.index(b"VP8L") + 8  # chunk data: 0x2f, then 14 bits width-1, 14 bits height-1
        (old,) = struct.unpack_from("<I", buf, vp8l + 1)
        bits = (width - 1) | (height - 1) << 14 | (old & ~((1 << 28) - 1))
        struct.pack_into("<I", buf, vp8l + 1, bits)
    return bytes(buf)


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("JPEG", {}), ("GIF", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})],
)
def test_size_caps_come_from_the_header_of_every_format(images, fmt, params, monkeypatch):
    # 9000² = 81 M pixels: over the 40 M cap, under Pillow's own bomb guard, so our check answers.
    small = images.encode(images.draw_letter("T", size=(32, 32)), fmt, **params)
    data = _claim_size(small, fmt, 9_000, 9_000)
    assert Image.open(io.BytesIO(data)).size == (9_000, 9_000)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded past the cap"))
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"%PDF-1.7\n",
        b"<html><body>hi</body></html>",
        b"\x00" * 64,
        b"\x89PNG\r\n\x1a\n",  # a signature and nothing else
        b"\xff\xd8\xff",  # a JPEG marker and nothing else
        b"RIFF\x00\x00\x00\x00WAVEfmt ",  # RIFF, but audio
        b"BM",
    ],
    ids=["svg", "pdf", "html", "zeros", "png-signature-only", "jpeg-marker-only", "riff-wave", "bm-only"],
)
def test_other_files_and_bare_signatures_are_unsupported(data):
    with pytest.raises(UnsupportedImage):
        decode(data)


def photo_jpeg(size: tuple[int, int], fmt: str = "JPEG") -> bytes:
    """A colour photo-like image: a gradient with a dark bar, so every scale has structure."""
    w, h = size
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    rgb = 180 + 60 * x * np.array([1.0, 0.8, 0.6]) - 40 * y
    rgb[h // 3 : h // 2, w // 4 : 3 * w // 4] = (30, 40, 90)
    buffer = io.BytesIO()
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(buffer, fmt, quality=90)
    return buffer.getvalue()


def test_big_jpeg_decodes_reduced_and_grey_but_not_below_the_target():
    data = photo_jpeg((2400, 1600))
    assert decode(data).shape == (1600, 2400, 3)
    reduced = decode_image(data, **CAPS, reduce_to=1024)
    assert reduced.shape == (800, 1200)  # 1/2: 1/4 would be 600 < 1024 on the longer side
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("L").resize((1200, 800), Image.BOX))
    assert np.abs(reduced.astype(int) - reference).mean() < 2.0  # the same picture, in grey


def test_reduced_decoding_never_upscales_and_leaves_other_formats_alone():
    assert decode_image(photo_jpeg((640, 480)), **CAPS, reduce_to=1024).shape == (480, 640)
    assert decode_image(photo_jpeg((2400, 1600), "PNG"), **CAPS, reduce_to=1024).shape == (1600, 2400, 3)


def test_size_caps_apply_to_the_stored_size_not_the_reduced_one():
    with pytest.raises(ImageTooLarge):
        decode_image(photo_jpeg((2400, 1600)), max_pixels=1_000_000, max_side=20_000, reduce_to=512)


# Regression: libjpeg takes a marker met inside the entropy-coded data for the end of the data
# and paints the rest of the image grey, with a warning Pillow drops; so a JPEG cut short and
# given back its end-of-image marker used to decode as a whole image and be classified.
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
@pytest.mark.parametrize("trailer", [b"", b"appended bytes"], ids=["eoi", "eoi+trailer"])
def test_jpeg_cut_short_then_closed_with_eoi_is_unsupported(keep, trailer):
    data = (DATA / "A_photo.jpg").read_bytes()
    cut = data[: int(len(data) * keep)] + b"\xff\xd9" + trailer
    with pytest.raises(UnsupportedImage, match="JPEG"):
        decode(cut)
    with pytest.raises(UnsupportedImage, match="JPEG"):
        decode_image(cut, **CAPS, reduce_to=64)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.jpg")), ids=lambda p: p.name)
def test_whole_jpegs_decode_as_pillow_decodes_them(path):
    data = path.read_bytes()
    expected = np.asarray(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(decode(data), expected)
    # Bytes after the end-of-image marker (camera trailers) are not part of the picture.
    np.testing.assert_array_equal(decode(data + b"trailer \xff\xd8 bytes"), expected)


def test_progressive_cmyk_and_restart_marker_jpegs_still_decode(images, letter_rgb):
    restarts = io.BytesIO()
    Image.fromarray(letter_rgb).save(restarts, "JPEG", restart_marker_blocks=1)
    for data in (images.progressive_jpeg(), images.cmyk_jpeg(), restarts.getvalue()):
        expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        assert decode(data).shape[:2] == expected.shape[:2]
