"""The denoising U-Net of SD 1.x, SD 2.x and SDXL, as in LDM's and SGM's `openaimodel.UNetModel`.

SD 2.x and SDXL differ only in configuration (core.nn.configs.UNetConfig): heads 64 wide, linear projections in
the transformers, per-level transformer depth (SDXL: none at the top level, 2 and 10 below), and for SDXL a
vector `y` (pooled text and size embeddings) through `label_emb` into the time embedding.

Attribute names equal the original checkpoint's keys without `model.diffusion_model.`
(`input_blocks.1.0.in_layers.0.weight`, `output_blocks.2.1.conv.bias`, `out.2.weight` ...), so loading
is a plain `load_state_dict`. Layers without parameters (SiLU, dropout) still take their index in each
`nn.Sequential`, so the numbers line up. The module holds no buffers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .configs import UNetConfig
from .attention import SpatialTransformer
from .layers import plus, upsampled_then
from ..interrupt import check_stop


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features [cos | sin] of (possibly fractional) timesteps, in float32: [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=timesteps.device, dtype=torch.float32) / half)
    args = timesteps.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


class ResBlock(nn.Module):
    """Two 3x3 convolutions with the time embedding added between them; 1x1 skip when width changes."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int, norm_groups: int = 32):
        super().__init__()
        self.in_layers = nn.Sequential(
            nn.GroupNorm(norm_groups, channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(norm_groups, out_channels),
            nn.SiLU(),
            nn.Identity(),  # dropout in LDM (p=0 in SD)
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        _zero(self.out_layers[3])  # LDM starts each block as the identity
        self.skip_connection = nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(emb)[:, :, None, None]
        *norm_act, conv = self.out_layers
        for layer in norm_act:
            h = layer(h)
        return plus(conv, h, self.skip_connection(x))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest-neighbour 2x (or to `size`, for odd sizes on the way down), then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        if size is None or tuple(size) == (x.shape[-2] * 2, x.shape[-1] * 2):
            return upsampled_then(self.conv, x)
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


class TimestepEmbedSequential(nn.Sequential):
    """One U-Net block: hands each layer what it needs (time embedding, text context, target size)."""

    def forward(self, x, emb, context, upsample_size=None):  # noqa: D102 - signature differs from Sequential
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif isinstance(layer, Upsample):
                x = layer(x, upsample_size)
            else:
                x = layer(x)
        return x


class UNetModel(nn.Module):
    """eps = UNetModel(cfg)(x [B, in, h, w], timesteps [B], context [B, L, context_dim][, y [B, adm]]).

    h and w must be multiples of 2 ** (levels - 1); L may be any length (77 * k for long prompts).
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        mc, groups = config.model_channels, config.norm_groups
        emb_dim = 4 * mc

        def transformer(ch: int, depth: int) -> SpatialTransformer:
            return SpatialTransformer(ch, config.heads_at(ch), config.context_dim, depth, groups,
                                      linear=config.linear_projection)

        self.time_embed = nn.Sequential(nn.Linear(mc, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if config.adm_in_channels:
            self.label_emb = nn.Sequential(nn.Sequential(
                nn.Linear(config.adm_in_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)))

        # Down: per level, num_res_blocks x (ResBlock [+ transformer]), then a Downsample except at the bottom.
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(nn.Conv2d(config.in_channels, mc, 3, padding=1))])
        skip_channels = [mc]
        ch = mc
        levels = len(config.channel_mult)
        for level, mult in enumerate(config.channel_mult):
            for _ in range(config.num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, emb_dim, mult * mc, groups)]
                ch = mult * mc
                if config.depth_at(level):
                    layers.append(transformer(ch, config.depth_at(level)))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_channels.append(ch)
            if level != levels - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch)))
                skip_channels.append(ch)

        self.middle_block = TimestepEmbedSequential(
            ResBlock(ch, emb_dim, ch, groups), transformer(ch, config.mid_depth), ResBlock(ch, emb_dim, ch, groups)
        )

        # Up: per level (bottom first), num_res_blocks + 1 blocks, each eating one skip connection.
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for i in range(config.num_res_blocks + 1):
                layers = [ResBlock(ch + skip_channels.pop(), emb_dim, mult * mc, groups)]
                ch = mult * mc
                if config.depth_at(level):
                    layers.append(transformer(ch, config.depth_at(level)))
                if level and i == config.num_res_blocks:
                    layers.append(Upsample(ch))
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(
            nn.GroupNorm(groups, ch), nn.SiLU(), nn.Conv2d(mc, config.out_channels, 3, padding=1)
        )
        _zero(self.out[2])

    def forward(self, x: torch.Tensor, timesteps, context: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """`y` [B, adm_in_channels]: SDXL's vector conditioning (core.pipelines.conditioning); None otherwise."""
        weight = self.time_embed[0].weight
        dtype, device = weight.dtype, weight.device
        x = x.to(device=device, dtype=dtype)
        context = context.to(device=device, dtype=dtype)
        timesteps = torch.as_tensor(timesteps, device=device).reshape(-1)
        if timesteps.numel() == 1:
            timesteps = timesteps.expand(x.shape[0])

        emb = self.time_embed(timestep_embedding(timesteps, self.config.model_channels).to(dtype))
        if self.config.adm_in_channels:
            if y is None:
                raise ValueError("this U-Net needs its vector conditioning y (pooled text and size embeddings)")
            emb = emb + self.label_emb(y.to(device=device, dtype=dtype))

        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb, context)
            skips.append(h)
            check_stop()  # a cancel lands between blocks, not only between steps (core.interrupt)
        h = self.middle_block(h, emb, context)
        for block in self.output_blocks:
            check_stop()
            h = torch.cat([h, skips.pop()], dim=1)
            # An upsample must land on the next skip's size (which is odd-safe, unlike a plain 2x).
            h = block(h, emb, context, skips[-1].shape[-2:] if skips else None)
        return self.out(h)


def _zero(module: nn.Module) -> None:
    for p in module.parameters():
        nn.init.zeros_(p)
