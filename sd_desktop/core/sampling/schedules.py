"""Noise schedules of Stable Diffusion 1.x, in k-diffusion's sigma parametrisation.

Training timestep t (0..999) has alphas_cumprod[t] = a_t. The samplers work on
"VE" latents x = x0 + sigma * noise with sigma_t = sqrt((1 - a_t) / a_t); the U-Net sees the
"VP" latent x / sqrt(sigma^2 + 1) = sqrt(a_t) * x0 + sqrt(1 - a_t) * noise.

A sigma list is a descending float32 tensor of n + 1 values for n steps: step i goes from
sigmas[i] to sigmas[i + 1]. Which diffusers configuration each list equals (SD 1.5's
scheduler_config.json has no timestep_spacing, so diffusers' from_config gives Euler and
DPM-Solver their default "linspace" and DDIM/DDPM their default "leading", steps_offset=1):

  normal_sigmas  k-diffusion's discrete schedule, A1111's "Normal": timesteps
                 linspace(999, 0, n), sigma interpolated in log-sigma, then 0. Same timesteps as
                 EulerDiscreteScheduler(timestep_spacing="linspace"); diffusers interpolates sigma
                 linearly between training timesteps instead (sigmas differ by < 1e-4 relative).
                 DPMSolverMultistepScheduler's "linspace" uses other timesteps (999 .. 999/n
                 rounded, then 0): no diffusers configuration gives this list to DPM-Solver.
  karras_sigmas  Karras et al. rho=7 between the training sigma_min and sigma_max, then 0:
                 exactly Euler/DPMSolverMultistepScheduler(use_karras_sigmas=True).
  ddim_sigmas    sigmas at DDIMScheduler's "leading" timesteps (steps_offset=1), then
                 sigma(t=0) because set_alpha_to_one=False ends DDIM at alphas_cumprod[0].
  ddpm_sigmas    the same timesteps, then 0: DDPMScheduler ends at alpha_prod = 1.

Zero terminal SNR (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed"): a model
trained so (NoobAI-XL V-Pred and others; their file carries an empty `ztsnr` tensor) is sampled over the schedule
rescaled so that the last training timestep is pure noise. `training_schedule(zero_snr=True)` puts that schedule
in effect for the code that runs inside it (the default of every function here that takes `train_sigmas`, of the
sigma range of Karras and Exponential, and of the denoisers' timestep lookup): sigma_max becomes ~4518 (the last
alphas_cumprod is A1111's and ComfyUI's 4.8973e-08 instead of 0), sigma_min stays.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math

import numpy as np
import torch

from ..errors import InvalidRequestError

SD_NUM_TRAIN_TIMESTEPS = 1000
SD_BETA_START = 0.00085
SD_BETA_END = 0.012


def sd_alphas_cumprod(num_train_timesteps: int = SD_NUM_TRAIN_TIMESTEPS, beta_start: float = SD_BETA_START,
                      beta_end: float = SD_BETA_END) -> torch.Tensor:
    """The "scaled_linear" schedule, computed in float32 exactly as diffusers' schedulers do
    (LDM computes it in float64; the two differ by < 1e-6 relative)."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def sigmas_from_alphas_cumprod(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """sigma_t = sqrt((1 - a_t) / a_t), ascending in t."""
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5


@functools.lru_cache(maxsize=1)
def _sd_sigmas() -> torch.Tensor:
    return sigmas_from_alphas_cumprod(sd_alphas_cumprod())


def sd_sigmas() -> torch.Tensor:
    """SD 1.x's 1000 training sigmas, ascending (sigma_min ~0.0292, sigma_max ~14.61)."""
    return _sd_sigmas().clone()


ZERO_SNR_LAST_ALPHA_CUMPROD = 4.8973451890853435e-08  # A1111's and ComfyUI's (diffusers' Euler: 2**-24)


def zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """alphas_cumprod rescaled to zero terminal SNR (Lin et al. 2023, Algorithm 1, on sqrt(alphas_cumprod)): shifted
    so that the last is 0 and scaled so that the first is unchanged; the last is then set to
    ZERO_SNR_LAST_ALPHA_CUMPROD, so that its sigma is finite, as A1111 and ComfyUI do."""
    root = alphas_cumprod.to(torch.float32).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    rescaled = ((root - last) * (first / (first - last))) ** 2
    rescaled[-1] = ZERO_SNR_LAST_ALPHA_CUMPROD
    return rescaled


@functools.lru_cache(maxsize=1)
def _zero_snr_sigmas() -> torch.Tensor:
    return sigmas_from_alphas_cumprod(zero_terminal_snr(sd_alphas_cumprod()))


_TRAINING = contextvars.ContextVar("sd_desktop_training_sigmas", default=None)


def training_sigmas() -> torch.Tensor:
    """The training sigmas in effect (SD's, or their zero-terminal-SNR rescaling inside training_schedule); the
    cached tensor itself: do not write to it."""
    own = _TRAINING.get()
    return _sd_sigmas() if own is None else own


