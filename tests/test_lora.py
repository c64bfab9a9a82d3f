"""LoRA and LyCORIS files on the tiny model: parity with diffusers + peft (load_lora_weights, fuse_lora) for the
kohya and PEFT forms, the LyCORIS kinds and DoRA against their formulas applied to the weights themselves,
exact removal, wrong-family refusals, unmatched layers reported, and prompt tags resolved against folders."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import sd_desktop.core as core
from sd_desktop.core.errors import InvalidRequestError, ModelLoadError
from sd_desktop.core.lora.apply import dense_weight, set_loras
from sd_desktop.core.io.metadata import parameters_from_chunks, restore_request
from sd_desktop.core.lora import hashes
from sd_desktop.core.lora.files import read_lora_file
from sd_desktop.core.lora.hashes import lora_hash
from sd_desktop.core.lora.tags import (
    STILL_HASHING, check_tags_resolved, find_tags, resolve_extra_networks, restore_addons, strip_tags,
)
from sd_desktop.core.pipelines.generate import addon_hashes
from sd_desktop.core.lora.targets import Target
from sd_desktop.core.request import LoraRef

from tiny_models import save_diffusers_folder, tiny_parts

SD15 = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
REQUEST = core.GenerationRequest(prompt="a red circle", negative_prompt="blurry", seed=7, steps=6, cfg_scale=5.0,
                                 width=64, height=48, sampler="ddim")
PARITY = 1e-3


def rel_err(ours, reference):
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def attention_layers(unet):
    """kohya's LoRA targets in an SD 1.x U-Net: every Linear and Conv2d inside its transformers."""
    return [(name, m) for name, m in unet.named_modules()
            if ".attentions." in name and isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


def resnet_convs(unet):
    """LoCon's extra targets: the ResNet blocks' and the samplers' convolutions."""
    return [(name, m) for name, m in unet.named_modules()
            if (".resnets." in name or "samplers." in name) and isinstance(m, torch.nn.Conv2d)]


def text_layers(text_encoder):
    names = [(name, m) for name, m in text_encoder.named_modules()
             if isinstance(m, torch.nn.Linear) and ("self_attn" in name or "mlp" in name)]
    return [(name if name.startswith("text_model.") else f"text_model.{name}", m) for name, m in names]


def factors(module, rank, generator, scale=0.3):
    if isinstance(module, torch.nn.Linear):
        return (torch.randn(rank, module.in_features, generator=generator) * scale,
                torch.randn(module.out_features, rank, generator=generator) * scale)
    return (torch.randn(rank, module.in_channels, *module.kernel_size, generator=generator) * scale,
            torch.randn(module.out_channels, rank, 1, 1, generator=generator) * scale)


def kohya_lora(parts, *, rank=4, alpha=2.0, seed=0, convs=False, text=True, rename=None):
    """A LoRA as kohya's sd-scripts saves it: lora_unet_<diffusers path with _> (or, with `rename`, another
    path for each layer, such as its LDM one), lora_te_text_model_<path>."""
    generator = torch.Generator().manual_seed(seed)
    layers = attention_layers(parts["unet"]) + (resnet_convs(parts["unet"]) if convs else [])
    state: dict[str, torch.Tensor] = {}
    for name, module in layers + (text_layers(parts["text_encoder"]) if text else []):
        down, up = factors(module, rank, generator)
        prefix = "lora_te" if name.startswith("text_model.") else "lora_unet"
        key = f"{prefix}_{(rename or {}).get(name, name).replace('.', '_')}"
        state[f"{key}.lora_down.weight"], state[f"{key}.lora_up.weight"] = down, up
        state[f"{key}.alpha"] = torch.tensor(float(alpha))
    return state


def ldm_names(model, parts) -> dict[str, str]:
    """diffusers layer path -> our (LDM) layer path, from the model's own target table."""
    from sd_desktop.core.lora.targets import lora_targets

    table = lora_targets(model.config)
    return {name: table[("unet", name.replace(".", "_"))].path for name, module in parts["unet"].named_modules()
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))}


@pytest.fixture(scope="module")
def parts():
    return tiny_parts(seed=20)


