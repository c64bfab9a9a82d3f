"""Everything that affects an image lives in one frozen request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None  # None: a random seed, reported in the result
    steps: int = 20
    cfg_scale: float = 7.5
    sampler: str = "dpmpp_2m"
    schedule: str = "karras"  # "normal" or "karras" for the sigma-based samplers
    width: int | None = None  # None: the model's native size
    height: int | None = None
    batch_size: int = 1
    init_image: Any = None  # PIL image, uint8 numpy array or path: img2img / inpainting source
    mask: Any = None  # white (255) = repaint, black = keep
    strength: float = 0.75
    mask_blur: int = 4
    inpaint_full_res: bool = False
    eta: float = 0.0  # DDIM's eta; 0 = deterministic
    tiled_vae: bool | None = None  # None: tiles above 1024x1024 pixels (see core.vae_ops)


@dataclass(frozen=True)
class InterpolationRequest:
    image_a: Any = None
    image_b: Any = None
    prompt_a: str = ""
    prompt_b: str = ""
    steps: int = 30
    seed_a: int | None = None  # (prompt, seed) given for an image that has no pixels: skip its inversion
    seed_b: int | None = None
    cfg_scale: float = 1.0
    invert_iterations: int = 4  # at most this many fixed-point refinements per inversion step (0: plain DDIM inversion)
    width: int | None = None
    height: int | None = None
