"""core.allocator: large blocks come from the reusable heap instead of fresh mappings, and go back after."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from sd_desktop.core.runtime.allocator import _libc_name

pytestmark = [pytest.mark.skipif(not _libc_name().startswith("glibc"), reason="tunes glibc's malloc only"), pytest.mark.slow]  # fresh processes

# Runs in a fresh process: malloc's settings are process-wide and cannot be undone.
PROBE = textwrap.dedent("""
    import sys, threading, torch
    from sd_desktop.core.runtime import allocator

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
        blocks = [torch.ones(16 << 20, dtype=torch.uint8) for _ in range(8)]  # 8 x 16 MB, as a U-Net's activations
        result["in_heap"] = all(any(lo <= b.data_ptr() < hi for lo, hi in heap_ranges()) for b in blocks)
        del blocks
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
    assert in_heap == "True"  # one arena, 32 MB mmap threshold: the worker thread's blocks came from the main heap
    assert int(released_mb) >= 90  # they stayed there when freed, and release_cpu_memory gave them back


def test_untuned_malloc_maps_the_blocks_and_release_is_a_no_op():
    tuned, _, in_heap, released_mb = probe("default")
    assert tuned == "False" and in_heap == "False"
    assert abs(int(released_mb)) < 50
