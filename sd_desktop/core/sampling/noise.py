"""Seeded noise: the one place a seed becomes noise, for starting points and ancestral steps alike.

Image i of a batch draws from its own generator seeded with seed_i, float32 with shape (1, C, h, w): image
i of a batch equals a single run with its seed, and an ancestral sampler's fresh noise comes from the same
generator, after the starting noise (as A1111 draws it). Two sources, the request's `rng`:

- "cpu": `torch.Generator("cpu").manual_seed(seed_i)`, as diffusers, ComfyUI and A1111's "RNG: CPU" draw it;
  the same picture on every device.
- "nv": what `torch.randn` gives on an NVIDIA GPU, computed here on any device (PhiloxNoise): A1111's
  default on CUDA cards ("RNG: GPU", or no RNG key) and its "RNG: NV". A seed from such an infotext gives
  its starting noise here.

`variation_seeds`, `variation_strength` (A1111's "Variation seed" and its strength): image i's starting noise is
slerped towards the noise of variation_seeds[i], by A1111's slerp (a_slerp), so that strength 1 is that seed's noise.

`resize_from` (A1111's "Seed resize from", in latent rows and columns): the starting noise is the noise the seeds
give at that size, laid over the middle of their noise at this size (cropped at its middle where it is larger),
so a seed keeps its composition at another size (A1111's modules/rng.py ImageRNG.first). The generators go on from
the full-size draw, as without it. None, or this size: off.

`ensd` (A1111's "Eta noise seed delta", its infotext's "ENSD"): after the starting noise, each image's generator
starts again from seed_i + ensd, so an ancestral sampler's fresh noise differs while the starting noise does not
(A1111's modules/rng.py ImageRNG.first). 0: one generator throughout.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from ..request import RNG_SOURCES
from ..runtime.devices import to_device


class PhiloxNoise:
    """torch.randn of a CUDA generator seeded with `seed`, on the CPU: NVIDIA's Philox 4x32-10 counter-based
    generator and the Box-Muller transform, as A1111's modules/rng_philox.py describes them.

    Value k of draw number d (each randn call is one draw, whatever its size) comes from the counter
    (d, 0, k, 0) and the key (seed's low and high 32 bits) after ten Philox rounds; of the four 32-bit
    words out, the first two make one normal number by Box-Muller (its sine half), in float64 as A1111's
    numpy code computes it (CUDA's float32 arithmetic differs by a few units in the last place). The first
    draw is a CUDA generator's first torch.randn; later draws follow A1111's NV, one counter step each."""

    ROUND_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
    KEY_INCREMENTS = (0x9E3779B9, 0xBB67AE85)
    TWO_POW_32_INV = float(np.float32(2.3283064e-10))  # float32 constants, as CUDA's curand uses them
    TWO_POW_32_INV_2PI = float(np.float32(2.3283064e-10 * 6.2831855))

    def __init__(self, seed: int):
        self.seed = int(seed) & 0xFFFF_FFFF_FFFF_FFFF
        self.offset = 0

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        n = int(np.prod(shape, dtype=np.int64))
        if n >= 2**32:
            raise ValueError("PhiloxNoise draws fewer than 2^32 values at once")
        mask = np.uint64(0xFFFF_FFFF)
        c0 = np.full(n, self.offset, dtype=np.uint64)
        c1 = np.zeros(n, dtype=np.uint64)
        c2 = np.arange(n, dtype=np.uint64)
        c3 = np.zeros(n, dtype=np.uint64)
        k0, k1 = self.seed & 0xFFFF_FFFF, self.seed >> 32
        self.offset += 1
        m0, m1 = (np.uint64(m) for m in self.ROUND_MULTIPLIERS)
        for round_index in range(10):
            if round_index:
                k0 = (k0 + self.KEY_INCREMENTS[0]) & 0xFFFF_FFFF
                k1 = (k1 + self.KEY_INCREMENTS[1]) & 0xFFFF_FFFF
            p0, p2 = c0 * m0, c2 * m1  # products of two 32-bit words: exact in 64 bits
            c0, c1, c2, c3 = ((p2 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p2 & mask,
                              (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & mask)
        u = c0.astype(np.float64) * self.TWO_POW_32_INV + self.TWO_POW_32_INV / 2
        v = c1.astype(np.float64) * self.TWO_POW_32_INV_2PI + self.TWO_POW_32_INV_2PI / 2
        normal = np.sqrt(-2.0 * np.log(u)) * np.sin(v)
        return torch.from_numpy(normal.astype(np.float32).reshape(tuple(shape)))


def a_slerp(t: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's slerp of one image's noise [C, H, W] towards another's by t (its processing.slerp): the angle is
    taken over the rows (dim 1) for each channel and column, and nearly parallel noises are mixed linearly with
    the weights the other way round, as A1111 does (what its variation seeds give)."""
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * t + high * (1 - t)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - t) * omega) / so).unsqueeze(1) * low + (torch.sin(t * omega) / so).unsqueeze(1) * high


