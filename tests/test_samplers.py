"""Schedules and samplers against diffusers' schedulers, run step by step as StableDiffusionPipeline
runs them, with a deterministic fake eps-model standing in for the U-Net."""

from types import SimpleNamespace

import pytest
import torch
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler)
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import StableDiffusionImg2ImgPipeline

from sd_desktop.core.sampling import schedules as S
from sd_desktop.core.errors import Cancelled, InvalidRequestError
from sd_desktop.core.sampling.denoisers import CancellableDenoiser, EpsDenoiser
from sd_desktop.core.sampling.noise import SeededNoise
from sd_desktop.core.sampling.registry import SAMPLERS, initial_x, sampler_sigmas, to_unet_latents
from sd_desktop.core.sampling.samplers import sample_ddim, sample_dpmpp_2m, sample_euler, sample_euler_ancestral
from sd_desktop.core.sampling.schedules import img2img_sigmas

# SD 1.5's scheduler_config.json; diffusers' from_config leaves timestep_spacing at each class's default
SD15 = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
            clip_sample=False, set_alpha_to_one=False)
PARITY = 1e-4  # max |ours - diffusers| / max |diffusers| over the final latents
SHAPE = (2, 4, 16, 16)


def scheduler(cls, **overrides):
    return cls.from_config({**SD15, **overrides})


class FakeEpsModel:
    """Deterministic stand-in for the U-Net: nonlinear in x_in, smooth in t; ~x_in at high noise as a
    real eps-model is, so the sampled latents stay of order one."""

    def __init__(self, seed=0, channels=4):
        g = torch.Generator().manual_seed(seed)
        self.mix = torch.randn(channels, channels, generator=g) / channels**0.5
        self.bias = torch.randn(1, channels, 1, 1, generator=g)

    def __call__(self, x_in, t, cond=None):
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1, 1, 1, 1)
        mixed = torch.einsum("oc,bchw->bohw", self.mix, x_in)
        eps = x_in * (1 - torch.exp(-t / 200)) + 0.3 * torch.tanh(mixed + self.bias * torch.cos(t / 150))
        return eps if cond is None else eps + 0.1 * cond


def randn(shape=SHAPE, seed=1):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def rel_err(ours, reference):
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def run_diffusers(sched, model, latents, step_kwargs=lambda i: {}, timesteps=None):
    """StableDiffusionPipeline's denoising loop, timesteps already set."""
    for i, t in enumerate(sched.timesteps if timesteps is None else timesteps):
        eps = model(sched.scale_model_input(latents, t), t)
        latents = sched.step(eps, t, latents, **step_kwargs(i)).prev_sample
    return latents


def diffusers_txt2img(sched, model, noise, steps, step_kwargs=lambda i: {}):
    sched.set_timesteps(steps)
    return run_diffusers(sched, model, noise * sched.init_noise_sigma, step_kwargs)


def ours_txt2img(name, model, noise, steps, schedule="normal", quantize=False, **kwargs):
    sigmas = sampler_sigmas(name, steps, schedule)
    x = initial_x(name, noise, sigmas)
    x = SAMPLERS[name].sampler(EpsDenoiser(model, quantize_timesteps=quantize), x, sigmas, **kwargs)
    return to_unet_latents(x, sigmas[-1])


class ListNoise:
    """noise_sampler handing out a fixed list of tensors in order."""

    def __init__(self, noises):
        self.noises, self.used = list(noises), 0

    def __call__(self, sigma, sigma_next):
        self.used += 1
        return self.noises[self.used - 1]


# --- schedules ---------------------------------------------------------------------------------------------


def test_training_schedule_matches_diffusers():
    assert torch.equal(S.sd_alphas_cumprod(), scheduler(DDIMScheduler).alphas_cumprod)
    sigmas = S.sd_sigmas()
    assert sigmas[0].item() == pytest.approx(0.0292, abs=1e-4) and sigmas[-1].item() == pytest.approx(14.6146, abs=1e-3)
    t = torch.arange(1000, dtype=torch.float32)
    assert torch.allclose(S.sigma_to_timestep(sigmas), t, atol=1e-3)
    assert torch.allclose(S.timestep_to_sigma(t), sigmas, rtol=1e-5)
    half = S.timestep_to_sigma(torch.tensor([500.5]))  # log-sigma midpoint
    assert half.item() == pytest.approx((sigmas[500] * sigmas[501]).sqrt().item(), rel=1e-6)
    assert S.sigma_to_timestep(half).item() == pytest.approx(500.5, abs=1e-3)



def test_zero_terminal_snr_is_diffusers_rescaling_with_a1111s_last_value():
    import threading

    from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr

    betas = torch.linspace(SD15["beta_start"] ** 0.5, SD15["beta_end"] ** 0.5, 1000, dtype=torch.float32) ** 2
    expected = torch.cumprod(1.0 - rescale_zero_terminal_snr(betas), dim=0)
    ours = S.zero_terminal_snr(S.sd_alphas_cumprod())
    torch.testing.assert_close(ours[:-1], expected[:-1], rtol=1e-4, atol=1e-9)
    assert expected[-1].item() == 0.0 and ours[-1].item() == pytest.approx(4.8973451890853435e-08, rel=1e-7)  # (A1111's, ComfyUI's)
    assert ours[0].item() == pytest.approx(S.sd_alphas_cumprod()[0].item(), rel=1e-6)

    plain = S.karras_sigmas(10)
    with S.training_schedule(zero_snr=True):
        zsnr = S.training_sigmas()
        assert zsnr[-1].item() == pytest.approx(4518.76, rel=1e-5)
        assert S.karras_sigmas(10)[0].item() == pytest.approx(4518.76, rel=1e-5)  # every default follows it
        assert S.normal_sigmas(4)[0].item() == pytest.approx(4518.76, rel=1e-5)
        assert S.sigma_to_timestep(torch.tensor([4518.76])).item() == pytest.approx(999, abs=1e-2)
        assert EpsDenoiser(FakeEpsModel()).train_sigmas[-1].item() == pytest.approx(4518.76, rel=1e-5)
        seen = []  # another thread (a preview decoder, the window) keeps SD's schedule
        thread = threading.Thread(target=lambda: seen.append(S.training_sigmas()[-1].item()))
        thread.start()
        thread.join()
        assert seen == [pytest.approx(14.6146, abs=1e-3)]
        with S.training_schedule(zero_snr=False):
            assert torch.equal(S.karras_sigmas(10), plain)
    assert torch.equal(S.karras_sigmas(10), plain) and S.training_sigmas()[-1].item() == pytest.approx(14.6146, abs=1e-3)


