"""torch.compile (inductor) of the full-size U-Net on this CPU against the eager, oneDNN-packed default, steps
taking turns in one process.

    python benchmarks/bench_inductor.py [--rounds 5] [--size 512] [--dtype fp32] [--modes frozen,default]

Modes: "default" is `load_model(compile=True)` as the app offers it; "frozen" is the same with inductor's weight
freezing (torch._inductor.config.freezing: the weights become constants, pre-packed for oneDNN at compile time);
"max-autotune" is `load_model(compile="max-autotune")`, which on a CPU adds inductor's GEMM templates and
freezing. Reports each compiled U-Net's first call (the compile, which torch caches on disk for later runs), its
median step against the eager one's, and how far its output is from eager's. Weights: bench_sd.py's random
full-size SD 1.5 (bench-cache/).
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
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--modes", default="frozen,default")
    args = parser.parse_args()
    build_model()

    import torch._inductor.config as inductor

    import sd_desktop.core as core
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory

    keep_freed_cpu_memory()
    latent = args.size // 8
    generator = torch.Generator().manual_seed(0)
    eager = core.load_model(SINGLE_FILE, device="cpu", dtype=args.dtype)
    dtype = eager.dtype
    x = torch.randn(2, 4, latent, latent, generator=generator).to(dtype)
    context = torch.randn(2, 77, 768, generator=generator).to(dtype)
    t = torch.tensor([500.0, 500.0])
    steps = {"eager (packed)": eager.unet}
    first_call = {}
    with torch.inference_mode():
        reference = eager.unet(x, t, context).float()
        for mode in args.modes.split(","):
            model = core.load_model(SINGLE_FILE, device="cpu", dtype=args.dtype,
                                    compile="max-autotune" if mode == "max-autotune" else "default")
            if mode == "frozen":  # (load_model freezes for max-autotune on a CPU itself; dynamo reads it at the call)
                inductor.freezing = True
            started = time.perf_counter()
            out = model.unet(x, t, context).float()
            first_call[mode] = (time.perf_counter() - started,
                                ((out - reference).norm() / reference.norm()).item())
            print(f"{mode}: first call (compile) {first_call[mode][0]:.1f} s, output differs from eager by "
                  f"{first_call[mode][1]:.2e}", flush=True)
            steps[mode] = model.unet
        times: dict[str, list[float]] = {name: [] for name in steps}
        for round_ in range(args.rounds):
            for name, unet in steps.items():
                started = time.perf_counter()
                unet(x, t, context)
                times[name].append(time.perf_counter() - started)
            print(f"round {round_ + 1}: " + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in times.items()), flush=True)
    base = statistics.median(times["eager (packed)"])
    print(f"\n| {args.size}² CFG step, {str(dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds | median (s) | spread (s) | against eager | first call (s) | distance from eager |")
    print("|---|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        first, distance = first_call.get(name, (None, 0.0))
        print(f"| {name} | {median:.2f} | {min(values):.2f}–{max(values):.2f} | {median / base:.2f}× | "
              f"{'—' if first is None else f'{first:.0f}'} | {distance:.1e} |")


if __name__ == "__main__":
    main()
