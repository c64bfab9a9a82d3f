"""load_model on the files people have: parity with diffusers/transformers, and clear errors otherwise."""

from __future__ import annotations


import copy
import dataclasses

import numpy as np

import pytest
import torch
from torch import nn

import sd_desktop.core as core
from sd_desktop.core.errors import ModelLoadError, UnsafeCheckpointError, UnsupportedModelError

from tiny_models import (
    ldm_state_dict, save_diffusers_folder, save_single_file, tiny_parts, tiny_vae, write_sparse_safetensors,
)


def assert_close(ours: torch.Tensor, ref: torch.Tensor, rel: float = 1e-4):
    ours, ref = ours.float(), ref.float()
    assert ours.shape == ref.shape
    err = (ours - ref).abs().max().item()
    assert err <= rel * ref.abs().max().item(), f"max abs diff {err:.3g} vs output magnitude {ref.abs().max():.3g}"


@pytest.fixture(scope="module")
def parts():
    return tiny_parts()


@pytest.fixture(scope="module")
def inpaint_parts():
    return tiny_parts(in_channels=9, seed=10)


def rounded(parts: dict, dtype: torch.dtype) -> dict:
    """The reference as a file stored in `dtype` holds it: weights rounded, computed in float32."""
    return {k: copy.deepcopy(m).to(dtype).float() for k, m in parts.items()}


def check_parity(model, parts: dict):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 49408, (2, 77), generator=gen)
    ids[:, 0], ids[:, -1] = 49406, 49407
    with torch.no_grad():
        assert_close(model.encode_text(ids), parts["text_encoder"](ids).last_hidden_state)

        in_ch = parts["unet"].config.in_channels
        x = torch.randn(2, in_ch, 16, 24, generator=gen)  # non-square latents
        t = torch.tensor([10, 700])
        ctx = torch.randn(2, 77, 64, generator=gen)
        assert_close(model.unet(x, t, ctx), parts["unet"](x, t, ctx).sample)

        img = torch.rand(1, 3, 64, 96, generator=gen) * 2 - 1
        assert_close(model.vae.encode(img), parts["vae"].encode(img).latent_dist.mean)
        z = torch.randn(1, 4, 8, 12, generator=gen)
        assert_close(model.vae.decode(z), parts["vae"].decode(z).sample)


def test_diffusers_folder_matches_reference(parts, tmp_path):
    model = core.load_model(save_diffusers_folder(parts, tmp_path / "tiny"), device="cpu", dtype="fp32")
    assert model.family.name == "sd1" and model.scale_factor == pytest.approx(0.18215)
    assert model.dtype == torch.float32
    check_parity(model, parts)


def test_diffusers_folder_with_bin_weights_matches_reference(parts, tmp_path):
    model = core.load_model(save_diffusers_folder(parts, tmp_path / "tiny", safe=False), device="cpu", dtype="fp32")
    check_parity(model, parts)