def laid_over(small: torch.Tensor, large: torch.Tensor) -> torch.Tensor:
    """`small` [..., h, w] over the middle of a copy of `large` [..., H, W], as A1111 lays a seed's noise of another
    size: centred where it is smaller; where it is larger, its middle, offset by (h - H) // 2 and cut to h + 2 *
    that offset (one row or column short of H when the difference is odd, that one kept from `large`)."""
    out = large.clone()
    spans = []
    for have, want in ((small.shape[-2], large.shape[-2]), (small.shape[-1], large.shape[-1])):
        offset = (want - have) // 2
        length = have if offset >= 0 else have + 2 * offset
        spans.append((max(offset, 0), max(-offset, 0), length))
    (ty, sy, h), (tx, sx, w) = spans
    out[..., ty:ty + h, tx:tx + w] = small[..., sy:sy + h, sx:sx + w]
    return out


class SeededNoise:
    """Noise for a batch, one generator per image (`rng`: one of RNG_SOURCES)."""

    def __init__(self, seeds: Sequence[int], rng: str = "cpu", ensd: int = 0,
                 variation_seeds: Sequence[int] | None = None, variation_strength: float = 0.0,
                 resize_from: tuple[int, int] | None = None):
        if rng not in RNG_SOURCES:
            raise ValueError(f"unknown noise source {rng!r}; use one of {', '.join(RNG_SOURCES)}")
        self.seeds = [int(s) for s in seeds]
        self.rng = rng
        self.ensd = int(ensd)
        self.variation_strength = float(variation_strength)
        self.variation_seeds = [int(s) for s in variation_seeds] if self.variation_strength else None
        if self.variation_seeds is not None and len(self.variation_seeds) != len(self.seeds):
            raise ValueError("one variation seed per image")
        self.resize_from = None if resize_from is None else (int(resize_from[0]), int(resize_from[1]))
        self.generators = self._generators(self.seeds)
        self._first = True

    def _generators(self, seeds: Sequence[int]) -> list:
        if self.rng == "nv":
            return [PhiloxNoise(s) for s in seeds]
        return [torch.Generator("cpu").manual_seed(s) for s in seeds]

    def draw(self, shape: Sequence[int], device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """[len(seeds), *shape]: each image's float32 noise drawn on the CPU, then moved to device and dtype."""
        shape = tuple(int(n) for n in shape)
        noise = torch.stack([self._randn(g, shape) for g in self.generators])
        if self._first:
            start = shape if self.resize_from is None else (shape[0], *self.resize_from)
            own = noise if start == shape else torch.stack([self._randn(g, start)  # (a generator of its own each,
                                                            for g in self._generators(self.seeds)])  # as A1111's randn)
            if self.variation_seeds is not None:
                towards = torch.stack([self._randn(g, start) for g in self._generators(self.variation_seeds)])
                own = torch.stack([a_slerp(self.variation_strength, a, b) for a, b in zip(own, towards)])
            noise = own if start == shape else laid_over(own, noise)
            if self.ensd:  # the starting noise drawn: the rest from seed + ENSD (A1111)
                self.generators = self._generators([seed + self.ensd for seed in self.seeds])
        self._first = False
        return to_device(noise, device or "cpu", dtype)

    def _randn(self, generator, shape: tuple[int, ...]) -> torch.Tensor:
        if self.rng == "nv":
            return generator.randn(shape)
        return torch.randn(shape, generator=generator, dtype=torch.float32)

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
        return to_device(increments / (t1 - t0).abs().sqrt(), self.like.device, self.like.dtype)
