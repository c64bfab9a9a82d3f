"""Reading a diffusers model folder (unet/, vae/, text_encoder/, tokenizer/) into our layout."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ModelLoadError
from ..families import ModelConfig, ModelFamily, recognise_folder
from ..nn.configs import TextEncoderConfig, UNetConfig, VAEConfig
from .tensor_files import TensorFile, open_tensor_file

_WEIGHT_NAMES = {
    "unet": ("diffusion_pytorch_model", "diffusion_pytorch_model.fp16"),
    "vae": ("diffusion_pytorch_model", "diffusion_pytorch_model.fp16"),
    "text_encoder": ("model", "model.fp16", "pytorch_model", "pytorch_model.fp16"),
}
_WEIGHT_NAMES["text_encoder_2"] = _WEIGHT_NAMES["text_encoder"]
_SUBFOLDERS = ("unet", "vae", "text_encoder")


@dataclass
class DiffusersFolder:
    root: Path
    config: ModelConfig

    family = property(lambda self: self.config.family)

    def tokenizer_files(self) -> tuple[Path, Path] | None:
        """tokenizer/'s vocabulary (SDXL's tokenizer_2/ holds the same BPE; only its padding differs, which
        the text encoder's config says)."""
        vocab, merges = self.root / "tokenizer" / "vocab.json", self.root / "tokenizer" / "merges.txt"
        return (vocab, merges) if vocab.is_file() and merges.is_file() else None


def is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "model_index.json").is_file() or (path / "unet").is_dir())


