"""Networks packed for oneDNN (core.runtime.onednn) give the same results as the plain ones, and as diffusers."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from sd_desktop.core import load_model
from sd_desktop.core.nn.attention import GEGLU
from sd_desktop.core.nn.layers import plus
from sd_desktop.core.runtime.onednn import (PackedConv2d, PackedGEGLU, PackedLinear, onednn_available,
                                            onednn_bf16_supported, pack_for_cpu)

from parity import assert_close, converted_pair, unet_inputs
from parity import max_rel_diff as _max_rel_diff
from tiny_models import save_single_file, tiny_parts

pytestmark = pytest.mark.skipif(not onednn_available(torch.device("cpu"), torch.float32),
                                reason="this torch build has no oneDNN")


def packed_copy(unet: nn.Module) -> nn.Module:
    twin = copy.deepcopy(unet)
    return pack_for_cpu(twin, skip=(twin.time_embed,))


@pytest.mark.parametrize("name, size, batch", [("sd1_like", (16, 24), 2), ("two_levels", (15, 17), 1),
                                               ("inpaint", (16, 16), 3)])
def test_packed_unet_matches_diffusers_in_float32(name, size, batch):
    reference, ours, config = converted_pair(name)
    packed = packed_copy(ours)
    x, t, context = unet_inputs(batch, config.in_channels, *size, 77)
    with torch.inference_mode():
        expected = reference(x, t[:batch], encoder_hidden_states=context).sample
        actual = packed(x, t[:batch], context)
    assert actual.shape == expected.shape
    assert_close(actual, expected)


def test_packing_replaces_every_layer_but_the_skipped():
    _, ours, _ = converted_pair("sd1_like")
    packed = packed_copy(ours)
    kinds = [type(m) for m in packed.modules()]
    assert PackedGEGLU in kinds and PackedLinear in kinds and PackedConv2d in kinds
    assert GEGLU not in kinds and nn.Conv2d not in kinds
    plain_layers = {n for n, m in packed.named_modules() if isinstance(m, nn.Linear)}
    assert plain_layers == {"time_embed.0", "time_embed.2"}


@pytest.mark.skipif(not onednn_bf16_supported(), reason="oneDNN's bf16 kernels need AVX512 (BW, VL, DQ) or AVX-NE-CONVERT")
def test_packed_unet_in_bfloat16_is_as_close_to_float32_as_the_plain_one():
    _, ours, config = converted_pair("sd1_like")
    x, t, context = unet_inputs(2, config.in_channels, 16, 16, 77)
    with torch.inference_mode():
        exact = ours(x, t[:2], context)
        low = copy.deepcopy(ours).to(torch.bfloat16).to(memory_format=torch.channels_last)
        plain_error = _max_rel_diff(low(x, t[:2], context).float(), exact)
        packed_error = _max_rel_diff(packed_copy(low)(x, t[:2], context).float(), exact)
    assert plain_error < 0.05
    assert packed_error <= 1.5 * plain_error


def test_packed_vae_matches_diffusers_in_float32(vae_reference, vae_ours, vae_inputs):
    packed = copy.deepcopy(vae_ours)
    pack_for_cpu(packed, skip=(packed.quant_conv, packed.post_quant_conv))
    image, latent = vae_inputs
    with torch.inference_mode():
        assert _max_rel_diff(packed.encode_moments(image)[0], vae_reference.encode(image).latent_dist.mean) <= 1e-4
        assert _max_rel_diff(packed.decode(latent), vae_reference.decode(latent).sample) <= 1e-4


def test_plus_adds_the_residual_for_plain_and_packed_layers():
    torch.manual_seed(0)
    linear, conv = nn.Linear(8, 16), nn.Conv2d(4, 6, 3, padding=1)
    x, residual = torch.randn(2, 5, 8), torch.randn(2, 5, 16)
    image, image_residual = torch.randn(2, 4, 7, 9), torch.randn(2, 6, 7, 9)
    with torch.inference_mode():
        for layer in (linear, PackedLinear(linear.weight, linear.bias)):
            torch.testing.assert_close(plus(layer, x, residual), linear(x) + residual)
            torch.testing.assert_close(plus(layer, x, None), linear(x))
        for layer in (conv, PackedConv2d(conv)):
            torch.testing.assert_close(plus(layer, image, image_residual), conv(image) + image_residual)


@pytest.mark.slow
def test_load_model_packs_on_cpu_unless_compiling_or_float16(tmp_path):
    path = save_single_file(tiny_parts(), tmp_path / "tiny.safetensors")
    model = load_model(path, device="cpu", dtype="float32")
    assert model.packed and any(isinstance(m, PackedConv2d) for m in model.vae.modules())
    with pytest.raises(RuntimeError, match="compile=True"):
        model.compile_unet()
    assert not load_model(path, device="cpu", dtype="float16").packed
    assert load_model(path, device="cpu", dtype="bfloat16").packed == onednn_bf16_supported()  # and it runs
    compiled = load_model(path, device="cpu", dtype="float32", compile=True)
    assert not compiled.packed and hasattr(compiled.unet, "_orig_mod")


def test_arm_cpus_keep_the_plain_layers(tmp_path, monkeypatch):
    import platform

    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert not onednn_available(torch.device("cpu"), torch.float32)
    path = save_single_file(tiny_parts(), tmp_path / "tiny.safetensors")
    assert not load_model(path, device="cpu", dtype="float32").packed


def test_convolutions_are_packed_for_their_shapes_at_the_native_size():
    """Each convolution is packed for the input it gets at the model's native size (a convolution packed for
    another shape reorders its weight at every call): found for full-size SD 1.5 and SDXL on networks whose
    weights are never written nor read (uninitialised memory the system never maps in: an empty batch reads none
    of it; the meta device's upsample refuses an empty batch)."""
    from types import SimpleNamespace

    from sd_desktop.core.families import SD1, SDXL
    from sd_desktop.core.loading.model import StableDiffusionModel
    from sd_desktop.core.nn.unet import UNetModel
    from sd_desktop.core.nn.vae import AutoencoderKL

    for family, side, bottom in ((SD1, 64, 8), (SDXL, 128, 32)):
        with torch.device("meta"):
            networks = {"unet": UNetModel(family.unet), "vae": AutoencoderKL(family.vae)}
        networks = {name: network.to(torch.bfloat16).to_empty(device="cpu") for name, network in networks.items()}
        fake = SimpleNamespace(config=SimpleNamespace(unet=family.unet, vae=family.vae), native_size=family.native_size,
                               device=torch.device("cpu"), dtype=torch.bfloat16, **networks)
        unet, vae = StableDiffusionModel.native_conv_shapes(fake)
        assert unet["input_blocks.0.0"] == (2, family.unet.in_channels, side, side)
        assert unet["middle_block.0.in_layers.2"] == (2, 1280, bottom, bottom)
        assert unet["out.2"][2:] == (side, side)
        upsample = [name for name in unet if name.endswith(".conv") and name.startswith("output_blocks")]
        assert upsample and all(unet[name][2] > bottom for name in upsample)  # upsampled before the convolution
        assert vae["decoder.conv_in"] == (1, family.vae.latent_channels, side, side)
        assert vae["encoder.conv_in"] == (1, 3, family.native_size, family.native_size)
        for name, network in networks.items():
            convs = {n for n, layer in network.named_modules() if isinstance(layer, nn.Conv2d)}
            assert set(unet if name == "unet" else vae) == convs  # every convolution is reached


def test_an_empty_batch_gives_the_shapes_a_real_batch_does(tmp_path, monkeypatch):
    """The shapes are found by running the networks on an empty batch (no arithmetic, no weight read): they are
    the shapes a real CFG batch and a real image meet, convolution by convolution."""
    from sd_desktop.core.loading.model import StableDiffusionModel

    monkeypatch.setattr(StableDiffusionModel, "pack_for_cpu", lambda self: None)  # keep the plain Conv2d layers
    model = load_model(save_single_file(tiny_parts(), tmp_path / "tiny.safetensors"), device="cpu", dtype="float32")
    unet_shapes, vae_shapes = model.native_conv_shapes()

    def met(network, run) -> dict:
        shapes = {}
        hooks = [layer.register_forward_pre_hook(lambda _m, args, n=n: shapes.setdefault(n, tuple(args[0].shape)) and None)
                 for n, layer in network.named_modules() if isinstance(layer, nn.Conv2d)]
        with torch.no_grad():
            run()
        for hook in hooks:
            hook.remove()
        return shapes

    side, config = model.native_size // 8, model.config.unet
    real_unet = met(model.unet, lambda: model.unet(torch.randn(2, config.in_channels, side, side), torch.tensor([500.0, 20.0]),
                                                   torch.randn(2, 77, config.context_dim)))
    real_vae = met(model.vae, lambda: (model.vae.decode(torch.randn(1, 4, side, side)),
                                       model.vae.encode(torch.rand(1, 3, model.native_size, model.native_size))))
    assert unet_shapes == real_unet and len(real_unet) > 10
    assert vae_shapes == real_vae and len(real_vae) > 10


def test_a_torch_that_refuses_an_empty_batch_still_loads_packed(tmp_path, monkeypatch):
    from sd_desktop.core.loading.model import StableDiffusionModel

    def refuse(self):
        raise RuntimeError("Non-empty 4D data tensor expected but got a tensor with sizes [0, 4, 64, 64]")

    monkeypatch.setattr(StableDiffusionModel, "native_conv_shapes", refuse)
    path = save_single_file(tiny_parts(), tmp_path / "tiny.safetensors")
    model = load_model(path, device="cpu", dtype="float32")
    assert model.packed
    convs = [layer for layer in model.unet.modules() if isinstance(layer, PackedConv2d)]
    assert convs and all(layer.hint[2:] == [64, 64] for layer in convs)  # the old fixed hint


def test_loading_and_generating_never_import_torch_dynamo(tmp_path):
    """Importing torch._dynamo takes 1.4 s here; torch's meta kernels import it, so finding the shapes on a meta
    twin made every process's first load that much slower (the demo model's: 2.78 s against 0.54 s)."""
    import subprocess
    import sys

    path = save_single_file(tiny_parts(), tmp_path / "tiny.safetensors")
    code = ("import sys, sd_desktop.core as core\n"
            f"model = core.load_model({str(path)!r}, device='cpu', dtype='float32')\n"
            "core.generate(model, core.GenerationRequest(prompt='a house', steps=2, width=64, height=64, seed=1))\n"
            "print(model.packed, 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["True", "False"]


@pytest.mark.parametrize("size", [6, 12, 16])
def test_a_convolution_packed_for_one_shape_computes_every_shape(size):
    conv = nn.Conv2d(32, 48, 3, padding=1).eval()
    packed = PackedConv2d(conv, (2, 32, 12, 12))
    x = torch.randn(2, 32, size, size + 3).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.allclose(packed(x), conv(x), atol=1e-5, rtol=1e-4)


def test_a_weight_change_added_in_the_packed_layout_equals_packing_the_changed_weight():
    """`plus` (how a LoRA is merged into packed layers) gives bit for bit the layer packed from weight + delta,
    keeps a convolution's shape hint, and leaves the original layer as it was."""
    torch.manual_seed(3)
    hint = (2, 24, 10, 12)
    conv, conv_delta, bias_delta = nn.Conv2d(24, 32, 3, padding=1), torch.randn(32, 24, 3, 3) * 0.1, torch.randn(32)
    linear, linear_delta = nn.Linear(24, 40), torch.randn(40, 24) * 0.1
    geglu, geglu_delta = GEGLU(24, 20), torch.randn(40, 24) * 0.1
    changed_conv, changed_linear, changed_geglu = (copy.deepcopy(m) for m in (conv, linear, geglu))
    with torch.no_grad():
        changed_conv.weight += conv_delta
        changed_conv.bias += bias_delta
        changed_linear.weight += linear_delta
        changed_geglu.proj.weight += geglu_delta
    image, tokens = torch.randn(hint).contiguous(memory_format=torch.channels_last), torch.randn(3, 24)
    originals = [PackedConv2d(conv, hint), PackedLinear(linear.weight, linear.bias), PackedGEGLU(geglu.proj)]
    expected = [PackedConv2d(changed_conv, hint), PackedLinear(changed_linear.weight, changed_linear.bias),
                PackedGEGLU(changed_geglu.proj)]
    changes = [(conv_delta, bias_delta), (linear_delta, None), (geglu_delta, None)]
    with torch.no_grad():
        for original, wanted, change, x in zip(originals, expected, changes, (image, tokens, tokens)):
            before = original(x)
            merged = original.plus(*change)
            assert type(merged) is type(wanted)
            assert torch.equal(merged(x), wanted(x))
            assert not torch.equal(merged(x), before)
            assert torch.equal(original(x), before)  # the original, to be put back, is untouched
    assert originals[0].plus(conv_delta).hint == list(hint)


@pytest.mark.parametrize("in_channels, out_channels, size, batch, bias, layout", [
    (8, 8, (5, 7), 2, True, torch.channels_last), (32, 16, (6, 6), 1, False, torch.contiguous_format)])
def test_a_packed_convolution_after_a_nearest_2x_upsample_reads_x_itself(monkeypatch, in_channels, out_channels,
                                                                          size, batch, bias, layout):
    """core.nn.layers.upsampled_then: a packed 3x3 convolution computes conv(upsample(x)) as one transposed
    convolution of x, with no upsampled copy, equal to the upsample then the convolution. A layer made by `plus` (a
    merged LoRA) uses its own weight, not the kernel its original kept. Other convolutions upsample first."""
    import torch.nn.functional as F

    from sd_desktop.core.nn.layers import upsampled_then

    torch.manual_seed(5)
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias).eval()
    delta = torch.randn(out_channels, in_channels, 3, 3) * 0.1
    x = torch.randn(batch, in_channels, *size).contiguous(memory_format=layout)
    upsample = F.interpolate
    with torch.inference_mode():
        expected = conv(upsample(x, scale_factor=2.0, mode="nearest"))
        changed = F.conv2d(upsample(x, scale_factor=2.0, mode="nearest"), conv.weight + delta, conv.bias, padding=1)
        packed = PackedConv2d(conv, (batch, in_channels, 2 * size[0], 2 * size[1]))
        monkeypatch.setattr(F, "interpolate", lambda *a, **k: pytest.fail("upsampled a copy"))
        out = upsampled_then(packed, x)
        merged = upsampled_then(packed.plus(delta), x)
        monkeypatch.setattr(F, "interpolate", upsample)
        for strided in (nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=2),
                        nn.Conv2d(in_channels, out_channels, 1)):
            wanted = strided(upsample(x, scale_factor=2.0, mode="nearest"))
            assert_close(upsampled_then(PackedConv2d(strided.eval()), x), wanted, 1e-5)
    assert out.shape == expected.shape == (batch, out_channels, 2 * size[0], 2 * size[1])
    assert_close(out, expected, 1e-5)
    assert_close(merged, changed, 1e-5)
