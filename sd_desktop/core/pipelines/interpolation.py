"""Morphing one image into another: invert both to noise with deterministic DDIM, then sample from
slerp(noise_a, noise_b, t) under the linear blend of the two prompts' conditionings.

DDIM with eta 0 is Euler's method on the probability-flow ODE in (x / sqrt(alpha_bar), sigma)
coordinates, so inverting it is the same Euler steps taken upwards through the same sigmas.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..errors import InvalidRequestError
from ..io import images as img
from ..request import NOISE_SCHEDULES, PREDICTIONS, InterpolationRequest
from ..runtime.allocator import release_cpu_memory
from ..runtime.vae_ops import encode_pixels
from ..sampling.denoisers import CancellableDenoiser, GuidedDenoiser
from ..sampling.noise import SeededNoise
from ..sampling.registry import SAMPLERS, initial_x, sampler_sigmas, to_unet_latents
from ..sampling.schedules import training_schedule
from ..lora.apply import set_loras
from ..lora.tags import strip_tags
from ..text.prompts import Conditioning, check_emphasis, encode_prompts
from .conditioning import guidance_args, negative
from .generate import StepInfo, check_clip_skip, check_finite, decode, round_size, zero_snr_of

SAMPLER = "ddim"  # deterministic with eta 0, and invertible


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation; falls back to linear when a and b are (nearly) parallel. The angle is
    computed on the CPU in numpy's float64 (devices such as MPS have no float64); the blend in a's dtype."""
    a_flat = a.detach().flatten().float().cpu().numpy().astype(np.float64)
    b_flat = b.detach().flatten().float().cpu().numpy().astype(np.float64)
    cos = float(np.dot(a_flat, b_flat) / (np.linalg.norm(a_flat) * np.linalg.norm(b_flat)))
    if abs(cos) > 0.9995:
        return (1 - t) * a + t * b
    theta = math.acos(max(-1.0, min(1.0, cos)))
    wa, wb = math.sin((1 - t) * theta) / math.sin(theta), math.sin(t * theta) / math.sin(theta)
    return wa * a + wb * b


@dataclasses.dataclass
class PreparedInterpolation:
    model: object
    noise_a: torch.Tensor  # [1, 4, h, w] at sigmas[0], in the sampler's coordinates
    noise_b: torch.Tensor
    cond_a: Conditioning
    cond_b: Conditioning
    uncond: Conditioning
    sigmas: torch.Tensor  # on the CPU
    cfg_scale: float
    width: int
    height: int
    should_stop: Callable[[], bool] = lambda: False
    prediction: str = "eps"  # the U-Net's, resolved (the request's override, else the model's)
    zero_snr: bool = False  # sampled over the zero-terminal-SNR schedule (resolved as the prediction)
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
        with training_schedule(self.zero_snr):  # (the denoiser's timestep table)
            guided = GuidedDenoiser(self.model.unet, quantize_timesteps=SAMPLERS[SAMPLER].quantize_timesteps,
                                    prediction=self.prediction)
        guided.prepare(self.sigmas)
        denoiser = CancellableDenoiser(guided, lambda: self.should_stop(), "interpolation cancelled")
        a, b = self.cond_a, self.cond_b
        mixed = Conditioning((1 - t) * a.context + t * b.context,
                             None if a.pooled is None else (1 - t) * a.pooled + t * b.pooled)
        extra_args = guidance_args(self.model, mixed, self.uncond, batch=1, width=self.width, height=self.height,
                                   cfg_scale=self.cfg_scale)
        total = len(self.sigmas) - 1

        def callback(state):
            if on_step is not None:
                on_step(StepInfo(step=state["i"] + 1, total=total, preview=None, sigma=float(state["sigma"])))

        with torch.inference_mode():
            x = SAMPLERS[SAMPLER].run(denoiser, slerp(self.noise_a, self.noise_b, t), self.sigmas,
                                      extra_args=extra_args, callback=callback, eta=0.0)
        latents = to_unet_latents(x, self.sigmas[-1])
        check_finite(self.model, latents, "the interpolation frame's latents")
        return latents