@pytest.mark.parametrize("steps", [2, 10, 20, 30, 50])
def test_sigma_lists_match_diffusers(steps):
    karras = S.karras_sigmas(steps)
    for cls in (EulerDiscreteScheduler, DPMSolverMultistepScheduler):
        sched = scheduler(cls, use_karras_sigmas=True)
        sched.set_timesteps(steps)
        assert torch.equal(karras, sched.sigmas)
        if cls is EulerDiscreteScheduler:  # fractional timesteps, as our EpsDenoiser computes them
            assert torch.allclose(S.sigma_to_timestep(karras[:-1]), sched.timesteps, atol=1e-3)
        else:  # DPM-Solver rounds them
            assert torch.equal(S.sigma_to_timestep(karras[:-1], quantize=True), sched.timesteps.float())

    normal = S.normal_sigmas(steps)  # same timesteps as Euler "linspace"; log- instead of linear interpolation
    euler = scheduler(EulerDiscreteScheduler)
    euler.set_timesteps(steps)
    assert normal[-1] == 0 and len(normal) == steps + 1
    assert torch.allclose(normal, euler.sigmas, rtol=1e-4, atol=0)
    assert torch.allclose(S.sigma_to_timestep(normal[:-1]), euler.timesteps, atol=1e-3)

    ddim = scheduler(DDIMScheduler)
    ddim.set_timesteps(steps)
    assert torch.equal(S.ddim_timesteps(steps), ddim.timesteps)
    ac = ddim.alphas_cumprod
    expected = S.sigmas_from_alphas_cumprod(torch.cat([ac[ddim.timesteps], ddim.final_alpha_cumprod.reshape(1)]))
    assert torch.equal(S.ddim_sigmas(steps), expected)
    ddpm = scheduler(DDPMScheduler)
    ddpm.set_timesteps(steps)
    assert torch.equal(ddpm.timesteps, S.ddim_timesteps(steps))
    assert torch.equal(S.ddpm_sigmas(steps)[:-1], expected[:-1]) and S.ddpm_sigmas(steps)[-1] == 0


def test_one_step_goes_from_sigma_max_to_zero():
    # (diffusers' Euler puts a lone step at timestep 0, k-diffusion and we at 999)
    assert torch.equal(S.karras_sigmas(1), torch.tensor([S.sd_sigmas()[-1].item(), 0.0]))
    assert torch.allclose(S.normal_sigmas(1), torch.tensor([S.sd_sigmas()[-1].item(), 0.0]))


def test_normal_sigmas_are_training_sigmas_at_whole_timesteps():
    # 1000 steps puts every timestep on a training timestep: no interpolation left
    assert torch.allclose(S.normal_sigmas(1000)[:-1], S.sd_sigmas().flip(0), rtol=1e-6)
    # 4 steps: timesteps 999, 666, 333, 0
    assert torch.allclose(S.normal_sigmas(4)[:-1], S.sd_sigmas()[[999, 666, 333, 0]], rtol=1e-6)


def test_the_registry_is_the_one_source_of_sampler_names_and_labels(monkeypatch):
    """A sampler added to the registry alone is written and read by the metadata under its A1111 label,
    accepted by the request and offered by the CLI (the window's combo: tests/test_app_generate.py)."""
    import dataclasses

    from sd_desktop.cli import build_parser
    from sd_desktop.core.io.metadata import format_parameters, parse_parameters, request_from_parameters
    from sd_desktop.core.request import GenerationRequest

    added = dataclasses.replace(SAMPLERS["euler"], name="euler_test", label="Euler Test", comfy="euler_test")
    monkeypatch.setitem(SAMPLERS, "euler_test", added)
    request = GenerationRequest(prompt="p", sampler="euler_test", schedule="normal")
    text = format_parameters(request, seed=1, width=64, height=64, model_name="m", model_hash=None, mode="txt2img")
    assert "Sampler: Euler Test, Schedule type: Normal," in text
    assert parse_parameters(text)["sampler"] == "euler_test"
    assert request_from_parameters(parse_parameters(text)).sampler == "euler_test"
    assert parse_parameters(text.replace("Euler Test", "euler_test"))["sampler"] == "euler_test"  # ComfyUI's name
    assert build_parser().parse_args(["generate", "--prompt", "p", "--sampler", "euler_test"]).sampler == "euler_test"
    assert torch.equal(sampler_sigmas("euler_test", 12, "karras"), S.karras_sigmas(12))
    assert [n for n, s in SAMPLERS.items() if s.noise == "brownian"] == ["dpmpp_2m_sde", "dpmpp_sde", "dpmpp_3m_sde"]


