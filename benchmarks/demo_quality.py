"""How good is the bundled demo model, through the app's own pipeline (core.generate with defaults)?

    python benchmarks/demo_quality.py [--model FILE] [--prompts 96] [--samples docs/samples.png]

1. Prompt following: "a {colour} {shape} on a {background} background" over the palette, judged by
   training.judge (nearest palette colour; the object's fill of its bounding box). Targets 90/90/80 %.
2. Inpainting: the left half of a generated image is repainted with a new prompt; the right half must
   keep its pixels and the left half must show the requested object colour.
3. Interpolation: between two generated images, frame(0) and frame(1) against the images (PSNR,
   target >= 20 dB), and how evenly the frames in between move from one to the other.
4. Speed: one 20-step image at the native size (median of 5, after a warm-up).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sd_desktop import core
from sd_desktop.training.diffusion_stage import grid, judge_model, judge_prompts
from sd_desktop.training.judge import judge


def psnr(a: Image.Image, b: Image.Image) -> float:
    x, y = (np.asarray(i.convert("RGB"), dtype=np.float64) for i in (a, b))
    mse = ((x - y) ** 2).mean()
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def prompt_following(model, count: int, samples: Path | None) -> dict:
    scores, images = judge_model(model, count, prompt_seed=99, first_seed=1000)
    if samples is not None:
        samples.parent.mkdir(parents=True, exist_ok=True)
        grid(images[:24], columns=8).save(samples)
    return scores


def inpainting(model, count: int) -> dict:
    """Repaint the left half with an object of another colour on the same background."""
    size = model.native_size
    kept, placed = [], 0
    for i, (colour, shape, background) in enumerate(judge_prompts(count, seed=7)):
        base = core.generate(model, core.GenerationRequest(prompt=f"a {shape} on a {background} background",
                                                           seed=2000 + i)).images[0]
        mask = Image.new("L", (size, size), 0)
        mask.paste(255, (0, 0, size // 2, size))
        result = core.generate(model, core.GenerationRequest(
            prompt=f"a large {colour} {shape} on a {background} background", seed=3000 + i, init_image=base,
            mask=mask, mask_blur=4, strength=1.0)).images[0]
        right_half = (size // 2 + 3 * 4 + 2, size)  # beyond the feathered edge (PIL's blur reaches ~3 sigma)
        a = np.asarray(base, dtype=np.int16)[:, right_half[0]:]
        b = np.asarray(result, dtype=np.int16)[:, right_half[0]:]
        kept.append(int(np.abs(a - b).max()))
        left = result.crop((0, 0, size // 2, size)).resize((size, size), Image.NEAREST)
        placed += judge(left).object_colour == colour
    return {"kept_max_diff": max(kept), "object_colour_right": round(placed / count, 3)}


def interpolation(model, pairs: int, frames: int = 9) -> dict:
    psnrs, unevenness = [], []
    for i in range(pairs):
        (c1, s1, b1), (c2, s2, b2) = judge_prompts(2 * pairs, seed=11)[2 * i: 2 * i + 2]
        prompts = f"a {c1} {s1} on a {b1} background", f"a {c2} {s2} on a {b2} background"
        a, b = (core.generate(model, core.GenerationRequest(prompt=p, seed=4000 + 2 * i + k)).images[0]
                for k, p in enumerate(prompts))
        prepared = core.prepare_interpolation(model, core.InterpolationRequest(
            image_a=a, image_b=b, prompt_a=prompts[0], prompt_b=prompts[1], steps=30))
        psnrs += [psnr(prepared.frame(0.0), a), psnr(prepared.frame(1.0), b)]
        sequence = [np.asarray(prepared.frame(t), dtype=np.float64) for t in np.linspace(0, 1, frames)]
        steps = [np.abs(y - x).mean() for x, y in zip(sequence, sequence[1:])]
        unevenness.append(max(steps) / (sum(steps) / len(steps)))  # 1 = every step changes as much
    return {"psnr_min_db": round(min(psnrs), 2), "psnr_mean_db": round(statistics.mean(psnrs), 2),
            "largest_step_vs_mean": round(max(unevenness), 2)}


def speed(model, repeats: int = 5) -> dict:
    request = core.GenerationRequest(prompt="a red circle on a blue background", seed=1, steps=20)
    core.generate(model, request)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        core.generate(model, request)
        times.append(time.perf_counter() - started)
    return {"seconds_20_steps": round(statistics.median(times), 3), "size": model.native_size,
            "dtype": str(model.dtype).removeprefix("torch."), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: the bundled demo model")
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--inpaint", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--samples", type=Path, default=None, help="save a grid of the first 24 judged images")
    parser.add_argument("--precision", default=None)
    parser.add_argument("--only", default="prompts,inpaint,interpolation,speed")
    args = parser.parse_args()
    from sd_desktop.core.runtime.allocator import keep_freed_cpu_memory

    keep_freed_cpu_memory()  # as the app and the CLI do at start
    model = core.load_model(args.model, device="cpu", dtype=args.precision)
    parts = args.only.split(",")
    report = {"model": model.name, "dtype": str(model.dtype).removeprefix("torch.")}
    if "speed" in parts:
        report["speed"] = speed(model)
        print(json.dumps(report["speed"]), flush=True)
    if "prompts" in parts:
        report["prompts"] = prompt_following(model, args.prompts, args.samples)
        print(json.dumps(report["prompts"]), flush=True)
    if "inpaint" in parts:
        report["inpaint"] = inpainting(model, args.inpaint)
        print(json.dumps(report["inpaint"]), flush=True)
    if "interpolation" in parts:
        report["interpolation"] = interpolation(model, args.pairs)
        print(json.dumps(report["interpolation"]), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
