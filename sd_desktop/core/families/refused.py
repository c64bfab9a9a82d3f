"""Families and files sd-desktop recognises but does not load, each with the line that says so."""

from __future__ import annotations

from .base import FolderConfigs, ModelFamily, Shapes
from .sd1 import KEYS

_UNET = KEYS.unet


def _has_prefix(shapes: Shapes, *prefixes: str) -> bool:
    return any(key.startswith(prefixes) for key in shapes)


def _context_dim(shapes: Shapes) -> int | None:
    for key, shape in shapes.items():
        if key.startswith(_UNET) and key.endswith("attn2.to_k.weight"):
            return shape[1]
    return None


def _sd2_folder(configs: FolderConfigs) -> bool:
    unet = configs.get("unet", {})
    heads = unet.get("num_attention_heads") or unet.get("attention_head_dim", 8)
    return unet.get("cross_attention_dim") == 1024 or (isinstance(heads, (list, tuple)) and len(set(heads)) > 1)


SDXL = ModelFamily(
    name="sdxl", label="SDXL", article="an",
    recognise=lambda shapes: _has_prefix(shapes, "conditioner.embedders.") or f"{_UNET}label_emb.0.0.weight" in shapes,
    recognise_folder=lambda configs: "text_encoder_2" in configs.get("subfolders", {})
    or bool(configs.get("unet", {}).get("addition_embed_type")),
    refusal="{name}: this looks like an SDXL checkpoint; {supported}",
)
SD2 = ModelFamily(
    name="sd2", label="Stable Diffusion 2.x",
    recognise=lambda shapes: _has_prefix(shapes, "cond_stage_model.model.") or _context_dim(shapes) == 1024,
    recognise_folder=_sd2_folder,
    refusal="{name}: this looks like a Stable Diffusion 2.x checkpoint; {supported}",
)
FLUX = ModelFamily(
    name="flux", label="FLUX",
    recognise=lambda shapes: _has_prefix(shapes, "double_blocks.", f"{_UNET}double_blocks."),
    refusal="{name}: this looks like a FLUX model; {supported}",
)
SD3 = ModelFamily(
    name="sd3", label="Stable Diffusion 3",
    recognise=lambda shapes: _has_prefix(shapes, "joint_blocks.", f"{_UNET}joint_blocks."),
    refusal="{name}: this looks like a Stable Diffusion 3 model; {supported}",
)
# Not families, but files people pick as a model by mistake.
LORA = ModelFamily(
    name="lora", label="LoRA",
    recognise=lambda shapes: any(k.startswith(("lora_unet_", "lora_te_")) or ".lora_" in k for k in shapes),
    refusal="{name} is a LoRA, not a full model; choose a full checkpoint",
)
CONTROLNET = ModelFamily(
    name="controlnet", label="ControlNet",
    recognise=lambda shapes: _has_prefix(shapes, "control_model."),
    refusal="{name} is a ControlNet, not a full model; choose a full checkpoint",
)
