"""Families and files sd-desktop recognises but does not load, each with the line that says so."""

from __future__ import annotations

from .base import ModelFamily, Shapes
from .sd1 import KEYS
from .sdxl import is_refiner

_UNET = KEYS.unet


def _has_prefix(shapes: Shapes, *prefixes: str) -> bool:
    return any(key.startswith(prefixes) for key in shapes)


SDXL_REFINER = ModelFamily(
    name="sdxl-refiner", label="SDXL refiner", article="an",
    recognise=is_refiner,
    recognise_folder=lambda configs: "text_encoder_2" in configs.get("subfolders", {})
    and "text_encoder" not in configs.get("subfolders", {}),
    refusal="{name}: this is the SDXL refiner, which sd-desktop does not run; choose an SDXL base model or a "
            "fine-tune of it (Hires fix or Image to Image with the base model does the refiner's job)",
)
UNET_ONLY = ModelFamily(
    name="unet-only", label="U-Net without text encoders",
    recognise=lambda shapes: f"{_UNET}label_emb.0.0.weight" in shapes
    and not _has_prefix(shapes, "conditioner.", "cond_stage_model.", "embedder."),
    refusal="{name} holds an SDXL-style U-Net without its text encoders and VAE; choose a full checkpoint "
            "(sd-desktop does not load a U-Net file on its own)",
)
SD2_UNCLIP = ModelFamily(
    name="sd2-unclip", label="Stable Diffusion 2.x unCLIP",
    recognise=lambda shapes: _has_prefix(shapes, "cond_stage_model.model.", "embedder.model.")
    and f"{_UNET}label_emb.0.0.weight" in shapes,
    refusal="{name}: this looks like a Stable Diffusion 2.x unCLIP model (image variations); {supported}",
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
CASCADE = ModelFamily(
    name="cascade", label="Stable Cascade",
    recognise=lambda shapes: _has_prefix(shapes, "clip_txt_mapper.", "effnet_mapper.", "clf.",
                                          f"{_UNET}clip_txt_mapper."),
    refusal="{name}: this looks like a Stable Cascade model; {supported}",
)
DIT = ModelFamily(
    name="dit", label="diffusion transformer",
    recognise=lambda shapes: _has_prefix(shapes, "x_embedder.", f"{_UNET}x_embedder.", "transformer_blocks.",
                                          f"{_UNET}transformer_blocks.", "single_transformer_blocks."),
    refusal="{name}: this looks like a diffusion-transformer model (PixArt, Hunyuan-DiT, AuraFlow, Lumina ...), "
            "not a U-Net one; {supported}",
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