def test_sampler_sigmas_registry():
    for name in SAMPLERS:
        for schedule in ("normal", "karras"):
            sigmas = sampler_sigmas(name, 12, schedule)
            assert sigmas.dtype == torch.float32 and sigmas.shape == (13,)
            assert bool((sigmas[:-1] > sigmas[1:]).all())
    assert torch.equal(sampler_sigmas("euler", 12, "karras"), S.karras_sigmas(12))
    assert torch.equal(sampler_sigmas("dpmpp_2m", 12, "normal"), S.normal_sigmas(12))
    assert torch.equal(sampler_sigmas("ddim", 12, "karras"), S.ddim_sigmas(12))  # own timesteps
    with pytest.raises(InvalidRequestError, match="sampler"):
        sampler_sigmas("plms", 10, "normal")
    with pytest.raises(InvalidRequestError, match="schedule"):
        sampler_sigmas("euler", 10, "polyexponential")
    with pytest.raises(InvalidRequestError, match="steps"):
        sampler_sigmas("euler", 0, "normal")
    with pytest.raises(InvalidRequestError, match="steps"):
        sampler_sigmas("ddim", 1000, "normal")


# --- the denoiser ------------------------------------------------------------------------------------------


def test_eps_denoiser_scales_input_and_feeds_timesteps():
    seen = {}

    def eps_model(x_in, t, cond):
        seen.update(x_in=x_in, t=t)
        return cond

    x, cond = randn(seed=2), randn(seed=3)
    sigma = torch.tensor([S.sd_sigmas()[700].item(), 3.0])
    denoised = EpsDenoiser(eps_model)(x, sigma, cond=cond)
    per_image = sigma.reshape(-1, 1, 1, 1)
    assert torch.allclose(seen["x_in"], x / (per_image**2 + 1).sqrt(), rtol=1e-6)
    assert seen["t"].shape == (2,) and seen["t"][0].item() == pytest.approx(700, abs=1e-3)
    assert torch.allclose(denoised, x - per_image * cond)
    EpsDenoiser(eps_model, quantize_timesteps=True)(x, sigma, cond=cond)
    assert seen["t"].tolist() == [700.0, round(S.sigma_to_timestep(torch.tensor(3.0)).item())]


# --- parity with diffusers' schedulers ---------------------------------------------------------------------


@pytest.mark.parametrize("steps", [10, 20])
def test_ddim_matches_diffusers(steps):
    model, noise = FakeEpsModel(), randn()
    reference = diffusers_txt2img(scheduler(DDIMScheduler), model, noise, steps)
    assert rel_err(ours_txt2img("ddim", model, noise, steps), reference) < PARITY


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_ddim_with_eta_matches_diffusers_given_the_same_noise(eta):
    model, noise, steps = FakeEpsModel(), randn(), 10
    variance_noise = [randn(seed=100 + i) for i in range(steps)]
    reference = diffusers_txt2img(scheduler(DDIMScheduler), model, noise, steps,
                                  lambda i: {"eta": eta, "variance_noise": variance_noise[i]})
    noise_sampler = ListNoise(variance_noise)
    ours = ours_txt2img("ddim", model, noise, steps, noise_sampler=noise_sampler, eta=eta)
    assert noise_sampler.used == steps  # DDIM ends at sigma(t=0) > 0: noise on the last step too
    assert rel_err(ours, reference) < PARITY
    assert rel_err(ours_txt2img("ddim", model, noise, steps), reference) > 1e-2  # the noise matters


def test_ddpm_matches_diffusers_given_the_same_noise():
    model, noise, steps = FakeEpsModel(), randn(), 20
    generator = torch.Generator().manual_seed(7)  # DDPMScheduler.step draws randn(shape, generator) each step
    reference = diffusers_txt2img(scheduler(DDPMScheduler), model, noise, steps, lambda i: {"generator": generator})
    twin = torch.Generator().manual_seed(7)
    ours = ours_txt2img("ddpm", model, noise, steps,
                        noise_sampler=lambda s, s_next: torch.randn(SHAPE, generator=twin))
    assert rel_err(ours, reference) < PARITY


@pytest.mark.parametrize("steps", [10, 20])
@pytest.mark.parametrize("schedule", ["normal", "karras"])
def test_euler_matches_diffusers(steps, schedule):
    model, noise = FakeEpsModel(), randn()
    sched = scheduler(EulerDiscreteScheduler, use_karras_sigmas=schedule == "karras")
    reference = diffusers_txt2img(sched, model, noise, steps)
    # "normal": diffusers interpolates sigma linearly between training timesteps, k-diffusion in
    # log-sigma; the sigmas differ by < 1e-4 relative, the results by ~1e-6
    assert rel_err(ours_txt2img("euler", model, noise, steps, schedule), reference) < PARITY


def test_euler_ancestral_matches_diffusers_given_the_same_noise():
    model, noise, steps = FakeEpsModel(), randn(), 20
    generator = torch.Generator().manual_seed(11)
    reference = diffusers_txt2img(scheduler(EulerAncestralDiscreteScheduler), model, noise, steps,
                                  lambda i: {"generator": generator})
    twin = torch.Generator().manual_seed(11)
    ours = ours_txt2img("euler_a", model, noise, steps,
                        noise_sampler=lambda s, s_next: torch.randn(SHAPE, generator=twin))
    assert rel_err(ours, reference) < PARITY


def diffusers_from_k_start(sched, model, noise, steps):
    """diffusers' DPM-Solver starts from unit noise in its variance-preserving space; k-diffusion (A1111,
    ComfyUI) from noise * sigma_max, which is noise * sigma_max / sqrt(sigma_max^2 + 1) there."""
    sched.set_timesteps(steps)
    s0 = sched.sigmas[0].float()
    return run_diffusers(sched, model, noise * s0 / (s0**2 + 1).sqrt())


