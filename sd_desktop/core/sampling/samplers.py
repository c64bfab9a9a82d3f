"""Samplers: pure functions that integrate a denoiser from noise down a list of sigmas (k-diffusion's form).

Everything works in k-diffusion's "VE" coordinates x = x0 + sigma * noise, with a denoiser
`denoiser(x, sigma, **extra_args) -> x0` (see denoisers.py). sigma reaches the denoiser as a float32 [B]
tensor on the CPU; the prompt conditioning rides in `extra_args`. Cancel, guidance and inpainting are
wrappers around the denoiser, so a sampler only integrates. DDIM and DDPM are expressed in the same
coordinates over the sigmas of their own timesteps: with x_vp = x / sqrt(sigma^2 + 1) their updates are
exactly DDIMScheduler's and DDPMScheduler's.

Every sampler has the signature
    sample_x(denoiser, x, sigmas, *, extra_args=None, callback=None, noise_sampler=None[, eta]) -> x
noise_sampler(sigma, sigma_next) -> noise like x (pass one drawing from the seeds: core.sampling.noise);
Euler a, DDPM and DDIM with eta > 0 call it. callback(state) runs after every step with state = {"i",
"x" (after the step), "sigma", "sigma_next", "denoised" (the x0 estimate at sigma)}. How a pipeline picks
and starts one is in core.sampling.registry.

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
from typing import Callable

import torch

from .schedules import ancestral_step

NoiseSampler = Callable[[float, float], torch.Tensor]
Callback = Callable[[dict], None]


def default_noise_sampler(x: torch.Tensor) -> NoiseSampler:
    return lambda sigma, sigma_next: torch.randn_like(x)


def _denoise(denoiser, x: torch.Tensor, sigma: float, extra_args: dict | None) -> torch.Tensor:
    return denoiser(x, torch.full((x.shape[0],), sigma, dtype=torch.float32), **(extra_args or {}))


def _report(callback: Callback | None, i: int, x, sigma: float, sigma_next: float, denoised) -> None:
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "sigma_next": sigma_next, "denoised": denoised})


def _floats(sigmas) -> list[float]:
    """Step sizes are computed in Python floats: no device sync inside the loop."""
    return [float(s) for s in sigmas]


@torch.no_grad()
def sample_euler(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                 callback: Callback | None = None, extra_args: dict | None = None) -> torch.Tensor:
    """Euler's method on the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma."""
    sigmas = _floats(sigmas)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        d = (x - denoised) / sigma
        x = x + d * (sigma_next - sigma)
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_euler_ancestral(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                           callback: Callback | None = None, extra_args: dict | None = None,
                           eta: float = 1.0) -> torch.Tensor:
    """Euler down to sigma_down, then fresh noise up to sigma_next (k-diffusion's euler_ancestral)."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        d = (x - denoised) / sigma
        x = x + d * (sigma_down - sigma)
        if sigma_up > 0:
            x = x + noise_sampler(sigma, sigma_next) * sigma_up
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                    callback: Callback | None = None, extra_args: dict | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022) as k-diffusion writes it, in lambda = -log(sigma).

    First order on the first step and on the step to sigma = 0 (which returns the x0 estimate),
    second order in between, using the previous step's x0 estimate."""
    sigmas = _floats(sigmas)
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
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
                callback: Callback | None = None, extra_args: dict | None = None,
                eta: float = 0.0) -> torch.Tensor:
    """DDIM (Song et al. 2020). Dividing DDIMScheduler's update by sqrt(alpha_prev) gives
    x_next = x0 + sqrt(sigma_next^2 - s^2) * eps + s * z with s = eta * DDIM's sigma_t / sqrt(alpha_prev),
    which is ancestral_step's sigma_up; eta = 0 is Euler's step over the same sigmas."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        eps = (x - denoised) / sigma
        x = denoised + eps * sigma_down
        if sigma_up > 0:
            x = x + noise_sampler(sigma, sigma_next) * sigma_up
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


def sample_ddpm(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                callback: Callback | None = None, extra_args: dict | None = None) -> torch.Tensor:
    """DDPM's ancestral sampling (Ho et al. 2020) with the posterior variance
    beta_tilde = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev): its posterior mean and variance are
    DDIM's with eta = 1, term by term, so this is that step over DDPM's sigmas."""
    return sample_ddim(denoiser, x, sigmas, noise_sampler=noise_sampler, callback=callback,
                       extra_args=extra_args, eta=1.0)
