"""The final decode of one 512² image on this CPU: the full-size SD 1.5 VAE (random weights) against TAESD's
decoder (diffusers' AutoencoderTiny layout, random weights: the same cost as the real one), and one TAESD preview
at the same size; rounds alternated, medians and spreads.

    python benchmarks/bench_taesd.py [--rounds 3] [--threads 2] [--size 512]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()

    import torch
    from diffusers import AutoencoderTiny
    from safetensors.torch import save_file

    import sd_desktop.core as core
    from full_size import random_full_size_checkpoint
    from sd_desktop.core.runtime.vae_ops import decode_latents

    torch.set_num_threads(args.threads)
    model = core.load_model(random_full_size_checkpoint(), device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "taesd.safetensors"
        save_file(AutoencoderTiny().state_dict(), str(path))
        model.use_taesd(path)
    latent = torch.randn(1, 4, args.size // 8, args.size // 8)
    runs = {"VAE decode": lambda: decode_latents(model, latent.to(model.dtype)),
            "TAESD decode": lambda: model.taesd.decode(latent)}
    with torch.inference_mode():
        for run in runs.values():
            run()  # warm
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    print(f"{args.size}², {args.threads} threads, VAE in {str(model.dtype).removeprefix('torch.')}, TAESD in float32; "
          f"medians of {args.rounds} alternated rounds")
    for name, values in times.items():
        print(f"  {name:14} {statistics.median(values):7.3f} s  (min {min(values):.3f}, max {max(values):.3f})")


if __name__ == "__main__":
    main()
