"""Rename a diffusers `AutoencoderKL` state dict to LDM keys (our `nn.vae` names) and back.

LDM keys here carry no `first_stage_model.` prefix. The two layouts differ in names only,
except for two things: diffusers numbers the decoder's up blocks from the lowest resolution
(up_blocks.0 = LDM up.{n-1}), and its mid-block attention uses Linear layers where LDM has
1x1 convolutions (weights [C, C] vs [C, C, 1, 1]).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

from ..nn.configs import VAEConfig
from ..errors import ModelLoadError

Rule = tuple[str, str | Callable[[re.Match], str]]


def _diffusers_to_ldm_rules(levels: int) -> list[Rule]:
    flip = lambda m: str(levels - 1 - int(m[1]))  # noqa: E731  up_blocks.i <-> up.{n-1-i}
    return [
        (r"\.down_blocks\.(\d+)\.resnets\.", r".down.\1.block."),
        (r"\.down_blocks\.(\d+)\.downsamplers\.0\.", r".down.\1.downsample."),
        (r"\.up_blocks\.(\d+)\.resnets\.", lambda m: f".up.{flip(m)}.block."),
        (r"\.up_blocks\.(\d+)\.upsamplers\.0\.", lambda m: f".up.{flip(m)}.upsample."),
        (r"\.mid_block\.resnets\.(\d)\.", lambda m: f".mid.block_{int(m[1]) + 1}."),
        (r"\.mid_block\.attentions\.0\.", ".mid.attn_1."),
        (r"\.conv_shortcut\.", ".nin_shortcut."),
        (r"\.conv_norm_out\.", ".norm_out."),
        (r"\.group_norm\.", ".norm."),
        # Older diffusers folders name the attention query/key/value/proj_attn.
        (r"\.(?:to_q|query)\.", ".q."),
        (r"\.(?:to_k|key)\.", ".k."),
        (r"\.(?:to_v|value)\.", ".v."),
        (r"\.(?:to_out\.0|proj_attn)\.", ".proj_out."),
    ]


def _ldm_to_diffusers_rules(levels: int) -> list[Rule]:
    flip = lambda m: str(levels - 1 - int(m[1]))  # noqa: E731
    return [
        (r"\.down\.(\d+)\.block\.", r".down_blocks.\1.resnets."),
        (r"\.down\.(\d+)\.downsample\.", r".down_blocks.\1.downsamplers.0."),
        (r"\.up\.(\d+)\.block\.", lambda m: f".up_blocks.{flip(m)}.resnets."),
        (r"\.up\.(\d+)\.upsample\.", lambda m: f".up_blocks.{flip(m)}.upsamplers.0."),
        (r"\.mid\.block_(\d)\.", lambda m: f".mid_block.resnets.{int(m[1]) - 1}."),
        (r"\.mid\.attn_1\.", ".mid_block.attentions.0."),
        (r"\.nin_shortcut\.", ".conv_shortcut."),
        (r"\.norm_out\.", ".conv_norm_out."),
        (r"\.norm\.", ".group_norm."),
        (r"\.q\.", ".to_q."),
        (r"\.k\.", ".to_k."),
        (r"\.v\.", ".to_v."),
        (r"\.proj_out\.", ".to_out.0."),
    ]


def _rename(key: str, rules: list[Rule]) -> str:
    # Rules match between dots; the leading dot keeps top-level names (quant_conv ...) untouched.
    name = "." + key
    for pattern, replacement in rules:
        name = re.sub(pattern, replacement, name)
    return name[1:]


def _ldm_shapes(config: VAEConfig) -> dict[str, torch.Size]:
    from ..nn.vae import AutoencoderKL  # local: keeps this module light to import

    with torch.device("meta"):
        return {k: v.shape for k, v in AutoencoderKL(config).state_dict().items()}


def _listed(what: str, names: list[str]) -> str:
    return f"{len(names)} {what} ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"


def _check_keys(
    state_dict: Mapping[str, torch.Tensor], shapes: dict[str, torch.Size], unexpected: list[str], what: str
) -> None:
    missing = sorted(set(shapes) - set(state_dict))
    wrong_shape = [
        f"{k} {tuple(v.shape)} != {tuple(shapes[k])}"
        for k, v in state_dict.items()
        if k in shapes and v.shape != shapes[k]
    ]
    problems = [
        _listed(name, items)
        for name, items in (("unexpected keys", unexpected), ("missing keys", missing), ("wrong shapes", wrong_shape))
        if items
    ]
    if problems:
        raise ModelLoadError(
            f"this {what} does not fit the expected Stable Diffusion 1.x VAE layout: {'; '.join(problems)}"
        )


def vae_keys_from_diffusers(state_dict: Mapping[str, torch.Tensor], config: VAEConfig) -> dict[str, torch.Tensor]:
    """diffusers AutoencoderKL keys -> LDM keys (no `first_stage_model.` prefix), ready for `nn.vae`."""
    shapes = _ldm_shapes(config)
    rules = _diffusers_to_ldm_rules(len(config.channel_mult))
    converted, unexpected = {}, []
    for key, value in state_dict.items():
        name = _rename(key, rules)
        if name not in shapes:
            unexpected.append(key)
            continue
        if ".attn_1." in name and value.ndim == 2:
            value = value[:, :, None, None]  # Linear -> 1x1 conv
        converted[name] = value
    _check_keys(converted, shapes, unexpected, "diffusers VAE")
    return converted


def vae_config_from_diffusers_keys(shapes: Mapping[str, tuple[int, ...]]) -> VAEConfig:
    """A VAE's sizes from tensors in diffusers' naming: the encoder's keys renamed to LDM's (the encoder's
    levels are not renumbered), then sized by the one shape reader, detection.infer_vae_config."""
    from .detection import infer_vae_config

    rules = _diffusers_to_ldm_rules(levels=0)  # only the decoder's up blocks depend on the level count
    return infer_vae_config({_rename(k, rules): tuple(v) for k, v in shapes.items()
                             if k.startswith(("encoder.", "post_quant_conv."))})


def vae_keys_to_diffusers(state_dict: Mapping[str, torch.Tensor], config: VAEConfig) -> dict[str, torch.Tensor]:
    """LDM keys (no prefix) -> diffusers AutoencoderKL keys; the inverse of `vae_keys_from_diffusers`."""
    shapes = _ldm_shapes(config)
    unexpected = [key for key in state_dict if key not in shapes]
    _check_keys(state_dict, shapes, unexpected, "LDM VAE")
    rules = _ldm_to_diffusers_rules(len(config.channel_mult))
    converted = {}
    for key, value in state_dict.items():
        if ".attn_1." in key and value.ndim == 4:
            value = value[:, :, 0, 0]  # 1x1 conv -> Linear
        converted[_rename(key, rules)] = value
    return converted
