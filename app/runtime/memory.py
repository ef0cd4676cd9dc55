"""Large buffers go back to the operating system when freed (glibc's malloc), and free memory
left in the heaps is returned when a worker holds much more than it did at start-up.

glibc serves an allocation above its mmap threshold with its own mapping, unmapped on free; below
it, from a heap that keeps freed memory for reuse. The threshold is dynamic: each time a mapped
block is freed, it rises to that block's size (up to 32 MiB on 64-bit). So after one large decode
the next images' buffers of a few MB come from the heap, and what a burst of them left behind can
stay resident in a worker long after (docs/reliability.md, the memory probe). A fixed threshold
ends the adjustment: every buffer above it is mapped and returned on free, whatever came before.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def fix_mmap_threshold(threshold_bytes: int) -> bool:
    """Set glibc's mmap threshold for this process (0: leave the default); False where the C
    library is not glibc or refuses the value."""
    if threshold_bytes <= 0:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        mallopt = None
    if mallopt is None:
        log.info("malloc: no mallopt in this C library; the mmap threshold stays its own")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def release_free_memory() -> bool:
    """glibc's malloc_trim(0): the free memory of every malloc arena back to the system (pages in
    the middle of a heap too, not only its top); False where the C library has no malloc_trim."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is None:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


def resident_bytes() -> int:
    """This process's resident memory (Linux /proc/self/statm); 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


async def keep_trimmed(
    margin_bytes: int, every_s: float = 1.0, resident: Callable[[], int] = resident_bytes
) -> None:
    """Runs until cancelled: whenever the process holds more than `margin_bytes` above what it
    held when this started (the models loaded), the free memory goes back to the system. Freed
    buffers of a burst of large images can stay in the heaps' middle, where no mmap threshold
    reaches them; trimming only then costs nothing on ordinary traffic."""
    baseline = resident()
    if margin_bytes <= 0 or baseline == 0:
        return
    while True:
        await asyncio.sleep(every_s)
        if resident() > baseline + margin_bytes:
            release_free_memory()
