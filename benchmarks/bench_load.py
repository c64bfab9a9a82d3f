"""Model load time and peak memory of a full-size SD 1.5 fp16 single file, in a fresh process each.

    python benchmarks/bench_load.py [--dtype bf16 fp32 fp16] [--model demo|PATH] [--rounds 1]

`--model demo` loads the bundled demo model instead; `--rounds N` loads N times per dtype, the dtypes taking turns,
and shows the median with the spread. The time counts from before `import sd_desktop.core` (torch imported), so
what a load imports counts too.

Peak RSS is the process's high-water mark (VmHWM; ru_maxrss would include the parent's, since it
survives exec), which also counts the file's pages while they are memory-mapped; "weights" is the size
of one copy of the weights in the target dtype.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PEAK = "int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) * 1024"

CHILD = r"""
import json, sys, time
import torch
t0 = time.perf_counter()
import sd_desktop.core as core
from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory
keep_freed_cpu_memory()  # as the app and the CLI do at start
model = core.load_model(None if sys.argv[1] == "demo" else sys.argv[1], device="cpu", dtype=sys.argv[2])
elapsed = time.perf_counter() - t0
def tensors(module):  # parameters, and the packed weights and biases of oneDNN layers (core.runtime.onednn)
    for m in module.modules():
        yield from m.parameters(recurse=False)
        yield from (t for t in (getattr(m, "packed_weight", None), getattr(m, "bias", None) if hasattr(m, "packed_weight") else None)
                    if t is not None)
params = sum(t.numel() * t.element_size() for m in (model.unet, model.vae, model.text_encoder) for t in tensors(m))
print(json.dumps({"seconds": elapsed, "peak_rss": %s, "weights": params}))
""" % PEAK

BASELINE = r"""
import json
import torch, sd_desktop.core.loading.model
print(json.dumps({"peak_rss": %s}))
""" % PEAK

MAKE_FILE = r"""
import sys
sys.path.insert(0, sys.argv[1])
from full_size import random_full_size_checkpoint
print(random_full_size_checkpoint())
"""


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", nargs="+", default=["bf16", "fp32"])
    parser.add_argument("--model", default=None, help="demo, or a model file (default: a random full-size SD 1.5)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if args.model is None:
        made = subprocess.run([sys.executable, "-c", MAKE_FILE, str(Path(__file__).resolve().parent)],
                              capture_output=True, text=True, check=True)  # its own process: keeps this one small
        model = Path(made.stdout.strip().splitlines()[-1])
        print(f"file: {model.name}, {model.stat().st_size / 2**30:.2f} GiB")
    else:
        model = args.model
    base = run(BASELINE)["peak_rss"]
    print(f"python + torch alone: {base / 2**30:.2f} GiB RSS")
    results: dict[str, list[dict]] = {dtype: [] for dtype in args.dtype}
    for _ in range(args.rounds):
        for dtype in args.dtype:
            results[dtype].append(run(CHILD, str(model), dtype))
    print("| target dtype | load time (median, spread) | peak RSS | above python+torch | one copy of weights |")
    print("|---|---|---|---|---|")
    for dtype, rounds in results.items():
        seconds = sorted(r["seconds"] for r in rounds)
        r = rounds[-1]
        print(f"| {dtype} | {statistics.median(seconds):.2f} s ({seconds[0]:.2f}–{seconds[-1]:.2f}) | "
              f"{r['peak_rss'] / 2**30:.2f} GiB | {(r['peak_rss'] - base) / 2**30:.2f} GiB | "
              f"{r['weights'] / 2**30:.2f} GiB |")


if __name__ == "__main__":
    main()
