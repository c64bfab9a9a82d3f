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
