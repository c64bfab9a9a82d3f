"""Denoisers: callables `denoiser(x, sigma, **extra_args) -> x0` that the samplers integrate.

x is a "VE" latent, x = x0 + sigma * noise; sigma is a float32 tensor on the CPU, 0-dim or one per image
([B]). Guidance, inpainting and cancel are wrappers around a denoiser (k-diffusion's, A1111's and ComfyUI's
way), so the samplers stay pure.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import Cancelled
from ..runtime.devices import to_device
from .schedules import sigma_to_timestep, training_sigmas
from ..interrupt import stop_points


LCM_SIGMA_DATA = 0.5
LCM_TIMESTEP_SCALING = 10.0


class EpsDenoiser:
    """An eps-predicting U-Net as a k-diffusion denoiser (k-diffusion's CompVisDenoiser).

    eps_model(x_in, t, **extra) -> eps gets the U-Net's own "VP" input x_in = x / sqrt(sigma^2 + 1)
    and the training timestep t = sigma_to_timestep(sigma), float32 [B], fractional between
    training timesteps as k-diffusion and diffusers' Euler feed it. quantize_timesteps rounds t to
    the nearest training timestep, as diffusers' DPMSolverMultistepScheduler does with Karras sigmas.
    Returns denoised = x - sigma * eps, in x's dtype. With prediction "v" the model predicts v (SD 2.x 768-v,
    v-pred SDXL) and denoised = x / (sigma^2 + 1) - sigma / sqrt(sigma^2 + 1) * v (k-diffusion's
    CompVisVDenoiser).

    The sigma -> timestep lookup runs on the CPU, once per sigma (`prepare` does a whole sigma list in one
    call before the loop), so no device ever searches the training table or holds float64.
    """

    def __init__(self, eps_model: Callable[..., torch.Tensor], train_sigmas: torch.Tensor | None = None, *,
                 quantize_timesteps: bool = False, lcm_boundary: bool = False, prediction: str = "eps"):
        if prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', not {prediction!r}")
        self.eps_model = eps_model
        self.prediction = prediction
        self.train_sigmas = (training_sigmas() if train_sigmas is None else train_sigmas).to("cpu", torch.float32,
                                                                                          copy=True)
        self.quantize_timesteps = quantize_timesteps
        self.lcm_boundary = lcm_boundary
        self._timesteps: dict[float, float] = {}

    def prepare(self, sigmas) -> None:
        """Look up the timesteps of every sigma a sampler will ask for, in one call."""
        self.timesteps(torch.as_tensor(sigmas, dtype=torch.float32).reshape(-1))

    def timesteps(self, sigma: torch.Tensor) -> torch.Tensor:
        """The training timestep of each sigma (a CPU tensor), float32, on the CPU."""
        values = sigma.reshape(-1).tolist()
        new = sorted({v for v in values if v not in self._timesteps})
        if new:
            found = sigma_to_timestep(torch.tensor(new), self.train_sigmas, quantize=self.quantize_timesteps)
            self._timesteps.update(zip(new, found.tolist()))
        return torch.tensor([self._timesteps[v] for v in values], dtype=torch.float32).reshape(sigma.shape)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor | float, **extra) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        if sigma.device.type != "cpu":
            sigma = sigma.cpu()
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        t = to_device(self.timesteps(sigma), x.device)  # (no per-step wait for a GPU: core.runtime.devices)
        per_image = to_device(sigma.reshape(-1, *[1] * (x.ndim - 1)), x.device)  # broadcast over channels and pixels
        c_in = (per_image**2 + 1) ** -0.5
        x_in = x * c_in.to(x.dtype)
        out = self.eps_model(x_in, t, **extra).to(x.dtype)
        if self.prediction == "v":
            denoised = x * (c_in**2).to(x.dtype) - out * (per_image * c_in).to(x.dtype)
        else:
            denoised = x - out * per_image.to(x.dtype)
        if self.lcm_boundary:  # LCM's consistency parametrisation (diffusers' LCMScheduler, sigma_data 0.5)
            scaled = (t * LCM_TIMESTEP_SCALING).reshape(per_image.shape).to(x.dtype)
            c_skip = LCM_SIGMA_DATA**2 / (scaled**2 + LCM_SIGMA_DATA**2)
            c_out = scaled / (scaled**2 + LCM_SIGMA_DATA**2).sqrt()
            denoised = c_out * denoised + c_skip * x_in
        return denoised


class GuidedDenoiser(EpsDenoiser):
    """Classifier-free guidance over a U-Net, with the negative prompt as the unconditional input: both
    passes in one batched U-Net call; cfg_scale 1 skips the unconditional pass.

    Called as denoiser(x, sigma, cond=..., uncond=..., cfg_scale=..., concat=None, y=None, y_uncond=None);
    `concat` holds the extra input channels of a 9-channel inpainting U-Net ([mask, masked-image latents]); `y`
    and `y_uncond` SDXL's vector conditioning of the prompt and the negative (core.pipelines.conditioning).

    `rescale_cfg` phi > 0: the guided prediction's spread is brought back towards the prompt's own, by phi
    (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed"; diffusers'
    guidance_rescale), in the model's prediction space (v for a v model, as diffusers and ComfyUI do it).
    """

    def __init__(self, unet, *, quantize_timesteps: bool = False, lcm_boundary: bool = False,
                 prediction: str = "eps", rescale_cfg: float = 0.0):
        super().__init__(self.guided_eps, quantize_timesteps=quantize_timesteps, lcm_boundary=lcm_boundary,
                         prediction=prediction)
        self.unet = unet
        self.rescale_cfg = float(rescale_cfg)

    def guided_eps(self, x_in: torch.Tensor, t: torch.Tensor, *, cond: torch.Tensor, uncond: torch.Tensor,
                   cfg_scale: float, concat: torch.Tensor | None = None, y: torch.Tensor | None = None,
                   y_uncond: torch.Tensor | None = None) -> torch.Tensor:
        if concat is not None:
            x_in = torch.cat([x_in, concat.to(x_in)], dim=1)
        vector = () if y is None else (y,)  # (a U-Net without one is called as before: x, t, context)
        if cfg_scale == 1.0:
            return self.unet(x_in, t, cond, *vector).float()
        if vector:
            vector = (torch.cat([y_uncond, y]),)
        out_uncond, out_cond = self.unet(
            torch.cat([x_in, x_in]), torch.cat([t, t]), torch.cat([uncond, cond]), *vector).float().chunk(2)
        guided = out_uncond + cfg_scale * (out_cond - out_uncond)
        if self.rescale_cfg > 0:
            dims = tuple(range(1, guided.ndim))
            rescaled = guided * (out_cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
            guided = self.rescale_cfg * rescaled + (1 - self.rescale_cfg) * guided
        return guided


class InpaintDenoiser:
    """Inpainting with an ordinary 4-channel model: outside the mask (0 = keep) the original latents,
    noised to the current sigma with the run's own noise, are re-imposed before every U-Net call,
    and the estimate there is the original itself."""

    def __init__(self, inner, init_latents: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor):
        self.inner, self.init, self.noise, self.mask = inner, init_latents, noise, mask

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **extra) -> torch.Tensor:
        per_image = to_device(torch.as_tensor(sigma, dtype=torch.float32).reshape(-1, 1, 1, 1), x.device, x.dtype)
        keep = 1 - self.mask
        x = x * self.mask + (self.init + self.noise * per_image) * keep
        return self.inner(x, sigma, **extra) * self.mask + self.init * keep


class SoftInpaintDenoiser(InpaintDenoiser):
    """Soft inpainting (differential diffusion, Levin & Fried 2024; ComfyUI's DifferentialDiffusion): with a soft
    mask m in [0, 1], a latent pixel is repainted at a step only while m >= the step's place between the run's
    first and last timestep (1 at the start, 0 at the end), and kept (re-imposed from the original, as in
    InpaintDenoiser) otherwise. m = 1 is repainted from the first step, m = 0.3 only over the last 30% (fine
    detail), m = 0 at most at a last step at sigma_min; the caller composites m = 0 back exactly."""

    def __init__(self, inner, init_latents: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor,
                 sigmas: torch.Tensor):
        super().__init__(inner, init_latents, noise, mask)
        self.soft = mask
        sigma_min = float(training_sigmas()[0])
        first, last = float(sigmas[0]), max(float(sigmas[-1]), sigma_min)  # (the schedule's end: sigma_min)
        self.t_from = float(sigma_to_timestep(torch.tensor(first)))
        self.t_to = float(sigma_to_timestep(torch.tensor(last)))

    def threshold(self, sigma: torch.Tensor) -> float:
        now = float(sigma_to_timestep(torch.as_tensor(sigma, dtype=torch.float32).reshape(-1)[:1]))
        span = self.t_from - self.t_to
        return (now - self.t_to) / span if span > 0 else 0.0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **extra) -> torch.Tensor:
        self.mask = (self.soft >= self.threshold(sigma)).to(self.soft.dtype)
        return super().__call__(x, sigma, **extra)


class CancellableDenoiser:
    """Asks `should_stop()` before every call of the denoiser it wraps, and lets the U-Net ask it between its
    blocks during the call (core.interrupt); True raises core.Cancelled, so a cancel lands within a
    fraction of a step of any sampler."""

    def __init__(self, inner, should_stop: Callable[[], bool] | None, message: str = "generation cancelled"):
        self.inner, self.should_stop, self.message = inner, should_stop, message

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **extra) -> torch.Tensor:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(self.message)
        with stop_points(self.should_stop, self.message):
            return self.inner(x, sigma, **extra)
