"""Morphing one image into another: invert both to noise with deterministic DDIM, then sample from
slerp(noise_a, noise_b, t) under the linear blend of the two prompts' conditionings.

DDIM with eta 0 is Euler's method on the probability-flow ODE in (x / sqrt(alpha_bar), sigma)
coordinates, so inverting it is the same Euler steps taken upwards through the same sigmas.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from PIL import Image

from . import images as img
from .allocator import release_cpu_memory
from .denoisers import GuidedDenoiser
from .errors import Cancelled, InvalidRequestError
from .pipeline import StepInfo, decode, draw_noise, encode_image, seed_generators
from .prompts import encode_prompts
from .request import InterpolationRequest
from .samplers import SAMPLERS, initial_x, sampler_sigmas, to_unet_latents


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation; falls back to linear when a and b are (nearly) parallel."""
    a_flat, b_flat = a.flatten().double(), b.flatten().double()
    cos = torch.dot(a_flat, b_flat) / (a_flat.norm() * b_flat.norm())
    if cos.abs() > 0.9995:
        return (1 - t) * a + t * b
    theta = torch.arccos(cos.clamp(-1, 1))
    sin = torch.sin(theta)
    wa, wb = torch.sin((1 - t) * theta) / sin, torch.sin(t * theta) / sin
    return (wa.item() * a + wb.item() * b).to(a.dtype)


@dataclasses.dataclass
class PreparedInterpolation:
    model: object
    noise_a: torch.Tensor  # [1, 4, h, w] at sigmas[0], in the sampler's coordinates
    noise_b: torch.Tensor
    cond_a: torch.Tensor
    cond_b: torch.Tensor
    uncond: torch.Tensor
    sigmas: torch.Tensor
    cfg_scale: float
    width: int
    height: int
    should_stop: Callable[[], bool] = lambda: False
    cache: dict = dataclasses.field(default_factory=dict)

    def frame(self, t: float, on_step: Callable[[StepInfo], None] | None = None) -> Image.Image:
        """The picture at t in [0, 1] (0 = image A, 1 = image B). Frames are cached by t."""
        t = float(t)
        if not 0.0 <= t <= 1.0:
            raise InvalidRequestError(f"t must be between 0 and 1 (got {t})")
        key = round(t, 6)
        if key not in self.cache:
            self.cache[key] = self._sample(t, on_step)
        return self.cache[key].copy()

    def _sample(self, t: float, on_step) -> Image.Image:
        latents = self.frame_latents(t, on_step)
        with torch.inference_mode():
            return decode(self.model, latents, self.should_stop)[0]

    def frame_latents(self, t: float, on_step: Callable[[StepInfo], None] | None = None) -> torch.Tensor:
        """The latents (as the U-Net sees them) of the frame at t, before the VAE decode."""
        cond = (1 - t) * self.cond_a + t * self.cond_b
        denoiser = GuidedDenoiser(self.model, cond, self.uncond, self.cfg_scale, quantize_timesteps=True)
        total = len(self.sigmas) - 1

        def callback(state):
            if on_step is not None:
                on_step(StepInfo(step=state["i"] + 1, total=total, preview=None, sigma=float(state["sigma"])))

        with torch.inference_mode():
            x = SAMPLERS["ddim"].fn(denoiser, slerp(self.noise_a, self.noise_b, t), self.sigmas,
                                    callback=callback, should_stop=self.should_stop, eta=0.0)
        return to_unet_latents(x, self.sigmas[-1])


