"""Denoisers: callables `denoiser(x, sigma, **extra) -> x0` that the samplers integrate.

x is a "VE" latent, x = x0 + sigma * noise; sigma is a float tensor, either 0-dim or one per
image ([B]). The pipeline's classifier-free guidance and inpainting wrap these.
"""

from __future__ import annotations

from typing import Callable

import torch

from .schedules import sd_sigmas, sigma_to_timestep


class EpsDenoiser:
    """An eps-predicting U-Net as a k-diffusion denoiser (k-diffusion's CompVisDenoiser).

    eps_model(x_in, t, **extra) -> eps gets the U-Net's own "VP" input x_in = x / sqrt(sigma^2 + 1)
    and the training timestep t = sigma_to_timestep(sigma), float32 [B], fractional between
    training timesteps as k-diffusion and diffusers' Euler feed it. quantize_timesteps rounds t to
    the nearest training timestep, as diffusers' DPMSolverMultistepScheduler does with Karras sigmas.
    Returns denoised = x - sigma * eps, in x's dtype.
    """

    def __init__(self, eps_model: Callable[..., torch.Tensor], train_sigmas: torch.Tensor | None = None, *,
                 quantize_timesteps: bool = False):
        self.eps_model = eps_model
        self.train_sigmas = sd_sigmas() if train_sigmas is None else train_sigmas
        self.quantize_timesteps = quantize_timesteps
        self._train_sigmas_on: dict[torch.device, torch.Tensor] = {}

    def sigma_to_timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        table = self._train_sigmas_on.get(sigma.device)
        if table is None:  # copy the table to each device once, not every step
            table = self._train_sigmas_on[sigma.device] = self.train_sigmas.to(sigma.device, torch.float32)
        return sigma_to_timestep(sigma, table, quantize=self.quantize_timesteps)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor | float, **extra) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        t = self.sigma_to_timestep(sigma)
        per_image = sigma.reshape(-1, *[1] * (x.ndim - 1))  # broadcast over channels and pixels
        c_in = (per_image**2 + 1) ** -0.5
        eps = self.eps_model(x * c_in.to(x.dtype), t, **extra)
        return x - eps.to(x.dtype) * per_image.to(x.dtype)


class GuidedDenoiser:
    """Classifier-free guidance over the model's U-Net, with the negative prompt as the unconditional
    input: both passes in one batched U-Net call; cfg_scale 1 skips the unconditional pass.

    `concat` holds the extra input channels of a 9-channel inpainting U-Net ([mask, masked latents]).
    """

    def __init__(self, model, cond: torch.Tensor, uncond: torch.Tensor, cfg_scale: float, *,
                 concat: torch.Tensor | None = None, quantize_timesteps: bool = False):
        self.unet = model.unet
        self.cond, self.uncond = cond, uncond
        self.cfg_scale = cfg_scale
        self.concat = concat
        self.denoise = EpsDenoiser(self.eps, quantize_timesteps=quantize_timesteps)

    def eps(self, x_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.concat is not None:
            x_in = torch.cat([x_in, self.concat.to(x_in)], dim=1)
        if self.cfg_scale == 1.0:
            return self.unet(x_in, t, self.cond).float()
        eps_uncond, eps_cond = self.unet(
            torch.cat([x_in, x_in]), torch.cat([t, t]), torch.cat([self.uncond, self.cond])
        ).float().chunk(2)
        return eps_uncond + self.cfg_scale * (eps_cond - eps_uncond)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.denoise(x, sigma)


class InpaintDenoiser:
    """Inpainting with an ordinary 4-channel model: outside the mask (0 = keep) the original latents,
    noised to the current sigma with the run's own noise, are re-imposed before every U-Net call,
    and the estimate there is the original itself."""

    def __init__(self, inner, init_latents: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor):
        self.inner, self.init, self.noise, self.mask = inner, init_latents, noise, mask

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        per_image = torch.as_tensor(sigma, device=x.device, dtype=x.dtype).reshape(-1, 1, 1, 1)
        keep = 1 - self.mask
        x = x * self.mask + (self.init + self.noise * per_image) * keep
        return self.inner(x, sigma) * self.mask + self.init * keep
