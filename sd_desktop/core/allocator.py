"""Host memory between a network's layers: keep it in the process while generating, give it back after.

glibc's malloc serves every block over 32 MB (and, in a thread's own arena, over 64 MB in all) with a
fresh mmap and unmaps it when freed. A 512x512 step allocates and frees such blocks dozens of times,
and the kernel zero-fills each of their pages again on first touch: 7-8% of a 512x512 generation on a
2-core CPU (benchmarks/bench_sd.py; README). With one arena, no mmap and no automatic trimming, freed
blocks are reused instead; `release_cpu_memory()` hands the unused part back when a generation ends.
Elsewhere than glibc (Windows, macOS, musl) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_NEVER = 2**31 - 1  # mallopt takes a C int: 2 GiB

_libc = None
_tuned = False


def _glibc():
    global _libc
    if _libc is None:
        _libc = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            except OSError:
                pass
    return _libc


def keep_freed_cpu_memory() -> bool:
    """Tune malloc as above, once per process. Call it before the threads that run torch first
    allocate (a thread that has its own arena keeps it). Returns whether malloc is tuned."""
    global _tuned
    libc = _glibc()
    if libc and not _tuned:
        _tuned = all(libc.mallopt(option, value) == 1 for option, value in (
            (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER)))
    return _tuned


def release_cpu_memory() -> None:
    """Return the freed part of the heap to the operating system (a desktop app should not sit on the
    peak of its last generation). Costs the next generation a page fault per page it reuses."""
    libc = _glibc()
    if libc and _tuned:
        libc.malloc_trim(0)
