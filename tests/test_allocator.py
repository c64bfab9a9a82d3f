"""core.allocator: large blocks come from the reusable heap instead of fresh mappings, and go back after."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="tunes glibc's malloc only")

# Runs in a fresh process: malloc's settings are process-wide and cannot be undone.
PROBE = textwrap.dedent("""
    import sys, threading, torch
    from sd_desktop.core import allocator

    def heap_ranges():
        with open("/proc/self/maps") as f:
            return [tuple(int(x, 16) for x in line.split()[0].split("-")) for line in f if "[heap]" in line]

    def rss():
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("VmRSS")).split()[1]) * 1024

    tuned = allocator.keep_freed_cpu_memory() if sys.argv[1] == "tuned" else False
    again = allocator.keep_freed_cpu_memory() if tuned else False
    result = {}

    def work():  # in a second thread, as the app's worker runs torch
        block = torch.ones(100 << 20, dtype=torch.uint8)  # 100 MB, over every mmap threshold
        address = block.data_ptr()
        result["in_heap"] = any(lo <= address < hi for lo, hi in heap_ranges())
        del block
        before = rss()
        allocator.release_cpu_memory()
        result["released_mb"] = (before - rss()) / 2**20

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    print(tuned, again, result["in_heap"], round(result["released_mb"]))
""")


def probe(mode: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    return out.split()


def test_tuned_malloc_serves_large_blocks_from_the_heap_and_trims_it():
    tuned, again, in_heap, released_mb = probe("tuned")
    assert tuned == "True" and again == "True"
    assert in_heap == "True"  # one arena, no mmap: the worker thread's 100 MB came from the main heap
    assert int(released_mb) >= 90  # and release_cpu_memory gave it back


def test_untuned_malloc_maps_large_blocks_and_release_is_a_no_op():
    tuned, _, in_heap, released_mb = probe("default")
    assert tuned == "False" and in_heap == "False"
    assert abs(int(released_mb)) < 50
