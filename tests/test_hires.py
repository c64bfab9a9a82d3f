"""A1111's Hires fix: equal to its two passes run by hand (a picture upscaler, an ESRGAN-family model, and the
latent upscale), one progress over both passes, A1111's infotext keys written and read back, and bad values
refused in one line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sd_desktop import core
from sd_desktop.core.io.infotext import a1111_parameters, format_parameters, parse_parameters
from sd_desktop.core.io.metadata import request_from_parameters
from sd_desktop.core.pipelines import generate as pipeline
from sd_desktop.core.sampling.registry import SAMPLERS
from sd_desktop.core.upscale import load_upscaler, upscale_image
from sd_desktop.core.upscale.catalogue import bundled_folder

from tiny_models import save_diffusers_folder, tiny_parts


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = save_diffusers_folder(tiny_parts(seed=31), tmp_path_factory.mktemp("tiny") / "model")
    return core.load_model(folder, device="cpu", dtype="fp32")


BASE = core.GenerationRequest(prompt="a red circle", negative_prompt="blue", steps=3, cfg_scale=5.0, seed=7,
                              width=32, height=24, sampler="euler_a", schedule="karras", strength=0.6, batch_size=2)


def by_hand(model, upscale) -> tuple[list[Image.Image], torch.Tensor]:
    """The first pass, `upscale` on its pictures, then Image to Image at 64x48 with 2 steps, image by image."""
    first = core.generate(model, BASE)
    images, latents = [], []
    for index, picture in enumerate(first.images):
        second = core.generate(model, dataclasses.replace(BASE, init_image=upscale(picture), width=64, height=48,
                                                          steps=2, seed=BASE.seed + index, batch_size=1))
        images += second.images
        latents.append(second.latents)
    return images, torch.cat(latents)


@pytest.mark.parametrize("upscaler", ["Lanczos", "realesr-animevideov3-x2"])
def test_hires_with_a_picture_upscaler_equals_its_two_passes_by_hand(model, upscaler):
    if upscaler == "Lanczos":
        def upscale(picture):
            return picture.resize((64, 48), Image.LANCZOS)
    else:
        network = load_upscaler(bundled_folder() / f"{upscaler}.safetensors")

        def upscale(picture):
            return upscale_image(network, picture, 2.0)

    request = dataclasses.replace(BASE, hires_fix=True, hires_scale=2.0, hires_upscaler=upscaler, hires_steps=2)
    steps = []
    result = core.generate(model, request, on_step=lambda info: steps.append((info.step, info.total)))
    images, latents = by_hand(model, upscale)
    assert [image.size for image in result.images] == [(64, 48)] * 2
    assert torch.allclose(result.latents, latents, rtol=1e-4, atol=1e-3)  # (a batch of 2 against 1 and 1)
    for ours, theirs in zip(result.images, images):
        assert np.abs(np.asarray(ours).astype(int) - np.asarray(theirs).astype(int)).max() <= 1
    second = len(steps) - 3  # img2img at 0.6 of 2 steps
    assert steps == [(i, 3 + second) for i in range(1, 4 + second)] and second >= 1  # one progress, both passes


def test_latent_hires_equals_the_latents_resized_then_sampled(model):
    request = dataclasses.replace(BASE, hires_fix=True, hires_scale=1.5, hires_upscaler="Latent (bicubic)")
    result = core.generate(model, request)
    first = core.generate(model, BASE)
    start = F.interpolate(first.latents, size=(36 // 8, 48 // 8), mode="bicubic", antialias=False)
    second = dataclasses.replace(BASE, width=48, height=32, hires_fix=False)  # int(32*1.5)=48, int(24*1.5)=36 -> 32
    with torch.inference_mode():
        _, latents = pipeline._run(model, second, None, None, [7, 8], None, lambda: False, init_latents=start)
    assert result.latents.shape == (2, 4, 4, 6) and result.images[0].size == (48, 32)
    assert torch.allclose(result.latents, latents, rtol=1e-4, atol=1e-3)  # (a batch of 2 against 1 and 1)
    plain = core.generate(model, dataclasses.replace(BASE, width=48, height=32))
    assert not torch.allclose(result.latents, plain.latents, atol=1e-2)  # (not a plain run at the larger size)


def test_hires_infotext_is_a1111s_and_reads_back():
    request = dataclasses.replace(BASE, hires_fix=True, hires_scale=2.0, hires_upscaler="Latent", hires_steps=0)
    text = format_parameters(request, seed=7, width=32, height=24, model_name="m", model_hash=None, mode="txt2img")
    assert "Size: 32x24" in text and "Denoising strength: 0.6, " in text
    assert "Hires upscale: 2, Hires upscaler: Latent" in text and "Hires steps" not in text  # 0: the same as Steps
    back = request_from_parameters(parse_parameters(text))
    assert (back.hires_fix, back.hires_scale, back.hires_upscaler, back.hires_steps, back.strength) == (
        True, 2.0, "Latent", 0, 0.6)
    a1111 = ("x\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Denoising strength: 0.4, "
             "Hires upscale: 1.5, Hires steps: 12, Hires upscaler: R-ESRGAN 4x+, Version: v1.10.1")
    params = a1111_parameters(a1111)
    assert (params["hires_scale"], params["hires_steps"], params["hires_upscaler"]) == (1.5, 12, "realesrgan-x4plus")
    assert params["ignored"] == [] and a1111_parameters("x\nSteps: 20, Seed: 1, Size: 8x8")["hires_fix"] is False


@pytest.mark.parametrize("change, words", [
    (dict(hires_scale=5.0), "hires_scale must be from 1 to 4"),
    (dict(hires_steps=-1), "hires_steps must be from 0"),
    (dict(init_image=Image.new("RGB", (32, 24))), "hires fix works in Text to Image only"),
    (dict(hires_upscaler="4x-Nowhere"), "no upscaler named '4x-Nowhere'"),
])
def test_bad_hires_values_are_refused_in_one_line(model, change, words):
    with pytest.raises(core.InvalidRequestError, match=words) as error:
        core.generate(model, dataclasses.replace(BASE, hires_fix=True, **change))
    assert "\n" not in str(error.value)


def test_the_upscaler_is_found_before_any_sampling_by_any_case_or_a1111s_file_name(model, tmp_path, monkeypatch):
    from sd_desktop.core.pipelines.hires import resolve_upscaler
    from sd_desktop.core.upscale.catalogue import bundled_folder as bundled

    sampled = []
    monkeypatch.setattr(pipeline, "_run", lambda *a, **k: sampled.append(1))
    with pytest.raises(core.InvalidRequestError, match="no upscaler named '4x-Nowhere'"):
        core.generate(model, dataclasses.replace(BASE, hires_fix=True, hires_upscaler="4x-Nowhere"))
    assert sampled == []  # refused before the first pass
    request = dataclasses.replace(BASE, hires_fix=True, hires_upscaler="latent (BICUBIC)")
    assert resolve_upscaler(request) == "Latent (bicubic)"
    folder = tmp_path / "RealESRGAN"
    folder.mkdir()
    (folder / "RealESRGAN_x4plus.safetensors").write_bytes((bundled() / "realesr-animevideov3-x4.safetensors").read_bytes())
    found = resolve_upscaler(dataclasses.replace(request, hires_upscaler="R-ESRGAN 4x+"), [tmp_path / "checkpoints"])
    assert found == folder / "RealESRGAN_x4plus.safetensors"  # A1111's name, A1111's file, beside the models folder
    assert resolve_upscaler(dataclasses.replace(request, hires_upscaler="R-ESRGAN 4x+"), [folder]) == found  # the folder itself


def test_restoring_a1111_defaults_overrides_the_controls():
    from sd_desktop.core.io.metadata import restore_request

    params = a1111_parameters("x\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, "
                              "Denoising strength: 0.4, Hires upscale: 2, Hires upscaler: Latent")
    current = core.GenerationRequest(hires_steps=15, masked_content="fill", resize_mode="crop and resize",
                                     soft_inpainting=True, inpaint_padding=64)
    restored, _notes = restore_request(params, current)
    assert (restored.hires_fix, restored.hires_steps, restored.masked_content, restored.resize_mode,
            restored.soft_inpainting, restored.inpaint_padding) == (True, 0, "original", "just resize", False, 32)


def test_the_second_pass_takes_its_own_sampler_schedule_and_cfg_and_the_text_says_them(model):
    """A1111's Hires sampler and Hires schedule type, Forge's Hires CFG Scale: the second pass is an Image to Image
    pass with them (run by hand here); written only where they differ from the first pass's, read back, and a text
    without them restores the first pass's over controls that had them."""
    from sd_desktop.core.io.metadata import restore_request

    request = dataclasses.replace(BASE, batch_size=1, hires_fix=True, hires_scale=2.0, hires_upscaler="Lanczos",
                                  hires_steps=4, hires_sampler="dpmpp_2m", hires_schedule="exponential", hires_cfg=3.0)
    totals = []
    result = core.generate(model, request, on_step=lambda info: totals.append(info.total))
    first = core.generate(model, dataclasses.replace(BASE, batch_size=1))
    second_steps = []
    by_hand = core.generate(model, dataclasses.replace(
        BASE, batch_size=1, init_image=first.images[0].resize((64, 48), Image.LANCZOS), width=64, height=48,
        steps=4, sampler="dpmpp_2m", schedule="exponential", cfg_scale=3.0), on_step=second_steps.append)
    assert torch.allclose(result.latents, by_hand.latents, rtol=1e-4, atol=1e-4)
    assert set(totals) == {3 + len(second_steps)}  # (one progress over both passes, the second pass's own count)
    same = core.generate(model, dataclasses.replace(request, hires_sampler=None, hires_schedule=None, hires_cfg=None))
    assert not torch.allclose(same.latents, result.latents, atol=1e-3)
    text = result.images[0].info["parameters"]
    assert "Hires sampler: DPM++ 2M, Hires schedule type: Exponential, Hires CFG Scale: 3.0, " in text
    assert "Hires sampler" not in same.images[0].info["parameters"]
    back = restore_request(a1111_parameters(text))[0]
    assert (back.hires_sampler, back.hires_schedule, back.hires_cfg) == ("dpmpp_2m", "exponential", 3.0)
    plain = restore_request(a1111_parameters(same.images[0].info["parameters"]), back)[0]
    assert (plain.hires_sampler, plain.hires_schedule, plain.hires_cfg) == (None, None, None)
    line = "x\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Hires upscale: 2, {}Version: v1"
    old = a1111_parameters(line.format("Hires sampler: DPM++ 2M Karras, "))  # (before 1.9: the schedule in the label)
    assert (old["hires_sampler"], old["hires_schedule"], old["ignored"]) == ("dpmpp_2m", "karras", [])
    own = a1111_parameters(line.format("Hires sampler: DDIM, Hires schedule type: Automatic, "))
    assert (own["hires_sampler"], own["hires_schedule"]) == ("ddim", SAMPLERS["ddim"].default_schedule)
    unknown = a1111_parameters(line.format("Hires sampler: DPM adaptive, "))
    assert unknown["ignored"] == ["Hires fix's sampler"] and unknown["hires_sampler"] is None
    with pytest.raises(core.InvalidRequestError, match="hires_sampler 'nope' is unknown"):
        core.generate(model, dataclasses.replace(request, hires_sampler="nope"))