@contextlib.contextmanager
def training_schedule(zero_snr: bool):
    """Run the code inside over SD's schedule, or with `zero_snr` over its zero-terminal-SNR rescaling (in this
    thread only: a context variable)."""
    token = _TRAINING.set(_zero_snr_sigmas() if zero_snr else _sd_sigmas())
    try:
        yield
    finally:
        _TRAINING.reset(token)


def sigma_to_timestep(sigma: torch.Tensor, train_sigmas: torch.Tensor | None = None, *,
                      quantize: bool = False) -> torch.Tensor:
    """The (fractional) training timestep of each sigma, interpolated linearly in log-sigma as
    k-diffusion's DiscreteSchedule.sigma_to_t and diffusers' _sigma_to_t do. quantize: the
    nearest training timestep instead (what diffusers' DPM-Solver feeds with Karras sigmas)."""
    train_sigmas = training_sigmas() if train_sigmas is None else train_sigmas
    log_sigma = torch.as_tensor(sigma, dtype=torch.float32).clamp(min=1e-10).log()
    log_sigmas = train_sigmas.to(device=log_sigma.device, dtype=torch.float32).log()
    dists = log_sigma.reshape(1, -1) - log_sigmas[:, None]
    if quantize:
        return dists.abs().argmin(dim=0).to(torch.float32).reshape(log_sigma.shape)
    # index of the last training sigma <= sigma, so that sigma lies in [low, low + 1]
    low_idx = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=log_sigmas.shape[0] - 2)
    high_idx = low_idx + 1
    low, high = log_sigmas[low_idx], log_sigmas[high_idx]
    w = ((low - log_sigma.reshape(-1)) / (low - high)).clamp(0, 1)
    t = (1 - w) * low_idx + w * high_idx
    return t.reshape(log_sigma.shape)


def timestep_to_sigma(t: torch.Tensor, train_sigmas: torch.Tensor | None = None) -> torch.Tensor:
    """Inverse of sigma_to_timestep: log-sigma interpolated between training timesteps."""
    train_sigmas = training_sigmas() if train_sigmas is None else train_sigmas
    t = torch.as_tensor(t, dtype=torch.float32)
    log_sigmas = train_sigmas.to(device=t.device, dtype=torch.float32).log()
    low_idx, high_idx, w = t.floor().long(), t.ceil().long(), t.frac()
    return ((1 - w) * log_sigmas[low_idx] + w * log_sigmas[high_idx]).exp()


def _append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise InvalidRequestError(f"steps must be a whole number of at least 1, not {steps!r}")


def normal_sigmas(steps: int, train_sigmas: torch.Tensor | None = None) -> torch.Tensor:
    """k-diffusion's get_sigmas (A1111 "Normal"): n sigmas at timesteps linspace(T-1, 0, n), then 0."""
    _check_steps(steps)
    train_sigmas = training_sigmas() if train_sigmas is None else train_sigmas
    t = torch.linspace(len(train_sigmas) - 1, 0, steps)
    return _append_zero(timestep_to_sigma(t, train_sigmas))


def karras_sigmas(steps: int, sigma_min: float | None = None, sigma_max: float | None = None,
                  rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) schedule, evenly spaced in sigma^(1/rho), then 0. Defaults to the
    training sigma range in effect (training_schedule). Computed in numpy's float64 as diffusers' _convert_to_karras does (on the CPU:
    no float64 tensor exists, which MPS could not hold)."""
    _check_steps(steps)
    sigma_min = float(training_sigmas()[0]) if sigma_min is None else sigma_min
    sigma_max = float(training_sigmas()[-1]) if sigma_max is None else sigma_max
    ramp = np.linspace(0, 1, steps)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    return _append_zero(torch.from_numpy(sigmas.astype(np.float32)))


def exponential_sigmas(steps: int, sigma_min: float | None = None, sigma_max: float | None = None) -> torch.Tensor:
    """k-diffusion's get_sigmas_exponential (A1111 "Exponential"): evenly spaced in log(sigma), then 0."""
    _check_steps(steps)
    sigma_min = float(training_sigmas()[0]) if sigma_min is None else sigma_min
    sigma_max = float(training_sigmas()[-1]) if sigma_max is None else sigma_max
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), steps).exp())


def sgm_uniform_sigmas(steps: int, train_sigmas: torch.Tensor | None = None) -> torch.Tensor:
    """A1111's and ComfyUI's "SGM Uniform": timesteps linspace(T-1, 0, steps + 1) without the last, then 0 (the
    schedule SDXL Turbo and LCM were trained with)."""
    _check_steps(steps)
    train_sigmas = training_sigmas() if train_sigmas is None else train_sigmas
    t = torch.linspace(len(train_sigmas) - 1, 0, steps + 1)[:-1]
    return _append_zero(timestep_to_sigma(t, train_sigmas))


