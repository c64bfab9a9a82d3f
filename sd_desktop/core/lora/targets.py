"""Which of our layers a LoRA's layer name means.

Our U-Net is named as LDM names it (`input_blocks.1.1.transformer_blocks.0.attn1.to_q`), our text encoder as
transformers does without `text_model.` (`encoder.layers.0.self_attn.q_proj`; SDXL's two under `clip_l.` and
`clip_g.`, which kohya's files call te1 and te2). A LoRA names a layer in
kohya's underscore form of either the diffusers path or the LDM path, so the table is built from our own
modules: each adaptable layer under both of its names (the diffusers one through core.loading.convert_unet),
with "." as "_". Nothing is parsed out of underscores, so any U-Net layout the loader accepts works.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Target:
    network: str  # "unet" or "text"
    path: str  # the layer's dotted path in our network (LDM names; a GEGLU's is its `.proj`)
    shape: tuple[int, ...]  # its weight's shape
    conv: dict | None  # stride, padding, dilation of a convolution; None for a linear layer


def lora_targets(config) -> dict[tuple[str, str], Target]:
    """(part, underscore name) -> Target, for every Linear and Conv2d a LoRA may adapt, built on the meta
    device from the model's config (cheap; its weights are not touched)."""
    from ..loading.convert_unet import unet_keys_to_diffusers
    from ..nn.clip_text import CLIPTextModel
    from ..nn.unet import UNetModel

    with torch.device("meta"):
        unet, text = UNetModel(config.unet), CLIPTextModel(config.text)
        text2 = CLIPTextModel(config.text2) if config.text2 is not None else None
    table: dict[tuple[str, str], Target] = {}
    layers = dict(_layers(unet))
    keys = {key: key for key in unet.state_dict()}
    to_diffusers = {ldm: diffusers for diffusers, ldm in unet_keys_to_diffusers(keys, config.unet).items()}
    for path, module in layers.items():
        target = Target("unet", path, tuple(module.weight.shape), _conv(module))
        table[("unet", path.replace(".", "_"))] = target
        diffusers = to_diffusers.get(f"{path}.weight")
        if diffusers is not None:
            table[("unet", diffusers.removesuffix(".weight").replace(".", "_"))] = target
    # SDXL: kohya's lora_te1_ (and diffusers' text_encoder.) is CLIP-L, lora_te2_ (text_encoder_2.) OpenCLIP bigG
    towers = [(("te",), "", text)] if text2 is None else [(("te1", "te"), "clip_l.", text), (("te2",), "clip_g.", text2)]
    for parts, prefix, tower in towers:
        for path, module in _layers(tower):
            target = Target("text", prefix + path, tuple(module.weight.shape), None)
            for part in parts:
                table[(part, f"text_model_{path}".replace(".", "_"))] = target
                table[(part, path.replace(".", "_"))] = target  # (also without text_model., as some tools save it)
    return table


def _layers(network: nn.Module):
    for path, module in network.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            yield path, module


def _conv(module: nn.Module) -> dict | None:
    if not isinstance(module, nn.Conv2d):
        return None
    return {"stride": tuple(module.stride), "padding": tuple(module.padding), "dilation": tuple(module.dilation)}
