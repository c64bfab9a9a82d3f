"""The VAE as the pipeline uses it: tiled for large images, and guarded against float16 overflow.

Tiles overlap and are blended with linear ramps, so no seam shows where one tile ends. A tile's
GroupNorm sees only its own statistics, so tiles differ slightly in tone; the ramps spread that
difference over the overlap, where the eye does not find it. Small images are done in one piece:
that is exact, and the memory it needs is modest (see AUTO_TILE_LATENT_AREA).
"""

from __future__ import annotations

import copy

import torch

from ..nn.configs import VAEConfig

TILE_LATENTS = 64  # a decode tile: 64x64 latents, 512x512 pixels (the size SD 1.x's VAE was trained at)
OVERLAP_LATENTS = 16
# Above this many latents (a 1024x1024 image), decode and encode go in tiles: an untiled decode's
# activations grow with the area (SD's VAE keeps 128-512 channels at full resolution), tiled ones stay
# at the 512x512 cost (benchmarks/bench_vae_tiles.py, SD 1.5's VAE, bf16 CPU: whole 1.6 GB extra at
# 1024x1024 and 3.6 GB at 1536x1536, tiled 0.43 GB; tiles take ~1.3-1.7x as long, so only above 1024).
AUTO_TILE_LATENT_AREA = 128 * 128


def decode_latents(model, latents: torch.Tensor, tiled: bool | None = None) -> torch.Tensor:
    """Scaled latents [B, 4, h, w] -> float32 pixels [B, 3, 8h, 8w], roughly in [-1, 1].

    float16 can overflow inside SD's VAE (other apps' "black image"): non-finite pixels are decoded
    again in float32."""
    z = latents / model.scale_factor
    pixels = _decode(model.vae, z, tiled)
    if not torch.isfinite(pixels).all() and model.dtype == torch.float16:
        pixels = _decode(float32_vae(model), z.float(), tiled)
    return pixels.float()


def encode_pixels(model, pixels: torch.Tensor, tiled: bool | None = None) -> torch.Tensor:
    """[-1, 1] pixels [B, 3, H, W] -> scaled latents (the posterior's mean), float32."""
    latents = _encode(model.vae, pixels.to(model.device), tiled)
    if not torch.isfinite(latents).all() and model.dtype == torch.float16:
        latents = _encode(float32_vae(model), pixels.to(model.device).float(), tiled)
    return latents.float() * model.scale_factor


def float32_vae(model):
    """A float32 copy of the model's VAE, made once when first needed."""
    if model.float32_vae is None:
        model.float32_vae = copy.deepcopy(model.vae).float()
    return model.float32_vae


def should_tile(latent_height: int, latent_width: int, tiled: bool | None) -> bool:
    if tiled is not None:
        return tiled and max(latent_height, latent_width) > TILE_LATENTS
    return latent_height * latent_width > AUTO_TILE_LATENT_AREA


def _decode(vae, z: torch.Tensor, tiled: bool | None) -> torch.Tensor:
    if not should_tile(z.shape[-2], z.shape[-1], tiled):
        return vae.decode(z)
    return tiled_apply(vae.decode, z, TILE_LATENTS, OVERLAP_LATENTS, _factor(vae.config), out_channels=3)


def _encode(vae, pixels: torch.Tensor, tiled: bool | None) -> torch.Tensor:
    factor = _factor(vae.config)
    if not should_tile(pixels.shape[-2] // factor, pixels.shape[-1] // factor, tiled):
        return vae.encode(pixels)
    return tiled_apply(vae.encode, pixels, TILE_LATENTS * factor, OVERLAP_LATENTS * factor, 1 / factor,
                       out_channels=vae.config.latent_channels)


def _factor(config: VAEConfig) -> int:
    return config.downscale


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` covering 0..length, neighbours overlapping by at least `overlap`."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_ramp(size: int, start_overlap: int, end_overlap: int) -> torch.Tensor:
    """Weights along one axis of a tile: rising over the overlap with the tile before it, falling over
    the overlap with the one after it, 1 elsewhere (never 0, so each output pixel gets some weight)."""
    weights = torch.ones(size)
    if start_overlap:
        weights[:start_overlap] = (torch.arange(start_overlap) + 0.5) / start_overlap
    if end_overlap:
        falling = ((torch.arange(end_overlap) + 0.5) / end_overlap).flip(0)
        weights[size - end_overlap:] = torch.minimum(weights[size - end_overlap:], falling)
    return weights


def overlaps(starts: list[int], index: int, tile: int) -> tuple[int, int]:
    """(overlap with the previous tile, overlap with the next one), in input units."""
    before = starts[index - 1] + tile - starts[index] if index > 0 else 0
    after = starts[index] + tile - starts[index + 1] if index + 1 < len(starts) else 0
    return before, after


def tiled_apply(fn, x: torch.Tensor, tile: int, overlap: int, scale: float, out_channels: int) -> torch.Tensor:
    """fn over overlapping tiles of x [B, C, H, W], blended; fn maps a tile of side s to one of side s*scale."""
    height, width = x.shape[-2:]
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    out = torch.zeros((x.shape[0], out_channels, round(height * scale), round(width * scale)), device=x.device)
    weight_sum = torch.zeros(out.shape[-2:], device=x.device)
    for i, top in enumerate(rows):
        for j, left in enumerate(cols):
            piece = fn(x[..., top:top + tile, left:left + tile]).float()
            (up, down), (before, after) = overlaps(rows, i, tile), overlaps(cols, j, tile)
            weights = torch.outer(
                blend_ramp(piece.shape[-2], round(up * scale), round(down * scale)),
                blend_ramp(piece.shape[-1], round(before * scale), round(after * scale)),
            ).to(piece.device)
            o_top, o_left = round(top * scale), round(left * scale)
            out[..., o_top:o_top + piece.shape[-2], o_left:o_left + piece.shape[-1]] += piece * weights
            weight_sum[o_top:o_top + piece.shape[-2], o_left:o_left + piece.shape[-1]] += weights
    return out / weight_sum