@pytest.fixture(scope="module")
def folder(parts, tmp_path_factory):
    return save_diffusers_folder(parts, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module", params=["packed", "plain"])
def loaded_model(request, folder):
    """The model as the CPU runs it (oneDNN-packed layers), and with plain layers, as a GPU runs it."""
    loaded = core.load_model(folder, device="cpu", dtype="fp32") if request.param == "packed" else load_plain(folder)
    assert loaded.packed == (request.param == "packed")
    return loaded


@pytest.fixture(params=["beside", "merged"])
def model(request, loaded_model, monkeypatch):
    """...with the LoRAs run beside the layers, or merged into new layers (core.lora.apply.MERGE)."""
    import sd_desktop.core.lora.apply as apply

    monkeypatch.setattr(apply, "MERGE", request.param == "merged")
    return loaded_model


def diffusers_pipeline_latents(parts, folder, request, lora_state=None, scale=1.0, textual_inversion=None):
    """StableDiffusionPipeline (DDIM) over copies of the tiny networks, with a LoRA fused or an embedding loaded."""
    import copy

    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    pieces = {name: copy.deepcopy(part) for name, part in parts.items()}
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"), pad_token="<|endoftext|>", model_max_length=77)
    pipe = StableDiffusionPipeline(vae=pieces["vae"], text_encoder=pieces["text_encoder"], tokenizer=tokenizer,
                                   unet=pieces["unet"], safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False,
                                   scheduler=DDIMScheduler(**SD15, clip_sample=False, set_alpha_to_one=False, steps_offset=1))
    pipe.set_progress_bar_config(disable=True)
    if lora_state is not None:
        pipe.load_lora_weights(dict(lora_state))
        pipe.fuse_lora(lora_scale=scale)
    if textual_inversion is not None:
        pipe.load_textual_inversion(textual_inversion[0], token=textual_inversion[1])
    with torch.no_grad():
        return pipe(request.prompt, negative_prompt=request.negative_prompt, num_inference_steps=request.steps,
                    guidance_scale=request.cfg_scale, generator=torch.Generator().manual_seed(request.seed),
                    width=request.width, height=request.height, output_type="latent").images


def diffusers_latents(parts, folder, lora_state=None, scale=1.0):
    return diffusers_pipeline_latents(parts, folder, REQUEST, lora_state, scale)


def ours(model, *loras):
    return core.generate(model, dataclasses.replace(REQUEST, loras=tuple(loras)))


def save(state, path, metadata=None):
    save_file(state, str(path), metadata=metadata)
    return path


# --------------------------------------------------------------------------------- parity with diffusers + peft


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_kohya_lora_equals_diffusers_fuse_lora(model, parts, folder, tmp_path, weight):
    state = kohya_lora(parts, alpha=2.0)
    path = save(state, tmp_path / "style.safetensors")
    reference = diffusers_latents(parts, folder, state, scale=weight)
    result = ours(model, LoraRef(str(path), weight))
    assert result.notes == [] and rel_err(result.latents, reference) <= PARITY
    assert rel_err(result.latents, diffusers_latents(parts, folder)) > 0.05  # the LoRA changes the image


def test_locon_convolutions_equal_diffusers(model, parts, folder, tmp_path):
    state = kohya_lora(parts, convs=True, text=False, rank=3, alpha=3.0, seed=1)
    path = save(state, tmp_path / "locon.safetensors")
    reference = diffusers_latents(parts, folder, state, scale=0.8)
    assert rel_err(ours(model, LoraRef(str(path), 0.8)).latents, reference) <= PARITY


def test_peft_form_equals_diffusers(model, parts, folder, tmp_path):
    """diffusers' own save format: unet.<path>.lora_A/B.weight, text_encoder.<path>..., no alphas (scale 1)."""
    generator = torch.Generator().manual_seed(5)
    state = {}
    for name, module in attention_layers(parts["unet"]):
        down, up = factors(module, 4, generator, scale=0.2)
        state[f"unet.{name}.lora_A.weight"], state[f"unet.{name}.lora_B.weight"] = down, up
    for name, module in text_layers(parts["text_encoder"]):
        down, up = factors(module, 4, generator, scale=0.2)
        state[f"text_encoder.{name}.lora_A.weight"], state[f"text_encoder.{name}.lora_B.weight"] = down, up
    path = save(state, tmp_path / "peft.safetensors")
    reference = diffusers_latents(parts, folder, state, scale=1.0)
    assert rel_err(ours(model, LoraRef(str(path))).latents, reference) <= PARITY


def test_ldm_names_and_old_processor_names_mean_the_same_layers(model, parts, tmp_path):
    state = kohya_lora(parts, seed=3)
    diffusers_named = ours(model, LoraRef(str(save(state, tmp_path / "a.safetensors")), 0.7)).latents
    ldm = save(kohya_lora(parts, seed=3, rename=ldm_names(model, parts)), tmp_path / "b.safetensors")
    assert torch.equal(ours(model, LoraRef(str(ldm), 0.7)).latents, diffusers_named)
    # diffusers' attention-processor format from before PEFT: ...attn1.processor.to_q_lora.down.weight, no alpha
    generator = torch.Generator().manual_seed(4)
    kohya, old = {}, {}
    for name, module in attention_layers(parts["unet"]):
        head, _, proj = name.rpartition(".")
        if proj == "0":
            head, proj = head.removesuffix(".to_out"), "to_out"
        if proj not in ("to_q", "to_k", "to_v", "to_out"):
            continue
        down, up = factors(module, 4, generator)
        key = "lora_unet_" + name.replace(".", "_")
        kohya.update({f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up, f"{key}.alpha": torch.tensor(4.0)})
        old.update({f"unet.{head}.processor.{proj}_lora.down.weight": down,
                    f"unet.{head}.processor.{proj}_lora.up.weight": up})
    a = ours(model, LoraRef(str(save(kohya, tmp_path / "c.safetensors")))).latents
    b = ours(model, LoraRef(str(save(old, tmp_path / "d.safetensors")))).latents
    assert torch.equal(a, b)


# --------------------------------------------------------------------------------- LyCORIS and DoRA vs their formulas


def merged_model(parts, folder_root, deltas: dict[str, torch.Tensor], bias_deltas: dict | None = None):
    """The tiny model with each named diffusers layer's weight += delta (and bias += its bias delta), saved
    and loaded: the reference."""
    import copy

    changed = {name: copy.deepcopy(part) for name, part in parts.items()}
    modules = dict(changed["unet"].named_modules())
    modules.update({f"text_model.{n}" if not n.startswith("text_model.") else n: m
                    for n, m in changed["text_encoder"].named_modules()})
    with torch.no_grad():
        for name, delta in deltas.items():
            modules[name].weight += delta.reshape(modules[name].weight.shape)
        for name, delta in (bias_deltas or {}).items():
            modules[name].bias += delta
    return core.load_model(save_diffusers_folder(changed, folder_root), device="cpu", dtype="fp32")


def test_loha_lokr_full_and_dora_equal_their_formulas(model, parts, tmp_path):
    g = torch.Generator().manual_seed(9)
    layers = dict(attention_layers(parts["unet"]) + resnet_convs(parts["unet"]))
    pick = {"loha": "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
            "loha_tucker": "down_blocks.0.resnets.0.conv1",
            "lokr": "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj",
            "lokr_factored": "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
            "full": "mid_block.attentions.0.proj_out",
            "full_geglu_bias": "up_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj",  # (packed: GEGLU)
            "dora": "up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_v",
            "dora_conv": "up_blocks.1.resnets.0.conv2",
            "dora_out": "up_blocks.1.attentions.1.transformer_blocks.0.ff.net.2"}  # LyCORIS wd_on_out, 128 -> 32
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.3  # noqa: E731
    state, deltas, bias_deltas = {}, {}, {}
    for kind, name in pick.items():
        key, weight = "lora_unet_" + name.replace(".", "_"), layers[name].weight
        out, inp = weight.shape[:2]
        if kind == "loha":
            a1, b1, a2, b2 = r(out, 2), r(2, inp), r(out, 2), r(2, inp)
            state.update({f"{key}.hada_w1_a": a1, f"{key}.hada_w1_b": b1, f"{key}.hada_w2_a": a2,
                          f"{key}.hada_w2_b": b2, f"{key}.alpha": torch.tensor(1.0)})
            deltas[name] = (a1 @ b1) * (a2 @ b2) * (1.0 / 2)
        elif kind == "loha_tucker":
            t1, a1, b1, t2, a2, b2 = r(2, 2, 3, 3), r(2, out), r(2, inp), r(2, 2, 3, 3), r(2, out), r(2, inp)
            state.update({f"{key}.hada_t1": t1, f"{key}.hada_w1_a": a1, f"{key}.hada_w1_b": b1, f"{key}.hada_t2": t2,
                          f"{key}.hada_w2_a": a2, f"{key}.hada_w2_b": b2, f"{key}.alpha": torch.tensor(4.0)})
            w1 = torch.einsum("abkl,ao,bi->oikl", t1, a1, b1)  # the Tucker rebuild, written here on its own
            w2 = torch.einsum("abkl,ao,bi->oikl", t2, a2, b2)
            deltas[name] = w1 * w2 * (4.0 / 2)
        elif kind == "lokr":
            w1, w2 = r(2, 2), r(out // 2, inp // 2)
            state.update({f"{key}.lokr_w1": w1, f"{key}.lokr_w2": w2, f"{key}.alpha": torch.tensor(8.0)})
            deltas[name] = torch.kron(w1, w2)  # whole factors: alpha does not scale (A1111, LyCORIS)
        elif kind == "lokr_factored":
            w1, w2a, w2b = r(4, 4), r(out // 4, 2), r(2, inp // 4)
            state.update({f"{key}.lokr_w1": w1, f"{key}.lokr_w2_a": w2a, f"{key}.lokr_w2_b": w2b,
                          f"{key}.alpha": torch.tensor(1.0)})
            deltas[name] = torch.kron(w1, w2a @ w2b) * (1.0 / 2)
        elif kind == "full":
            diff = r(*weight.shape)
            state[f"{key}.diff"] = diff
            deltas[name] = diff
        elif kind == "full_geglu_bias":
            diff, diff_b = r(*weight.shape), r(out)
            state.update({f"{key}.diff": diff, f"{key}.diff_b": diff_b})
            deltas[name], bias_deltas[name] = diff, diff_b
        elif kind == "dora_out":  # one magnitude per output channel: the merged weight's rows rescaled
            down, up = factors(layers[name], 2, g)
            magnitude = torch.rand(out, 1, generator=g) + 0.5
            state.update({f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up,
                          f"{key}.alpha": torch.tensor(1.0), f"{key}.dora_scale": magnitude})
            merged = weight + (up @ down) * 0.5
            deltas[name] = merged * (magnitude / merged.norm(dim=1, keepdim=True)) - weight
        else:  # DoRA: magnitude per input channel, as kohya trains it
            down, up = factors(layers[name], 2, g)
            magnitude = torch.rand(1, inp, *([1, 1] if weight.dim() == 4 else []), generator=g) + 0.5
            state.update({f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up,
                          f"{key}.alpha": torch.tensor(1.0), f"{key}.dora_scale": magnitude})
            low_rank = (up.flatten(1) @ down.flatten(1)).reshape(weight.shape) * 0.5
            merged = weight + low_rank
            norm = merged.transpose(0, 1).reshape(inp, -1).norm(dim=1).reshape(magnitude.shape)
            deltas[name] = merged * (magnitude / norm) - weight
    path = save(state, tmp_path / "lycoris.safetensors")
    weight = 0.6
    reference = core.generate(merged_model(parts, tmp_path / "merged", {k: v * weight for k, v in deltas.items()},
                                           {k: v * weight for k, v in bias_deltas.items()}), REQUEST).latents
    assert rel_err(ours(model, LoraRef(str(path), weight)).latents, reference) <= PARITY


def load_plain(folder):
    """The model with plain layers (as a GPU runs it), on this CPU."""
    import sd_desktop.core.loading.model as loading

    original = loading.onednn_available
    loading.onednn_available = lambda *args: False
    try:
        return core.load_model(folder, device="cpu", dtype="fp32")
    finally:
        loading.onednn_available = original


def test_the_weight_of_a_packed_layer_reads_back_exactly(folder):
    """DoRA needs a layer's dense weight; oneDNN's packed layers keep only their reordered copy."""
    from sd_desktop.core.lora.targets import lora_targets

    packed, plain = core.load_model(folder, device="cpu", dtype="fp32"), load_plain(folder)
    targets = {t.path: t for t in lora_targets(packed.config).values() if t.network == "unet"}
    for path in ("input_blocks.1.1.transformer_blocks.0.attn1.to_q", "input_blocks.1.0.in_layers.2",
                 "input_blocks.2.0.op", "input_blocks.0.0", "output_blocks.2.1.transformer_blocks.0.ff.net.0.proj"):
        layer = packed.unet.get_submodule(path.removesuffix(".proj") if path.endswith("ff.net.0.proj") else path)
        assert torch.equal(dense_weight(layer, targets[path]), plain.unet.get_submodule(path).weight), path


# --------------------------------------------------------------------------------- on and off, and refusals


def test_removal_restores_the_model_bit_for_bit_and_sets_switch(model, parts, tmp_path):
    a = save(kohya_lora(parts, seed=1), tmp_path / "a.safetensors")
    b = save(kohya_lora(parts, seed=2, convs=True), tmp_path / "b.safetensors")
    base = ours(model).latents
    with_a = ours(model, LoraRef(str(a), 0.8)).latents
    with_both = ours(model, LoraRef(str(a), 0.8), LoraRef(str(b), 0.5, text_weight=0.0)).latents
    for _ in range(3):  # switching back and forth accumulates nothing
        ours(model, LoraRef(str(b), 1.0))
        assert torch.equal(ours(model, LoraRef(str(a), 0.8)).latents, with_a)
    assert torch.equal(ours(model).latents, base)
    assert torch.equal(ours(model, LoraRef(str(a), 0.8), LoraRef(str(b), 0.5, text_weight=0.0)).latents, with_both)
    assert not torch.equal(with_both, with_a)
    set_loras(model, ())
    assert torch.equal(ours(model, LoraRef(str(a), 0.0)).latents, base)  # weight 0: the bare model


def test_loras_for_other_families_are_refused_whole(model, parts, tmp_path):
    good = save(kohya_lora(parts, seed=1), tmp_path / "good.safetensors")
    sdxl = dict(kohya_lora(parts, seed=1))
    sdxl["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"] = torch.zeros(4, 768)
    cases = {
        "xl-keys": (sdxl, None, "xl-keys is a LoRA for SDXL; this model is Stable Diffusion 1.x"),
        "xl-meta": (kohya_lora(parts), {"ss_base_model_version": "sdxl_base_v1-0"}, "xl-meta is a LoRA for SDXL"),
        "v2": (kohya_lora(parts), {"ss_v2": "True"}, "v2 is a LoRA for Stable Diffusion 2.x"),
    }
    wide = kohya_lora(parts, text=False)  # a layer of another width: SD 2.x's text encoder is 1024 wide
    wide["lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"] = torch.zeros(4, 1024)
    wide["lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight"] = torch.zeros(1024, 4)
    cases["wide"] = (wide, None, "wide does not fit this Stable Diffusion 1.x model: its layer "
                                 "text_model_encoder_layers_0_self_attn_q_proj is (1024, 1024) where the model's is "
                                 "(64, 64); it was made for Stable Diffusion 2.x")
    cases["alien"] = ({"lora_unet_single_transformer_blocks_0_attn_to_q.lora_down.weight": torch.zeros(4, 3072),
                       "lora_unet_single_transformer_blocks_0_attn_to_q.lora_up.weight": torch.zeros(3072, 4)},
                      None, "alien adapts none of this Stable Diffusion 1.x model's layers")
    base = ours(model).latents
    for name, (state, metadata, message) in cases.items():
        path = save(state, tmp_path / f"{name}.safetensors", metadata)
        with pytest.raises(ModelLoadError) as error:
            ours(model, LoraRef(str(good)), LoraRef(str(path)))
        assert str(error.value).startswith(message) and "\n" not in str(error.value)
        assert torch.equal(ours(model).latents, base)  # nothing of either was left on the model


def test_layers_the_model_lacks_are_counted_in_the_notes(model, parts, tmp_path):
    state = kohya_lora(parts, text=False)
    state["lora_unet_down_blocks_9_attentions_0_proj_in.lora_down.weight"] = torch.zeros(4, 32)
    state["lora_unet_down_blocks_9_attentions_0_proj_in.lora_up.weight"] = torch.zeros(32, 4)
    state["lora_unet_some_hypernet_thing.weight"] = torch.zeros(2)
    path = save(state, tmp_path / "extra.safetensors")
    total = len(attention_layers(parts["unet"])) + 2
    assert ours(model, LoraRef(str(path))).notes == [f"extra: 2 of {total} LoRA modules matched nothing"]


def test_pickled_loras_load_only_as_weights(parts, tmp_path):
    state = kohya_lora(parts, text=False)
    torch.save(state, tmp_path / "old.pt")
    lora = read_lora_file(tmp_path / "old.pt")
    assert len(lora.modules) == len(attention_layers(parts["unet"])) and lora.unrecognised == []
    (tmp_path / "checkpoint.safetensors").write_bytes(b"")
    save({"model.diffusion_model.conv_in.weight": torch.zeros(1)}, tmp_path / "ckpt.safetensors")
    with pytest.raises(ModelLoadError, match="holds no LoRA or LyCORIS weights"):
        read_lora_file(tmp_path / "ckpt.safetensors")


def test_a_4_channel_conv_in_locon_on_a_9_channel_inpainting_model(tmp_path):
    parts = tiny_parts(in_channels=9, seed=30)
    g = torch.Generator().manual_seed(4)
    down, up = torch.randn(2, 4, 3, 3, generator=g) * 0.3, torch.randn(32, 2, 1, 1, generator=g) * 0.3
    path = save({"lora_unet_conv_in.lora_down.weight": down, "lora_unet_conv_in.lora_up.weight": up,
                 "lora_unet_conv_in.alpha": torch.tensor(2.0)}, tmp_path / "conv_in.safetensors")
    model = core.load_model(save_diffusers_folder(parts, tmp_path / "inpaint"), device="cpu", dtype="fp32")
    delta = torch.zeros(32, 9, 3, 3)
    delta[:, :4] = (up.flatten(1) @ down.flatten(1)).reshape(32, 4, 3, 3)  # zero for the mask and masked image
    reference = merged_model(parts, tmp_path / "merged", {"conv_in": delta})
    from PIL import Image

    request = dataclasses.replace(REQUEST, width=64, height=64, init_image=Image.new("RGB", (64, 64), (90, 20, 200)),
                                  mask=Image.new("L", (64, 64), 255))
    expected = core.generate(reference, request).latents
    assert rel_err(core.generate(model, dataclasses.replace(request, loras=(LoraRef(str(path)),))).latents,
                   expected) <= PARITY


# --------------------------------------------------------------------------------- tags in prompts


def test_prompt_tags_resolve_against_folders_and_never_reach_the_text_encoder(model, parts, tmp_path):
    loras = tmp_path / "models" / "Lora"
    (loras / "styles").mkdir(parents=True)
    save(kohya_lora(parts, seed=1), loras / "styles" / "ink.safetensors")
    assert [dataclasses.astuple(tag) for tag in find_tags("a cat <lora:ink:0.6>, <lora:x:0.5:0.25> <lyco:y>")] == [
        ("lora", "ink", 0.6, None, ()), ("lora", "x", 0.25, 0.5, ()), ("lyco", "y", 1.0, None, ())]  # te:unet
    assert strip_tags("a cat, <lora:ink:0.6>, sitting") == "a cat, , sitting"
    request = dataclasses.replace(REQUEST, prompt="a red circle <lora:ink:0.6>")
    resolved, notes = core.resolve_extra_networks(request, lora_dirs=[loras])  # the engine's public name
    assert resolved.loras == (LoraRef(str(loras / "styles" / "ink.safetensors"), 0.6),) and notes == []
    with_tag = core.generate(model, resolved)
    without_tag = ours(model, LoraRef(str(loras / "styles" / "ink.safetensors"), 0.6))
    assert torch.equal(with_tag.latents, without_tag.latents)  # the tag is not text for CLIP
    text = with_tag.images[0].info["parameters"]
    assert text.startswith("a red circle <lora:ink:0.6>\n")  # but stays in the infotext's prompt, as A1111's
    body = (loras / "styles" / "ink.safetensors").read_bytes()
    after_header = hashlib.sha256(body[8 + int.from_bytes(body[:8], "little"):]).hexdigest()[:12]
    assert f'Lora hashes: "ink: {after_header}"' in text  # A1111's LoRA hash: the tensors, not the header
    assert restore_request(parameters_from_chunks(with_tag.images[0].info))[0].loras == resolved.loras  # our JSON
    with pytest.raises(InvalidRequestError, match=r"LoRA 'nope' is not in the LoRA folders \(.*Lora\)"):
        resolve_extra_networks(dataclasses.replace(REQUEST, prompt="x <lora:nope:1>"), lora_dirs=[loras])
    with pytest.raises(InvalidRequestError, match="does not carry"):
        core.generate(model, request)  # a tag nothing resolved is never dropped silently
    with pytest.raises(InvalidRequestError, match="hypernet"):
        resolve_extra_networks(dataclasses.replace(REQUEST, prompt="x <hypernet:h:1>"), lora_dirs=[loras])
    with pytest.raises(InvalidRequestError, match="must be a number"):
        find_tags("<lora:ink:strong>")


def test_target_shapes_cover_every_diffusers_layer(model, parts):
    from sd_desktop.core.lora.targets import lora_targets

    table = lora_targets(model.config)
    for name, module in parts["unet"].named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            target = table[("unet", name.replace(".", "_"))]
            assert isinstance(target, Target) and target.shape == tuple(module.weight.shape), name


@pytest.mark.parametrize("tag, unet, text, ignored", [
    ("<lora:x:0.8>", 0.8, None, ()),
    ("<lora:x:1:0>", 0.0, 1.0, ()),  # A1111: text encoder first, then U-Net
    ("<lora:x:te=0.5>", 0.5, None, ()),  # the U-Net takes the text encoder's weight when not given
    ("<lora:x:1:te=0.5>", 0.5, None, ()),
    ("<lora:x:te=0.5:unet=1>", 1.0, 0.5, ()),
    ("<LORA: x :0.7>", 0.7, None, ()),
    ("<lora:x:0.6:lbw=OUTALL>", 0.6, None, ("lbw=OUTALL",)),  # an extension's: kept out, and said
    ("<lora:x:-0.5>", -0.5, None, ()),
    ("<lora:x:1e-1>", 0.1, None, ()),
])
def test_tag_weights_read_as_a1111_reads_them(tag, unet, text, ignored):
    (found,) = find_tags(f"a cat {tag}")
    assert (found.name, found.weight, found.text_weight, found.ignored) == ("x", unet, text, ignored)


@pytest.mark.parametrize("tag", ["<lora:x:nan>", "<lora:x:inf>", "<lora:x:1_0>", "<lora:x:>", "<lora:x:0x1>",
                                 "<lora:x:1:1:16>", "<lora:x:1:dyn=16>"])
def test_tag_weights_that_are_not_plain_finite_numbers_are_refused(tag):
    with pytest.raises(InvalidRequestError, match="must be a number|rank limit"):
        find_tags(tag)


def test_tags_find_files_by_alias_any_case_and_in_linked_folders(parts, tmp_path):
    folder = tmp_path / "Lora"
    (tmp_path / "shared" / "styles").mkdir(parents=True)
    folder.mkdir()
    (folder / "linked").symlink_to(tmp_path / "shared", target_is_directory=True)
    (tmp_path / "shared" / "styles" / "loop").symlink_to(tmp_path / "shared", target_is_directory=True)  # a cycle
    tweaker = save(kohya_lora(parts, seed=1), folder / "detailTweaker_v10.safetensors",
                   metadata={"ss_output_name": "add_detail"})  # A1111 writes the alias into prompts
    linked = save(kohya_lora(parts, seed=2), tmp_path / "shared" / "styles" / "ink.safetensors")
    request = dataclasses.replace(REQUEST, prompt="<lora:add_detail:0.6> <lora:INK:1> <lora:linked/styles/ink:1> "
                                                  "<lora:Linked/Styles/INK:1>")
    resolved, notes = resolve_extra_networks(request, lora_dirs=[folder])
    assert [Path(ref.path).resolve() for ref in resolved.loras] == [tweaker, linked]  # the same file once
    assert notes == []
    check_tags_resolved(resolved)  # the alias and the folded case count as named
    assert addon_hashes(resolved)["Lora hashes"].startswith("add_detail: ")  # named as the prompt names it
    with pytest.raises(InvalidRequestError, match="given twice with different weights"):
        resolve_extra_networks(dataclasses.replace(request, prompt="<lora:ink:1> <lora:ink:0.5>"), lora_dirs=[folder])
    again, _ = resolve_extra_networks(resolved, lora_dirs=[folder])  # a request read back: nothing added twice
    assert again.loras == resolved.loras


def test_restoring_names_the_loras_and_embeddings_the_folders_lack(parts, tmp_path):
    (tmp_path / "Lora").mkdir()
    (tmp_path / "embeddings").mkdir()
    save(kohya_lora(parts, text=False), tmp_path / "Lora" / "ink.safetensors")
    torch.save({"string_to_param": {"*": torch.zeros(1, 64)}}, tmp_path / "embeddings" / "present.pt")
    params = {"prompt": "x <lora:ink:1> <lora:gone:0.5>", "extras": {"TI hashes": "easyneg: 0123456789ab, present: ab"}}
    restored, found, missing = restore_addons(params, [tmp_path / "Lora"], [tmp_path / "embeddings"])
    assert restored == params and found == []
    assert missing == ["LoRA gone (not in your LoRA folders)", "embedding easyneg (not in your embeddings folders)"]


def after_header_hash(path) -> str:
    """A1111's LoRA hash of a safetensors file, computed here from its definition: sha256 of what follows
    the 8-byte length and the JSON header."""
    body = path.read_bytes()
    return hashlib.sha256(body[8 + int.from_bytes(body[:8], "little"):]).hexdigest()[:12]


def test_restoring_finds_renamed_loras_and_embeddings_by_their_hashes(parts, tmp_path):
    """An image made with "ink" and "easyneg", restored where the files are called ink_v2 and
    EasyNegativeV2: the infotext's hashes find them, and the restored prompts name the files found."""
    (tmp_path / "Lora").mkdir()
    (tmp_path / "embeddings").mkdir()
    renamed = save(kohya_lora(parts, seed=3), tmp_path / "Lora" / "ink_v2.safetensors", metadata={"ss_note": "x"})
    save(kohya_lora(parts, seed=4), tmp_path / "Lora" / "other.safetensors")
    signed = save(kohya_lora(parts, seed=5), tmp_path / "Lora" / "kohya_signed.safetensors",
                  metadata={"sshs_model_hash": "FEEDC0FFEE12" + "0" * 52})  # kohya wrote its hash: it is used
    embedding = tmp_path / "embeddings" / "EasyNegativeV2.pt"
    torch.save({"string_to_param": {"*": torch.randn(2, 64)}}, embedding)
    made_here = {"prompt": "a kite <lora:ink:0.7>, <lora:signed:0.5:0.2> easyneg",
                 "negative_prompt": "easyneg, blurry, easyneg_b",
                 "extras": {"Lora hashes": f"ink: {after_header_hash(renamed)}, signed: feedc0ffee12",
                            "TI hashes": f"easyneg: {hashlib.sha256(embedding.read_bytes()).hexdigest()[:12]}"}}
    restored, found, missing = restore_addons(made_here, [tmp_path / "Lora"], [tmp_path / "embeddings"])
    assert missing == []
    assert found == ["LoRA ink, found by its hash as ink_v2", "LoRA signed, found by its hash as kohya_signed",
                     "embedding easyneg, found by its hash as EasyNegativeV2"]
    assert restored["prompt"] == "a kite <lora:ink_v2:0.7>, <lora:kohya_signed:0.5:0.2> EasyNegativeV2"
    assert restored["negative_prompt"] == "EasyNegativeV2, blurry, easyneg_b"  # whole words only
    resolved, _ = resolve_extra_networks(dataclasses.replace(REQUEST, prompt=restored["prompt"]),
                                         lora_dirs=[tmp_path / "Lora"])
    assert [Path(ref.path).name for ref in resolved.loras] == ["ink_v2.safetensors", "kohya_signed.safetensors"]
    assert lora_hash(signed) == "feedc0ffee12" and lora_hash(renamed) == after_header_hash(renamed)
    # renaming or editing the metadata keeps a LoRA's hash (only the tensors count), as in A1111:
    state = kohya_lora(parts, seed=3)
    assert lora_hash(save(state, tmp_path / "same.safetensors", {"ss_output_name": "zz"})) == lora_hash(renamed)


def test_restoring_rewrites_only_the_tags_and_words_it_found(parts, tmp_path):
    """Odd spellings of a tag are renamed too; an embedding renamed by hash leaves a LoRA tag of the same name
    alone; a LoRA given outside the prompt (--lora) comes back as a tag."""
    (tmp_path / "Lora").mkdir()
    (tmp_path / "embeddings").mkdir()
    renamed = save(kohya_lora(parts, seed=3), tmp_path / "Lora" / "ink_v2.safetensors")
    save(kohya_lora(parts, seed=4), tmp_path / "Lora" / "detail.safetensors")
    cli_lora = save(kohya_lora(parts, seed=5), tmp_path / "Lora" / "from_cli.safetensors")
    embedding = tmp_path / "embeddings" / "detail_v2.pt"
    torch.save({"string_to_param": {"*": torch.randn(2, 64)}}, embedding)
    params = {"prompt": "<LORA:old:0.7> <lora: old :0.7> <lora:detail:0.5> a kite, Detail, embedding:detail",
              "negative_prompt": "detail",
              "loras": [{"path": "/elsewhere/from_cli.safetensors", "weight": 0.8, "text_weight": 0.3}],
              "extras": {"Lora hashes": f"old: {after_header_hash(renamed)}",
                         "TI hashes": f"detail: {hashlib.sha256(embedding.read_bytes()).hexdigest()[:12]}"}}
    restored, found, missing = restore_addons(params, [tmp_path / "Lora"], [tmp_path / "embeddings"])
    assert missing == []
    assert restored["prompt"] == ("<LORA:ink_v2:0.7> <lora:ink_v2:0.7> <lora:detail:0.5> a kite, detail_v2, "
                                  "embedding:detail_v2 <lora:from_cli:0.3:0.8>")
    assert restored["negative_prompt"] == "detail_v2"
    assert found[-2] == "LoRA from_cli, given outside the prompt, added to it as <lora:from_cli:0.3:0.8>"
    resolved, _ = resolve_extra_networks(dataclasses.replace(REQUEST, prompt=restored["prompt"]),
                                         lora_dirs=[tmp_path / "Lora"])
    assert resolved.loras[-1] == LoraRef(str(cli_lora), 0.8, 0.3)


def test_a_subfolder_lora_made_here_is_found_by_hash_when_renamed(model, parts, tmp_path):
    loras = tmp_path / "Lora"
    (loras / "style").mkdir(parents=True)
    save(kohya_lora(parts, seed=1), loras / "style" / "ink.safetensors")
    request, _ = resolve_extra_networks(dataclasses.replace(REQUEST, prompt="<lora:style/ink:0.5>"), lora_dirs=[loras])
    params = parameters_from_chunks(core.generate(model, request).images[0].info)
    assert params["extras"]["Lora hashes"].startswith("style/ink: ")
    (loras / "style" / "ink.safetensors").rename(loras / "ink_renamed.safetensors")
    params.pop("loras", None)
    restored, found, missing = restore_addons(params, [loras], [])
    assert (found, missing) == (["LoRA style/ink, found by its hash as ink_renamed"], [])
    assert restored["prompt"] == "<lora:ink_renamed:0.5>"


def test_the_window_restores_without_hashing_and_hashes_are_remembered_on_disk(parts, tmp_path):
    """The window passes hashes.known: nothing is read at restore; until its folder is hashed, a renamed
    LoRA is reported as such. Hashes saved to disk are known at the next start without reading the files."""
    folder = tmp_path / "Lora"
    folder.mkdir()
    path = save(kohya_lora(parts, seed=6), folder / "renamed.safetensors")
    params = {"prompt": "<lora:old:1>", "extras": {"Lora hashes": f"old: {after_header_hash(path)}"}}
    hashes._CACHE.clear()
    _, found, missing = restore_addons(params, [folder], [], hash_of=hashes.known)
    assert found == [] and missing == [f"LoRA old ({STILL_HASHING})"]
    hashes.lora_hash(path)
    hashes.save_cache(tmp_path / "cache.json")
    hashes._CACHE.clear()
    hashes.load_cache(tmp_path / "cache.json")
    assert hashes.known("lora", path) == after_header_hash(path)
    assert restore_addons(params, [folder], [], hash_of=hashes.known)[1] == ["LoRA old, found by its hash as renamed"]
    path.write_bytes(path.read_bytes() + b" ")  # changed since: the remembered hash no longer counts
    assert hashes.known("lora", path) is None
    (tmp_path / "bad.json").write_text("{not json")
    hashes.load_cache(tmp_path / "bad.json")  # a damaged cache is no cache


def test_switching_sets_in_bfloat16_accumulates_no_rounding(folder, parts, tmp_path):
    """Nothing is added to or taken from the base weights, so a half-precision model is bit for bit itself
    after any number of switches (merging in place would round every time)."""
    model = core.load_model(folder, device="cpu", dtype="bf16")
    a = save(kohya_lora(parts, seed=1), tmp_path / "a.safetensors")
    b = save(kohya_lora(parts, seed=2, convs=True), tmp_path / "b.safetensors")
    base = ours(model).latents
    first = ours(model, LoraRef(str(a), 0.9)).latents
    for _ in range(4):
        ours(model, LoraRef(str(b), 0.7), LoraRef(str(a), 0.3))
        assert torch.equal(ours(model, LoraRef(str(a), 0.9)).latents, first)
    assert torch.equal(ours(model).latents, base)


def test_the_catalogue_reads_family_and_vector_count_of_every_embedding_form(tmp_path):
    from sd_desktop.core.lora.catalogue import scan_addons

    folder = tmp_path / "embeddings"
    folder.mkdir()
    torch.save({"string_to_param": {"*": torch.zeros(8, 768)}}, folder / "easynegative.pt")  # A1111, SD 1.x
    save({"emb_params": torch.zeros(3, 1024)}, folder / "sd2style.safetensors")  # kohya, SD 2.x
    save({"clip_l": torch.zeros(4, 768), "clip_g": torch.zeros(4, 1280)}, folder / "xlneg.safetensors")
    torch.save({"<cat-toy>": torch.zeros(768)}, folder / "learned_embeds.bin")  # diffusers, one vector
    (folder / "broken.pt").write_bytes(b"not a pickle")
    facts = {entry.name: (entry.family, entry.vectors) for entry in scan_addons([], [folder])}
    assert facts == {"easynegative": ("SD 1.x", 8), "sd2style": ("SD 2.x", 3), "xlneg": ("SDXL", 4),
                     "learned_embeds": ("SD 1.x", 1), "broken": (None, None)}


@pytest.mark.parametrize("keys, kind", [({"lora_unet_conv_in.oft_blocks": (4, 8, 8)}, "OFT"),
                                        ({"lora_unet_conv_in.weight": (32,), "lora_unet_conv_in.on_input": ()}, "IA3")])
def test_lycoris_kinds_we_do_not_apply_are_named(tmp_path, keys, kind):
    path = save({key: torch.zeros(shape) for key, shape in keys.items()} | {"lora_unet_conv_in.alpha": torch.tensor(4.0)},
                tmp_path / "other.safetensors")
    with pytest.raises(ModelLoadError, match=f"other.safetensors is a LyCORIS {kind} network, which sd-desktop does not apply"):
        read_lora_file(path)
