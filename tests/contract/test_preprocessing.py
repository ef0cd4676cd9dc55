import cv2
import numpy as np
import pytest
from sklearn.cluster import KMeans

from contract.preprocessing import NoInkError, PreprocessConfig, kmeans_2, preprocess, render_canvas, to_gray
from tests.conftest import draw_letter

CFG = PreprocessConfig()


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Best correlation over ±1 px shifts (centring by centre of mass rounds to whole pixels)."""
    a, b = a.reshape(28, 28), b.reshape(28, 28)
    best = -1.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            u = np.roll(a, (dy, dx), axis=(0, 1)).ravel()
            u, v = u - u.mean(), b.ravel() - b.mean()
            best = max(best, float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))))
    return best


def test_output_is_normalised_model_input(letter_image):
    x = preprocess(letter_image, CFG)
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    canvas = render_canvas(letter_image, CFG)
    np.testing.assert_allclose(x[0], (canvas - CFG.mean) / CFG.std, rtol=1e-6)
    assert canvas.min() >= 0 and canvas.max() <= 1


def test_same_input_same_output(letter_image):
    np.testing.assert_array_equal(preprocess(letter_image, CFG), preprocess(letter_image.copy(), CFG))


def test_polarity_does_not_matter(letter_image):
    np.testing.assert_allclose(preprocess(letter_image, CFG), preprocess(255 - letter_image, CFG), atol=1e-5)


def test_ink_is_high_and_framed_like_mnist(letter_image):
    canvas = render_canvas(letter_image, CFG)
    ys, xs = np.nonzero(canvas > 0.05)
    # The glyph fits the 20×20 box (plus blur) and its centre of mass is at the centre.
    assert ys.max() - ys.min() <= 23 and xs.max() - xs.min() <= 23
    cy = (canvas.sum(1) * np.arange(28)).sum() / canvas.sum()
    cx = (canvas.sum(0) * np.arange(28)).sum() / canvas.sum()
    assert abs(cy - 13.5) < 1.0 and abs(cx - 13.5) < 1.0
    assert canvas[0].max() < 0.05 and canvas[:, 0].max() < 0.05  # paper is 0


def test_off_centre_glyph_is_centred():
    # At the working size a shift is exact; larger images are resampled, so only nearly equal.
    small = {"size": (150, 150), "scale": 2.5, "thickness": 6}
    centred, corner = draw_letter("K", **small), draw_letter("K", origin=(5, 60), **small)
    np.testing.assert_allclose(preprocess(corner, CFG), preprocess(centred, CFG), atol=1e-5)
    centred, corner = draw_letter("K", size=(300, 300)), draw_letter("K", size=(300, 300), origin=(5, 120))
    assert similarity(preprocess(corner, CFG), preprocess(centred, CFG)) > 0.98


def test_rgba_with_transparent_background(letter_image):
    rgba = np.zeros((*letter_image.shape, 4), np.uint8)  # transparent black everywhere …
    rgba[..., 3] = np.where(letter_image < 128, 255, 0)  # … except the opaque black ink
    assert similarity(preprocess(rgba, CFG), preprocess(letter_image, CFG)) > 0.98
    white_ink = rgba.copy()
    white_ink[..., :3] = 255  # white ink on a transparent canvas works too
    assert similarity(preprocess(white_ink, CFG), preprocess(letter_image, CFG)) > 0.98


def test_colour_photo_is_converted(letter_image):
    rgb = np.stack([letter_image, letter_image, np.full_like(letter_image, 200)], axis=-1)
    assert similarity(preprocess(rgb, CFG), preprocess(letter_image, CFG)) > 0.98


@pytest.mark.parametrize(
    "image",
    [
        np.full((100, 100), 255, np.uint8),
        np.zeros((40, 60), np.uint8),
        np.tile(np.linspace(60, 230, 400, dtype=np.uint8), (300, 1)),  # only a lighting gradient
        np.random.default_rng(0).normal(200, 4, (200, 200)).clip(0, 255).astype(np.uint8),  # paper noise
    ],
    ids=["white", "black", "gradient", "noise"],
)
def test_blank_images_raise(image):
    with pytest.raises(NoInkError):
        preprocess(image, CFG)


def test_uneven_light():
    clean = draw_letter("R", size=(400, 400), thickness=14)
    ramp = np.linspace(0.35, 1.0, 400, dtype=np.float32)
    shadowed = (clean.astype(np.float32) * ramp[None, :] * ramp[:, None] ** 0.5).astype(np.uint8)
    assert similarity(preprocess(shadowed, CFG), preprocess(clean, CFG)) > 0.95


def test_lined_grey_paper():
    clean = draw_letter("E", size=(400, 400), thickness=14)
    lined = np.full((400, 400, 3), 205, np.uint8)  # grey paper
    for y in range(20, 400, 40):
        cv2.line(lined, (0, y), (399, y), (170, 185, 220), 2)  # light blue rules
    ink = clean < 128
    lined[ink] = (25, 25, 60)
    assert similarity(preprocess(lined, CFG), preprocess(clean, CFG)) > 0.9


def test_thin_pen_on_big_photo_keeps_its_strokes():
    photo = draw_letter("M", size=(3000, 4000), scale=40, thickness=8)  # 8 px pen, 12 MP
    canvas = render_canvas(photo, CFG)
    assert canvas.max() > 0.8  # strokes survive the downscale at full strength
    reference = render_canvas(draw_letter("M", size=(300, 400), scale=4, thickness=10), CFG)
    assert similarity(canvas, reference) > 0.85


def test_tiny_crop():
    tiny = cv2.resize(draw_letter("T", size=(200, 200)), (14, 14), interpolation=cv2.INTER_AREA)
    assert similarity(preprocess(tiny, CFG), preprocess(draw_letter("T"), CFG)) > 0.85


def test_specks_are_ignored(letter_image):
    specked = letter_image.copy()
    specked[5:7, 5:7] = 0  # a speck of dust in the corner would otherwise stretch the crop
    np.testing.assert_allclose(preprocess(specked, CFG), preprocess(letter_image, CFG), atol=1e-3)


def test_sixteen_bit_and_float_inputs(letter_image):
    wide = letter_image.astype(np.uint16) * 257
    np.testing.assert_array_equal(to_gray(wide), letter_image)
    np.testing.assert_allclose(preprocess(wide, CFG), preprocess(letter_image, CFG))


def test_histogram_kmeans_matches_kmeans_on_pixels():
    rng = np.random.default_rng(1)
    pixels = np.concatenate([rng.normal(40, 15, 300), rng.normal(190, 25, 2000)]).clip(0, 255).astype(int)
    lo, hi, n_lo, n_hi = kmeans_2(pixels, offset=0, max_iter=100)
    init = np.array([[pixels.min()], [pixels.max()]], dtype=float)
    reference = KMeans(n_clusters=2, init=init, n_init=1, tol=0, max_iter=300).fit(
        pixels[:, None].astype(float)
    )
    np.testing.assert_allclose(sorted(reference.cluster_centers_.ravel()), [lo, hi], atol=1e-9)
    assert (n_lo, n_hi) == tuple(np.bincount(reference.labels_))


def test_every_parameter_is_recorded():
    # The manifest embeds PreprocessConfig whole, so serving runs exactly what training ran.
    from contract.manifest import Manifest

    assert Manifest.model_fields["preprocessing"].annotation is PreprocessConfig


def test_exif_rotated_jpeg_is_read_upright():
    import io

    from PIL import Image

    from app.service.images import decode_image

    upright = draw_letter("L", size=(240, 180))

    def jpeg(array: np.ndarray, orientation: int | None) -> bytes:
        buffer, exif = io.BytesIO(), Image.Exif()
        if orientation:
            exif[0x0112] = orientation
        Image.fromarray(array).save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
        return buffer.getvalue()

    # Stored sideways (as a phone held in portrait writes it); EXIF orientation 6 = rotate 90° clockwise.
    sideways = jpeg(np.rot90(upright).copy(), orientation=6)
    decoded = decode_image(sideways, max_pixels=10**7, max_side=10**4)
    reference = decode_image(jpeg(upright, orientation=None), max_pixels=10**7, max_side=10**4)
    assert decoded.shape == upright.shape
    assert similarity(preprocess(decoded, CFG), preprocess(reference, CFG)) > 0.98
    assert similarity(preprocess(decoded, CFG), preprocess(np.rot90(upright).copy(), CFG)) < 0.9


def test_a_small_mark_in_a_large_photo_is_found_again_closer():
    # 150 px of ink in 1500 px of paper is 15 px at the working size: too few, so it is looked at
    # again on a crop around it, and comes out as it does on its own.
    alone = draw_letter("K", size=(150, 150), scale=2.5, thickness=6)
    photo = np.full((1500, 1500), 235, np.uint8)
    photo[900:1050, 300:450] = alone
    assert similarity(preprocess(photo, CFG), preprocess(alone, CFG)) > 0.97


def test_work_side_zero_finds_the_ink_in_one_pass_at_max_side():
    # How models trained before the two-pass search are served (their manifests say work_side 0).
    image = draw_letter("K", size=(300, 300))
    one_pass = PreprocessConfig(work_side=0)
    assert similarity(preprocess(image, one_pass), preprocess(image, CFG)) > 0.97
    assert not np.allclose(preprocess(image, one_pass), preprocess(image, CFG))


def test_median_on_a_smaller_copy_keeps_what_the_full_median_finds():
    # The letters model's fast path: the polarity median on a half-size copy of the work image.
    # On an unevenly lit photo it must find the same ink as the median at full size.
    clean = draw_letter("R", size=(400, 400), thickness=14)
    ramp = np.linspace(0.35, 1.0, 400, dtype=np.float32)
    shadowed = (clean.astype(np.float32) * ramp[None, :] * ramp[:, None] ** 0.5).astype(np.uint8)
    assert PreprocessConfig().median_max_window == 0  # older manifests: the full-size median
    fast = PreprocessConfig(median_max_window=32)
    for image in (clean, shadowed, 255 - clean):
        assert similarity(preprocess(image, fast), preprocess(image, CFG)) > 0.98
    with pytest.raises(NoInkError):
        preprocess(np.full((300, 300), 128, np.uint8), fast)


def faint_pencil(letter: str, side: int, darkness: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A small crop of a thin pencil letter `darkness` grey levels below grey paper, with sensor
    noise and a slight defocus; and the same letter drawn clean and large."""
    clean = draw_letter(letter, size=(4 * side, 4 * side), scale=side / 10, thickness=6)
    coverage = cv2.resize((clean < 128).astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(seed).normal(0, 6, coverage.shape)
    photo = cv2.GaussianBlur(160 - darkness * coverage + noise, (0, 0), 0.6)
    return np.clip(photo + 0.5, 0, 255).astype(np.uint8), clean


def test_faint_pencil_on_grey_noisy_paper_is_ink():
    # 45 grey levels on paper with σ 6 of noise: plainly visible, though under a fixed 30-level
    # contrast once the thin stroke is blurred over its neighbours.
    photo, clean = faint_pencil("S", side=32, darkness=45, seed=1)
    assert similarity(preprocess(photo, CFG), preprocess(clean, CFG)) > 0.95


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(3).normal(165, 6, (40, 40)).clip(0, 255).astype(np.uint8),  # noisy grey paper
        np.random.default_rng(4).normal(128, 25, (64, 64)).clip(0, 255).astype(np.uint8),  # sensor noise
        np.random.default_rng(5).normal(128, 40, (100, 100)).clip(0, 255).astype(np.uint8),
        np.where(np.random.default_rng(6).random((80, 80)) < 0.02, 30, 220).astype(np.uint8),  # salt
    ],
    ids=["noisy_grey_paper", "noise_25", "noise_40", "salt"],
)
def test_noise_is_no_ink(image):
    with pytest.raises(NoInkError):
        preprocess(image, CFG)


