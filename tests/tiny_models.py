"""Tiny random-weight SD 1.x models built with diffusers/transformers, saved the ways people have them.

Used by the parity and loading tests (and the pipeline tests): a diffusers folder, and an original
LDM-layout single file (with the schedule buffers, EMA copies and position_ids real files carry).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TEXT_WIDTH = 64


def perturb(module: torch.nn.Module, seed: int, scale: float = 0.05) -> torch.nn.Module:
    """Random weights everywhere, zero-initialised output convs and norms included, so parity means something."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return module


def tiny_unet(in_channels: int = 4, seed: int = 0):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4,
        block_out_channels=(32, 64, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=8, norm_num_groups=32,
    )
    return perturb(unet, seed).eval()


def tiny_vae(seed: int = 1):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=32, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 64, 64, 64), layers_per_block=1,
    )
    return perturb(vae, seed).eval()


def tiny_text_encoder(seed: int = 2):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=49408, hidden_size=TEXT_WIDTH, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=1, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )
    return perturb(CLIPTextModel(config), seed).eval()


def tiny_parts(in_channels: int = 4, seed: int = 0) -> dict:
    return {"unet": tiny_unet(in_channels, seed), "vae": tiny_vae(seed + 1), "text_encoder": tiny_text_encoder(seed + 2)}


def write_clip_vocab(folder: Path) -> tuple[Path, Path]:
    """vocab.json + merges.txt made from our bundled BPE file, as a diffusers tokenizer/ folder has them."""
    from sd_desktop.core.text.tokenizer import CLIPTokenizer

    return CLIPTokenizer.default().save_files(folder)


def save_diffusers_folder(parts: dict, root: Path, *, safe: bool = True) -> Path:
    parts["unet"].save_pretrained(root / "unet", safe_serialization=safe)
    parts["vae"].save_pretrained(root / "vae", safe_serialization=safe)
    parts["text_encoder"].save_pretrained(root / "text_encoder", safe_serialization=safe)
    vocab, merges = write_clip_vocab(root / "tokenizer")
    (root / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
    }))
    return root


def ldm_state_dict(parts: dict, dtype: torch.dtype = torch.float32, old_text_keys: bool = False) -> dict:
    """The original single-file layout, with the extras real files carry."""
    from sd_desktop.core.loading.convert_unet import unet_keys_from_diffusers
    from sd_desktop.core.loading.convert_vae import vae_keys_from_diffusers
    from sd_desktop.core.families import SD1
    from sd_desktop.core.loading.diffusers_folder import unet_config_from_json, vae_config_from_json

    unet_cfg = unet_config_from_json(dict(parts["unet"].config), SD1)
    vae_cfg = vae_config_from_json(dict(parts["vae"].config))
    sd = {}
    for k, t in unet_keys_from_diffusers(parts["unet"].state_dict(), unet_cfg).items():
        sd[f"model.diffusion_model.{k}"] = t
    for k, t in vae_keys_from_diffusers(parts["vae"].state_dict(), vae_cfg).items():
        sd[f"first_stage_model.{k}"] = t
    text_prefix = "cond_stage_model.transformer." if old_text_keys else "cond_stage_model.transformer.text_model."
    for k, t in parts["text_encoder"].state_dict().items():
        sd[text_prefix + k.removeprefix("text_model.")] = t
    sd[text_prefix + "embeddings.position_ids"] = torch.arange(77)[None]
    sd = {k: (t.to(dtype) if t.is_floating_point() else t).contiguous() for k, t in sd.items()}
    # what real files also carry: schedule buffers and EMA copies (ignored by the loader)
    sd["betas"] = torch.linspace(0.00085, 0.012, 1000)
    sd["alphas_cumprod"] = torch.cumprod(1 - sd["betas"], 0)
    sd["model_ema.decay"] = torch.tensor(0.9999)
    sd["model_ema.diffusion_modelinput_blocks00weight"] = sd["model.diffusion_model.input_blocks.0.0.weight"].clone()
    return sd


def save_single_file(parts: dict, path: Path, dtype: torch.dtype = torch.float32, **kwargs) -> Path:
    from safetensors.torch import save_file

    save_file(ldm_state_dict(parts, dtype, **kwargs), str(path))
    return path


