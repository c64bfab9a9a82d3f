"""TAESD, the tiny autoencoder (Ollin Boer Bohan's): a ~1.2 M-parameter decoder (and encoder) that maps U-Net-space
latents straight to pictures in [0, 1] (and back), at a small fraction of the VAE's cost: for previews, and for
a fast final decode. Laid out as the original `taesd_decoder.pth` / `taesd_encoder.pth` files are (a Sequential,
the decoder's first module a clamp), so those load as they are; diffusers' AutoencoderTiny names are mapped on
load (core.loading.taesd)."""

from __future__ import annotations

import torch
from torch import nn


def conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """Soft clamp to [-3, 3]: tanh(x / 3) * 3."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Three 3x3 convolutions with ReLUs between, plus a skip (1x1 when the width changes), then a ReLU."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.conv(x) + self.skip(x))


def tiny_decoder(latent_channels: int = 4, width: int = 64) -> nn.Sequential:
    """Latents [B, C, h, w] (as the U-Net sees them) -> pictures [B, 3, 8h, 8w] in [0, 1] (about)."""
    c = width
    return nn.Sequential(
        Clamp(), conv(latent_channels, c), nn.ReLU(),
        Block(c, c), Block(c, c), Block(c, c), nn.Upsample(scale_factor=2), conv(c, c, bias=False),
        Block(c, c), Block(c, c), Block(c, c), nn.Upsample(scale_factor=2), conv(c, c, bias=False),
        Block(c, c), Block(c, c), Block(c, c), nn.Upsample(scale_factor=2), conv(c, c, bias=False),
        Block(c, c), conv(c, 3),
    )


def tiny_encoder(latent_channels: int = 4, width: int = 64) -> nn.Sequential:
    """Pictures [B, 3, H, W] in [0, 1] -> latents [B, C, H/8, W/8] as the U-Net sees them."""
    c = width
    return nn.Sequential(
        conv(3, c), Block(c, c),
        conv(c, c, stride=2, bias=False), Block(c, c), Block(c, c), Block(c, c),
        conv(c, c, stride=2, bias=False), Block(c, c), Block(c, c), Block(c, c),
        conv(c, c, stride=2, bias=False), Block(c, c), Block(c, c), Block(c, c),
        conv(c, latent_channels),
    )
