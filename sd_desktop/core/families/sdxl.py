"""SDXL 1.0 and its fine-tunes (Juggernaut, Pony, Illustrious, NoobAI ...), and its 9-channel inpainting variant.

Three U-Net levels with 0, 2 and 10 transformer blocks, heads 64 wide, linear projections, a 2048-wide context
(CLIP ViT-L's penultimate layer beside OpenCLIP ViT-bigG's, neither through its final LayerNorm), and a vector
`y` of 2816: bigG's pooled output (1280) and six 256-wide sinusoidal embeddings of the original size, the crop
and the target size (core.pipelines.conditioning). v-prediction fine-tunes (NoobAI-XL V-Pred) say so with a
`v_pred` key. The refiner (OpenCLIP only, y of 2560) is recognised and refused.
"""

from __future__ import annotations

from ..nn.configs import TextEncoderConfig, UNetConfig, VAEConfig
from .base import FolderConfigs, KeyLayout, LatentFormat, ModelFamily, Shapes

KEYS = KeyLayout(unet="model.diffusion_model.", vae="first_stage_model.",
                 text=("conditioner.embedders.0.transformer.text_model.",), text2="conditioner.embedders.1.model.")

# ComfyUI's least-squares fit of SDXL's VAE (the last row is the bias)
LATENT = LatentFormat(channels=4, scale_factor=0.13025, rgb_factors=(
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
    (0.1084, -0.0175, -0.0011),
))
CLIP_L = TextEncoderConfig(default_skip=2, final_norm=False)
OPENCLIP_G = TextEncoderConfig(width=1280, layers=32, heads=20, mlp_width=5120, activation="gelu",
                               default_skip=2, final_norm=False, pad_id=0, projection_dim=1280)
UNET = UNetConfig(channel_mult=(1, 2, 4), attention_levels=(1, 2), transformer_depth=(0, 2, 10), context_dim=2048,
                  num_head_channels=64, linear_projection=True, adm_in_channels=2816)
# The aspect buckets SDXL was trained on that people use most (width, height)
SIZES = ((1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768), (768, 1344))


def unet_in_channels(shapes: Shapes) -> int | None:
    shape = shapes.get(f"{KEYS.unet}input_blocks.0.0.weight")
    return shape[1] if shape is not None and len(shape) == 4 else None


def is_sdxl(shapes: Shapes) -> bool:
    return any(key.startswith(KEYS.text2) for key in shapes) and any(key.startswith(KEYS.text[0]) for key in shapes)


def is_refiner(shapes: Shapes) -> bool:
    return any(key.startswith("conditioner.embedders.0.model.") for key in shapes)


def is_sdxl_folder(configs: FolderConfigs) -> bool:
    return "text_encoder_2" in configs.get("subfolders", {}) and "text_encoder" in configs.get("subfolders", {})


def _declare(name: str, label: str, in_channels: int) -> ModelFamily:
    return ModelFamily(
        name=name, label=label, article="an", loadable=True, inpainting=in_channels == 9, addons="sdxl",
        recognise=lambda shapes: is_sdxl(shapes) and unet_in_channels(shapes) == in_channels,
        recognise_folder=lambda configs: is_sdxl_folder(configs)
        and int(configs.get("unet", {}).get("in_channels", 4)) == in_channels,
        keys=KEYS, latent=LATENT, native_size=1024, zero_empty_negative=True, sizes=SIZES, taesd="taesdxl",
        text=CLIP_L, text2=OPENCLIP_G, unet=UNetConfig(**{**UNET.__dict__, "in_channels": in_channels}),
        vae=VAEConfig(),
    )


SDXL = _declare("sdxl", "SDXL", 4)
SDXL_INPAINT = _declare("sdxl-inpaint", "SDXL inpainting", 9)
