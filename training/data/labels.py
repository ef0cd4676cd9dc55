"""Label sets: the one place class lists and counts are defined (the manifest copies them)."""

from __future__ import annotations

import string

LETTERS: tuple[str, ...] = tuple(string.ascii_uppercase)
DIGITS: tuple[str, ...] = tuple(string.digits)

# FEMNIST / NIST SD19 class order: digits, upper case, lower case.
FEMNIST_CLASSES: tuple[str, ...] = DIGITS + LETTERS + tuple(string.ascii_lowercase)


def merged_letter(char: str) -> int | None:
    """EMNIST "letters" convention: upper and lower case merged into 26 classes (a/A → 0)."""
    upper = char.upper()
    return LETTERS.index(upper) if upper in LETTERS else None
