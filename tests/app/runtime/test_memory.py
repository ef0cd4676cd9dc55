"""glibc's mmap threshold, fixed per worker so large freed buffers leave the process."""

from __future__ import annotations

import asyncio
import ctypes.util
import platform

import pytest

from app.runtime import memory
from app.runtime.memory import fix_mmap_threshold, resident_bytes


def test_zero_leaves_the_default():
    assert fix_mmap_threshold(0) is False


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or not ctypes.util.find_library("c"),
    reason="mallopt is glibc's",
)
def test_glibc_takes_the_threshold():
    assert fix_mmap_threshold(4 * 1024 * 1024) is True


def test_resident_memory_is_read():
    assert resident_bytes() > 0 or platform.system() != "Linux"


def test_free_memory_is_released_only_when_over_the_margin(monkeypatch):
    readings = iter([100, 150, 170, 120, 171])  # the first is the baseline
    trims: list[int] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: trims.append(1) or True)

    def resident() -> int:
        try:
            return next(readings)
        except StopIteration:
            raise asyncio.CancelledError from None

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(memory.keep_trimmed(60, every_s=0, resident=resident))
    assert trims == [1, 1]  # 170 and 171 are more than 60 above 100; 150 and 120 are not


def test_no_margin_never_trims():
    asyncio.run(memory.keep_trimmed(0, every_s=0, resident=lambda: 100))  # returns at once
