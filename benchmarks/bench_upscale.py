"""×4 upscale of a 512² image with each upscaler on this CPU: the bundled compact models (x2/x3 models reach ×4
by two passes then Lanczos, as the app does) and, when imported (`sd-desktop models import-upscalers`), Real-ESRGAN
x4plus and x4plus-anime. Rounds alternated between the models; medians and spreads printed.

    python benchmarks/bench_upscale.py [--rounds 3] [--threads 2] [--size 512] [--scale 4] [--imported]

Without --imported only the bundled models run (x4plus takes minutes a round on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--scale", type=float, default=4)
    parser.add_argument("--imported", action="store_true", help="also the imported x4plus and x4plus-anime")
    args = parser.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from sd_desktop.core.upscale import load_upscaler, upscale_image
    from sd_desktop.core.upscale.catalogue import BUNDLED, find_upscalers

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    picture = Image.fromarray((rng.random((args.size // 8, args.size // 8, 3)) * 255).astype(np.uint8)).resize(
        (args.size, args.size), Image.BICUBIC)
    upscalers = {name: load_upscaler(path) for name, path in find_upscalers().items()
                 if args.imported or name in BUNDLED}
    times: dict[str, list[float]] = {name: [] for name in upscalers}
    for name, upscaler in upscalers.items():  # warm: the first call of each pays for oneDNN's choices
        upscale_image(upscaler, picture.resize((64, 64)), args.scale)
    for _ in range(args.rounds):
        for name, upscaler in upscalers.items():
            started = time.perf_counter()
            upscale_image(upscaler, picture, args.scale)
            times[name].append(time.perf_counter() - started)
    print(f"{args.size}² ×{args.scale:g}, {args.threads} threads, float32, medians of {args.rounds} alternated rounds")
    for name, values in times.items():
        up = upscalers[name]
        print(f"  {name:28} {up.architecture:16} {up.parameters / 1e6:5.2f} M params  "
              f"{statistics.median(values):7.2f} s  (min {min(values):.2f}, max {max(values):.2f})")


if __name__ == "__main__":
    main()