def write_sparse_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], dtype: str = "F16") -> Path:
    """A safetensors file of the right header and size whose data is a hole: models of any size, for
    tests that must only read the header (e.g. refusing an SDXL file) without writing gigabytes."""
    itemsize = {"F16": 2, "F32": 4}[dtype]
    header, offset = {}, 0
    for key, shape in shapes.items():
        n = itemsize
        for d in shape:
            n *= d
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        f.truncate(8 + len(raw) + offset)
    return path


# --- SDXL and SD 2.x: small networks of their architectures -------------------------------------------------------
# Heads 64 wide everywhere, as the families' files imply (their head counts are not in the weights).

XL_L_WIDTH, XL_G_WIDTH, XL_TIME_DIM = 64, 128, 8  # SDXL's: 768, 1280, 256
XL_ADM = XL_G_WIDTH + 6 * XL_TIME_DIM


def tiny_clip(width: int, layers: int, seed: int, *, act: str = "quick_gelu", projection: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=49408, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
        num_attention_heads=width // 64, max_position_embeddings=77, hidden_act=act, projection_dim=projection or width,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )
    model = CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)
    return perturb(model, seed).eval()


def tiny_sdxl_unet(in_channels: int = 4, seed: int = 0):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, block_out_channels=(32, 64, 128), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 1, 2), attention_head_dim=(1, 1, 2), use_linear_projection=True,
        cross_attention_dim=XL_L_WIDTH + XL_G_WIDTH, addition_embed_type="text_time",
        addition_time_embed_dim=XL_TIME_DIM, projection_class_embeddings_input_dim=XL_ADM, norm_num_groups=32,
    )
    return perturb(unet, seed).eval()


def tiny_sdxl_parts(in_channels: int = 4, seed: int = 0) -> dict:
    vae = tiny_vae(seed + 1)
    vae.register_to_config(scaling_factor=0.13025)
    return {"unet": tiny_sdxl_unet(in_channels, seed), "vae": vae,
            "text_encoder": tiny_clip(XL_L_WIDTH, 3, seed + 2),
            "text_encoder_2": tiny_clip(XL_G_WIDTH, 3, seed + 3, act="gelu", projection=XL_G_WIDTH)}


def tiny_sd2_unet(in_channels: int = 4, seed: int = 0):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, block_out_channels=(64, 128, 128), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=(1, 2, 2), use_linear_projection=True, cross_attention_dim=128, norm_num_groups=32,
    )
    return perturb(unet, seed).eval()


def tiny_sd2_parts(in_channels: int = 4, seed: int = 0) -> dict:
    """An SD 2.x-shaped model as a diffusers folder holds it: the OpenCLIP-H-like tower already cut to the layers
    the pipeline reads (its last = the original's penultimate)."""
    return {"unet": tiny_sd2_unet(in_channels, seed), "vae": tiny_vae(seed + 1),
            "text_encoder": tiny_clip(128, 2, seed + 2, act="gelu")}


def save_sdxl_folder(parts: dict, root: Path, prediction: str = "epsilon") -> Path:
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        parts[name].save_pretrained(root / name)
    write_clip_vocab(root / "tokenizer")
    write_clip_vocab(root / "tokenizer_2")
    write_scheduler_config(root, "EulerDiscreteScheduler", prediction)
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    return root


def write_scheduler_config(root: Path, cls: str, prediction: str) -> None:
    """scheduler/scheduler_config.json, which says what the folder's U-Net predicts."""
    (root / "scheduler").mkdir()
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": cls,
                                                                         "prediction_type": prediction}))


def save_sd2_folder(parts: dict, root: Path, prediction: str = "epsilon") -> Path:
    save_diffusers_folder(parts, root)
    write_scheduler_config(root, "DDIMScheduler", prediction)
    return root


