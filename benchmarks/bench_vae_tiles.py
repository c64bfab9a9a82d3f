"""When should the VAE decode in tiles? Time and peak memory of SD 1.5's VAE decode, whole and tiled,
at growing sizes, each in a fresh process; and how close tiled is to whole (PSNR, demo model's VAE).

    python benchmarks/bench_vae_tiles.py [--sizes 512 1024 1536] [--dtype bf16]

The full-size VAE has random weights (from benchmarks/full_size.py's file): its speed and memory are
those of the real one. Closeness is measured with the demo model's trained VAE on a rendered scene.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = r"""
import json, sys, time
import torch
from sd_desktop import core
from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory
from sd_desktop.core.runtime.vae_ops import decode_latents
keep_freed_cpu_memory()  # as the app and the CLI do at start
size, dtype, tiled = int(sys.argv[2]), sys.argv[3], sys.argv[4] == "tiled"
model = core.load_model(sys.argv[1], device="cpu", dtype=dtype)
del model.unet, model.text_encoder
def rss():
    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) * 1024
def hwm():
    return int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]) * 1024
base = rss()
z = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    started = time.perf_counter()
    decode_latents(model, z, tiled=tiled)
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "extra_peak": hwm() - base}))
"""

MAKE_FILE = r"""
import sys
sys.path.insert(0, sys.argv[1])
from full_size import random_full_size_checkpoint
print(random_full_size_checkpoint())
"""


def closeness(size: int = 768) -> float:
    """PSNR of a tiled decode against the whole decode, demo model's VAE, a rendered scene."""
    import numpy as np
    import torch

    from sd_desktop import core
    from sd_desktop.core.runtime.vae_ops import decode_latents, encode_pixels
    from sd_desktop.training import shapes

    model = core.load_model(None, device="cpu", dtype="fp32")
    rng = np.random.default_rng(3)
    scene = shapes.Scene("blue", (shapes.ShapeSpec("circle", "red", "large", "center"),
                                  shapes.ShapeSpec("square", "yellow", "small", "top left")))
    pixels = shapes.to_tensor(shapes.render(scene, size, rng))[None]
    with torch.inference_mode():
        latents = encode_pixels(model, pixels, tiled=False)
        whole = decode_latents(model, latents, tiled=False).clamp(-1, 1)
        tiled = decode_latents(model, latents, tiled=True).clamp(-1, 1)
    mse = ((whole - tiled) * 127.5).pow(2).mean().item()
    return 10 * np.log10(255**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 1536])
    parser.add_argument("--dtype", default="bf16")
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent)
    path = subprocess.run([sys.executable, "-c", MAKE_FILE, here], capture_output=True, text=True, check=True).stdout.strip()
    print(f"| size | whole: s | whole: extra peak GB | tiled: s | tiled: extra peak GB |\n|---|---|---|---|---|")
    for size in args.sizes:
        cells = []
        for mode in ("whole", "tiled"):
            out = subprocess.run([sys.executable, "-c", CHILD, path, str(size), args.dtype, mode],
                                 capture_output=True, text=True)
            if out.returncode:
                cells += ["failed", out.stderr.strip().splitlines()[-1][:60]]
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            cells += [f"{r['seconds']:.1f}", f"{r['extra_peak'] / 1e9:.2f}"]
        print(f"| {size}² | " + " | ".join(cells) + " |", flush=True)
    print(f"\nTiled against whole decode (demo model's VAE, a 768² scene): PSNR {closeness():.1f} dB")


if __name__ == "__main__":
    main()
