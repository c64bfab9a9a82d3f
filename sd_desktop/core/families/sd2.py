"""Stable Diffusion 2.x (2.0, 2.1, 512-base and 768-v, and their fine-tunes) and its 9-channel inpainting variant.

The SD 1.x U-Net with heads 64 wide, linear projections and a 1024-wide context, from OpenCLIP ViT-H/14's text
tower (GELU, its penultimate layer through its final LayerNorm, padding 0 after the end token). The 768-v models
predict v; their files do not say so, so one U-Net call decides (core.loading.prediction), as A1111 does.
"""

from __future__ import annotations

from ..nn.configs import TextEncoderConfig, UNetConfig, VAEConfig
from .base import FolderConfigs, KeyLayout, ModelFamily, Shapes
from .sd1 import LATENT, unet_in_channels

KEYS = KeyLayout(unet="model.diffusion_model.", vae="first_stage_model.", text=("cond_stage_model.model.",),
                 text_openclip=True)
OPENCLIP_H = TextEncoderConfig(width=1024, layers=24, heads=16, mlp_width=4096, activation="gelu",
                               default_skip=2, pad_id=0)
UNET = UNetConfig(context_dim=1024, num_head_channels=64, linear_projection=True)


def _context_dim(shapes: Shapes) -> int | None:
    for key, shape in shapes.items():
        if key.startswith(KEYS.unet) and key.endswith("attn2.to_k.weight"):
            return shape[1]
    return None


def is_sd2(shapes: Shapes) -> bool:
    """OpenCLIP text weights where SD 1.x keeps CLIP's, or a 1024-wide context; not an unCLIP (label_emb)."""
    if f"{KEYS.unet}label_emb.0.0.weight" in shapes:
        return False
    return any(key.startswith(KEYS.text[0]) for key in shapes) or _context_dim(shapes) == 1024


def is_sd2_folder(configs: FolderConfigs) -> bool:
    """A 1024-wide context, or OpenCLIP's GELU text tower (CLIP ViT-L's, SD 1.x's, uses quick_gelu)."""
    unet, text = configs.get("unet", {}), configs.get("text_encoder", {})
    if unet.get("addition_embed_type") or "text_encoder_2" in configs.get("subfolders", {}):
        return False
    return unet.get("cross_attention_dim") == 1024 or text.get("hidden_act") == "gelu"


def _declare(name: str, label: str, in_channels: int) -> ModelFamily:
    return ModelFamily(
        name=name, label=label, loadable=True, inpainting=in_channels == 9, addons="sd2",
        recognise=lambda shapes: is_sd2(shapes) and unet_in_channels(shapes) == in_channels,
        recognise_folder=lambda configs: is_sd2_folder(configs)
        and int(configs.get("unet", {}).get("in_channels", 4)) == in_channels,
        keys=KEYS, latent=LATENT, native_size=512, prediction="probe" if in_channels == 4 else "eps",
        native_size_v=768,
        text=OPENCLIP_H, unet=UNetConfig(**{**UNET.__dict__, "in_channels": in_channels}), vae=VAEConfig(),
        sizes=((512, 512), (768, 768)),
    )


SD2 = _declare("sd2", "Stable Diffusion 2.x", 4)
SD2_INPAINT = _declare("sd2-inpaint", "Stable Diffusion 2.x inpainting", 9)