def prepare_interpolation(model, request: InterpolationRequest, on_step: Callable[[StepInfo], None] | None = None,
                          should_stop: Callable[[], bool] | None = None) -> PreparedInterpolation:
    """Invert both images (or take a (prompt, seed) generation's noise as it is) and keep both."""
    stop = should_stop or (lambda: False)
    if request.steps < 1:
        raise InvalidRequestError(f"steps must be at least 1 (got {request.steps})")
    if request.invert_iterations < 0:
        raise InvalidRequestError(f"invert_iterations must be 0 or more (got {request.invert_iterations})")
    check_emphasis(request.emphasis)
    check_clip_skip(model, request.clip_skip)
    if request.prediction not in PREDICTIONS:
        raise InvalidRequestError(f"prediction {request.prediction!r} is unknown; choose {', '.join(PREDICTIONS)}")
    prediction = model.config.prediction if request.prediction == "auto" else request.prediction
    if request.noise_schedule not in NOISE_SCHEDULES:
        raise InvalidRequestError(f"noise_schedule {request.noise_schedule!r} is unknown; "
                                  f"choose {', '.join(NOISE_SCHEDULES)}")
    zero_snr = zero_snr_of(model, request)
    for side in ("a", "b"):
        if getattr(request, f"image_{side}") is None and getattr(request, f"seed_{side}") is None:
            raise InvalidRequestError(f"image_{side}: give an image, or a prompt and seed_{side} for a generation")
    images = {side: img.load_image(getattr(request, f"image_{side}"), f"image_{side}")
              for side in ("a", "b") if getattr(request, f"image_{side}") is not None}
    first = images.get("a") or images.get("b")
    width = request.width or (first.width if first else model.native_size)
    height = request.height or (first.height if first else model.native_size)
    width, height = round_size(width, height)
    latent_shape = (model.config.vae.latent_channels, height // 8, width // 8)

    with training_schedule(zero_snr):
        sigmas = sampler_sigmas(SAMPLER, request.steps, "normal")  # stays on the CPU
    set_loras(model, ())  # interpolation runs on the bare model
    try:
        with torch.inference_mode(), training_schedule(zero_snr):
            prompts = [strip_tags(request.prompt_a), strip_tags(request.prompt_b), ""]
            cond_a, cond_b, uncond = encode_prompts(model, prompts, request.emphasis, request.clip_skip)
            uncond = negative(model, uncond, "")
            noises = {}
            done = [0]
            total = len(images) * (len(sigmas) - 1)

            def progress(_state):
                done[0] += 1
                if on_step is not None:
                    on_step(StepInfo(step=done[0], total=max(total, 1), preview=None))

            guided = GuidedDenoiser(model.unet, quantize_timesteps=SAMPLERS[SAMPLER].quantize_timesteps,
                                    prediction=prediction)
            guided.prepare(sigmas)
            denoiser = CancellableDenoiser(guided, stop, "interpolation cancelled")
            for side, cond in (("a", cond_a), ("b", cond_b)):
                if side in images:
                    pixels = img.to_tensor(images[side].resize((width, height), Image.LANCZOS))
                    latents = encode_pixels(model, pixels)
                    # inversion without guidance stays exact
                    extra_args = guidance_args(model, cond, uncond, batch=1, width=width, height=height, cfg_scale=1.0)
                    noises[side] = ddim_invert(denoiser, latents, sigmas, progress, request.invert_iterations,
                                               extra_args)
                else:
                    noise = SeededNoise([getattr(request, f"seed_{side}")]).draw(latent_shape, model.device)
                    noises[side] = initial_x(SAMPLER, noise, sigmas)  # exactly where a DDIM generation starts
    finally:
        release_cpu_memory()
    return PreparedInterpolation(
        model=model, noise_a=noises["a"], noise_b=noises["b"], cond_a=cond_a, cond_b=cond_b, uncond=uncond,
        sigmas=sigmas, cfg_scale=float(request.cfg_scale), width=width, height=height, should_stop=stop,
        prediction=prediction, zero_snr=zero_snr,
    )


def ddim_invert(denoiser, latents: torch.Tensor, sigmas: torch.Tensor, callback, iterations: int = 0,
                extra_args: dict | None = None) -> torch.Tensor:
    """Clean latents (as the U-Net sees them) -> the noise DDIM would turn back into them.

    Walks the sampler's sigmas upwards. In these coordinates a DDIM step down is
    x = x_next + (sigma - sigma_next) * eps(x_next, sigma_next), so the exact inverse needs eps at the
    point being solved for. Plain inversion uses eps at the current point instead; up to `iterations`
    fixed-point steps then solve the implicit equation (each one more U-Net call per step), stopping
    early once a step moves the point by less than 0.1% (benchmarks/demo_quality.py measures the ends).
    Cancel comes through the denoiser (core.sampling.denoisers.CancellableDenoiser).
    """
    extra_args = extra_args or {}
    ascending = [float(s) for s in sigmas.flip(0)]

    def eps(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return (x - denoiser(x, torch.full((x.shape[0],), sigma), **extra_args)) / sigma

    x = latents * math.sqrt(ascending[0] ** 2 + 1)  # VP latents at the last sigma -> sampler coordinates
    for i in range(len(ascending) - 1):
        sigma, sigma_next = ascending[i], ascending[i + 1]
        x_next = x + (sigma_next - sigma) * eps(x, sigma)
        for _ in range(iterations):
            previous, x_next = x_next, x + (sigma_next - sigma) * eps(x_next, sigma_next)
            if (x_next - previous).norm() <= 1e-3 * x_next.norm():
                break
        x = x_next
        callback({"i": i})
    return x

