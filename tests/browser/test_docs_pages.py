"""The API documentation pages render in a real browser from the service's own files (no CDN)."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_swagger_ui_renders_the_api_offline(page: Page):
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_be_visible(timeout=10_000)
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert not [text for text in refused if "Content Security Policy" in text], refused


def test_redoc_renders_the_api_offline(page: Page):
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if message.type == "error" else None)
    page.goto("/redoc")
    expect(page.locator("h1").first).to_be_visible(timeout=10_000)
    # ReDoc's bundle links its "powered by" logo from its CDN; the policy blocks that one image,
    # which the page does not need. Anything else blocked would be a broken page.
    blocked = [text for text in refused if "Content Security Policy" in text and "cdn.redoc.ly" not in text]
    assert not blocked, refused
