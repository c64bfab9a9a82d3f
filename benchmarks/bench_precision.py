"""How far the half precisions' pictures are from float32's: full-size SD 1.5 (bench_sd.py's random weights), the
same request in fp32, bf16 and fp16, on one device.

    python benchmarks/bench_precision.py [--device cuda] [--size 512] [--steps 20]

For each precision: the sampled latents' max |difference| over max |fp32 latents|, their RMS difference over the
fp32 RMS, and the decoded picture's PSNR against fp32's (8-bit pixels). Random weights make a harsher test than
a trained model (their activations are not the tame ones training leaves), so read these as upper bounds.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    args = parser.parse_args()

    import numpy as np
    import torch

    import bench_sd
    import sd_desktop.core as core

    bench_sd.build_model()
    request = core.GenerationRequest(prompt=bench_sd.PROMPT, steps=args.steps, width=args.size, height=args.size,
                                     seed=1, sampler="dpmpp_2m", schedule="karras", cfg_scale=7.5)
    results = {}
    for precision in args.precisions.split(","):
        model = core.load_model(bench_sd.SINGLE_FILE, device=args.device, dtype=precision)
        started = time.perf_counter()
        out = core.generate(model, request)
        results[precision] = (out.latents.float().cpu(), np.asarray(out.images[0], dtype=np.float64),
                              time.perf_counter() - started)
        del model, out
        from sd_desktop.core.runtime.devices import release_device_memory

        release_device_memory(torch.device(args.device))
    reference, picture, _ = results["fp32"]
    print(f"| {args.size}² {args.steps} steps on {args.device} | max latent diff | RMS latent diff | PSNR vs fp32 | time (s) |")
    print("|---|---|---|---|---|")
    for precision, (latents, image, seconds) in results.items():
        peak = ((latents - reference).abs().max() / reference.abs().max()).item()
        rms = ((latents - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt()).item()
        mse = float(((image - picture) ** 2).mean())
        psnr = "∞" if mse == 0 else f"{10 * math.log10(255 ** 2 / mse):.1f} dB"
        print(f"| {precision} | {peak:.4f} | {rms:.4f} | {psnr} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
