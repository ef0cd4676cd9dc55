"""Whether the browser tests can run here: Playwright for Python and a Chromium on disk
(bench.browser finds it)."""

from __future__ import annotations

import importlib.util
import os

from bench.browser import CANDIDATES, chromium_path


def skip_reason() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "browser tests need Playwright for Python: .venv/bin/pip install -e '.[dev]'"
    if chromium_path() is None:
        where = os.environ.get("CHROMIUM_PATH") or " or ".join(CANDIDATES)
        return f"browser tests need Chromium at {where}: apt-get install chromium, or set CHROMIUM_PATH"
    return None