@pytest.mark.parametrize("steps", [16, 20])
def test_dpmpp_2m_karras_is_diffusers_dpm_solver_from_k_diffusions_start(steps):
    """From 15 steps on, diffusers' DPM-Solver++ 2M takes the same steps as k-diffusion's (below 15 it
    drops to first order on its last two); only the starting noise differs, by sigma_max / sqrt(sigma_max^2+1)."""
    model, noise = FakeEpsModel(), randn()
    sched = scheduler(DPMSolverMultistepScheduler, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True)
    reference = diffusers_from_k_start(sched, model, noise, steps)
    assert rel_err(ours_txt2img("dpmpp_2m", model, noise, steps, "karras", quantize=True), reference) < PARITY
    # A1111 feeds fractional timesteps; the U-Net's input differs by up to half a timestep
    assert rel_err(ours_txt2img("dpmpp_2m", model, noise, steps, "karras"), reference) < 1e-3
    # and diffusers' own run (unit start, lower order at the end below 15 steps) is a different image
    sched = scheduler(DPMSolverMultistepScheduler, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True)
    assert rel_err(ours_txt2img("dpmpp_2m", model, noise, 10, "karras", quantize=True),
                   diffusers_txt2img(sched, model, noise, 10)) > 1e-3


@pytest.mark.parametrize("steps", [16, 20])
def test_dpmpp_2m_normal_matches_diffusers_over_the_same_sigmas(steps):
    model, noise = FakeEpsModel(), randn()
    dpm = dict(algorithm_type="dpmsolver++", solver_order=2)
    # our "normal" sigmas run through DPMSolverMultistepScheduler's own step
    sigmas = S.normal_sigmas(steps)
    sched = scheduler(DPMSolverMultistepScheduler, **dpm)
    sched.set_timesteps(steps)
    sched.sigmas, sched.timesteps = sigmas, S.sigma_to_timestep(sigmas[:-1])
    reference = run_diffusers(sched, model, noise * sigmas[0] / (sigmas[0] ** 2 + 1).sqrt())
    assert rel_err(ours_txt2img("dpmpp_2m", model, noise, steps, "normal"), reference) < PARITY
    # and diffusers' own "linspace" sigmas through our sampler
    sched = scheduler(DPMSolverMultistepScheduler, **dpm)
    reference = diffusers_from_k_start(sched, model, noise, steps)
    x = sample_dpmpp_2m(EpsDenoiser(model), initial_x("dpmpp_2m", noise, sched.sigmas), sched.sigmas)
    assert rel_err(x, reference) < PARITY


@pytest.mark.parametrize("name,cls,strength", [("euler", EulerDiscreteScheduler, 0.6),
                                               ("ddim", DDIMScheduler, 0.75),
                                               ("dpmpp_2m", DPMSolverMultistepScheduler, 0.5)])
def test_img2img_matches_diffusers(name, cls, strength):
    model, noise, init, steps = FakeEpsModel(), randn(), randn(seed=5) * 0.8, 20
    schedule = "karras" if name != "ddim" else "normal"
    sched = scheduler(cls, use_karras_sigmas=True) if schedule == "karras" else scheduler(cls)
    sched.set_timesteps(steps)
    spec = SAMPLERS[name]
    sigmas = img2img_sigmas(sampler_sigmas(name, steps, schedule), strength, spec.img2img_convention)
    # diffusers runs int(steps * strength) steps: hand it the strength that gives our count
    pipe = SimpleNamespace(scheduler=sched)
    ran = len(sigmas) - 1
    timesteps, _ = StableDiffusionImg2ImgPipeline.get_timesteps(pipe, steps, ran / steps, "cpu")
    assert len(timesteps) == ran == {"euler": 13, "ddim": 15, "dpmpp_2m": 11}[name]
    reference = run_diffusers(sched, model, sched.add_noise(init, noise, timesteps[:1]), timesteps=timesteps)

    denoiser = EpsDenoiser(model, quantize_timesteps=name == "dpmpp_2m")  # as diffusers' DPM-Solver with Karras
    x = SAMPLERS[name].sampler(denoiser, initial_x(name, noise, sigmas, init), sigmas)
    assert rel_err(to_unet_latents(x, sigmas[-1]), reference) < PARITY


def test_img2img_tail():
    """A1111's count for the samplers over a sigma list: int(min(s, 0.999) * steps) + 1 (its
    setup_img2img_steps, then sigmas[steps - t_enc - 1:]); DDIM and DDPM round."""
    sigmas = S.karras_sigmas(20)
    assert torch.equal(img2img_sigmas(sigmas, 0.75), sigmas[4:])  # t_enc = 15: 16 steps, as A1111
    assert torch.equal(img2img_sigmas(sigmas, 1.0), sigmas)  # int(0.999 * 20) + 1 = 20
    assert torch.equal(img2img_sigmas(sigmas, 0.02), sigmas[-2:])  # t_enc = 0: one step
    assert torch.equal(img2img_sigmas(sigmas, 0.0), sigmas[-1:])  # strength 0: nothing to run
    assert len(img2img_sigmas(S.karras_sigmas(100), 0.29)) - 1 == 29  # int(28.999...) + 1, as A1111's own float
    assert len(img2img_sigmas(S.karras_sigmas(20), 0.5)) - 1 == 11
    rounded = S.ddim_sigmas(20)
    assert torch.equal(img2img_sigmas(rounded, 0.75, "rounded"), rounded[5:])  # 15 steps
    assert torch.equal(img2img_sigmas(rounded, 0.02, "rounded"), rounded[-1:])  # round(0.4) = 0 steps
    assert len(img2img_sigmas(rounded, 0.33, "rounded")) - 1 == 7  # round(6.6)
    assert len(img2img_sigmas(S.ddim_sigmas(100), 0.29, "rounded")) - 1 == 29  # where diffusers' int() gives 28
    assert SAMPLERS["ddim"].img2img_convention == SAMPLERS["ddpm"].img2img_convention == "rounded"
    assert {SAMPLERS[name].img2img_convention for name in SAMPLERS if name not in ("ddim", "ddpm")} == {"a1111"}
    for strength in (-0.1, 1.5):
        with pytest.raises(InvalidRequestError, match="strength"):
            img2img_sigmas(sigmas, strength)


