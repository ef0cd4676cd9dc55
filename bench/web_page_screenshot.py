"""Re-take the README's screenshot of the web page (docs/images/web-page.png): the real service on
the committed models, the system Chromium, a photo uploaded, answers and preview visible.

    .venv/bin/python -m bench.web_page_screenshot [--width 1000] [--out docs/images/web-page.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from bench.browser import chromium_path
from bench.server import REPO, running_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1000, help="viewport width in CSS pixels")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "web-page.png")
    parser.add_argument("--image", type=Path, default=REPO / "tests" / "data" / "R_photo.jpg")
    args = parser.parse_args()
    browser_path = chromium_path()
    if browser_path is None:
        raise SystemExit("no Chromium found: apt-get install chromium, or set CHROMIUM_PATH")
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server(REPO / "models", Path(tmp) / "server.log") as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(browser_path))
        page = browser.new_page(viewport={"width": args.width, "height": 700}, device_scale_factor=1)
        page.goto(server.url)
        expect(page.locator("#task option[value=letter]")).to_be_attached()
        page.set_input_files("#file", args.image)
        expect(page.locator("#result img.preview")).to_be_visible()
        page.evaluate("document.fonts.ready")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
