"""A1111's extra-network tags in prompts, `<lora:name:weight>` and `<lora:name:unet_weight:text_weight>`
(`<lyco:...>` as the LyCORIS extension wrote them), and embedding trigger words: found in a request's
prompts and resolved against folders into its `loras` and `embeddings` fields.

The tags stay in the prompt (the infotext keeps them, as A1111's does); the text encoder never sees them:
`strip_tags` takes them out before the prompt is parsed, as A1111 does.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InvalidRequestError
from ..request import GenerationRequest, LoraRef

TAG = re.compile(r"<(\w+):([^>]+)>")  # A1111's extra-network syntax
LORA_KINDS = ("lora", "lyco")
LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")
EMBEDDING_SUFFIXES = (".safetensors", ".pt", ".bin")


@dataclasses.dataclass(frozen=True)
class Tag:
    kind: str  # "lora", "lyco", "hypernet" ...
    name: str
    weight: float
    text_weight: float | None


def find_tags(prompt: str) -> list[Tag]:
    """The extra-network tags of a prompt. A weight that is not a number is an InvalidRequestError."""
    tags = []
    for kind, args in TAG.findall(prompt or ""):
        name, *numbers = args.split(":")
        try:
            values = [float(n) for n in numbers[:2]]
        except ValueError:
            raise InvalidRequestError(f"<{kind}:{args}>: the weight must be a number, e.g. <{kind}:{name}:0.8>") from None
        weight = values[0] if values else 1.0
        tags.append(Tag(kind.lower(), name.strip(), weight, values[1] if len(values) > 1 else None))
    return tags


def strip_tags(prompt: str) -> str:
    """The prompt without its extra-network tags: what the text encoder reads."""
    return TAG.sub("", prompt or "")


def lora_folders_of(models_folders: Iterable[str | Path]) -> list[Path]:
    """Where A1111 and ComfyUI keep LoRAs beside their checkpoints: models/Lora and models/loras (and
    LyCORIS) next to each configured models folder, and inside it."""
    found: list[Path] = []
    for folder in models_folders:
        folder = Path(folder).expanduser()
        for root in (folder, folder.parent):
            for name in ("Lora", "loras", "LyCORIS", "lora"):
                candidate = root / name
                if candidate.is_dir() and candidate not in found:
                    found.append(candidate)
    return found


def embedding_folders_of(models_folders: Iterable[str | Path]) -> list[Path]:
    """A1111's `embeddings/` (beside `models/`) and ComfyUI's `models/embeddings`, for each models folder."""
    found: list[Path] = []
    for folder in models_folders:
        folder = Path(folder).expanduser()
        for candidate in (folder / "embeddings", folder.parent / "embeddings", folder.parent.parent / "embeddings"):
            if candidate.is_dir() and candidate not in found:
                found.append(candidate)
    return found


def files_in(folders: Sequence[str | Path], suffixes: tuple[str, ...]) -> dict[str, Path]:
    """stem -> file for every file with one of `suffixes` under the folders (recursively; the first found
    wins), also keyed by its path relative to its folder without suffix ("style/ink")."""
    found: dict[str, Path] = {}
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in suffixes and path.is_file():
                relative = path.relative_to(folder).with_suffix("").as_posix()
                found.setdefault(relative, path)
                found.setdefault(path.stem, path)
    return found


def resolve_extra_networks(request: GenerationRequest, lora_dirs: Sequence[str | Path] = (),
                           embedding_dirs: Sequence[str | Path] = ()) -> tuple[GenerationRequest, list[str]]:
    """The request with its prompt's `<lora:...>` tags as `loras` (after any it already has) and the
    embeddings whose file names appear as words in its prompts as `embeddings`; and notes. An unknown
    LoRA name is an InvalidRequestError naming the folders searched; a hypernetwork tag is refused."""
    notes: list[str] = []
    loras = list(request.loras)
    lora_files = files_in(lora_dirs, LORA_SUFFIXES) if find_tags(request.prompt) else {}
    for tag in find_tags(request.prompt):
        if tag.kind not in LORA_KINDS:
            raise InvalidRequestError(f"<{tag.kind}:{tag.name}>: sd-desktop does not use {tag.kind} networks; "
                                      "remove the tag (LoRA and LyCORIS tags are <lora:name:weight>)")
        path = lora_files.get(tag.name) or lora_files.get(tag.name.replace("\\", "/"))
        if path is None:
            where = ", ".join(str(Path(d).expanduser()) for d in lora_dirs) or "no LoRA folder is set"
            raise InvalidRequestError(f"LoRA '{tag.name}' is not in the LoRA folders ({where}); put the file there "
                                      "or fix the name in the tag")
        loras.append(LoraRef(str(path), tag.weight, tag.text_weight))
    if find_tags(request.negative_prompt):
        notes.append("LoRA tags in the negative prompt are not applied (taken out of its text)")
    embeddings = dict(request.embeddings)
    if embedding_dirs:
        words = set(re.findall(r"[\w\-.]+", strip_tags(request.prompt) + " " + strip_tags(request.negative_prompt)))
        words |= {word.split(".")[0] for word in words}  # ComfyUI's embedding:name.pt
        for name, path in files_in(embedding_dirs, EMBEDDING_SUFFIXES).items():
            if "/" not in name and name in words and name not in embeddings:
                embeddings[name] = str(path)
    resolved = dataclasses.replace(request, loras=tuple(loras), embeddings=tuple(sorted(embeddings.items())))
    return resolved, notes


def check_tags_resolved(request: GenerationRequest) -> None:
    """A prompt's LoRA tags must be among the request's loras (resolve_extra_networks puts them there):
    a tag nothing resolved would otherwise be dropped without a word."""
    have = {Path(ref.path).stem for ref in request.loras}
    for tag in find_tags(request.prompt):
        if tag.kind not in LORA_KINDS:
            raise InvalidRequestError(f"<{tag.kind}:{tag.name}>: sd-desktop does not use {tag.kind} networks; remove the tag")
        if Path(tag.name.replace("\\", "/")).name not in have:
            raise InvalidRequestError(f"the prompt names LoRA '{tag.name}', which the request does not carry; "
                                      "resolve its tags against your LoRA folders (core.resolve_extra_networks)")


def missing_addons(params: dict, lora_dirs: Sequence[str | Path], embedding_dirs: Sequence[str | Path]) -> list[str]:
    """What an image's parameters use that the folders lack: its prompt's LoRA tags not found by name, and
    the embeddings its "TI hashes" name; one phrase each ("LoRA add_detail (not in your LoRA folders)")."""
    missing = []
    prompt = str(params.get("prompt") or "")
    tags = [tag for tag in _tags_quietly(prompt) if tag.kind in LORA_KINDS]
    if tags:
        files = files_in(lora_dirs, LORA_SUFFIXES)
        missing += [f"LoRA {tag.name} (not in your LoRA folders)" for tag in tags
                    if tag.name not in files and tag.name.replace("\\", "/") not in files]
    listed = (params.get("extras") or {}).get("TI hashes")
    if isinstance(listed, str) and listed.strip():
        files = files_in(embedding_dirs, EMBEDDING_SUFFIXES)
        names = [entry.partition(":")[0].strip() for entry in listed.split(",")]
        missing += [f"embedding {name} (not in your embeddings folders)" for name in names if name and name not in files]
    return missing


def _tags_quietly(prompt: str) -> list[Tag]:
    try:
        return find_tags(prompt)
    except InvalidRequestError:
        return []