@pytest.mark.parametrize("stored", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_single_file_matches_reference(parts, tmp_path, stored):
    path = save_single_file(parts, tmp_path / "tiny.safetensors", stored)
    model = core.load_model(path, device="cpu", dtype="fp32")
    assert model.family.name == "sd1"
    assert model.config.unet.channel_mult == (1, 2, 2) and model.config.unet.attention_levels == (0, 1)
    check_parity(model, rounded(parts, stored))


def test_ckpt_with_old_text_encoder_keys_matches_reference(parts, tmp_path):
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": ldm_state_dict(parts, old_text_keys=True), "global_step": 1000}, path)
    model = core.load_model(path, device="cpu", dtype="fp32")
    check_parity(model, parts)


def test_inpainting_variant_matches_reference(inpaint_parts, tmp_path):
    model = core.load_model(save_single_file(inpaint_parts, tmp_path / "inpaint.safetensors"), device="cpu", dtype="fp32")
    assert model.family.name == "sd1-inpaint" and model.config.unet.in_channels == 9
    check_parity(model, inpaint_parts)
    folder = core.load_model(save_diffusers_folder(inpaint_parts, tmp_path / "inpaint"), device="cpu")
    assert folder.family.name == "sd1-inpaint"


@pytest.mark.slow
def test_separate_vae_file_replaces_the_checkpoints_vae(parts, tmp_path):
    other = tiny_vae(seed=99)
    vae_only = {k.removeprefix("first_stage_model."): t for k, t in
                ldm_state_dict({**parts, "vae": other}).items() if k.startswith("first_stage_model.")}
    from safetensors.torch import save_file

    save_file(vae_only, str(tmp_path / "vae.safetensors"))
    torch.save({"state_dict": {**vae_only, "loss.logvar": torch.zeros(())}}, tmp_path / "vae.ckpt")
    other.save_pretrained(tmp_path / "vae-diffusers")
    save_file(other.state_dict(), str(tmp_path / "vae-diffusers.safetensors"))
    checkpoint = save_single_file(parts, tmp_path / "tiny.safetensors")
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = other.decode(z).sample
        for vae in ("vae.safetensors", "vae.ckpt", "vae-diffusers", "vae-diffusers.safetensors"):
            model = core.load_model(checkpoint, device="cpu", dtype="fp32", vae=tmp_path / vae)
            assert_close(model.vae.decode(z), expected)


def test_a_replacing_vae_is_named_in_the_images_parameters_as_a1111_names_it(parts, tmp_path):
    """It changes every pixel, so the image says which: A1111's "VAE hash" (sha256, 10 digits) and "VAE"; a
    missing file is named as a VAE."""
    import hashlib

    from safetensors.torch import save_file

    from sd_desktop.core.io.metadata import JSON_KEY, PARAMETERS_KEY, read_parameters
    from sd_desktop.core.io.outputs import save_image

    vae_only = {k.removeprefix("first_stage_model."): t for k, t in
                ldm_state_dict({**parts, "vae": tiny_vae(seed=99)}).items() if k.startswith("first_stage_model.")}
    vae_file = tmp_path / "other-vae.safetensors"
    save_file(vae_only, str(vae_file))
    checkpoint = save_single_file(parts, tmp_path / "tiny.safetensors")
    request = core.GenerationRequest(prompt="a house", steps=1, width=64, height=64, seed=1)
    plain = core.generate(core.load_model(checkpoint, device="cpu", dtype="fp32"), request).images[0]
    image = core.generate(core.load_model(checkpoint, device="cpu", dtype="fp32", vae=vae_file), request).images[0]
    digest = hashlib.sha256(vae_file.read_bytes()).hexdigest()[:10]
    assert f"VAE hash: {digest}, VAE: other-vae.safetensors" in image.info[PARAMETERS_KEY]
    assert "VAE" not in plain.info[PARAMETERS_KEY]
    assert '"vae": "other-vae.safetensors"' in image.info[JSON_KEY]
    save_image(image, tmp_path / "out.jpg")  # (only the A1111 text: read as A1111's; a restore does not swap VAEs)
    back = read_parameters(tmp_path / "out.jpg")
    assert back["prompt"] == "a house" and back["ignored"] == ["VAE other-vae.safetensors"]
    with pytest.raises(ModelLoadError, match="VAE file not found"):
        core.load_model(checkpoint, device="cpu", dtype="fp32", vae=tmp_path / "nope.safetensors")


def test_the_precision_and_device_are_in_our_json(parts, tmp_path):
    """bf16 and fp32 make slightly different pixels from one request, so the image says which it was."""
    from sd_desktop.core.io.metadata import JSON_KEY, read_parameters
    from sd_desktop.core.io.outputs import save_image

    checkpoint = save_single_file(parts, tmp_path / "tiny.safetensors")
    request = core.GenerationRequest(prompt="a house", steps=1, width=64, height=64, seed=1)
    for dtype, written in (("fp32", "float32"), ("bf16", "bfloat16")):
        image = core.generate(core.load_model(checkpoint, device="cpu", dtype=dtype), request).images[0]
        assert f'"precision": "{written}"' in image.info[JSON_KEY] and '"device": "cpu"' in image.info[JSON_KEY]
        save_image(image, tmp_path / f"{dtype}.png")
        back = read_parameters(tmp_path / f"{dtype}.png")
        assert back["precision"] == written and back["device"] == "cpu"


def test_outputs_come_back_in_the_models_dtype_from_any_input(parts, tmp_path):
    model = core.load_model(save_single_file(parts, tmp_path / "t.safetensors", torch.float16), device="cpu", dtype="bf16")
    assert next(model.unet.parameters()).dtype == torch.bfloat16
    out = model.unet(torch.randn(1, 4, 8, 8, dtype=torch.float64), torch.tensor([5]), torch.randn(1, 77, 64))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert model.vae.decode(torch.randn(1, 4, 8, 8)).dtype == torch.bfloat16


# ---- what is not a loadable SD 1.x model -------------------------------------------------------


class _CreatesAFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    victim = tmp_path / "created-by-pickle.txt"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _CreatesAFile(victim)}, path)
    assert not victim.exists()
    with pytest.raises(UnsafeCheckpointError, match="safetensors") as refused:
        core.load_model(path, device="cpu")
    assert not victim.exists()
    message = str(refused.value)  # the reason, not torch's advice on loading it anyway nor its terminal bold
    assert "\n" not in message and "\x1b" not in message and "weights_only" not in message and "GLOBAL" in message


