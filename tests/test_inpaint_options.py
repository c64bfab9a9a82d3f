"""A1111's inpainting options as request fields: masked content (fill / original / latent noise / latent nothing),
the only-masked padding, and their infotext keys; the kept pixels stay exact whatever the choice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from sd_desktop import core
from sd_desktop.core.io.images import fill_masked
from sd_desktop.core.io.infotext import format_parameters, parse_parameters
from sd_desktop.core.io.metadata import request_from_parameters

from tiny_models import save_diffusers_folder, tiny_parts


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = save_diffusers_folder(tiny_parts(seed=43), tmp_path_factory.mktemp("tiny") / "model")
    return core.load_model(folder, device="cpu", dtype="fp32")


def test_fill_takes_the_surroundings_colours():
    picture = np.zeros((64, 64, 3), np.uint8)
    picture[:, :32] = (20, 40, 200)  # blue left, green right, a red square across the middle
    picture[:, 32:] = (30, 180, 60)
    picture[24:40, 24:40] = (230, 10, 10)
    mask = np.zeros((64, 64), np.uint8)
    mask[22:42, 22:42] = 255
    filled = np.asarray(fill_masked(Image.fromarray(picture), Image.fromarray(mask))).astype(int)
    assert np.array_equal(filled[mask == 0], picture[mask == 0])  # untouched outside
    assert filled[24:40, 24:40, 0].max() < 120  # no red left inside
    assert filled[32, 24, 2] > filled[32, 24, 1] and filled[32, 39, 1] > filled[32, 39, 2]  # blue left, green right


def test_masked_content_changes_only_the_start_and_keeps_the_rest_exact(model):
    rng = np.random.default_rng(1)
    init = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize((64, 64), Image.BICUBIC)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    base = core.GenerationRequest(prompt="a red circle", steps=6, seed=5, width=64, height=64, strength=0.8,
                                  init_image=init, mask=Image.fromarray(mask), mask_blur=0, sampler="euler")
    results = {content: np.asarray(core.generate(model, dataclasses.replace(base, masked_content=content)).images[0])
               for content in core.MASKED_CONTENT}
    outside = mask == 0
    outside[12:52, 12:52] = False  # (the latent mask's edge)
    for content, pixels in results.items():
        assert np.array_equal(pixels[outside], np.asarray(init)[outside]), content
    inside = (slice(20, 44), slice(20, 44))
    differences = [np.abs(results[a][inside].astype(int) - results[b][inside].astype(int)).mean()
                   for a, b in (("original", "fill"), ("original", "latent noise"), ("original", "latent nothing"),
                                ("latent noise", "latent nothing"))]
    assert min(differences) > 0.3  # each start gives another result (measured 0.95 to 6.2 levels)


def test_the_infotext_says_it_as_a1111_does():
    request = core.GenerationRequest(prompt="x", masked_content="latent noise", inpaint_full_res=True,
                                     inpaint_padding=48)
    text = format_parameters(request, seed=1, width=64, height=64, model_name="m", model_hash=None, mode="inpaint")
    assert "Masked content: latent noise, Inpaint area: Only masked, Masked area padding: 48" in text
    back = request_from_parameters(parse_parameters(text))
    assert (back.masked_content, back.inpaint_padding, back.inpaint_full_res) == ("latent noise", 48, True)
    plain = format_parameters(core.GenerationRequest(prompt="x"), seed=1, width=64, height=64, model_name="m",
                              model_hash=None, mode="inpaint")
    assert "Masked content" not in plain  # "original", A1111's default, is not written


def test_bad_values_are_refused(model):
    with pytest.raises(core.InvalidRequestError, match="masked_content 'blur' is unknown"):
        core.check_request(core.GenerationRequest(masked_content="blur"))
    with pytest.raises(core.InvalidRequestError, match="inpaint_padding must be from 0"):
        core.check_request(core.GenerationRequest(inpaint_padding=-4))


def test_resize_modes_geometry():
    from sd_desktop.core.io.images import fit_picture

    wide = np.zeros((40, 80, 3), np.uint8)  # 80 x 40: a red left half, a blue right half, a white middle column
    wide[:, :40] = (255, 0, 0)
    wide[:, 40:] = (0, 0, 255)
    wide[:, 38:42] = 255
    image = Image.fromarray(wide)
    stretched = np.asarray(fit_picture(image, (64, 64), "just resize"))
    cropped = np.asarray(fit_picture(image, (64, 64), "crop and resize"))  # 128 x 64, the middle 64 kept
    filled = np.asarray(fit_picture(image, (64, 64), "resize and fill"))  # 64 x 32 in the middle, edges repeated
    assert stretched.shape == cropped.shape == filled.shape == (64, 64, 3)
    assert tuple(cropped[32, 0]) == (255, 0, 0) and tuple(cropped[32, 63]) == (0, 0, 255)
    assert cropped[32, 30:34].min() > 200  # the white column, 1.6 times as wide, in the centre
    assert np.array_equal(filled[0], filled[15]) and np.array_equal(filled[63], filled[48])  # bands repeat the edge
    assert tuple(filled[32, 2]) == (255, 0, 0) and filled[32, 31:33].min() > 200  # the whole picture, centred
    mask = Image.fromarray(np.pad(np.full((40, 40), 255, np.uint8), ((0, 0), (0, 40))))  # the left half
    cropped_mask = np.asarray(fit_picture(mask, (64, 64), "crop and resize"))
    assert cropped_mask[32, :28].min() == 255 and cropped_mask[32, 36:].max() == 0  # over the same pixels


def test_a_resize_mode_applies_to_the_init_image_and_its_mask(model):
    init = Image.new("RGB", (96, 48), (200, 50, 50))
    mask = Image.new("L", (96, 48), 0)
    request = core.GenerationRequest(prompt="x", steps=2, seed=1, width=64, height=64, init_image=init,
                                     mask=mask, resize_mode="crop and resize", strength=0.5)
    result = core.generate(model, request)
    assert result.request.init_image.size == (64, 64) and result.request.mask.size == (64, 64)
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(result.request.init_image))  # nothing masked
    with pytest.raises(core.InvalidRequestError, match="resize_mode 'zoom' is unknown"):
        core.check_request(core.GenerationRequest(resize_mode="zoom"))
