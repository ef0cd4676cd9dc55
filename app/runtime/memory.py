"""Large buffers go back to the operating system when freed (glibc's malloc).

glibc serves an allocation above its mmap threshold with its own mapping, unmapped on free; below
it, from a heap that keeps freed memory for reuse. The threshold is dynamic: each time a mapped
block is freed, it rises to that block's size (up to 32 MiB on 64-bit). So after one large decode
the next images' buffers of a few MB come from the heap, and what a burst of them left behind can
stay resident in a worker long after (docs/reliability.md, the memory probe). A fixed threshold
ends the adjustment: every buffer above it is mapped and returned on free, whatever came before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

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