@pytest.mark.parametrize("rise", [3, 9], ids=["level", "tilted_2.6deg"])
@pytest.mark.parametrize("grid", [False, True], ids=["ruled", "squared"])
def test_dark_rules_are_removed(grid, rise):
    clean = draw_letter("E", size=(200, 200), scale=4, thickness=9)
    ruled = clean.copy()
    for y in range(13, 200, 28):  # dark rules, tilted as photographed (up to rule_max_slope)
        cv2.line(ruled, (0, y), (199, y + rise), 70, 2, cv2.LINE_AA)
    if grid:
        for x in range(9, 200, 28):
            cv2.line(ruled, (x, 0), (x - rise, 199), 70, 2, cv2.LINE_AA)
    ruled = np.minimum(ruled, clean)
    assert similarity(preprocess(ruled, CFG), preprocess(clean, CFG)) > 0.95


def tight_seven() -> np.ndarray:
    """A 7 cut tight: its top bar, rising a little, spans the crop from edge to edge."""
    seven = np.full((60, 44), 235, np.uint8)
    cv2.line(seven, (1, 9), (42, 3), 40, 4, cv2.LINE_AA)
    cv2.line(seven, (41, 4), (14, 57), 40, 4, cv2.LINE_AA)
    return seven


def tight_leaning_one() -> np.ndarray:
    """A 1 leaning right, cut tight: its stroke runs from the top edge to the bottom one."""
    one = np.full((64, 30), 235, np.uint8)
    cv2.line(one, (6, 1), (22, 62), 40, 5, cv2.LINE_AA)
    cv2.line(one, (6, 1), (1, 12), 40, 4, cv2.LINE_AA)
    return one


