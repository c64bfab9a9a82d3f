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


# --- more of k-diffusion's samplers, and UniPC and LCM -----------------------------------------------------
# Each is the published method written over the same denoiser interface; tests/test_samplers.py holds them
# to k-diffusion's sample_* (and UniPC, LCM to diffusers' schedulers) over the same denoiser and sigmas.


@torch.no_grad()
def sample_heun(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                callback: Callback | None = None, extra_args: dict | None = None) -> torch.Tensor:
    """Heun's method (Karras et al. 2022, Algorithm 2): an Euler step, corrected by the slope at its end;
    the step to sigma = 0 is plain Euler. Two denoiser calls a step."""
    sigmas = _floats(sigmas)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        d = (x - denoised) / sigma
        x_euler = x + d * (sigma_next - sigma)
        if sigma_next == 0:
            x = x_euler
        else:
            d_next = (x_euler - _denoise(denoiser, x_euler, sigma_next, extra_args)) / sigma_next
            x = x + (d + d_next) / 2 * (sigma_next - sigma)
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


def _dpm2_step(denoiser, x, denoised, sigma: float, sigma_to: float, extra_args) -> torch.Tensor:
    """DPM-Solver-2 from sigma to sigma_to: the slope at the geometric midpoint, Euler to sigma_to = 0."""
    d = (x - denoised) / sigma
    if sigma_to == 0:
        return x + d * (sigma_to - sigma)
    sigma_mid = math.sqrt(sigma * sigma_to)
    x_mid = x + d * (sigma_mid - sigma)
    d_mid = (x_mid - _denoise(denoiser, x_mid, sigma_mid, extra_args)) / sigma_mid
    return x + d_mid * (sigma_to - sigma)


