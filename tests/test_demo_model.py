"""The bundled demo model: it is there, it is what the loader, the CLI and the app start with, and it
follows prompts (a floor below what benchmarks/demo_quality.py measures on more prompts; see README)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from sd_desktop import core
from sd_desktop.resources_path import bundled_model
from sd_desktop.training.diffusion_stage import judge_model
from sd_desktop.training.judge import judge

PROMPTS = 24


@pytest.fixture(scope="module")
def model():
    return core.load_model(None, device="cpu")


def test_the_demo_model_ships_small_and_says_how_it_was_made():
    path = bundled_model()
    assert path is not None, "resources/models/ must hold the demo model"
    assert path.stat().st_size <= 32 * 2**20
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
        keys = list(f.keys())
    ours = json.loads(metadata["sd_desktop"])
    assert 0.01 < ours["scale_factor"] < 10 and ours["native_size"] >= 128 and len(ours["latent_rgb"]) == 5
    recipe = json.loads(metadata["sd_desktop_recipe"])
    assert recipe["training_command"].startswith("sd-desktop train all") and recipe["diffusion"]["steps"] > 0
    assert len(metadata["sd_desktop_commit"]) == 40
    # the original LDM layout of SD 1.x files
    assert {k.split(".")[0] for k in keys} == {"model", "first_stage_model", "cond_stage_model"}


def test_it_loads_by_default_as_an_sd1_model(model):
    assert model.family.name == "sd1" and model.native_size >= 128
    assert model.path == bundled_model()


@pytest.mark.slow
def test_it_follows_prompts(model):
    scores, _ = judge_model(model, PROMPTS, prompt_seed=5, first_seed=500)  # the app's default request
    assert scores["background"] >= 0.8 and scores["colour"] >= 0.75 and scores["shape"] >= 0.6, scores


@pytest.mark.slow
def test_inpainting_puts_the_new_object_in_the_masked_half_and_keeps_the_rest(model):
    size = model.native_size
    base = core.generate(model, core.GenerationRequest(prompt="a small white square in the top right on a blue background",
                                                       seed=3)).images[0]
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (0, 0, size // 2, size))
    placed = 0
    colours = ("red", "yellow", "green", "orange", "purple", "black")
    for seed, colour in enumerate(colours):
        result = core.generate(model, core.GenerationRequest(
            prompt=f"a large {colour} circle on a blue background", seed=seed, init_image=base, mask=mask,
            mask_blur=4, strength=1.0)).images[0]
        kept = slice(size // 2 + 3 * 4 + 2, size)  # beyond the feathered edge (PIL's blur reaches ~3 sigma)
        assert np.array_equal(np.asarray(result)[:, kept], np.asarray(base)[:, kept])
        left = result.crop((0, 0, size // 2, size))
        placed += judge(left.resize((size, size), Image.NEAREST)).object_colour == colour
    assert placed >= 3  # benchmarks/demo_quality.py measures 81% on 16 cases; 6 cases keep chance out of it


@pytest.mark.slow
def test_interpolation_ends_reconstruct_the_two_images(model):
    a, b = (core.generate(model, core.GenerationRequest(prompt=p, seed=s)).images[0]
            for p, s in (("a red circle on a blue background", 1), ("a yellow triangle on a black background", 2)))
    prepared = core.prepare_interpolation(model, core.InterpolationRequest(
        image_a=a, image_b=b, prompt_a="a red circle on a blue background",
        prompt_b="a yellow triangle on a black background", steps=30))
    for t, image in ((0.0, a), (1.0, b)):
        frame = np.asarray(prepared.frame(t), dtype=np.float64)
        mse = ((frame - np.asarray(image, dtype=np.float64)) ** 2).mean()
        assert 10 * np.log10(255**2 / mse) >= 20
    middle = judge(prepared.frame(0.5))
    assert middle.background in ("blue", "black", "purple")  # on the way, not off somewhere else


def test_it_comes_with_its_own_taesd_whose_pictures_are_the_vaes(model):
    """The bundled TAESD, distilled from the demo VAE (sd-desktop train taesd): loaded with the model, its previews
    by default, and its decode of real demo latents close to the VAE's (in [0, 1])."""
    import torch

    from sd_desktop.core.runtime.vae_ops import decode_latents, encode_pixels
    from sd_desktop.resources_path import bundled_taesd
    from sd_desktop.training import shapes

    path = bundled_taesd(bundled_model())
    assert path is not None and path.stat().st_size < 3 * 2**20  # fp16, ~1.2 M parameters
    assert model.came_with_taesd and model.taesd_previews and model.taesd.decoder is not None
    rng = np.random.default_rng(7)
    pictures = torch.stack([shapes.sample(rng, 128)[0] for _ in range(4)])
    with torch.inference_mode():
        latents = encode_pixels(model, pictures)
        vae = (decode_latents(model, latents).clamp(-1, 1) + 1) / 2
        tiny = model.taesd.decode(latents)
    assert tiny.shape == vae.shape
    assert (tiny - vae).abs().mean() < 0.03  # (an untrained decoder: ~0.3)
    seen = []
    core.generate(model, core.GenerationRequest(prompt="a red circle", steps=3, seed=1), on_step=seen.append)
    pictures = [s.preview for s in seen if s.preview is not None]
    assert pictures and pictures[-1].shape == (model.native_size, model.native_size, 3)  # full size, not 1/8
