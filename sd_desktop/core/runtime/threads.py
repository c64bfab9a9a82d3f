"""How torch's CPU threads wait, so that a generation beside other programs slows in proportion to the CPU it gets.

torch's CPU wheels run their parallel regions on GNU OpenMP, whose threads spin at every barrier for a while before
sleeping. On a quiet machine that saves a wake-up; on a busy one, a thread the kernel has put aside leaves the
others spinning through whole time slices, at every one of a U-Net's thousands of small regions: a demo-model step
went from 14 ms to over a second beside one busy program. With passive waiting a thread that has nothing to do
sleeps at once and gives its core to whoever has work (benchmarks/bench_busy.py has the numbers).

OpenMP reads its environment once, when torch loads it: `configure_threads()` must run before `import torch`. It
leaves alone whatever the user has set (OMP_WAIT_POLICY, GOMP_SPINCOUNT, OMP_NUM_THREADS).
"""

from __future__ import annotations

import os
import sys

WAIT_POLICY = "PASSIVE"


def configure_threads() -> bool:
    """Set the OpenMP wait policy for this process unless the user chose one. Returns whether it was set here
    (False: the user's choice stands, or torch was loaded already and it would come too late)."""
    if "torch" in sys.modules or any(key in os.environ for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
        return False
    os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    return True