def openclip_state_dict(text_model, prefix: str) -> dict:
    """A transformers CLIPTextModel(WithProjection) in OpenCLIP's naming, as SD 2.x and SDXL files keep it."""
    sd = {k.removeprefix("text_model."): v for k, v in text_model.state_dict().items()}
    out = {
        f"{prefix}token_embedding.weight": sd.pop("embeddings.token_embedding.weight"),
        f"{prefix}positional_embedding": sd.pop("embeddings.position_embedding.weight"),
        f"{prefix}ln_final.weight": sd.pop("final_layer_norm.weight"),
        f"{prefix}ln_final.bias": sd.pop("final_layer_norm.bias"),
        f"{prefix}logit_scale": torch.tensor(4.6052),
    }
    sd.pop("embeddings.position_ids", None)
    if "text_projection.weight" in sd:
        out[f"{prefix}text_projection"] = sd.pop("text_projection.weight").t().contiguous()
    layers = len({k.split(".")[2] for k in sd if k.startswith("encoder.layers.")})
    for i in range(layers):
        ours, theirs = f"encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{theirs}attn.in_proj_{kind}"] = torch.cat(
                [sd.pop(f"{ours}self_attn.{p}_proj.{kind}") for p in ("q", "k", "v")])
            for a, b in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                         ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
                out[f"{theirs}{b}.{kind}"] = sd.pop(f"{ours}{a}.{kind}")
    assert not sd, sorted(sd)[:4]
    return out


def ldm_unet_vae(parts: dict, family) -> dict:
    from sd_desktop.core.loading.convert_unet import unet_keys_from_diffusers
    from sd_desktop.core.loading.convert_vae import vae_keys_from_diffusers
    from sd_desktop.core.loading.diffusers_folder import unet_config_from_json, vae_config_from_json

    unet_cfg = unet_config_from_json(dict(parts["unet"].config), family)
    vae_cfg = vae_config_from_json(dict(parts["vae"].config))
    sd = {f"model.diffusion_model.{k}": t for k, t in unet_keys_from_diffusers(parts["unet"].state_dict(), unet_cfg).items()}
    sd.update({f"first_stage_model.{k}": t for k, t in vae_keys_from_diffusers(parts["vae"].state_dict(), vae_cfg).items()})
    return sd


def save_sdxl_single_file(parts: dict, path: Path, dtype: torch.dtype = torch.float32, v_pred: bool = False,
                          ztsnr: bool = False) -> Path:
    """SDXL's original single-file layout (as sd_xl_base_1.0.safetensors and its fine-tunes have it)."""
    from safetensors.torch import save_file

    from sd_desktop.core.families import SDXL

    sd = ldm_unet_vae(parts, SDXL)
    prefix = "conditioner.embedders.0.transformer.text_model."
    for k, t in parts["text_encoder"].state_dict().items():
        sd[prefix + k.removeprefix("text_model.")] = t
    sd[prefix + "embeddings.position_ids"] = torch.arange(77)[None]
    sd.update(openclip_state_dict(parts["text_encoder_2"], "conditioner.embedders.1.model."))
    if v_pred:
        sd["v_pred"] = torch.tensor([])
    if ztsnr:  # (NoobAI-XL V-Pred carries both empty tensors)
        sd["ztsnr"] = torch.tensor([])
    sd = {k: (t.to(dtype) if t.is_floating_point() else t).contiguous() for k, t in sd.items()}
    save_file(sd, str(path))
    return path


def save_sd2_single_file(parts: dict, path: Path, dtype: torch.dtype = torch.float32) -> Path:
    """SD 2.x's original layout. The tower gets one more (random) layer on top: an original file has all of
    OpenCLIP-H's, and the model reads the penultimate, which is the diffusers folder's last."""
    from safetensors.torch import save_file

    from sd_desktop.core.families import SD2

    sd = ldm_unet_vae(parts, SD2)
    tower = openclip_state_dict(parts["text_encoder"], "cond_stage_model.model.")
    layers = len({k.split(".")[4] for k in tower if ".resblocks." in k})
    gen = torch.Generator().manual_seed(99)
    for key in [k for k in tower if f".resblocks.{layers - 1}." in k]:
        tower[key.replace(f".resblocks.{layers - 1}.", f".resblocks.{layers}.")] = torch.randn(tower[key].shape, generator=gen)
    sd.update(tower)
    sd = {k: (t.to(dtype) if t.is_floating_point() else t).contiguous() for k, t in sd.items()}
    save_file(sd, str(path))
    return path
