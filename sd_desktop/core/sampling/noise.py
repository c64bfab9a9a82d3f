"""Seeded noise: the one place a seed becomes noise, for starting points and ancestral steps alike.

Image i of a batch draws from its own `torch.Generator("cpu").manual_seed(seed_i)`, float32 with shape
(1, C, h, w), as diffusers and ComfyUI do: a seed means the same picture on every device, and image i of a
batch equals a single run with its seed. An ancestral sampler's fresh noise comes from the same generators,
after the starting noise.
"""

from __future__ import annotations

import warnings
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

    def brownian(self, like: torch.Tensor, sigmas) -> "BrownianNoise":
        """The SDE samplers' noise: one Brownian tree per image, seeded with that image's seed, as A1111 makes
        them (core.sampling.noise.BrownianNoise)."""
        positive = [float(s) for s in sigmas if float(s) > 0]
        return BrownianNoise(like, min(positive), max(positive), self.seeds)


class BrownianNoise:
    """Noise that is the increment of a Brownian motion over [sigma_next, sigma], normalised: SDE samplers
    that query the same span twice get the same noise, so fewer, larger steps see the same path. One
    torchsde.BrownianTree per image with its seed as entropy, over [sigma_min, sigma_max], on the CPU in
    float32 (as k-diffusion's BrownianTreeNoiseSampler, which A1111 gives each image's seed; on the CPU so a
    seed means the same picture on every device)."""

    def __init__(self, like: torch.Tensor, sigma_min: float, sigma_max: float, seeds: Sequence[int]):
        try:
            import torchsde
        except ImportError:  # a dependency of sd-desktop; a broken install says so
            from ..errors import SDDesktopError

            raise SDDesktopError("the SDE samplers need the package torchsde: pip install torchsde") from None
        self.like = like
        start = torch.zeros(like.shape[1:], dtype=torch.float32)
        self.trees = [torchsde.BrownianTree(torch.tensor(sigma_min), start, torch.tensor(sigma_max), entropy=seed)
                      for seed in seeds]

    def __call__(self, sigma: float, sigma_next: float) -> torch.Tensor:
        low, high = sorted((float(sigma), float(sigma_next)))
        sign = 1.0 if float(sigma) < float(sigma_next) else -1.0
        t0, t1 = torch.tensor(low), torch.tensor(high)
        with warnings.catch_warnings():  # torchsde rounds the tree's ends and warns when a query is a hair outside
            warnings.simplefilter("ignore", UserWarning)
            increments = torch.stack([tree(t0, t1) for tree in self.trees]) * sign
        return (increments / (t1 - t0).abs().sqrt()).to(self.like.device, self.like.dtype)
