"""What the LoRA and embedding folders hold, for the window's list: each file's name, size, the model family
it was made for and its trigger words. A LoRA is known from its safetensors header only (no tensor is read);
an embedding (kilobytes) is read whole, for its width and vector count (the token counter counts those).
The window runs `scan_addons` on a pool thread: never the GUI thread, as reading an embedding uses torch."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .tags import EMBEDDING_SUFFIXES, LORA_SUFFIXES, files_in

FAMILIES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
MAX_HEADER = 64 * 1024 * 1024
MAX_EMBEDDING = 16 * 1024 * 1024  # embeddings are kilobytes; a bigger file is not read whole to find out


@dataclass(frozen=True)
class AddonInfo:
    kind: str  # "lora" or "embedding"
    name: str  # what a prompt calls it: <lora:name:1>, or the embedding's trigger word
    path: str
    size: int
    family: str | None = None  # "SD 1.x", "SD 2.x", "SDXL", or None when the file does not say
    triggers: tuple[str, ...] = field(default_factory=tuple)  # the most frequent training tags
    vectors: int | None = None  # an embedding's vector count (the tokens it takes in a prompt)


def read_header(path: Path) -> dict:
    """A safetensors file's JSON header (names, shapes, __metadata__); {} for anything else."""
    if path.suffix.lower() != ".safetensors":
        return {}
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > MAX_HEADER:
                return {}
            header = json.loads(f.read(length))
    except (OSError, ValueError, struct.error):
        return {}
    return header if isinstance(header, dict) else {}


def lora_family(header: dict) -> str | None:
    """The family a LoRA was made for: kohya's metadata, else its layer names and widths."""
    metadata = header.get("__metadata__") or {}
    version = str(metadata.get("ss_base_model_version", ""))
    if version.startswith("sdxl") or any(key.startswith(("lora_te1_", "lora_te2_")) for key in header):
        return FAMILIES["sdxl"]
    if str(metadata.get("ss_v2", "")) == "True" or version.startswith("sd_v2"):
        return FAMILIES["sd2"]
    if version.startswith("sd_v1"):
        return FAMILIES["sd1"]
    widths = {entry.get("shape", [0, 0])[-1] for key, entry in header.items()
              if key.startswith("lora_te_") and key.endswith("lora_down.weight") and isinstance(entry, dict)}
    return {768: FAMILIES["sd1"], 1024: FAMILIES["sd2"]}.get(max(widths)) if widths else None


def trigger_words(metadata: dict, limit: int = 12) -> tuple[str, ...]:
    """The most frequent training tags of kohya's ss_tag_frequency, as A1111's LoRA card shows them."""
    try:
        frequency = json.loads(metadata.get("ss_tag_frequency") or "{}")
    except (TypeError, ValueError):
        return ()
    counts: dict[str, int] = {}
    for tags in frequency.values() if isinstance(frequency, dict) else []:
        for tag, count in tags.items() if isinstance(tags, dict) else []:
            if isinstance(count, (int, float)) and str(tag).strip():
                counts[str(tag).strip()] = counts.get(str(tag).strip(), 0) + int(count)
    return tuple(tag for tag, _ in sorted(counts.items(), key=lambda item: -item[1])[:limit])


def embedding_facts(path: Path) -> tuple[str | None, int | None]:
    """(family, vector count) of an embedding file; (None, None) for one that does not read as an embedding."""
    from ..errors import ModelLoadError
    from ..text.embeddings import read_embedding

    try:
        embedding = read_embedding(path)
    except (ModelLoadError, OSError):
        return None, None
    if embedding.sdxl:
        return FAMILIES["sdxl"], len(embedding.vectors)
    return {768: FAMILIES["sd1"], 1024: FAMILIES["sd2"]}.get(embedding.vectors.shape[1]), len(embedding.vectors)


def scan_addons(lora_dirs: Sequence[str | Path], embedding_dirs: Sequence[str | Path]) -> list[AddonInfo]:
    """Every LoRA and embedding under the folders, by name (the first found of a name wins)."""
    found: list[AddonInfo] = []
    for kind, folders, suffixes in (("lora", lora_dirs, LORA_SUFFIXES), ("embedding", embedding_dirs, EMBEDDING_SUFFIXES)):
        for name, path in files_in(folders, suffixes).items():
            if "/" in name:
                continue  # (listed under its stem)
            header = read_header(path)
            metadata = header.get("__metadata__") or {}
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if kind == "lora":
                found.append(AddonInfo(kind, name, str(path), size, lora_family(header), trigger_words(metadata)))
            else:
                family, vectors = embedding_facts(path) if size <= MAX_EMBEDDING else (None, None)
                found.append(AddonInfo(kind, name, str(path), size, family, vectors=vectors))
    return found
