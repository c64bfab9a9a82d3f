"""SDXL at full size with random weights: load time and peak memory, and one 1024x1024 U-Net step with
classifier-free guidance (batch 2) in bf16, sd-desktop beside diffusers' UNet2DConditionModel in bf16 +
channels_last on the same weights.

    python benchmarks/bench_sdxl.py [--rounds 2] [--dtype bf16] [--size 1024]

The file (sd_xl_base_1.0's original layout, fp16, ~6.9 GB) is made once in bench-cache/ (benchmarks/full_size.py).
The load runs in a fresh process (peak RSS = its VmHWM). The step runs each implementation in a process of its own
(one model in memory at a time), one warm-up call then --calls timed ones, taking turns for --rounds rounds; medians
and every run are printed (this VM's speed drifts).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PEAK = "int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) * 1024"

LOAD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
import sd_desktop.core as core
from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory
keep_freed_cpu_memory()
model = core.load_model(sys.argv[1], device="cpu", dtype=sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss": %s, "family": model.family.name}))
""" % PEAK

MAKE = r"""
import sys
sys.path.insert(0, sys.argv[1])
from full_size import random_full_size_sdxl
print(random_full_size_sdxl())
"""

DIFFUSERS_SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280), layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), use_linear_projection=True, cross_attention_dim=2048,
    addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
)


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def diffusers_unet(path: Path, dtype):
    """diffusers' SDXL U-Net with the file's weights (renamed from the original layout), channels_last."""
    import torch
    from diffusers import UNet2DConditionModel

    from sd_desktop.core.families import SDXL
    from sd_desktop.core.loading.convert_unet import unet_keys_to_diffusers
    from sd_desktop.core.loading.tensor_files import open_tensor_file

    source = open_tensor_file(path)
    prefix = "model.diffusion_model."
    weights = {k[len(prefix):]: source.get(k).to(dtype) for k in source.keys() if k.startswith(prefix)}
    with torch.device("meta"):
        unet = UNet2DConditionModel(**DIFFUSERS_SDXL_UNET)
    unet.load_state_dict(unet_keys_to_diffusers(weights, SDXL.unet), strict=True, assign=True)
    return unet.eval().requires_grad_(False).to(memory_format=torch.channels_last)


STEP = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import torch
from bench_sdxl import inputs, load_side
side, path, dtype_name, size, calls = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
call = load_side(side, path, dtype_name, size)
times = []
with torch.inference_mode():
    for index in range(calls + 1):  # the first call warms up
        start = time.perf_counter()
        call()
        elapsed = time.perf_counter() - start
        print(f"{side} call {index}: {elapsed:.1f} s", file=sys.stderr, flush=True)
        if index:
            times.append(elapsed)
print(json.dumps(times))
"""


def inputs(dtype, size: int):
    import torch

    gen = torch.Generator().manual_seed(0)
    side = size // 8
    x = torch.randn(2, 4, side, side, generator=gen).to(dtype)
    context = torch.randn(2, 77, 2048, generator=gen).to(dtype)
    y = torch.randn(2, 2816, generator=gen).to(dtype)
    return x, torch.tensor([500.0, 500.0]), context, y


def load_side(side: str, path: str, dtype_name: str, size: int):
    """A zero-argument call of one CFG step (batch 2) at size², on our U-Net or diffusers' (channels_last)."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    x, t, context, y = inputs(dtype, size)
    if side == "ours":
        import sd_desktop.core as core

        unet = core.load_model(path, device="cpu", dtype=dtype_name).unet
        return lambda: unet(x, t, context, y)
    unet = diffusers_unet(Path(path), dtype)
    time_ids = torch.tensor([[size, size, 0, 0, size, size]] * 2, dtype=dtype)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    return lambda: unet(x_cl, t, context, added_cond_kwargs={"text_embeds": y[:, :1280], "time_ids": time_ids}).sample


def step_benchmark(path: Path, dtype_name: str, size: int, rounds: int, calls: int) -> dict:
    """Each side in its own process (one model in memory at a time), taking turns for `rounds` rounds."""
    times = {"ours": [], "diffusers": []}
    for _ in range(rounds):
        for side in times:
            out = subprocess.run([sys.executable, "-c", STEP, str(HERE), side, str(path), dtype_name, str(size),
                                  str(calls)], capture_output=True, text=True)
            sys.stderr.write(out.stderr[-2000:])
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            times[side] += json.loads(out.stdout.strip().splitlines()[-1])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dtype", default="bf16", choices=("bf16", "fp32"),
                        help="bf16 (as the issue asks; emulated, and very slow, on CPUs without AVX512-BF16 or AMX)")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--calls", type=int, default=1, help="timed calls per process, after one warm-up call")
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args()
    made = run(MAKE.replace("print(random_full_size_sdxl())", "import json; print(json.dumps(str(random_full_size_sdxl())))"),
               str(HERE))
    path = Path(made)
    print(f"file: {path.name}, {path.stat().st_size / 2**30:.2f} GiB")
    if not args.skip_load:
        loaded = run(LOAD, str(path), args.dtype)
        print(f"load ({args.dtype}): {loaded['seconds']:.1f} s, peak RSS {loaded['peak_rss'] / 2**30:.2f} GiB "
              f"({loaded['family']})")
    times = step_benchmark(path, args.dtype, args.size, args.rounds, args.calls)
    med = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name}: one {args.size}² CFG step (batch 2) median {med[name]:.1f} s "
              f"(runs {', '.join(f'{v:.1f}' for v in values)})")
    print(f"ours / diffusers: {med['ours'] / med['diffusers']:.2f}x")


if __name__ == "__main__":
    main()
