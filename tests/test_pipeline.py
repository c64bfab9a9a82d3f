"""core.generate end to end on a tiny random model: parity with diffusers' StableDiffusionPipeline,
seeds, img2img, inpainting, previews, cancel, long prompts and request validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import sd_desktop.core as core
from sd_desktop.core.sampling import schedules as S
from sd_desktop.core.errors import Cancelled, InvalidRequestError, NonFiniteOutputError

from tiny_models import save_diffusers_folder, tiny_parts

SD15 = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
PROMPT, NEGATIVE = "a red circle on a blue background", "blurry"


@pytest.fixture(scope="module")
def parts():
    return tiny_parts(seed=20)


@pytest.fixture(scope="module")
def folder(parts, tmp_path_factory):
    return save_diffusers_folder(parts, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def model(folder):
    return core.load_model(folder, device="cpu", dtype="fp32")


def reference_pipeline(cls, parts, folder, scheduler):
    """A diffusers pipeline (StableDiffusionPipeline, ...Img2Img..., ...Inpaint...) over the tiny networks."""
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"), pad_token="<|endoftext|>", model_max_length=77)
    pipe = cls(vae=parts["vae"], text_encoder=parts["text_encoder"], tokenizer=tokenizer, unet=parts["unet"],
               scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def diffusers_latents(parts, folder, scheduler, *, steps, cfg, seed, batch=1, width=64, height=48):
    from diffusers import StableDiffusionPipeline

    pipe = reference_pipeline(StableDiffusionPipeline, parts, folder, scheduler)
    generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(batch)]
    with torch.no_grad():
        return pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=steps, guidance_scale=cfg,
                    generator=generators, num_images_per_prompt=batch, width=width, height=height,
                    output_type="latent").images


def rel_err(ours, reference):
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def request(**kwargs):
    values = dict(prompt=PROMPT, negative_prompt=NEGATIVE, seed=7, steps=8, cfg_scale=5.0, width=64, height=48)
    values.update(kwargs)
    return core.GenerationRequest(**values)


def dpm_over_our_normal_sigmas():
    """diffusers' DPM-Solver++(2M) stepping over our "normal" (A1111) sigma list."""
    from diffusers import DPMSolverMultistepScheduler

    class Scheduler(DPMSolverMultistepScheduler):
        def set_timesteps(self, num_inference_steps=None, device=None, **kwargs):
            super().set_timesteps(num_inference_steps, device=device)
            self.sigmas = S.normal_sigmas(num_inference_steps)

    return as_k_diffusion_runs_it(Scheduler)(**SD15, algorithm_type="dpmsolver++", solver_order=2)


def as_k_diffusion_runs_it(cls):
    """A diffusers DPM-Solver class run as k-diffusion (A1111, ours) runs it: from noise * sigma_max, which in
    DPM-Solver's variance-preserving space is noise * sigma_max / sqrt(sigma_max^2 + 1) rather than unit noise,
    and with each sigma's fractional timestep given to the U-Net rather than the nearest whole one."""

    class Scheduler(cls):
        def set_timesteps(self, *args, **kwargs):
            super().set_timesteps(*args, **kwargs)
            s0 = self.sigmas[0].float()
            self.init_noise_sigma = float(s0 / (s0**2 + 1).sqrt())
            self.timesteps = S.sigma_to_timestep(self.sigmas[:-1].float())

    return Scheduler