def simple_sigmas(steps: int, train_sigmas: torch.Tensor | None = None) -> torch.Tensor:
    """ComfyUI's (and A1111's) "Simple": every (T / steps)-th training sigma from the top, then 0."""
    _check_steps(steps)
    train_sigmas = training_sigmas() if train_sigmas is None else train_sigmas
    stride = len(train_sigmas) / steps
    picked = [float(train_sigmas[-(1 + int(i * stride))]) for i in range(steps)]
    return _append_zero(torch.tensor(picked, dtype=torch.float32))


def discard_next_to_last(sigmas: torch.Tensor) -> torch.Tensor:
    """A1111's DPM2, DPM2 a and DPM++ 3M SDE compute the schedule for one step more and drop its next-to-last
    sigma: their last steps are the ones that work badly near sigma_min."""
    return torch.cat([sigmas[:-2], sigmas[-1:]])


def ddim_timesteps(steps: int, num_train_timesteps: int = SD_NUM_TRAIN_TIMESTEPS,
                   steps_offset: int = 1) -> torch.Tensor:
    """DDIMScheduler's "leading" timesteps, descending: (0, r, 2r, ...) + steps_offset with
    r = T // steps; with SD's config and 10 steps: 901, 801, ..., 1."""
    _check_steps(steps)
    step_ratio = num_train_timesteps // steps
    timesteps = torch.arange(steps - 1, -1, -1, dtype=torch.int64) * step_ratio + steps_offset
    if step_ratio == 0 or timesteps[0] >= num_train_timesteps:
        raise InvalidRequestError(f"steps must be below {num_train_timesteps} for DDIM and DDPM, not {steps}")
    return timesteps


def ddim_sigmas(steps: int, train_sigmas: torch.Tensor | None = None) -> torch.Tensor:
    """Sigmas of DDIM's timesteps; the last step ends at sigma(t=0), not 0, as DDIMScheduler
    with set_alpha_to_one=False does (the result keeps that little noise: sigma ~0.029)."""
    train_sigmas = training_sigmas() if train_sigmas is None else train_sigmas
    return torch.cat([train_sigmas[ddim_timesteps(steps, len(train_sigmas))], train_sigmas[:1]])


def ddpm_sigmas(steps: int, train_sigmas: torch.Tensor | None = None) -> torch.Tensor:
    """Sigmas of DDPMScheduler's timesteps (the same "leading" ones), ending at 0."""
    train_sigmas = training_sigmas() if train_sigmas is None else train_sigmas
    return _append_zero(train_sigmas[ddim_timesteps(steps, len(train_sigmas))])


IMG2IMG_CONVENTIONS = ("a1111", "rounded")


def img2img_steps(steps: int, strength: float, convention: str = "a1111") -> int:
    """How many of `steps` img2img runs at `strength`; 0 at strength 0 (the init image through the VAE).

    "a1111": A1111's default for its k-diffusion samplers, int(min(strength, 0.999) * steps) + 1, capped at
    `steps` (0.75 of 20 runs 16; "Do exactly the amount of steps the slider specifies" off). The samplers on
    a sigma list use it, so an A1111 img2img infotext means the same run here.
    "rounded": round(steps * strength), strength 1 runs them all from pure noise (diffusers takes int(), so
    0.33 of 20 runs 6 there, 7 here). DDIM and DDPM, whose sigmas are training timesteps, use it.
    """
    if not 0.0 <= strength <= 1.0:
        raise InvalidRequestError(f"strength must be between 0 and 1, not {strength}")
    if convention not in IMG2IMG_CONVENTIONS:
        raise ValueError(f"unknown img2img convention {convention!r}")
    if strength == 0:
        return 0
    if convention == "a1111":
        return min(int(min(strength, 0.999) * steps) + 1, steps)
    return min(int(math.floor(steps * strength + 0.5)), steps)


def img2img_sigmas(sigmas: torch.Tensor, strength: float, convention: str = "a1111") -> torch.Tensor:
    """The tail of a full sigma list that img2img runs: its last img2img_steps(n, strength, convention)
    steps, i.e. that many + 1 sigmas (just the last sigma when no step runs). The init latents are noised
    to the tail's first sigma."""
    steps = len(sigmas) - 1
    return sigmas[steps - img2img_steps(steps, strength, convention):]


def ancestral_step(sigma_from: float, sigma_to: float, eta: float = 1.0) -> tuple[float, float]:
    """(sigma_down, sigma_up) of an ancestral step: go deterministically to sigma_down, then add
    fresh noise of std sigma_up, so that sigma_down^2 + sigma_up^2 = sigma_to^2. eta=1 is
    DDPM's posterior variance (sigma_up^2 = sigma_to^2 (sigma_from^2 - sigma_to^2) / sigma_from^2,
    which is DDIM's sigma_t(eta) divided by sqrt(a_prev)); eta=0 is deterministic."""
    if not eta or sigma_to == 0:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * math.sqrt(sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2))
    sigma_down = math.sqrt(sigma_to**2 - sigma_up**2)
    return sigma_down, sigma_up
