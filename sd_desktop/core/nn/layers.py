"""Hooks through which a backend may fuse work into a layer, without the architecture knowing the backend, and
the way back from a wrapped network (compiled, or replaying CUDA graphs) to its own modules.

The architecture writes `plus(layer, x, residual)` where a residual add follows a layer. A layer that can
add inside its own computation (core.runtime.onednn's packed layers do it in the GEMM's epilogue) offers
`fused_plus(x, residual)`; any other layer runs as `residual + layer(x)`.
"""

from __future__ import annotations

import torch
from torch import nn


def plus(layer: nn.Module, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
    """layer(x) + residual (just layer(x) without a residual), fused where the layer offers it."""
    if residual is None:
        return layer(x)
    fused = getattr(layer, "fused_plus", None)
    if fused is not None:
        return fused(x, residual)
    return residual + layer(x)


def unwrapped(network: nn.Module) -> nn.Module:
    """The network itself under a wrapper that runs it (torch.compile's, core.runtime.cuda_graphs'): both keep it
    as `_orig_mod`. Its modules are the ones to adapt or to count."""
    return getattr(network, "_orig_mod", network)
