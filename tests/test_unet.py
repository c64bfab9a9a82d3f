"""The U-Net against diffusers' UNet2DConditionModel, and its key map against diffusers' own converter."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

from sd_desktop.core.nn.configs import UNetConfig, tiny_unet_config
from sd_desktop.core.errors import ModelLoadError
from sd_desktop.core.loading.convert_unet import unet_keys_from_diffusers, unet_keys_to_diffusers
from sd_desktop.core.nn.unet import UNetModel

from parity import LDM_PREFIX, VARIANTS, assert_close, converted_pair, diffusers_unet, our_config
from parity import unet_inputs as inputs

@pytest.mark.parametrize(
    "name, size, context_len",
    [("two_levels", (16, 24), 154), ("sd1_like", (16, 24), 77), ("inpaint", (16, 16), 77), ("two_levels", (15, 17), 77)],
)
def test_matches_diffusers(name, size, context_len):
    reference, ours, config = converted_pair(name)
    x, t, context = inputs(2, config.in_channels, *size, context_len)
    with torch.no_grad():
        expected = reference(x, t, encoder_hidden_states=context).sample
        actual = ours(x, t, context)
    assert actual.shape == expected.shape == (2, 4, *size)
    assert_close(actual, expected)


def test_norm_epsilons_match_diffusers():
    """eps (1e-5 vs the transformers' GroupNorm 1e-6) hardly moves outputs, so compare it directly."""
    reference, ours, config = converted_pair("sd1_like")
    diffusers_name = unet_keys_from_diffusers({k: k for k in reference.state_dict()}, config)
    reference_modules = dict(reference.named_modules())
    norms = [(n, m) for n, m in ours.named_modules() if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm))]
    assert len(norms) > 20
    for name, module in norms:
        counterpart = reference_modules[diffusers_name[f"{name}.weight"].removesuffix(".weight")]
        assert type(module) is type(counterpart) and module.eps == counterpart.eps, name


def test_ldm_keys_round_trip_through_diffusers_converter():
    """diffusers' own LDM -> diffusers conversion turns our LDM dict back into the original, exactly."""
    for name, spec in VARIANTS.items():
        reference = diffusers_unet(*spec)
        original = reference.state_dict()
        ldm = unet_keys_from_diffusers(original, our_config(*spec))
        back = convert_ldm_unet_checkpoint({LDM_PREFIX + k: v for k, v in ldm.items()}, reference.config)
        assert back.keys() == original.keys(), name
        assert all(back[k] is original[k] for k in original), name
        assert unet_keys_to_diffusers(ldm, our_config(*spec)).keys() == original.keys()


def test_full_size_sd1_layout_on_meta():
    """The real SD 1.x U-Net: same key set and shapes as diffusers' converted to LDM names; no buffers."""
    with torch.device("meta"):
        ours = UNetModel(UNetConfig())
        reference = UNet2DConditionModel(cross_attention_dim=768, sample_size=64)
    ldm = unet_keys_from_diffusers(reference.state_dict(), UNetConfig())
    ours_sd = ours.state_dict()
    assert ours_sd.keys() == ldm.keys()
    assert all(ours_sd[k].shape == ldm[k].shape for k in ldm)
    assert len(ours_sd) == 686 and sum(p.numel() for p in ours.parameters()) == 859_520_964
    assert list(ours.buffers()) == []
    for key in ("time_embed.0.weight", "time_embed.2.weight", "input_blocks.0.0.weight",
                "input_blocks.1.0.in_layers.0.weight", "input_blocks.1.0.in_layers.2.weight",
                "input_blocks.1.0.emb_layers.1.weight", "input_blocks.1.0.out_layers.3.weight",
                "input_blocks.4.0.skip_connection.weight", "input_blocks.1.1.proj_in.weight",
                "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight",
                "input_blocks.1.1.transformer_blocks.0.attn2.to_out.0.bias",
                "input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight",
                "input_blocks.1.1.transformer_blocks.0.ff.net.2.weight", "input_blocks.3.0.op.weight",
                "middle_block.1.norm.weight", "middle_block.2.out_layers.3.bias", "output_blocks.2.1.conv.weight",
                "output_blocks.5.2.conv.weight", "output_blocks.8.2.conv.weight", "out.0.weight", "out.2.weight"):
        assert key in ours_sd, key
    assert "input_blocks.1.1.transformer_blocks.0.attn1.to_q.bias" not in ours_sd


def test_meta_construction_with_assign_gives_same_output():
    reference, ours, config = converted_pair("two_levels")
    with torch.device("meta"):
        lazy = UNetModel(config)
    lazy.load_state_dict({k: v.clone() for k, v in ours.state_dict().items()}, strict=True, assign=True)
    x, t, context = inputs(2, 4, 16, 16, 77)
    with torch.no_grad():
        assert torch.equal(lazy.eval()(x, t, context), ours(x, t, context))


def test_timesteps_broadcast_and_accept_python_numbers():
    _, ours, _ = converted_pair("two_levels")
    x, _, context = inputs(2, 4, 16, 16, 77)
    with torch.no_grad():
        batched = ours(x, torch.tensor([500, 500]), context)
        for t in (500, 500.0, torch.tensor(500), torch.tensor([500.0])):
            assert torch.allclose(ours(x, t, context), batched, atol=1e-6), t


@pytest.mark.parametrize("dtype, rel", [(torch.float16, 2e-2), (torch.bfloat16, 5e-2)])
def test_low_precision(dtype, rel):
    _, ours, _ = converted_pair("two_levels")
    x, t, context = inputs(2, 4, 16, 16, 77)
    with torch.no_grad():
        expected = ours(x, t, context)
        actual = ours.to(dtype)(x, t, context)  # float32 inputs are cast to the model's dtype
    assert actual.dtype == dtype
    assert_close(actual.float(), expected, rel=rel)


def test_converter_rejects_keys_of_another_layout():
    spec = VARIANTS["two_levels"]
    state = diffusers_unet(*spec).state_dict()
    config = our_config(*spec)
    with pytest.raises(ModelLoadError, match="down_blocks.0.resnets.1.norm1.weight"):
        unet_keys_from_diffusers({**state, "down_blocks.0.resnets.1.norm1.weight": torch.zeros(32)}, config)
    with pytest.raises(ModelLoadError, match="mid_block.attentions.0"):
        unet_keys_from_diffusers({k: v for k, v in state.items() if not k.startswith("mid_block.attentions")}, config)
    with pytest.raises(ModelLoadError):  # an SD 1.x-sized config for tiny weights
        unet_keys_from_diffusers(state, UNetConfig())
    assert tiny_unet_config() == config
