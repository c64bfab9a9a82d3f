"""Sizes of the three networks. Frozen dataclasses; the loader infers them from a checkpoint.

Defaults are Stable Diffusion 1.x's. `tiny_*` presets are small networks of the same architecture, for tests.
Which family a model belongs to, and that family's latent format, live in core.families.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextEncoderConfig:
    """CLIP text transformer (ViT-L/14's text tower for SD 1.x)."""

    vocab_size: int = 49408
    max_positions: int = 77
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_width: int = 3072
    activation: str = "quick_gelu"  # SD 1.x: quick_gelu; SD 2.x's OpenCLIP uses gelu
    layer_norm_eps: float = 1e-5


@dataclass(frozen=True)
class UNetConfig:
    """The LDM `UNetModel` as SD 1.x configures it."""

    in_channels: int = 4  # 9 for the inpainting variant: latents + mask + masked-image latents
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (0, 1, 2)  # levels (0 = full resolution) with spatial transformers
    num_heads: int = 8
    transformer_depth: int = 1
    context_dim: int = 768
    norm_groups: int = 32


@dataclass(frozen=True)
class VAEConfig:
    """The KL-f8 autoencoder of SD 1.x."""

    in_channels: int = 3
    latent_channels: int = 4
    base_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2  # the decoder has one more per level, as in LDM
    norm_groups: int = 32

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)


def tiny_text_config() -> TextEncoderConfig:
    return TextEncoderConfig(width=64, layers=2, heads=1, mlp_width=128)


def tiny_unet_config(in_channels: int = 4) -> UNetConfig:
    return UNetConfig(
        in_channels=in_channels,
        model_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_levels=(0, 1),
        num_heads=8,
        context_dim=64,
    )


def tiny_vae_config() -> VAEConfig:
    return VAEConfig(base_channels=32, channel_mult=(1, 2, 2, 2), num_res_blocks=1)  # still 8x down