def prepare_interpolation(model, request: InterpolationRequest, on_step: Callable[[StepInfo], None] | None = None,
                          should_stop: Callable[[], bool] | None = None) -> PreparedInterpolation:
    """Invert both images (or take a (prompt, seed) generation's noise as it is) and keep both."""
    stop = should_stop or (lambda: False)
    if request.steps < 1:
        raise InvalidRequestError(f"steps must be at least 1 (got {request.steps})")
    if request.invert_iterations < 0:
        raise InvalidRequestError(f"invert_iterations must be 0 or more (got {request.invert_iterations})")
    for side in ("a", "b"):
        if getattr(request, f"image_{side}") is None and getattr(request, f"seed_{side}") is None:
            raise InvalidRequestError(f"image_{side}: give an image, or a prompt and seed_{side} for a generation")
    images = {side: img.load_image(getattr(request, f"image_{side}"), f"image_{side}")
              for side in ("a", "b") if getattr(request, f"image_{side}") is not None}
    first = images.get("a") or images.get("b")
    width = request.width or (first.width if first else model.native_size)
    height = request.height or (first.height if first else model.native_size)
    width, height = max(8, round(width / 8) * 8), max(8, round(height / 8) * 8)

    sigmas = sampler_sigmas("ddim", request.steps, "normal").to(model.device)
    try:
        with torch.inference_mode():
            cond_a, cond_b, uncond = encode_prompts(model, [request.prompt_a, request.prompt_b, ""])
            noises = {}
            done = [0]
            total = len(images) * (len(sigmas) - 1)

            def progress(_state):
                done[0] += 1
                if on_step is not None:
                    on_step(StepInfo(step=done[0], total=max(total, 1), preview=None))

            for side, cond in (("a", cond_a), ("b", cond_b)):
                if side in images:
                    pixels = img.to_tensor(images[side].resize((width, height), Image.LANCZOS))
                    latents = encode_image(model, pixels)
                    # inversion without guidance stays exact
                    denoiser = GuidedDenoiser(model, cond, uncond, 1.0, quantize_timesteps=True)
                    noises[side] = ddim_invert(denoiser, latents, sigmas, progress, stop, request.invert_iterations)
                else:
                    seed = getattr(request, f"seed_{side}")
                    noise = draw_noise(seed_generators([seed]), (4, height // 8, width // 8), model.device)
                    noises[side] = initial_x("ddim", noise, sigmas)  # exactly where a DDIM generation starts
    finally:
        release_cpu_memory()
    return PreparedInterpolation(
        model=model, noise_a=noises["a"], noise_b=noises["b"], cond_a=cond_a, cond_b=cond_b, uncond=uncond,
        sigmas=sigmas, cfg_scale=float(request.cfg_scale), width=width, height=height, should_stop=stop,
    )


def ddim_invert(denoiser, latents: torch.Tensor, sigmas: torch.Tensor, callback, should_stop,
                iterations: int = 0) -> torch.Tensor:
    """Clean latents (as the U-Net sees them) -> the noise DDIM would turn back into them.

    Walks the sampler's sigmas upwards. In these coordinates a DDIM step down is
    x = x_next + (sigma - sigma_next) * eps(x_next, sigma_next), so the exact inverse needs eps at the
    point being solved for. Plain inversion uses eps at the current point instead; up to `iterations`
    fixed-point steps then solve the implicit equation (each one more U-Net call per step), stopping
    early once a step moves the point by less than 0.1%. On the demo model (8 frame(0)/frame(1) ends,
    30 steps) the worst PSNR was 15 dB plain, 18-23 dB with 2 iterations, 31 dB with 4.
    """
    ascending = sigmas.flip(0)
    x = latents * (ascending[0] ** 2 + 1).sqrt()  # VP latents at the last sigma -> sampler coordinates
    ones = x.new_ones(x.shape[0])
    for i in range(len(ascending) - 1):
        if should_stop():
            raise Cancelled("interpolation cancelled")
        sigma, sigma_next = ascending[i], ascending[i + 1]
        eps = (x - denoiser(x, sigma * ones)) / sigma
        x_next = x + (sigma_next - sigma) * eps
        for _ in range(iterations):
            if should_stop():
                raise Cancelled("interpolation cancelled")
            eps = (x_next - denoiser(x_next, sigma_next * ones)) / sigma_next
            previous, x_next = x_next, x + (sigma_next - sigma) * eps
            if (x_next - previous).norm() <= 1e-3 * x_next.norm():
                break
        x = x_next
        callback({"i": i})
    return x
