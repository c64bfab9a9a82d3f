"""One speed route of the CPU path, on and off in one process, rounds alternated: the full-size VAE decode and U-Net
CFG step.

    python benchmarks/bench_routes.py --route upsample|silu [--rounds 5] [--parts vae,unet] [--size 512] [--dtype fp32]

Routes:
- `upsample`: a packed 3x3 convolution after a nearest 2x upsample run as one transposed convolution of the small
  input (core.runtime.onednn.PackedConv2d.after_nearest_2x), against the upsample then the packed convolution. The
  VAE decoder upsamples three times (to 128², 256² and 512² at 512 and 256 channels), the U-Net three times (to 16²,
  32² and 64² at 1280 and 640 channels, batch 2). Also reports the memory the transposed kernels take.
- `silu`: the VAE's SiLU after each GroupNorm written in place (core.nn.layers.silu_of_fresh) against a new tensor,
  as torch's F.silu makes. At the decoder's top level one activation is 134 MB at 512² (fp32), above glibc's largest
  mmap threshold (32 MB), so every new one is a fresh mapping whose pages the kernel zero-fills. VAE only.

Reports each part's median time both ways, their ratio (the median of the rounds' ratios) and the largest
difference between the outputs relative to their largest value. Weights: bench_sd.py's random full-size SD 1.5
(bench-cache/).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from bench_sd import SINGLE_FILE, build_model


def upsample_route():
    from sd_desktop.core.runtime.onednn import PackedConv2d

    transposed = PackedConv2d.after_nearest_2x

    def use(on: bool) -> None:
        if on:
            PackedConv2d.after_nearest_2x = transposed
        elif hasattr(PackedConv2d, "after_nearest_2x"):
            del PackedConv2d.after_nearest_2x

    def report(network) -> str:
        kernels = [m._after_2x_kernel for m in network.modules() if "_after_2x_kernel" in vars(m)]
        size = sum(k.numel() * k.element_size() for k in kernels) / 2**20
        return f"; {len(kernels)} transposed kernels, {size:.0f} MiB"

    return use, report, ("upsample then convolve", "transposed")


def silu_route():
    import sd_desktop.core.nn.vae as vae_module

    in_place = vae_module.silu_of_fresh

    def use(on: bool) -> None:
        vae_module.silu_of_fresh = in_place if on else F.silu

    return use, lambda network: "", ("new tensor", "in place")


ROUTES = {"upsample": upsample_route, "silu": silu_route}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--route", choices=sorted(ROUTES), required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parts", default="vae,unet")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--dtype", default="fp32")
    args = parser.parse_args()
    build_model()

    import sd_desktop.core as core
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory

    keep_freed_cpu_memory()
    model = core.load_model(SINGLE_FILE, device="cpu", dtype=args.dtype)
    latent = args.size // 8
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(1, 4, latent, latent, generator=generator).to(model.dtype)
    x = torch.randn(2, 4, latent, latent, generator=generator).to(model.dtype)
    context = torch.randn(2, 77, 768, generator=generator).to(model.dtype)
    t = torch.tensor([500.0, 500.0])
    runs = {"vae": (model.vae, lambda: model.vae.decode(z)), "unet": (model.unet, lambda: model.unet(x, t, context))}
    use, report, (off_name, on_name) = ROUTES[args.route]()
    parts = ["vae"] if args.route == "silu" else args.parts.split(",")

    with torch.inference_mode():
        for part in parts:
            network, run = runs[part]
            outputs = {}
            for on in (False, True):
                use(on)
                outputs[on] = run().float()  # (also the warm-up)
            times: dict[bool, list[float]] = {False: [], True: []}
            for round_ in range(args.rounds):
                for on in ((False, True) if round_ % 2 == 0 else (True, False)):
                    use(on)
                    started = time.perf_counter()
                    run()
                    times[on].append(time.perf_counter() - started)
                print(f"{part} round {round_ + 1}: {off_name} {times[False][-1]:.2f} s, {on_name} "
                      f"{times[True][-1]:.2f} s", flush=True)
            ratio = statistics.median(a / b for a, b in zip(times[True], times[False]))
            difference = ((outputs[True] - outputs[False]).abs().max() / outputs[False].abs().max()).item()
            print(f"{part}: {off_name} {statistics.median(times[False]):.2f} s, {on_name} "
                  f"{statistics.median(times[True]):.2f} s, ratio {ratio:.3f} (medians of {args.rounds}); outputs "
                  f"differ by {difference:.1e} of their largest value{report(network)}", flush=True)
    use(True)


if __name__ == "__main__":
    main()
