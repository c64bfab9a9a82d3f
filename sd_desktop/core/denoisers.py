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