def reference_scheduler(sampler: str, schedule: str):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    if sampler == "ddim":
        return DDIMScheduler(**SD15, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    if sampler == "euler":
        return EulerDiscreteScheduler(**SD15, steps_offset=1, use_karras_sigmas=schedule == "karras")
    if schedule == "karras":
        return as_k_diffusion_runs_it(DPMSolverMultistepScheduler)(**SD15, steps_offset=1, algorithm_type="dpmsolver++",
                                                                   solver_order=2, use_karras_sigmas=True)
    return dpm_over_our_normal_sigmas()


# DPM++ 2M at 16 steps: from 15 on, diffusers' DPM-Solver takes k-diffusion's steps (below, it drops to first
# order on its last two)
@pytest.mark.parametrize("sampler, schedule, steps", [("ddim", "normal", 8), ("euler", "normal", 8),
                                                      ("euler", "karras", 8), ("dpmpp_2m", "normal", 16),
                                                      ("dpmpp_2m", "karras", 16)])
def test_latents_match_diffusers_pipeline(model, parts, folder, sampler, schedule, steps):
    reference = diffusers_latents(parts, folder, reference_scheduler(sampler, schedule), steps=steps, cfg=5.0, seed=7)
    ours = core.generate(model, request(sampler=sampler, schedule=schedule, steps=steps))
    assert ours.latents.shape == reference.shape == (1, 4, 6, 8)
    assert rel_err(ours.latents, reference) <= 1e-3


def test_seed_resize_starts_from_the_seeds_noise_of_the_old_size_in_the_middle(model, parts, folder):
    """A1111's Seed resize from: the picture is diffusers' from the starting noise A1111 lays out (seed 7's noise at
    the old size over the middle of its noise at this size); written in the text and restored from it; at the
    picture's own size it changes nothing and says so."""
    from diffusers import StableDiffusionPipeline

    from sd_desktop.core.io.metadata import parse_parameters, restore_request
    from sd_desktop.core.io.infotext import a1111_parameters

    latents = torch.randn((1, 4, 8, 10), generator=torch.Generator().manual_seed(7))  # 80x64 px
    latents[:, :, 1:7, 1:9] = torch.randn((1, 4, 6, 8), generator=torch.Generator().manual_seed(7))  # 64x48's
    pipe = reference_pipeline(StableDiffusionPipeline, parts, folder, reference_scheduler("euler", "normal"))
    with torch.no_grad():
        reference = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=8, guidance_scale=5.0, width=80,
                         height=64, latents=latents, output_type="latent").images
    ours = core.generate(model, request(sampler="euler", schedule="normal", width=80, height=64, seed_resize_from=(64, 48)))
    assert rel_err(ours.latents, reference) <= 1e-3
    plain = core.generate(model, request(sampler="euler", schedule="normal", width=80, height=64))
    assert rel_err(plain.latents, reference) > 0.05
    text = ours.images[0].info["parameters"]
    assert "Seed resize from: 64x48" in text and "Seed resize" not in plain.images[0].info["parameters"]
    assert restore_request(parse_parameters(text))[0].seed_resize_from == (64, 48)
    over = restore_request(a1111_parameters(plain.images[0].info["parameters"]), ours.request)[0]
    assert over.seed_resize_from is None  # (a text without it restores "off" over a request with it)
    same = core.generate(model, request(sampler="euler", schedule="normal", seed_resize_from=(64, 48)))
    assert torch.equal(same.latents, core.generate(model, request(sampler="euler", schedule="normal")).latents)
    assert any("seed resize from 64x48 is the picture's own size" in note for note in same.notes)
    with pytest.raises(InvalidRequestError, match="seed_resize_from must be a width and a height from 8"):
        core.generate(model, request(seed_resize_from=(0, 48)))


def test_batch_image_i_equals_a_single_run_with_seed_plus_i(model, parts, folder):
    batch = core.generate(model, request(sampler="ddim", batch_size=2))
    assert batch.seeds == [7, 8]
    single = core.generate(model, request(sampler="ddim", seed=8))
    assert rel_err(batch.latents[1], single.latents[0]) <= 1e-5
    reference = diffusers_latents(parts, folder, reference_scheduler("ddim", "normal"), steps=8, cfg=5.0, seed=7, batch=2)
    assert rel_err(batch.latents, reference) <= 1e-3


@pytest.mark.slow
def test_ancestral_samplers_are_deterministic_per_seed_and_batch_consistent(model):
    for sampler in ("euler_a", "ddpm", "dpmpp_sde", "dpmpp_2m_sde", "lcm"):  # dpmpp_*sde: Brownian-tree noise
        a = core.generate(model, request(sampler=sampler, batch_size=2))
        b = core.generate(model, request(sampler=sampler, seed=8))
        c = core.generate(model, request(sampler=sampler, seed=8))
        assert torch.equal(b.latents, c.latents)
        assert rel_err(a.latents[1], b.latents[0]) <= 1e-5
        assert not torch.allclose(a.latents[0], a.latents[1])


