"""Cancel inside a network call. A cancel is otherwise seen between sampler steps, and one 512² SD 1.5 CFG step
takes about 2 s on a 2-core CPU (the VAE decode as long): too slow for "Cancel" or for quitting within a second.
`stop_points(should_stop)` makes the calling thread's stop check the one `check_stop()` asks; the U-Net asks it
between its blocks and the VAE decoder between its levels, so a cancel lands within a fraction of a step.

The check is per thread (the worker's), costs a thread-local read and the check itself (an Event.is_set), and
is nothing when no stop_points is open (tests, the reference comparisons, another thread).

A network compiled with torch.compile has no stop points: while dynamo traces, check_stop() returns at once.
Traced, the check would be inlined and guarded on the calling thread's stop check (the callable's code, an Event's
flag), so the U-Net compiled again, minutes at full size, for each kind of caller (the app's jobs, its live
mode, the CLI, a thread with none) and after every cancel. A compiled U-Net is one graph, and a cancel lands at the
next step (core.sampling.denoisers.CancellableDenoiser), as with CUDA graphs."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import torch

from .errors import Cancelled

_local = threading.local()
# torch.compiler.is_compiling is torch 2.3's name; torch._utils.is_compiling, which dynamo also knows, is older
_is_compiling = getattr(torch.compiler, "is_compiling", None) or getattr(torch._utils, "is_compiling", lambda: False)


@contextmanager
def stop_points(should_stop: Callable[[], bool] | None, message: str = "generation cancelled") -> Iterator[None]:
    """While open, check_stop() in this thread raises core.Cancelled(message) once should_stop() is True."""
    previous = getattr(_local, "check", None)
    _local.check = (should_stop, message) if should_stop is not None else None
    try:
        yield
    finally:
        _local.check = previous


def check_stop() -> None:
    if _is_compiling():  # (see the module's notes)
        return
    check = getattr(_local, "check", None)
    if check is not None and check[0]():
        raise Cancelled(check[1])