# --- randomness, cancellation, callbacks -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["euler_a", "ddpm", "dpm2_a", "dpmpp_2s_a", "lcm"])
def test_ancestral_samplers_are_deterministic_per_seed(name):
    model, noise = FakeEpsModel(), randn()

    def run(seeds):
        return ours_txt2img(name, model, noise, 10, noise_sampler=SeededNoise(seeds).sampler(noise))

    assert torch.equal(run([3, 4]), run([3, 4]))
    first, other = run([3, 4]), run([3, 9])
    assert torch.equal(first[0], other[0]) and not torch.allclose(first[1], other[1], atol=1e-3)


def test_registry_call_passes_eta_to_ddim_only():
    model, noise = FakeEpsModel(), randn()
    den, sigmas = EpsDenoiser(model), S.ddim_sigmas(10)
    x = initial_x("ddim", noise, sigmas)
    draws = lambda: ListNoise([randn(seed=40 + i) for i in range(10)])  # noqa: E731
    assert torch.equal(SAMPLERS["ddim"].run(den, x, sigmas, noise_sampler=draws(), eta=0.5),
                       sample_ddim(den, x, sigmas, noise_sampler=draws(), eta=0.5))
    assert torch.allclose(SAMPLERS["ddim"].run(den, x, sigmas, eta=0.0), sample_euler(den, x, sigmas), atol=1e-5)
    sigmas = S.karras_sigmas(10)
    x = initial_x("euler_a", noise, sigmas)
    assert torch.equal(SAMPLERS["euler_a"].run(den, x, sigmas, noise_sampler=draws(), eta=0.0),
                       sample_euler_ancestral(den, x, sigmas, noise_sampler=draws()))


SECOND_ORDER_SINGLE_STEP = {"heun", "dpm2", "dpm2_a", "dpmpp_2s_a", "dpmpp_sde"}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_cancel_and_callbacks(name):
    model, noise = FakeEpsModel(), randn()
    sigmas = sampler_sigmas(name, 8, "karras")
    calls, states = [], []

    def eps_model(x_in, t):
        calls.append(t)
        return model(x_in, t)

    x = SAMPLERS[name].run(EpsDenoiser(eps_model), initial_x(name, noise, sigmas), sigmas, callback=states.append)
    # the second-order single-step samplers call the model twice a step, except onto sigma = 0
    assert len(calls) == (15 if name in SECOND_ORDER_SINGLE_STEP else 8)
    assert [s["i"] for s in states] == list(range(8))
    assert torch.equal(states[-1]["x"], x) and states[0]["sigma"] == pytest.approx(sigmas[0].item())
    assert states[-1]["denoised"].shape == SHAPE

    calls.clear()
    with pytest.raises(Cancelled):
        SAMPLERS[name].run(CancellableDenoiser(EpsDenoiser(eps_model), lambda: len(calls) >= 3),
                           initial_x(name, noise, sigmas), sigmas)
    assert len(calls) == 3  # cancel is a denoiser wrapper: checked before every denoiser call, whatever the sampler


# --- every sampler samples the right distribution ----------------------------------------------------------


class GaussianEps:
    """The exact eps for data ~ N(mu, s^2) per element: E[x0 | x] = mu + s^2 / (s^2 + sigma^2) (x - mu)."""

    def __init__(self, mu, s):
        self.mu, self.s = mu, s

    def __call__(self, x_in, t):
        sigma = S.timestep_to_sigma(t).reshape(-1, 1, 1, 1)
        x = x_in * (sigma**2 + 1).sqrt()
        x0 = self.mu + self.s**2 / (self.s**2 + sigma**2) * (x - self.mu)
        return (x - x0) / sigma


def sample_gaussian(name, schedule, steps, mu, s):
    sigmas = sampler_sigmas(name, steps, schedule)
    noise = randn((24, 4, 16, 16), seed=21)  # < 32768 values: torch stays single-threaded
    x = mu + (s**2 + sigmas[0] ** 2).sqrt() * noise  # the exact marginal at sigmas[0]
    generator = torch.Generator().manual_seed(22)
    x = SAMPLERS[name].run(EpsDenoiser(GaussianEps(mu, s)), x, sigmas,
                          noise_sampler=lambda a, b: torch.randn(x.shape, generator=generator))
    return to_unet_latents(x, sigmas[-1])


SAMPLER_SCHEDULES = [(name, schedule) for name, spec in SAMPLERS.items() if name != "lcm"  # (a consistency sampler:
                     for schedule in (["normal", "karras"] if spec.uses_schedule else ["normal"])]  # not an integrator)


@pytest.mark.parametrize("name,schedule", SAMPLER_SCHEDULES)
def test_samplers_converge_to_gaussian_data(name, schedule):
    """The mean is right at any step count; the std's discretisation error (-7% to -16% at 25 steps for
    Euler, Euler a, DDIM and DDPM, +10% for DPM++ 2M normal, +37% for DPM++ 2M SDE normal, which is still
    +7% at 100) shrinks at least like 1/steps towards s."""
    mu, s = 0.5, 0.5
    coarse, fine = (sample_gaussian(name, schedule, steps, mu, s) for steps in (25, 100))
    for latents in (coarse, fine):
        assert latents.mean().item() == pytest.approx(mu, abs=0.01)
    coarse_error, fine_error = coarse.std().item() / s - 1, fine.std().item() / s - 1
    assert abs(fine_error) < 0.08
    assert abs(fine_error) < max(0.45 * abs(coarse_error), 0.01)


