"""Shared fixtures: images drawn in code, nothing downloaded; a throwaway PostgreSQL server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from tests.postgres import fresh_database, server_binaries, temporary_server

_databases = itertools.count()


def draw_letter(
    text: str = "A",
    size: tuple[int, int] = (200, 200),
    origin: tuple[int, int] | None = None,
    scale: float = 5.0,
    thickness: int = 12,
    ink: int = 20,
    paper: int = 235,
) -> np.ndarray:
    """A grey image with `text` drawn in a Hershey font: dark ink on light paper by default."""
    h, w = size
    image = np.full((h, w), paper, np.uint8)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = origin if origin is not None else ((w - tw) // 2, (h + th) // 2)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, int(ink), thickness, cv2.LINE_AA)
    return image


@pytest.fixture
def letter_image() -> np.ndarray:
    return draw_letter()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for the whole session (started only if a test asks for it)."""
    bindir = server_binaries()
    if bindir is None:
        pytest.skip("no PostgreSQL server (initdb, pg_ctl): `make test` installs Debian's postgresql")
    with temporary_server(bindir) as url:
        yield url


@pytest.fixture
def postgres_db(postgres_server: str) -> str:
    """The URL of a new, empty database on that server."""
    return fresh_database(postgres_server, f"test_{next(_databases)}")
