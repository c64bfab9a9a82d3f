"""What a checkpoint is, read off its keys and tensor shapes (in the spirit of ComfyUI's model detection).

Everything here works on `{key: shape}` maps, so a 4 GB file is identified without reading its data.
Keys are in the original LDM layout with each network's prefix removed.
"""

from __future__ import annotations

import re

from .configs import TextEncoderConfig, UNetConfig, VAEConfig
from .errors import ModelLoadError, UnsupportedModelError

Shapes = dict[str, tuple[int, ...]]

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
VAE_PARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
TEXT_PREFIXES = ("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer.")

SUPPORTED = "sd-desktop supports Stable Diffusion 1.x for now"


def split_ldm_keys(keys) -> dict[str, dict[str, str]]:
    """Map each network to {key without prefix: full key}; whatever is not a weight of one is ignored
    (schedule buffers, model_ema.*, position_ids, loss.* ...)."""
    parts: dict[str, dict[str, str]] = {"unet": {}, "vae": {}, "text": {}}
    for key in keys:
        if key.startswith(UNET_PREFIX):
            parts["unet"][key[len(UNET_PREFIX):]] = key
        elif key.startswith(VAE_PREFIX):
            short = key[len(VAE_PREFIX):]
            if short.startswith(VAE_PARTS):  # not loss.* and other training leftovers
                parts["vae"][short] = key
        else:
            for prefix in TEXT_PREFIXES:
                if key.startswith(prefix):
                    short = key[len(prefix):]
                    if not short.endswith("position_ids"):
                        parts["text"][short] = key
                    break
    return parts


def refuse_unsupported(keys, shapes: Shapes, name: str) -> None:
    """Raise a message that names what the file is, for everything that is not SD 1.x."""
    keyset = set(keys)

    def has_prefix(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keyset)

    if has_prefix("conditioner.embedders.") or f"{UNET_PREFIX}label_emb.0.0.weight" in keyset:
        raise UnsupportedModelError(f"{name}: this looks like an SDXL checkpoint; {SUPPORTED}")
    if has_prefix("cond_stage_model.model.") or _context_dim(shapes, UNET_PREFIX) == 1024:
        raise UnsupportedModelError(f"{name}: this looks like a Stable Diffusion 2.x checkpoint; {SUPPORTED}")
    if has_prefix("double_blocks.") or has_prefix(f"{UNET_PREFIX}double_blocks."):
        raise UnsupportedModelError(f"{name}: this looks like a FLUX model; {SUPPORTED}")
    if has_prefix("joint_blocks.") or has_prefix(f"{UNET_PREFIX}joint_blocks."):
        raise UnsupportedModelError(f"{name}: this looks like a Stable Diffusion 3 model; {SUPPORTED}")
    if any(k.startswith(("lora_unet_", "lora_te_")) or ".lora_" in k for k in keyset):
        raise UnsupportedModelError(f"{name} is a LoRA, not a full model; choose a full checkpoint")
    if has_prefix("control_model."):
        raise UnsupportedModelError(f"{name} is a ControlNet, not a full model; choose a full checkpoint")
    if has_prefix(UNET_PREFIX):
        in_ch = shapes.get(f"{UNET_PREFIX}input_blocks.0.0.weight", (0, 0))[1]
        if in_ch not in (4, 9):
            raise UnsupportedModelError(
                f"{name}: U-Net with {in_ch} input channels (4 = SD 1.x, 9 = SD 1.x inpainting); "
                f"this variant is not supported"
            )
        return
    if "encoder.conv_in.weight" in keyset or "decoder.conv_in.weight" in keyset:
        raise ModelLoadError(f"{name} is a VAE on its own; load a full checkpoint and choose this file as its VAE")
    sample = ", ".join(sorted(keyset)[:3]) or "no tensors"
    raise ModelLoadError(f"{name} is not a Stable Diffusion checkpoint (no U-Net weights; it holds {sample} ...)")


def _context_dim(shapes: Shapes, prefix: str = "") -> int | None:
    for key, shape in shapes.items():
        if key.startswith(prefix) and key.endswith("attn2.to_k.weight"):
            return shape[1]
    return None


def _indices(shapes: Shapes, pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in shapes for m in [regex.match(k)] if m})


def infer_unet_config(shapes: Shapes) -> UNetConfig:
    """Sizes of an LDM U-Net from its (prefix-free) keys and shapes."""
    try:
        conv_in = shapes["input_blocks.0.0.weight"]
        model_channels, in_channels = conv_in[0], conv_in[1]
        out_channels = shapes["out.2.weight"][0]
        channel_mult: list[int] = []
        attention_levels: list[int] = []
        res_per_level: list[int] = []
        count = 0
        for index in _indices(shapes, r"input_blocks\.(\d+)\.")[1:]:
            block = f"input_blocks.{index}"
            if f"{block}.0.op.weight" in shapes:  # a downsample closes the level
                res_per_level.append(count)
                count = 0
                continue
            if count == 0:
                channel_mult.append(shapes[f"{block}.0.in_layers.2.weight"][0] // model_channels)
                if f"{block}.1.proj_in.weight" in shapes:
                    attention_levels.append(len(channel_mult) - 1)
            count += 1
        res_per_level.append(count)
        context_dim = _context_dim(shapes) or 768
        depth = len(_indices(shapes, r"input_blocks\.1\.1\.transformer_blocks\.(\d+)\.")) or 1
    except KeyError as exc:
        raise ModelLoadError(f"the U-Net's weights are incomplete (missing {exc.args[0]})") from None
    if len(set(res_per_level)) != 1:
        raise ModelLoadError(f"the U-Net has an unexpected block layout ({res_per_level} res blocks per level)")
    return UNetConfig(
        in_channels=in_channels,
        out_channels=out_channels,
        model_channels=model_channels,
        channel_mult=tuple(channel_mult),
        num_res_blocks=res_per_level[0],
        attention_levels=tuple(attention_levels),
        transformer_depth=depth,
        context_dim=context_dim,
    )


def infer_vae_config(shapes: Shapes) -> VAEConfig:
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
        channel_mult=mult, num_res_blocks=res_blocks,
    )


def infer_text_config(shapes: Shapes) -> TextEncoderConfig:
    try:
        vocab, width = shapes["embeddings.token_embedding.weight"]
        positions = shapes["embeddings.position_embedding.weight"][0]
        layers = len(_indices(shapes, r"encoder\.layers\.(\d+)\."))
        mlp_width = shapes["encoder.layers.0.mlp.fc1.weight"][0]
    except KeyError as exc:
        raise ModelLoadError(f"the text encoder's weights are incomplete (missing {exc.args[0]})") from None
    # CLIP's text towers use 64-wide heads; the count is not stored in the weights.
    return TextEncoderConfig(
        vocab_size=vocab, max_positions=positions, width=width, layers=layers,
        heads=max(1, width // 64), mlp_width=mlp_width,
    )
