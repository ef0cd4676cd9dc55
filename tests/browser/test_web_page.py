"""The web page in a real browser (headless Chromium via Playwright) against the real service:
draw a stroke, upload photos, read a number, and the error messages a user sees."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser.support import skip_reason

if reason := skip_reason():
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import ConsoleMessage, FilePayload, Page, Request, expect

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def web_page(page: Page, base_url: str) -> Iterator[Page]:
    """The page loaded with its task list; fails the test on any console error (a CSP violation
    included) or on a request that leaves the service (the page must work offline)."""
    errors: list[str] = []
    elsewhere: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The browser itself logs each 4xx answer; the error tests provoke those on purpose.
        if message.type == "error" and "status of 4" not in message.text:
            errors.append(message.text)

    def on_request(request: Request) -> None:
        if not request.url.startswith((base_url, "data:", "blob:")):
            elsewhere.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", on_request)
    page.goto("/")
    expect(page.locator("#task option[value=letter]")).to_be_attached()
    yield page
    assert not errors, errors
    assert not elsewhere, elsewhere


def draw(page: Page, strokes: list[list[tuple[float, float]]]) -> None:
    """Strokes in [0, 1] canvas coordinates, drawn with the mouse (pointer events)."""
    box = page.locator("#pad").bounding_box()
    assert box is not None
    for stroke in strokes:
        (x0, y0), *rest = stroke
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=15)
        page.mouse.up()


def top_answer(page: Page) -> str:
    expect(page.locator("#result .bars li").first).to_be_visible()
    return page.locator("#result .top .glyph").inner_text()


def test_drawing_a_letter_shows_bars_and_what_the_model_saw(web_page: Page):
    draw(web_page, [[(0.2, 0.2), (0.8, 0.2)], [(0.5, 0.2), (0.5, 0.85)]])  # a "T"
    web_page.get_by_role("button", name="Recognise").click()
    assert top_answer(web_page) == "T"
    expect(web_page.locator("#result .bars").first.locator("li")).to_have_count(5)
    preview = web_page.locator("#result img.preview")
    expect(preview).to_be_visible()
    assert preview.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [28, 28]
    expect(web_page.get_by_role("alert")).to_be_hidden()


def test_uploading_a_photo(web_page: Page):
    web_page.set_input_files("#file", DATA / "R_photo.jpg")
    assert top_answer(web_page) == "R"
    expect(web_page.locator("#result img.sent")).to_be_visible()
    expect(web_page.locator("#result img.preview")).to_be_visible()


def test_a_bengali_grapheme_with_its_parts(web_page: Page):
    web_page.get_by_label("What is it?").select_option("grapheme")
    web_page.set_input_files("#file", DATA / "bengali" / "render_03.png")
    assert top_answer(web_page) == "ঘি"  # samples.tsv: root ঘ + vowel sign ি
    parts = web_page.locator("#result .part")
    expect(parts).to_have_count(3)
    expect(parts.nth(0).locator(".label").first).to_have_text("ঘ")
    expect(parts.nth(1).locator(".label").first).to_have_text("\u25ccি")
    expect(parts.nth(2).locator(".label").first).to_have_text("none")
    assert web_page.locator("#result img.preview").evaluate("img => img.naturalWidth") == 64


def test_a_blank_drawing_says_no_ink(web_page: Page):
    web_page.get_by_role("button", name="Clear").click()
    web_page.get_by_role("button", name="Recognise").click()
    expect(web_page.get_by_role("alert")).to_contain_text("No ink found")
    expect(web_page.locator("#result .bars")).to_have_count(0)


def test_a_file_that_is_not_an_image(web_page: Page):
    web_page.set_input_files("#file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a pic"})
    expect(web_page.get_by_role("alert")).to_contain_text("not an image the service can read")


def png(ink: np.ndarray, scale: int = 4) -> FilePayload:
    """White-on-black ink (as the scans are stored) → dark on white paper, `scale`× up, as an upload."""
    paper = Image.fromarray(255 - np.pad(ink, 12).astype(np.uint8))
    buffer = io.BytesIO()
    paper.resize((paper.width * scale, paper.height * scale), Image.Resampling.BICUBIC).save(buffer, "PNG")
    return {"name": "number.png", "mimeType": "image/png", "buffer": buffer.getvalue()}


def number(digits: str) -> FilePayload:
    """Held-out MNIST scans side by side, well apart."""
    scans = [np.asarray(Image.open(DATA / "digits" / f"{d}_scan.png").convert("L")) for d in digits]
    return png(np.concatenate([np.pad(scan, ((0, 0), (10, 10))) for scan in scans], axis=1))


def read_mode(page: Page, task: str) -> None:
    page.get_by_text("Read text", exact=True).click()
    page.get_by_label("What is it?").select_option(task)


def test_reading_a_photographed_number(web_page: Page):
    read_mode(web_page, "digit")
    web_page.set_input_files("#file", number("170"))
    expect(web_page.locator("#result .read-text")).to_have_text("170")
    # One box per character over the image, inside it.
    boxes = web_page.locator("#result .read-view .box")
    expect(boxes).to_have_count(3)
    view = web_page.locator("#result .read-view img").bounding_box()
    assert view is not None
    for i in range(3):
        box = boxes.nth(i).bounding_box()
        assert box is not None
        assert view["x"] <= box["x"] and box["x"] + box["width"] <= view["x"] + view["width"]
        assert view["y"] <= box["y"] and box["y"] + box["height"] <= view["y"] + view["height"]
    chars = web_page.locator("#result .chars li")
    expect(chars).to_have_count(3)
    expect(chars.first).to_contain_text("1")
    expect(web_page.locator("#result .rejected")).to_have_count(0)
    expect(web_page.get_by_role("alert")).to_be_hidden()


def test_reading_drawn_digits_on_the_wide_pad(web_page: Page):
    read_mode(web_page, "digit")
    assert web_page.locator("#pad").evaluate("pad => [pad.width, pad.height]") == [700, 280]
    one = [[(0.2, 0.2), (0.2, 0.8)]]
    seven = [[(0.4, 0.2), (0.55, 0.2), (0.45, 0.8)]]
    zero = [[(0.8, 0.2), (0.72, 0.35), (0.72, 0.65), (0.8, 0.8), (0.88, 0.65), (0.88, 0.35), (0.8, 0.2)]]
    draw(web_page, one + seven + zero)
    web_page.get_by_role("button", name="Recognise").click()
    expect(web_page.locator("#result .read-view .box")).to_have_count(3)
    expect(web_page.locator("#result .read-text")).to_have_text("170")


def test_the_mode_switch_works_from_the_keyboard(web_page: Page):
    web_page.locator("#mode-char").focus()
    web_page.keyboard.press("ArrowRight")
    expect(web_page.locator("#mode-text")).to_be_checked()
    expect(web_page.locator("#task option[value=letter]")).to_have_text("Letters (A–Z)")
    web_page.keyboard.press("ArrowLeft")
    expect(web_page.locator("#mode-char")).to_be_checked()
    assert web_page.locator("#pad").evaluate("pad => pad.width") == 280


def test_a_texture_is_not_text(web_page: Page):
    read_mode(web_page, "letter")
    grid = np.zeros((125, 175), np.uint8)
    for y in range(2, 120, 10):
        for x in range(2, 170, 8):
            grid[y : y + 7, x : x + 2] = 255  # 252 separate character-sized marks
    web_page.set_input_files("#file", png(grid))
    expect(web_page.get_by_role("alert")).to_contain_text("Too many separate marks")
