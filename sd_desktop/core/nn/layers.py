"""Hooks through which a backend may fuse work into a layer, without the architecture knowing the backend, and
the way back from a wrapped network (compiled, or replaying CUDA graphs) to its own modules.

The architecture writes `plus(layer, x, residual)` where a residual add follows a layer. A layer that can
add inside its own computation (core.runtime.onednn's packed layers do it in the GEMM's epilogue) offers
`fused_plus(x, residual)`; any other layer runs as `residual + layer(x)`. Likewise `upsampled_then(layer, x)`,
a convolution of x upsampled 2x by nearest neighbours: a layer that offers `after_nearest_2x(x)` computes it
without the upsampled copy (core.runtime.onednn's packed convolution, as one transposed convolution).
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


def upsampled_then(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """layer(x upsampled 2x by nearest neighbours), computed by the layer where it offers `after_nearest_2x`."""
    by_layer = getattr(layer, "after_nearest_2x", None)
    if by_layer is not None:
        return by_layer(x)
    return layer(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


def silu_of_fresh(x: torch.Tensor) -> torch.Tensor:
    """SiLU of a tensor that nothing else reads (a GroupNorm's output), written over it where no gradient is wanted.
    The VAE decoder's activations at 512² (134 MB at its top level, fp32) are above glibc's largest mmap threshold,
    so each new one is a fresh mapping whose pages the kernel zero-fills. A full-size VAE decode at 512² took 0.94×
    and 0.99× the time in two runs (fp32, this 2-core CPU; benchmarks/bench_routes.py --route silu), identical
    output. In the U-Net, whose activations are smaller, it made no difference (1.02×), so the U-Net keeps nn.SiLU."""
    return torch.nn.functional.silu(x, inplace=not torch.is_grad_enabled())


def unwrapped(network: nn.Module) -> nn.Module:
    """The network itself under a wrapper that runs it (torch.compile's, core.runtime.cuda_graphs'): both keep it
    as `_orig_mod`. Its modules are the ones to adapt or to count."""
    return getattr(network, "_orig_mod", network)