@pytest.mark.parametrize("glyph", [tight_seven, tight_leaning_one], ids=["seven_bar", "leaning_one"])
def test_a_tight_glyphs_strokes_are_not_rules(glyph):
    # No page rule crosses these crops, so the rule search must leave them as they are: a stroke
    # spanning a tight crop from edge to edge is tilted or curved, a page's rule is level.
    image = glyph()
    no_rule_search = PreprocessConfig(rule_run=0)
    np.testing.assert_array_equal(preprocess(image, CFG), preprocess(image, no_rule_search))


def test_bold_marker_filling_a_tight_crop_keeps_its_polarity():
    marker = draw_letter("O", size=(140, 140), scale=3.2, thickness=30)
    ys, xs = np.nonzero(marker < 128)
    tight = marker[ys.min() - 2 : ys.max() + 3, xs.min() - 2 : xs.max() + 3]
    assert (tight < 128).mean() > 0.5  # the ink is the majority of the crop
    # The same ink, light on a dark page with room around it: its polarity is beyond doubt.
    known = np.pad(np.where(tight < 128, 255, 0).astype(np.uint8), 60)
    assert similarity(preprocess(tight, CFG), preprocess(known, CFG)) > 0.9


def test_older_manifests_keep_the_fixed_test():
    # Every new knob off reproduces the earlier preprocessing exactly.
    old = PreprocessConfig(
        min_faint_contrast=30, noise_snr=0, border_paper_share=0, rule_run=0, min_elongation=0
    )
    photo, _ = faint_pencil("S", side=32, darkness=45, seed=1)
    with pytest.raises(NoInkError):
        preprocess(photo, old)


def test_committed_manifests_load_with_the_new_knobs_defaulted():
    # Written before the knobs existed: they take the defaults, but the grapheme model keeps its
    # headline (the Bengali matra crosses a tight crop from edge to edge, like a rule).
    from pathlib import Path

    from contract.manifest import Manifest

    models = Path(__file__).resolve().parents[2] / "models"
    for name in ("letters", "digits"):
        assert Manifest.load(models / name).preprocessing.noise_snr == CFG.noise_snr
    assert Manifest.load(models / "graphemes").preprocessing.rule_run == 0
