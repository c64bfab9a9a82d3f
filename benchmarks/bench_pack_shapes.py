"""oneDNN convolutions packed for their shapes at the native size, against all packed for 64x64 (as before),
steps and decodes taking turns in one process.

    python benchmarks/bench_pack_shapes.py [--rounds 5] [--size 512] [--sdxl]

A convolution packed for one input shape runs others too, but where oneDNN prefers another weight layout for
them it reorders the weight at every call (core.runtime.onednn). Weights: bench_sd.py's random full-size SD 1.5
(or, with --sdxl, full_size.py's SDXL file, at 1024² by default; minutes a step here), fp32.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--sdxl", action="store_true")
    args = parser.parse_args()

    import sd_desktop.core as core
    from sd_desktop.core.loading.model import StableDiffusionModel
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory
    from sd_desktop.core.runtime.vae_ops import decode_latents

    if args.sdxl:
        from full_size import random_full_size_sdxl
        path = random_full_size_sdxl()
    else:
        from bench_sd import SINGLE_FILE, build_model
        build_model()
        path = SINGLE_FILE
    keep_freed_cpu_memory()
    fitted = core.load_model(path, device="cpu", dtype="fp32")
    native = StableDiffusionModel.native_conv_shapes
    StableDiffusionModel.native_conv_shapes = lambda self: ({}, {})  # every convolution packed for 64x64
    try:
        old = core.load_model(path, device="cpu", dtype="fp32")
    finally:
        StableDiffusionModel.native_conv_shapes = native
    size = args.size or fitted.native_size
    side = size // 8
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, side, side, generator=gen)
    context = torch.randn(2, 77, fitted.config.unet.context_dim, generator=gen)
    y = (torch.randn(2, fitted.config.unet.adm_in_channels, generator=gen),) if fitted.config.unet.adm_in_channels else ()
    t = torch.tensor([500.0, 500.0])
    z = torch.randn(1, 4, side, side, generator=gen)
    models = {"packed for their native shapes": fitted, "all packed for 64x64": old}
    times = {name: {"step": [], "decode": []} for name in models}
    with torch.inference_mode():
        outs = {name: m.unet(x, t, context, *y) for name, m in models.items()}
        a, b = outs.values()
        print(f"U-Net outputs differ by {((a - b).norm() / b.norm()).item():.1e}", flush=True)
        for round_ in range(args.rounds):
            for name, m in models.items():
                started = time.perf_counter()
                m.unet(x, t, context, *y)
                times[name]["step"].append(time.perf_counter() - started)
                started = time.perf_counter()
                decode_latents(m, z)
                times[name]["decode"].append(time.perf_counter() - started)
            print(f"round {round_ + 1}: " + "; ".join(f"{n}: step {v['step'][-1]:.2f} s, decode {v['decode'][-1]:.2f} s"
                                                   for n, v in times.items()), flush=True)
    print(f"\n| {size}², fp32, {torch.get_num_threads()} threads, {args.rounds} rounds (median, spread) | "
          "U-Net CFG step (s) | VAE decode (s) |\n|---|---|---|")
    for name, values in times.items():
        cells = [f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})" for v in values.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
