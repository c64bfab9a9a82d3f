"""A checkpoint's network sizes, read off its keys and tensor shapes (in the spirit of ComfyUI's model
detection). Which family a file is comes from core.families; this module sizes its networks.

Everything here works on `{key: shape}` maps, so a 4 GB file is sized without reading its data.
The infer_* functions take keys in the original LDM layout with each network's prefix removed.
"""

from __future__ import annotations

import dataclasses
import re

from ..errors import ModelLoadError
from ..families import KeyLayout, Shapes
from ..nn.configs import TextEncoderConfig, UNetConfig, VAEConfig


def split_ldm_keys(keys, layout: KeyLayout) -> dict[str, dict[str, str]]:
    """Map each network to {key without prefix: full key}; whatever is not a weight of one is ignored
    (schedule buffers, model_ema.*, position_ids, loss.* ...). "text2" is SDXL's second text tower."""
    parts: dict[str, dict[str, str]] = {"unet": {}, "vae": {}, "text": {}}
    if layout.text2:
        parts["text2"] = {}
    for key in keys:
        if key.startswith(layout.unet):
            parts["unet"][key[len(layout.unet):]] = key
        elif key.startswith(layout.vae):
            short = key[len(layout.vae):]
            if short.startswith(layout.vae_parts):
                parts["vae"][short] = key
        elif layout.text2 and key.startswith(layout.text2):
            parts["text2"][key[len(layout.text2):]] = key
        else:
            for prefix in layout.text:
                if key.startswith(prefix):
                    short = key[len(prefix):]
                    if not short.endswith("position_ids"):
                        parts["text"][short] = key
                    break
    return parts


def _indices(shapes: Shapes, pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in shapes for m in [regex.match(k)] if m})


def _context_dim(shapes: Shapes) -> int | None:
    for key, shape in shapes.items():
        if key.endswith("attn2.to_k.weight"):
            return shape[1]
    return None


def infer_unet_config(shapes: Shapes, defaults: UNetConfig) -> UNetConfig:
    """Sizes of an LDM U-Net from its (prefix-free) keys and shapes; what they do not show from `defaults`."""
    try:
        conv_in = shapes["input_blocks.0.0.weight"]
        model_channels, in_channels = conv_in[0], conv_in[1]
        out_channels = shapes["out.2.weight"][0]
        channel_mult: list[int] = []
        depths: list[int] = []
        res_per_level: list[int] = []
        linear = False
        count = 0
        for index in _indices(shapes, r"input_blocks\.(\d+)\.")[1:]:
            block = f"input_blocks.{index}"
            if f"{block}.0.op.weight" in shapes:  # a downsample closes the level
                res_per_level.append(count)
                count = 0
                continue
            if count == 0:
                channel_mult.append(shapes[f"{block}.0.in_layers.2.weight"][0] // model_channels)
                depths.append(_transformer_depth(shapes, f"{block}.1"))
                linear = linear or len(shapes.get(f"{block}.1.proj_in.weight", (0, 0, 1, 1))) == 2
            count += 1
        res_per_level.append(count)
        context_dim = _context_dim(shapes) or defaults.context_dim
        middle = _transformer_depth(shapes, "middle_block.1")
        adm = shapes["label_emb.0.0.weight"][1] if "label_emb.0.0.weight" in shapes else 0
    except KeyError as exc:
        raise ModelLoadError(f"the U-Net's weights are incomplete (missing {exc.args[0]})") from None
    if len(set(res_per_level)) != 1:
        raise ModelLoadError(f"the U-Net has an unexpected block layout ({res_per_level} res blocks per level)")
    attention_levels = tuple(level for level, depth in enumerate(depths) if depth)
    if len({depths[level] for level in attention_levels}) <= 1:  # the same everywhere (SD 1.x, 2.x): one number
        depth: int | tuple[int, ...] = depths[attention_levels[0]] if attention_levels else 1
    else:
        depth = tuple(depths)
    return UNetConfig(
        in_channels=in_channels,
        out_channels=out_channels,
        model_channels=model_channels,
        channel_mult=tuple(channel_mult),
        num_res_blocks=res_per_level[0],
        attention_levels=attention_levels,
        num_heads=defaults.num_heads,
        transformer_depth=depth,
        context_dim=context_dim,
        norm_groups=defaults.norm_groups,
        num_head_channels=defaults.num_head_channels,
        linear_projection=linear,
        middle_depth=None if middle == max(depths + [1]) else middle,
        adm_in_channels=adm,
    )


def _transformer_depth(shapes: Shapes, block: str) -> int:
    """Transformer blocks in the attention layer `block` (0: none there)."""
    if f"{block}.proj_in.weight" not in shapes:
        return 0
    return len(_indices(shapes, re.escape(block) + r"\.transformer_blocks\.(\d+)\."))


def infer_vae_config(shapes: Shapes, defaults: VAEConfig | None = None) -> VAEConfig:
    """Sizes of an LDM VAE from its (prefix-free) keys and shapes. The only VAE sizing from weights: files
    in diffusers' naming are renamed first (core.loading.convert_vae)."""
    defaults = defaults or VAEConfig()
    try:
        base = shapes["encoder.conv_in.weight"][0]
        levels = _indices(shapes, r"encoder\.down\.(\d+)\.")
        mult = tuple(shapes[f"encoder.down.{i}.block.0.conv1.weight"][0] // base for i in levels)
        res_blocks = len(_indices(shapes, r"encoder\.down\.0\.block\.(\d+)\."))
        latent = shapes["post_quant_conv.weight"][0]
        in_channels = shapes["encoder.conv_in.weight"][1]
    except KeyError as exc:
        raise ModelLoadError(f"the VAE's weights are incomplete (missing {exc.args[0]})") from None
    return VAEConfig(
        in_channels=in_channels, latent_channels=latent, base_channels=base,
        channel_mult=mult, num_res_blocks=res_blocks, norm_groups=defaults.norm_groups,
    )


def infer_text_config(shapes: Shapes, defaults: TextEncoderConfig) -> TextEncoderConfig:
    """Sizes of a CLIP text tower; its activation and norm epsilon (not in the weights) from `defaults`."""
    try:
        vocab, width = shapes["embeddings.token_embedding.weight"]
        positions = shapes["embeddings.position_embedding.weight"][0]
        layers = len(_indices(shapes, r"encoder\.layers\.(\d+)\."))
        mlp_width = shapes["encoder.layers.0.mlp.fc1.weight"][0]
    except KeyError as exc:
        raise ModelLoadError(f"the text encoder's weights are incomplete (missing {exc.args[0]})") from None
    # CLIP's text towers use 64-wide heads; the count is not stored in the weights.
    projection = shapes.get("text_projection.weight", (0,))[0]
    return dataclasses.replace(
        defaults, vocab_size=vocab, max_positions=positions, width=width, layers=layers,
        heads=max(1, width // 64), mlp_width=mlp_width, projection_dim=projection,
    )