def test_truncated_safetensors_is_reported(parts, tmp_path):
    path = save_single_file(parts, tmp_path / "cut.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        core.load_model(path, device="cpu")


@pytest.mark.parametrize("content, message", [
    ("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 4265380512\n", "Git LFS pointer"),
    ("<!DOCTYPE html><html><body>Not found</body></html>", "web page"),
    ("just some notes, not a model\n" * 3, "text"),
    ("", "empty"),
])
def test_non_checkpoint_named_safetensors_is_reported(tmp_path, content, message):
    path = tmp_path / "model.safetensors"
    path.write_text(content)
    with pytest.raises(ModelLoadError, match=message):
        core.load_model(path, device="cpu")


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_a_picture_named_safetensors_is_called_a_picture(tmp_path, kind):
    from PIL import Image

    path = tmp_path / "model.safetensors"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(path, format=kind)
    with pytest.raises(ModelLoadError, match=f"it is a picture \\({kind}\\), not weights"):
        core.load_model(path, device="cpu")


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        core.load_model(tmp_path / "nope.safetensors", device="cpu")
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelLoadError, match="unknown model file type"):
        core.load_model(tmp_path / "model.gguf", device="cpu")


def test_folder_without_the_expected_subfolders(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "readme.txt").write_text("hi")
    with pytest.raises(ModelLoadError, match="not a diffusers model folder"):
        core.load_model(tmp_path / "stuff", device="cpu")
    (tmp_path / "half" / "unet").mkdir(parents=True)
    (tmp_path / "half" / "model_index.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="missing unet/config.json, vae/config.json, text_encoder/config.json"):
        core.load_model(tmp_path / "half", device="cpu")


def _meta_shapes(module: torch.nn.Module, prefix: str) -> dict[str, tuple[int, ...]]:
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


def _full_size_shapes(family, unet_in: int = 4) -> dict:
    """A full-size file's keys and shapes in the original layout (SDXL's or SD 2.x's), from networks on "meta"."""
    import dataclasses

    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from sd_desktop.core.nn.unet import UNetModel
    from tiny_models import openclip_state_dict

    def tower(cfg, projection):
        config = CLIPTextConfig(hidden_size=cfg.width, intermediate_size=cfg.mlp_width, num_hidden_layers=cfg.layers,
                                num_attention_heads=cfg.heads, projection_dim=cfg.projection_dim or cfg.width)
        return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)

    with torch.device("meta"):
        unet = UNetModel(dataclasses.replace(family.unet, in_channels=unet_in))
        shapes = _meta_shapes(unet, "model.diffusion_model.")
        if family.text2 is not None:
            shapes.update({"conditioner.embedders.0.transformer.text_model." + k.removeprefix("text_model."): tuple(v.shape)
                           for k, v in tower(family.text, False).state_dict().items()})
            openclip = openclip_state_dict(tower(family.text2, True), "conditioner.embedders.1.model.")
        else:
            openclip = openclip_state_dict(tower(family.text, True), "cond_stage_model.model.")
    shapes.update({k: tuple(v.shape) for k, v in openclip.items()})
    return shapes


