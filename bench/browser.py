"""Where the system's Chromium is: Playwright's own browser download needs the internet, so the
browser tests and the screenshot tool drive Debian's `chromium` (scripts/install-system-deps.sh) or
whatever CHROMIUM_PATH names."""

from __future__ import annotations

import os
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/google-chrome")


def chromium_path() -> Path | None:
    named = os.environ.get("CHROMIUM_PATH")
    for candidate in [named] if named else CANDIDATES:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None
