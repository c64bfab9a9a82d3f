"""Textual-inversion embeddings: learned vectors that stand in for a word of the prompt.

Files as people have them (each read with torch's weights_only=True or safetensors):
- A1111 `.pt`: {"string_to_param": {"*": [n, width]}, "name": ..., ...};
- kohya `.safetensors`: {"emb_params": [n, width]};
- diffusers `learned_embeds.bin` / `.safetensors`: {token: [width] or [n, width]};
- SDXL: {"clip_l": [n, 768], "clip_g": [n, 1280]}: one set of vectors per text encoder (refused on an SD 1.x
  or 2.x model, as a one-encoder embedding is on SDXL).

A1111 triggers an embedding by its file's stem written in a prompt; its n vectors take the place of the
word's tokens, with the word's weight, and never straddle a 75-token chunk (core.text.prompts). ComfyUI
writes `embedding:name`. `EmbeddingSet` holds the request's embeddings for one encoding: the vectors, and the
token sequences that trigger them; vector k is given to the text encoder as token id vocab_size + k.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import ModelLoadError

if TYPE_CHECKING:  # torch is imported where vectors are read: the window's token counter uses trigger_set
    import torch

MAX_VECTORS = 75  # one chunk


@dataclass
class Embedding:
    name: str
    vectors: torch.Tensor  # [n, width] float32 (SDXL: CLIP-L's)
    sdxl: bool = False
    vectors_g: torch.Tensor | None = None  # SDXL: OpenCLIP bigG's [n, 1280]


def read_embedding(path: str | Path) -> Embedding:
    """An embedding file in any of the forms above; ModelLoadError (one line) otherwise."""
    from ..loading.tensor_files import open_tensor_file

    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"embedding file not found: {path}")
    if path.suffix.lower() == ".pt":
        vectors = _a1111_pt(path)
        if vectors is not None:
            return Embedding(path.stem, _rows(vectors, path))
    source = open_tensor_file(path)
    keys = list(source.keys())
    if "clip_l" in keys and "clip_g" in keys:
        clip_l, clip_g = _rows(source.get("clip_l"), path), _rows(source.get("clip_g"), path)
        if len(clip_l) != len(clip_g):
            raise ModelLoadError(f"{path.name} has {len(clip_l)} clip_l vectors but {len(clip_g)} clip_g ones; "
                                 "the file is damaged")
        return Embedding(path.stem, clip_l, sdxl=True, vectors_g=clip_g)
    if "emb_params" in keys:
        return Embedding(path.stem, _rows(source.get("emb_params"), path))
    if "string_to_param.*" in keys:
        return Embedding(path.stem, _rows(source.get("string_to_param.*"), path))
    if len(keys) == 1:  # diffusers: {token: vector(s)}
        return Embedding(path.stem, _rows(source.get(keys[0]), path))
    raise ModelLoadError(f"{path.name} is not a textual-inversion embedding (expected string_to_param, emb_params, "
                         "one token's vectors, or clip_l/clip_g)")


def _a1111_pt(path: Path) -> torch.Tensor | None:
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a pickle that is more than tensors: one line, never run
        raise ModelLoadError(f"{path.name} cannot be read as an embedding ({str(error).splitlines()[0]}); "
                             "pickles are only read as plain tensors") from None
    if isinstance(data, dict) and isinstance(data.get("string_to_param"), dict):
        params = list(data["string_to_param"].values())
        return params[0] if params else None
    if isinstance(data, dict) and "emb_params" in data:
        return data["emb_params"]
    if isinstance(data, dict) and len(data) == 1 and isinstance(next(iter(data.values())), torch.Tensor):
        return next(iter(data.values()))
    return None


def _rows(tensor, path: Path) -> torch.Tensor:
    import torch

    if not isinstance(tensor, torch.Tensor) or tensor.dim() not in (1, 2) or tensor.numel() == 0:
        raise ModelLoadError(f"{path.name} is not a textual-inversion embedding (its vectors are not [n, width])")
    rows = tensor.detach().float().reshape(-1, tensor.shape[-1])
    if len(rows) > MAX_VECTORS:
        raise ModelLoadError(f"{path.name} has {len(rows)} vectors; at most {MAX_VECTORS} fit in a prompt chunk")
    return rows


@dataclass
class EmbeddingSet:
    """The embeddings of one encoding: vectors [total, width], and per first token the (token sequence,
    first pseudo id, vector count) triggers, longest first."""

    vocab_size: int
    vectors: torch.Tensor | dict[str, torch.Tensor] | None = None  # SDXL: {"clip_l": .., "clip_g": ..}
    triggers: dict[int, list[tuple[tuple[int, ...], int, int]]] = field(default_factory=dict)
    by_name: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (first pseudo id, count)

    def match(self, tokens: Sequence[int], at: int) -> tuple[int, int, int] | None:
        """(first pseudo id, vector count, tokens the trigger takes) of an embedding at tokens[at], or None."""
        for trigger, first, count in self.triggers.get(tokens[at], ()):
            if tuple(tokens[at:at + len(trigger)]) == trigger:
                return first, count, len(trigger)
        return None


def trigger_set(tokenizer, vocab_size: int, counts: Sequence[tuple[str, int]]) -> EmbeddingSet:
    """The triggers of (trigger word, vector count) pairs, without vectors: where prompts' chunks break
    (the window's token counter counts an embedding as its vectors, as A1111's does). No torch."""
    found = EmbeddingSet(vocab_size)
    first = vocab_size
    for word, count in counts:
        trigger = tuple(tokenizer.encode(word))
        if trigger:
            found.triggers.setdefault(trigger[0], []).append((trigger, first, count))
        found.by_name[word] = (first, count)
        first += count
    for options in found.triggers.values():
        options.sort(key=lambda item: -len(item[0]))
    return found


def embedding_set(tokenizer, widths: dict[str, int], vocab_size: int, embeddings: Sequence[tuple[str, Embedding]],
                  family_label: str = "this model") -> EmbeddingSet:
    """The set for (trigger word, embedding) pairs, for text encoders {tower name: width} ({"clip": 768} for SD
    1.x; {"clip_l": 768, "clip_g": 1280} for SDXL); an embedding of another model kind is refused by name."""
    import torch

    sdxl = "clip_g" in widths
    for word, embedding in embeddings:
        if embedding.sdxl != sdxl:
            made = "an SDXL embedding" if embedding.sdxl else "an embedding for one text encoder (SD 1.x or 2.x)"
            raise ModelLoadError(f"{embedding.name} is {made}; {family_label} takes "
                                 f"{'SDXL ones (clip_l and clip_g)' if sdxl else 'ones of its text encoder'}")
        width = widths["clip_l" if sdxl else "clip"]
        if sdxl and embedding.vectors_g.shape[1] != widths["clip_g"]:
            raise ModelLoadError(f"{embedding.name}'s clip_g vectors are {embedding.vectors_g.shape[1]} wide; this "
                                 f"model's second text encoder takes {widths['clip_g']}")
        if embedding.vectors.shape[1] != width:
            other = {1024: " (SD 2.x)", 1280: " (SDXL)", 768: " (SD 1.x)"}.get(embedding.vectors.shape[1], "")
            raise ModelLoadError(f"{embedding.name} holds vectors {embedding.vectors.shape[1]} wide{other}; this "
                                 f"model's text encoder takes {width}")
    found = trigger_set(tokenizer, vocab_size, [(word, len(embedding.vectors)) for word, embedding in embeddings])
    if embeddings and sdxl:
        found.vectors = {"clip_l": torch.cat([e.vectors for _, e in embeddings]),
                         "clip_g": torch.cat([e.vectors_g for _, e in embeddings])}
    elif embeddings:
        found.vectors = torch.cat([embedding.vectors for _, embedding in embeddings])
    return found


def embeddings_for(model, pairs: Sequence[tuple[str, str]]) -> EmbeddingSet | None:
    """The EmbeddingSet of a request's (trigger word, file) pairs for this model; None without any. Files
    already read for this model are kept (by path and modification time)."""
    if not pairs:
        return None
    cache = getattr(model, "embedding_cache", None)
    if cache is None:
        cache = model.embedding_cache = {}
    loaded = []
    for word, path in pairs:
        resolved = Path(path).expanduser()
        try:
            stat = resolved.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            raise ModelLoadError(f"embedding file not found: {resolved}") from None
        cached = cache.get(str(resolved))
        if cached is None or cached[0] != stamp:
            cached = cache[str(resolved)] = (stamp, read_embedding(resolved))
        loaded.append((word, cached[1]))
    widths = {name: tower.config.width for name, tower in model.text_towers()}
    return embedding_set(model.tokenizer, widths, model.config.text.vocab_size, loaded, model.family.label)
