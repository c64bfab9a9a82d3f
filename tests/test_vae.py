"""Parity of our LDM-layout VAE and key conversion against diffusers' AutoencoderKL."""

import pytest
import torch

from sd_desktop.core.nn.configs import VAEConfig
from sd_desktop.core.loading.convert_vae import vae_keys_from_diffusers, vae_keys_to_diffusers
from sd_desktop.core.errors import ModelLoadError
from sd_desktop.core.nn.vae import AutoencoderKL

from parity import VAE_CONFIG as CONFIG
from parity import max_rel_diff as _max_rel_diff


@torch.no_grad()
def test_encode_matches_diffusers(vae_reference, vae_ours, vae_inputs):
    image, _ = vae_inputs
    expected = vae_reference.encode(image).latent_dist
    mean, logvar = vae_ours.encode_moments(image)
    assert mean.shape == (2, 4, 8, 12)
    assert _max_rel_diff(mean, expected.mean) <= 1e-4
    assert _max_rel_diff(logvar, expected.logvar) <= 1e-4
    assert torch.equal(vae_ours.encode(image), mean)


@torch.no_grad()
def test_decode_matches_diffusers(vae_reference, vae_ours, vae_inputs):
    _, latent = vae_inputs
    expected = vae_reference.decode(latent).sample
    actual = vae_ours.decode(latent)
    assert actual.shape == (2, 3, 64, 96)
    assert _max_rel_diff(actual, expected) <= 1e-4


def test_conversion_agrees_with_diffusers_own_ldm_converter(vae_reference):
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    original = vae_reference.state_dict()
    ldm = vae_keys_from_diffusers(original, CONFIG)
    assert all(k.startswith(("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")) for k in ldm)
    back = convert_ldm_vae_checkpoint(
        {f"first_stage_model.{k}": v for k, v in ldm.items()},
        {"down_block_types": vae_reference.config.down_block_types, "up_block_types": vae_reference.config.up_block_types},
    )
    assert back.keys() == original.keys()
    for key, value in original.items():
        assert torch.equal(back[key], value), key


def test_inverse_conversion_round_trips(vae_reference):
    original = vae_reference.state_dict()
    back = vae_keys_to_diffusers(vae_keys_from_diffusers(original, CONFIG), CONFIG)
    assert back.keys() == original.keys()
    for key, value in original.items():
        assert torch.equal(back[key], value), key


def test_conversion_rejects_foreign_or_incomplete_dicts(vae_reference):
    original = vae_reference.state_dict()
    with pytest.raises(ModelLoadError, match="unexpected keys.*encoder.extra.weight"):
        vae_keys_from_diffusers({**original, "encoder.extra.weight": torch.zeros(1)}, CONFIG)
    incomplete = {k: v for k, v in original.items() if k != "decoder.conv_out.bias"}
    with pytest.raises(ModelLoadError, match=r"missing keys.*decoder\.conv_out\.bias"):
        vae_keys_from_diffusers(incomplete, CONFIG)
    with pytest.raises(ModelLoadError, match="wrong shapes"):
        wider = VAEConfig(base_channels=64, channel_mult=(1, 1, 1, 1), num_res_blocks=1)
        vae_keys_from_diffusers(original, wider)
    ldm = vae_keys_from_diffusers(original, CONFIG)
    with pytest.raises(ModelLoadError, match="unexpected keys"):
        vae_keys_to_diffusers({**ldm, "decoder.up.9.block.0.conv1.weight": torch.zeros(1)}, CONFIG)


@torch.no_grad()
def test_meta_construction_and_assign_load(vae_reference, vae_ours, vae_inputs):
    image, latent = vae_inputs
    with torch.device("meta"):
        model = AutoencoderKL(CONFIG)
    assert list(model.buffers()) == []
    model.load_state_dict(vae_keys_from_diffusers(vae_reference.state_dict(), CONFIG), strict=True, assign=True)
    assert not any(p.is_meta for p in model.parameters())
    assert torch.equal(model.decode(latent), vae_ours.decode(latent))
    assert torch.equal(model.encode(image), vae_ours.encode(image))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@torch.no_grad()
def test_low_precision_follows_model_dtype(vae_ours, vae_inputs, dtype):
    image, latent = vae_inputs
    model = AutoencoderKL(CONFIG).eval()
    model.load_state_dict(vae_ours.state_dict())
    model.to(dtype)
    mean = model.encode(image)  # float32 input is cast to the model's dtype
    decoded = model.decode(latent.double())
    assert mean.dtype == dtype and decoded.dtype == dtype
    assert _max_rel_diff(mean, vae_ours.encode(image)) < 0.05
    assert _max_rel_diff(decoded, vae_ours.decode(latent)) < 0.05


def test_rejects_sizes_not_divisible_by_8(vae_ours):
    with pytest.raises(ValueError, match="divisible by 8"):
        vae_ours.encode(torch.zeros(1, 3, 64, 60))


def test_the_silu_after_a_groupnorm_is_written_in_place_only_without_gradients():
    """core.nn.layers.silu_of_fresh: at inference no activation-sized tensor is allocated for the SiLU; with
    gradients autograd keeps its input."""
    import torch.nn.functional as F

    from sd_desktop.core.nn.layers import silu_of_fresh

    x = torch.randn(2, 8, 4, 4)
    for mode in (torch.inference_mode, torch.no_grad):
        with mode():
            fresh = x.clone()
            out = silu_of_fresh(fresh)
            assert out.data_ptr() == fresh.data_ptr()
            torch.testing.assert_close(out, F.silu(x))
    leaf = x.clone().requires_grad_()
    h = leaf * 1
    out = silu_of_fresh(h)
    assert out.data_ptr() != h.data_ptr()
    out.sum().backward()
    torch.testing.assert_close(leaf.grad, torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))))


def test_the_vae_uses_the_in_place_silu(vae_ours, vae_inputs, monkeypatch):
    """Each decoder ResnetBlock's two SiLUs and the one before conv_out go through silu_of_fresh."""
    import sd_desktop.core.nn.vae as vae_module

    calls = []
    monkeypatch.setattr(vae_module, "silu_of_fresh", lambda h: calls.append(1) or torch.nn.functional.silu(h))
    with torch.inference_mode():
        vae_ours.decode(vae_inputs[1])
    blocks = [m for m in vae_ours.decoder.modules() if isinstance(m, vae_module.ResnetBlock)]
    assert blocks and len(calls) == 2 * len(blocks) + 1
