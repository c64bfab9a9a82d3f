"""Samplers: pure functions that integrate a denoiser from noise down a list of sigmas.

Everything works in k-diffusion's "VE" coordinates x = x0 + sigma * noise, with a denoiser
`denoiser(x, sigma, **extra) -> x0` (see denoisers.py; sigma is passed as a float32 [B] tensor;
bind the prompt conditioning with a closure or functools.partial). DDIM and DDPM are expressed
in the same coordinates over the sigmas of their own timesteps: with x_vp = x / sqrt(sigma^2 + 1)
their updates are exactly DDIMScheduler's and DDPMScheduler's.

How the pipeline uses a sampler `name` for `steps` and `schedule` ("normal" | "karras"):

1. sigmas = sampler_sigmas(name, steps, schedule)          # float32 [steps + 1], descending
   img2img: sigmas = img2img_sigmas(sigmas, strength)      # the last int(steps * strength) steps
2. x = initial_x(name, noise, sigmas, init_latents)        # noise: float32 [B, 4, H/8, W/8], N(0, 1)
   txt2img: noise * sigmas[0] (Euler, Euler a), or noise * sqrt(sigmas[0]^2 + 1) for samplers whose
   diffusers scheduler starts from unit noise in the U-Net's space (DPM++ 2M, DDIM, DDPM);
   img2img: init_latents + noise * sigmas[0] (diffusers' add_noise, for every sampler).
3. x = SAMPLERS[name].fn(denoiser, x, sigmas, noise_sampler=..., callback=..., should_stop=..., eta=...)
   noise_sampler(sigma, sigma_next) -> noise like x: always pass one drawing from the seeds
   (cpu_noise_sampler); Euler a, DDPM and DDIM with eta > 0 call it. eta is DDIM's eta and is
   ignored by every other sampler (Euler a keeps eta = 1 as in A1111).
   callback(state) runs after every step with state = {"i", "x" (after the step), "sigma",
   "sigma_next", "denoised" (the x0 estimate at sigma)}. should_stop() is checked before every
   denoiser call; True raises errors.Cancelled.
4. latents = to_unet_latents(x, sigmas[-1])  # = diffusers' output_type="latent"; decode latents / 0.18215

Diffusers equivalents, with SD 1.5's scheduler config (beta 0.00085..0.012 scaled_linear,
steps_offset=1, clip_sample=False, set_alpha_to_one=False; Euler and DPM-Solver default to
timestep_spacing="linspace", DDIM and DDPM to "leading"), measured in tests/test_samplers.py:

  ddim            == DDIMScheduler (any eta, given the same variance noise)
  ddpm            == DDPMScheduler (given the same noise)
  euler, karras   == EulerDiscreteScheduler(use_karras_sigmas=True)
  euler, normal   ~= EulerDiscreteScheduler: same timesteps, sigmas interpolated in log-sigma as
                     k-diffusion/A1111 do, where diffusers interpolates linearly (< 1e-4 relative)
  euler_a, normal ~= EulerAncestralDiscreteScheduler, likewise
  dpmpp_2m        == DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2) over
                     the same sigmas; karras == use_karras_sigmas=True if the EpsDenoiser has
                     quantize_timesteps=True (diffusers rounds the U-Net's timesteps there).
                     "normal" is A1111's list; diffusers' DPM-Solver "linspace" timesteps differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .errors import Cancelled, InvalidRequestError
from .schedules import (ancestral_step, ddim_sigmas, ddpm_sigmas, img2img_sigmas, karras_sigmas,
                        normal_sigmas)

__all__ = [
    "SAMPLERS", "SCHEDULES", "SamplerSpec", "sampler_sigmas", "initial_x", "img2img_sigmas", "to_unet_latents",
    "cpu_noise_sampler", "sample_euler", "sample_euler_ancestral", "sample_dpmpp_2m", "sample_ddim", "sample_ddpm",
]

SCHEDULES = {"normal": normal_sigmas, "karras": karras_sigmas}

NoiseSampler = Callable[[float, float], torch.Tensor]
Callback = Callable[[dict], None]
ShouldStop = Callable[[], bool]


def default_noise_sampler(x: torch.Tensor) -> NoiseSampler:
    return lambda sigma, sigma_next: torch.randn_like(x)


def cpu_noise_sampler(generators: Sequence[torch.Generator], like: torch.Tensor) -> NoiseSampler:
    """Noise for image i from generators[i], drawn in float32 on the CPU as [1, C, h, w] (so a
    seed gives the same noise on every device), then moved to like's device and dtype."""
    shape = (1, *like.shape[1:])

    def draw(sigma: float, sigma_next: float) -> torch.Tensor:
        noise = torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])
        return noise.to(like.device, like.dtype)

    return draw


