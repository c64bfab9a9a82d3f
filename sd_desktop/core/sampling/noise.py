"""Seeded noise: the one place a seed becomes noise, for starting points and ancestral steps alike.

Image i of a batch draws from its own `torch.Generator("cpu").manual_seed(seed_i)`, float32 with shape
(1, C, h, w), as diffusers and ComfyUI do: a seed means the same picture on every device, and image i of a
batch equals a single run with its seed. An ancestral sampler's fresh noise comes from the same generators,
after the starting noise.
"""

from __future__ import annotations

from typing import Sequence

import torch


class SeededNoise:
    """Noise for a batch, one CPU generator per image."""

    def __init__(self, seeds: Sequence[int]):
        self.seeds = [int(s) for s in seeds]
        self.generators = [torch.Generator("cpu").manual_seed(s) for s in self.seeds]

    def draw(self, shape: Sequence[int], device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """[len(seeds), *shape]: each image's float32 noise drawn on the CPU, then moved to device and dtype."""
        noise = torch.cat([torch.randn((1, *shape), generator=g, dtype=torch.float32) for g in self.generators])
        return noise.to(device=device, dtype=dtype)

    def sampler(self, like: torch.Tensor):
        """A sampler's noise_sampler(sigma, sigma_next): noise shaped, placed and typed like `like`."""
        return lambda sigma, sigma_next: self.draw(like.shape[1:], like.device, like.dtype)
