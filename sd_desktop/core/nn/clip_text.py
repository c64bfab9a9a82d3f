"""The CLIP text transformer (the architecture of transformers' `CLIPTextModel` and, with a projection,
`CLIPTextModelWithProjection`), and SDXL's pair of them.

Attribute names mirror transformers' keys with `text_model.` removed (LDM checkpoints store
them under `cond_stage_model.transformer.text_model.`; OpenCLIP's towers, in SD 2.x and SDXL files, are
renamed on load by core.loading.convert_text). Parameters only, no buffers: the position ids are an arange
computed in forward(), so the module can be built on the meta device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configs import TextEncoderConfig


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    # OpenAI CLIP's sigmoid approximation of GELU; SD 1.x's text encoder was trained with it.
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"quick_gelu": quick_gelu, "gelu": F.gelu}


class _Embedding(nn.Embedding):
    def reset_parameters(self) -> None:
        # A meta tensor has no values to initialise, and normal_ on one imports torch._dynamo (2 s of a load).
        if not self.weight.is_meta:
            super().reset_parameters()


class Embeddings(nn.Module):
    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.token_embedding = _Embedding(config.vocab_size, config.width)
        self.position_embedding = _Embedding(config.max_positions, config.width)

    def forward(self, input_ids: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Ids from the vocabulary, and (with `extra`, [k, width]) ids vocab_size + i for extra[i]: a textual
        inversion's vectors in place of a word (core.text.embeddings)."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        vocab = self.token_embedding.num_embeddings
        if extra is None:
            tokens = self.token_embedding(input_ids)
        else:
            own = input_ids < vocab
            tokens = self.token_embedding(torch.where(own, input_ids, 0))
            added = extra.to(tokens)[(input_ids - vocab).clamp(min=0, max=len(extra) - 1)]
            tokens = torch.where(own[..., None], tokens, added)
        return tokens + self.position_embedding(positions)


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"text encoder width {width} is not divisible by its {heads} heads")
        self.heads = heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, width = x.shape

        def split_heads(t: torch.Tensor) -> torch.Tensor:  # [B, L, W] -> [B, heads, L, W/heads]
            return t.reshape(b, n, self.heads, width // self.heads).transpose(1, 2)

        q, k, v = (split_heads(proj(x)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        # Causal: a token sees only itself and the tokens before it, as CLIP was trained.
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, width))


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int, activation: str):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown text encoder activation {activation!r}; use one of {sorted(ACTIVATIONS)}")
        self.activation = ACTIVATIONS[activation]
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.self_attn = SelfAttention(config.width, config.heads)
        self.layer_norm2 = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.mlp = MLP(config.width, config.mlp_width, config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.layers))

    def forward(self, x: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """The hidden state after the first `layers` layers (all of them by default)."""
        for layer in self.layers[:layers]:
            x = layer(x)
        return x


class CLIPTextModel(nn.Module):
    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.final_layer_norm = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        if config.projection_dim:
            self.text_projection = nn.Linear(config.width, config.projection_dim, bias=False)

    def forward(self, input_ids: torch.Tensor, clip_skip: int = 1, extra: torch.Tensor | None = None,
                pool_at: torch.Tensor | None = None):
        """input_ids [B, L] (L <= max_positions) -> the hidden state `clip_skip` layers from the end (1: the
        last; never above the config's default_skip, 2 for SD 2.x and SDXL), through final_layer_norm unless
        the config says not [B, L, width]: A1111's "Clip skip", ComfyUI's CLIPSetLastLayer(-n).

        With `pool_at` ([B] positions, the first end token of each row): also the pooled output, the last
        layer's state there through final_layer_norm and text_projection, as (hidden, pooled [B, proj])."""
        if input_ids.ndim != 2 or not 1 <= input_ids.shape[1] <= self.config.max_positions:
            raise ValueError(
                f"the text encoder takes token ids shaped [batch, length] with 1 <= length <= "
                f"{self.config.max_positions}; got {tuple(input_ids.shape)}"
            )
        total = self.config.layers + self.config.cut_layers  # the original tower's depth
        if not 1 <= clip_skip <= total:
            raise ValueError(f"clip skip must be from 1 to {total} for this text encoder, not {clip_skip}")
        input_ids = input_ids.to(device=self.final_layer_norm.weight.device, dtype=torch.long)
        take = min(self.config.layers, total - (max(clip_skip, self.config.default_skip) - 1))
        x = self.embeddings(input_ids, extra)
        hidden = x
        for index, layer in enumerate(self.encoder.layers):
            if index == take:
                hidden = x
                if pool_at is None:
                    break
            x = layer(x)
        if take == self.config.layers:
            hidden = x
        if self.config.final_norm:
            hidden = self.final_layer_norm(hidden)
        if pool_at is None:
            return hidden
        pooled = self.final_layer_norm(x[torch.arange(x.shape[0], device=x.device), pool_at.to(x.device)])
        if self.config.projection_dim:
            pooled = self.text_projection(pooled)
        return hidden, pooled


class DualCLIPText(nn.Module):
    """SDXL's text encoders: CLIP ViT-L (`clip_l`) and OpenCLIP ViT-bigG with its projection (`clip_g`).
    Each is read on its own (core.text.prompts weighs each's hidden states, then concatenates them)."""

    def __init__(self, config_l: TextEncoderConfig, config_g: TextEncoderConfig):
        super().__init__()
        self.clip_l = CLIPTextModel(config_l)
        self.clip_g = CLIPTextModel(config_g)
