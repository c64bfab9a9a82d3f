"""A packed 3x3 convolution after a nearest 2x upsample run as one transposed convolution of the small input
(core.runtime.onednn.PackedConv2d.after_nearest_2x) against the upsample then the packed convolution: the full-size
VAE decode and U-Net CFG step, both ways in one process, rounds alternated.

    python benchmarks/bench_upsample.py [--rounds 5] [--parts vae,unet] [--size 512] [--dtype fp32]

The VAE decoder upsamples three times (to 128², 256² and 512² at 512 and 256 channels), the U-Net three times (to
16², 32² and 64² at 1280 and 640 channels, batch 2). Reports each part's median time both ways, their ratio (the
median of the rounds' ratios), the largest difference between the outputs relative to their largest value, and
the memory the transposed kernels take. Weights: bench_sd.py's random full-size SD 1.5 (bench-cache/).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench_sd import SINGLE_FILE, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parts", default="vae,unet")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--dtype", default="fp32")
    args = parser.parse_args()
    build_model()

    import sd_desktop.core as core
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory
    from sd_desktop.core.runtime.onednn import PackedConv2d

    keep_freed_cpu_memory()
    model = core.load_model(SINGLE_FILE, device="cpu", dtype=args.dtype)
    latent = args.size // 8
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(1, 4, latent, latent, generator=generator).to(model.dtype)
    x = torch.randn(2, 4, latent, latent, generator=generator).to(model.dtype)
    context = torch.randn(2, 77, 768, generator=generator).to(model.dtype)
    t = torch.tensor([500.0, 500.0])
    runs = {"vae": (model.vae, lambda: model.vae.decode(z)), "unet": (model.unet, lambda: model.unet(x, t, context))}
    transposed = PackedConv2d.after_nearest_2x

    def use(by_transposing: bool) -> None:
        if by_transposing:
            PackedConv2d.after_nearest_2x = transposed
        elif hasattr(PackedConv2d, "after_nearest_2x"):
            del PackedConv2d.after_nearest_2x

    with torch.inference_mode():
        for part in args.parts.split(","):
            network, run = runs[part]
            outputs = {}
            for by_transposing in (False, True):
                use(by_transposing)
                outputs[by_transposing] = run().float()  # (also the warm-up, and the kernels made)
            kernels = [m._after_2x_kernel for m in network.modules() if "_after_2x_kernel" in vars(m)]
            times: dict[bool, list[float]] = {False: [], True: []}
            for round_ in range(args.rounds):
                for by_transposing in ((False, True) if round_ % 2 == 0 else (True, False)):
                    use(by_transposing)
                    started = time.perf_counter()
                    run()
                    times[by_transposing].append(time.perf_counter() - started)
                print(f"{part} round {round_ + 1}: upsample then convolve {times[False][-1]:.2f} s, transposed "
                      f"{times[True][-1]:.2f} s", flush=True)
            ratio = statistics.median(a / b for a, b in zip(times[True], times[False]))
            difference = ((outputs[True] - outputs[False]).abs().max() / outputs[False].abs().max()).item()
            print(f"{part}: upsample then convolve {statistics.median(times[False]):.2f} s, transposed "
                  f"{statistics.median(times[True]):.2f} s, ratio {ratio:.3f} (medians of {args.rounds}); outputs "
                  f"differ by {difference:.1e} of their largest value; {len(kernels)} transposed kernels, "
                  f"{sum(k.numel() * k.element_size() for k in kernels) / 2**20:.0f} MiB", flush=True)
    use(True)


if __name__ == "__main__":
    main()
