"""A generation on a busy CPU: how much slower a U-Net step gets beside other programs, against its fair share.

    python benchmarks/bench_busy.py [--rounds 3] [--full-size] [--configs default,ours,omp1]

Workloads: the demo model's CFG step at its native size (many small parallel regions: where waiting threads
hurt most) and, with --full-size, SD 1.5's 512x512 CFG step (benchmarks/full_size.py, fp32).
Loads: quiet; beside one single-threaded CPU hog (a Python busy loop); beside another torch process running
2-thread matrix products. Configurations, each in a fresh process (OpenMP reads its environment once):
- default: torch as it starts (one thread per core; libgomp spins a while at each barrier);
- ours: what sd-desktop's app and CLI set up (core.runtime.threads: configure_threads, and fit_threads after the load);
- omp1: OMP_NUM_THREADS=1;
- passive: OMP_WAIT_POLICY=PASSIVE; spinN (spin1k, spin10k ...): GOMP_SPINCOUNT=N (libgomp's spin before sleeping).
Configurations and loads take turns for --rounds rounds; medians (and the spread) are printed. The fair share is
the quiet time of the default scaled by the CPU the step can get: 2 cores shared by 3 busy threads (hog) -> 1.5x,
by 4 (two 2-thread processes) -> 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

STEP = r"""
import json, os, sys, time
if sys.argv[2] == "ours":
    from sd_desktop.core.runtime.threads import configure_threads
    configure_threads()
import torch
import sd_desktop.core as core
path = None if sys.argv[1] == "demo" else sys.argv[1]
model = core.load_model(path, device="cpu", dtype="fp32")
if sys.argv[2] == "ours":
    from sd_desktop.core.runtime.threads import fit_threads
    fit_threads(model)
size = model.native_size if path is None else 512
side = size // 8
gen = torch.Generator().manual_seed(0)
x = torch.randn(2, 4, side, side, generator=gen)
ctx = model.encode_text(model.tokenize(["a red circle", ""]))
t = torch.tensor([500.0, 500.0])
calls = int(sys.argv[3])
with torch.inference_mode():
    model.unet(x, t, ctx)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model.unet(x, t, ctx)
        times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"step": times[len(times) // 2], "threads": torch.get_num_threads()}))
"""

HOG = "while True: pass"
TORCH_LOAD = r"""
import torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
while True:
    for _ in range(50):
        a = torch.tanh(a @ a * 0.01)
"""

CONFIG_ENV = {"default": {}, "ours": {}, "omp1": {"OMP_NUM_THREADS": "1"}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}}
LOADS = {"quiet": None, "hog": HOG, "torch2": TORCH_LOAD}
FAIR = {"quiet": 1.0, "hog": 1.5, "torch2": 2.0}


def config_env(config: str) -> dict:
    """A named configuration's environment; "spinN" (N with an optional k): GOMP_SPINCOUNT=N."""
    if config.startswith("spin"):
        count = config.removeprefix("spin")
        return {"GOMP_SPINCOUNT": str(int(count.removesuffix("k")) * (1000 if count.endswith("k") else 1))}
    return CONFIG_ENV[config]


def measure(workload: str, config: str, load: str, calls: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    env.update(config_env(config))
    other = None
    if LOADS[load] is not None:
        other = subprocess.Popen([sys.executable, "-c", LOADS[load]], env={**env, "OMP_NUM_THREADS": "2"})
        time.sleep(1.0)
    try:
        out = subprocess.run([sys.executable, "-c", STEP, workload, config, str(calls)], capture_output=True, text=True,
                             env=env, timeout=3600)
    finally:
        if other is not None:
            other.kill()
            other.wait()
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", default="default,ours,omp1")
    parser.add_argument("--full-size", action="store_true")
    args = parser.parse_args()
    configs = args.configs.split(",")
    workloads = {"demo model step": ("demo", 9)}
    if args.full_size:
        from full_size import random_full_size_checkpoint

        workloads["SD 1.5 512² step"] = (str(random_full_size_checkpoint()), 1)
    for label, (workload, calls) in workloads.items():
        times = {(c, load): [] for c in configs for load in LOADS}
        for _ in range(args.rounds):
            for load in LOADS:
                for config in configs:
                    times[(config, load)].append(measure(workload, config, load, calls))
        quiet = statistics.median(times[("default", "quiet")]) if "default" in configs else None
        print(f"\n{label} (median of {args.rounds}; x = against the default's quiet time; fair share: hog 1.5x, "
              "torch2 2x)")
        print("| config | " + " | ".join(LOADS) + " |")
        print("|---|" + "---|" * len(LOADS))
        for config in configs:
            cells = []
            for load in LOADS:
                values = times[(config, load)]
                med = statistics.median(values)
                ratio = f" ({med / quiet:.2f}x)" if quiet else ""
                cells.append(f"{med * 1000:.0f} ms{ratio} [{min(values) * 1000:.0f}-{max(values) * 1000:.0f}]")
            print(f"| {config} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