def test_nv_noise_source_is_per_image_and_written(model, monkeypatch):
    """rng="nv": each image's noise from a CUDA generator's numbers (A1111's default on NVIDIA cards)."""
    import sd_desktop.core.pipelines.generate as pipeline
    from sd_desktop.core.sampling.noise import PhiloxNoise, SeededNoise

    drawn = []

    class Recording(SeededNoise):
        def draw(self, *args, **kwargs):
            drawn.append(super().draw(*args, **kwargs))
            return drawn[-1]

    monkeypatch.setattr(pipeline, "SeededNoise", Recording)

    batch = core.generate(model, request(rng="nv", batch_size=2, sampler="euler_a"))
    single = core.generate(model, request(rng="nv", seed=8, sampler="euler_a"))
    assert rel_err(batch.latents[1], single.latents[0]) <= 1e-5
    cpu = core.generate(model, request(rng="cpu", seed=8, sampler="euler_a"))
    assert not torch.allclose(cpu.latents, single.latents, atol=1e-3)
    assert "RNG: NV" in single.images[0].info["parameters"] and "RNG: CPU" in cpu.images[0].info["parameters"]
    drawn.clear()
    core.generate(model, request(rng="nv", seed=8, sampler="euler_a"))
    assert torch.equal(drawn[0][0], PhiloxNoise(8).randn((4, 6, 8)))  # the starting noise: the seed's first draw
    generator = PhiloxNoise(8)
    generator.randn((4, 6, 8))
    assert len(drawn) == 1 + 7 and torch.equal(drawn[1][0], generator.randn((4, 6, 8)))  # Euler a's, after it
    with pytest.raises(InvalidRequestError, match="rng"):
        core.generate(model, request(rng="gpu"))


def test_ensd_changes_an_ancestral_samplers_noise_and_nothing_else(model):
    """A1111's "ENSD: 31337" (Eta noise seed delta): Euler a's noise after the start comes from seed + ENSD, and the
    image says so; DPM++ 2M draws no noise after the start, and DPM++ SDE's Brownian tree takes the seed itself."""
    plain, delta = (core.generate(model, request(seed=8, sampler="euler_a", ensd=ensd)) for ensd in (0, 31337))
    assert not torch.allclose(plain.latents, delta.latents, atol=1e-3)
    assert "ENSD: 31337" in delta.images[0].info["parameters"] and "ENSD" not in plain.images[0].info["parameters"]
    for sampler in ("dpmpp_2m", "dpmpp_sde"):
        runs = [core.generate(model, request(seed=8, sampler=sampler, ensd=ensd)) for ensd in (0, 31337)]
        assert torch.equal(runs[0].latents, runs[1].latents) and "ENSD" not in runs[1].images[0].info["parameters"]
    with pytest.raises(InvalidRequestError, match="ensd must be a whole number from 0"):
        core.generate(model, request(ensd=-1))


def test_the_ancestral_eta_reaches_the_sampler(model):
    """A1111's Eta for ancestral samplers: at 0 Euler a adds no noise, and is Euler."""
    euler = core.generate(model, request(seed=8, sampler="euler", schedule="normal"))
    quiet = core.generate(model, request(seed=8, sampler="euler_a", schedule="normal", ancestral_eta=0.0))
    assert rel_err(quiet.latents, euler.latents) <= 1e-6 and "Eta: 0.0" in quiet.images[0].info["parameters"]
    half = core.generate(model, request(seed=8, sampler="euler_a", schedule="normal", ancestral_eta=0.5))
    assert rel_err(half.latents, quiet.latents) > 1e-3
    with pytest.raises(InvalidRequestError, match="ancestral_eta must be from 0 to 1 "):
        core.generate(model, request(ancestral_eta=-0.5))


def test_random_seed_is_reported_and_reproduces(model):
    first = core.generate(model, request(seed=None, steps=3))
    assert isinstance(first.seeds[0], int) and first.request.seed == first.seeds[0]
    again = core.generate(model, request(seed=first.seeds[0], steps=3))
    assert torch.equal(first.latents, again.latents)


