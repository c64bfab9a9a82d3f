"""What the U-Net is given besides the latents: the prompt's and the negative's contexts and, for SDXL, the
vector `y` of each: the pooled text (1280) and six 256-wide sinusoidal embeddings of the original size (height,
width), the crop's top-left corner and the target size, as SGM's and diffusers' SDXL build it.

The request's `original_size` (default: the size generated) and `crop` (default: none) feed it; SDXL was trained
to draw a smaller or cropped picture when told it was one. An empty negative prompt is zeros on SDXL (A1111's and
diffusers' way), which is what SDXL's trainers showed it for "no prompt".
"""

from __future__ import annotations

import torch

from ..nn.unet import timestep_embedding
from ..text.prompts import Conditioning

SIZE_NUMBERS = 6  # original height and width, crop top and left, target height and width: 256 wide each in SDXL


def size_vector(original: tuple[int, int], crop: tuple[int, int], target: tuple[int, int],
                width: int = 256) -> torch.Tensor:
    """[6 * width]: each of (original height, original width, crop top, crop left, target height, target width)
    as a sinusoidal embedding [cos | sin]."""
    numbers = torch.tensor([*original, *crop, *target], dtype=torch.float32)
    return timestep_embedding(numbers, width).reshape(-1)


def negative(model, uncond: Conditioning, text: str) -> Conditioning:
    """The negative prompt's conditioning: zeros for an empty one on SDXL (zero_empty_negative)."""
    return uncond.zeros() if model.family.zero_empty_negative and text == "" else uncond


def guidance_args(model, cond: Conditioning, uncond: Conditioning, *, batch: int, width: int, height: int,
                  cfg_scale: float, original_size: tuple[int, int] | None = None,
                  crop: tuple[int, int] = (0, 0)) -> dict:
    """The guided denoiser's extra_args for a batch at width x height: cond, uncond, cfg_scale and, for SDXL,
    y and y_uncond. `original_size` (width, height; None: the size itself) and `crop` (left, top) as the request
    gives them."""
    args = dict(cond=cond.context.expand(batch, -1, -1), uncond=uncond.context.expand(batch, -1, -1),
                cfg_scale=float(cfg_scale))
    adm = model.config.unet.adm_in_channels
    if adm:
        original = tuple(original_size or (width, height))
        each, rest = divmod(adm - cond.pooled.shape[-1], SIZE_NUMBERS)  # (SDXL: (2816 - 1280) / 6 = 256)
        if rest or each <= 0:
            raise ValueError(f"the U-Net takes a vector of {adm}, which a pooled text of {cond.pooled.shape[-1]} "
                             "and six size embeddings cannot make")
        sizes = size_vector((original[1], original[0]), (crop[1], crop[0]), (height, width), each)
        for key, part in (("y", cond), ("y_uncond", uncond)):
            vector = torch.cat([part.pooled[0].float(), sizes])
            args[key] = vector.to(model.device, model.dtype).expand(batch, -1)
    return args
