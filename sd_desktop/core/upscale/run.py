"""Upscaling a picture with an Upscaler, in tiles so that a large image fits in memory: each tile is run with
`context` pixels of the picture around it and only its own part of the result kept. These networks have no
normalisation over the image (unlike the VAE, whose tiles are blended), so with context wider than a network's
reach a tiled result equals the whole one: no seam (the compact models reach 18 pixels; RRDBNet further, but
faintly). Progress per tile; a cancel between tiles and inside the network (core.interrupt). A scale other than
the model's: the model as many times as it takes to reach it, then Lanczos to the exact size (as A1111 does)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..errors import Cancelled, InvalidRequestError
from ..interrupt import check_stop, stop_points
from .files import Upscaler

TILE, CONTEXT = 192, 32  # pixels of the input
PREPAD = 10  # the edges repeated outwards before the network and cut off after (as realesrgan-ncnn-vulkan does):
             # the convolutions' zero padding would otherwise darken a frame around the picture
MAX_SIDE = 16384


def upscale_image(upscaler: Upscaler, image: Image.Image, scale: float | None = None, *, tile: int = TILE,
                  context: int = CONTEXT, on_progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> Image.Image:
    """`image` `scale` times larger (default: the model's own scale). on_progress(done, total) counts tiles over
    every pass; should_stop() True raises core.Cancelled."""
    scale = float(scale or upscaler.scale)
    if not 1 <= scale <= 16:
        raise InvalidRequestError(f"upscale factor must be from 1 to 16 (got {scale:g})")
    target = (round(image.width * scale), round(image.height * scale))
    if max(target) > MAX_SIDE:
        raise InvalidRequestError(f"{image.width}×{image.height} ×{scale:g} would be {target[0]}×{target[1]}: "
                                  f"more than {MAX_SIDE} pixels a side; choose a smaller factor")
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    rgb = image.convert("RGB")
    # the model at least once (an x1 model, or x1 asked of a larger one, still runs), as often as the scale needs
    passes = 1 if upscaler.scale == 1 else max(1, math.ceil(math.log(scale, upscaler.scale) - 1e-9))
    widest = max(image.size) * upscaler.scale ** passes
    if widest > MAX_SIDE:
        raise InvalidRequestError(f"×{scale:g} with a ×{upscaler.scale} model goes through {widest} pixels a side "
                                  f"(more than {MAX_SIDE}): choose a model of that scale or a smaller factor")
    tile, context = max(4, tile // 4 * 4), context // 4 * 4  # (pieces divisible by an RRDBNet x2/x1's unshuffle)
    sizes = [(_up4(rgb.width * upscaler.scale ** n + 2 * PREPAD), _up4(rgb.height * upscaler.scale ** n + 2 * PREPAD))
             for n in range(passes)]
    totals = [math.ceil(w / tile) * math.ceil(h / tile) for w, h in sizes]
    done_before = 0
    net = upscaler.net.to(device=device, dtype=dtype)
    stop = should_stop or (lambda: False)
    for index in range(passes):
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        height, width = x.shape[-2:]
        x = torch.nn.functional.pad(x, (PREPAD, PREPAD + _up4(width + 2 * PREPAD) - width - 2 * PREPAD,
                                        PREPAD, PREPAD + _up4(height + 2 * PREPAD) - height - 2 * PREPAD),
                                    mode="replicate")  # the edges repeated outwards, to a multiple of 4

        def run(piece: torch.Tensor) -> torch.Tensor:
            if stop():
                raise Cancelled("upscaling cancelled")
            return net(piece.to(device=device, dtype=dtype)).float().cpu()

        def progress(done: int, _total: int, before=done_before) -> None:
            if on_progress is not None:
                on_progress(before + done, sum(totals))

        with torch.inference_mode(), stop_points(stop, "upscaling cancelled"):
            out = tiled(run, x, tile, context, upscaler.scale, progress)
            check_stop()
        cut = PREPAD * upscaler.scale
        out = out[..., cut:cut + height * upscaler.scale, cut:cut + width * upscaler.scale]
        done_before += totals[index]
        pixels = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
        rgb = Image.fromarray(pixels)
    if rgb.size != target:
        rgb = rgb.resize(target, Image.LANCZOS)
    if alpha is not None:
        rgb.putalpha(alpha.resize(target, Image.LANCZOS))
    return rgb


def _up4(length: int) -> int:
    return length + -length % 4


def tiled(fn, x: torch.Tensor, tile: int, context: int, scale: int, on_tile) -> torch.Tensor:
    """fn (a tile of side s -> side s * scale) over x [B, C, H, W] in tiles of `tile`, each run with up to `context`
    pixels around it and cut back to its own part."""
    height, width = x.shape[-2:]
    out = torch.empty((x.shape[0], 3, height * scale, width * scale))
    rows, cols = range(0, height, tile), range(0, width, tile)
    done = 0
    for top in rows:
        for left in cols:
            bottom, right = min(top + tile, height), min(left + tile, width)
            top0, left0 = max(top - context, 0), max(left - context, 0)
            piece = fn(x[..., top0:min(bottom + context, height), left0:min(right + context, width)])
            out[..., top * scale:bottom * scale, left * scale:right * scale] = piece[
                ..., (top - top0) * scale:(bottom - top0) * scale, (left - left0) * scale:(right - left0) * scale]
            done += 1
            on_tile(done, len(rows) * len(cols))
    return out


def carry_parameters(result: Image.Image, chunks: dict[str, str], scale: float, upscaler_name: str) -> Image.Image:
    """The source's parameters on the upscaled image (its text chunks, as read by core.io.metadata.text_chunks;
    our JSON without the source's batch), and what was done, as A1111 writes it: "postprocessing" = "Postprocess upscale by: 4, Postprocess upscaler:
    NAME" (after any earlier postprocessing)."""
    from ..io.outputs import CARRIED_KEYS, POSTPROCESSING_KEY

    import json

    from ..io.metadata import JSON_KEY

    for key in CARRIED_KEYS:
        if chunks.get(key):
            result.info[key] = chunks[key]
    try:  # our JSON without its "batch": the upscaled picture is a new image, not one of its source's batch
        record = json.loads(result.info.get(JSON_KEY) or "null")
    except ValueError:
        record = None
    if isinstance(record, dict) and "batch" in record:
        del record["batch"]
        result.info[JSON_KEY] = json.dumps(record, ensure_ascii=True, default=str)
    done = f"Postprocess upscale by: {scale:g}, Postprocess upscaler: {upscaler_name}"
    earlier = chunks.get(POSTPROCESSING_KEY)
    result.info[POSTPROCESSING_KEY] = f"{earlier}, {done}" if earlier else done
    return result