@torch.no_grad()
def sample_dpm2(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                callback: Callback | None = None, extra_args: dict | None = None) -> torch.Tensor:
    """k-diffusion's DPM2: DPM-Solver-2 steps (Lu et al. 2022) in Karras et al.'s form."""
    sigmas = _floats(sigmas)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        x = _dpm2_step(denoiser, x, denoised, sigma, sigma_next, extra_args)
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_dpm2_ancestral(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                          callback: Callback | None = None, extra_args: dict | None = None,
                          eta: float = 1.0) -> torch.Tensor:
    """DPM2 down to sigma_down, then fresh noise up to sigma_next."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        x = _dpm2_step(denoiser, x, denoised, sigma, sigma_down, extra_args)
        if sigma_down != 0:
            x = x + noise_sampler(sigma, sigma_next) * sigma_up
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


def lms_coefficient(sigmas: list[float], i: int, j: int, order: int) -> float:
    """The integral over [sigma_i, sigma_i+1] of the Lagrange polynomial that is 1 at sigma_(i-j) and 0 at
    the other last `order` sigmas: the weight of the slope j steps back (computed exactly)."""
    import numpy as np

    poly = np.poly1d([1.0])
    for k in range(order):
        if k != j:
            poly *= np.poly1d([1.0, -sigmas[i - k]]) / (sigmas[i - j] - sigmas[i - k])
    integral = poly.integ()
    return float(integral(sigmas[i + 1]) - integral(sigmas[i]))


@torch.no_grad()
def sample_lms(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
               callback: Callback | None = None, extra_args: dict | None = None, order: int = 4) -> torch.Tensor:
    """Linear multistep: the slopes of the last `order` steps, weighted by lms_coefficient."""
    sigmas = _floats(sigmas)
    slopes: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        slopes = [(x - denoised) / sigma, *slopes][:order]
        current = min(i + 1, order)
        x = x + sum(lms_coefficient(sigmas, i, j, current) * slopes[j] for j in range(current))
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_dpmpp_2s_ancestral(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                              callback: Callback | None = None, extra_args: dict | None = None,
                              eta: float = 1.0) -> torch.Tensor:
    """DPM-Solver++(2S) singlestep steps down to sigma_down, then fresh noise up to sigma_next."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        if sigma_down == 0:
            x = denoised
        else:
            h = math.log(sigma) - math.log(sigma_down)
            sigma_mid = math.exp(-(-math.log(sigma) + h / 2))
            x_mid = (sigma_mid / sigma) * x - math.expm1(-h / 2) * denoised
            x = (sigma_down / sigma) * x - math.expm1(-h) * _denoise(denoiser, x_mid, sigma_mid, extra_args)
        if sigma_next > 0:
            x = x + noise_sampler(sigma, sigma_next) * sigma_up
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_dpmpp_sde(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                     callback: Callback | None = None, extra_args: dict | None = None, eta: float = 1.0,
                     r: float = 0.5) -> torch.Tensor:
    """DPM-Solver++ (stochastic, k-diffusion's "DPM++ SDE"): two stochastic half steps a step, each with
    noise from the noise sampler (A1111 and ComfyUI use a seeded Brownian tree: core.sampling.noise)."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        if sigma_next == 0:
            x = denoised
        else:
            t, t_next = -math.log(sigma), -math.log(sigma_next)
            h = t_next - t
            sigma_s = math.exp(-(t + h * r))
            down, up = ancestral_step(sigma, sigma_s, eta)
            t_down = -math.log(down)
            x_s = (down / sigma) * x - math.expm1(t - t_down) * denoised
            x_s = x_s + noise_sampler(sigma, sigma_s) * up
            denoised_s = _denoise(denoiser, x_s, sigma_s, extra_args)
            down, up = ancestral_step(sigma, sigma_next, eta)
            t_down = -math.log(down)
            fac = 1 / (2 * r)
            mixed = (1 - fac) * denoised + fac * denoised_s
            x = (down / sigma) * x - math.expm1(t - t_down) * mixed
            x = x + noise_sampler(sigma, sigma_next) * up
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                        callback: Callback | None = None, extra_args: dict | None = None,
                        eta: float = 1.0) -> torch.Tensor:
    """DPM-Solver++(2M) SDE, midpoint form (A1111's "DPM++ 2M SDE")."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        h = None
        if sigma_next == 0:
            x = denoised
        else:
            h = math.log(sigma) - math.log(sigma_next)
            eta_h = eta * h
            decay = -math.expm1(-h - eta_h)
            x = (sigma_next / sigma) * math.exp(-eta_h) * x + decay * denoised
            if old_denoised is not None:
                x = x + 0.5 * decay * (h / h_last) * (denoised - old_denoised)
            if eta:
                x = x + noise_sampler(sigma, sigma_next) * sigma_next * math.sqrt(-math.expm1(-2 * eta_h))
        old_denoised, h_last = denoised, h
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_dpmpp_3m_sde(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                        callback: Callback | None = None, extra_args: dict | None = None,
                        eta: float = 1.0) -> torch.Tensor:
    """DPM-Solver++(3M) SDE: third order from the x0 estimates of the last three steps."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    denoised_1 = denoised_2 = None
    h_1 = h_2 = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        h = None
        if sigma_next == 0:
            x = denoised
        else:
            h = math.log(sigma) - math.log(sigma_next)
            h_eta = h * (eta + 1)
            x = math.exp(-h_eta) * x - math.expm1(-h_eta) * denoised
            phi_2 = math.expm1(-h_eta) / h_eta + 1
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * d1 - phi_3 * d2
            elif h_1 is not None:
                x = x + phi_2 * (denoised - denoised_1) / (h_1 / h)
            if eta:
                x = x + noise_sampler(sigma, sigma_next) * sigma_next * math.sqrt(-math.expm1(-2 * h * eta))
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


@torch.no_grad()
def sample_lcm(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
               callback: Callback | None = None, extra_args: dict | None = None) -> torch.Tensor:
    """Latent Consistency Models' multistep sampling (Luo et al. 2023): each step's x0 estimate, re-noised
    with fresh noise to the next sigma (the last step returns the estimate)."""
    sigmas = _floats(sigmas)
    noise_sampler = noise_sampler or default_noise_sampler(x)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        x = denoised
        if sigma_next > 0:
            x = x + noise_sampler(sigma, sigma_next) * sigma_next
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x


def _unipc_coefficients(order: int, rks: list[float], hh: float) -> tuple[list[float], float, float]:
    """(b, h*phi_1, B(h)) of UniPC's B(h) = e^h - 1 ("bh2") variant, for rks = [r_1 .. r_(order-1), 1]."""
    h_phi_1 = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1
    b_h = math.expm1(hh)
    b, factorial = [], 1
    for i in range(1, order + 1):
        b.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    return b, h_phi_1, b_h


@torch.no_grad()
def sample_unipc(denoiser, x: torch.Tensor, sigmas, *, noise_sampler: NoiseSampler | None = None,
                 callback: Callback | None = None, extra_args: dict | None = None, order: int = 2) -> torch.Tensor:
    """UniPC (Zhao et al. 2023) in diffusers' default form: data prediction, B(h) = e^h - 1, multistep order
    `order` with lower orders at the start and the end, the UniC corrector after every step but the last.
    Written in VE coordinates, where a VP update divided by alpha_t is the same update."""
    import numpy as np

    sigmas = _floats(sigmas)
    steps = len(sigmas) - 1
    lam = [math.inf if s == 0 else -math.log(s) for s in sigmas]  # log(alpha / sigma) of VP = -log(sigma) of VE
    outputs: list[torch.Tensor] = []  # x0 estimates, newest last
    last_x, last_order, warm = None, 0, 0

    def update(x_from, i_from, i_to, order_here, extra_term=None):
        """x at sigma[i_to] from x_from at sigma[i_from], with the x0 estimates before i_from (inclusive)."""
        m0 = outputs[-1] if extra_term is None else outputs[-2]
        h = lam[i_to] - lam[i_from]
        hh = -h
        if math.isinf(h):  # the step to sigma = 0: the x0 estimate itself (order 1 there)
            return m0
        rks, differences = [], []
        for k in range(1, order_here):
            rk = (lam[i_from - k] - lam[i_from]) / h
            rks.append(rk)
            previous = outputs[-(k + 1)] if extra_term is None else outputs[-(k + 2)]
            differences.append((previous - m0) / rk)
        b, h_phi_1, b_h = _unipc_coefficients(order_here, rks + [1.0], hh)
        x_new = (sigmas[i_to] / sigmas[i_from]) * x_from - h_phi_1 * m0
        if extra_term is None:  # predictor (UniP)
            if not differences:
                return x_new
            rhos = [0.5] if order_here == 2 else list(np.linalg.solve(
                np.vander(rks + [1.0], increasing=True).T[:-1, :-1], np.array(b[:-1])))
            return x_new - b_h * sum(r * d for r, d in zip(rhos, differences))
        # corrector (UniC): the new estimate enters as the last difference
        if order_here == 1:
            rhos = [0.5]
        else:
            rhos = list(np.linalg.solve(np.vander(rks + [1.0], increasing=True).T, np.array(b)))
        correction = sum(r * d for r, d in zip(rhos[:-1], differences)) + rhos[-1] * (extra_term - m0)
        return x_new - b_h * correction

    for i in range(steps):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _denoise(denoiser, x, sigma, extra_args)
        outputs.append(denoised)
        if i > 0 and last_x is not None:
            x = update(last_x, i - 1, i, last_order, extra_term=denoised)
        outputs = outputs[-(order + 1):]
        this_order = min(order, steps - i, warm + 1)
        last_x, last_order = x, this_order
        x = update(x, i, i + 1, this_order)
        warm = min(warm + 1, order)
        _report(callback, i, x, sigma, sigma_next, denoised)
    return x
