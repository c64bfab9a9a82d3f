"""Prompt -> conditioning, the way AUTOMATIC1111 (by default) or ComfyUI encode it.

A1111 ("Original", the default): the prompt is parsed for weights (core.text.attention); each piece is
tokenized; tokens fill 75-token chunks, each wrapped as start + 75 + end (77). When a chunk fills up in the
middle of a phrase and a comma came at most 20 tokens before, the tokens after that comma move to the next
chunk; BREAK ends a chunk. Each chunk is encoded on its own, its hidden states multiplied by the tokens'
weights, then rescaled so the chunk keeps its original mean. The chunks are concatenated.
  "No norm": the same without the rescaling. "Ignore": weights parsed and dropped. "None": brackets are text.
ComfyUI: ComfyUI's syntax; words are kept whole across chunks (unless 8 tokens or longer), and a weight w
moves a token's hidden state from the empty prompt's, z_empty + w * (z - z_empty).
`clip_skip` n takes the text encoder's n-th layer from the end (then its final LayerNorm), as A1111's
"Clip skip" and ComfyUI's CLIPSetLastLayer(-n) do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .attention import BREAK, BREAK_WEIGHT, parse_comfy_weights, parse_prompt_attention

if TYPE_CHECKING:
    import torch

    from .embeddings import EmbeddingSet

EMPHASIS_MODES = ("Original", "No norm", "Ignore", "None", "ComfyUI")  # A1111's names, then ComfyUI's way
DEFAULT_EMPHASIS = "Original"
CHUNK = 75  # tokens between the start and end tokens
COMMA_BACKTRACK = 20  # A1111's default "comma padding backtrack"
COMFY_LONG_WORD = 8  # ComfyUI splits a word across chunks only from this many tokens on
COMFY_EMBEDDING = "embedding:"  # ComfyUI's way to name an embedding in a prompt


@dataclass
class PromptChunk:
    tokens: list[int]  # 77 ids: start, 75, end
    weights: list[float]  # one per id (start and end: 1)


def check_emphasis(emphasis: str) -> str:
    if emphasis not in EMPHASIS_MODES:
        from ..errors import InvalidRequestError

        raise InvalidRequestError(f"emphasis {emphasis!r} is unknown; choose one of {', '.join(EMPHASIS_MODES)}")
    return emphasis


def _wrap(tokenizer, ids: list[int], weights: list[float]) -> PromptChunk:
    pad = CHUNK - len(ids)
    return PromptChunk([tokenizer.bos_id, *ids, *[tokenizer.eos_id] * pad, tokenizer.eos_id],
                       [1.0, *weights, *[1.0] * pad, 1.0])


def empty_chunk(tokenizer) -> PromptChunk:
    return _wrap(tokenizer, [], [])


def a1111_chunks(tokenizer, text: str, emphasis: str = DEFAULT_EMPHASIS,
                 embeddings: EmbeddingSet | None = None) -> tuple[list[PromptChunk], int]:
    """A1111's chunks of a prompt, and its token count (what A1111 shows as "N/75"). An embedding's trigger
    word becomes its vectors' pseudo ids, moved whole to the next chunk when they do not fit."""
    parsed = [(text, 1.0)] if emphasis == "None" else parse_prompt_attention(text)
    comma = tokenizer.vocab.get(",</w>")
    chunks: list[PromptChunk] = []
    ids: list[int] = []
    weights: list[float] = []
    count = 0
    last_comma = -1

    def close(is_last: bool = False) -> None:
        nonlocal ids, weights, count, last_comma
        count += len(ids) if is_last else CHUNK
        chunks.append(_wrap(tokenizer, ids, weights))
        ids, weights, last_comma = [], [], -1

    for piece, weight in parsed:
        if piece == BREAK and weight == BREAK_WEIGHT and emphasis != "None":
            close()
            continue
        weight = weight if emphasis != "Ignore" else 1.0
        tokens = tokenizer.encode(piece)
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token == comma:
                last_comma = len(ids)
            elif len(ids) == CHUNK and last_comma != -1 and len(ids) - last_comma <= COMMA_BACKTRACK:
                moved_ids, moved_weights = ids[last_comma + 1:], weights[last_comma + 1:]
                ids, weights = ids[:last_comma + 1], weights[:last_comma + 1]
                close()
                ids, weights = moved_ids, moved_weights
            if len(ids) == CHUNK:
                close()
            found = embeddings.match(tokens, position) if embeddings is not None else None
            if found is None:
                ids.append(token)
                weights.append(weight)
                position += 1
                continue
            first, vectors, taken = found
            if len(ids) + vectors > CHUNK:  # an embedding never straddles two chunks
                close()
            ids.extend(range(first, first + vectors))
            weights.extend([weight] * vectors)
            position += taken
    if ids or not chunks:
        close(is_last=True)
    return chunks, count


