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
from typing import Callable, Iterable, Sequence

from ..errors import InvalidRequestError
from ..request import GenerationRequest, LoraRef

TAG = re.compile(r"<(\w+):([^>]+)>")  # A1111's extra-network syntax
LORA_KINDS = ("lora", "lyco")
LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")
EMBEDDING_SUFFIXES = (".safetensors", ".pt", ".bin")
STILL_HASHING = "not found by name, and its folders are still being hashed: restore again in a moment"


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


def _listed_hashes(params: dict, field: str) -> dict[str, str]:
    """An infotext's "Lora hashes" / "TI hashes": name -> hash (lower case)."""
    listed = (params.get("extras") or {}).get(field)
    found = {}
    for entry in listed.split(",") if isinstance(listed, str) else []:
        name, _, digest = entry.rpartition(":")
        if name.strip() and digest.strip():
            found[name.strip()] = digest.strip().lower()
    return found


def _computed(kind: str, path: Path) -> str | None:
    from .hashes import file_hash, lora_hash

    try:
        return lora_hash(path) if kind == "lora" else file_hash(path)
    except OSError:
        return None


def restore_addons(params: dict, lora_dirs: Sequence[str | Path], embedding_dirs: Sequence[str | Path],
                   hash_of: Callable[[str, Path], str | None] = _computed) -> tuple[dict, list[str], list[str]]:
    """An image's parameters with the LoRAs and embeddings it names found in the folders: by name, else by the
    hash its "Lora hashes"/"TI hashes" give (A1111 does the same), the prompt then naming the file found here.
    Returns (params, found, missing): one phrase each ("LoRA add_detail, found by its hash as
    add_detail_v2"; "LoRA add_detail (not in your LoRA folders)").

    `hash_of(kind, path)` ("lora" or "file") gives a file's hash; the window passes
    core.lora.hashes.known, which reads nothing, so a restore never waits on hashing a folder."""
    found: list[str] = []
    missing: list[str] = []
    params = dict(params)
    prompt = str(params.get("prompt") or "")
    tags = [tag for tag in _tags_quietly(prompt) if tag.kind in LORA_KINDS]
    if tags:
        files = files_in(lora_dirs, LORA_SUFFIXES)
        hashes = _listed_hashes(params, "Lora hashes")
        for tag in dict.fromkeys(tag.name for tag in tags):
            if tag in files or tag.replace("\\", "/") in files:
                continue
            match, unknown = _by_hash(files, hashes.get(tag), "lora", hash_of)
            if match is None:
                missing.append(f"LoRA {tag} ({STILL_HASHING if unknown else 'not in your LoRA folders'})")
                continue
            prompt = re.sub(r"<(lora|lyco):" + re.escape(tag) + r"(?=[:>])", lambda m: f"<{m.group(1)}:{match}", prompt)
            found.append(f"LoRA {tag}, found by its hash as {match}")
    hashes = _listed_hashes(params, "TI hashes")
    negative = str(params.get("negative_prompt") or "")
    if hashes:
        files = files_in(embedding_dirs, EMBEDDING_SUFFIXES)
        for name, digest in hashes.items():
            if name in files:
                continue
            match, unknown = _by_hash(files, digest, "file", hash_of)
            if match is None:
                missing.append(f"embedding {name} ({STILL_HASHING if unknown else 'not in your embeddings folders'})")
                continue
            word = re.compile(r"(?<![\w\-.])" + re.escape(name) + r"(?![\w\-])")
            prompt, negative = word.sub(match, prompt), word.sub(match, negative)
            found.append(f"embedding {name}, found by its hash as {match}")
    if found:
        params["prompt"] = prompt
        if params.get("negative_prompt") is not None:
            params["negative_prompt"] = negative
    return params, found, missing


def _by_hash(files: dict[str, Path], digest: str | None, kind: str,
             hash_of: Callable[[str, Path], str | None]) -> tuple[str | None, bool]:
    """(the name (stem) of the file with this hash or None, whether some file's hash was not known)."""
    if not digest or len(digest) < 8:
        return None, False
    unknown = False
    for name, path in files.items():
        if "/" not in name:
            value = hash_of(kind, path)
            unknown |= value is None
            if value and (value.startswith(digest) or digest.startswith(value)):
                return name, False
    return None, unknown


def _tags_quietly(prompt: str) -> list[Tag]:
    try:
        return find_tags(prompt)
    except InvalidRequestError:
        return []