def test_cfg_one_skips_the_unconditional_pass(model, monkeypatch):
    batches = []
    original = model.unet.forward

    def counting(x, t, ctx):
        batches.append(x.shape[0])
        return original(x, t, ctx)

    monkeypatch.setattr(model.unet, "forward", counting)
    core.generate(model, request(cfg_scale=1.0, steps=3, sampler="euler"))
    assert batches == [1, 1, 1]
    batches.clear()
    core.generate(model, request(cfg_scale=7.0, steps=3, sampler="euler"))
    assert batches == [2, 2, 2]  # uncond and cond in one batched call


def test_previews_every_step_and_images_carry_parameters(model):
    seen = []
    result = core.generate(model, request(steps=5), on_step=seen.append)
    assert [s.step for s in seen] == [1, 2, 3, 4, 5] and all(s.total == 5 for s in seen)
    assert all(s.preview.dtype == np.uint8 and s.preview.shape == (6, 8, 3) for s in seen)
    image = result.images[0]
    assert image.size == (64, 48) and image.mode == "RGB"
    assert "Steps: 5, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.0, Seed: 7, Size: 64x48" in image.info["parameters"]
    params = core.read_parameters(image)
    assert params["prompt"] == PROMPT and params["seed"] == 7 and params["mode"] == "txt2img"


def test_cancel_stops_within_one_step_and_raises(model):
    steps_done = []
    with pytest.raises(Cancelled):
        core.generate(model, request(steps=20, sampler="euler"), on_step=steps_done.append,
                      should_stop=lambda: len(steps_done) >= 3)
    assert len(steps_done) == 3


def test_a_cancel_lands_inside_a_unet_call_and_a_decode(model):
    """The U-Net asks the stop check between its blocks and the VAE decoder between its levels, so a cancel (or a
    quit) does not wait for the rest of a 2-second step; outside stop_points nothing is asked."""
    from sd_desktop.core.interrupt import stop_points

    ran = []
    hooks = [block.register_forward_hook(lambda *_: ran.append(1)) for block in model.unet.output_blocks]
    hooks += [block.register_forward_hook(lambda *_: ran.append(2)) for level in model.vae.decoder.up
              for block in level.block]
    asks = []

    def stop_after(n):
        return lambda: asks.append(1) or len(asks) > n

    x, context = torch.randn(1, 4, 8, 8), torch.randn(1, 77, model.unet.config.context_dim)
    try:
        with stop_points(stop_after(2)), pytest.raises(Cancelled):
            model.unet(x, torch.tensor([500]), context)
        assert len(asks) == 3 and ran == []  # stopped after the third input block: no output block ran
        model.unet(x, torch.tensor([500]), context)  # no stop_points open: the whole call, nothing asked
        assert len(asks) == 3 and ran == [1] * len(model.unet.output_blocks)

        ran.clear(), asks.clear()
        with pytest.raises(Cancelled):  # the decode as generate does it, stopped before its second level
            core.pipelines.generate.decode(model, torch.randn(1, 4, 8, 8), stop_after(1))
        assert len(asks) == 2 and ran == []  # asked before the decode and before the first level: no level ran
        core.pipelines.generate.decode(model, torch.randn(1, 4, 8, 8), None)
        assert ran == [2] * sum(len(level.block) for level in model.vae.decoder.up)

        steps_done, asks = [], []  # the whole generation: cancelled inside its first step's U-Net call
        with pytest.raises(Cancelled):
            core.generate(model, request(steps=20, sampler="euler"), on_step=steps_done.append,
                          should_stop=lambda: asks.append(1) or len(asks) > 5)
        assert steps_done == [] and len(asks) == 6
    finally:
        for hook in hooks:
            hook.remove()


def test_long_prompts_are_chunked_not_cut(model, monkeypatch):
    contexts = []
    original = model.unet.forward
    monkeypatch.setattr(model.unet, "forward", lambda x, t, ctx: contexts.append(ctx.shape) or original(x, t, ctx))
    long_prompt = " ".join(["red circle"] * 60)  # 120 tokens -> two chunks
    a = core.generate(model, request(prompt=long_prompt, steps=2))
    assert contexts[0][1] == 154
    b = core.generate(model, request(prompt=long_prompt + " blue", steps=2))
    assert not torch.equal(a.latents, b.latents)  # the words after token 75 still count


