"""Tiled VAE decode/encode and the float16 overflow guard (core.vae_ops)."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from sd_desktop.core.runtime import vae_ops
from sd_desktop.core.nn.configs import VAEConfig
from sd_desktop.core.nn.vae import AutoencoderKL


def upsample8(z: torch.Tensor) -> torch.Tensor:
    """A stand-in decoder that is purely local: tiling it must change nothing at all."""
    return F.interpolate(z[:, :3] * 2 + z[:, 3:], scale_factor=8, mode="nearest")


@pytest.mark.parametrize("height,width", [(150, 90), (64, 200), (65, 65)])
def test_tiles_cover_the_image_and_blend_back_to_the_untiled_result(height, width):
    z = torch.randn(1, 4, height, width, generator=torch.Generator().manual_seed(height))
    tiled = vae_ops.tiled_apply(upsample8, z, tile=64, overlap=16, scale=8, out_channels=3)
    assert torch.allclose(tiled, upsample8(z), atol=1e-5)
    pooled = vae_ops.tiled_apply(lambda x: F.avg_pool2d(x, 8), upsample8(z), tile=512, overlap=128, scale=1 / 8,
                                 out_channels=3)
    assert torch.allclose(pooled, F.avg_pool2d(upsample8(z), 8), atol=1e-5)


def test_tile_starts_overlap_and_reach_the_end():
    assert vae_ops.tile_starts(64, 64, 16) == [0]
    starts = vae_ops.tile_starts(150, 64, 16)
    assert starts[0] == 0 and starts[-1] + 64 == 150
    assert all(b - a <= 48 for a, b in zip(starts, starts[1:]))


def test_automatic_tiling_starts_above_1024_pixels_square():
    assert not vae_ops.should_tile(128, 128, None)
    assert vae_ops.should_tile(129, 128, None)
    assert vae_ops.should_tile(80, 80, True) and not vae_ops.should_tile(64, 64, True)
    assert not vae_ops.should_tile(300, 300, False)


def small_vae() -> AutoencoderKL:
    torch.manual_seed(0)
    return AutoencoderKL(VAEConfig(base_channels=16, channel_mult=(1, 2, 2, 2), num_res_blocks=1, norm_groups=8)).eval()


def test_float16_overflow_is_decoded_again_in_float32():
    vae = small_vae()
    with torch.no_grad():  # activations far beyond float16's 65504, which GroupNorm brings back down
        vae.decoder.conv_in.weight.mul_(1e3)
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = vae.decode(z * 100)
        half = vae.half()
        assert not torch.isfinite(half.decode(z.half() * 100)).all()  # the bug being guarded against
        model = SimpleNamespace(vae=half, dtype=torch.float16, scale_factor=0.01, float32_vae=None)
        pixels = vae_ops.decode_latents(model, z)
    assert pixels.dtype == torch.float32 and torch.isfinite(pixels).all()
    assert (pixels - expected).abs().max() < 1e-2 * expected.abs().max()


@pytest.mark.slow
def test_tiled_decode_of_a_large_image_matches_the_whole_decode():
    """With a trained VAE (the demo model's), tiles blend into the whole picture: no seam, same colours."""
    import numpy as np

    from sd_desktop import core
    from sd_desktop.training import shapes

    model = core.load_model(None, device="cpu", dtype="fp32")
    scene = shapes.Scene("blue", (shapes.ShapeSpec("circle", "red", "large", "center"),
                                  shapes.ShapeSpec("square", "yellow", "small", "top left")))
    pixels = shapes.to_tensor(shapes.render(scene, 768, np.random.default_rng(3)))[None]
    with torch.inference_mode():
        latents = vae_ops.encode_pixels(model, pixels, tiled=False)
        tiled_latents = vae_ops.encode_pixels(model, pixels, tiled=True)
        whole = vae_ops.decode_latents(model, latents, tiled=False).clamp(-1, 1)
        tiled = vae_ops.decode_latents(model, latents, tiled=True).clamp(-1, 1)
    psnr = 10 * torch.log10(4 / (whole - tiled).pow(2).mean()).item()  # range [-1, 1]: peak-to-peak 2
    assert psnr > 30, psnr
    assert (tiled_latents - latents).abs().mean() < 0.05 * latents.abs().mean()
    # no seam: along a background row through the tiles' blend zone (x = 256..512), the tiled picture
    # changes from pixel to pixel as the whole one does
    zone = slice(250, 520)
    steps_tiled, steps_whole = (p[0, :, 700, zone].diff(dim=-1) for p in (tiled, whole))
    assert (steps_tiled - steps_whole).abs().max() < 0.02
