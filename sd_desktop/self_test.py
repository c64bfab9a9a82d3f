"""`sd-desktop --self-test`: does this install work? One small image with every mode, checked, timed.

Loads the bundled demo model (or the model given), then runs headless, at 64x64 and a few steps:
txt2img, img2img, inpainting and one interpolation frame. Each result is checked (its size, finite
latents, not a flat picture; inpainting keeps the pixels outside the mask). Prints one line, with
timings, and returns 0; or one line that says what failed, and returns 1.

It needs no Qt and imports no PySide6, so it runs the same from a pip install, a checkout, a frozen
build or a machine with no display. torch is imported only when the test runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

SIZE = 64
STEPS = 5
PROMPT = "a red circle on a blue background"
PREFIX = "sd-desktop self-test"


class SelfTestFailure(Exception):
    """A check failed; the message says which and why."""


def run_self_test(model: str | Path | None = None, *, device: str = "auto", precision: str = "auto",
                  debug: bool = False, out=None, err=None) -> int:
    """Run every check; print one line to `out` (success) or `err` (failure). Returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    stage = "loading the model"
    try:
        import numpy as np
        import torch
        from PIL import Image, ImageDraw

        from sd_desktop import core
        from sd_desktop.core.pipelines.generate import decode

        started = time.perf_counter()
        loaded = core.load_model(model, device=device, dtype=precision)
        times = {"load": time.perf_counter() - started}

        def check_image(image, what: str, size=(SIZE, SIZE)) -> np.ndarray:
            if image.size != size:
                raise SelfTestFailure(f"{what} is {image.size[0]}x{image.size[1]}, expected {size[0]}x{size[1]}")
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
            if pixels.std() < 0.5:
                raise SelfTestFailure(f"{what} is a flat picture (every pixel {tuple(int(v) for v in pixels[0, 0])})")
            return pixels

        def check_latents(latents, what: str) -> None:
            if not bool(torch.isfinite(latents).all()):
                raise SelfTestFailure(f"{what}'s latents are not finite (NaN or inf)")

        source = _source_image(Image, ImageDraw)
        mask = Image.new("L", (SIZE, SIZE), 0)
        mask.paste(255, (SIZE // 2, 0, SIZE, SIZE))  # repaint the right half, keep the left

        stage = "txt2img"
        started = time.perf_counter()
        result = core.generate(loaded, core.GenerationRequest(prompt=PROMPT, seed=1, steps=STEPS, width=SIZE, height=SIZE))
        times["txt2img"] = time.perf_counter() - started
        check_latents(result.latents, "the txt2img image")
        check_image(result.images[0], "the txt2img image")

        stage = "img2img"
        started = time.perf_counter()
        result = core.generate(loaded, core.GenerationRequest(prompt=PROMPT, seed=2, steps=STEPS, init_image=source,
                                                              strength=0.6))
        times["img2img"] = time.perf_counter() - started
        check_latents(result.latents, "the img2img image")
        check_image(result.images[0], "the img2img image")

        stage = "inpaint"
        started = time.perf_counter()
        blur = 2
        result = core.generate(loaded, core.GenerationRequest(prompt=PROMPT, seed=3, steps=STEPS, init_image=source,
                                                              mask=mask, mask_blur=blur, strength=1.0))
        times["inpaint"] = time.perf_counter() - started
        check_latents(result.latents, "the inpainted image")
        pixels = check_image(result.images[0], "the inpainted image")
        keep = SIZE // 2 - 3 * blur - 2  # columns well outside the feathered mask
        drift = np.abs(pixels[:, :keep] - np.asarray(source, dtype=np.float32)[:, :keep]).max()
        if drift > 2:
            raise SelfTestFailure(f"inpainting changed the pixels outside the mask (by up to {drift:.0f} of 255)")

        stage = "interpolation"
        started = time.perf_counter()
        prepared = core.prepare_interpolation(loaded, core.InterpolationRequest(
            image_a=source, prompt_a=PROMPT, prompt_b="a yellow square on a green background", seed_b=4, steps=STEPS))
        latents = prepared.frame_latents(0.5)
        check_latents(latents, "the interpolation frame")
        with torch.inference_mode():
            frame = decode(loaded, latents)[0]
        times["interpolation"] = time.perf_counter() - started
        check_image(frame, "the interpolation frame")
    except Exception as exc:
        if debug:
            raise
        from sd_desktop.core.errors import one_line

        _say(f"{PREFIX} FAILED at {stage}: {one_line(exc)[0]}", err)
        return 1

    dtype = str(loaded.dtype).removeprefix("torch.")
    steps = ", ".join(f"{name} {times[name]:.1f} s" for name in ("txt2img", "img2img", "inpaint", "interpolation"))
    _say(f"{PREFIX} ok: {steps} (model {loaded.name} loaded in {times['load']:.1f} s; {loaded.device.type}, {dtype}, "
         f"{SIZE}x{SIZE}, {STEPS} steps)", out)
    return 0


def _source_image(Image, ImageDraw):
    """What the demo model knows: a red circle on a blue background (the init image and image A)."""
    image = Image.new("RGB", (SIZE, SIZE), (40, 70, 200))
    ImageDraw.Draw(image).ellipse((14, 14, 50, 50), fill=(220, 40, 40))
    return image


def _say(line: str, stream) -> None:
    """One line, even on a console whose encoding cannot show every character of a path."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(line.encode(encoding, errors="replace").decode(encoding) + "\n")
    stream.flush()
