"""prepare_interpolation / frame: DDIM inversion, slerp of the noises, blended conditioning, caching."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image

import sd_desktop.core as core
from sd_desktop.core.io import images as img
from sd_desktop.core.errors import Cancelled, InvalidRequestError
from sd_desktop.core.pipelines.interpolation import slerp
from sd_desktop.core.runtime.vae_ops import encode_pixels as encode_image

from tiny_models import save_diffusers_folder, tiny_parts


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return core.load_model(save_diffusers_folder(tiny_parts(seed=40), tmp_path_factory.mktemp("m") / "tiny"), device="cpu", dtype="fp32")


@pytest.fixture
def constant_eps(model, monkeypatch):
    """A U-Net whose eps does not depend on x: DDIM's Euler steps are then exact in both directions,
    so inversion followed by sampling must give the latents back (to float rounding)."""
    pattern = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)) * 0.5
    calls = []

    def forward(x, t, ctx):
        calls.append(x.shape[0])
        return pattern.expand(x.shape[0], -1, -1, -1)

    monkeypatch.setattr(model.unet, "forward", forward)
    return calls


def picture(colour):
    image = Image.new("RGB", (64, 64), colour)
    image.paste((245, 245, 245), (16, 16, 48, 48))
    return image


def rel_err(ours, reference):
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def test_frames_at_the_ends_reconstruct_both_images_latents(model, constant_eps):
    a, b = picture((220, 30, 30)), picture((40, 70, 220))
    prep = core.prepare_interpolation(model, core.InterpolationRequest(image_a=a, image_b=b, prompt_a="red",
                                                                       prompt_b="blue", steps=12))
    with torch.no_grad():
        za, zb = encode_image(model, img.to_tensor(a)), encode_image(model, img.to_tensor(b))
    assert rel_err(prep.frame_latents(0.0), za) < 1e-4
    assert rel_err(prep.frame_latents(1.0), zb) < 1e-4
    # in between, the frames move steadily from A to B
    distances = [(prep.frame_latents(t) - za).norm().item() for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert distances == sorted(distances)


@pytest.mark.slow
def test_fixed_point_iterations_make_the_inversion_exact_for_a_real_unet(model):
    """With an eps that depends on x, plain DDIM inversion is approximate; solving each step's implicit
    equation by fixed-point iterations brings frame(0) back onto the image's latents."""
    a, b = picture((220, 30, 30)), picture((40, 70, 220))
    with torch.no_grad():
        za = encode_image(model, img.to_tensor(a))
    errors = {}
    for iterations in (0, 4):
        prep = core.prepare_interpolation(model, core.InterpolationRequest(
            image_a=a, image_b=b, prompt_a="red", prompt_b="blue", steps=30, invert_iterations=iterations))
        errors[iterations] = rel_err(prep.frame_latents(0.0), za)
    assert errors[4] < errors[0] / 5, errors


def test_frames_are_cached(model, constant_eps):
    prep = core.prepare_interpolation(model, core.InterpolationRequest(image_a=picture((30, 160, 60)),
                                                                       image_b=picture((20, 20, 20)), steps=5))
    constant_eps.clear()
    first = prep.frame(0.37)
    assert len(constant_eps) == 5 and first.size == (64, 64)
    second = prep.frame(0.37)
    assert len(constant_eps) == 5  # no U-Net call the second time
    assert first.tobytes() == second.tobytes()


def test_generations_given_as_prompt_and_seed_skip_the_inversion(model):
    request = core.InterpolationRequest(prompt_a="a red circle", seed_a=3, prompt_b="a blue square", seed_b=4,
                                        steps=6, width=64, height=48)
    seen = []
    prep = core.prepare_interpolation(model, request, on_step=seen.append)
    assert seen == []  # nothing was inverted
    generated = core.generate(model, core.GenerationRequest(prompt="a red circle", seed=3, steps=6, sampler="ddim",
                                                            cfg_scale=1.0, width=64, height=48))
    assert rel_err(prep.frame_latents(0.0), generated.latents) < 1e-5
    # over the zero-terminal-SNR schedule too: the frame is that schedule's DDIM generation
    zsnr = core.prepare_interpolation(model, dataclasses.replace(request, noise_schedule="zsnr"))
    assert zsnr.zero_snr and zsnr.sigmas[0].item() > prep.sigmas[0].item() * 1.3  # (DDIM starts at t = 834 here)
    generated = core.generate(model, core.GenerationRequest(prompt="a red circle", seed=3, steps=6, sampler="ddim",
                                                            cfg_scale=1.0, width=64, height=48, noise_schedule="zsnr"))
    assert rel_err(zsnr.frame_latents(0.0), generated.latents) < 1e-5
    assert rel_err(zsnr.frame_latents(0.0), prep.frame_latents(0.0)) > 1e-3


@pytest.mark.slow
def test_inversion_reports_progress_and_can_be_cancelled(model):
    seen = []
    a, b = picture((240, 210, 40)), picture((140, 50, 180))
    core.prepare_interpolation(model, core.InterpolationRequest(image_a=a, image_b=b, steps=4), on_step=seen.append)
    assert [s.step for s in seen] == list(range(1, 9)) and seen[-1].total == 8
    with pytest.raises(Cancelled):
        core.prepare_interpolation(model, core.InterpolationRequest(image_a=a, image_b=b, steps=4),
                                   should_stop=lambda: True)


def test_bad_interpolation_requests(model):
    with pytest.raises(InvalidRequestError, match="invert_iterations"):
        core.prepare_interpolation(model, core.InterpolationRequest(image_a=picture((0, 0, 0)), image_b=picture((0, 0, 0)),
                                                                    invert_iterations=-1))
    with pytest.raises(InvalidRequestError, match="image_b"):
        core.prepare_interpolation(model, core.InterpolationRequest(image_a=picture((0, 0, 0))))
    with pytest.raises(InvalidRequestError, match="steps"):
        core.prepare_interpolation(model, core.InterpolationRequest(image_a=picture((0, 0, 0)),
                                                                    image_b=picture((9, 9, 9)), steps=0))


def test_slerp():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 4, 8, 8, generator=gen)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    b = b / b.norm() * a.norm()
    assert slerp(a, b, 0.5).norm().item() == pytest.approx(a.norm().item(), rel=1e-5)  # stays on the sphere
    assert (slerp(a, b, 0.5).norm() > (0.5 * a + 0.5 * b).norm()).item()  # unlike a straight line
