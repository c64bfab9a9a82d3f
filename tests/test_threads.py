"""core.runtime.threads: OpenMP's wait policy is set before torch loads it, and a user's own choice stands."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = ("from sd_desktop.core.runtime.threads import configure_threads\n"
         "print(configure_threads()); import os, torch; print(os.environ.get('OMP_WAIT_POLICY'))\n")


def run(code: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_passive_waiting_is_set_before_torch_loads():
    assert run(CHECK) == ["True", "PASSIVE"]


def test_the_users_own_setting_stands():
    assert run(CHECK, OMP_WAIT_POLICY="ACTIVE") == ["False", "ACTIVE"]
    assert run(CHECK, GOMP_SPINCOUNT="1000") == ["False", "None"]


def test_too_late_once_torch_is_loaded():
    assert run("import torch\n" + CHECK) == ["False", "None"]


FIT = """
import torch
from types import SimpleNamespace
import sd_desktop.core as core
from sd_desktop.core.families import SD1
from sd_desktop.core.nn.unet import UNetModel
from sd_desktop.core.runtime.threads import fit_threads
before = torch.get_num_threads()
demo = core.load_model(None, device="cpu", dtype="fp32")
small = fit_threads(demo), torch.get_num_threads()
full = SimpleNamespace(device=torch.device("cpu"), unet=UNetModel.__new__(UNetModel), config=SimpleNamespace(unet=SD1.unet))
large = fit_threads(full), torch.get_num_threads()
fit_threads(demo)
from sd_desktop.core.runtime.threads import default_threads
with default_threads():
    inside = torch.get_num_threads()
print(before, *small, *large, inside, torch.get_num_threads())
"""


def test_one_thread_for_a_small_unet_and_the_default_for_a_full_size_one():
    """The demo's U-Net (6.6 M parameters) runs on one thread, SD 1.5's (860 M, sized on the meta device) on torch's
    default, an upscale on the default; a user's OMP_NUM_THREADS stands."""
    before, small_set, small_now, large_set, large_now, inside, after = map(int, run(FIT))
    assert (small_set, small_now) == (1, 1)
    assert large_set == large_now == before
    assert (inside, after) == (before, 1)  # an upscale on all threads, then the demo's one again
    assert run(FIT, OMP_NUM_THREADS="2")[1:] == ["None", "2", "None", "2", "2", "2"]
