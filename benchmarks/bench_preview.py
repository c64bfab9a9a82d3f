"""Cost of a per-step preview (the linear latent -> RGB projection) against one U-Net step with CFG.

Full-size SD 1.5 U-Net (random weights) at 512x512 (64x64 latents, batch 2 for CFG), on the CPU.
Target: a preview costs under 2% of a step.

    python benchmarks/bench_preview.py [--dtype bf16|fp32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from sd_desktop.core.nn.configs import UNetConfig
from sd_desktop.core.families import SD1
from sd_desktop.core.runtime.preview import latent_preview, latent_rgb_projection
from sd_desktop.core.nn.unet import UNetModel


def random_unet(dtype: torch.dtype) -> UNetModel:
    with torch.device("meta"):
        unet = UNetModel(UNetConfig())
    unet = unet.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in unet.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return unet.to(dtype).eval()


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bf16", choices=("bf16", "fp32"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    unet = random_unet(dtype)
    x = torch.randn(2, 4, 64, 64)
    t = torch.tensor([500.0, 500.0])
    ctx = torch.randn(2, 77, 768)
    with torch.inference_mode():
        unet(x, t, ctx)  # warm-up
        step = best_of(lambda: unet(x, t, ctx), args.repeats)
    projection = latent_rgb_projection(SD1.latent.rgb_factors, SD1.latent.channels)
    latent = torch.randn(4, 64, 64)
    latent_preview(latent, projection)
    preview = best_of(lambda: [latent_preview(latent, projection) for _ in range(100)], args.repeats) / 100
    print(f"U-Net step with CFG, 512x512, {args.dtype}: {step * 1000:.0f} ms")
    print(f"preview (latent -> RGB projection):      {preview * 1000:.3f} ms")
    print(f"preview cost: {100 * preview / step:.3f}% of a step (target < 2%)")


if __name__ == "__main__":
    main()