def test_full_size_sdxl_and_sd2_files_are_recognised_and_sized_from_their_keys():
    from sd_desktop.core.families import SD2, SDXL, SDXL_INPAINT, recognise
    from sd_desktop.core.loading.convert_text import openclip_plan, planned_shapes
    from sd_desktop.core.loading.detection import infer_text_config, infer_unet_config, split_ldm_keys

    for family, unet_in, expected in ((SDXL, 4, SDXL), (SDXL, 9, SDXL_INPAINT), (SD2, 4, SD2)):
        shapes = _full_size_shapes(family, unet_in)
        assert recognise(shapes, "model.safetensors") is expected
        parts = split_ldm_keys(shapes, family.keys)
        unet = infer_unet_config({k: shapes[full] for k, full in parts["unet"].items()}, family.unet)
        assert unet == dataclasses.replace(family.unet, in_channels=unet_in)
        openclip = parts["text2"] if family.text2 is not None else parts["text"]
        text = infer_text_config(planned_shapes(openclip_plan(openclip), shapes), family.text2 or family.text)
        assert text.width == (1280 if family is SDXL else 1024) and text.layers == (32 if family is SDXL else 24)
    sdxl = sum(np.prod(shape) for key, shape in _full_size_shapes(SDXL).items() if key.startswith("model.diffusion_model."))
    assert 2.5e9 < sdxl < 2.7e9  # SDXL's U-Net: ~2.6 B parameters


def test_the_sdxl_refiner_and_unknown_families_are_refused_by_name(tmp_path):
    refiner = write_sparse_safetensors(tmp_path / "sd_xl_refiner_1.0.safetensors", {
        "conditioner.embedders.0.model.token_embedding.weight": (49408, 1280),
        "model.diffusion_model.input_blocks.0.0.weight": (384, 4, 3, 3)})
    with pytest.raises(UnsupportedModelError, match="SDXL refiner"):
        core.load_model(refiner, device="cpu")
    cascade = write_sparse_safetensors(tmp_path / "stage_c.safetensors", {"clip_txt_mapper.weight": (2048, 1280)})
    with pytest.raises(UnsupportedModelError, match="Stable Cascade model; sd-desktop loads Stable Diffusion 1.x, "
                                                    "Stable Diffusion 2.x, SDXL models"):
        core.load_model(cascade, device="cpu")
    pixart = write_sparse_safetensors(tmp_path / "pixart.safetensors", {"x_embedder.proj.weight": (1152, 4, 2, 2)})
    with pytest.raises(UnsupportedModelError, match="diffusion-transformer"):
        core.load_model(pixart, device="cpu")
    unet_only = {k: v for k, v in _full_size_shapes(core.families.SDXL).items() if k.startswith("model.diffusion_model.")}
    with pytest.raises(UnsupportedModelError, match="SDXL-style U-Net without its text encoders"):
        core.load_model(write_sparse_safetensors(tmp_path / "unet.safetensors", unet_only), device="cpu")
    depth = {k: v for k, v in _full_size_shapes(core.families.SD2, 5).items()}
    with pytest.raises(UnsupportedModelError, match="5 input channels"):
        core.load_model(write_sparse_safetensors(tmp_path / "512-depth-ema.safetensors", depth), device="cpu")


def test_lora_and_vae_only_files_are_named(parts, tmp_path):
    lora = write_sparse_safetensors(tmp_path / "style.safetensors", {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320, 1, 1)})
    with pytest.raises(UnsupportedModelError, match="is a LoRA"):
        core.load_model(lora, device="cpu")
    from safetensors.torch import save_file

    vae_only = {k.removeprefix("first_stage_model."): t for k, t in ldm_state_dict(parts).items()
                if k.startswith("first_stage_model.")}
    save_file(vae_only, str(tmp_path / "vae.safetensors"))
    with pytest.raises(ModelLoadError, match="VAE on its own"):
        core.load_model(tmp_path / "vae.safetensors", device="cpu")


