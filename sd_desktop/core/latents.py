"""Latents <-> pictures without the VAE: the cheap linear projection behind per-step previews."""

from __future__ import annotations

import numpy as np
import torch

# Least-squares fit of SD 1.x's VAE decode, per latent channel -> RGB in [-1, 1], for latents as the
# U-Net sees them (scaled by 0.18215). These published factors are the ones ComfyUI and A1111 use.
SD1_LATENT_RGB = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]


def latent_rgb_projection(rows: list[list[float]] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """4x3 weights (optionally a 5th row: the bias) -> (weights [4, 3], bias [3])."""
    rows = rows or SD1_LATENT_RGB
    weights = torch.tensor(rows[:4], dtype=torch.float32)
    bias = torch.tensor(rows[4] if len(rows) > 4 else [0.0, 0.0, 0.0], dtype=torch.float32)
    return weights, bias


def latent_preview(latent: torch.Tensor, projection: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    """One scaled latent [4, h, w] -> uint8 RGB array [h, w, 3] (1/8 of the image's size)."""
    weights, bias = projection
    rgb = torch.einsum("chw,cr->hwr", latent.detach().float().cpu(), weights) + bias
    return ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()