def test_img2img_strength_zero_returns_the_init_image_through_the_vae(model):
    init = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    result = core.generate(model, request(init_image=init, strength=0.0))
    assert result.mode == "img2img"
    pixels = torch.from_numpy(np.asarray(init, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = model.vae.decode(model.vae.encode(pixels))
    decoded = torch.from_numpy(np.asarray(result.images[0], dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    assert (decoded - expected.clamp(-1, 1)).abs().max() <= 1.5 / 127.5


def img2img_reference(parts, folder, init_latents, strength, steps):
    """diffusers' StableDiffusionImg2ImgPipeline (DDIM) from the same init latents (it samples the VAE's
    posterior with the generator when given pixels; A1111 and we take its mean)."""
    from diffusers import StableDiffusionImg2ImgPipeline

    pipe = reference_pipeline(StableDiffusionImg2ImgPipeline, parts, folder, reference_scheduler("ddim", "normal"))
    with torch.no_grad():
        return pipe(PROMPT, negative_prompt=NEGATIVE, image=init_latents, strength=strength, num_inference_steps=steps,
                    guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(7), output_type="latent").images


@pytest.mark.parametrize("strength, steps_run", [(1.0, 4), (0.5, 2)])
def test_img2img_matches_diffusers_and_keeps_the_image_at_full_strength(model, parts, folder, strength, steps_run):
    """Strength 1 runs every step, starting from the init latents noised to the first timestep (as diffusers'
    img2img and A1111 do): the init image still shows, it is not a txt2img."""
    from sd_desktop.core.runtime.vae_ops import encode_pixels

    init = Image.fromarray(np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    seen = []
    ours = core.generate(model, request(init_image=init, strength=strength, steps=4, sampler="ddim"),
                         on_step=seen.append)
    assert [s.step for s in seen] == list(range(1, steps_run + 1))
    with torch.no_grad():
        init_latents = encode_pixels(model, torch.from_numpy(np.asarray(init, np.float32) / 127.5 - 1).permute(2, 0, 1)[None])
    reference = img2img_reference(parts, folder, init_latents, strength, steps=4)
    assert rel_err(ours.latents, reference) <= 1e-3
    txt = core.generate(model, request(steps=4, sampler="ddim"))
    assert rel_err(ours.latents, txt.latents) > 0.01  # the init still shows (rounding errors are ~1e-6)


def test_img2img_runs_the_last_round_steps_times_strength(model):
    seen = []
    init = Image.new("RGB", (64, 48), (200, 30, 30))
    core.generate(model, request(init_image=init, strength=0.33, steps=20), on_step=seen.append)
    assert seen[-1].total == 7  # round(20 * 0.33), where diffusers' int() runs 6


def test_inpainting_keeps_pixels_outside_the_mask_exactly(model):
    rng = np.random.default_rng(1)
    init = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    mask = np.zeros((48, 64), np.uint8)
    mask[:, 32:] = 255  # repaint the right half
    for full_res in (False, True):
        result = core.generate(model, request(init_image=init, mask=Image.fromarray(mask), mask_blur=2,
                                              inpaint_full_res=full_res, strength=1.0))
        out = np.asarray(result.images[0])
        assert result.mode == "inpaint" and out.shape == (48, 64, 3)
        assert np.array_equal(out[:, :26], np.asarray(init)[:, :26])  # beyond the feathered edge: untouched
        assert not np.array_equal(out[:, 40:], np.asarray(init)[:, 40:])


def test_nine_channel_inpainting_matches_diffusers_inpaint_pipeline(tmp_path):
    """[latents, mask, masked-image latents] into a 9-channel U-Net, step for step as diffusers'
    StableDiffusionInpaintPipeline (DDIM, strength 0.75) computes it, given the same init and masked latents."""
    from diffusers import StableDiffusionInpaintPipeline

    from sd_desktop.core.pipelines.generate import inpainting_conditioning
    from sd_desktop.core.runtime.vae_ops import encode_pixels

    parts = tiny_parts(in_channels=9, seed=30)
    folder = save_diffusers_folder(parts, tmp_path / "inpaint")
    model = core.load_model(folder, device="cpu", dtype="fp32")
    init = Image.fromarray(np.random.default_rng(4).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))  # on the latent grid: nearest-neighbour downsampling agrees exactly
    ours = core.generate(model, request(init_image=init, mask=mask, mask_blur=2, width=64, height=64, steps=8,
                                        sampler="ddim", strength=0.75))
    with torch.no_grad():
        init_latents = encode_pixels(model, torch.from_numpy(np.asarray(init, np.float32) / 127.5 - 1).permute(2, 0, 1)[None])
        masked_latents = inpainting_conditioning(model, init, mask, 64, 64, 1)[:, 1:]
    pipe = reference_pipeline(StableDiffusionInpaintPipeline, parts, folder, reference_scheduler("ddim", "normal"))
    with torch.no_grad():
        reference = pipe(PROMPT, negative_prompt=NEGATIVE, image=init_latents, mask_image=mask,
                         masked_image_latents=masked_latents, strength=0.75, num_inference_steps=8, guidance_scale=5.0,
                         height=64, width=64, generator=torch.Generator("cpu").manual_seed(7), output_type="latent").images
    assert rel_err(ours.latents, reference) <= 1e-3
    out = np.asarray(ours.images[0])
    assert np.array_equal(out[:, 40:], np.asarray(init)[:, 40:])  # kept beyond the feathered edge
    txt = core.generate(model, request(width=64, height=64, steps=2))  # no image: everything is painted
    assert txt.images[0].size == (64, 64)


def test_sizes_are_rounded_to_multiples_of_8_and_reported(model):
    result = core.generate(model, request(width=61, height=50, steps=2))
    assert result.images[0].size == (64, 48)
    assert any("61x50 rounded to 64x48" in note for note in result.notes)
    assert core.generate(model, core.GenerationRequest(prompt="x", steps=1, seed=1)).images[0].size == (64, 64)


@pytest.mark.parametrize("field, value, words", [
    ("steps", 0, "steps must be at least 1"),
    ("width", -64, "width must be a positive"),
    ("strength", 1.7, "strength must be between 0 and 1"),
    ("sampler", "plms", "sampler 'plms' is unknown"),
    ("schedule", "polyexponential", "schedule 'polyexponential' is unknown"),
    ("init_image", "/nonexistent/image.png", "init_image: image file not found"),
    ("mask", Image.new("L", (8, 8)), "mask needs an init_image"),
    ("emphasis", "Loud", "emphasis 'Loud' is unknown; choose one of Original, No norm, Ignore, None, ComfyUI"),
    ("clip_skip", 3, "clip_skip must be a whole number from 1 to 2 for this model"),
])
def test_invalid_requests_name_the_field(model, field, value, words):
    with pytest.raises(InvalidRequestError, match=words):
        core.generate(model, request(**{field: value}))
    assert issubclass(InvalidRequestError, ValueError)


def test_unreadable_init_image_is_reported(model, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InvalidRequestError, match="init_image: cannot read broken.png"):
        core.generate(model, request(init_image=broken))


def test_non_finite_latents_are_refused_naming_float16(folder):
    """float16 overflow gives NaN latents, which decode to a black picture: generate refuses, saying what to
    choose instead, and returns no image."""
    model = core.load_model(folder, device="cpu", dtype="fp16")
    real = model.unet.forward
    model.unet.forward = lambda x, t, ctx: real(x, t, ctx) * float("inf")
    with pytest.raises(NonFiniteOutputError, match="overflowed in float16; choose bf16 or fp32"):
        core.generate(model, request(steps=2))


def test_a_decode_that_stays_non_finite_is_refused(model, monkeypatch):
    import sd_desktop.core.pipelines.generate as pipeline

    monkeypatch.setattr(pipeline, "decode_latents", lambda model, latents, tiled: torch.full(
        (1, 3, latents.shape[2] * 8, latents.shape[3] * 8), float("nan")))
    with pytest.raises(NonFiniteOutputError, match="the decoded image came out as NaN .* in float32"):
        core.generate(model, request(steps=2))


def test_no_float64_tensor_is_made_and_timesteps_are_looked_up_once_on_the_cpu(model, monkeypatch):
    """MPS has no float64 and searches slowly: every sigma's timestep is looked up in one CPU call before the
    loop, and no torch op of a generation or an interpolation makes a float64 tensor."""
    from torch.utils._python_dispatch import TorchDispatchMode

    import sd_desktop.core.sampling.denoisers as denoisers

    lookups = []
    real_lookup = denoisers.sigma_to_timestep

    def lookup(sigma, *args, **kwargs):
        lookups.append(sigma.device.type)
        return real_lookup(sigma, *args, **kwargs)

    monkeypatch.setattr(denoisers, "sigma_to_timestep", lookup)

    class Float64Watch(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64:
                    self.ops.add(str(func))
            return out

    init = Image.new("RGB", (64, 48), (200, 30, 30))
    with Float64Watch() as watch:
        for sampler, schedule in (("dpmpp_2m", "karras"), ("euler_a", "normal"), ("ddim", "normal")):
            lookups.clear()
            core.generate(model, request(steps=6, sampler=sampler, schedule=schedule))
            assert lookups == ["cpu"], sampler
        core.generate(model, request(init_image=init, strength=0.5, steps=6))
        prepared = core.prepare_interpolation(model, core.InterpolationRequest(
            image_a=init, image_b=Image.new("RGB", (64, 48), (30, 30, 200)), steps=3, invert_iterations=1))
        prepared.frame(0.4)
    assert watch.ops == set()


def test_settings_that_do_nothing_here_are_said(model):
    """A negative prompt at CFG 1 (one pass a step, of the prompt alone) and SDXL's size conditioning on an SD 1.x
    model change nothing: each is said, as the size's rounding is."""
    from sd_desktop.core.pipelines.generate import validate_request

    _, notes = validate_request(model, request(width=64, height=64, steps=1, negative_prompt="blurry", cfg_scale=1.0))
    assert notes == ["the negative prompt is not used at CFG 1 (each step is one pass, of the prompt alone)"]
    _, notes = validate_request(model, request(width=64, height=64, steps=1, original_size=(1024, 1024)))
    assert len(notes) == 1 and "SDXL's conditioning" in notes[0]
    _, notes = validate_request(model, request(width=64, height=64, steps=1, negative_prompt="blurry", cfg_scale=0.5))
    assert notes == []  # (below 1 it is used: the unconditional side weighs more)


def test_variation_seeds_move_the_picture_towards_another_seeds(model):
    """A1111's Variation seed: strength 1 is the variation seed's picture; image i of a batch takes variation seed
    + i, as A1111's subseeds do; the image says both, and a strength without a seed draws one and says it."""
    other = core.generate(model, request(seed=40, sampler="euler", batch_size=2))
    full = core.generate(model, request(seed=8, sampler="euler", batch_size=2, variation_seed=40, variation_strength=1.0))
    assert rel_err(full.latents, other.latents) <= 1e-4
    # the seed stays for every image of a batch, only the variation seed counts up (A1111's all_seeds, all_subseeds):
    # with Euler a, whose later noise is the seed's, image 1 equals a run of seed 8 with variation seed 41
    batch = core.generate(model, request(seed=8, sampler="euler_a", batch_size=2, variation_seed=40,
                                         variation_strength=0.5))
    second = core.generate(model, request(seed=8, sampler="euler_a", variation_seed=41, variation_strength=0.5))
    assert batch.seeds == [8, 8] and rel_err(batch.latents[1:], second.latents) <= 1e-5
    assert "Seed: 8, " in batch.images[1].info["parameters"]
    assert "Variation seed: 41, " in batch.images[1].info["parameters"]  # (each image says its own)
    near = core.generate(model, request(seed=8, sampler="euler", variation_seed=40, variation_strength=0.1))
    plain = core.generate(model, request(seed=8, sampler="euler"))
    assert 1e-3 < rel_err(near.latents, plain.latents) < rel_err(other.latents[:1], plain.latents)
    text = near.images[0].info["parameters"]
    assert "Variation seed: 40, Variation seed strength: 0.1" in text and "Variation" not in plain.images[0].info["parameters"]
    from sd_desktop.core.io.metadata import parse_parameters, restore_request

    restored = restore_request(parse_parameters(text))[0]
    assert (restored.variation_seed, restored.variation_strength) == (40, 0.1)
    drawn = core.generate(model, request(seed=8, sampler="euler", variation_strength=0.1))
    assert drawn.request.variation_seed is not None
    assert f"Variation seed: {drawn.request.variation_seed}," in drawn.images[0].info["parameters"]
    with pytest.raises(InvalidRequestError, match="variation_strength must be from 0 to 1"):
        core.generate(model, request(variation_strength=1.5))