def test_checkpoint_missing_weights_is_reported(parts, tmp_path):
    from safetensors.torch import save_file

    sd = ldm_state_dict(parts)
    del sd["model.diffusion_model.middle_block.1.proj_out.weight"]
    save_file(sd, str(tmp_path / "broken.safetensors"))
    with pytest.raises(ModelLoadError, match="missing 1 weights such as middle_block.1.proj_out.weight"):
        core.load_model(tmp_path / "broken.safetensors", device="cpu")


@pytest.mark.parametrize("metadata", ['{"unet": {"num_heads": 4', '["not", "a", "dict"]', '{"native_size": "large"}'])
def test_damaged_sd_desktop_metadata_is_a_load_error_not_silent_defaults(parts, tmp_path, metadata):
    """The entry says what the weights cannot (head counts): guessing them would load and give wrong pictures."""
    from safetensors.torch import save_file

    path = tmp_path / "ours.safetensors"
    save_file(ldm_state_dict(parts), str(path), metadata={"sd_desktop": metadata})
    with pytest.raises(ModelLoadError, match="ours.safetensors: its sd-desktop settings .* damaged"):
        core.load_model(path, device="cpu")


@pytest.mark.parametrize("error", [
    MemoryError(),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
                 "allocate 3276800000 bytes"),
    type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 2.00 GiB"),
])
def test_running_out_of_memory_while_loading_says_so(parts, tmp_path, monkeypatch, error):
    import sd_desktop.core.loading.model as loading

    path = save_single_file(parts, tmp_path / "tiny.safetensors")

    def no_memory(*args, **kwargs):
        raise error

    monkeypatch.setattr(loading, "assign_weights", no_memory)
    with pytest.raises(ModelLoadError, match="not enough memory to load tiny.safetensors on the CPU in float32: close "
                                             "other programs, or choose a smaller precision"):
        core.load_model(path, device="cpu", dtype="fp32")
    monkeypatch.setattr(loading, "assign_weights", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("shape bug")))
    with pytest.raises(RuntimeError, match="shape bug"):  # other errors are not called memory
        core.load_model(path, device="cpu", dtype="fp32")


def test_a_load_stops_between_tensors_when_asked(parts, tmp_path):
    from sd_desktop.core.errors import Cancelled

    path = save_single_file(parts, tmp_path / "tiny.safetensors")
    asked = []
    with pytest.raises(Cancelled):
        core.load_model(path, device="cpu", should_stop=lambda: asked.append(1) or len(asked) > 5)
    assert len(asked) == 6  # asked before each tensor; the sixth answer stopped it
    folder = save_diffusers_folder(parts, tmp_path / "folder")
    asked.clear()
    with pytest.raises(Cancelled):
        core.load_model(folder, device="cpu", should_stop=lambda: asked.append(1) or len(asked) > 5)
    assert len(asked) == 6


def test_compile_is_refused_where_it_does_not_work(parts, tmp_path, monkeypatch):
    import sd_desktop.core.loading.model as loading
    from sd_desktop.core.errors import SDDesktopError
    from sd_desktop.core.runtime.devices import compile_supported

    assert compile_supported(torch.device("cpu")) and compile_supported(torch.device("cuda"))
    assert not compile_supported(torch.device("mps"))
    monkeypatch.setattr(loading, "resolve_device", lambda device: torch.device("mps"))
    with pytest.raises(SDDesktopError, match="torch.compile.* does not work on MPS"):
        core.load_model(save_single_file(parts, tmp_path / "tiny.safetensors"), compile=True)


