"""Stable Diffusion 1.x (1.4, 1.5 and their fine-tunes) and its 9-channel inpainting variant."""

from __future__ import annotations

from ..nn.configs import TextEncoderConfig, UNetConfig, VAEConfig
from .base import FolderConfigs, KeyLayout, LatentFormat, ModelFamily, Shapes

KEYS = KeyLayout(
    unet="model.diffusion_model.",
    vae="first_stage_model.",
    text=("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer."),
)

# The published fit of SD 1.x's VAE that ComfyUI and A1111 use for their previews.
LATENT = LatentFormat(channels=4, scale_factor=0.18215, rgb_factors=(
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
))


def unet_in_channels(shapes: Shapes) -> int | None:
    shape = shapes.get(f"{KEYS.unet}input_blocks.0.0.weight")
    return shape[1] if shape is not None and len(shape) == 4 else None


def _folder_in_channels(configs: FolderConfigs) -> int:
    return int(configs.get("unet", {}).get("in_channels", 4))


def _declare(name: str, label: str, in_channels: int) -> ModelFamily:
    return ModelFamily(
        name=name, label=label, loadable=True, inpainting=in_channels == 9, addons="sd1",
        recognise=lambda shapes: unet_in_channels(shapes) == in_channels and f"{KEYS.unet}label_emb.0.0.weight" not in shapes,
        recognise_folder=lambda configs: _folder_in_channels(configs) == in_channels,
        keys=KEYS, latent=LATENT, native_size=512, sizes=((512, 512), (512, 768), (768, 512), (768, 768)),
        text=TextEncoderConfig(), unet=UNetConfig(in_channels=in_channels), vae=VAEConfig(),
    )


SD1 = _declare("sd1", "Stable Diffusion 1.x", 4)
SD1_INPAINT = _declare("sd1-inpaint", "Stable Diffusion 1.x inpainting", 9)