# --- k-diffusion's samplers (what A1111 and ComfyUI run), UniPC and LCM ------------------------------------

K_DETERMINISTIC = {"euler": "sample_euler", "heun": "sample_heun", "lms": "sample_lms", "dpm2": "sample_dpm_2",
                   "dpmpp_2m": "sample_dpmpp_2m"}
K_STOCHASTIC = {"euler_a": "sample_euler_ancestral", "dpm2_a": "sample_dpm_2_ancestral",
                "dpmpp_2s_a": "sample_dpmpp_2s_ancestral", "dpmpp_sde": "sample_dpmpp_sde",
                "dpmpp_2m_sde": "sample_dpmpp_2m_sde", "dpmpp_3m_sde": "sample_dpmpp_3m_sde"}


def test_every_k_diffusion_family_sampler_is_tested_against_it():
    kinds = {name for name, spec in SAMPLERS.items() if not spec.unit_noise_start}
    assert kinds == set(K_DETERMINISTIC) | set(K_STOCHASTIC)


@pytest.mark.parametrize("name", list(K_DETERMINISTIC))
@pytest.mark.parametrize("schedule", ["karras", "exponential", "normal"])
def test_deterministic_samplers_equal_k_diffusion(name, schedule):
    from parity import k_diffusion_sampling

    k = k_diffusion_sampling()
    model, noise = FakeEpsModel(), randn()
    sigmas = sampler_sigmas(name, 12, schedule)
    x = initial_x(name, noise, sigmas)
    assert torch.equal(x, noise * sigmas[0])  # k-diffusion starts from noise * sigma_max
    reference = getattr(k, K_DETERMINISTIC[name])(EpsDenoiser(model), x, sigmas, disable=True)
    ours = SAMPLERS[name].run(EpsDenoiser(model), x, sigmas)
    assert rel_err(ours, reference) < PARITY


@pytest.mark.parametrize("name", list(K_STOCHASTIC))
@pytest.mark.parametrize("eta", [1.0, 0.67])  # A1111's "Eta" for ancestral samplers: k-diffusion's eta
def test_ancestral_and_sde_samplers_equal_k_diffusion_given_the_same_noise(name, eta):
    from parity import k_diffusion_sampling

    k = k_diffusion_sampling()
    model, noise = FakeEpsModel(), randn()
    sigmas = sampler_sigmas(name, 10, SAMPLERS[name].default_schedule)
    draws = [randn(seed=200 + i) for i in range(20)]
    theirs, ours_noise = ListNoise(draws), ListNoise(draws)
    reference = getattr(k, K_STOCHASTIC[name])(EpsDenoiser(model), noise * sigmas[0], sigmas, disable=True,
                                               noise_sampler=theirs, eta=eta)
    ours = SAMPLERS[name].run(EpsDenoiser(model), initial_x(name, noise, sigmas), sigmas, noise_sampler=ours_noise,
                              ancestral_eta=eta)
    assert ours_noise.used == theirs.used > 0
    assert rel_err(ours, reference) < PARITY
    if eta != 1.0:  # (and it is used: the default's run differs)
        again = SAMPLERS[name].run(EpsDenoiser(model), initial_x(name, noise, sigmas), sigmas,
                                   noise_sampler=ListNoise(draws))
        assert rel_err(again, reference) > 1e-3


def test_brownian_noise_is_k_diffusions_tree_with_each_images_seed():
    from parity import k_diffusion_sampling

    k = k_diffusion_sampling()
    x = randn((3, 4, 8, 8))
    sigmas = sampler_sigmas("dpmpp_2m_sde", 8, "exponential")
    theirs = k.BrownianTreeNoiseSampler(x, sigmas[sigmas > 0].min(), sigmas.max(), seed=[5, 6, 7])
    ours = SeededNoise([5, 6, 7]).brownian(x, sigmas)
    single = SeededNoise([6]).brownian(x[:1], sigmas)
    for i in range(len(sigmas) - 2):
        a, b = sigmas[i], sigmas[i + 1]
        expected = theirs(a, b)
        torch.testing.assert_close(ours(float(a), float(b)), expected)
        torch.testing.assert_close(single(float(a), float(b))[0], expected[1])  # image i: its own seed only


def test_new_schedules():
    assert torch.allclose(S.exponential_sigmas(6)[:-1].log(),
                          torch.linspace(S.sd_sigmas()[-1].log(), S.sd_sigmas()[0].log(), 6), atol=1e-5)
    from parity import k_diffusion_sampling

    k = k_diffusion_sampling()
    lo, hi = S.sd_sigmas()[0].item(), S.sd_sigmas()[-1].item()
    assert torch.allclose(S.exponential_sigmas(9), k.get_sigmas_exponential(9, lo, hi), rtol=1e-6)
    assert torch.allclose(S.karras_sigmas(9), k.get_sigmas_karras(9, lo, hi), rtol=1e-6)
    # SGM uniform: the first n of the n + 1 timesteps from 999 to 0 (what "normal" spreads over n + 1 steps)
    assert torch.equal(S.sgm_uniform_sigmas(8), torch.cat([S.normal_sigmas(9)[:-2], torch.zeros(1)]))
    # simple: every 1000/n-th training sigma from the top
    assert torch.equal(S.simple_sigmas(4)[:-1], S.sd_sigmas()[[999, 749, 499, 249]])
    assert torch.equal(sampler_sigmas("dpm2", 6, "karras"), torch.cat([S.karras_sigmas(7)[:-2], torch.zeros(1)]))


