"""The U-Net's transformer pieces, as in LDM's `ldm/modules/attention.py` (SD 1.x).

Attribute names mirror the checkpoint keys (`attn1.to_q`, `ff.net.0.proj`, `proj_in` ...), so a
checkpoint loads with a plain `load_state_dict`. No buffers anywhere: the loader builds on "meta".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import plus


class CrossAttention(nn.Module):
    """Multi-head attention of `x` over `context` (over `x` itself when context is None)."""

    def __init__(self, query_dim: int, heads: int, head_dim: int, context_dim: int | None = None):
        super().__init__()
        inner = heads * head_dim
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim))  # LDM's to_out.1 is a parameterless dropout

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                residual: torch.Tensor | None = None) -> torch.Tensor:
        """Attention of x over context; `residual`, if given, is added to the result."""
        context = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        out = F.scaled_dot_product_attention(*(self._split_heads(t) for t in (q, k, v)))
        return plus(self.to_out[0], out.transpose(1, 2).flatten(2), residual)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """[B, N, heads*d] -> [B, heads, N, d]"""
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)


class GEGLU(nn.Module):
    """A linear layer to twice the width; one half, through GELU, gates the other."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner = dim * mult
        # net.1 is a dropout in LDM (p=0 in SD); Identity keeps net.2's index.
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Identity(), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return plus(self.net[2], self.net[0](x), residual)


class BasicTransformerBlock(nn.Module):
    """Pre-norm self-attention, cross-attention over the text, then a GEGLU feed-forward."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int):
        super().__init__()
        self.attn1 = CrossAttention(dim, heads, head_dim)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, heads, head_dim, context_dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.attn1(self.norm1(x), residual=x)
        x = self.attn2(self.norm2(x), context, residual=x)
        return self.ff(self.norm3(x), residual=x)


class SpatialTransformer(nn.Module):
    """Runs transformer blocks over an image's pixels as tokens; a residual around the whole.

    SD 1.x projects in and out with 1x1 convolutions; SD 2.x and SDXL with linear layers over the tokens
    (`linear`), the same map on the other side of the reshape.
    """

    def __init__(self, channels: int, heads: int, context_dim: int, depth: int = 1, norm_groups: int = 32,
                 linear: bool = False):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} attention heads")
        self.linear = linear
        self.norm = nn.GroupNorm(norm_groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels) if linear else nn.Conv2d(channels, channels, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(channels, heads, channels // heads, context_dim) for _ in range(depth)
        )
        self.proj_out = nn.Linear(channels, channels) if linear else nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj_out.weight)  # LDM starts each transformer as the identity
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        if self.linear:
            tokens = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))  # [B, h*w, C]
        else:
            tokens = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)
        for block in self.transformer_blocks:
            tokens = block(tokens, context)
        if self.linear:
            return plus(self.proj_out, tokens, x.flatten(2).transpose(1, 2)).transpose(1, 2).unflatten(2, (h, w))
        return plus(self.proj_out, tokens.transpose(1, 2).unflatten(2, (h, w)), x)
