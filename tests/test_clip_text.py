"""Parity of our CLIP text encoder against transformers' CLIPTextModel."""

import pytest
import torch
import transformers

from sd_desktop.core.nn.configs import TextEncoderConfig
from sd_desktop.core.nn.clip_text import CLIPTextModel

BOS, EOS = 49406, 49407

SIZES = [  # (width, mlp_width, heads)
    (64, 128, 1),
    (128, 256, 2),
]


def _reference(width: int, mlp_width: int, heads: int, activation: str) -> transformers.CLIPTextModel:
    torch.manual_seed(0)
    config = transformers.CLIPTextConfig(
        vocab_size=49408,
        hidden_size=width,
        intermediate_size=mlp_width,
        num_hidden_layers=2,
        num_attention_heads=heads,
        max_position_embeddings=77,
        hidden_act=activation,
        attn_implementation="eager",  # the plain softmax path, independent of SDPA
    )
    model = transformers.CLIPTextModel(config)
    # Move every parameter off its init (LayerNorm 1/0, small embeddings) so a wrong wire shows.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * (0.1 if p.ndim == 1 else 0.5 * p.std().item()))
    return model.eval()


def _our_state_dict(reference: transformers.CLIPTextModel) -> dict[str, torch.Tensor]:
    # transformers 4 nests the weights under `text_model.` (as saved checkpoints do); 5 does not.
    state = {key.removeprefix("text_model."): value for key, value in reference.state_dict().items()}
    state.pop("embeddings.position_ids", None)
    return state


def _config(width: int, mlp_width: int, heads: int, activation: str) -> TextEncoderConfig:
    return TextEncoderConfig(width=width, layers=2, heads=heads, mlp_width=mlp_width, activation=activation)


def _ids(length: int = 77) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 49406, (3, length), generator=g)
    ids[:, 0] = BOS
    ids[0, 5:] = EOS  # a short prompt padded with EOS, as SD 1.x tokenizes
    ids[1, -1] = EOS
    return ids


def _max_rel_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.float() - expected.float()).abs().max() / expected.float().abs().max()).item()


@pytest.mark.parametrize("activation", ["quick_gelu", "gelu"])
@pytest.mark.parametrize("width,mlp_width,heads", SIZES)
@torch.no_grad()
def test_matches_transformers(width, mlp_width, heads, activation):
    reference = _reference(width, mlp_width, heads, activation)
    ours = CLIPTextModel(_config(width, mlp_width, heads, activation)).eval()
    ours.load_state_dict(_our_state_dict(reference), strict=True)
    for length in (77, 20):  # shorter than max_positions too
        ids = _ids(length)
        expected = reference(input_ids=ids).last_hidden_state
        actual = ours(ids)
        assert actual.shape == (3, length, width) and actual.dtype == torch.float32
        assert _max_rel_diff(actual, expected) <= 1e-4


@torch.no_grad()
def test_attention_is_causal():
    reference = _reference(64, 128, 1, "quick_gelu")
    ours = CLIPTextModel(_config(64, 128, 1, "quick_gelu")).eval()
    ours.load_state_dict(_our_state_dict(reference), strict=True)
    ids = _ids()
    changed = ids.clone()
    changed[:, 40:] = 1000
    before, after = ours(ids), ours(changed)
    assert torch.equal(before[:, :40], after[:, :40])
    assert not torch.allclose(before[:, 40:], after[:, 40:])


@pytest.mark.parametrize("width,mlp_width,heads", SIZES)
@torch.no_grad()
def test_meta_construction_and_assign_load(width, mlp_width, heads):
    reference = _reference(width, mlp_width, heads, "quick_gelu")
    with torch.device("meta"):
        ours = CLIPTextModel(_config(width, mlp_width, heads, "quick_gelu"))
    assert list(ours.buffers()) == []
    ours.load_state_dict(_our_state_dict(reference), strict=True, assign=True)
    assert not any(p.is_meta for p in ours.parameters())
    ids = _ids()
    assert _max_rel_diff(ours.eval()(ids), reference(input_ids=ids).last_hidden_state) <= 1e-4


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@torch.no_grad()
def test_low_precision_follows_model_dtype(dtype):
    reference = _reference(64, 128, 1, "quick_gelu")
    ours = CLIPTextModel(_config(64, 128, 1, "quick_gelu")).eval()
    ours.load_state_dict(_our_state_dict(reference), strict=True)
    ids = _ids()
    full = ours(ids)
    out = ours.to(dtype)(ids.int())  # int32 ids are accepted too
    assert out.dtype == dtype
    assert _max_rel_diff(out, full) < 0.05


def test_rejects_too_long_input():
    ours = CLIPTextModel(_config(64, 128, 1, "quick_gelu"))
    with pytest.raises(ValueError, match="77"):
        ours(torch.zeros(1, 78, dtype=torch.long))