def comfy_chunks(tokenizer, text: str, embeddings: EmbeddingSet | None = None) -> tuple[list[PromptChunk], int]:
    """ComfyUI's chunks of a prompt (words split at spaces and kept whole), and its token count. A word
    `embedding:name` is that embedding's vectors, as ComfyUI writes it."""
    words: list[tuple[list[int], float]] = []
    for piece, weight in parse_comfy_weights(text):
        for word in piece.replace("\n", " ").split(" "):
            name = word[len(COMFY_EMBEDDING):].strip(",.;") if word.startswith(COMFY_EMBEDDING) else None
            if name is not None and embeddings is not None:
                name = next((n for n in (name, Path(name).stem) if n in embeddings.by_name), name)
                if name in embeddings.by_name:
                    first, count = embeddings.by_name[name]
                    words.append((list(range(first, first + count)), weight))
                    continue
            if word:
                words.append((tokenizer.encode(word), weight))
    chunks: list[PromptChunk] = []
    ids: list[int] = []
    weights: list[float] = []
    count = 0
    for tokens, weight in words:
        count += len(tokens)
        long_word = len(tokens) >= COMFY_LONG_WORD
        while tokens:
            if len(ids) + len(tokens) > CHUNK:
                if long_word:
                    room = CHUNK - len(ids)
                    ids, weights = ids + tokens[:room], weights + [weight] * room
                    tokens = tokens[room:]
                chunks.append(_wrap(tokenizer, ids, weights))
                ids, weights = [], []
            else:
                ids, weights = ids + tokens, weights + [weight] * len(tokens)
                tokens = []
    chunks.append(_wrap(tokenizer, ids, weights))
    return chunks, count


def prompt_chunks(tokenizer, text: str, emphasis: str = DEFAULT_EMPHASIS,
                  embeddings: EmbeddingSet | None = None) -> tuple[list[PromptChunk], int]:
    check_emphasis(emphasis)
    if emphasis == "ComfyUI":
        return comfy_chunks(tokenizer, text, embeddings)
    return a1111_chunks(tokenizer, text, emphasis, embeddings)


def count_tokens(tokenizer, text: str, emphasis: str = DEFAULT_EMPHASIS,
                 embeddings: EmbeddingSet | None = None) -> tuple[int, int]:
    """(tokens the prompt uses, what its chunks hold): "80/150" means two chunks. The window's counter; an
    embedding counts as its vectors (`embeddings.trigger_set` gives the set without them)."""
    chunks, count = prompt_chunks(tokenizer, text, emphasis, embeddings)
    return count, CHUNK * max(len(chunks), 1)


@dataclass
class Conditioning:
    """One prompt, encoded: the context the U-Net attends to [1, 77 * k, width] and, for SDXL, the pooled
    output of its first chunk [1, 1280] (A1111's and diffusers' choice), else None."""

    context: "torch.Tensor"
    pooled: "torch.Tensor | None" = None

    def zeros(self) -> Conditioning:
        """All zeros: SDXL's empty negative prompt (core.families: zero_empty_negative)."""
        import torch

        return Conditioning(torch.zeros_like(self.context), None if self.pooled is None else torch.zeros_like(self.pooled))


def encode_prompts(model, prompts: list[str], emphasis: str = DEFAULT_EMPHASIS, clip_skip: int = 1,
                   embeddings: EmbeddingSet | None = None) -> list[Conditioning]:
    """Each prompt -> its Conditioning; all contexts padded to the same k with empty chunks so they batch.
    With two text encoders (SDXL) the weights apply to each's hidden states on its own, as A1111 does."""
    import torch

    per_prompt = [prompt_chunks(model.tokenizer, p, emphasis, embeddings)[0] for p in prompts]
    longest = max(len(chunks) for chunks in per_prompt)
    empty = empty_chunk(model.tokenizer)
    rows = [chunk for chunks in per_prompt for chunk in chunks + [empty] * (longest - len(chunks))]
    weighted = any(w != 1.0 for row in rows for w in row.weights)
    if emphasis == "ComfyUI" and weighted:
        rows.append(empty)  # the empty prompt's hidden states, which ComfyUI's weights move away from
    ids = torch.tensor([row.tokens for row in rows], dtype=torch.long)
    extra = embeddings.vectors if embeddings is not None else None
    # one batched call: every chunk, every prompt
    parts, pooled = model.encode_towers(ids, clip_skip=clip_skip, extra=extra, pooled=model.config.text2 is not None)
    if weighted and emphasis in ("Original", "No norm", "ComfyUI"):
        count = len(prompts) * longest
        weights = torch.tensor([row.weights for row in rows[:count]], dtype=torch.float32).to(parts[0].device)
        parts = [apply_weights(hidden, weights, emphasis) for hidden in parts]
    hidden = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
    contexts = hidden[: len(prompts) * longest].reshape(len(prompts), longest * hidden.shape[1], hidden.shape[2])
    return [Conditioning(contexts[i:i + 1], None if pooled is None else pooled[i * longest:i * longest + 1])
            for i in range(len(prompts))]


def apply_weights(hidden, weights, emphasis: str):
    """hidden [rows (+1 empty for ComfyUI), 77, width], weights [rows, 77] -> weighted hidden states."""
    import torch

    rows = weights.shape[0]
    z = hidden[:rows].float()
    factors = weights[..., None]
    if emphasis == "ComfyUI":
        empty = hidden[rows:rows + 1].float()
        weighted = empty + factors * (z - empty)
        z = torch.where(factors != 1.0, weighted, z)
    else:
        original_mean = z.mean(dim=(1, 2), keepdim=True)
        z = z * factors
        if emphasis == "Original":
            z = z * (original_mean / z.mean(dim=(1, 2), keepdim=True))
    return z.to(hidden.dtype)
