"""Reading a diffusers model folder (unet/, vae/, text_encoder/, tokenizer/) into our layout."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .configs import TextEncoderConfig, UNetConfig, VAEConfig
from .detection import SUPPORTED
from .errors import ModelLoadError, UnsupportedModelError
from .tensor_files import TensorFile, open_tensor_file

_WEIGHT_NAMES = {
    "unet": ("diffusion_pytorch_model", "diffusion_pytorch_model.fp16"),
    "vae": ("diffusion_pytorch_model", "diffusion_pytorch_model.fp16"),
    "text_encoder": ("model", "model.fp16", "pytorch_model", "pytorch_model.fp16"),
}
_SUBFOLDERS = ("unet", "vae", "text_encoder")


@dataclass
class DiffusersFolder:
    root: Path
    unet_config: UNetConfig
    vae_config: VAEConfig
    text_config: TextEncoderConfig
    scale_factor: float
    native_size: int

    def tokenizer_files(self) -> tuple[Path, Path] | None:
        vocab, merges = self.root / "tokenizer" / "vocab.json", self.root / "tokenizer" / "merges.txt"
        return (vocab, merges) if vocab.is_file() and merges.is_file() else None


def is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "model_index.json").is_file() or (path / "unet").is_dir())


def open_diffusers_folder(root: Path) -> DiffusersFolder:
    name = root.name
    if (root / "text_encoder_2").is_dir() or (root / "unet" / "config.json").is_file() and _read_json(
        root / "unet" / "config.json"
    ).get("addition_embed_type"):
        raise UnsupportedModelError(f"{name}: this looks like an SDXL model folder; {SUPPORTED}")
    missing = [sub for sub in _SUBFOLDERS if not (root / sub / "config.json").is_file()]
    if missing:
        raise ModelLoadError(
            f"{name} is not a complete diffusers model folder: missing {', '.join(f'{m}/config.json' for m in missing)} "
            "(expected unet/, vae/ and text_encoder/, each with config.json and weights)"
        )
    unet = _read_json(root / "unet" / "config.json")
    vae = _read_json(root / "vae" / "config.json")
    text = _read_json(root / "text_encoder" / "config.json")
    return DiffusersFolder(
        root=root,
        unet_config=unet_config_from_json(unet, name),
        vae_config=vae_config_from_json(vae),
        text_config=TextEncoderConfig(
            vocab_size=text.get("vocab_size", 49408),
            max_positions=text.get("max_position_embeddings", 77),
            width=text.get("hidden_size", 768),
            layers=text.get("num_hidden_layers", 12),
            heads=text.get("num_attention_heads", 12),
            mlp_width=text.get("intermediate_size", 3072),
            activation=text.get("hidden_act", "quick_gelu"),
            layer_norm_eps=text.get("layer_norm_eps", 1e-5),
        ),
        scale_factor=float(vae.get("scaling_factor", 0.18215)),
        native_size=int(unet.get("sample_size", 64)) * 2 ** (len(vae["block_out_channels"]) - 1),
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


def unet_config_from_json(cfg: dict, name: str) -> UNetConfig:
    cross = cfg.get("cross_attention_dim", 768)
    heads = cfg.get("num_attention_heads") or cfg.get("attention_head_dim", 8)
    if cross == 1024 or isinstance(heads, (list, tuple)) and len(set(heads)) > 1:
        raise UnsupportedModelError(f"{name}: this looks like a Stable Diffusion 2.x model folder; {SUPPORTED}")
    if isinstance(heads, (list, tuple)):
        heads = heads[0]
    channels = cfg["block_out_channels"]
    depth = cfg.get("transformer_layers_per_block", 1)
    if isinstance(depth, (list, tuple)):
        depth = depth[0]
    return UNetConfig(
        in_channels=cfg.get("in_channels", 4),
        out_channels=cfg.get("out_channels", 4),
        model_channels=channels[0],
        channel_mult=tuple(c // channels[0] for c in channels),
        num_res_blocks=cfg.get("layers_per_block", 2),
        attention_levels=tuple(i for i, t in enumerate(cfg["down_block_types"]) if "CrossAttn" in t),
        num_heads=int(heads),
        transformer_depth=int(depth),
        context_dim=cross,
        norm_groups=cfg.get("norm_num_groups", 32),
    )


def read_folder_weights(folder: Path, kind: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """All tensors of one network's folder (kind: unet, vae or text_encoder), each converted to dtype as read."""
    files = _weight_files(folder, kind)
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        source: TensorFile = open_tensor_file(file)
        for key in list(source.keys()):
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
