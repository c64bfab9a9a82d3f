"""Expand (outpainting): the larger picture and its mask (the border, a smooth seam into the original, sides that
did not grow left alone), sizes to a multiple of 8 and to an aspect ratio, and an Inpaint run on them — with an
ordinary and a 9-channel inpainting model — keeping the original's pixels exactly and painting the border."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sd_desktop import core
from sd_desktop.core.pipelines.outpaint import expand, expansion_for_aspect

from tiny_models import save_diffusers_folder, tiny_parts


def picture(width=56, height=40, seed=0) -> Image.Image:
    noise = np.random.default_rng(seed).random((height // 8, width // 8, 3)) * 255
    return Image.fromarray(noise.astype(np.uint8)).resize((width, height), Image.BICUBIC)


def test_the_expanded_picture_and_its_mask():
    original = picture()
    big, mask, used = expand(original, 16, 0, 20, 0, seam=8)
    assert used == (16, 0, 24, 0) and big.size == (96, 40)  # the right grows 4 more: 56 + 36 = 92 -> 96
    pixels, m = np.asarray(big), np.asarray(mask)
    assert np.array_equal(pixels[:, 16:72], np.asarray(original))  # the original where it was
    assert np.array_equal(pixels[:, :16], np.repeat(pixels[:, 16:17], 16, axis=1))  # the edge repeated outwards
    assert (m[:, :16] == 255).all() and (m[:, 72:] == 255).all()  # the border is painted
    assert (m[:, 16 + 8:72 - 8] == 0).all()  # deeper than the seam: kept
    row = m[20, 16:16 + 9].astype(int)
    assert (np.diff(row) <= 0).all() and row[0] > 200 and row[-1] == 0  # the seam eases from painted to kept
    assert (m[0, 30:60] == 0).all()  # the top did not grow: no seam along it
    assert expansion_for_aspect(56, 40, 16 / 9) == (7, 0, 8, 0) and expansion_for_aspect(56, 40, 1.0) == (0, 8, 0, 8)
    with pytest.raises(core.InvalidRequestError, match="nothing to expand"):
        expand(picture(56, 40), 0, 0, 0, 0)


@pytest.mark.parametrize("channels", [4, 9])
def test_an_inpaint_of_the_expansion_keeps_the_original_exactly(tmp_path, channels):
    model = core.load_model(save_diffusers_folder(tiny_parts(in_channels=channels, seed=47), tmp_path / "m"),
                            device="cpu", dtype="fp32")
    original = picture()
    big, mask, _ = expand(original, 16, 8, 16, 8, seam=8)
    request = core.GenerationRequest(prompt="a red circle", steps=6, seed=2, width=big.width, height=big.height,
                                     init_image=big, mask=mask, strength=1.0, mask_blur=0,
                                     masked_content="latent noise")
    result = np.asarray(core.generate(model, request).images[0]).astype(int)
    kept = np.asarray(mask) == 0
    assert kept.sum() == 40 * 24 and np.array_equal(result[kept], np.asarray(big).astype(int)[kept])
    border = np.asarray(mask) == 255
    assert np.abs(result[border] - np.asarray(big).astype(int)[border]).mean() > 5  # painted, not the edge repeated