@pytest.mark.parametrize("steps", [6, 20])
def test_unipc_matches_diffusers(steps):
    from diffusers import UniPCMultistepScheduler

    model, noise = FakeEpsModel(), randn()
    sched = scheduler(UniPCMultistepScheduler)
    reference = diffusers_txt2img(sched, model, noise, steps)
    sigmas = sched.sigmas.float()
    x = initial_x("unipc", noise, sigmas)
    ours = to_unet_latents(SAMPLERS["unipc"].run(EpsDenoiser(model, quantize_timesteps=True), x, sigmas), sigmas[-1])
    assert rel_err(ours, reference) < PARITY


@pytest.mark.parametrize("steps", [1, 4, 8])
def test_lcm_matches_diffusers_lcm_scheduler(steps):
    from diffusers import LCMScheduler

    model, noise = FakeEpsModel(), randn()
    sched = scheduler(LCMScheduler)
    sched.set_timesteps(steps)
    generator = torch.Generator().manual_seed(9)
    latents = noise * sched.init_noise_sigma
    for t in sched.timesteps:
        latents = sched.step(model(latents, t), t, latents, generator=generator).prev_sample
    sigmas = torch.cat([S.sd_sigmas()[sched.timesteps], torch.zeros(1)])
    generator = torch.Generator().manual_seed(9)  # the same noise, drawn in the same order
    noise_sampler = lambda a, b: torch.randn(SHAPE, generator=generator)  # noqa: E731
    x = initial_x("lcm", noise, sigmas)
    denoiser = EpsDenoiser(model, quantize_timesteps=True, lcm_boundary=True)
    ours = to_unet_latents(SAMPLERS["lcm"].run(denoiser, x, sigmas, noise_sampler=noise_sampler), sigmas[-1])
    assert rel_err(ours, latents) < PARITY


# --- A1111's "NV" noise: a CUDA generator's numbers on any device -------------------------------------------


def test_nv_noise_is_a_cuda_generators_randn():
    from sd_desktop.core.sampling.noise import PhiloxNoise

    # torch.randn((3, 4), generator=torch.Generator("cuda").manual_seed(0)), as A1111's rng_philox.py
    # gives it; its numpy code (which we follow, in float64) and CUDA's float32 differ by a few ulps
    cuda = torch.tensor([[-0.92466259, -0.42534415, -2.6438457, 0.14518388],
                         [-0.12086647, -0.57972564, -0.62285122, -0.32838709],
                         [-1.07454231, -0.36314407, -1.67105067, 2.26550497]])
    generator = PhiloxNoise(0)
    first = generator.randn((3, 4))
    assert first.dtype == torch.float32 and torch.allclose(first, cuda, rtol=0, atol=3e-7)
    second = generator.randn((3, 4))  # the next draw: the next counter
    assert not torch.allclose(first, second) and torch.equal(PhiloxNoise(0).randn((12,)), first.flatten())
    big = PhiloxNoise(2**40 + 7).randn((4, 64, 64))  # a 64-bit seed uses both key words
    assert not torch.equal(big, PhiloxNoise(7).randn((4, 64, 64)))
    assert abs(big.mean().item()) < 0.02 and abs(big.std().item() - 1) < 0.02


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU to compare with")
def test_nv_noise_equals_torch_randn_on_this_cuda_device():
    from sd_desktop.core.sampling.noise import PhiloxNoise

    for seed in (0, 1, 1234, 2**32 + 5):
        for shape in ((4, 64, 64), (4, 96, 128)):
            cuda, ours = torch.Generator("cuda").manual_seed(seed), PhiloxNoise(seed)
            for _draw in range(3):  # the starting noise, then an ancestral sampler's
                on_gpu = torch.randn(shape, generator=cuda, device="cuda").cpu()
                assert torch.allclose(ours.randn(shape), on_gpu, rtol=0, atol=1e-5)


def test_seeded_noise_from_either_source_is_per_image():
    for rng in ("cpu", "nv"):
        batch = SeededNoise([5, 6], rng)
        single = SeededNoise([6], rng)
        assert torch.equal(batch.draw((4, 8, 8))[1], single.draw((4, 8, 8))[0])
        assert torch.equal(batch.draw((4, 8, 8))[1], single.draw((4, 8, 8))[0])  # and the draws after it
    assert not torch.equal(SeededNoise([5], "nv").draw((4, 8, 8)), SeededNoise([5], "cpu").draw((4, 8, 8)))
    with pytest.raises(ValueError, match="noise source"):
        SeededNoise([1], "gpu")


def test_ensd_draws_the_noise_after_the_start_from_seed_plus_the_delta():
    """A1111's Eta noise seed delta (modules/rng.py ImageRNG.first): the starting noise from each image's seed, every
    later draw from a generator started again at seed + ENSD."""
    from sd_desktop.core.sampling.noise import PhiloxNoise

    shape = (4, 8, 8)
    for rng in ("cpu", "nv"):
        plain, delta = SeededNoise([5, 6], rng), SeededNoise([5, 6], rng, ensd=31337)
        assert torch.equal(delta.draw(shape), plain.draw(shape))  # the start: unchanged
        later = delta.draw(shape)
        assert not torch.equal(later, plain.draw(shape))
        for i, seed in enumerate((5, 6)):
            if rng == "cpu":
                expected = torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed + 31337))[0]
            else:
                expected = PhiloxNoise(seed + 31337).randn(shape)
            assert torch.equal(later[i], expected)
        again = delta.draw(shape)  # and it goes on from there, not restarting at every draw
        assert not torch.equal(again, later)


