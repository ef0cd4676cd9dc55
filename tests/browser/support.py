"""Whether the browser tests can run here: Playwright for Python and a Chromium on disk.

Playwright's own browser download needs the internet, so the tests drive the system's Chromium
(Debian `chromium`, installed by scripts/install-system-deps.sh) or whatever CHROMIUM_PATH names.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/google-chrome")


def chromium_path() -> Path | None:
    named = os.environ.get("CHROMIUM_PATH")
    for candidate in [named] if named else CANDIDATES:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def skip_reason() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "browser tests need Playwright for Python: .venv/bin/pip install -e '.[dev]'"
    if chromium_path() is None:
        where = os.environ.get("CHROMIUM_PATH") or " or ".join(CANDIDATES)
        return f"browser tests need Chromium at {where}: apt-get install chromium, or set CHROMIUM_PATH"
    return None
