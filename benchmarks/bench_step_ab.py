"""One U-Net step with CFG, sd-desktop against diffusers (+ channels_last), taking turns in one process.

    python benchmarks/bench_step_ab.py [--rounds 10] [--size 512] [--dtype bf16|fp32]

bench_sd.py runs each side in its own process, minutes apart; on a VM whose speed drifts from minute to
minute that comparison is noisy. Here both U-Nets (the same random weights from bench-cache/, built by
bench_sd.py) live in one process and their steps alternate, so a slow spell hits both alike. Reports each
side's median step and the median of the per-round ratios. The process's malloc is tuned as sd-desktop
tunes it (core.runtime.allocator), which diffusers' steps profit from as well: that favours diffusers, if anything.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench_sd import FOLDER, SINGLE_FILE, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--dtype", default="bf16", choices=("bf16", "fp32"),
                        help="bf16 (needs AVX512-BF16 or AMX to be fast) or fp32 (on CPUs without them)")
    args = parser.parse_args()
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    build_model()

    import sd_desktop.core as core
    from diffusers import UNet2DConditionModel
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory

    keep_freed_cpu_memory()  # as the app and the CLI do at start
    ours = core.load_model(SINGLE_FILE, device="cpu", dtype=args.dtype)
    theirs = UNet2DConditionModel.from_pretrained(FOLDER / "unet", torch_dtype=dtype).eval()
    theirs.to(memory_format=torch.channels_last)

    latent = args.size // 8
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, latent, latent, generator=generator).to(dtype)
    context = torch.randn(2, 77, 768, generator=generator).to(dtype)
    t = torch.tensor([500, 500])
    steps = {
        "sd-desktop": lambda: ours.unet(x, t, context),
        "diffusers": lambda: theirs(x.contiguous(memory_format=torch.channels_last), t,
                                    encoder_hidden_states=context).sample,
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    with torch.inference_mode():
        outputs = {name: step() for name, step in steps.items()}  # warm-up, and a check that both agree
        difference = (outputs["sd-desktop"].float() - outputs["diffusers"].float()).norm() / outputs["diffusers"].float().norm()
        for _ in range(args.rounds):
            for name, step in steps.items():
                started = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - started)
    ratios = [a / b for a, b in zip(times["sd-desktop"], times["diffusers"])]
    print(f"{args.size}x{args.size}, batch 2, {args.dtype}, {torch.get_num_threads()} threads, {args.rounds} rounds; "
          f"outputs differ by {difference:.2%}")
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f})")
    print(f"sd-desktop / diffusers per round: median {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
