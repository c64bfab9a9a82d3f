"""TAESD files: the original `taesd_decoder` / `taesd_encoder` (.pth or .safetensors: keys "1.weight",
"3.conv.0.weight" ...) and diffusers' AutoencoderTiny (`decoder.layers.N...`, `encoder.layers.N...`, one file
for both). Which one a file holds is read from its keys and the first convolution's shape; .pth loads with
weights_only=True."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError, UnsupportedModelError
from ..nn.taesd import tiny_decoder, tiny_encoder
from .tensor_files import open_tensor_file

TAESD_SUFFIXES = (".safetensors", ".pth", ".pt")


@dataclass
class TinyAutoencoder:
    """A TAESD decoder and, when the file(s) had one, its encoder, both float32 on the CPU."""

    decoder: nn.Module | None
    encoder: nn.Module | None
    latent_channels: int
    name: str

    def to(self, device, dtype=torch.float32) -> "TinyAutoencoder":
        for part in (self.decoder, self.encoder):
            if part is not None:
                part.to(device=device, dtype=dtype)
        return self

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """U-Net-space latents -> pictures [B, 3, 8h, 8w] clamped to [0, 1]."""
        if self.decoder is None:
            raise ModelLoadError(f"{self.name} holds no TAESD decoder")
        weight = next(self.decoder.parameters())
        return self.decoder(latents.to(weight.device, weight.dtype)).clamp(0, 1)

    @torch.inference_mode()
    def encode(self, pictures: torch.Tensor) -> torch.Tensor:
        """Pictures in [0, 1] -> U-Net-space latents."""
        if self.encoder is None:
            raise ModelLoadError(f"{self.name} holds no TAESD encoder")
        weight = next(self.encoder.parameters())
        return self.encoder(pictures.to(weight.device, weight.dtype))


def _part(state: dict[str, torch.Tensor], build) -> nn.Module:
    first = next(key for key in sorted(state, key=lambda k: int(k.split(".")[0])) if key.endswith("weight"))
    module = build(latent_channels=_latent_channels(state, first), width=state[first].shape[0])
    try:
        module.load_state_dict({key: value.float() for key, value in state.items()})
    except RuntimeError as error:
        raise UnsupportedModelError(f"not a TAESD network of the known layout ({str(error).splitlines()[0]})") from None
    return module.eval().requires_grad_(False)


def _latent_channels(state: dict[str, torch.Tensor], first: str) -> int:
    shape = state[first].shape
    return shape[1] if shape[1] != 3 else state[max(state, key=lambda k: int(k.split(".")[0]))].shape[0]


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """(decoder keys, encoder keys) in the original numbering, from either layout."""
    decoder, encoder = {}, {}
    for key, value in state.items():
        if m := re.match(r"decoder\.layers\.(\d+)\.(.*)$", key):
            decoder[f"{int(m.group(1)) + 1}.{m.group(2)}"] = value  # (diffusers has no module for the clamp)
        elif m := re.match(r"encoder\.layers\.(\d+)\.(.*)$", key):
            encoder[f"{m.group(1)}.{m.group(2)}"] = value
        elif re.match(r"\d+\.", key):
            decoder[key] = value  # the original files hold one part: which one is told by its first layer
        else:
            raise UnsupportedModelError(f"unexpected key {key!r} for a TAESD file")
    if decoder and not encoder and "0.weight" in decoder and decoder["0.weight"].shape[1] == 3:
        decoder, encoder = {}, decoder  # an original taesd_encoder file
    return decoder, encoder


def load_taesd(*paths: str | Path, prefix: str = "taesd") -> TinyAutoencoder:
    """One diffusers AutoencoderTiny file, or an original decoder file and optionally its encoder file. `prefix`:
    the family's TAESD (taesd, taesdxl), named in the advice when a file cannot be read."""
    decoder = encoder = None
    channels = 4
    for path in paths:
        path = Path(path)
        try:
            tensors = open_tensor_file(path)
        except ModelLoadError as error:  # (its advice is for a model file: keep what it found, give TAESD's)
            raise ModelLoadError(f"the TAESD {path} cannot be read ({str(error).split(';')[0]}): use "
                                 f"{prefix}_decoder.safetensors from madebyollin/taesd instead, or remove it") from None
        state = {key: tensors.get(key) for key in tensors.keys()}
        try:
            dec, enc = split_state(state)
            if dec:
                decoder = _part(dec, tiny_decoder)
                channels = decoder[1].in_channels
            if enc:
                encoder = _part(enc, tiny_encoder)
                channels = encoder[-1].out_channels
        except UnsupportedModelError as error:
            raise UnsupportedModelError(f"{path.name}: {error}") from None
        except (StopIteration, ValueError, IndexError, KeyError) as error:
            raise ModelLoadError(f"{path.name}: not a TAESD file ({error!r})") from None
    return TinyAutoencoder(decoder, encoder, channels, Path(paths[0]).stem if paths else "taesd")


TAESD_FOLDERS = ("vae_approx", "VAE-taesd")  # ComfyUI's, A1111's


def find_taesd(models_folders=(), prefix: str = "taesd") -> list[Path]:
    """[decoder] or [decoder, encoder] files named `prefix`_decoder / _encoder (a family's `taesd`: taesd for SD
    1.x and 2.x, taesdxl for SDXL) in ComfyUI's
    models/vae_approx and A1111's models/VAE-taesd, in and beside each models folder, then in
    $SD_DESKTOP_DATA_DIR (or ~/.local/share/sd-desktop)/vae_approx; [] when there is none."""
    from .folders import named_folders, user_data_dir

    for folder in [*named_folders(models_folders, TAESD_FOLDERS), user_data_dir() / "vae_approx"]:
        decoder = next((folder / f"{prefix}_decoder{suffix}" for suffix in TAESD_SUFFIXES
                        if (folder / f"{prefix}_decoder{suffix}").is_file()), None)
        if decoder is not None:
            encoder = next((folder / f"{prefix}_encoder{suffix}" for suffix in TAESD_SUFFIXES
                            if (folder / f"{prefix}_encoder{suffix}").is_file()), None)
            return [decoder] + ([encoder] if encoder else [])
    return []