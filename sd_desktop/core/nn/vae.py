"""The KL-f8 autoencoder of Stable Diffusion 1.x (LDM's `AutoencoderKL`).

Attribute names mirror the LDM checkpoint keys with `first_stage_model.` removed, so a
checkpoint loads with a plain `load_state_dict`. The module holds parameters only (no
buffers), so it can be built on the meta device and loaded with `assign=True`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configs import VAEConfig
from .layers import plus, silu_of_fresh, upsampled_then
from ..interrupt import check_stop

GROUP_NORM_EPS = 1e-6


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=GROUP_NORM_EPS, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = _norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels, groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # LDM names the 1x1 projection of the skip path "nin_shortcut" (network-in-network).
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(silu_of_fresh(self.norm1(x)))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return plus(self.conv2, silu_of_fresh(self.norm2(h)), skip)


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels; q, k, v and the output are 1x1 convolutions."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)

        def as_tokens(t: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, 1 head, H*W, C]
            return t.reshape(b, c, h * w).transpose(1, 2).unsqueeze(1)

        q, k, v = (as_tokens(proj(normed)) for proj in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # LDM pads only right and bottom, so the 3x3 stride-2 windows start at pixel 0.
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsampled_then(self.conv, x)


class MidBlock(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, groups)
        self.attn_1 = AttnBlock(channels, groups)
        self.block_2 = ResnetBlock(channels, channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """One resolution: its ResnetBlocks, then an optional resampler (`downsample` or `upsample`)."""

    def __init__(self, in_channels: int, out_channels: int, blocks: int, groups: int):
        super().__init__()
        channels = [in_channels] + [out_channels] * blocks
        self.block = nn.ModuleList(ResnetBlock(a, b, groups) for a, b in zip(channels, channels[1:]))


class Encoder(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        widths = [config.base_channels * m for m in config.channel_mult]
        groups = config.norm_groups
        self.conv_in = nn.Conv2d(config.in_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        for i, (in_width, out_width) in enumerate(zip([widths[0]] + widths, widths)):
            level = Level(in_width, out_width, config.num_res_blocks, groups)
            if i != len(widths) - 1:
                level.downsample = Downsample(out_width)
            self.down.append(level)
        self.mid = MidBlock(widths[-1], groups)
        self.norm_out = _norm(widths[-1], groups)
        self.conv_out = nn.Conv2d(widths[-1], 2 * config.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(silu_of_fresh(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        widths = [config.base_channels * m for m in config.channel_mult]
        groups = config.norm_groups
        self.conv_in = nn.Conv2d(config.latent_channels, widths[-1], 3, padding=1)
        self.mid = MidBlock(widths[-1], groups)
        # Indexed by level like the encoder (up[0] = full resolution), but run from the last level back.
        levels = {}
        in_width = widths[-1]
        for i in reversed(range(len(widths))):
            level = Level(in_width, widths[i], config.num_res_blocks + 1, groups)
            if i != 0:
                level.upsample = Upsample(widths[i])
            levels[i] = level
            in_width = widths[i]
        self.up = nn.ModuleList(levels[i] for i in range(len(widths)))
        self.norm_out = _norm(widths[0], groups)
        self.conv_out = nn.Conv2d(widths[0], config.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            check_stop()  # a cancel lands between levels (core.interrupt)
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(silu_of_fresh(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    """Images in [-1, 1] <-> unscaled latents (multiply by the model's scale factor yourself)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        z = config.latent_channels
        self.quant_conv = nn.Conv2d(2 * z, 2 * z, 1)
        self.post_quant_conv = nn.Conv2d(z, z, 1)

    def _like_params(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.quant_conv.weight
        return x.to(device=weight.device, dtype=weight.dtype)

    def encode_moments(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """img [B, 3, H, W] in [-1, 1], H and W divisible by 8 -> (mean, logvar), each [B, z, H/8, W/8]."""
        self._check_size(img, self.config.downscale)
        moments = self.quant_conv(self.encoder(self._like_params(img)))
        mean, logvar = moments.chunk(2, dim=1)
        # LDM's DiagonalGaussianDistribution clamps the log-variance the same way.
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, img: torch.Tensor) -> torch.Tensor:
        """The mean latent (unscaled). Sampling from the posterior is left to the caller."""
        return self.encode_moments(img)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latent [B, z, h, w] -> image [B, 3, 8h, 8w], roughly in [-1, 1] (not clamped)."""
        return self.decoder(self.post_quant_conv(self._like_params(z)))

    @staticmethod
    def _check_size(img: torch.Tensor, factor: int) -> None:
        if img.ndim != 4 or img.shape[-2] % factor or img.shape[-1] % factor:
            raise ValueError(
                f"the VAE needs images shaped [B, C, H, W] with H and W divisible by {factor}; "
                f"got {tuple(img.shape)}"
            )
