"""How torch's CPU threads wait, so that a generation beside other programs slows in proportion to the CPU it gets.

torch's CPU wheels run their parallel regions on GNU OpenMP, whose threads spin at every barrier for a while before
sleeping. On a quiet machine that saves a wake-up; on a busy one, a thread the kernel has put aside leaves the
others spinning through whole time slices, at every one of a U-Net's thousands of small regions: a demo-model step
went from 14 ms to over a second beside one busy program. With passive waiting a thread that has nothing to do
sleeps at once and gives its core to whoever has work (benchmarks/bench_busy.py has the numbers).

OpenMP reads its environment once, when torch loads it: `configure_threads()` must run before `import torch`. It
leaves alone whatever the user has set (OMP_WAIT_POLICY, GOMP_SPINCOUNT, OMP_NUM_THREADS).

A passive thread costs a wake-up at every parallel region, and a small network's regions are short: the demo
model's 30 ms step took 60 ms with two passive threads, 34 ms with one (benchmarks/bench_busy.py). So after a load
the app and the CLI call `fit_threads(model)`: one thread for a small U-Net (also the fastest beside other
programs), torch's default for a full-size one (where two threads halve the step and passive waiting costs nothing
measurable).
"""

from __future__ import annotations

import contextlib
import os
import sys

WAIT_POLICY = "PASSIVE"
SMALL_UNET = 50_000_000  # parameters: below this, one thread (the demo's U-Net has 6.6 M; SD 1.5's 860 M)
_default_threads: int | None = None


def configure_threads() -> bool:
    """Set the OpenMP wait policy for this process unless the user chose one. Returns whether it was set here
    (False: the user's choice stands, or torch was loaded already and it would come too late)."""
    if "torch" in sys.modules or any(key in os.environ for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
        return False
    os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    return True


def fit_threads(model) -> int | None:
    """Torch's intra-op threads for this model's U-Net (see the module's notes), for the calling thread: call it
    on the thread that will run the model. Returns the count set, or None where the user chose one
    (OMP_NUM_THREADS) or the device is not the CPU."""
    global _default_threads
    import torch

    from ..nn.layers import unwrapped

    if "OMP_NUM_THREADS" in os.environ or model.device.type != "cpu":
        return None
    if _default_threads is None:
        _default_threads = torch.get_num_threads()
    with torch.device("meta"):  # its size from its configuration: packed layers hold no parameters
        parameters = sum(p.numel() for p in type(unwrapped(model.unet))(model.config.unet).parameters())
    threads = 1 if parameters < SMALL_UNET else _default_threads
    torch.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def default_threads():
    """torch's default thread count for the calling thread inside the block (an upscaler's large convolutions, after
    fit_threads gave a small model one thread), and the fitted count again after it."""
    import torch

    fitted = torch.get_num_threads()
    if _default_threads is not None and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(_default_threads)
    try:
        yield
    finally:
        torch.set_num_threads(fitted)
