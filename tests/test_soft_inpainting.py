"""Soft inpainting (differential diffusion): the mask's grey levels say how much may change: m = 0 pixels stay
exact, m = 1 pixels are repainted, and the change grows with m; the per-step threshold runs from 1 to 0 over the
run; the infotext records it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from sd_desktop import core
from sd_desktop.core.io.infotext import format_parameters, parse_parameters
from sd_desktop.core.io.metadata import request_from_parameters
from sd_desktop.core.sampling.denoisers import SoftInpaintDenoiser
from sd_desktop.core.sampling.registry import sampler_sigmas
from sd_desktop.core.sampling.schedules import sd_sigmas

from tiny_models import save_diffusers_folder, tiny_parts


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = save_diffusers_folder(tiny_parts(seed=41), tmp_path_factory.mktemp("tiny") / "model")
    return core.load_model(folder, device="cpu", dtype="fp32")


def test_the_threshold_runs_from_one_to_zero():
    sigmas = sampler_sigmas("euler", 10, "karras")
    soft = SoftInpaintDenoiser(None, torch.zeros(1), torch.zeros(1), torch.zeros(1), sigmas)
    thresholds = [soft.threshold(sigma) for sigma in sigmas[:-1]]
    assert thresholds[0] == pytest.approx(1.0) and soft.threshold(sd_sigmas()[0]) == pytest.approx(0.0, abs=1e-6)
    assert all(a > b for a, b in zip(thresholds, thresholds[1:])) and thresholds[-1] >= 0
    # (Karras ends at sigma_min: its last step's threshold is 0, as in ComfyUI; the composite keeps m = 0 exact)


def test_soft_inpainting_changes_each_pixel_as_much_as_its_mask_says(model):
    rng = np.random.default_rng(0)
    init = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize((64, 64), Image.BICUBIC)
    ramp = np.zeros((64, 64), np.uint8)
    ramp[:, 16:48] = np.linspace(0, 255, 32).astype(np.uint8)[None]  # 0 left, a ramp, 255 right
    ramp[:, 48:] = 255
    request = core.GenerationRequest(prompt="a red circle", steps=8, seed=3, width=64, height=64, strength=1.0,
                                     init_image=init, mask=Image.fromarray(ramp), mask_blur=0, sampler="euler",
                                     soft_inpainting=True)
    result = np.asarray(core.generate(model, request).images[0]).astype(int)
    change = np.abs(result - np.asarray(init).astype(int)).mean(axis=(0, 2))  # per column
    assert change[:12].max() == 0  # m = 0 (away from the latent mask's bilinear edge): exact
    assert change[52:].mean() > 20  # m = 1: repainted
    thirds = [change[16:26].mean(), change[27:37].mean(), change[38:48].mean()]
    assert thirds[0] < thirds[1] < thirds[2] < change[52:].mean() * 1.1  # more change where m is higher

    hard = core.generate(model, dataclasses.replace(request, soft_inpainting=False))
    assert not np.array_equal(np.asarray(hard.images[0]), result.astype(np.uint8))  # (not the ordinary inpaint)


def test_the_infotext_records_it():
    request = core.GenerationRequest(prompt="x", soft_inpainting=True, mask_blur=2)
    text = format_parameters(request, seed=1, width=64, height=64, model_name="m", model_hash=None, mode="inpaint")
    assert "Mask blur: 2, Differential diffusion: True" in text
    assert request_from_parameters(parse_parameters(text)).soft_inpainting is True
