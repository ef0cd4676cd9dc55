"""glibc's mmap threshold, fixed per worker so large freed buffers leave the process."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from app.runtime.memory import fix_mmap_threshold


def test_zero_leaves_the_default():
    assert fix_mmap_threshold(0) is False


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or not ctypes.util.find_library("c"),
    reason="mallopt is glibc's",
)
def test_glibc_takes_the_threshold():
    assert fix_mmap_threshold(4 * 1024 * 1024) is True
