"""Random-weight networks built by diffusers and converted into ours, and the comparisons the parity tests
share (tests/test_unet.py, test_vae.py, test_onednn.py). The fixtures over them live in conftest.py."""

from __future__ import annotations

import diffusers
import torch
from diffusers import UNet2DConditionModel

from sd_desktop.core.loading.convert_unet import unet_keys_from_diffusers
from sd_desktop.core.loading.convert_vae import vae_keys_from_diffusers
from sd_desktop.core.nn.configs import UNetConfig, tiny_vae_config
from sd_desktop.core.nn.unet import UNetModel
from sd_desktop.core.nn.vae import AutoencoderKL

LDM_PREFIX = "model.diffusion_model."

# name: (in_channels, block_out_channels, layers_per_block, attention levels)
VARIANTS = {
    "two_levels": (4, (32, 64), 1, (0, 1)),
    "sd1_like": (4, (32, 64, 64), 2, (0, 1)),  # no attention at the bottom level, as in SD 1.x
    "inpaint": (9, (32, 64), 1, (0, 1)),
}


def diffusers_unet(in_channels, block_out_channels, layers_per_block, attention_levels, seed=0):
    torch.manual_seed(seed)
    levels = len(block_out_channels)
    down = tuple("CrossAttnDownBlock2D" if i in attention_levels else "DownBlock2D" for i in range(levels))
    up = tuple("CrossAttnUpBlock2D" if i in attention_levels else "UpBlock2D" for i in reversed(range(levels)))
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=in_channels, out_channels=4, block_out_channels=block_out_channels,
        layers_per_block=layers_per_block, down_block_types=down, up_block_types=up,
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=32,
    )
    with torch.no_grad():  # move norms off 1/0 and zero-initialised convs off 0, so every weight matters
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return unet.eval()


def our_config(in_channels, block_out_channels, layers_per_block, attention_levels) -> UNetConfig:
    base = block_out_channels[0]
    return UNetConfig(
        in_channels=in_channels, model_channels=base, channel_mult=tuple(c // base for c in block_out_channels),
        num_res_blocks=layers_per_block, attention_levels=attention_levels, num_heads=8, context_dim=64,
    )


def converted_pair(name):
    spec = VARIANTS[name]
    reference = diffusers_unet(*spec)
    config = our_config(*spec)
    ours = UNetModel(config).eval()
    ours.load_state_dict(unet_keys_from_diffusers(reference.state_dict(), config), strict=True)
    return reference, ours, config


def unet_inputs(batch, in_channels, h, w, context_len, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, in_channels, h, w, generator=g)
    context = torch.randn(batch, context_len, 64, generator=g)
    timesteps = torch.tensor([999.0, 12.5, 500.0, 1.0][:batch])
    return x, timesteps, context


def assert_close(actual, expected, rel=1e-4):
    scale = expected.abs().max().item()
    diff = (actual - expected).abs().max().item()
    assert scale > 1e-2, "reference output is degenerate; the comparison would prove nothing"
    assert diff <= rel * scale, f"max abs diff {diff:.3g} > {rel} * {scale:.3g}"


VAE_CONFIG = tiny_vae_config()  # channels 32, 64, 64, 64; one ResnetBlock per level; 8x down


def perturb_all(module: torch.nn.Module) -> None:
    # Move every parameter off its init (norm weights of 1, zero biases) so a wrong wire shows.
    with torch.no_grad():
        for p in module.parameters():
            scale = 0.1 if p.ndim == 1 else 0.5 * p.std().item()
            p.add_(torch.randn_like(p) * scale)


def vae_reference():
    torch.manual_seed(0)
    ref = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 64, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
    )
    perturb_all(ref)
    return ref.eval()


def vae_ours(reference):
    model = AutoencoderKL(VAE_CONFIG)
    model.load_state_dict(vae_keys_from_diffusers(reference.state_dict(), VAE_CONFIG), strict=True)
    return model.eval()


def vae_inputs():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 64, 96, generator=g) * 2 - 1  # non-square
    latent = torch.randn(2, 4, 8, 12, generator=g)
    return image, latent


def max_rel_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.float() - expected.float()).abs().max() / expected.float().abs().max()).item()


def k_diffusion_sampling():
    """k-diffusion's sampling module (what A1111 runs), without the rest of the package: its __init__ imports
    training code that needs torchvision and more, which the tests do not install."""
    import importlib
    import importlib.util
    import sys
    import types

    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None:
        raise RuntimeError("k-diffusion is not installed: pip install --no-deps k-diffusion==0.1.1.post1 (README)")
    package = types.ModuleType("k_diffusion")
    package.__path__ = list(spec.submodule_search_locations)
    utils = types.ModuleType("k_diffusion.utils")
    utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]  # the one helper sampling.py uses
    package.utils = utils
    sys.modules.update({"k_diffusion": package, "k_diffusion.utils": utils})
    return importlib.import_module("k_diffusion.sampling")
