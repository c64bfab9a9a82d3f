"""Per-step previews: latents -> a small RGB picture through a linear projection, without the VAE.

The projection is the model's: its file's own fit if it carries one, else its family's latent format
(core.families).
"""

from __future__ import annotations

import numpy as np
import torch


def latent_rgb_projection(rows, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`channels` rows of RGB weights, optionally one more row with the bias -> (weights [C, 3], bias [3])."""
    rows = [list(row) for row in rows]
    weights = torch.tensor(rows[:channels], dtype=torch.float32)
    bias = torch.tensor(rows[channels] if len(rows) > channels else [0.0, 0.0, 0.0], dtype=torch.float32)
    return weights, bias


def latent_preview(latent: torch.Tensor, projection: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    """One scaled latent [C, h, w] -> uint8 RGB array [h, w, 3] (1/8 of the image's size)."""
    weights, bias = projection
    rgb = torch.einsum("chw,cr->hwr", latent.detach().float().cpu(), weights) + bias
    return ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()
