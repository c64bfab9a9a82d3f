"""Key names between a diffusers `UNet2DConditionModel` (SD 1.x, 2.x, SDXL) and the original LDM U-Net.

The map is a list of (LDM prefix, diffusers prefix, kind) pairs derived from the config. Inside a
prefix the names agree, except in ResBlocks, whose layers diffusers renames (`RESNET_NAMES`).
LDM keys here are without `model.diffusion_model.`, i.e. exactly `UNetModel.state_dict()`'s keys.
"""

from __future__ import annotations

from torch import Tensor

from ..nn.configs import UNetConfig
from ..errors import ModelLoadError

# LDM ResBlock layer -> diffusers ResnetBlock2D layer
RESNET_NAMES = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}

Prefix = tuple[str, str, bool]  # (LDM prefix, diffusers prefix, is a ResBlock)


def unet_prefixes(config: UNetConfig) -> list[Prefix]:
    """Every sub-module with parameters, as (LDM name, diffusers name, is_resblock)."""
    per_level = config.num_res_blocks + 1  # LDM blocks per level: the res blocks and a down/upsampler
    levels = len(config.channel_mult)
    pairs: list[Prefix] = [
        ("time_embed.0", "time_embedding.linear_1", False),
        ("time_embed.2", "time_embedding.linear_2", False),
        ("input_blocks.0.0", "conv_in", False),
        ("middle_block.0", "mid_block.resnets.0", True),
        ("middle_block.1", "mid_block.attentions.0", False),
        ("middle_block.2", "mid_block.resnets.1", True),
        ("out.0", "conv_norm_out", False),
        ("out.2", "conv_out", False),
    ]
    if config.adm_in_channels:  # SDXL's pooled-text-and-size embedding
        pairs += [("label_emb.0.0", "add_embedding.linear_1", False), ("label_emb.0.2", "add_embedding.linear_2", False)]
    for level in range(levels):
        has_attention = level in config.attention_levels
        for j in range(config.num_res_blocks):
            block = f"input_blocks.{1 + level * per_level + j}"
            pairs.append((f"{block}.0", f"down_blocks.{level}.resnets.{j}", True))
            if has_attention:
                pairs.append((f"{block}.1", f"down_blocks.{level}.attentions.{j}", False))
        if level != levels - 1:
            block = f"input_blocks.{(level + 1) * per_level}"
            pairs.append((f"{block}.0.op", f"down_blocks.{level}.downsamplers.0.conv", False))

    for up in range(levels):  # diffusers' up_blocks, like LDM's output_blocks, start at the bottom
        level = levels - 1 - up
        has_attention = level in config.attention_levels
        for j in range(per_level):
            block = f"output_blocks.{up * per_level + j}"
            pairs.append((f"{block}.0", f"up_blocks.{up}.resnets.{j}", True))
            if has_attention:
                pairs.append((f"{block}.1", f"up_blocks.{up}.attentions.{j}", False))
            if level and j == per_level - 1:
                pairs.append((f"{block}.{2 if has_attention else 1}.conv", f"up_blocks.{up}.upsamplers.0.conv", False))
    return pairs


def unet_keys_from_diffusers(state_dict: dict[str, Tensor], config: UNetConfig) -> dict[str, Tensor]:
    """diffusers UNet2DConditionModel keys -> LDM keys (without `model.diffusion_model.`)."""
    table = {diffusers: (ldm, resnet) for ldm, diffusers, resnet in unet_prefixes(config)}
    renames = {new: old for old, new in RESNET_NAMES.items()}
    return _convert(state_dict, table, renames, "diffusers", config)


def unet_keys_to_diffusers(state_dict: dict[str, Tensor], config: UNetConfig) -> dict[str, Tensor]:
    """LDM keys (without `model.diffusion_model.`) -> diffusers UNet2DConditionModel keys."""
    table = {ldm: (diffusers, resnet) for ldm, diffusers, resnet in unet_prefixes(config)}
    return _convert(state_dict, table, RESNET_NAMES, "LDM", config)


def _convert(state_dict, table: dict[str, tuple[str, bool]], renames: dict[str, str], source: str, config: UNetConfig):
    converted: dict[str, Tensor] = {}
    unexpected: list[str] = []
    seen: set[str] = set()
    for key, tensor in state_dict.items():
        match = _split_prefix(key, table)
        if match is None:
            unexpected.append(key)
            continue
        prefix, suffix = match
        target, is_resnet = table[prefix]
        if is_resnet:
            suffix = _rename_head(suffix, renames)
            if suffix is None:
                unexpected.append(key)
                continue
        seen.add(prefix)
        converted[f"{target}.{suffix}"] = tensor
    if unexpected:
        raise ModelLoadError(
            f"{len(unexpected)} {source} U-Net key(s) do not fit a U-Net with channel_mult={config.channel_mult}, "
            f"num_res_blocks={config.num_res_blocks}, attention_levels={config.attention_levels}: "
            + ", ".join(sorted(unexpected)[:8]) + (" ..." if len(unexpected) > 8 else "")
        )
    missing = sorted(set(table) - seen)
    if missing:
        raise ModelLoadError(
            f"the {source} U-Net weights lack {len(missing)} layer(s) that a U-Net with "
            f"channel_mult={config.channel_mult}, num_res_blocks={config.num_res_blocks} needs: "
            + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        )
    return converted


def _split_prefix(key: str, table: dict) -> tuple[str, str] | None:
    """The longest dotted head of `key` found in `table`, and the rest."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in table:
            return head, ".".join(parts[cut:])
    return None


def _rename_head(suffix: str, renames: dict[str, str]) -> str | None:
    for old, new in renames.items():
        if suffix.startswith(old + "."):
            return new + suffix[len(old):]
    return None
