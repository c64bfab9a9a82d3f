"""The VAE's SiLU after each GroupNorm written in place (core.nn.layers.silu_of_fresh) against a new tensor, as
torch's F.silu makes: the full-size VAE decode both ways in one process, rounds alternated.

    python benchmarks/bench_inplace.py [--rounds 5] [--size 512] [--dtype fp32]

At the VAE decoder's top level one activation is 134 MB at 512² (fp32), above glibc's largest mmap threshold
(32 MB), so every new one is a fresh mapping whose pages the kernel zero-fills. Reports the median time
both ways, their ratio (the median of the rounds' ratios) and the largest difference between the outputs.
Weights: bench_sd.py's random full-size SD 1.5 (bench-cache/).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from bench_sd import SINGLE_FILE, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--dtype", default="fp32")
    args = parser.parse_args()
    build_model()

    import sd_desktop.core as core
    import sd_desktop.core.nn.layers as layers
    import sd_desktop.core.nn.vae as vae_module
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory

    keep_freed_cpu_memory()
    model = core.load_model(SINGLE_FILE, device="cpu", dtype=args.dtype)
    latent = args.size // 8
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(1, 4, latent, latent, generator=generator).to(model.dtype)
    in_place = layers.silu_of_fresh

    def use(fresh: bool) -> None:
        vae_module.silu_of_fresh = in_place if fresh else F.silu

    with torch.inference_mode():
        for part, run in (("vae decode", lambda: model.vae.decode(z)),):
            outputs = {}
            for fresh in (False, True):
                use(fresh)
                outputs[fresh] = run().float()  # (also the warm-up)
            times: dict[bool, list[float]] = {False: [], True: []}
            for round_ in range(args.rounds):
                for fresh in ((False, True) if round_ % 2 == 0 else (True, False)):
                    use(fresh)
                    started = time.perf_counter()
                    run()
                    times[fresh].append(time.perf_counter() - started)
                print(f"{part} round {round_ + 1}: new tensor {times[False][-1]:.2f} s, in place {times[True][-1]:.2f} s",
                      flush=True)
            ratio = statistics.median(a / b for a, b in zip(times[True], times[False]))
            print(f"{part}: new tensor {statistics.median(times[False]):.2f} s, in place "
                  f"{statistics.median(times[True]):.2f} s, ratio {ratio:.3f} (medians of {args.rounds}); outputs "
                  f"differ by at most {(outputs[True] - outputs[False]).abs().max().item():.2e}", flush=True)
    use(True)


if __name__ == "__main__":
    main()
