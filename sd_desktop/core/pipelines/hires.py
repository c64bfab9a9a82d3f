"""A1111's Hires fix: a Text to Image run at the request's size, upscaled, then an Image to Image pass at
`hires_scale` times that size, `hires_steps` (0: `steps`) steps at `strength` ("Denoising strength").

- The upscale: "Latent" upscalers resize the sampled latents themselves (bilinear, bicubic or nearest, with or
  without antialiasing, as A1111's latent modes); "Lanczos", "Nearest" and "None" (Lanczos, as A1111) resize the
  decoded pictures; any other name is an upscaler file found by core.upscale.catalogue (Real-ESRGAN, ESRGAN ...),
  run on each decoded picture, then Lanczos to the exact size; the pictures are encoded again.
- The target: int(width * scale) and int(height * scale), down to a multiple of 8 (A1111's latent size).
- The second pass draws its noise afresh from the same seeds at the new size (as A1111 does), and counts its
  steps after the first's in one progress. It samples with `hires_sampler`, `hires_schedule` and `hires_cfg`
  where they are set (A1111's "Hires sampler" and "Hires schedule type", Forge's "Hires CFG Scale"), else with
  the first pass's.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InvalidRequestError
from ..io import images as img
from ..request import GenerationRequest
from ..runtime.vae_ops import encode_pixels
from ..sampling.registry import SAMPLERS, SCHEDULES, sampler_sigmas
from ..sampling.schedules import img2img_sigmas
from ..upscale.catalogue import A1111_NAMES, LATENT_UPSCALERS

PICTURE_RESIZERS = {"Lanczos": Image.LANCZOS, "Nearest": Image.NEAREST, "None": Image.LANCZOS}
MAX_SIDE = 8192


def hires_size(request: GenerationRequest) -> tuple[int, int]:
    return (max(8, int(request.width * request.hires_scale) // 8 * 8),
            max(8, int(request.height * request.hires_scale) // 8 * 8))


def check_hires(request: GenerationRequest) -> None:
    """The hires fields, one-line InvalidRequestError (request.mode is known, the size may not be yet)."""
    if not request.hires_fix:
        return
    if request.init_image is not None:
        raise InvalidRequestError("hires fix works in Text to Image only (an init image was given): use Image to "
                                  "Image at the larger size instead")
    if not 1.0 <= float(request.hires_scale) <= 4.0:
        raise InvalidRequestError(f"hires_scale must be from 1 to 4 (got {request.hires_scale})")
    if not isinstance(request.hires_steps, int) or not 0 <= request.hires_steps <= 1000:
        raise InvalidRequestError(f"hires_steps must be from 0 (the same as steps) to 1000 (got {request.hires_steps})")
    if not str(request.hires_upscaler).strip():
        raise InvalidRequestError("hires_upscaler is empty: choose Latent, Lanczos or an upscaler's name")
    if request.hires_sampler is not None and request.hires_sampler not in SAMPLERS:
        raise InvalidRequestError(f"hires_sampler {request.hires_sampler!r} is unknown; choose one of "
                                  f"{', '.join(SAMPLERS)}, or None for the first pass's")
    if request.hires_schedule is not None and request.hires_schedule not in SCHEDULES:
        raise InvalidRequestError(f"hires_schedule {request.hires_schedule!r} is unknown; choose one of "
                                  f"{', '.join(SCHEDULES)}, or None for the first pass's")
    cfg = request.hires_cfg
    if cfg is not None and (isinstance(cfg, bool) or not isinstance(cfg, (int, float)) or not math.isfinite(cfg)
                            or cfg < 0):
        raise InvalidRequestError(f"hires_cfg must be 0 or more, or None for the first pass's CFG scale (got {cfg})")


def second_pass_total(request: GenerationRequest) -> int:
    """How many steps the second pass samples (img2img keeps the schedule's last `strength` part)."""
    second = second_pass_request(request)
    sigmas = sampler_sigmas(second.sampler, second.steps, second.schedule)
    sigmas = img2img_sigmas(sigmas, float(second.strength), SAMPLERS[second.sampler].img2img_convention)
    return len(sigmas) - 1


def resolve_upscaler(request: GenerationRequest, upscaler_dirs: Iterable = ()) -> str | Path:
    """What the hires fix upscales with, found before any sampling (a missing upscaler fails at once, in one
    line): one of its own (any case), else an upscaler file by name or A1111's name, in `upscaler_dirs` (searched
    themselves and as models folders), the bundled and the imported ones."""
    from ..upscale.catalogue import find_upscaler, hires_builtin

    width, height = hires_size(request)
    if max(width, height) > MAX_SIDE:
        raise InvalidRequestError(f"hires fix to {width}×{height} is more than {MAX_SIDE} pixels a side: "
                                  "choose a smaller scale or size")
    builtin = hires_builtin(request.hires_upscaler)
    if builtin is not None:
        return builtin
    dirs = list(upscaler_dirs)
    return find_upscaler(A1111_NAMES.get(request.hires_upscaler, request.hires_upscaler), dirs, dirs)


def upscaled_latents(model, request: GenerationRequest, latents: torch.Tensor, pictures: list[Image.Image] | None,
                     upscaler: str | Path, stop=None) -> torch.Tensor:
    """The first pass's result at the hires size (resolve_upscaler's `upscaler`), as latents the second pass
    starts from."""
    width, height = hires_size(request)
    name = upscaler
    if name in LATENT_UPSCALERS:
        mode, antialias = LATENT_UPSCALERS[name]
        size = (height // 8, width // 8)
        return F.interpolate(latents.float(), size=size, mode=mode, antialias=antialias).to(latents.dtype)
    if name in PICTURE_RESIZERS:
        resized = [picture.resize((width, height), PICTURE_RESIZERS[name]) for picture in pictures]
    else:
        from ..upscale.files import load_upscaler
        from ..upscale.run import upscale_image

        upscaler = load_upscaler(name)
        dtype = torch.float16 if model.device.type == "cuda" else torch.float32
        resized = []
        for picture in pictures:
            big = upscale_image(upscaler, picture, width / picture.width, should_stop=stop, device=model.device,
                                dtype=dtype)
            resized.append(big if big.size == (width, height) else big.resize((width, height), Image.LANCZOS))
    return torch.cat([encode_pixels(model, img.to_tensor(picture), request.tiled_vae) for picture in resized])


def second_pass_request(request: GenerationRequest) -> GenerationRequest:
    width, height = hires_size(request)
    return dataclasses.replace(request, width=width, height=height, steps=request.hires_steps or request.steps,
                               sampler=request.hires_sampler or request.sampler,
                               schedule=request.hires_schedule or request.schedule,
                               cfg_scale=request.cfg_scale if request.hires_cfg is None else request.hires_cfg,
                               hires_fix=False)
