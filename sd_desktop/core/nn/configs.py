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
    # How the pipeline reads it (not in the weights): the layer from the end it takes by default (2: the
    # penultimate, SD 2.x and SDXL), whether its final LayerNorm follows, the id that pads after the first end
    # token (OpenCLIP towers pad with 0; None: end tokens), and the width of the pooled output's projection.
    default_skip: int = 1
    final_norm: bool = True
    pad_id: int | None = None
    projection_dim: int = 0
    cut_layers: int = 0  # layers the tower lacks at the top (diffusers' SD 2.x folders drop the last one): clip skip
    #                      counts from the original tower's end


@dataclass(frozen=True)
class UNetConfig:
    """The LDM `UNetModel` as SD 1.x configures it; SD 2.x and SDXL set the fields after `norm_groups`."""

    in_channels: int = 4  # 9 for the inpainting variant: latents + mask + masked-image latents
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (0, 1, 2)  # levels (0 = full resolution) with spatial transformers
    num_heads: int = 8
    transformer_depth: int | tuple[int, ...] = 1  # at every attention level, or one per level (SDXL: 0, 2, 10)
    context_dim: int = 768
    norm_groups: int = 32
    num_head_channels: int = -1  # > 0: heads of this width (64 in SD 2.x and SDXL) instead of num_heads
    linear_projection: bool = False  # the transformers' proj_in/proj_out are Linear layers (SD 2.x, SDXL)
    middle_depth: int | None = None  # the middle block's transformer depth; None: the deepest level's
    adm_in_channels: int = 0  # > 0: a vector added to the time embedding (SDXL: pooled text + size, 2816)

    def depth_at(self, level: int) -> int:
        """Transformer blocks per attention layer at `level` (0: no attention there)."""
        if level not in self.attention_levels:
            return 0
        if isinstance(self.transformer_depth, tuple):
            return self.transformer_depth[level]
        return self.transformer_depth

    @property
    def mid_depth(self) -> int:
        if self.middle_depth is not None:
            return self.middle_depth
        return max([self.depth_at(level) for level in range(len(self.channel_mult))] + [1])

    def heads_at(self, channels: int) -> int:
        return channels // self.num_head_channels if self.num_head_channels > 0 else self.num_heads


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
