"""How long a cancel (or a quit) waits: full-size SD 1.5 (random weights), 512², 20 CFG steps, cancelled at
several points of the run; the time from the cancel to core.Cancelled, with the U-Net and VAE asking between
their blocks (core.interrupt) and, alternated in the same run, with that check switched off (a cancel seen
only between steps, as before). Medians and spreads printed.

    python benchmarks/bench_cancel.py [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
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

    import sd_desktop.core as core
    import sd_desktop.core.nn.unet as unet
    import sd_desktop.core.nn.vae as vae
    from full_size import random_full_size_checkpoint

    torch.set_num_threads(args.threads)
    model = core.load_model(random_full_size_checkpoint(), device="cpu")
    request = core.GenerationRequest(prompt="a castle", steps=20, width=args.size, height=args.size, seed=1,
                                     sampler="dpmpp_2m", schedule="karras", cfg_scale=7.5)
    core.generate(model, core.GenerationRequest(prompt="a castle", steps=1, width=64, height=64, seed=1))  # warm
    steps = []
    started = time.perf_counter()
    core.generate(model, request.__class__(**{**request.__dict__, "steps": 2}), on_step=lambda s: steps.append(
        time.perf_counter()))
    step = steps[1] - steps[0]
    print(f"model {model.dtype}, {args.threads} threads, one {args.size}² CFG step: {step:.2f} s")
    real_unet, real_vae = unet.check_stop, vae.check_stop
    waits: dict[str, list[float]] = {"between blocks": [], "between steps only": []}
    for _ in range(args.rounds):
        for label in waits:
            on = label == "between blocks"
            unet.check_stop, vae.check_stop = (real_unet, real_vae) if on else ((lambda: None), (lambda: None))
            for fraction in (0.25, 0.5, 0.75):  # into a step: the cancel lands a quarter, half, 3/4 through one
                cancel, when = threading.Event(), []
                timer = threading.Timer((2 + fraction) * step, lambda: (when.append(time.perf_counter()), cancel.set()))
                timer.start()
                try:
                    core.generate(model, request, should_stop=cancel.is_set)
                except core.Cancelled:
                    waits[label].append(time.perf_counter() - when[0])
                timer.cancel()
    unet.check_stop, vae.check_stop = real_unet, real_vae
    for label, values in waits.items():
        print(f"{label:>20}: cancel → stopped median {statistics.median(values):.2f} s "
              f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")


if __name__ == "__main__":
    main()