def open_diffusers_folder(root: Path) -> DiffusersFolder:
    name = root.name
    subfolders = {p.name: {} for p in root.iterdir() if p.is_dir()}
    configs = {sub: _read_json(root / sub / "config.json") if (root / sub / "config.json").is_file() else {}
               for sub in ("unet", "text_encoder")}
    family = recognise_folder({**configs, "subfolders": subfolders}, name)
    missing = [sub for sub in _SUBFOLDERS if not (root / sub / "config.json").is_file()]
    if missing:
        raise ModelLoadError(
            f"{name} is not a complete diffusers model folder: missing {', '.join(f'{m}/config.json' for m in missing)} "
            "(expected unet/, vae/ and text_encoder/, each with config.json and weights)"
        )
    unet = _read_json(root / "unet" / "config.json")
    vae = _read_json(root / "vae" / "config.json")
    text = _text_config(_read_json(root / "text_encoder" / "config.json"), family.text)
    if family.text2 is None:
        # diffusers' SD 2.x pipeline reads the tower's last layer: an SD 2.x folder's text encoder is OpenCLIP-H
        # already cut to 23 layers (the original's penultimate is its last), so clip skip counts one layer more
        text = dataclasses.replace(text, cut_layers=text.default_skip - 1)
        text2 = None
    else:
        if not (root / "text_encoder_2" / "config.json").is_file():
            raise ModelLoadError(f"{name} is an incomplete SDXL folder: missing text_encoder_2/config.json")
        text2 = _text_config(_read_json(root / "text_encoder_2" / "config.json"), family.text2)
    scheduler = root / "scheduler" / "scheduler_config.json"
    scheduler_config = _read_json(scheduler) if scheduler.is_file() else {}
    stated = scheduler_config.get("prediction_type")
    prediction = {"v_prediction": "v", "epsilon": "eps"}.get(stated) or family.prediction
    return DiffusersFolder(root=root, config=ModelConfig(
        family=family,
        unet=unet_config_from_json(unet, family),
        vae=vae_config_from_json(vae),
        text=text,
        text2=text2,
        scale_factor=float(vae.get("scaling_factor", family.latent.scale_factor)),
        native_size=int(unet.get("sample_size", family.native_size // 8)) * 2 ** (len(vae["block_out_channels"]) - 1),
        prediction=prediction,
        zero_snr=scheduler_config.get("rescale_betas_zero_snr") is True,
    ))


def _text_config(text: dict, defaults: TextEncoderConfig) -> TextEncoderConfig:
    """A transformers CLIPTextConfig's json; how the family reads the tower (skip, norm, padding) from `defaults`."""
    return dataclasses.replace(
        defaults,
        vocab_size=text.get("vocab_size", defaults.vocab_size),
        max_positions=text.get("max_position_embeddings", defaults.max_positions),
        width=text.get("hidden_size", defaults.width),
        layers=text.get("num_hidden_layers", defaults.layers),
        heads=text.get("num_attention_heads", defaults.heads),
        mlp_width=text.get("intermediate_size", defaults.mlp_width),
        activation=text.get("hidden_act", defaults.activation),
        layer_norm_eps=text.get("layer_norm_eps", defaults.layer_norm_eps),
        projection_dim=text.get("projection_dim", 0) if defaults.projection_dim else 0,
    )


def vae_config_from_json(vae: dict) -> VAEConfig:
    channels = vae["block_out_channels"]
    return VAEConfig(
        in_channels=vae.get("in_channels", 3),
        latent_channels=vae.get("latent_channels", 4),
        base_channels=channels[0],
        channel_mult=tuple(c // channels[0] for c in channels),
        num_res_blocks=vae.get("layers_per_block", 2),
        norm_groups=vae.get("norm_num_groups", 32),
    )


def read_vae_folder(folder: Path, dtype: torch.dtype) -> tuple[VAEConfig, dict[str, torch.Tensor]]:
    """A diffusers vae/ folder on its own: its config and its weights in diffusers' naming."""
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder.name} is a folder without config.json; choose a VAE file or a diffusers vae folder")
    return vae_config_from_json(_read_json(folder / "config.json")), read_folder_weights(folder, "vae", dtype)


def unet_config_from_json(cfg: dict, family: ModelFamily) -> UNetConfig:
    """A diffusers UNet2DConditionModel's json. Its `attention_head_dim` is, for historical reasons, the number
    of heads (SD 1.x: 8; SD 2.x and SDXL: one per level, 64 channels each), which `num_attention_heads` now names."""
    channels = cfg["block_out_channels"]
    levels = len(channels)
    attention_levels = tuple(i for i, t in enumerate(cfg["down_block_types"]) if "CrossAttn" in t)
    heads = cfg.get("num_attention_heads") or cfg.get("attention_head_dim", family.unet.num_heads)
    heads = list(heads) if isinstance(heads, (list, tuple)) else [heads] * levels
    widths = {channels[i] // heads[i] for i in attention_levels}
    head_channels = -1
    if len(widths) == 1 and len({heads[i] for i in attention_levels}) > 1:  # heads of one width: SD 2.x, SDXL
        head_channels = widths.pop()
    depth = cfg.get("transformer_layers_per_block", 1)
    if isinstance(depth, (list, tuple)):
        depths = tuple(int(d) if i in attention_levels else 0 for i, d in enumerate(depth))
        depth = depths if len(set(depths[i] for i in attention_levels)) > 1 else depths[attention_levels[0]]
    adm = 0
    if cfg.get("addition_embed_type") == "text_time":
        adm = int(cfg["projection_class_embeddings_input_dim"])
    return UNetConfig(
        in_channels=cfg.get("in_channels", family.unet.in_channels),
        out_channels=cfg.get("out_channels", family.unet.out_channels),
        model_channels=channels[0],
        channel_mult=tuple(c // channels[0] for c in channels),
        num_res_blocks=cfg.get("layers_per_block", family.unet.num_res_blocks),
        attention_levels=attention_levels,
        num_heads=int(heads[attention_levels[0]] if attention_levels else heads[0]),
        transformer_depth=depth,
        context_dim=cfg.get("cross_attention_dim", family.unet.context_dim),
        norm_groups=cfg.get("norm_num_groups", family.unet.norm_groups),
        num_head_channels=head_channels,
        linear_projection=bool(cfg.get("use_linear_projection", False)),
        adm_in_channels=adm,
    )


def read_folder_weights(folder: Path, kind: str, dtype: torch.dtype, check=None) -> dict[str, torch.Tensor]:
    """All tensors of one network's folder (kind: unet, vae or text_encoder), each converted to dtype as read;
    `check()`, if given, runs before each tensor (it raises to stop the load)."""
    files = _weight_files(folder, kind)
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        source: TensorFile = open_tensor_file(file)
        for key in list(source.keys()):
            if check is not None:
                check()
            tensors[key] = source.get(key).to(dtype)
    return tensors


def _weight_files(folder: Path, kind: str) -> list[Path]:
    for stem in _WEIGHT_NAMES[kind]:
        for suffix in (".safetensors", ".bin"):
            index = folder / f"{stem}{suffix}.index.json"
            if index.is_file():
                shards = sorted(set(_read_json(index)["weight_map"].values()))
                return [folder / shard for shard in shards]
            single = folder / f"{stem}{suffix}"
            if single.is_file():
                return [single]
    raise ModelLoadError(f"no weights in {folder} (expected e.g. {_WEIGHT_NAMES[kind][0]}.safetensors)")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None