@pytest.mark.slow
@pytest.mark.parametrize("mode, frozen", [("max-autotune", True), ("default", False)])
def test_max_autotune_on_a_cpu_compiles_with_frozen_weights(monkeypatch, mode, frozen):
    """Inductor's CPU GEMM templates take only constant weights: compile_network freezes them for max-autotune on a
    CPU (a weight changed in place after the first call is then not seen), and not for the other modes."""
    import torch._inductor.config as inductor

    from sd_desktop.core.loading.model import compile_network

    monkeypatch.setattr(inductor, "freezing", False)  # (put back after the test: the setting is process-wide)
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8)).eval()
    compiled = compile_network(network, mode, torch.device("cpu"))
    x = torch.randn(4, 16)
    with torch.inference_mode():
        first = compiled(x)
        torch.testing.assert_close(first, network(x))
        network[2].weight.mul_(2)
        again = compiled(x)
    assert torch.equal(again, first) == frozen


@pytest.mark.slow
def test_a_model_is_compiled_only_under_torch_compile_not_under_cuda_graphs(parts, tmp_path):
    """The window says "compiled" and "Compiling the U-Net" from `model.compiled`; CUDA graphs' wrapper keeps the
    network as `_orig_mod` too, and compiles nothing."""
    from sd_desktop.core.runtime.cuda_graphs import GraphedUNet

    model = core.load_model(save_single_file(parts, tmp_path / "tiny.safetensors"), device="cpu", dtype="fp32")
    plain = model.unet
    assert not model.compiled
    model.unet = GraphedUNet(plain)
    assert not model.compiled
    model.unet = torch.compile(plain)  # (lazy: nothing compiles until a call)
    assert model.compiled


def test_a_compiled_unet_is_one_graph_whatever_stop_check_its_caller_has():
    """While dynamo traces, core.interrupt's check_stop() returns at once: the compiled U-Net is one graph, shared by
    a thread with no stop check, a job's Event, a lambda, and a cancelled job (whose cancel lands at the next step).
    Traced, the check was guarded on, and each of these compiled the U-Net again (minutes at full size)."""
    import threading

    from torch._dynamo.utils import counters

    from sd_desktop.core.interrupt import stop_points
    from sd_desktop.core.loading.model import compile_network
    from sd_desktop.core.nn.configs import tiny_unet_config
    from sd_desktop.core.nn.unet import UNetModel

    torch.manual_seed(0)
    unet = UNetModel(tiny_unet_config()).eval()
    with torch.no_grad():  # (LDM starts its last convolutions at zero: the output would be zeros)
        for parameter in unet.parameters():
            parameter.normal_(0, 0.05)
    compiled = compile_network(unet, "default", torch.device("cpu"))
    x, t, context = torch.randn(2, 4, 16, 16), torch.tensor([500.0, 500.0]), torch.randn(2, 77, 64)
    cancelled = threading.Event()
    cancelled.set()
    outputs = []

    def call(stop):
        with torch.inference_mode(), stop_points(stop):
            outputs.append(compiled(x, t, context))

    graphs = counters["stats"]["unique_graphs"]
    worker = threading.Thread(target=call, args=(None,))
    worker.start(), worker.join()
    for stop in (threading.Event().is_set, lambda: False, cancelled.is_set, None):
        call(stop)
    assert counters["stats"]["unique_graphs"] - graphs == 1
    with torch.inference_mode():
        expected = unet(x, t, context)
    assert expected.abs().max() > 0.1
    assert len(outputs) == 5
    for out in outputs:
        assert_close(out, expected)


@pytest.mark.slow
def test_loading_leaves_the_processes_malloc_alone():
    """A library user who imports sd_desktop.core keeps their allocator: only the app's and the CLI's entry
    points tune it (core.runtime.allocator)."""
    import subprocess
    import sys

    code = ("import sd_desktop.core as core\n"
            "from sd_desktop.core.runtime import allocator\n"
            "core.generate(core.load_model(None, device='cpu'), core.GenerationRequest(prompt='x', steps=1, seed=1))\n"
            "print(allocator.tuned())\n"
            "from sd_desktop.cli import main\n"
            "main(['info', 'no-such-image.png'])\n"  # the CLI's entry point tunes it
            "print(allocator.tuned(), allocator._libc_name().startswith('glibc'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    untouched, after_cli, glibc = out.stdout.split()
    assert untouched == "False" and after_cli == glibc
