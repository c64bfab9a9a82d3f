"""Prompt -> conditioning. Long prompts are split into 75-token chunks, each encoded with its own start
and end tokens, and the encodings concatenated along the sequence axis (the A1111/ComfyUI convention)."""

from __future__ import annotations

import torch


def prompt_chunks(model, text: str) -> list[list[int]]:
    """77-id rows (start + up to 75 tokens + end, end-padded), at least one."""
    tokenizer = model.tokenizer
    return [tokenizer.pad_chunk(chunk) for chunk in tokenizer.encode_chunks(text, 75)]


def encode_prompts(model, prompts: list[str]) -> list[torch.Tensor]:
    """Each prompt -> [1, 77 * k, width]; all padded to the same k with empty chunks so they batch."""
    rows = [prompt_chunks(model, p) for p in prompts]
    longest = max(len(r) for r in rows)
    empty = model.tokenizer.pad_chunk([])
    rows = [r + [empty] * (longest - len(r)) for r in rows]
    ids = torch.tensor([chunk for r in rows for chunk in r], dtype=torch.long)
    hidden = model.encode_text(ids)  # one batched call for every chunk of every prompt
    return list(hidden.reshape(len(prompts), longest * hidden.shape[1], hidden.shape[2]).split(1))