def _denoise(denoiser, x: torch.Tensor, sigma: float, should_stop: ShouldStop | None) -> torch.Tensor:
    if should_stop is not None and should_stop():
        raise Cancelled("generation was cancelled")
    return denoiser(x, x.new_full((x.shape[0],), sigma, dtype=torch.float32))


def _report(callback: Callback | None, i: int, x, sigma: float, sigma_next: float, denoised) -> None:
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "sigma_next": sigma_next, "denoised": denoised})


def _floats(sigmas) -> list[float]:
    """Step sizes are computed in Python floats: no device sync inside the loop."""
    return [float(s) for s in sigmas]


@torch.no_grad()
def sample_euler(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                 callback: Callback | None = None, should_stop: ShouldStop | None = None) -> torch.Tensor:
    """Euler's method on the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma."""
    sigmas = _floats(sigmas)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, should_stop)
        d = (x - denoised) / sigma
        x = x + d * (sigma_next - sigma)
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_euler_ancestral(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                           callback: Callback | None = None, should_stop: ShouldStop | None = None,
                           eta: float = 1.0) -> torch.Tensor:
    """Euler down to sigma_down, then fresh noise up to sigma_next (k-diffusion's euler_ancestral)."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, should_stop)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        d = (x - denoised) / sigma
        x = x + d * (sigma_down - sigma)
        if sigma_up > 0:
            x = x + noise_sampler(sigma, sigma_next) * sigma_up
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                    callback: Callback | None = None, should_stop: ShouldStop | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022) as k-diffusion writes it, in lambda = -log(sigma).

    First order on the first step and on the step to sigma = 0 (which returns the x0 estimate),
    second order in between, using the previous step's x0 estimate."""
    sigmas = _floats(sigmas)
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, should_stop)
        if sigma_next == 0:
            x = denoised  # the exponential step's limit at sigma_next = 0
            h = None
        else:
            h = math.log(sigma) - math.log(sigma_next)
            if old_denoised is None:
                denoised_d = denoised
            else:
                r = h_last / h
                denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (sigma_next / sigma) * x - math.expm1(-h) * denoised_d
        old_denoised, h_last = denoised, h
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_ddim(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                callback: Callback | None = None, should_stop: ShouldStop | None = None,
                eta: float = 0.0) -> torch.Tensor:
    """DDIM (Song et al. 2020). Dividing DDIMScheduler's update by sqrt(alpha_prev) gives
    x_next = x0 + sqrt(sigma_next^2 - s^2) * eps + s * z with s = eta * DDIM's sigma_t / sqrt(alpha_prev),
    which is ancestral_step's sigma_up; eta = 0 is Euler's step over the same sigmas."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, should_stop)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        eps = (x - denoised) / sigma
        x = denoised + eps * sigma_down
        if sigma_up > 0:
            x = x + noise_sampler(sigma, sigma_next) * sigma_up
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


def sample_ddpm(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                callback: Callback | None = None, should_stop: ShouldStop | None = None) -> torch.Tensor:
    """DDPM's ancestral sampling (Ho et al. 2020) with the posterior variance
    beta_tilde = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev): its posterior mean and variance are
    DDIM's with eta = 1, term by term, so this is that step over DDPM's sigmas."""
    return sample_ddim(denoiser, x, sigmas, noise_sampler=noise_sampler, callback=callback,
                       should_stop=should_stop, eta=1.0)


@dataclass(frozen=True)
class SamplerSpec:
    name: str
    display_name: str  # AUTOMATIC1111's name
    sampler: Callable[..., torch.Tensor]  # the sample_* function
    ancestral: bool  # adds fresh noise every step (needs a seeded noise_sampler)
    uses_schedule: bool  # False: own timesteps; the schedule argument is ignored
    uses_eta: bool  # the request's eta (DDIM's) applies
    unit_noise_start: bool  # txt2img starts at noise * sqrt(sigma0^2 + 1), unit noise in VP space
    sigmas: Callable[[int, str], torch.Tensor]  # (steps, schedule) -> [steps + 1] sigmas
    # Feed the U-Net whole training timesteps (diffusers' DPM-Solver and ComfyUI do; diffusers' Euler
    # and k-diffusion interpolate). DDIM's and DDPM's sigmas sit on training timesteps anyway.
    quantize_timesteps: bool = False

    def fn(self, denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
           callback: Callback | None = None, should_stop: ShouldStop | None = None,
           eta: float = 0.0) -> torch.Tensor:
        """The uniform call: eta (DDIM's) reaches only the samplers with uses_eta."""
        kwargs = {"eta": eta} if self.uses_eta else {}
        return self.sampler(denoiser, x, sigmas, noise_sampler=noise_sampler, callback=callback,
                            should_stop=should_stop, **kwargs)


def _scheduled(steps: int, schedule: str) -> torch.Tensor:
    try:
        make = SCHEDULES[schedule]
    except KeyError:
        raise InvalidRequestError(f"schedule {schedule!r} is unknown; choose one of {', '.join(SCHEDULES)}") from None
    return make(steps)


def _own(make: Callable[[int], torch.Tensor]) -> Callable[[int, str], torch.Tensor]:
    return lambda steps, schedule=None: make(steps)


SAMPLERS: dict[str, SamplerSpec] = {
    spec.name: spec for spec in [
        SamplerSpec("euler", "Euler", sample_euler, ancestral=False, uses_schedule=True, uses_eta=False,
                    unit_noise_start=False, sigmas=_scheduled),
        SamplerSpec("euler_a", "Euler a", sample_euler_ancestral, ancestral=True, uses_schedule=True,
                    uses_eta=False, unit_noise_start=False, sigmas=_scheduled),
        SamplerSpec("dpmpp_2m", "DPM++ 2M", sample_dpmpp_2m, ancestral=False, uses_schedule=True,
                    uses_eta=False, unit_noise_start=True, sigmas=_scheduled, quantize_timesteps=True),
        SamplerSpec("ddim", "DDIM", sample_ddim, ancestral=False, uses_schedule=False, uses_eta=True,
                    unit_noise_start=True, sigmas=_own(ddim_sigmas), quantize_timesteps=True),
        SamplerSpec("ddpm", "DDPM", sample_ddpm, ancestral=True, uses_schedule=False, uses_eta=False,
                    unit_noise_start=True, sigmas=_own(ddpm_sigmas), quantize_timesteps=True),
    ]
}


def _spec(name: str) -> SamplerSpec:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise InvalidRequestError(f"sampler {name!r} is unknown; choose one of {', '.join(SAMPLERS)}") from None


def sampler_sigmas(name: str, steps: int, schedule: str = "karras") -> torch.Tensor:
    """The full float32 sigma list ([steps + 1], descending) that sampler `name` runs over."""
    return _spec(name).sigmas(steps, schedule)


def initial_x(name: str, noise: torch.Tensor, sigmas: torch.Tensor,
              init_latents: torch.Tensor | None = None) -> torch.Tensor:
    """The sampler's starting point: see step 2 of the module docstring."""
    sigma0 = float(sigmas[0])
    if init_latents is not None:
        return init_latents + noise * sigma0
    return noise * (math.sqrt(sigma0**2 + 1) if _spec(name).unit_noise_start else sigma0)


def to_unet_latents(x: torch.Tensor, sigma_last: torch.Tensor | float) -> torch.Tensor:
    """The sampler's final x as the U-Net/VAE latent (VP): x / sqrt(sigma_last^2 + 1). The identity
    when the sigmas end at 0; DDIM ends at sigma(t=0) ~0.029."""
    return x / math.sqrt(float(sigma_last) ** 2 + 1)