def test_a_variation_seed_slerps_the_starting_noise_as_a1111_does():
    """A1111's Variation seed (processing.slerp over each image's [C, H, W] noise, the angle taken along dim 1):
    strength 0 is the seed's noise, 1 the variation seed's; the noise after the start is the seed's own."""
    from sd_desktop.core.sampling.noise import a_slerp

    shape = (4, 8, 6)
    for rng in ("cpu", "nv"):
        own, other = SeededNoise([5, 6], rng).draw(shape), SeededNoise([40, 41], rng).draw(shape)
        for strength in (0.3, 1.0):
            varied = SeededNoise([5, 6], rng, variation_seeds=[40, 41], variation_strength=strength)
            start = varied.draw(shape)
            for i in range(2):  # the formula, written out: sin((1-t)w)/sin(w) a + sin(tw)/sin(w) b, w per (C, W)
                a, b = own[i], other[i]
                w = torch.acos(((a / a.norm(dim=1, keepdim=True)) * (b / b.norm(dim=1, keepdim=True))).sum(1))
                expected = (torch.sin((1 - strength) * w) / torch.sin(w)).unsqueeze(1) * a + \
                    (torch.sin(strength * w) / torch.sin(w)).unsqueeze(1) * b
                torch.testing.assert_close(start[i], expected, rtol=1e-5, atol=1e-5)
            if strength == 1.0:
                torch.testing.assert_close(start, other, rtol=1e-4, atol=1e-4)
            plain = SeededNoise([5, 6], rng)
            plain.draw(shape)
            assert torch.equal(varied.draw(shape), plain.draw(shape))  # (the ancestral noise after it: unchanged)
    near = torch.randn(4, 8, 6)
    nearer = near + 1e-3 * torch.randn(4, 8, 6)  # nearly parallel: A1111's linear mix, its weights the other way
    assert torch.equal(a_slerp(0.25, near, nearer), near * 0.25 + nearer * 0.75)
    assert torch.equal(SeededNoise([5], variation_seeds=[9], variation_strength=0.0).draw(shape),
                       SeededNoise([5]).draw(shape))


def test_seed_resize_lays_the_seeds_noise_of_another_size_over_the_middle_as_a1111_does():
    """A1111's Seed resize from (modules/rng.py ImageRNG.first): the noise each seed gives at the old size, over the
    middle of its noise at this size; cropped at its middle when larger, one row or column short of the edge when
    the difference is odd; the variation slerped at the old size; the generator goes on as without it."""
    from sd_desktop.core.sampling.noise import PhiloxNoise

    for rng in ("cpu", "nv"):
        def fresh(seed, shape):
            if rng == "nv":
                return PhiloxNoise(seed).randn(shape)
            return torch.randn(shape, generator=torch.Generator().manual_seed(seed))

        shape = (4, 10, 12)
        grown = SeededNoise([5, 6], rng, resize_from=(6, 8))  # (rows, columns): 48x64 px into 96x80
        start = grown.draw(shape)
        for i, seed in enumerate((5, 6)):
            small, big = fresh(seed, (4, 6, 8)), fresh(seed, shape)
            assert torch.equal(start[i, :, 2:8, 2:10], small)  # centred: (10 - 6) // 2 = 2, (12 - 8) // 2 = 2
            outside = torch.ones(shape, dtype=torch.bool)
            outside[:, 2:8, 2:10] = False
            assert torch.equal(start[i][outside], big[outside])  # the rest is this size's own noise
        plain = SeededNoise([5, 6], rng)
        plain.draw(shape)
        assert torch.equal(grown.draw(shape), plain.draw(shape))  # (an ancestral step's noise: unchanged)

        shrunk = SeededNoise([5], rng, resize_from=(13, 9)).draw((4, 10, 8))[0]  # larger, odd differences
        small, big = fresh(5, (4, 13, 9)), fresh(5, (4, 10, 8))
        # (10 - 13) // 2 = -2: 13 - 2·2 = 9 rows, 2..10 of the old noise, into rows 0..8;
        # (8 - 9) // 2 = -1: 9 - 2 = 7 columns, 1..7, into 0..6; row 9 and column 7 stay this size's own
        assert torch.equal(shrunk[:, :9, :7], small[:, 2:11, 1:8])
        assert torch.equal(shrunk[:, 9], big[:, 9]) and torch.equal(shrunk[:, :, 7], big[:, :, 7])
        assert torch.equal(SeededNoise([5], rng, resize_from=(10, 8)).draw((4, 10, 8)), SeededNoise([5], rng).draw((4, 10, 8)))

        varied = SeededNoise([5], rng, variation_seeds=[40], variation_strength=1.0, resize_from=(6, 8)).draw(shape)[0]
        torch.testing.assert_close(varied[:, 2:8, 2:10], fresh(40, (4, 6, 8)), rtol=1e-4, atol=1e-4)
        assert torch.equal(varied[:, 0], fresh(5, shape)[:, 0])  # (outside: the seed's own, not the variation's)
        ensd = SeededNoise([5], rng, ensd=7, resize_from=(6, 8))
        ensd.draw(shape)
        assert torch.equal(ensd.draw(shape)[0], fresh(12, shape))  # ENSD: the rest from seed + delta, as without


def test_the_ancestral_eta_reaches_exactly_the_samplers_whose_function_takes_an_eta():
    """A1111 passes its Eta to every sampler function with an `eta` parameter; DDIM's eta is its own."""
    import inspect

    for name, spec in SAMPLERS.items():
        takes = "eta" in inspect.signature(spec.sampler).parameters
        assert spec.ancestral_eta == (takes and not spec.uses_eta), name
